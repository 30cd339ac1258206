"""``gold.run_log``: one row per job run (and per date, for range runs)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from crmlake.catalog import tables
from crmlake.catalog.registry import RUN_LOG_SCHEMA

RUN_LOG = "gold.run_log"


@dataclass
class RunRecord:
    """Collects what one run did; :func:`append_run` writes it."""

    job: str
    run_date: dt.date | None
    date_from: dt.date | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
    started_monotonic: float = field(default_factory=time.monotonic)
    status: str = "running"
    rows_read: int = 0
    rows_written: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    table_versions: dict[str, int] = field(default_factory=dict)
    event_dates: set[dt.date] = field(default_factory=set)
    model_version: str | None = None
    message: str | None = None
    details: dict = field(default_factory=dict)
    # The tables this run writes (or may have written, when it fails): their versions are logged.
    tables_written: set[str] = field(default_factory=set)

    def as_row(self) -> tuple:
        finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        return (
            self.run_id,
            self.job,
            self.run_date,
            self.date_from or self.run_date,
            self.status,
            self.started_at,
            finished,
            round(time.monotonic() - self.started_monotonic, 3),
            self.rows_read,
            self.rows_written,
            self.rows_rejected,
            self.rows_duplicate,
            {k: int(v) for k, v in self.table_versions.items() if v is not None},
            sorted(self.event_dates),
            self.model_version,
            self.message,
            json.dumps(self.details, default=str, sort_keys=True),
        )


def append_run(spark: SparkSession, root: str, record: RunRecord) -> None:
    df = spark.createDataFrame([record.as_row()], RUN_LOG_SCHEMA)
    tables.append(df.coalesce(1), root, RUN_LOG)
