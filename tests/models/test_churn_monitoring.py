"""Churn monitoring: PSI against numpy and by hand, realized churn by decile on hand-built rows."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from crmlake.models import monitoring
from pandas.testing import assert_frame_equal
from pyspark.testing import assertDataFrameEqual

EPS = monitoring.PSI_EPS


def test_identical_distributions_have_zero_psi(spark):
    rng = np.random.default_rng(3)
    rows = [
        (float(x), str(p), bool(b), int(t))
        for x, p, b, t in zip(
            rng.normal(size=500), rng.choice(["prepaid", "postpaid"], 500), rng.random(500) < 0.3,
            rng.integers(0, 4, 500), strict=True,
        )
    ]  # fmt: skip
    schema = "arpu double, plan string, is_roaming boolean, complaints int"
    reference = spark.createDataFrame(rows, schema)
    current = spark.createDataFrame(rows[::-1], schema)
    got = monitoring.psi_table(reference, current, ["arpu", "plan", "is_roaming", "complaints"])
    expected = pd.DataFrame(
        {
            "feature": ["arpu", "plan", "is_roaming", "complaints"],
            "psi": [0.0, 0.0, 0.0, 0.0],
            "bins": [10, 2, 2, 5],  # complaints 0-3: edges 0, 1, 2, 3 after dropping repeats, and below 0
            "kind": ["numeric", "categorical", "categorical", "numeric"],
        }
    )
    assert_frame_equal(got, expected, check_exact=False, atol=1e-12)


def numpy_psi(reference: np.ndarray, current: np.ndarray, bins: int) -> pd.DataFrame:
    """PSI with edges at the reference's quantiles (the lowest value reaching each share of rows),
    bins [edge_i, edge_i+1), and NaN as 'missing'."""
    present = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(present, [k / bins for k in range(1, bins)], method="inverted_cdf"))

    def shares(x):
        codes = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="right"))
        return np.maximum(np.bincount(codes, minlength=len(edges) + 2) / len(x), EPS)

    ref, cur = shares(reference), shares(current)
    return pd.DataFrame({"reference_share": ref, "current_share": cur, "contribution": (cur - ref) * np.log(cur / ref)})


def test_psi_of_a_shift_equals_numpy(spark):
    rng = np.random.default_rng(5)
    reference = np.round(rng.normal(0.0, 1.0, 4_000), 2)  # rounded: repeated values at the edges
    current = np.round(rng.normal(0.5, 1.3, 3_000), 2)
    reference[:40] = np.nan
    current[:300] = np.nan

    def frame(values):
        return spark.createDataFrame([(None if math.isnan(v) else float(v),) for v in values], "arpu double")

    got = monitoring.psi(frame(reference), frame(current), "arpu", bins=10)
    expected = numpy_psi(reference, current, 10)
    assert got["bin"].iloc[0].startswith("[-inf, ") and got["bin"].iloc[-1] == "missing"
    assert_frame_equal(got.drop(columns="bin"), expected, check_exact=False, rtol=1e-9)
    total = monitoring.psi_value(frame(reference), frame(current), "arpu", bins=10)
    assert total == pytest.approx(expected["contribution"].sum(), rel=1e-9) and total > 0.1


def test_categorical_psi_with_an_unseen_category_and_nulls(spark):
    reference = spark.createDataFrame([("a",)] * 5 + [("b",)] * 3 + [(None,)] * 2, "channel string")
    current = spark.createDataFrame([("a",)] * 2 + [("b",)] * 2 + [("c",)] * 4 + [(None,)] * 2, "channel string")
    got = monitoring.psi(reference, current, "channel")
    # Reference: a 5/10, b 3/10, nothing new, 2/10 missing. Current: a 2/10, b 2/10, c (new) 4/10, 2/10 missing.
    expected = pd.DataFrame(
        {
            "bin": ["a", "b", "other", "missing"],
            "reference_share": [0.5, 0.3, EPS, 0.2],
            "current_share": [0.2, 0.2, 0.4, 0.2],
            "contribution": [
                -0.3 * math.log(0.2 / 0.5),
                -0.1 * math.log(0.2 / 0.3),
                (0.4 - EPS) * math.log(0.4 / EPS),
                0.0,
            ],
        }
    )
    assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_realized_by_decile_by_hand(spark):
    d1, d2 = dt.date(2026, 3, 1), dt.date(2026, 3, 8)
    scores = spark.createDataFrame(
        [
            ("s1", d1, 1, 0.8), ("s2", d1, 1, 0.6), ("s3", d1, 2, 0.1), ("s4", d1, 2, 0.3),
            ("s5", d1, 2, 0.2),  # no label yet: left out
            ("s1", d2, 1, 0.9),
        ],
        "subscriber_key string, score_date date, decile int, probability double",
    )  # fmt: skip
    labels = spark.createDataFrame(
        [
            ("s1", d1, True), ("s2", d1, False), ("s3", d1, False), ("s4", d1, True),
            ("s1", d2, True),
            ("s2", d2, True),  # labelled but not scored on d2
        ],
        "subscriber_key string, snapshot_date date, is_churned boolean",
    )  # fmt: skip
    expected = spark.createDataFrame(
        [(d1, 1, 2, 0.7, 0.5, -0.2), (d1, 2, 2, 0.2, 0.5, 0.3), (d2, 1, 1, 0.9, 1.0, 0.1)],
        "score_date date, decile int, subscribers long, predicted_rate double, realized_rate double, difference double",
    )
    assertDataFrameEqual(monitoring.realized_by_decile(scores, labels), expected, rtol=1e-9)


def test_realized_by_decile_refuses_a_label_seen_twice(spark):
    d1 = dt.date(2026, 3, 1)
    scores = spark.createDataFrame(
        [("s1", d1, 1, 0.8)], "subscriber_key string, score_date date, decile int, probability double"
    )
    labels = spark.createDataFrame(
        [("s1", d1, True), ("s1", d1, False)], "subscriber_key string, snapshot_date date, is_churned boolean"
    )
    with pytest.raises(Exception, match="subscriber_key s1 on 2026-03-01 has more than one"):
        monitoring.realized_by_decile(scores, labels).collect()
