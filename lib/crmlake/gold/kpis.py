"""``gold.kpis`` and ``gold.cohort_retention``: the numbers the business steers by.

``gold.kpis`` is long: one row per (period, period_start, dimension, dimension_value, kpi,
breakdown) with ``numerator``, ``denominator`` and ``value`` = numerator / denominator (or the
count itself when there is no denominator), so a dashboard can re-aggregate honestly. Periods
are the day and the month to date (``is_complete`` once the month's last day is in). The
definitions are written out in the README (section "KPI definitions"); the code below is the reference.

Dimensions are columns of the subscriber master, or segment schemes (:data:`SEGMENT_DIMENSIONS`),
which the caller passes as one snapshot of gold.segments (the latest on or before the KPI date).
Without that snapshot the segment dimensions are left out; a subscriber the snapshot does not
hold counts under ``unknown``.
"""

from __future__ import annotations

import datetime as dt
import typing

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.core.settings import SEGMENT_SCHEMES, KpisConfig
from crmlake.gold.features import PROFILE_COLUMNS, filter_in_base, lit_date, subscribers_as_of

KPIS = "gold.kpis"
COHORT_RETENTION = "gold.cohort_retention"
UNKNOWN = "unknown"

# Dimensions that come from gold.segments rather than the subscriber master.
SEGMENT_DIMENSIONS = tuple(s for s in typing.get_args(SEGMENT_SCHEMES) if s not in PROFILE_COLUMNS)


# Dimensions, tenure bands and cohort span, validated where the configuration is loaded.
KpiParams = KpisConfig


