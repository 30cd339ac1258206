"""gold.kpis and gold.cohort_retention on a five-line operator, values computed by hand.

The day is day(10) = 2026-03-11; the month to date is 2026-03-01..2026-03-11. The master is
known from day(-5) = 2026-02-24, so the month has an opening base.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator

from builders import at, daily_rows, day, history_rows, silver_rows
from crmlake.gold.kpis import KpiParams, cohort_retention, kpi_dimensions, kpis_for
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

D = day(10)
MONTH = day(0)


def history(spark):
    return history_rows(
        spark,
        [
            dict(subscriber_key="K1", valid_from=day(-5), region="R1"),
            dict(subscriber_key="K2", valid_from=day(-5), valid_to=day(10), region="R2", plan_type="postpaid",
                 tariff="POST_S", activation_date=dt.date(2025, 6, 1)),
            dict(subscriber_key="K2", valid_from=day(10), region="R2", plan_type="postpaid", tariff="POST_S",
                 activation_date=dt.date(2025, 6, 1), status="deactivated", deactivation_date=day(10),
                 churn_reason="port_out"),
            dict(subscriber_key="K3", valid_from=day(10), region="R1", activation_date=day(10)),
            dict(subscriber_key="K4", valid_from=day(3), region="R2", activation_date=day(3)),
            dict(subscriber_key="K5", valid_from=day(-5), valid_to=day(5), region="R1"),
            dict(subscriber_key="K5", valid_from=day(5), region="R1", status="deactivated", deactivation_date=day(5),
                 churn_reason="price"),
        ],
    )  # fmt: skip


def activity(spark):
    return daily_rows(
        spark,
        [
            dict(subscriber_key="K1", date=D, revenue_usage=10, voice_out_min=6.0, data_mb_down=2.0, topup_count=1,
                 topup_amount=50, csat_answers=2, csat_satisfied=1),
            dict(subscriber_key="K2", date=D, bill_amount=30),
            dict(subscriber_key="K3", date=D, revenue_usage=5, nps_answers=1, nps_promoters=1),
            dict(subscriber_key="K4", date=D, nps_answers=2, nps_promoters=1, nps_detractors=1),
            dict(subscriber_key="K5", date=day(2), revenue_usage=8),
            dict(subscriber_key="K4", date=day(4), revenue_usage=2),
        ],
    )  # fmt: skip


def care(spark):
    return silver_rows(
        spark,
        "care_interactions",
        [
            dict(subscriber_key="K1", started_at=at(10, 9), channel="call_centre", reason="billing", handle_time_s=100),
            dict(subscriber_key="K1", started_at=at(10, 10), channel="app", reason="data_speed",
                 is_first_contact_resolution=False, escalation_level=1, handle_time_s=300),
            dict(subscriber_key="K4", started_at=at(10, 11), channel="store", reason="billing", handle_time_s=200),
        ],
    )  # fmt: skip


def kpi(period, dimension, value_of, name, value, num, den=None, breakdown=None):
    start = D if period == "day" else MONTH
    return (period, start, D, period == "day", dimension, value_of, name, breakdown, value, num, den)


EXPECTED = [
    # the day, overall: opening K1 K2 K4; closing K1 K3 K4; K3 added; K2 churned
    kpi("day", "overall", "all", "active_base", 3.0, 3.0),
    kpi("day", "overall", "all", "opening_base", 3.0, 3.0),
    kpi("day", "overall", "all", "gross_adds", 1.0, 1.0),
    kpi("day", "overall", "all", "churners", 1.0, 1.0),
    kpi("day", "overall", "all", "churn_rate", 1 / 3, 1.0, 3.0),
    kpi("day", "overall", "all", "revenue", 45.0, 45.0),
    kpi("day", "overall", "all", "arpu", 15.0, 45.0, 3.0),
    kpi("day", "overall", "all", "mou", 2.0, 6.0, 3.0),
    kpi("day", "overall", "all", "data_mb_per_subscriber", 2 / 3, 2.0, 3.0),
    kpi("day", "overall", "all", "recharge_count", 1.0, 1.0),
    kpi("day", "overall", "all", "recharge_amount", 50.0, 50.0),
    kpi("day", "overall", "all", "csat", 0.5, 1.0, 2.0),
    kpi("day", "overall", "all", "nps", 100 / 3, 1.0, 3.0),
    kpi("day", "overall", "all", "care_contacts", 3.0, 3.0),
    kpi("day", "overall", "all", "fcr_rate", 2 / 3, 2.0, 3.0),
    kpi("day", "overall", "all", "escalation_rate", 1 / 3, 1.0, 3.0),
    kpi("day", "overall", "all", "avg_handle_time_s", 200.0, 600.0, 3.0),
    # the day by region: R1 opening K1, closing K1 K3; R2 opening K2 K4, closing K4
    kpi("day", "region", "R1", "churn_rate", 0.0, 0.0, 1.0),
    kpi("day", "region", "R1", "arpu", 10.0, 15.0, 1.5),
    kpi("day", "region", "R2", "churn_rate", 0.5, 1.0, 2.0),
    kpi("day", "region", "R2", "arpu", 20.0, 30.0, 1.5),
    # mixes of the day's three contacts
    kpi("day", "overall", "all", "channel_share", 1 / 3, 1.0, 3.0, "app"),
    kpi("day", "overall", "all", "channel_share", 1 / 3, 1.0, 3.0, "call_centre"),
    kpi("day", "overall", "all", "channel_share", 1 / 3, 1.0, 3.0, "store"),
    kpi("day", "tenure_band", "12-24m", "contact_reason_share", 0.5, 1.0, 2.0, "billing"),
    kpi("day", "tenure_band", "12-24m", "contact_reason_share", 0.5, 1.0, 2.0, "data_speed"),
    kpi("day", "tenure_band", "0-3m", "contact_reason_share", 1.0, 1.0, 1.0, "billing"),
    # the month to date: opening (on 2026-02-28) K1 K2 K5; added K3 K4; churned K2 K5
    kpi("month", "overall", "all", "opening_base", 3.0, 3.0),
    kpi("month", "overall", "all", "gross_adds", 2.0, 2.0),
    kpi("month", "overall", "all", "churners", 2.0, 2.0),
    kpi("month", "overall", "all", "churn_rate", 2 / 3, 2.0, 3.0),
    kpi("month", "overall", "all", "revenue", 55.0, 55.0),
    kpi("month", "overall", "all", "arpu", 55 / 3, 55.0, 3.0),
]


def test_kpis_by_hand(spark):
    result = kpis_for(history(spark), activity(spark), care(spark), D, KpiParams())
    expected = spark.createDataFrame(EXPECTED, result.schema)
    chosen = expected.select("period", "dimension", "dimension_value", "kpi", "breakdown")
    same = [F.col(f"r.{c}").eqNullSafe(F.col(f"c.{c}")) for c in chosen.columns]
    picked = result.alias("r").join(chosen.alias("c"), on=functools.reduce(operator.and_, same), how="left_semi")
    assertDataFrameEqual(picked, expected, rtol=1e-9)
    # Every dimension value shows up, and nothing else does.
    dims = {(r["dimension"], r["dimension_value"]) for r in result.select("dimension", "dimension_value").collect()}
    assert dims == {
        ("overall", "all"),
        ("region", "R1"),
        ("region", "R2"),
        ("plan_type", "prepaid"),
        ("plan_type", "postpaid"),
        ("tariff", "PRE_S"),
        ("tariff", "POST_S"),
        ("tenure_band", "12-24m"),
        ("tenure_band", "0-3m"),
    }


def test_cohort_retention_by_hand(spark):
    history = history_rows(
        spark,
        [
            dict(subscriber_key="OLD", valid_from=day(-5)),  # activated 2025: outside the 3 cohorts kept
            dict(subscriber_key="J1", valid_from=day(-5), activation_date=dt.date(2026, 1, 15), status="deactivated",
                 deactivation_date=dt.date(2026, 2, 10)),
            dict(subscriber_key="J2", valid_from=day(-5), activation_date=dt.date(2026, 1, 20)),
            dict(subscriber_key="M1", valid_from=day(3), activation_date=day(3)),
            dict(subscriber_key="M2", valid_from=day(10), activation_date=day(10)),
            dict(subscriber_key="M3", valid_from=day(11), activation_date=day(11)),  # after the date
        ],
    )  # fmt: skip
    result = cohort_retention(history, D, cohort_months=3)
    jan = dt.date(2026, 1, 1)
    expected = spark.createDataFrame(
        [
            (D, jan, 0, 2, 2, 1.0),
            (D, jan, 1, 2, 1, 0.5),  # J1 left on 10 February
            (D, jan, 2, 2, 1, 0.5),
            (D, MONTH, 0, 2, 2, 1.0),
        ],
        result.schema,
    )
    assertDataFrameEqual(result, expected)


def test_a_base_never_observed_is_unknown_not_zero(spark):
    """The master is first known on the month's first day (as in a demo whose first extract opens
    the month): the month's opening base is unknown, so is every KPI built on it, while what was
    observed (closing base, adds, churners, revenue, care) is still reported. The day's opening
    base (the day before D) was observed."""
    first_known = history(spark).withColumn("valid_from", F.greatest("valid_from", F.lit(MONTH)))
    result = kpis_for(first_known, activity(spark), care(spark), D, KpiParams()).where("dimension = 'overall'")
    on_base = ["opening_base", "churn_rate", "arpu", "mou", "data_mb_per_subscriber"]
    month = result.where("period = 'month' AND breakdown IS NULL")
    expected = [
        ("opening_base", None, None, None),
        ("churn_rate", None, 2.0, None),
        ("arpu", None, 55.0, None),
        ("mou", None, 6.0, None),
        ("data_mb_per_subscriber", None, 2.0, None),
        ("active_base", 3.0, 3.0, None),
        ("churners", 2.0, 2.0, None),
        ("revenue", 55.0, 55.0, None),
    ]
    assertDataFrameEqual(
        month.where(F.col("kpi").isin([e[0] for e in expected])).select("kpi", "value", "numerator", "denominator"),
        spark.createDataFrame(expected, "kpi string, value double, numerator double, denominator double"),
        rtol=1e-9,
    )
    day_values = {r["kpi"]: r["value"] for r in result.where("period = 'day'").collect() if r["breakdown"] is None}
    assert day_values["opening_base"] == 3.0 and day_values["arpu"] == 15.0
    assert all(day_values[k] is not None for k in on_base)


def test_kpis_by_segment_take_the_snapshot_and_count_the_rest_as_unknown(spark):
    """Segment dimensions come from the gold.segments snapshot passed in: K1 mature, K4 new;
    K2 and K3 are not in it (K3 joined after it) and count under "unknown", never dropped.
    Without a snapshot the segment dimensions are left out."""
    segments = spark.createDataFrame(
        [("K1", "mature"), ("K4", "new"), ("GONE", "declining")], "subscriber_key string, lifecycle_stage string"
    )
    params = KpiParams(dimensions=("lifecycle_stage",))
    result = (
        kpis_for(history(spark), activity(spark), care(spark), D, params, segments)
        .where("period = 'day' AND dimension = 'lifecycle_stage'")
        .select("dimension_value", "kpi", "breakdown", "value")
        .cache()
    )
    by_stage = result.where("kpi IN ('active_base', 'revenue', 'churners')").drop("breakdown")
    # Day: closing base K1 (mature), K3 (unknown), K4 (new); revenue K1 10, K2 30 + K3 5 unknown; K2 churned.
    expected = [
        ("mature", "active_base", 1.0), ("mature", "revenue", 10.0), ("mature", "churners", 0.0),
        ("new", "active_base", 1.0), ("new", "revenue", 0.0), ("new", "churners", 0.0),
        ("unknown", "active_base", 1.0), ("unknown", "revenue", 35.0), ("unknown", "churners", 1.0),
    ]  # fmt: skip
    assertDataFrameEqual(by_stage, spark.createDataFrame(expected, by_stage.schema), rtol=1e-9)
    channel = result.where("kpi = 'channel_share'")
    assert {(r["dimension_value"], r["breakdown"]) for r in channel.collect()} == {
        ("mature", "call_centre"),
        ("mature", "app"),
        ("new", "store"),
    }
    result.unpersist()
    assert kpi_dimensions(("region", "lifecycle_stage"), segments) == ("region", "lifecycle_stage")
    assert kpi_dimensions(("region", "lifecycle_stage"), None) == ("region",)


def test_kpis_without_gold_segments_say_why(spark, tmp_path):
    from crmlake.gold.segments_run import segments_as_of

    found, reason = segments_as_of(spark, str(tmp_path), D, ["lifecycle_stage"])
    assert found is None and reason == f"gold.segments has no snapshot on or before {D}"
