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


def number_keys(bronze_df: DataFrame, msisdn_e164: Column, hmac_key: bytes) -> DataFrame:
    """Each distinct number of a batch (``msisdn``, as it arrived) with its ``msisdn_e164`` and
    ``subscriber_key``: normalizing and hashing once per number rather than once per row (a
    batch of millions of usage rows holds a few hundred thousand numbers)."""
    numbers = bronze_df.where(F.col("msisdn").isNotNull()).select("msisdn").distinct()
    return with_subscriber_key(numbers, msisdn_e164, hmac_key)


def row_hash(entity: Entity, columns: Sequence[str]) -> Column:
    """A hash of a row's business ``columns``: what latest-wins breaks ties on and what a rewrite
    of silver compares to leave unchanged rows alone. Compared only between rows of one key.

    An event's hash is Spark's 64-bit xxHash of the typed values, each with whether it is null
    (xxHash skips a null, so (null, x) and (x, null) would otherwise hash alike), as 16 hex
    digits at most. SHA-256 of the row's JSON cost about three times the compute (building the
    JSON is most of it; RESULTS.md, 2026-12-06), and its 64 hex digits, one a row and unlike any
    other, were seven tenths of silver.usage's bytes on disk (66 of 92-96 bytes a row;
    ``scripts/bench/column_bytes.py``) and 64 bytes a row in the batch ingest caches
    uncompressed. 64 bits leave a changed row unnoticed once in 2^64 changes.

    The subscriber master keeps SHA-256 of the JSON: its history compares each extract's hash
    with the one its open version recorded, in every run since the first, so a new hash would
    open a version for every line."""
    if entity.is_snapshot:
        return F.sha2(F.to_json(F.struct(*columns)), 256)
    return F.hex(F.xxhash64(*[part for c in columns for part in (F.col(c), F.col(c).isNull())]))


def classify(
    bronze_df: DataFrame,
    entity: Entity,
    params: ContractParams,
    msisdn_e164: Column | None,
    hmac_key: bytes | None,
    known_subscribers_df: DataFrame | None,
    redelivered_files: Sequence[str] = (),
) -> DataFrame:
    """Every bronze row with ``_status`` ∈ {accepted, quarantined, duplicate}: :func:`apply_rules`
    then :func:`latest_wins`, in one lazy frame. Ingest runs the two steps with the rules' frame
    cached (see :func:`repeated_keys`)."""
    numbers_df = number_keys(bronze_df, msisdn_e164, hmac_key) if entity.has_msisdn else None
    rules_df = apply_rules(bronze_df, entity, params, numbers_df, known_subscribers_df, redelivered_files)
    return latest_wins(rules_df, entity, repeated_keys(rules_df, entity))


def apply_rules(
    bronze_df: DataFrame,
    entity: Entity,
    params: ContractParams,
    number_keys_df: DataFrame | None,
    known_subscribers_df: DataFrame | None,
    redelivered_files: Sequence[str] = (),
) -> DataFrame:
    """Every bronze row with the rule it broke (``reject_rule``, ``reject_column``; null when it
    broke none), typed contract columns (under their own names), ``subscriber_key``,
    ``event_date`` and ``_row_hash`` (a hash of the business columns).

    ``number_keys_df`` is :func:`number_keys` of the batch for entities with a phone number
    (None for the others). ``known_subscribers_df`` (one column, ``subscriber_key``, unique)
    drives the referential check; pass None for entities that are not checked.

    ``redelivered_files`` were taken more than once with different content: a rejected row that
    a later delivery of the same file repeats is marked ``_rejected_before`` (a duplicate), so
    the quarantine holds it once.
    """
    df = with_typed_columns(bronze_df, entity)
    if entity.has_msisdn:
        numbers = number_keys_df.withColumnRenamed("msisdn", "_number")
        df = df.join(numbers, F.col("msisdn") == F.col("_number"), how="left").drop("_number")
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
    df = df.withColumn("_row_hash", row_hash(entity, content))
    rejected_before = F.lit(False)
    if redelivered_files:
        delivery = F.struct("_ingested_at", "_batch_id")
        latest = (
            df.where(F.col("reject_rule").isNotNull() & F.col("_source_file").isin(*redelivered_files))
            .groupBy("_source_file", "_raw")
            .agg(F.max(delivery).alias("_latest_delivery"))
        )
        df = df.join(latest, on=["_source_file", "_raw"], how="left")
        rejected_before = F.coalesce(delivery < F.col("_latest_delivery"), F.lit(False))
    return df.withColumn("_rejected_before", F.col("reject_rule").isNotNull() & rejected_before).drop(
        *[c for c in df.columns if c.endswith("__typed")], "_is_known", "_latest_delivery"
    )


def _latest_wins_key(entity: Entity) -> list[str]:
    # A snapshot entity holds one row per key per snapshot day; events one row per key.
    return silver_key(entity) + (["_file_date"] if entity.is_snapshot else [])


def repeated_keys(rules_df: DataFrame, entity: Entity) -> DataFrame:
    """The keys that more than one row passing the rules carries (with ``_repeated``, true): the
    only rows latest-wins has to rank. A batch repeats a few keys in millions, so ranking only
    these spares a shuffle and sort of every row of the batch. Rows passing the rules have every
    key column (keys are required and typed), so an equality join finds them."""
    key = _latest_wins_key(entity)
    return (
        rules_df.where(F.col("reject_rule").isNull())
        .groupBy(*key)
        .count()
        .where(F.col("count") > 1)
        .select(*key, F.lit(True).alias("_repeated"))
    )


def latest_wins(rules_df: DataFrame, entity: Entity, repeated_keys_df: DataFrame) -> DataFrame:
    """``rules_df`` (from :func:`apply_rules`) with ``_status``: a row that broke a rule is
    quarantined (a duplicate when a later delivery of its file repeats it); of the rows passing
    the rules, one per key is accepted, the newest (latest file date, then batch time, batch,
    file, content hash: ties broken deterministically) and the others are duplicates.
    ``repeated_keys_df`` is :func:`repeated_keys` of the same frame."""
    key = _latest_wins_key(entity)
    df = rules_df.join(repeated_keys_df, on=key, how="left")
    passed = F.col("reject_rule").isNull()
    rejected = F.when(F.col("_rejected_before"), F.lit("duplicate")).otherwise(F.lit("quarantined"))
    once = df.where(~passed | F.col("_repeated").isNull()).withColumn(
        "_status", F.when(passed, F.lit("accepted")).otherwise(rejected)
    )
    newest_first = Window.partitionBy(*key).orderBy(
        F.col("_file_date").desc(),
        F.col("_ingested_at").desc(),
        F.col("_batch_id").desc(),
        F.col("_source_file").desc(),
        F.col("_row_hash").desc(),
    )
    ranked = (
        df.where(passed & F.col("_repeated"))
        .withColumn("_rank", F.row_number().over(newest_first))
        .withColumn("_status", F.when(F.col("_rank") == 1, F.lit("accepted")).otherwise(F.lit("duplicate")))
        .drop("_rank")
    )
    return once.unionByName(ranked).drop("_repeated", "_rejected_before")


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
