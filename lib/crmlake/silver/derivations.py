"""``silver.derivations``: what each entity's file date in silver and the quarantine was derived
from — its deliveries in bronze and the rules that classified them — so a run derives again
only the file dates where either changed. An idle rerun costs its fixed overhead, not a pass
over the history it asks for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

import crmlake
from crmlake.bronze.land import INGESTED_FILES
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


def source_fingerprints(spark: SparkSession, root: str, entity: Entity, days: list[dt.date]) -> dict[dt.date, str]:
    """Per file date, a hash of the deliveries bronze took (file and batch of each, from the
    registry: no bronze data is read)."""
    deliveries: dict[dt.date, list[str]] = defaultdict(list)
    if days and tables.exists(spark, root, INGESTED_FILES):
        for r in (
            tables.read(spark, root, INGESTED_FILES)
            .where((F.col("entity") == entity.name) & F.col("_file_date").isin(days))
            .select("_file_date", "_source_file", "_batch_id")
            .collect()
        ):
            deliveries[r["_file_date"]].append(f"{r['_source_file']}\t{r['_batch_id']}")
    return {d: hashlib.sha256("\n".join(sorted(deliveries[d])).encode()).hexdigest() for d in days}


def days_to_derive(
    spark: SparkSession, root: str, entity: Entity, days: list[dt.date], sources: dict[dt.date, str], rules: str
) -> list[dt.date]:
    """The file dates of ``days`` never derived, or derived from other deliveries or rules."""
    derived: dict[dt.date, tuple[str, str]] = {}
    if days and tables.exists(spark, root, DERIVATIONS):
        for r in (
            tables.read(spark, root, DERIVATIONS)
            .where((F.col("entity") == entity.name) & F.col("_file_date").isin(days))
            .collect()
        ):
            derived[r["_file_date"]] = (r["source_fingerprint"], r["rules_fingerprint"])
    return [d for d in days if derived.get(d) != (sources[d], rules)]


def record_derivations(
    spark: SparkSession,
    root: str,
    entity: Entity,
    sources: dict[dt.date, str],
    rules: str,
    rows_by_day: dict[dt.date, int],
    run_id: str,
) -> None:
    """Records that the file dates of ``sources`` were derived from those deliveries by ``rules``."""
    if not sources:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    rows = [(entity.name, d, fp, rules, rows_by_day.get(d, 0), now, run_id) for d, fp in sorted(sources.items())]
    derived_df = spark.createDataFrame(rows, DERIVATIONS_SCHEMA).coalesce(1)
    tables.replace_days(derived_df, root, DERIVATIONS, list(sources), entity=entity.name)
