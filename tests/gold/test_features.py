"""gold.features at one snapshot, every family computed by hand on a few hand-built lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from builders import daily_rows, day, history_rows, silver_rows
from crmlake.gold.features import FeatureParams, features_at
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

S = 100  # the snapshot is day(100); a row at day(S - k) has age k


def history(spark):
    return history_rows(
        spark,
        [
            # A: tariff changed on day 95 (valid on the snapshot) and again on day 101 (after it).
            dict(subscriber_key="A", valid_from=day(50), valid_to=day(95), tariff="OLD", activation_date=day(-10)),
            dict(subscriber_key="A", valid_from=day(95), valid_to=day(101), tariff="PRE_M", region="R2",
                 activation_date=day(-10)),
            dict(subscriber_key="A", valid_from=day(101), tariff="FUTURE", region="R3", activation_date=day(-10)),
            # B: deactivated the day before the snapshot: not in the base.
            dict(subscriber_key="B", valid_from=day(50), plan_type="postpaid", status="deactivated",
                 deactivation_date=day(99), churn_reason="price"),
            # C: activated after the snapshot: not in the base.
            dict(subscriber_key="C", valid_from=day(101), activation_date=day(101)),
            # D: a B2B postpaid line with no activity at all.
            dict(subscriber_key="D", valid_from=day(50), plan_type="postpaid", tariff="POST_S", customer_type="B2B",
                 home_cell_id="C9", is_marketing_consent=False),
        ],
    )  # fmt: skip


def activity(spark):
    def a(k, **values):
        return dict(subscriber_key="A", date=day(S - k), **values)

    return daily_rows(
        spark,
        [
            a(0, events=10, out_events=5, revenue_usage=10, voice_out_min=3.0, voice_in_min=1.0, data_mb_up=1.0,
              data_mb_down=4.0, voice_out_calls=2, sms_out=2, on_net_out=3, off_net_out=1, distinct_cells=2,
              has_revenue_activity=True),
            a(6, events=4, revenue_usage=6, topup_count=1, topup_amount=20, has_revenue_activity=True,
              complaints=1, care_contacts=1, unresolved_contacts=1, distinct_cells=1, csat_last=2),
            a(7, events=2, revenue_usage=4, data_mb_down=10.0, distinct_cells=1, care_contacts=1, fcr_contacts=1,
              csat_last=5, nps_last=10),
            a(29, events=1, revenue_usage=1, distinct_cells=1),
            a(30, events=3, revenue_usage=3, care_contacts=1, escalated_contacts=1, nps_last=3),
            a(89, events=5, topup_count=2, topup_amount=30, has_revenue_activity=True),
            a(90, events=100, revenue_usage=100, has_revenue_activity=True),  # outside the 90-day lookback
            a(-1, events=1000, revenue_usage=1000, complaints=5, has_revenue_activity=True),  # after the snapshot
        ],
    )  # fmt: skip


def network(spark):
    def cell(k, dcr, thr, avail, cell_id="C1"):
        return dict(cell_id=cell_id, date=day(S - k), dropped_call_rate=dcr, avg_throughput_mbps=thr,
                    availability_pct=avail)  # fmt: skip

    return silver_rows(
        spark,
        "network_cells",
        [
            cell(0, 0.01, 20.0, 99.0),
            cell(1, 0.05, 10.0, 100.0),  # poor: dropped calls
            cell(29, 0.0, 30.0, 97.0),  # poor: availability
            cell(30, 0.5, 1.0, 50.0),  # outside the 30-day window
            cell(-1, 0.9, 1.0, 10.0),  # after the snapshot
            cell(0, 0.9, 1.0, 10.0, cell_id="C2"),  # not A's home cell
        ],
    )


SLOPE_DENOMINATOR = 30 * (30 * 30 - 1) / 12  # Σ (t − t̄)² for t = 0..29


def expected_rows():
    profile = dict(customer_type="B2C", city="City1", age_band="25-34", gender="F", device_type="smartphone",
                   device_brand="Brand", status="active", is_do_not_contact=False)  # fmt: skip
    a = dict(
        profile, subscriber_key="A", plan_type="prepaid", tariff="PRE_M", region="R2", home_cell_id="C1",
        is_marketing_consent=True, is_b2b=False, tenure_days=110,
        revenue_7d=16, voice_min_7d=4.0, voice_out_calls_7d=2, sms_out_7d=2, data_mb_7d=5.0, events_7d=14,
        active_days_7d=2,
        revenue_30d=21, voice_min_30d=4.0, voice_out_calls_30d=2, sms_out_30d=2, data_mb_30d=15.0, events_30d=17,
        active_days_30d=4,
        revenue_90d=24, voice_min_90d=4.0, voice_out_calls_90d=2, sms_out_90d=2, data_mb_90d=15.0, events_90d=25,
        active_days_90d=6,
        revenue_trend_7v30=(16 / 7) / (8 / 30), revenue_slope_30d=(516 - 14.5 * 21) / SLOPE_DENOMINATOR,
        voice_min_trend_7v30=None, voice_min_slope_30d=(116 - 14.5 * 4) / SLOPE_DENOMINATOR,
        data_mb_trend_7v30=(5 / 7) / (10 / 30), data_mb_slope_30d=(365 - 14.5 * 15) / SLOPE_DENOMINATOR,
        events_trend_7v30=(14 / 7) / (6 / 30), events_slope_30d=(426 - 14.5 * 17) / SLOPE_DENOMINATOR,
        on_net_share_30d=3 / 4, off_net_share_30d=1 / 4, intl_share_30d=0.0, roaming_share_30d=0.0,
        distinct_cells_per_active_day_30d=5 / 4,
        days_since_last_activity=0, days_since_last_revenue_activity=0, days_since_last_recharge=6,
        recharge_count_30d=1, recharge_count_90d=3, recharge_amount_90d=50, avg_recharge_amount_90d=50 / 3,
        bill_amount_90d=0, payment_amount_90d=0, payment_ratio_90d=None, days_since_last_bill=None,
        days_since_last_payment=None,
        care_contacts_30d=2, care_contacts_90d=3, complaints_90d=1, unresolved_contacts_90d=1, escalations_90d=1,
        fcr_rate_90d=1 / 3, days_since_last_complaint=6, last_csat=2, last_nps=10, nps_category="promoter",
        home_cell_dropped_call_rate_30d=0.02, home_cell_throughput_mbps_30d=20.0,
        home_cell_availability_pct_30d=296 / 3, home_cell_poor_days_30d=2,
    )  # fmt: skip
    zeros = {k: 0 for k, v in a.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    nulls = [k for k in a if k.startswith(("days_since", "last_", "avg_", "fcr_rate", "payment_ratio", "home_cell_"))]
    nulls += [k for k in a if "_share_" in k or "_trend_" in k or "_per_active_day_" in k]
    d = dict(a, **zeros)
    d.update({k: None for k in nulls})
    d.update(
        subscriber_key="D", plan_type="postpaid", tariff="POST_S",
        region="R1", home_cell_id="C9", customer_type="B2B", is_b2b=True, is_marketing_consent=False,
        tenure_days=(day(S) - dt.date(2025, 1, 1)).days, nps_category=None,
    )  # fmt: skip
    return [a, d]


def typed(value, data_type):
    """A hand-written number in the column's type (the value itself is not changed)."""
    if value is None:
        return None
    if isinstance(data_type, T.DecimalType):
        return Decimal(value).quantize(Decimal("0.01"))
    if isinstance(data_type, T.DoubleType):
        return float(value)
    return value


