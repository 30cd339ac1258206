"""Segments: every rule-based scheme, value tiers, RFM, lifecycle, cluster naming, k selection,
profiles and migration on hand-built snapshots, computed by hand; and the segment job end to end
(fit, reuse, refit) over a small gold.features table."""

from __future__ import annotations

import datetime as dt
import functools
import json
import typing
import uuid
from decimal import Decimal

import pytest
from builders import daily_rows, day, history_rows, silver_rows
from crmlake.catalog import tables
from crmlake.core.config import load_config
from crmlake.core.errors import ConfigError
from crmlake.core.settings import KPI_DIMENSIONS, SEGMENT_SCHEMES, SegmentsConfig
from crmlake.gold.features import FeatureParams, features_at
from crmlake.gold.kpis import SEGMENT_DIMENSIONS
from crmlake.gold.segments import (
    PROFILE_MEANS,
    RULE_INPUTS,
    SCHEMES,
    ClusterParams,
    cluster_differences,
    cluster_names,
    fit_clusters,
    migration,
    profiles,
    rule_segments,
    top_differences,
)
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

D = day(60)  # 2026-04-30

PARAMS = SegmentsConfig(
    city_tiers={"tier_1": ("Tehran",), "tier_2": ("Isfahan", "Mashhad")},
    dormant_days=30,
    behaviour=dict(data_heavy_mb_30d=1000.0, voice_heavy_min_30d=300.0, roamer_share_30d=0.05, light_events_30d=60),
    lifecycle=dict(
        new_tenure_days=90,
        growing_tenure_days=365,
        growing_trend=1.25,
        declining_trend=0.8,
        at_risk_trend=0.5,
        at_risk_inactive_days=10,
    ),
)


@functools.cache
def features_schema(spark) -> T.StructType:
    """gold.features' real schema, from the features transformation over empty inputs (once:
    analysing that plan takes a second or two)."""
    empty = features_at(
        daily_rows(spark, []), history_rows(spark, []), silver_rows(spark, "network_cells", []), D, FeatureParams()
    )
    return empty.schema


# A regular, active, mature B2C subscriber: each test row states only what differs.
FEATURE_DEFAULTS = dict(
    snapshot_date=D,
    plan_type="prepaid",
    tariff="PRE_BASIC",
    customer_type="B2C",
    region="Tehran",
    city="Tehran",
    age_band="25-34",
    gender="F",
    status="active",
    is_b2b=False,
    tenure_days=1000,
    revenue_30d=100,
    data_mb_30d=500.0,
    voice_min_30d=100.0,
    sms_out_30d=10,
    events_30d=300,
    active_days_30d=25,
    roaming_share_30d=0.0,
    events_trend_7v30=1.0,
    days_since_last_activity=0,
    days_since_last_recharge=5,
    recharge_count_90d=3,
    recharge_amount_90d=300,
    payment_amount_90d=0,
)


def features_rows(spark, rows: list[dict]):
    schema = features_schema(spark)
    full = []
    for row in rows:
        values = {**FEATURE_DEFAULTS, **row}
        record = []
        for f in schema.fields:
            v = values.get(f.name)
            if v is None and not f.nullable:  # a windowed sum: zero when silent
                v = 0
            if v is not None and isinstance(f.dataType, T.DecimalType):
                v = Decimal(str(v)).quantize(Decimal("0.01"))
            elif v is not None and isinstance(f.dataType, T.DoubleType):
                v = float(v)
            record.append(v)
        full.append(tuple(record))
    return spark.createDataFrame(full, schema)


def test_config_schemes_match_the_segments_module():
    """Config may name a scheme only if gold.segments has it; a KPI dimension is a master column
    or a segment scheme the kpis run joins."""
    from crmlake.contracts.entities import ENTITIES, business_columns

    assert typing.get_args(SEGMENT_SCHEMES) == SCHEMES
    assert set(SEGMENT_DIMENSIONS) <= set(typing.get_args(KPI_DIMENSIONS)) & set(SCHEMES)
    master = set(business_columns(ENTITIES["subscribers"]))
    assert set(typing.get_args(KPI_DIMENSIONS)) - set(SEGMENT_DIMENSIONS) <= master
    assert not set(SEGMENT_DIMENSIONS) & master