def periods_for(d: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """(period, start, end) of the day and of the month to date that ``d`` closes."""
    return [("day", d, d), ("month", d.replace(day=1), d)]


def month_is_complete(d: dt.date) -> bool:
    return (d + dt.timedelta(days=1)).month != d.month


def tenure_band(months: Column, bounds: tuple[int, ...]) -> Column:
    """Tenure in whole months → "0-3m", "3-6m", ..., "24m+" (unknown without activation)."""
    edges = (0, *bounds)
    expr = F.when(months.isNull(), F.lit(UNKNOWN))
    for lo, hi in zip(edges, edges[1:], strict=False):
        expr = expr.when(months < hi, F.lit(f"{lo}-{hi}m"))
    return expr.otherwise(F.lit(f"{edges[-1]}m+"))


# Additive measures summed per dimension value, and the KPIs derived from them.
SUMS = (
    "opening_base",
    "active_base",
    "gross_adds",
    "churners",
    "revenue",
    "voice_min",
    "data_mb",
    "recharge_count",
    "recharge_amount",
    "csat_answers",
    "csat_satisfied",
    "nps_answers",
    "nps_promoters",
    "nps_detractors",
    "care_contacts",
    "fcr_contacts",
    "escalated_contacts",
    "handle_time_s",
)


def kpi_dimensions(dims: tuple[str, ...], segments_df: DataFrame | None) -> tuple[str, ...]:
    """The dimensions a run can break down by: segment dimensions only with a segments snapshot."""
    return tuple(d for d in dims if segments_df is not None or d not in SEGMENT_DIMENSIONS)


def with_segments(master_df: DataFrame, segments_df: DataFrame | None, dims: tuple[str, ...]) -> DataFrame:
    """The master with the subscriber's segment columns among ``dims`` (null where the snapshot
    does not hold them). ``segments_df`` has one row per subscriber_key (one snapshot)."""
    wanted = [d for d in dims if d in SEGMENT_DIMENSIONS]
    if not wanted or segments_df is None:
        return master_df
    return master_df.join(segments_df.select("subscriber_key", *wanted), on="subscriber_key", how="left")


def _dims(df: DataFrame, dims: tuple[str, ...]) -> DataFrame:
    return df.withColumns({c: F.coalesce(F.col(c).cast("string"), F.lit(UNKNOWN)) for c in dims})


def _explode_dims(df: DataFrame, dims: tuple[str, ...]) -> DataFrame:
    """Each row once per dimension it belongs to: overall/all plus (dim, its value)."""
    pairs = [F.struct(F.lit("overall").alias("dimension"), F.lit("all").alias("dimension_value"))]
    pairs += [F.struct(F.lit(c).alias("dimension"), F.col(c).alias("dimension_value")) for c in dims]
    return df.withColumn("_dim", F.explode(F.array(*pairs))).select("*", "_dim.dimension", "_dim.dimension_value")


def period_contributions(
    history_df: DataFrame,
    daily_df: DataFrame,
    care_df: DataFrame,
    start: dt.date,
    end: dt.date,
    dims: tuple[str, ...],
    segments_df: DataFrame | None = None,
) -> DataFrame:
    """Per subscriber, the additive measures of the period [start, end], with the subscriber's
    dimension values from the master as known on ``end`` (the opening base uses the master as
    known the day before ``start``) and segment dimensions from ``segments_df``."""
    before = start - dt.timedelta(days=1)
    master_end_df = _dims(with_segments(subscribers_as_of(history_df, end), segments_df, dims), dims)
    dim_cols = ["subscriber_key", *dims]
    in_period = F.col("date").between(lit_date(start), lit_date(end))

    opening_master_df = with_segments(subscribers_as_of(history_df, before), segments_df, dims)
    opening_df = _dims(filter_in_base(opening_master_df, before), dims).select(
        *dim_cols, F.lit(1).alias("opening_base")
    )
    closing_df = filter_in_base(master_end_df, end).select(*dim_cols, F.lit(1).alias("active_base"))
    moves_df = master_end_df.select(
        *dim_cols,
        F.col("activation_date").between(lit_date(start), lit_date(end)).cast("int").alias("gross_adds"),
        F.coalesce(F.col("deactivation_date").between(lit_date(start), lit_date(end)), F.lit(False))
        .cast("int")
        .alias("churners"),
    )
    usage_df = (
        daily_df.where(in_period)
        .groupBy("subscriber_key")
        .agg(
            F.sum(F.col("revenue_usage") + F.col("bill_amount")).alias("revenue"),
            F.sum(F.col("voice_out_min") + F.col("voice_in_min")).alias("voice_min"),
            F.sum(F.col("data_mb_up") + F.col("data_mb_down")).alias("data_mb"),
            F.sum("topup_count").alias("recharge_count"),
            F.sum("topup_amount").alias("recharge_amount"),
            *[F.sum(c).alias(c) for c in ("csat_answers", "csat_satisfied")],
            *[F.sum(c).alias(c) for c in ("nps_answers", "nps_promoters", "nps_detractors")],
        )
    )
    care_agg_df = (
        care_df.where(F.col("event_date").between(lit_date(start), lit_date(end)))
        .groupBy("subscriber_key")
        .agg(
            F.count(F.lit(1)).alias("care_contacts"),
            F.sum(F.col("is_first_contact_resolution").cast("int")).alias("fcr_contacts"),
            F.sum((F.col("escalation_level") > 0).cast("int")).alias("escalated_contacts"),
            F.sum("handle_time_s").alias("handle_time_s"),
        )
    )
    attrs_df = master_end_df.select(*dim_cols)
    facts_df = usage_df.join(care_agg_df, on="subscriber_key", how="full").join(
        attrs_df, on="subscriber_key", how="left"
    )
    facts_df = _dims(facts_df, dims)
    return (
        opening_df.unionByName(closing_df, allowMissingColumns=True)
        .unionByName(moves_df, allowMissingColumns=True)
        .unionByName(facts_df, allowMissingColumns=True)
        .select(*dims, *[F.coalesce(F.col(c).cast("double"), F.lit(0.0)).alias(c) for c in SUMS])
        .crossJoin(F.broadcast(opening_observed(history_df, before)))
    )


def opening_observed(history_df: DataFrame, before: dt.date) -> DataFrame:
    """One row, ``is_opening_observed``: whether any subscriber extract is known on ``before``.

    Before the first extract the base is unknown, not empty: counting it as 0 once halved the
    average base and doubled ARPU. KPIs built on the opening base are then null."""
    first_known = F.min("valid_from")
    return history_df.agg(F.coalesce(first_known <= lit_date(before), F.lit(False)).alias("is_opening_observed"))


def _kpi(name: str, num: Column, den: Column | None = None, scale: float = 1.0) -> Column:
    value = num if den is None else F.when(den > 0, num * scale / den)
    return F.struct(
        F.lit(name).alias("kpi"),
        F.lit(None).cast("string").alias("breakdown"),
        value.cast("double").alias("value"),
        num.cast("double").alias("numerator"),
        (den if den is not None else F.lit(None)).cast("double").alias("denominator"),
    )


def headline_kpis(contributions_df: DataFrame, dims: tuple[str, ...]) -> DataFrame:
    """Sum the contributions per dimension value and derive the KPIs (long format). The opening
    base, churn rate, ARPU, MOU and data per subscriber are null (value and denominator) for a
    period whose opening base was never observed."""
    sums_df = (
        _explode_dims(contributions_df, dims)
        .groupBy("dimension", "dimension_value")
        .agg(*[F.sum(c).alias(c) for c in SUMS], F.bool_and("is_opening_observed").alias("is_opening_observed"))
    )
    c = F.col
    # Null where no extract is known before the period: the KPIs on the base say "unknown".
    opening = F.when(c("is_opening_observed"), c("opening_base"))
    avg_base = (opening + c("active_base")) / 2
    kpis = [
        _kpi("active_base", c("active_base")),
        _kpi("opening_base", opening),
        _kpi("gross_adds", c("gross_adds")),
        _kpi("churners", c("churners")),
        _kpi("churn_rate", c("churners"), opening),
        _kpi("revenue", c("revenue")),
        _kpi("arpu", c("revenue"), avg_base),
        _kpi("mou", c("voice_min"), avg_base),
        _kpi("data_mb_per_subscriber", c("data_mb"), avg_base),
        _kpi("recharge_count", c("recharge_count")),
        _kpi("recharge_amount", c("recharge_amount")),
        _kpi("csat", c("csat_satisfied"), c("csat_answers")),
        _kpi("nps", c("nps_promoters") - c("nps_detractors"), c("nps_answers"), scale=100.0),
        _kpi("care_contacts", c("care_contacts")),
        _kpi("fcr_rate", c("fcr_contacts"), c("care_contacts")),
        _kpi("escalation_rate", c("escalated_contacts"), c("care_contacts")),
        _kpi("avg_handle_time_s", c("handle_time_s"), c("care_contacts")),
    ]
    return sums_df.select("dimension", "dimension_value", F.explode(F.array(*kpis)).alias("k")).select(
        "dimension", "dimension_value", "k.*"
    )


def share_kpis(
    care_df: DataFrame,
    history_df: DataFrame,
    start: dt.date,
    end: dt.date,
    params: KpiParams,
    segments_df: DataFrame | None = None,
) -> DataFrame:
    """Mix KPIs of the period's care contacts (long format, ``breakdown`` = the category):
    ``channel_share`` per dimension value, and ``contact_reason_share`` per tenure band at the
    time of contact (where in the customer lifecycle contacts come from)."""
    dims = kpi_dimensions(params.dimensions, segments_df)
    master_df = with_segments(subscribers_as_of(history_df, end), segments_df, dims)
    attrs_df = _dims(master_df, dims).select("subscriber_key", *dims, "activation_date")
    contacts_df = (
        care_df.where(F.col("event_date").between(lit_date(start), lit_date(end)))
        .select("subscriber_key", "event_date", "channel", "reason")
        .join(attrs_df, on="subscriber_key", how="left")
        .transform(_dims, dims)
        .withColumn(
            "tenure_band",
            tenure_band(
                F.floor(F.months_between(F.col("event_date"), F.col("activation_date"))), params.tenure_bands_months
            ),
        )
    )

    def shares(df: DataFrame, kpi: str, category: str) -> DataFrame:
        counts_df = df.groupBy("dimension", "dimension_value", category).agg(F.count(F.lit(1)).alias("n"))
        totals_df = df.groupBy("dimension", "dimension_value").agg(F.count(F.lit(1)).alias("total"))
        return counts_df.join(totals_df, on=["dimension", "dimension_value"], how="inner").select(
            "dimension",
            "dimension_value",
            F.lit(kpi).alias("kpi"),
            F.col(category).cast("string").alias("breakdown"),
            (F.col("n") / F.col("total")).alias("value"),
            F.col("n").cast("double").alias("numerator"),
            F.col("total").cast("double").alias("denominator"),
        )

    channel_df = shares(_explode_dims(contacts_df, dims), "channel_share", "channel")
    by_band_df = _explode_dims(contacts_df, ("tenure_band",))
    reason_df = shares(by_band_df, "contact_reason_share", "reason")
    return channel_df.unionByName(reason_df)


def kpis_for(
    history_df: DataFrame,
    daily_df: DataFrame,
    care_df: DataFrame,
    d: dt.date,
    params: KpiParams,
    segments_df: DataFrame | None = None,
) -> DataFrame:
    """Every KPI row of the day ``d`` and of the month to date that ``d`` closes. Segment
    dimensions need ``segments_df`` (one snapshot of gold.segments); without it they are left out."""
    dims = kpi_dimensions(params.dimensions, segments_df)
    frames = []
    for period, start, end in periods_for(d):
        contributions_df = period_contributions(history_df, daily_df, care_df, start, end, dims, segments_df)
        rows_df = headline_kpis(contributions_df, dims).unionByName(
            share_kpis(care_df, history_df, start, end, params, segments_df)
        )
        frames.append(
            rows_df.select(
                F.lit(period).alias("period"),
                lit_date(start).alias("period_start"),
                lit_date(end).alias("period_end"),
                F.lit(period == "day" or month_is_complete(end)).alias("is_complete"),
                "dimension",
                "dimension_value",
                "kpi",
                "breakdown",
                "value",
                "numerator",
                "denominator",
            )
        )
    return frames[0].unionByName(frames[1])


def kpis_scope(d: dt.date, periods: tuple[str, ...] = ("day", "month")) -> str:
    """The rows of gold.kpis that a run for ``d`` replaces (of ``periods``)."""
    return tables.any_of(
        *[tables.where(period=period, period_start=start) for period, start, _ in periods_for(d) if period in periods]
    )


def cohort_retention(history_df: DataFrame, d: dt.date, cohort_months: int) -> DataFrame:
    """Activation-month cohorts of the last ``cohort_months`` months as known on ``d``: for each
    month since activation k (0 = the activation month), the share of the cohort not yet
    deactivated at the end of month k (or on ``d``, for the month in progress)."""
    month_d = F.trunc(lit_date(d), "month")
    first_cohort = F.add_months(month_d, -(cohort_months - 1))
    cohort = F.trunc(F.col("activation_date"), "month")
    lines_df = (
        subscribers_as_of(history_df, d)
        .where((F.col("activation_date") <= lit_date(d)) & (cohort >= first_cohort))
        .select(cohort.alias("cohort_month"), "deactivation_date")
        .withColumn(
            "months_since_activation",
            F.explode(F.sequence(F.lit(0), F.months_between(month_d, F.col("cohort_month")).cast("int"))),
        )
    )
    checkpoint = F.least(F.last_day(F.add_months(F.col("cohort_month"), F.col("months_since_activation"))), lit_date(d))
    is_retained = F.col("deactivation_date").isNull() | (F.col("deactivation_date") > checkpoint)
    return (
        lines_df.groupBy("cohort_month", "months_since_activation")
        .agg(F.count(F.lit(1)).alias("cohort_size"), F.sum(is_retained.cast("long")).alias("retained"))
        .select(
            lit_date(d).alias("as_of_date"),
            "cohort_month",
            "months_since_activation",
            "cohort_size",
            "retained",
            (F.col("retained") / F.col("cohort_size")).alias("retention_rate"),
        )
    )
