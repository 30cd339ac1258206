"""The subscriber history built from several extracts in one pass equals the history built one
extract at a time, and a late extract is left to the one-at-a-time path."""

from __future__ import annotations

import datetime as dt

import pytest
from crmlake.catalog import tables
from crmlake.silver.subscribers import write_subscriber_history, write_subscriber_history_batch
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

D = [dt.date(2026, 1, 5) + dt.timedelta(days=i) for i in range(5)]
HISTORY = "silver.subscribers"


def extracts(spark, rows):
    """rows: (subscriber, day index, tariff); the hash stands for the row's attributes."""
    df = spark.createDataFrame(
        [(s, D[i], t) for s, i, t in rows], "subscriber_key string, extract_date date, tariff string"
    )
    return df.withColumn("_row_hash", F.sha2(F.col("tariff"), 256))


def one_at_a_time(spark, root, df):
    days = sorted(r[0] for r in df.select("extract_date").distinct().collect())
    for day in days:
        write_subscriber_history(spark, root, df.where(F.col("extract_date") == F.lit(day)))


FIRST = [("a", 0, "basic"), ("b", 0, "basic"), ("c", 0, "data")]
LATER = [
    # a: changes, stays, changes back; b: never changes; c: changes once, then leaves the
    # extracts; d: appears on the third day and changes on the last.
    ("a", 1, "data"), ("a", 2, "data"), ("a", 3, "basic"),
    ("b", 1, "basic"), ("b", 2, "basic"), ("b", 3, "basic"),
    ("c", 1, "youth"),
    ("d", 2, "basic"), ("d", 4, "youth"),
]  # fmt: skip


@pytest.mark.slow  # two roots built side by side, one of them an extract at a time
def test_several_extracts_in_one_pass_equal_one_at_a_time(spark, tmp_path):
    batch, loop = str(tmp_path / "batch"), str(tmp_path / "loop")
    for root in (batch, loop):
        write_subscriber_history(spark, root, extracts(spark, FIRST))
    later = extracts(spark, LATER)
    assert write_subscriber_history_batch(spark, batch, later) is not None
    one_at_a_time(spark, loop, later)
    assertDataFrameEqual(tables.read(spark, batch, HISTORY), tables.read(spark, loop, HISTORY))
    expected = spark.createDataFrame(
        [
            ("a", D[0], D[1], "basic"),
            ("a", D[1], D[3], "data"),
            ("a", D[3], None, "basic"),
            ("b", D[0], None, "basic"),
            ("c", D[0], D[1], "data"),
            ("c", D[1], None, "youth"),
            ("d", D[2], D[4], "basic"),
            ("d", D[4], None, "youth"),
        ],  # fmt: skip
        "subscriber_key string, valid_from date, valid_to date, tariff string",
    )
    got = tables.read(spark, batch, HISTORY).select("subscriber_key", "valid_from", "valid_to", "tariff")
    assertDataFrameEqual(got, expected)


def test_a_first_load_of_several_extracts_equals_one_at_a_time(spark, tmp_path):
    batch, loop = str(tmp_path / "batch"), str(tmp_path / "loop")
    every = extracts(spark, FIRST + LATER)
    write_subscriber_history_batch(spark, batch, every)
    one_at_a_time(spark, loop, every)
    assertDataFrameEqual(tables.read(spark, batch, HISTORY), tables.read(spark, loop, HISTORY))


def test_an_extract_not_after_the_history_is_left_to_the_one_at_a_time_path(spark, tmp_path):
    root = str(tmp_path / "lake")
    write_subscriber_history(spark, root, extracts(spark, [("a", 2, "basic")]))
    before = tables.read(spark, root, HISTORY).collect()
    assert write_subscriber_history_batch(spark, root, extracts(spark, [("a", 1, "data"), ("a", 3, "data")])) is None
    assertDataFrameEqual(tables.read(spark, root, HISTORY), before)
