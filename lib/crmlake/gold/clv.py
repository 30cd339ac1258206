"""Lifetime value on Spark: the per-customer sufficient statistics of the models in
:mod:`crmlake.gold.clv_models`, compressed to the distinct combinations the likelihood needs.

As in the papers (and the ``lifetimes`` package), purchases in the same time unit are one
transaction whose value is their sum; the first transaction opens the customer and is not a
repeat; ``frequency`` counts repeat transactions, ``recency`` is the time of the last one and
``age`` (the papers' T) the time from the first to the calibration end, both in whole time units
since the first unit; the mean value is over repeat transactions only.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

TIME_UNITS = ("day", "week", "month")


def _period(column, unit: str):
    """The start of the time unit holding ``column`` (a date)."""
    if unit == "day":
        return F.to_date(column)
    return F.to_date(F.date_trunc(unit, F.to_date(column)))


def _units_between(start, end, unit: str):
    """Whole time units from period ``start`` to period ``end`` (both period starts)."""
    if unit == "day":
        return F.datediff(end, start)
    if unit == "week":
        return (F.datediff(end, start) / 7).cast("int")
    return F.months_between(end, start).cast("int")


def rfm_statistics(
    transactions_df: DataFrame, calibration_end: dt.date, unit: str = "day", customer: str = "customer_id"
) -> DataFrame:
    """Per customer with a transaction on or before ``calibration_end``: ``frequency``,
    ``recency``, ``age`` (in ``unit``s) and ``monetary_value`` (mean of repeat transactions;
    0 without one).

    Requires ``customer``, ``time`` (date or timestamp) and ``amount`` (numeric) columns.
    """
    if unit not in TIME_UNITS:
        raise ValueError(f"time unit must be one of {TIME_UNITS}, got {unit!r}")
    end = F.lit(calibration_end).cast("date")
    per_unit_df = (
        transactions_df.where(F.to_date("time") <= end)
        .groupBy(customer, _period(F.col("time"), unit).alias("period"))
        .agg(F.sum(F.col("amount").cast("double")).alias("value"))
    )
    first_df = per_unit_df.groupBy(customer).agg(
        F.min("period").alias("first_period"),
        F.max("period").alias("last_period"),
        F.count(F.lit(1)).alias("units"),
        F.sum("value").alias("total"),
        F.min_by("value", "period").alias("first_value"),
    )
    repeats = F.col("units") - 1
    return first_df.select(
        customer,
        repeats.cast("long").alias("frequency"),
        _units_between(F.col("first_period"), F.col("last_period"), unit).cast("double").alias("recency"),
        _units_between(F.col("first_period"), _period(end, unit), unit).cast("double").alias("age"),
        F.when(repeats > 0, (F.col("total") - F.col("first_value")) / repeats)
        .otherwise(F.lit(0.0))
        .alias("monetary_value"),
    )


def compressed_statistics(statistics_df: DataFrame) -> DataFrame:
    """The distinct (frequency, recency, age) with how many customers share each: all the BG/NBD
    likelihood needs, and far fewer rows than customers."""
    return statistics_df.groupBy("frequency", "recency", "age").agg(F.count(F.lit(1)).alias("customers"))
