"""``gold.snapshot_builds``: what each snapshot of a gold table (one date of gold.features,
gold.churn_labels, gold.kpis, gold.cohort_retention, with its scope) was computed from, so a run
writes again only the snapshots whose inputs changed. An idle rerun reads this small table and
the logs of its inputs, and writes nothing.

A snapshot's input fingerprint hashes the source fingerprints of the subscriber-days it reads
(``gold.subscriber_daily_builds``: the silver files behind each day), the identity of every
other table it reads (its latest commit), its parameters and crmlake's version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from pydantic import BaseModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import crmlake
from crmlake.catalog import tables
from crmlake.catalog.registry import SNAPSHOT_BUILDS_SCHEMA

SNAPSHOT_BUILDS = "gold.snapshot_builds"


def input_fingerprint(
    table: str,
    day: dt.date,
    scope: str,
    daily_fingerprints: dict[dt.date, str],
    days: list[dt.date],
    identities: dict[str, str | None],
    params: list[BaseModel],
    extra: dict | None = None,
) -> str:
    """A hash of what the snapshot ``table`` at ``day`` (``scope``) is computed from: the source
    fingerprints of the subscriber-days ``days`` it reads, the ``identities`` of the other tables
    (:func:`crmlake.catalog.tables.identity`), its ``params``, ``extra`` values and crmlake's
    version."""
    parts = {
        "table": table,
        "day": day.isoformat(),
        "scope": scope,
        "daily": [f"{d.isoformat()}={daily_fingerprints[d]}" for d in sorted(days)],
        "tables": dict(sorted(identities.items())),
        "params": [p.model_dump(mode="json") for p in params],
        "extra": extra or {},
        "version": crmlake.__version__,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class SnapshotBuilds:
    """The recorded builds of some gold tables, read once per run; the builds of this run are
    recorded together at its end (:meth:`commit`). A snapshot written and not yet recorded when a
    run dies is written again by the next one."""

    def __init__(self, spark: SparkSession, root: str, names: list[str], run_id: str) -> None:
        self.spark, self.root, self.run_id = spark, root, run_id
        self.recorded: dict[tuple[str, dt.date, str], str] = {}
        self.present = {name: tables.exists(spark, root, name) for name in names}
        self.pending: list[tuple] = []
        if tables.exists(spark, root, SNAPSHOT_BUILDS):
            for r in (
                tables.read(spark, root, SNAPSHOT_BUILDS)
                .where(F.col("table_name").isin(names))
                .select("table_name", "snapshot_date", "scope", "input_fingerprint")
                .collect()
            ):
                self.recorded[(r["table_name"], r["snapshot_date"], r["scope"])] = r["input_fingerprint"]

    def is_current(self, name: str, day: dt.date, scope: str, fingerprint: str) -> bool:
        """Whether the table holds the snapshot as computed from these inputs (a table removed
        since is not)."""
        return self.present.get(name, False) and self.recorded.get((name, day, scope)) == fingerprint

    def record(self, name: str, day: dt.date, scope: str, fingerprint: str, rows: int) -> None:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        self.pending.append((name, day, scope, fingerprint, int(rows), now, self.run_id))
        self.present[name] = True

    def commit(self) -> bool:
        """Record this run's builds in one commit. Returns whether anything was written."""
        if not self.pending:
            return False
        builds_df = self.spark.createDataFrame(self.pending, SNAPSHOT_BUILDS_SCHEMA).coalesce(1)
        tables.upsert(self.spark, builds_df, self.root, SNAPSHOT_BUILDS)
        self.pending = []
        return True
