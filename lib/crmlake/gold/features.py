"""``gold.features``: one row per subscriber per snapshot date, point in time.

A snapshot at date ``d`` is computed from rows dated ``d`` or earlier only: subscriber-days
with ``date <= d``, the subscriber master as it was known on ``d`` (the history row valid on
``d``) and network days ``<= d``. Anything dated after ``d`` cannot change it; labels, which
look ahead, live apart in ``gold.churn_labels`` (see ``labels``).

The population of a snapshot is every line in the master on ``d`` that was activated on or
before ``d`` and not deactivated by then (suspended lines included). Sums over a window count a
silent day as zero; ratios whose denominator is zero are null, as are "days since" features
when nothing happened within the lookback (the longest window).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.core.settings import FeaturesConfig
from crmlake.gold.daily import NPS_DETRACTOR_MAX, NPS_PROMOTER_MIN

FEATURES = "gold.features"


# The feature windows and thresholds, validated where the configuration is loaded.
FeatureParams = FeaturesConfig


def lit_date(d: dt.date) -> Column:
    return F.lit(d).cast("date")


def in_window(column: str, d: dt.date, days: int) -> Column:
    """``column`` within the ``days`` days ending on ``d`` (literal bounds, so Delta prunes
    partitions)."""
    return F.col(column).between(lit_date(d - dt.timedelta(days=days - 1)), lit_date(d))


def subscribers_as_of(history_df: DataFrame, d: dt.date) -> DataFrame:
    """The subscriber master as it was known on ``d``: each subscriber's history row valid on
    ``d`` (``valid_from <= d`` and ``valid_to`` open or later)."""
    day = lit_date(d)
    return history_df.where((F.col("valid_from") <= day) & (F.col("valid_to").isNull() | (F.col("valid_to") > day)))


def filter_in_base(master_df: DataFrame, d: dt.date) -> DataFrame:
    """Lines that count in the base on ``d``: activated on or before it, not deactivated by it."""
    day = lit_date(d)
    deactivated = (F.col("status") == "deactivated") | (F.col("deactivation_date") <= day)
    return master_df.where((F.col("activation_date") <= day) & ~F.coalesce(deactivated, F.lit(False)))


PROFILE_COLUMNS = (
    "plan_type",
    "tariff",
    "customer_type",
    "region",
    "city",
    "home_cell_id",
    "age_band",
    "gender",
    "device_type",
    "device_brand",
    "status",
    "is_marketing_consent",
    "is_do_not_contact",
)


def profile(master_df: DataFrame, d: dt.date) -> DataFrame:
    """Profile features of the lines in the base on ``d``: master attributes, tenure, B2B flag."""
    return filter_in_base(master_df, d).select(
        "subscriber_key",
        *PROFILE_COLUMNS,
        (F.col("customer_type") == "B2B").alias("is_b2b"),
        F.datediff(lit_date(d), F.col("activation_date")).alias("tenure_days"),
    )


def _revenue() -> Column:
    """Revenue of a subscriber-day: rated usage charges plus postpaid bills."""
    return F.col("revenue_usage") + F.col("bill_amount")


# Daily measures that get windowed sums: name -> expression over a subscriber_daily row.
def _measures() -> dict[str, Column]:
    return {
        "revenue": _revenue(),
        "voice_min": F.col("voice_out_min") + F.col("voice_in_min"),
        "voice_out_calls": F.col("voice_out_calls"),
        "sms_out": F.col("sms_out"),
        "data_mb": F.col("data_mb_up") + F.col("data_mb_down"),
        "events": F.col("events"),
        "active_days": (F.col("events") > 0).cast("long"),
    }


TREND_MEASURES = ("revenue", "voice_min", "data_mb", "events")


def _days_since(d: dt.date, when: Column) -> Column:
    return F.datediff(lit_date(d), F.max(F.when(when, F.col("date"))))


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num.cast("double") / den.cast("double"))


def activity_features(daily_df: DataFrame, d: dt.date, params: FeatureParams) -> DataFrame:
    """subscriber_daily rows → per subscriber usage, value and care features at ``d``.

    Requires the daily rows of the lookback (older and later rows are ignored here, so callers
    may pass a wider range). One aggregation pass: every window is a conditional sum over the
    age of the row (0 = the snapshot day).
    """
    lookback_df = daily_df.where(in_window("date", d, params.lookback_days)).withColumn(
        "_age", F.datediff(lit_date(d), F.col("date"))
    )
    a = F.col("_age")
    measures = _measures()

    def wsum(expr: Column, lo: int, hi: int) -> Column:
        return F.sum(F.when((a >= lo) & (a < hi), expr).otherwise(0))

    aggs: list[Column] = []
    for w in params.windows:
        aggs += [wsum(expr, 0, w).alias(f"{name}_{w}d") for name, expr in measures.items()]
    r, b = params.trend_recent_days, params.trend_base_days
    n = params.slope_days
    t_mean, t_var_sum = (n - 1) / 2, n * (n * n - 1) / 12
    for name in TREND_MEASURES:
        expr = measures[name].cast("double")
        recent, base = wsum(expr, 0, r) / r, wsum(expr, r, r + b) / b
        aggs.append(_ratio(recent, base).alias(f"{name}_trend_{r}v{b}"))
        # Least-squares slope per day over the last n days, silent days as zero:
        # t = n-1-age, slope = (Σ t·y − t̄·Σ y) / Σ (t − t̄)².
        t = F.lit(n - 1) - a
        aggs.append(((wsum(t * expr, 0, n) - t_mean * wsum(expr, 0, n)) / t_var_sum).alias(f"{name}_slope_{n}d"))
    talk_out = F.col("voice_out_calls") + F.col("sms_out")
    m = 30 if 30 in params.windows else params.windows[0]
    aggs += [
        _ratio(wsum(F.col("on_net_out"), 0, m), wsum(talk_out, 0, m)).alias(f"on_net_share_{m}d"),
        _ratio(wsum(F.col("off_net_out"), 0, m), wsum(talk_out, 0, m)).alias(f"off_net_share_{m}d"),
        _ratio(wsum(F.col("intl_out"), 0, m), wsum(talk_out, 0, m)).alias(f"intl_share_{m}d"),
        _ratio(wsum(F.col("roaming_events"), 0, m), wsum(F.col("events"), 0, m)).alias(f"roaming_share_{m}d"),
        _ratio(wsum(F.col("distinct_cells"), 0, m), wsum(measures["active_days"], 0, m)).alias(
            f"distinct_cells_per_active_day_{m}d"
        ),
        _days_since(d, F.col("events") > 0).alias("days_since_last_activity"),
        _days_since(d, F.col("has_revenue_activity")).alias("days_since_last_revenue_activity"),
        # value: prepaid top-ups, postpaid bills and payments
        _days_since(d, (F.col("topup_count") > 0) | (F.col("payment_count") > 0)).alias("days_since_last_recharge"),
    ]
    lb = params.lookback_days
    if m != lb:  # a shorter window as well as the lookback
        aggs += [
            wsum(F.col("topup_count"), 0, m).alias(f"recharge_count_{m}d"),
            wsum(F.col("care_contacts"), 0, m).alias(f"care_contacts_{m}d"),
        ]
    aggs += [
        wsum(F.col("topup_count"), 0, lb).alias(f"recharge_count_{lb}d"),
        wsum(F.col("topup_amount"), 0, lb).alias(f"recharge_amount_{lb}d"),
        _ratio(wsum(F.col("topup_amount"), 0, lb), wsum(F.col("topup_count"), 0, lb)).alias(
            f"avg_recharge_amount_{lb}d"
        ),
        wsum(F.col("bill_amount"), 0, lb).alias(f"bill_amount_{lb}d"),
        wsum(F.col("payment_amount"), 0, lb).alias(f"payment_amount_{lb}d"),
        _ratio(wsum(F.col("payment_amount"), 0, lb), wsum(F.col("bill_amount"), 0, lb)).alias(f"payment_ratio_{lb}d"),
        _days_since(d, F.col("bill_count") > 0).alias("days_since_last_bill"),
        _days_since(d, F.col("payment_count") > 0).alias("days_since_last_payment"),
        # care
        wsum(F.col("care_contacts"), 0, lb).alias(f"care_contacts_{lb}d"),
        wsum(F.col("complaints"), 0, lb).alias(f"complaints_{lb}d"),
        wsum(F.col("unresolved_contacts"), 0, lb).alias(f"unresolved_contacts_{lb}d"),
        wsum(F.col("escalated_contacts"), 0, lb).alias(f"escalations_{lb}d"),
        _ratio(wsum(F.col("fcr_contacts"), 0, lb), wsum(F.col("care_contacts"), 0, lb)).alias(f"fcr_rate_{lb}d"),
        _days_since(d, F.col("complaints") > 0).alias("days_since_last_complaint"),
        F.max_by(F.col("csat_last"), F.when(F.col("csat_last").isNotNull(), F.col("date"))).alias("last_csat"),
        F.max_by(F.col("nps_last"), F.when(F.col("nps_last").isNotNull(), F.col("date"))).alias("last_nps"),
    ]
    return lookback_df.groupBy("subscriber_key").agg(*aggs)


def network_features(network_df: DataFrame, d: dt.date, params: FeatureParams) -> DataFrame:
    """silver.network_cells → per cell quality over the network window ending at ``d``:
    averages of dropped-call rate, throughput, availability and the number of poor days."""
    poor = (F.col("dropped_call_rate") > params.poor_cell_dropped_call_rate) | (
        F.col("availability_pct") < params.poor_cell_availability_pct
    )
    w = params.network_window_days
    return (
        network_df.where(in_window("date", d, w))
        .groupBy(F.col("cell_id").alias("home_cell_id"))
        .agg(
            F.avg("dropped_call_rate").alias(f"home_cell_dropped_call_rate_{w}d"),
            F.avg("avg_throughput_mbps").alias(f"home_cell_throughput_mbps_{w}d"),
            F.avg("availability_pct").alias(f"home_cell_availability_pct_{w}d"),
            F.sum(F.when(poor, 1).otherwise(0)).cast("long").alias(f"home_cell_poor_days_{w}d"),
        )
    )


def nps_category(score: Column) -> Column:
    return (
        F.when(score >= NPS_PROMOTER_MIN, "promoter")
        .when(score > NPS_DETRACTOR_MAX, "passive")
        .when(score.isNotNull(), "detractor")
    )


def features_at(
    daily_df: DataFrame,
    history_df: DataFrame,
    network_df: DataFrame,
    d: dt.date,
    params: FeatureParams,
    observed_from: dt.date | None = None,
) -> DataFrame:
    """The feature snapshot at ``d``: profile × activity × home-cell network, one row per line
    in the base on ``d``. ``history_df`` is silver.subscribers (the SCD2 history).

    ``observed_from`` is the first day the data covers: a trend or slope whose span starts
    before it is unknown (null), not computed as if the unobserved days were silent — 17 days of
    data once made most of a base look "growing" against a 30-day base window of zeros."""
    profile_df = profile(subscribers_as_of(history_df, d), d)
    activity_df = activity_features(daily_df, d, params)
    unobserved: list[str] = []
    if observed_from is not None:
        trend_start = d - dt.timedelta(days=params.trend_recent_days + params.trend_base_days - 1)
        slope_start = d - dt.timedelta(days=params.slope_days - 1)
        unobserved = [
            c
            for c in activity_df.columns
            if ("_trend_" in c and trend_start < observed_from) or ("_slope_" in c and slope_start < observed_from)
        ]
        activity_df = activity_df.select(
            *[F.lit(None).cast("double").alias(c) if c in unobserved else F.col(c) for c in activity_df.columns]
        )
    network_cells_df = network_features(network_df, d, params)
    joined_df = profile_df.join(activity_df, on="subscriber_key", how="left").join(
        network_cells_df, on="home_cell_id", how="left"
    )
    # Windowed sums of a line without activity rows are zero, not unknown.
    zero_when_silent = [
        c
        for c in activity_df.columns
        if c != "subscriber_key"
        and not c.startswith(("days_since", "last_", "avg_", "fcr_rate", "payment_ratio"))
        and "_share_" not in c
        and "_trend_" not in c
        and "_per_active_day_" not in c
        and c not in unobserved
    ]
    filled_df = joined_df.fillna(0, subset=zero_when_silent)
    network_cols = [c for c in network_cells_df.columns if c != "home_cell_id"]
    activity_cols = [c for c in activity_df.columns if c != "subscriber_key"]
    return filled_df.select(
        "subscriber_key",
        lit_date(d).alias("snapshot_date"),
        *PROFILE_COLUMNS,
        "is_b2b",
        "tenure_days",
        *activity_cols,
        nps_category(F.col("last_nps")).alias("nps_category"),
        *network_cols,
    )
