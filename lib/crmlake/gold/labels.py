"""``gold.churn_labels``: did a line in the base at snapshot ``s`` churn within the horizon?

Kept apart from ``gold.features`` because a label looks ahead: the label at ``s`` uses data up
to ``s + horizon`` and can only be written once that data has arrived.

Definitions (horizon H and inactivity N from config, ``labels`` section):

- **Population**: lines in the base on ``s`` (as in ``features``); a prepaid line must also have
  had revenue activity (outgoing usage, a top-up or a payment) in the N days up to ``s`` —
  one silent for N days already has churned by the inactivity rule and gets no label.
- **Deactivation churn** (prepaid and postpaid): the master as known on ``s + H`` shows a
  deactivation date in ``(s, s + H]``. Its type comes from the churn reason: ``port_out`` →
  ``port_out``, ``non_payment`` → ``involuntary``, ``inactivity`` → ``inactivity``, anything
  else → ``voluntary``.
- **Inactivity churn** (prepaid only): on some day ``t`` in ``(s, s + H]`` the line has had no
  revenue activity for N consecutive days ending at ``t``; the churn date is the first such
  ``t`` (the day an operator would declare the line churned), type ``inactivity``.
- A line that churns both ways gets the earlier date (deactivation wins a tie).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from crmlake.core.settings import LabelsConfig
from crmlake.gold.features import filter_in_base, lit_date, subscribers_as_of

CHURN_LABELS = "gold.churn_labels"


# The label horizon and inactivity rule, validated where the configuration is loaded.
LabelParams = LabelsConfig


def churn_type(reason: Column) -> Column:
    return (
        F.when(reason == "port_out", "port_out")
        .when(reason == "non_payment", "involuntary")
        .when(reason == "inactivity", "inactivity")
        .otherwise("voluntary")  # price, network, service, competitor, relocation, or not given
    )


def churn_labels(history_df: DataFrame, daily_df: DataFrame, s: dt.date, params: LabelParams) -> DataFrame:
    """Labels at snapshot ``s``: subscriber_key, snapshot_date, horizon_days, is_churned,
    churn_date, churn_type. ``daily_df`` must cover ``LabelParams.daily_range(s)``."""
    horizon, n_silent = params.horizon_days, params.prepaid_inactivity_days
    end = s + dt.timedelta(days=horizon)
    lo = s - dt.timedelta(days=n_silent - 1)
    active_df = (
        daily_df.where(F.col("has_revenue_activity") & F.col("date").between(lit_date(lo), lit_date(end)))
        .select("subscriber_key", "date")
        .distinct()
    )
    base_df = filter_in_base(subscribers_as_of(history_df, s), s).select("subscriber_key", "plan_type")
    recently_active_df = active_df.where(F.col("date") <= lit_date(s)).select("subscriber_key").distinct()
    population_df = base_df.join(
        recently_active_df.withColumn("_recent", F.lit(True)), on="subscriber_key", how="left"
    ).where((F.col("plan_type") != "prepaid") | F.col("_recent").isNotNull())

    # Inactivity: a gap after activity day a, up to the next activity day (or past the end of the
    # horizon), that reaches N silent days crosses the threshold on a + N.
    next_day = F.lead("date").over(Window.partitionBy("subscriber_key").orderBy("date"))
    crossing_df = (
        active_df.withColumn("_next", F.coalesce(next_day, lit_date(end + dt.timedelta(days=1))))
        .where(F.datediff(F.col("_next"), F.col("date")) - 1 >= n_silent)
        .groupBy("subscriber_key")
        .agg(F.min(F.date_add(F.col("date"), n_silent)).alias("_inactive_on"))
    )
    deactivated_df = (
        subscribers_as_of(history_df, end)
        .where(F.col("deactivation_date").between(lit_date(s + dt.timedelta(days=1)), lit_date(end)))
        .select("subscriber_key", F.col("deactivation_date").alias("_deactivated_on"), "churn_reason")
    )
    joined_df = (
        population_df.join(deactivated_df, on="subscriber_key", how="left")
        .join(crossing_df, on="subscriber_key", how="left")
        .withColumn("_inactive_on", F.when(F.col("plan_type") == "prepaid", F.col("_inactive_on")))
    )
    by_deactivation = F.col("_deactivated_on").isNotNull() & (
        F.col("_inactive_on").isNull() | (F.col("_deactivated_on") <= F.col("_inactive_on"))
    )
    churn_date = F.least("_deactivated_on", "_inactive_on")
    return joined_df.select(
        "subscriber_key",
        lit_date(s).alias("snapshot_date"),
        F.lit(horizon).alias("horizon_days"),
        churn_date.isNotNull().alias("is_churned"),
        churn_date.alias("churn_date"),
        F.when(by_deactivation, churn_type(F.col("churn_reason")))
        .when(F.col("_inactive_on").isNotNull(), "inactivity")
        .alias("churn_type"),
    )
