"""``silver.derivations``: what each entity's file date in silver and the quarantine was derived
from — its deliveries in bronze and the rules that classified them — so a run derives again
only the file dates where either changed. An idle rerun costs its fixed overhead, not a pass
over the history it asks for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

import crmlake
from crmlake.bronze.land import Delivery
from crmlake.catalog import tables
from crmlake.catalog.registry import DERIVATIONS_SCHEMA
from crmlake.contracts.entities import Entity
from crmlake.contracts.rules import ContractParams

DERIVATIONS = "silver.derivations"


def rules_fingerprint(params: ContractParams, msisdn_e164: Column, hmac_key: bytes) -> str:
    """A hash of what classifying a row depends on besides the row: the contract limits, the
    number normalization, the pseudonymization key (hashed twice, never stored) and crmlake's
    version. A change to any of them derives every asked day again."""
    parts = [repr(params), str(msisdn_e164), hashlib.sha256(hmac_key).hexdigest(), crmlake.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def source_fingerprints(taken: list[Delivery], days: list[dt.date]) -> dict[dt.date, str]:
    """Per file date of ``days``, a hash of the deliveries bronze took (file and batch of each,
    from an entity's :func:`~crmlake.bronze.land.deliveries`: no bronze data is read)."""
    by_day: dict[dt.date, list[str]] = defaultdict(list)
    for d in taken:
        by_day[d.file_date].append(f"{d.source_file}\t{d.batch_id}")
    return {d: hashlib.sha256("\n".join(sorted(by_day[d])).encode()).hexdigest() for d in days}


Derived = dict[tuple[str, dt.date], tuple[str, str]]


def derived(spark: SparkSession, root: str, entities: list[str], first: dt.date, last: dt.date) -> Derived:
    """(entity, file date) → (source, rules fingerprint) recorded for the file dates from
    ``first`` to ``last``: one read for every entity of a run."""
    if not tables.exists(spark, root, DERIVATIONS):
        return {}
    return {
        (r["entity"], r["_file_date"]): (r["source_fingerprint"], r["rules_fingerprint"])
        for r in tables.read(spark, root, DERIVATIONS)
        .where(F.col("entity").isin(entities) & F.col("_file_date").between(F.lit(first), F.lit(last)))
        .select("entity", "_file_date", "source_fingerprint", "rules_fingerprint")
        .collect()
    }


def days_to_derive(
    recorded: Derived, entity: Entity, days: list[dt.date], sources: dict[dt.date, str], rules: str
) -> list[dt.date]:
    """The file dates of ``days`` never derived, or derived from other deliveries or rules."""
    return [d for d in days if recorded.get((entity.name, d)) != (sources[d], rules)]


@dataclass(frozen=True)
class Derivation:
    """An entity's file date derived from its deliveries (``source``) by ``rules``."""

    entity: str
    file_date: dt.date
    source: str
    rules: str
    rows: int


def record_derivations(spark: SparkSession, root: str, done: list[Derivation], run_id: str) -> None:
    """Records the file dates derived by a run, every entity in one commit (after the last
    silver write: a run that fails before it restores silver too)."""
    if not done:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = [(d.entity, d.file_date, d.source, d.rules, d.rows, now, run_id) for d in done]
    derived_df = spark.createDataFrame(rows, DERIVATIONS_SCHEMA).coalesce(1)
    days: dict[str, list[dt.date]] = defaultdict(list)
    for d in done:
        days[d.entity].append(d.file_date)
    scope = tables.any_of(*(tables.days_scope(DERIVATIONS, ds, entity=e) for e, ds in sorted(days.items())))
    tables.replace_where(derived_df, root, DERIVATIONS, scope)
