"""The erasure register, ``silver.erasure_register``: the keys of every subscriber erased, with
the request id and date. :mod:`crmlake.privacy.erasure` writes it; publishing reads it so an
erased subscriber is never in a list, even when a later extract brings the line back."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from crmlake.catalog import tables

ERASURE_REGISTER = "silver.erasure_register"


def erased_keys(spark: SparkSession, root: str) -> DataFrame | None:
    """Every key ever erased (None when no erasure was ever requested)."""
    if not tables.exists(spark, root, ERASURE_REGISTER):
        return None
    return tables.read(spark, root, ERASURE_REGISTER).select("subscriber_key").distinct()
