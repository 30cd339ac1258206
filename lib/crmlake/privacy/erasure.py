"""Erasure of subscribers across every table the catalog marks as holding one.

An erasure request names numbers (in any format the operator's systems write). They are keyed
like the lake and the keys, never the numbers, are kept in ``silver.erasure_register`` with the
request id and date. Every row naming them is then deleted from each table the catalog says
holds a subscriber (:func:`crmlake.catalog.registry.holding_subscribers`): by key in silver and
gold, by the raw number read as E.164 and keyed in bronze. Publishing suppresses every
registered key, so an erased subscriber is never in a list even if a later extract brings the
line back.

What this does not reach, by design or not yet: Delta keeps deleted rows in the files of
earlier table versions until ``VACUUM`` removes them after the table's retention (the versions
an ingest rolls back to); the quarantine keeps rows as they arrived and is keyed by no
subscriber; files already exported to campaign systems, and the landing zone, are the
operator's.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import holding_subscribers
from crmlake.core.log import stage
from crmlake.core.settings import IdentityConfig
from crmlake.silver.erasure_register import ERASURE_REGISTER
from crmlake.silver.identity import hmac_sha256_hex, normalize_msisdn_from_config


def register_rows(keys_df: DataFrame, request_id: str, d: dt.date) -> DataFrame:
    """The register rows of one request: subscriber_key, request_id, erased_on."""
    return keys_df.select(
        "subscriber_key", F.lit(request_id).alias("request_id"), F.lit(d).cast("date").alias("erased_on")
    ).distinct()


def _match(column: str, layer: str, identity: IdentityConfig, hmac_key: bytes) -> Column:
    """Target rows (alias ``t``) naming a key of the source (alias ``s``): bronze holds the raw
    number as it arrived, so it is read and keyed the way ingest keys it."""
    target = F.col(f"t.{column}")
    if layer == "bronze":
        target = hmac_sha256_hex(normalize_msisdn_from_config(target, identity), hmac_key)
    return target == F.col("s.subscriber_key")


def erase(
    spark: SparkSession,
    root: str,
    keys_df: DataFrame,
    identity: IdentityConfig,
    hmac_key: bytes,
    request_id: str,
    d: dt.date,
) -> dict[str, int]:
    """Registers the keys of ``keys_df`` (column ``subscriber_key``) under ``request_id`` and
    deletes their rows from every table holding a subscriber. Returns rows deleted per table
    (tables with none are left without a new version). A rerun of the same request registers
    nothing new and deletes nothing."""
    keys_df = F.broadcast(keys_df.select("subscriber_key").distinct()).localCheckpoint()
    new_df = register_rows(keys_df, request_id, d)
    if tables.exists(spark, root, ERASURE_REGISTER):
        tables.merge_actions(
            spark,
            new_df,
            root,
            ERASURE_REGISTER,
            on="t.subscriber_key = s.subscriber_key",
            updates=[],
            inserts=[(None, {c: f"s.{c}" for c in new_df.columns})],
        )
    else:
        tables.create(new_df, root, ERASURE_REGISTER)
    deleted: dict[str, int] = {}
    for table in holding_subscribers():
        if not tables.exists(spark, root, table.name):
            continue
        with stage("erase", table=table.name) as info:
            on = _match(table.subscriber_column, table.layer, identity, hmac_key)
            info["rows"] = deleted[table.name] = tables.delete_matching(spark, root, table.name, keys_df, on)
    return deleted
