"""The subscriber master as a history (valid_from / valid_to / is_current), and the restricted
``silver.subscriber_contacts``: the only table that holds raw numbers and names.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from crmlake.silver.classify import silver_name

SUBSCRIBER_CONTACTS = "silver.subscriber_contacts"


SCD_COLUMNS = ["valid_from", "valid_to", "is_current"]


def subscriber_history_changes(extract_df: DataFrame, history_df: DataFrame) -> DataFrame:
    """What one day's accepted extract changes in ``silver.subscribers`` (SCD type 2).

    ``extract_df``: silver-shaped subscriber rows (unique ``subscriber_key``, ``extract_date``,
    ``_row_hash``). ``history_df``: the current history. Returns staged rows with ``_action``:
    ``insert`` (a new version), ``close`` (end the version valid at the extract date), or
    ``replace`` (same valid_from, new attributes: a re-delivered extract), keyed for a MERGE on
    ``(_merge_key, _merge_from)``. An unchanged subscriber yields nothing.
    """
    h = history_df.alias("h")
    s = extract_df.alias("s")
    valid_at = (
        (F.col("h.subscriber_key") == F.col("s.subscriber_key"))
        & (F.col("h.valid_from") <= F.col("s.extract_date"))
        & (F.col("h.valid_to").isNull() | (F.col("h.valid_to") > F.col("s.extract_date")))
    )
    joined = s.join(h, valid_at, "left").select(
        "s.*",
        F.col("h.valid_from").alias("_cur_from"),
        F.col("h.valid_to").alias("_cur_to"),
        F.col("h._row_hash").alias("_cur_hash"),
        F.col("h.subscriber_key").isNotNull().alias("_has_cur"),
    )
    later = (
        s.join(
            h,
            (F.col("h.subscriber_key") == F.col("s.subscriber_key"))
            & (F.col("h.valid_from") > F.col("s.extract_date")),
            "inner",
        )
        .groupBy(F.col("s.subscriber_key").alias("subscriber_key"))
        .agg(F.min("h.valid_from").alias("_next_from"))
    )
    changed = joined.where(~F.col("_has_cur") | (F.col("_cur_hash") != F.col("_row_hash"))).join(
        later, on="subscriber_key", how="left"
    )
    new_to = F.when(F.col("_has_cur"), F.col("_cur_to")).otherwise(F.col("_next_from"))
    versioned = changed.withColumns(
        {"valid_from": F.col("extract_date"), "valid_to": new_to, "is_current": new_to.isNull()}
    )
    in_place = F.col("_has_cur") & (F.col("_cur_from") == F.col("extract_date"))
    inserts = versioned.where(~in_place).withColumns(
        {"_action": F.lit("insert"), "_merge_key": F.lit(None).cast("string"), "_merge_from": F.lit(None).cast("date")}
    )
    replaces = versioned.where(in_place).withColumns(
        {"_action": F.lit("replace"), "_merge_key": F.col("subscriber_key"), "_merge_from": F.col("_cur_from")}
    )
    closes = versioned.where(F.col("_has_cur") & ~in_place).withColumns(
        {"_action": F.lit("close"), "_merge_key": F.col("subscriber_key"), "_merge_from": F.col("_cur_from")}
    )
    return (
        inserts.unionByName(replaces)
        .unionByName(closes)
        .drop("_cur_from", "_cur_to", "_cur_hash", "_has_cur", "_next_from")
    )


def write_subscriber_history(spark: SparkSession, root: str, extract_df: DataFrame) -> int:
    name = silver_name(ENTITIES["subscribers"])
    columns = [*extract_df.columns, *SCD_COLUMNS]
    if not tables.exists(spark, root, name):
        first = extract_df.withColumns(
            {"valid_from": F.col("extract_date"), "valid_to": F.lit(None).cast("date"), "is_current": F.lit(True)}
        )
        return tables.create(first.select(*columns), root, name)
    staged = subscriber_history_changes(extract_df, tables.read(spark, root, name))
    if staged.isEmpty():
        return 0
    every = {c: f"s.{c}" for c in columns}
    return tables.merge_actions(
        spark,
        staged,
        root,
        name,
        on="t.subscriber_key = s._merge_key AND t.valid_from = s._merge_from",
        updates=[
            ("s._action = 'close'", {"valid_to": "s.valid_from", "is_current": "false"}),
            ("s._action = 'replace'", every),
        ],
        inserts=[("s._action = 'insert'", every)],
    )


def contact_rows(classified_df: DataFrame) -> DataFrame:
    """The restricted subscriber_key → raw number (and name) table, for delivery at publish."""
    accepted = classified_df.where(F.col("_status") == "accepted")
    return accepted.select(
        "subscriber_key",
        F.col("msisdn_e164").alias("msisdn"),
        "first_name",
        "last_name",
        "_file_date",
        "_ingested_at",
        F.sha2(F.to_json(F.struct("msisdn_e164", "first_name", "last_name")), 256).alias("_row_hash"),
    )
