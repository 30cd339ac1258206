"""The pure part of the churn models: the time split, labels as teams write them, the
stratified split of a team's own table, and the reasons' sentences."""

from __future__ import annotations

import datetime as dt

import pytest
from crmlake.core.errors import ConfigError
from crmlake.models.churn import (
    FeatureSet,
    feature_set,
    label_column,
    missing_columns,
    numeric_text_columns,
    plan_splits,
    random_split,
)
from crmlake.models.reasons import reason
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

D0 = dt.date(2026, 1, 1)


def days(*offsets: int) -> list[dt.date]:
    return [D0 + dt.timedelta(days=n) for n in offsets]


def test_time_split_never_lets_a_label_horizon_reach_the_next_split():
    available = days(*range(0, 120, 7))  # weekly snapshots
    splits = plan_splits(
        available, horizon_days=30, every_days=7, counts={"train": 4, "validation": 1, "test": 1}, embargo=True
    )
    assert splits == {"train": days(28, 35, 42, 49), "validation": days(84), "test": days(119)}
    order = ["train", "validation", "test"]
    for earlier, later in zip(order, order[1:], strict=False):
        # every label window (s, s + 30] of the earlier split closes by the later split's first snapshot
        assert max(splits[earlier]) + dt.timedelta(days=30) <= min(splits[later])
    assert not set(splits["train"]) & set(splits["test"])


def test_time_split_without_embargo_only_keeps_snapshots_apart():
    splits = plan_splits(days(0, 7, 14, 21), 30, 7, {"train": 2, "validation": 1, "test": 1}, embargo=False)
    assert splits == {"train": days(0, 7), "validation": days(14), "test": days(21)}


def test_time_split_refuses_too_few_snapshots_and_lists_them():
    with pytest.raises(ConfigError, match=r"validation split.*2026-01-01"):
        plan_splits(days(0, 7, 14), 30, 7, {"train": 1, "validation": 1, "test": 1}, embargo=True)


def test_labels_as_teams_write_them(spark):
    values = ["Yes", "no", "TRUE", "False.", "1", "0", "1.0", " y ", "maybe", None]
    df = spark.createDataFrame([(v,) for v in values], "churn string")
    got = [r[0] for r in df.select(label_column("churn")).collect()]
    assert got == [1, 0, 1, 0, 1, 0, 1, 1, None, None]


def test_numbers_written_as_text_with_blanks_are_numbers(spark):
    df = spark.createDataFrame(
        [("1", "12.5", "a"), ("2", " ", "b"), ("3", "NA", "c"), ("x", "7", "1")], "n string, total string, cat string"
    )
    assert numeric_text_columns(df, ["n", "total", "cat"]) == ["total"]


def test_features_are_numbers_booleans_and_text_not_dates(spark):
    df = spark.createDataFrame([(1, 2.0, True, "a", D0)], "a int, b double, c boolean, d string, e date")
    assert feature_set(df.schema, ["a"], with_missing=["b"]) == FeatureSet(("b", "c"), ("d",), ("b",))
    assert FeatureSet(("b", "c"), ("d",), ("b",)).slot_features({"d": 3}) == ["b", "c", "b", "d", "d", "d"]


def test_random_split_is_stratified_and_stable(spark):
    rows = [(f"id{i}", 1 if i % 5 == 0 else 0, None) for i in range(1000)]
    df = spark.createDataFrame(rows, "subscriber_key string, label int, split string")
    first = random_split(df, 0.2, 0.25, seed=7, has_split=False)
    counts = {(r["split"], r["label"]): r["count"] for r in first.groupBy("split", "label").count().collect()}
    assert counts[("test", 1)] == 40 and counts[("test", 0)] == 160  # exactly 20 % of each class
    assert counts[("validation", 1)] == 40 and counts[("validation", 0)] == 160  # 25 % of the rest
    again = random_split(df.repartition(7), 0.2, 0.25, seed=7, has_split=False)
    assertDataFrameEqual(again.select("subscriber_key", "split"), first.select("subscriber_key", "split"))


