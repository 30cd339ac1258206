"""The CLV statistics on Spark against lifetimes' own summary of the same transactions."""

from __future__ import annotations

import datetime as dt
import warnings

import pandas as pd
import pytest
from crmlake.gold.clv import compressed_statistics, rfm_statistics
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

warnings.filterwarnings("ignore", category=DeprecationWarning)
lifetimes = pytest.importorskip("lifetimes")


def reference(transactions: pd.DataFrame, end: dt.date, freq: str) -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    summary = summary_data_from_transaction_data(
        transactions, "customer_id", "time", monetary_value_col="amount", observation_period_end=str(end), freq=freq
    )
    return summary.reset_index().rename(columns={"T": "age"})


@pytest.mark.parametrize(("unit", "freq"), [("day", "D"), ("week", "W")])
def test_statistics_equal_lifetimes_summary(spark, unit, freq):
    from lifetimes.datasets import load_transaction_data

    raw = load_transaction_data()
    # A second purchase on some days (same unit: one transaction, amounts summed), and amounts.
    raw = pd.concat([raw, raw.iloc[::7]], ignore_index=True)
    raw["customer_id"] = raw["id"].astype("int64")
    raw["time"] = pd.to_datetime(raw["date"])
    raw["amount"] = (raw.index % 13 + 1) * 2.5
    # A Sunday: lifetimes compares whole periods, so with weeks it would also count purchases made
    # after a mid-week calibration end; crmlake never reads past the calibration end.
    end = dt.date(2014, 9, 28)
    expected = reference(raw[["customer_id", "time", "amount"]], end, freq)
    got = rfm_statistics(spark.createDataFrame(raw[["customer_id", "time", "amount"]]), end, unit)
    assert got.count() == len(expected) > 1000
    assertDataFrameEqual(
        got.withColumn("frequency", F.col("frequency").cast("double")),
        spark.createDataFrame(expected[["customer_id", "frequency", "recency", "age", "monetary_value"]]),
        checkRowOrder=False,
        rtol=1e-9,
    )


def test_customers_sharing_statistics_are_counted_once(spark):
    rows = [(1, "2026-01-01", 5.0), (2, "2026-01-01", 7.0), (3, "2026-01-01", 1.0), (3, "2026-01-03", 2.0)]
    tx = spark.createDataFrame(rows, "customer_id long, time string, amount double")
    stats = rfm_statistics(tx, dt.date(2026, 1, 10))
    assertDataFrameEqual(
        compressed_statistics(stats),
        spark.createDataFrame(
            [(0, 0.0, 9.0, 2), (1, 2.0, 9.0, 1)], "frequency long, recency double, age double, customers long"
        ),
        checkRowOrder=False,
    )
