"""Bronze → silver, the pure part: types, the entity's contract, E.164 + HMAC pseudonymization,
the referential check, de-duplication by key (latest arrival wins, ties broken deterministically),
the quarantine rows and the silver rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crmlake.contracts.entities import Entity, business_columns, silver_key
from crmlake.contracts.rules import ContractParams, raw_content, with_reject_reason, with_typed_columns
from crmlake.silver.identity import hmac_sha256_hex

QUARANTINE = "silver.quarantine"


LINEAGE = ["_source_file", "_batch_id", "_ingested_at", "_file_date"]


def silver_name(entity: Entity) -> str:
    return f"silver.{entity.name}"


def with_subscriber_key(df: DataFrame, msisdn_e164: Column, hmac_key: bytes) -> DataFrame:
    """Adds ``msisdn_e164`` and ``subscriber_key`` (keyed HMAC of the E.164 number)."""
    return df.withColumn("msisdn_e164", msisdn_e164).withColumn(
        "subscriber_key", hmac_sha256_hex(F.col("msisdn_e164"), hmac_key)
    )


def classify(
    bronze_df: DataFrame,
    entity: Entity,
    params: ContractParams,
    msisdn_e164: Column | None,
    hmac_key: bytes | None,
    known_subscribers_df: DataFrame | None,
    redelivered_files: Sequence[str] = (),
) -> DataFrame:
    """Every bronze row with ``_status`` ∈ {accepted, quarantined, duplicate}, the rule it broke,
    typed contract columns (under their own names), ``subscriber_key``, ``event_date`` and
    ``_row_hash`` (a hash of the business columns).

    ``known_subscribers_df`` (one column, ``subscriber_key``, unique) drives the referential
    check; pass None for entities that are not checked.

    ``redelivered_files`` were taken more than once with different content: a rejected row that
    a later delivery of the same file repeats is a duplicate, so the quarantine holds it once.
    """
    df = with_typed_columns(bronze_df, entity)
    if entity.has_msisdn:
        df = with_subscriber_key(df, msisdn_e164, hmac_key)
    is_unknown = None
    if entity.checks_subscriber and known_subscribers_df is not None:
        known = known_subscribers_df.select("subscriber_key").withColumn("_is_known", F.lit(True))
        df = df.join(known, on="subscriber_key", how="left")
        is_unknown = F.col("_is_known").isNull() & F.col("subscriber_key").isNotNull()
    df = with_reject_reason(df, entity, params, is_unknown)
    # What arrived, taken before the typed values replace the strings: a value that failed its
    # type must show in the quarantine as it was sent, not as the null it became.
    df = df.withColumn("_raw", F.when(F.col("reject_rule").isNotNull(), raw_content(entity)))
    df = df.withColumns({f.name: F.col(f"{f.name}__typed") for f in entity.silver.fields})
    df = df.withColumn("event_date", F.to_date(F.col(entity.event_time)))
    content = [c for c in business_columns(entity) if not (entity.is_snapshot and c == entity.event_time)]
    df = df.withColumn("_row_hash", F.sha2(F.to_json(F.struct(*content)), 256))

    # A snapshot entity holds one row per key per snapshot day; events one row per key.
    keys = silver_key(entity) + (["_file_date"] if entity.is_snapshot else [])
    newest_first = Window.partitionBy(*keys, F.col("reject_rule").isNull()).orderBy(
        F.col("_file_date").desc(),
        F.col("_ingested_at").desc(),
        F.col("_batch_id").desc(),
        F.col("_source_file").desc(),
        F.col("_row_hash").desc(),
    )
    repeated = F.lit(False)
    if redelivered_files:
        delivery = F.struct("_ingested_at", "_batch_id")
        latest = (
            df.where(F.col("reject_rule").isNotNull() & F.col("_source_file").isin(*redelivered_files))
            .groupBy("_source_file", "_raw")
            .agg(F.max(delivery).alias("_latest_delivery"))
        )
        df = df.join(latest, on=["_source_file", "_raw"], how="left")
        repeated = F.coalesce(delivery < F.col("_latest_delivery"), F.lit(False))
    return (
        df.withColumn("_rank", F.row_number().over(newest_first))
        .withColumn(
            "_status",
            F.when(F.col("reject_rule").isNotNull() & repeated, F.lit("duplicate"))
            .when(F.col("reject_rule").isNotNull(), F.lit("quarantined"))
            .when(F.col("_rank") == 1, F.lit("accepted"))
            .otherwise(F.lit("duplicate")),
        )
        .drop("_rank", *[c for c in df.columns if c.endswith("__typed")], "_is_known", "_latest_delivery")
    )


def quarantine_rows(classified_df: DataFrame, entity: Entity, run_id: str) -> DataFrame:
    """The rejected rows: the rule and column, and ``raw``, the row as it arrived."""
    return classified_df.where(F.col("_status") == "quarantined").select(
        F.lit(entity.name).alias("entity"),
        "_file_date",
        "_source_file",
        "_batch_id",
        "_ingested_at",
        F.col("reject_rule").alias("rule"),
        F.col("reject_column").alias("column"),
        F.col("_raw").alias("raw"),
        F.lit(run_id).alias("run_id"),
    )


def silver_rows(classified_df: DataFrame, entity: Entity) -> DataFrame:
    """Accepted rows in silver shape: business columns, event_date, row hash, lineage."""
    return classified_df.where(F.col("_status") == "accepted").select(
        *business_columns(entity), "event_date", "_row_hash", *LINEAGE
    )


def latest_per_key(df: DataFrame, keys: list[str]) -> DataFrame:
    """One row per key: the one from the latest file date (then batch time, then content)."""
    newest = Window.partitionBy(*keys).orderBy(
        F.col("_file_date").desc(), F.col("_ingested_at").desc(), F.col("_row_hash").desc()
    )
    return df.withColumn("_rank", F.row_number().over(newest)).where("_rank = 1").drop("_rank")