def test_a_given_split_is_kept_and_validation_comes_from_train(spark):
    rows = [(f"id{i}", i % 2, "test" if i < 100 else "train") for i in range(500)]
    df = spark.createDataFrame(rows, "subscriber_key string, label int, split string")
    got = random_split(df, 0.5, 0.2, seed=1, has_split=True)
    counts = {r["split"]: r["count"] for r in got.groupBy("split").count().collect()}
    assert counts == {"test": 100, "validation": 80, "train": 320}
    assert (
        got.where((F.col("split") == "test") & (F.col("subscriber_key").substr(3, 3).cast("int") >= 100)).count() == 0
    )


@pytest.mark.parametrize(
    ("feature", "value", "categorical", "text"),
    [
        ("data_mb_trend_7v30", 0.4, False, "data use fell 60% in the last 7 days (against the 30 before)"),
        ("revenue_trend_7v30", 1.5, False, "spend rose 50% in the last 7 days (against the 30 before)"),
        ("events_trend_7v30", None, False, "activity trend unknown"),
        ("unresolved_contacts_90d", 2, False, "2 unresolved care contacts in 90 days"),
        ("complaints_90d", 3, False, "3 complaints in 90 days"),
        ("days_since_last_recharge", 41, False, "no top-up or payment for 41 days"),
        ("days_since_last_complaint", None, False, "no complaint in the lookback"),
        ("home_cell_dropped_call_rate_30d", 0.034, False, "home cell drops 3.4% of calls (last 30 days)"),
        ("data_mb_slope_30d", -12.345, False, "data use falling by 12.3 a day over 30 days"),
        ("tenure_days", 45, False, "line active for 45 days"),
        ("last_nps", 3, False, "last NPS answer 3 of 10"),
        ("tariff", "Gold", True, "tariff is Gold"),
        ("is_do_not_contact", True, False, "do not contact: yes"),
        ("Customer service calls", 4.0, False, "Customer service calls is 4.0"),
    ],
)
def test_reasons_read_as_sentences(spark, feature, value, categorical, text):
    kind = "string" if isinstance(value, str) else "boolean" if isinstance(value, bool) else "double"
    value = float(value) if kind == "double" and value is not None else value
    df = spark.createDataFrame([(value,)], f"v {kind}")
    assert df.select(reason(feature, F.col("v"), categorical)).first()[0] == text


def test_a_teams_columns_named_like_crmlakes_own_are_taken_or_refused_by_name(spark, tmp_path):
    """A team's date column snapshot_date is the snapshot; other columns named like crmlake's
    own (label, split) are left out of the features, and refused when listed as features."""
    from crmlake.core.settings import ChurnConfig, ChurnDataset
    from crmlake.models.churn_data import byo_dataset

    path = str(tmp_path / "own.parquet")
    rows = [(f"c{i}", dt.date(2026, 1, 1 + i % 3), "yes" if i % 4 == 0 else "no", float(i), "x") for i in range(40)]
    spark.createDataFrame(
        rows, "cust string, snapshot_date date, churned string, calls double, label string"
    ).write.parquet(path)
    dataset = ChurnDataset(path=path, format="parquet", id="cust", label="churned")
    data = byo_dataset(spark, dataset, ChurnConfig())
    assert data.fs.numeric == ("calls",) and not data.fs.categorical
    got = data.df.select("subscriber_key", "snapshot_date").orderBy("subscriber_key")
    assertDataFrameEqual(got, spark.read.parquet(path).selectExpr("cust AS subscriber_key", "snapshot_date"))
    with pytest.raises(ConfigError, match=r"churn.dataset.features: \['label'\]"):
        byo_dataset(spark, dataset.model_copy(update={"features": ("calls", "label")}), ChurnConfig())


def test_training_leaves_out_columns_with_no_value_and_flags_those_with_gaps(spark):
    df = spark.createDataFrame(
        [(1.0, None, None, "a", None), (float("nan"), None, 2, "b", None), (3.0, None, 3, None, None)],
        "ratio double, trend double, calls int, plan string, region string",
    )
    fs = FeatureSet(("ratio", "trend", "calls"), ("plan", "region"), ())
    assert missing_columns(df, fs) == (
        FeatureSet(("ratio", "calls"), ("plan",), ("ratio", "calls")),
        ["trend", "region"],
    )