def test_features_at_snapshot_by_hand(spark):
    result = features_at(activity(spark), history(spark), network(spark), day(S), FeatureParams())
    expected = []
    for row in expected_rows():
        row = dict(row, snapshot_date=day(S))
        missing = set(result.columns) - set(row)
        assert not missing, f"expected values missing for {sorted(missing)}"
        expected.append(tuple(typed(row[f.name], f.dataType) for f in result.schema.fields))
    assertDataFrameEqual(result, spark.createDataFrame(expected, result.schema), rtol=1e-9)


def test_trends_whose_span_the_data_does_not_cover_are_unknown(spark):
    """Data from 20 days before the snapshot: the 7-against-30-day trends and 30-day slopes
    would compare against days never observed, so they are null; everything else is unchanged."""
    params = FeatureParams()
    full = features_at(activity(spark), history(spark), network(spark), day(S), params)
    short = features_at(activity(spark), history(spark), network(spark), day(S), params, day(S) - dt.timedelta(days=20))
    unknown = [c for c in full.columns if "_trend_" in c or "_slope_" in c]
    assert len(unknown) == 8
    expected = full.select(*[F.lit(None).cast("double").alias(c) if c in unknown else F.col(c) for c in full.columns])
    assertDataFrameEqual(short, expected, rtol=1e-9)
    covered = features_at(
        activity(spark), history(spark), network(spark), day(S), params, day(S) - dt.timedelta(days=36)
    )
    assertDataFrameEqual(covered, full, rtol=1e-9)


def test_features_never_read_past_the_snapshot(spark):
    """Changing every row dated after the snapshot (activity, network, master history) changes no
    feature; changing a row on the snapshot day does."""
    params = FeatureParams()
    base = features_at(activity(spark), history(spark), network(spark), day(S), params)

    future_activity = daily_rows(
        spark, [dict(subscriber_key=k, date=day(S + n), events=999, revenue_usage=999, complaints=9,
                     has_revenue_activity=True, csat_last=1) for k in "ABCD" for n in (1, 2, 40)]
    )  # fmt: skip
    future_master = history_rows(
        spark,
        [dict(subscriber_key="D", valid_from=day(S + 1), plan_type="prepaid", status="deactivated",
              deactivation_date=day(S + 1)),
         dict(subscriber_key="E", valid_from=day(S + 1), activation_date=day(S - 5))],
    )  # fmt: skip
    future_network = silver_rows(
        spark, "network_cells", [dict(cell_id="C1", date=day(S + 1), dropped_call_rate=1.0, availability_pct=0.0)]
    )
    changed = features_at(
        activity(spark).unionByName(future_activity),
        history(spark).unionByName(future_master),
        network(spark).unionByName(future_network),
        day(S),
        params,
    )
    assertDataFrameEqual(changed, base)

    on_the_day = daily_rows(spark, [dict(subscriber_key="D", date=day(S), events=1)])
    moved = features_at(activity(spark).unionByName(on_the_day), history(spark), network(spark), day(S), params)
    assert moved.where("subscriber_key = 'D'").first()["events_7d"] == 1
