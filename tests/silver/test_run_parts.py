"""Parts of an ingest run on their own: the broadcast decision, what the registry's deliveries say."""

from __future__ import annotations

import datetime as dt
import uuid

import crmlake.silver.run as ingest_run
from crmlake.bronze.land import Delivery, redelivered_files
from crmlake.silver.derivations import source_fingerprints
from crmlake.silver.run import cached_for_joins

D1, D2 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)


def plan_of(df) -> str:
    return df._jdf.queryExecution().analyzed().toString()


def jobs_run_by(spark, action) -> list[int]:
    group = f"test-{uuid.uuid4().hex}"
    spark.sparkContext.setJobGroup(group, "counted by the test")
    try:
        action()
    finally:
        spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
    return list(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def test_a_known_bound_decides_the_broadcast_without_a_spark_job(spark):
    keys_df = spark.createDataFrame([("a",), ("b",), ("c",)], "k string")
    made = {}
    assert jobs_run_by(spark, lambda: made.update(pair=cached_for_joins(keys_df, rows_at_most=10))) == []
    cached, side = made["pair"]
    try:
        assert "strategy=broadcast" in plan_of(side)
        assert sorted(r["k"] for r in side.collect()) == ["a", "b", "c"]
    finally:
        cached.unpersist()
    # without a bound, the cache is counted: a job
    assert jobs_run_by(spark, lambda: made.update(pair=cached_for_joins(keys_df))) != []
    made["pair"][0].unpersist()


def test_a_bound_above_the_limit_is_checked_by_counting(spark, monkeypatch):
    monkeypatch.setattr(ingest_run, "BROADCAST_KEYS_MAX", 2)
    keys_df = spark.createDataFrame([("a",), ("b",), ("c",)], "k string")
    cached, side = cached_for_joins(keys_df, rows_at_most=1_000)  # 3 rows counted: more than 2
    try:
        assert "strategy=broadcast" not in plan_of(side)
    finally:
        cached.unpersist()
    cached, side = cached_for_joins(keys_df.limit(2), rows_at_most=1_000)  # 2 counted: broadcast
    try:
        assert "strategy=broadcast" in plan_of(side)
    finally:
        cached.unpersist()


def test_a_file_taken_twice_with_rows_is_a_redelivery_of_its_day_only():
    taken = [
        Delivery("usage", D1, "landing/usage/date=2026-01-05/u.csv", "b1", 10),
        Delivery("usage", D1, "landing/usage/date=2026-01-05/u.csv", "b2", 11),  # new content
        Delivery("usage", D1, "landing/usage/date=2026-01-05/v.csv", "b1", 5),  # once
        Delivery("usage", D1, "landing/usage/date=2026-01-05/e.csv", "b1", 0),  # empty, then with rows
        Delivery("usage", D1, "landing/usage/date=2026-01-05/e.csv", "b2", 3),
        Delivery("usage", D2, "landing/usage/date=2026-01-06/w.csv", "b1", 4),
        Delivery("usage", D2, "landing/usage/date=2026-01-06/w.csv", "b3", 4),
    ]
    assert redelivered_files(taken, [D1]) == ["landing/usage/date=2026-01-05/u.csv"]
    assert redelivered_files(taken, [D1, D2]) == [
        "landing/usage/date=2026-01-05/u.csv",
        "landing/usage/date=2026-01-06/w.csv",
    ]
    assert redelivered_files([], [D1]) == []


def test_a_days_source_fingerprint_moves_with_its_own_deliveries_only():
    first = [Delivery("usage", D1, "u.csv", "b1", 10), Delivery("usage", D2, "w.csv", "b1", 4)]
    again = [Delivery("usage", D2, "w.csv", "b1", 4), Delivery("usage", D1, "u.csv", "b1", 10)]  # order
    later = [*first, Delivery("usage", D2, "x.csv", "b2", 1)]  # a new file on D2
    before, reordered, after = (source_fingerprints(t, [D1, D2]) for t in (first, again, later))
    assert before == reordered
    assert after[D1] == before[D1] and after[D2] != before[D2]
    # a day without deliveries has a fingerprint too (of nothing), stable
    assert source_fingerprints([], [D1]) == source_fingerprints([], [D1])