def test_bad_segment_thresholds_are_named_with_their_key(tmp_path):
    bad = tmp_path / "seg.yaml"
    bad.write_text(
        "segments:\n"
        "  value_tier_cuts: [0.8, 0.5]\n"
        "  lifecycle: {declining_trend: 0.4}\n"
        "  clusters: {k_min: 6, k_max: 4}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config([str(bad)])
    message = str(err.value)
    assert "key 'segments.value_tier_cuts': must be strictly increasing, got [0.8, 0.5]" in message
    assert "key 'segments.lifecycle': trends must be ordered" in message
    assert "key 'segments.clusters': k_min (6) must not exceed k_max (4)" in message
    assert str(bad) in message
    # Rules across the section's keys are checked once its keys are valid.
    bad.write_text("segments:\n  city_tiers: {tier_1: [Tehran], tier_2: [Tehran]}\n  value_tier_labels: [a, b]\n")
    with pytest.raises(ConfigError) as err:
        load_config([str(bad)])
    assert "'Tehran' is in both 'tier_1' and 'tier_2'" in str(err.value)
    assert "value_tier_labels needs one label more than value_tier_cuts: 3 cuts, 2 labels" in str(err.value)


RULE_COLUMNS = ["subscriber_key", "city_tier", "demographic", "behaviour", "lifecycle_stage"]
TRAITS = ["is_dormant", "is_roamer", "is_data_heavy", "is_voice_heavy", "is_light"]


def test_rule_based_schemes_by_hand(spark):
    rows = [
        # geography and demographics
        dict(subscriber_key="T1"),
        dict(subscriber_key="T2", city="Kashan", customer_type="B2B", age_band=None),
        dict(subscriber_key="T3", city=None, gender=None),
        dict(subscriber_key="T4", city="Mashhad", age_band=None),
        # behaviour: the first trait that holds wins
        dict(subscriber_key="B1", days_since_last_activity=None, data_mb_30d=5000.0, tenure_days=10),  # never active
        dict(subscriber_key="B2", days_since_last_activity=30),  # exactly dormant_days
        dict(subscriber_key="B3", days_since_last_activity=29, roaming_share_30d=0.05, data_mb_30d=5000.0),
        dict(subscriber_key="B4", roaming_share_30d=None, data_mb_30d=1000.0, voice_min_30d=300.0),  # both heavy
        dict(subscriber_key="B5", data_mb_30d=999.9, voice_min_30d=300.0),
        dict(subscriber_key="B6", events_30d=59),
        dict(subscriber_key="B7", events_30d=60, roaming_share_30d=0.049),
        # lifecycle: dormant > new > at_risk > declining > growing > mature
        dict(subscriber_key="L1", tenure_days=89, events_trend_7v30=0.1),
        dict(subscriber_key="L2", tenure_days=90, days_since_last_activity=10),
        dict(subscriber_key="L3", events_trend_7v30=0.49),
        dict(subscriber_key="L4", events_trend_7v30=0.5),
        dict(subscriber_key="L5", events_trend_7v30=0.8, tenure_days=200),
        dict(subscriber_key="L6", events_trend_7v30=1.25),
        dict(subscriber_key="L7", events_trend_7v30=None, days_since_last_activity=9),  # no base: neither way
        dict(subscriber_key="L8", events_trend_7v30=None, days_since_last_recharge=None, recharge_count_90d=0),
    ]
    result = rule_segments(features_rows(spark, rows), PARAMS).select(*RULE_COLUMNS, *TRAITS)
    no = (False,) * 5
    expected = [
        ("T1", "tier_1", "B2C 25-34 F", "regular", "mature", *no),
        ("T2", "other", "B2B", "regular", "mature", *no),
        ("T3", "unknown", "B2C 25-34 unknown", "regular", "mature", *no),
        ("T4", "tier_2", "B2C unknown F", "regular", "mature", *no),
        ("B1", "tier_1", "B2C 25-34 F", "dormant", "dormant", True, False, True, False, False),
        ("B2", "tier_1", "B2C 25-34 F", "dormant", "dormant", True, False, False, False, False),
        ("B3", "tier_1", "B2C 25-34 F", "roamer", "at_risk", False, True, True, False, False),
        ("B4", "tier_1", "B2C 25-34 F", "data_heavy", "mature", False, False, True, True, False),
        ("B5", "tier_1", "B2C 25-34 F", "voice_heavy", "mature", False, False, False, True, False),
        ("B6", "tier_1", "B2C 25-34 F", "light", "mature", False, False, False, False, True),
        ("B7", "tier_1", "B2C 25-34 F", "regular", "mature", *no),
        ("L1", "tier_1", "B2C 25-34 F", "regular", "new", *no),
        ("L2", "tier_1", "B2C 25-34 F", "regular", "at_risk", *no),
        ("L3", "tier_1", "B2C 25-34 F", "regular", "at_risk", *no),
        ("L4", "tier_1", "B2C 25-34 F", "regular", "declining", *no),
        ("L5", "tier_1", "B2C 25-34 F", "regular", "growing", *no),
        ("L6", "tier_1", "B2C 25-34 F", "regular", "growing", *no),
        ("L7", "tier_1", "B2C 25-34 F", "regular", "mature", *no),
        ("L8", "tier_1", "B2C 25-34 F", "regular", "mature", *no),
    ]
    assertDataFrameEqual(result, spark.createDataFrame(expected, result.schema))


def test_value_tiers_are_percentiles_of_the_snapshot(spark):
    """Revenue 1..20: the 50th, 80th and 95th percentiles are 10, 16 and 19; a value on a cut
    point falls in the lower tier. Doubling everyone's revenue changes no tier."""
    rows = [dict(subscriber_key=f"S{v:02d}", revenue_30d=v) for v in range(1, 21)]
    expected = [
        (f"S{v:02d}", "low" if v <= 10 else "mid" if v <= 16 else "high" if v <= 19 else "top") for v in range(1, 21)
    ]
    result = rule_segments(features_rows(spark, rows), PARAMS).select("subscriber_key", "value_tier")
    assertDataFrameEqual(result, spark.createDataFrame(expected, result.schema))
    doubled = [dict(subscriber_key=r["subscriber_key"], revenue_30d=2 * r["revenue_30d"]) for r in rows]
    result = rule_segments(features_rows(spark, doubled), PARAMS).select("subscriber_key", "value_tier")
    assertDataFrameEqual(result, spark.createDataFrame(expected, result.schema))


def test_rfm_scores_and_segments_by_hand(spark):
    """Ten subscribers in pairs, so that the quintile cut points fall between pairs; an eleventh
    never topped up nor paid. Recency quintiles are over the ten with a top-up or payment
    (days 1,1,3,3,...,9,9: the freshest pair scores 5); frequency 1,1,2,2,...,5,5 scores itself."""
    rows = [
        dict(subscriber_key=f"P{i}", days_since_last_recharge=days, recharge_count_90d=count,
             recharge_amount_90d=amount, payment_amount_90d=paid)
        for i, (days, count, amount, paid) in enumerate(
            [
                (1, 5, 500, 0), (1, 1, 10, 0),        # fresh: champion; fresh but one top-up: promising
                (3, 4, 400, 0), (3, 2, 20, 0),        # r4
                (5, 3, 300, 0), (5, 3, 30, 0),        # r3
                (7, 2, 200, 0), (7, 4, 0, 40),        # r2: a payment counts as monetary
                (9, 1, 100, 0), (9, 5, 50, 0),        # r1
            ]
        )
    ]  # fmt: skip
    never = dict(days_since_last_recharge=None, recharge_count_90d=0, recharge_amount_90d=0, payment_amount_90d=0)
    rows.append(dict(subscriber_key="NEVER", **never))
    result = rule_segments(features_rows(spark, rows), PARAMS).select(
        "subscriber_key", "r_score", "f_score", "m_score", "rfm_segment"
    )
    # Monetary of all eleven: 0, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500; the quintile cut
    # points are the 3rd, 5th, 7th and 9th values (rank ceil(p * 11)): 20, 40, 100, 300.
    expected = [
        ("P0", 5, 5, 5, "champions"),
        ("P1", 5, 1, 1, "promising"),
        ("P2", 4, 4, 5, "champions"),
        ("P3", 4, 2, 1, "promising"),  # 20 is on a cut point: the lower side
        ("P4", 3, 3, 4, "loyal"),
        ("P5", 3, 3, 2, "needs_attention"),
        ("P6", 2, 2, 4, "at_risk"),
        ("P7", 2, 4, 2, "at_risk"),
        ("P8", 1, 1, 3, "at_risk"),
        ("P9", 1, 5, 3, "at_risk"),
        ("NEVER", 1, 1, 1, "hibernating"),
    ]
    assertDataFrameEqual(result, spark.createDataFrame(expected, result.schema))


def test_cluster_differences_by_hand(spark):
    """Feature a: cluster 0 holds 0 and 2, cluster 1 holds 4 and 6: base mean 3, population
    standard deviation sqrt(5); b never varies (no difference)."""
    assigned = spark.createDataFrame(
        [(0, 0.0, 1.0), (0, 2.0, 1.0), (1, 4.0, 1.0), (1, 6.0, 1.0)], "cluster_id int, x_a double, x_b double"
    )
    result = cluster_differences(assigned, ["a", "b"])
    s5 = 5**0.5
    expected = spark.createDataFrame(
        [(0, "a", 2, -2 / s5), (0, "b", 2, None), (1, "a", 2, 2 / s5), (1, "b", 2, None)],
        "cluster_id int, feature string, subscribers long, difference double",
    )
    assertDataFrameEqual(result, expected, rtol=1e-9)


def test_clusters_are_named_by_their_largest_differences(spark):
    features = ["data_mb_30d", "tenure_days", "voice_min_30d", "revenue_30d"]
    differences = [
        # 0: the classic: much more data, much younger
        (0, "data_mb_30d", 1.8), (0, "tenure_days", -1.2), (0, "voice_min_30d", 0.3), (0, "revenue_30d", None),
        # 1 and 2 share their top two (light data, long tenure), the third tells them apart
        (1, "data_mb_30d", -0.9), (1, "tenure_days", 0.8), (1, "voice_min_30d", 0.5), (1, "revenue_30d", 0.1),
        (2, "data_mb_30d", -1.1), (2, "tenure_days", 0.7), (2, "voice_min_30d", -0.2), (2, "revenue_30d", 0.0),
        # 3 and 4 share their top three: the id tells them apart
        (3, "revenue_30d", 2.0), (3, "voice_min_30d", 1.0), (3, "tenure_days", 0.5), (3, "data_mb_30d", 0.0),
        (4, "revenue_30d", 3.0), (4, "voice_min_30d", 2.0), (4, "tenure_days", 1.0), (4, "data_mb_30d", 0.1),
        # 5: nothing varies
        (5, "data_mb_30d", None),
    ]  # fmt: skip
    diffs = spark.createDataFrame(
        [(c, f, 10, d) for c, f, d in differences],
        "cluster_id int, feature string, subscribers long, difference double",
    )
    result = cluster_names(diffs, features, name_words=2, shown=2)
    expected = spark.createDataFrame(
        [
            (0, "heavy data, young tenure", "data_mb_30d +1.80 sd; tenure_days -1.20 sd"),
            (1, "light data, long tenure, heavy voice", "data_mb_30d -0.90 sd; tenure_days +0.80 sd"),
            (2, "light data, long tenure, light voice", "data_mb_30d -1.10 sd; tenure_days +0.70 sd"),
            (3, "high spend, heavy voice, long tenure (3)", "revenue_30d +2.00 sd; voice_min_30d +1.00 sd"),
            (4, "high spend, heavy voice, long tenure (4)", "revenue_30d +3.00 sd; voice_min_30d +2.00 sd"),
            (5, "cluster 5", None),
        ],
        result.schema,
    )
    assertDataFrameEqual(result, expected)
    # Profiles show the same text without naming.
    assertDataFrameEqual(top_differences(diffs, features, shown=2), expected.drop("cluster_name"))


BLOB_PARAMS = ClusterParams(features=("f1", "f2"), log_features=(), k_min=2, k_max=4, seed=7, max_iter=5)


def test_k_is_chosen_by_silhouette_three_blobs_make_three(spark):
    """Three tight, far-apart blobs of 12 points each: k = 3 has the best silhouette, and each
    blob is one cluster."""
    points = [
        (f"{name}{i}", cx + (i % 4) * 0.1, cy + (i // 4) * 0.1)
        for name, cx, cy in (("a", 0.0, 0.0), ("b", 10.0, 0.0), ("c", 0.0, 10.0))
        for i in range(12)
    ]
    sample = spark.createDataFrame(points, "subscriber_key string, f1 double, f2 double")
    fit = fit_clusters(sample, BLOB_PARAMS, rows=len(points))
    assert fit.k == 3 and sorted(fit.silhouettes) == [2, 3, 4]
    assert fit.silhouettes[3] == max(fit.silhouettes.values()) and fit.silhouettes[3] > 0.9
    assigned = fit.model.transform(sample).select(F.substring("subscriber_key", 1, 1).alias("blob"), "cluster_id")
    per_blob = assigned.groupBy("blob").agg(F.countDistinct("cluster_id").alias("n")).where("n > 1")
    assert per_blob.isEmpty() and assigned.select("cluster_id").distinct().count() == 3


def test_identical_subscribers_do_not_break_the_choice_of_k(spark):
    """Twelve identical points: KMeans finds one cluster whatever k is asked for, silhouette is
    undefined there, and the fit still returns (every k scored as the worst) instead of failing."""
    sample = spark.createDataFrame(
        [(f"s{i}", 1.0, 1.0) for i in range(12)], "subscriber_key string, f1 double, f2 double"
    )
    fit = fit_clusters(sample, BLOB_PARAMS, rows=12)
    assert fit.k == 2 and all(v == float("-inf") for v in fit.silhouettes.values())
    assert fit.model.transform(sample).select("cluster_id").distinct().count() == 1


def test_profiles_by_hand(spark):
    segments_df = spark.createDataFrame(
        [
            ("A", D, "low", "heavy data, young tenure", Decimal("10.00")),
            ("B", D, "low", "light data, long tenure", Decimal("20.00")),
            ("C", D, "top", "light data, long tenure", Decimal("90.00")),
            ("E", D, None, "light data, long tenure", Decimal("0.00")),
        ],
        "subscriber_key string, snapshot_date date, value_tier string, cluster_name string, revenue_30d decimal(28,2)",
    )
    features_df = features_rows(
        spark,
        [
            dict(subscriber_key="A", data_mb_30d=3000.0, tenure_days=30, active_days_30d=30),
            dict(subscriber_key="B", data_mb_30d=100.0, tenure_days=2000, active_days_30d=20),
            dict(subscriber_key="C", data_mb_30d=200.0, tenure_days=1000, active_days_30d=10),
            dict(subscriber_key="E", data_mb_30d=0.0, tenure_days=3000, active_days_30d=0),
        ],
    )
    text = spark.createDataFrame(
        [("heavy data, young tenure", "data_mb_30d +1.50 sd")], "cluster_name string, top_differences string"
    )
    result = profiles(segments_df, features_df, text, schemes=("value_tier", "cluster_name")).select(
        "scheme", "segment", "subscribers", "share", "revenue_30d", "revenue_30d_per_subscriber",
        "mean_data_mb_30d", "mean_tenure_days", "mean_active_days_30d", "top_differences",
    )  # fmt: skip
    expected = spark.createDataFrame(
        [
            ("value_tier", "low", 2, 0.5, Decimal("30.00"), 15.0, 1550.0, 1015.0, 25.0, None),
            ("value_tier", "top", 1, 0.25, Decimal("90.00"), 90.0, 200.0, 1000.0, 10.0, None),
            ("value_tier", "unknown", 1, 0.25, Decimal("0.00"), 0.0, 0.0, 3000.0, 0.0, None),
            ("cluster_name", "heavy data, young tenure", 1, 0.25, Decimal("10.00"), 10.0, 3000.0, 30.0, 30.0,
             "data_mb_30d +1.50 sd"),
            ("cluster_name", "light data, long tenure", 3, 0.75, Decimal("110.00"), 110 / 3, 100.0, 2000.0, 10.0, None),
        ],
        result.schema,
    )  # fmt: skip
    assertDataFrameEqual(result, expected, rtol=1e-9)


def test_migration_by_hand(spark):
    """M1 mature → declining, M2 and M3 stay mature, M4 left the base, M5 joined it, M6 had no
    stage (unknown) and became at risk."""
    schema = "subscriber_key string, lifecycle_stage string, value_tier string, revenue_30d decimal(28,2)"
    before = spark.createDataFrame(
        [
            ("M1", "mature", "high", Decimal("50.00")),
            ("M2", "mature", "low", Decimal("10.00")),
            ("M3", "mature", "low", Decimal("12.00")),
            ("M4", "declining", "low", Decimal("3.00")),
            ("M6", None, "low", Decimal("1.00")),
        ],
        schema,
    )
    after = spark.createDataFrame(
        [
            ("M1", "declining", "mid", Decimal("30.00")),
            ("M2", "mature", "low", Decimal("11.00")),
            ("M3", "mature", "low", Decimal("13.00")),
            ("M5", "new", "low", Decimal("5.00")),
            ("M6", "at_risk", "low", Decimal("0.00")),
        ],
        schema,
    )
    result = migration(before, after, day(0), day(30), ["lifecycle_stage", "value_tier"])
    m = Decimal
    expected = spark.createDataFrame(
        [
            (day(30), day(0), "lifecycle_stage", "mature", "declining", 1, 1 / 3, m("50.00"), m("30.00")),
            (day(30), day(0), "lifecycle_stage", "mature", "mature", 2, 2 / 3, m("22.00"), m("24.00")),
            (day(30), day(0), "lifecycle_stage", "declining", "left_base", 1, 1.0, m("3.00"), m("0.00")),
            (day(30), day(0), "lifecycle_stage", "joined_base", "new", 1, 1.0, m("0.00"), m("5.00")),
            (day(30), day(0), "lifecycle_stage", "unknown", "at_risk", 1, 1.0, m("1.00"), m("0.00")),
            (day(30), day(0), "value_tier", "high", "mid", 1, 1.0, m("50.00"), m("30.00")),
            (day(30), day(0), "value_tier", "low", "low", 3, 0.75, m("23.00"), m("24.00")),
            (day(30), day(0), "value_tier", "low", "left_base", 1, 0.25, m("3.00"), m("0.00")),
            (day(30), day(0), "value_tier", "joined_base", "low", 1, 1.0, m("0.00"), m("5.00")),
        ],
        result.schema,
    )
    assertDataFrameEqual(result, expected, rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# the job end to end


def _population(d: dt.date, changed: set[str] = frozenset(), gone: set[str] = frozenset(), new: tuple = ()):
    """Three behaviours of 8 lines each (data lovers, talkers, quiet old lines); ``changed``
    lines become talkers, ``gone`` lines leave, ``new`` lines join as data lovers."""
    rows = []
    for group, base in (
        ("D", dict(data_mb_30d=8000.0, voice_min_30d=20.0, tenure_days=60, revenue_30d=300, sms_out_30d=2)),
        ("V", dict(data_mb_30d=50.0, voice_min_30d=900.0, tenure_days=900, revenue_30d=250, sms_out_30d=40)),
        ("Q", dict(data_mb_30d=5.0, voice_min_30d=10.0, tenure_days=3000, revenue_30d=10, sms_out_30d=0,
                   active_days_30d=4, events_30d=8, recharge_count_90d=1)),
    ):  # fmt: skip
        for i in range(8):
            key = f"{group}{i}"
            if key in gone:
                continue
            values = dict(base)
            if key in changed:
                values.update(data_mb_30d=60.0, voice_min_30d=950.0, tenure_days=900, revenue_30d=260, sms_out_30d=40)
            values["data_mb_30d"] += i  # no two lines alike
            rows.append(dict(subscriber_key=key, snapshot_date=d, **values))
    rows += [
        dict(subscriber_key=k, snapshot_date=d, data_mb_30d=7900.0, voice_min_30d=25.0, tenure_days=20) for k in new
    ]
    return rows


def _run(root: str, conf: str, spark, *args: str) -> int:
    from crmlake_jobs.segment import main

    return main(["--root", root, "--conf", conf, "--log-format", "text", *args], spark=spark)


def _segments_at(spark, root: str, d: dt.date) -> dict:
    """subscriber_key → (cluster_id, cluster_name, segments_model_version) of one snapshot."""
    rows = tables.read(spark, root, "gold.segments").where(F.col("snapshot_date") == d).collect()
    return {r["subscriber_key"]: (r["cluster_id"], r["cluster_name"], r["segments_model_version"]) for r in rows}


@pytest.mark.slow  # the job three times end to end, with MLflow
def test_segment_job_fits_reuses_and_refits(spark, cfg, tmp_path, capsys):
    """A date without features exits 5; the first date fits, registers and names three clusters;
    the second reuses that model version (only the line whose behaviour changed moves) and
    counts the moves, the joiner and the leaver; --refit registers a new version."""
    root = cfg.root
    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 31)
    model_name = f"test-segments-{uuid.uuid4().hex[:8]}"
    conf = tmp_path / "segments.yaml"
    conf.write_text(
        f"segments:\n  clusters:\n    model_name: {model_name}\n    k_min: 3\n    k_max: 3\n    max_iter: 5\n"
    )
    # The columns segmentation reads, as gold.features types them.
    read = sorted({*RULE_INPUTS, *PROFILE_MEANS, *SegmentsConfig().clusters.features})
    first = features_rows(spark, _population(d1)).select(*read)
    tables.replace_days(first, root, "gold.features", [d1])
    second = features_rows(spark, _population(d2, changed={"D7"}, gone={"Q7"}, new=("N1",))).select(*read)
    tables.replace_days(second, root, "gold.features", [d2])

    assert _run(root, str(conf), spark, "--date", "2026-03-02") == 5
    assert "gold.features has no snapshot for 2026-03-02" in capsys.readouterr().err

    assert _run(root, str(conf), spark, "--date", str(d1)) == 0
    at1 = _segments_at(spark, root, d1)
    assert len(at1) == 24 and {v for _, _, v in at1.values()} == {f"{model_name}/1"}
    # The three behaviours are three clusters, each named after what sets it apart.
    named = {group: {at1[f"{group}{i}"][:2] for i in range(8)} for group in "DVQ"}
    assert all(len(ids) == 1 for ids in named.values()) and len({ids.pop() for ids in named.values()}) == 3
    named = {group: at1[f"{group}0"][1] for group in "DVQ"}
    assert "young tenure" in named["D"] or "heavy data" in named["D"]

    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    version = client.get_model_version_by_alias(model_name, "current")
    assert str(version.version) == "1" and json.loads(version.tags["cluster_names"])
    run = mlflow.get_run(version.run_id)
    assert run.data.metrics["chosen_k"] == 3 and run.data.metrics["silhouette_k3"] > 0.5

    # The second date reuses the model: unchanged lines keep their cluster; D7 moved to the talkers.
    assert _run(root, str(conf), spark, "--date", str(d2)) == 0
    at2 = _segments_at(spark, root, d2)
    assert len(at2) == 24 and {v for _, _, v in at2.values()} == {f"{model_name}/1"}
    assert {k for k in at1.keys() & at2.keys() if at1[k][0] != at2[k][0]} == {"D7"}
    assert at2["D7"][1] == named["V"] and at2["N1"][1] == named["D"]
    migration = tables.read(spark, root, "gold.segment_migration").where(F.col("to_date") == d2).collect()
    moves = {(r["from_segment"], r["to_segment"]): r["subscribers"] for r in migration if r["scheme"] == "cluster_name"}
    assert moves == {
        (named["D"], named["D"]): 7,
        (named["D"], named["V"]): 1,
        (named["V"], named["V"]): 8,
        (named["Q"], named["Q"]): 7,
        (named["Q"], "left_base"): 1,
        ("joined_base", named["D"]): 1,
    }
    assert {r["from_date"] for r in migration} == {d1}
    assert {r["scheme"] for r in migration} == set(SegmentsConfig().migration_schemes)
    profiles_at2 = tables.read(spark, root, "gold.segment_profiles").where(F.col("snapshot_date") == d2).collect()
    clusters = [r for r in profiles_at2 if r["scheme"] == "cluster_name"]
    assert sum(r["subscribers"] for r in clusters) == 24 and all(r["top_differences"] for r in clusters)
    assert {r["scheme"] for r in profiles_at2} == set(SCHEMES)

    # --refit registers a new version and moves the alias; the run log records it.
    assert _run(root, str(conf), spark, "--date", str(d2), "--refit") == 0
    assert str(client.get_model_version_by_alias(model_name, "current").version) == "2"
    at2 = _segments_at(spark, root, d2)
    assert len(at2) == 24 and {v for _, _, v in at2.values()} == {f"{model_name}/2"}
    log = tables.read(spark, root, "gold.run_log").where("job = 'segment'").orderBy("started_at").collect()
    assert [(r["status"], r["model_version"]) for r in log] == [
        ("failed", None),
        ("succeeded", f"{model_name}/1"),
        ("succeeded", f"{model_name}/1"),
        ("succeeded", f"{model_name}/2"),
    ]
