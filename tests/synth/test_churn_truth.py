"""The churn ceiling: the labelled lines scored by the generator's true hazard, and which true
causes a model's top decile catches."""

from __future__ import annotations

import datetime as dt
import math

from crmlake.synth.churn_truth import caught_by_cause, hazard_scores
from pyspark.testing import assertDataFrameEqual

S1, S2 = dt.date(2026, 1, 4), dt.date(2026, 1, 11)


def test_the_ceiling_scores_labelled_lines_by_their_true_hazard_over_the_horizon(spark):
    labels = spark.createDataFrame(
        [
            ("a", S1, 14, True, "voluntary"),
            ("b", S1, 14, False, None),
            ("a", S1, 30, True, "voluntary"),
            ("c", S2, 14, False, None),
            ("z", S1, 14, True, "voluntary"),
        ],  # fmt: skip
        "subscriber_key string, snapshot_date date, horizon_days int, is_churned boolean, churn_type string",
    )
    truth = spark.createDataFrame(
        [("a", 0.3, "price", "prepaid"), ("b", 0.0, None, "postpaid"), ("c", 0.1, None, "prepaid")],
        "subscriber_key string, monthly_hazard double, churn_cause string, plan_type string",
    )
    got = hazard_scores(labels, truth, [S1], 14).select("subscriber_key", "label", "score", "churn_cause")
    # within 14 days of the generator's 30-day month ("z" has no truth and "c" another snapshot: left out)
    expected = [("a", 1, 1 - math.exp(-0.3 * 14 / 30), "price"), ("b", 0, 0.0, None)]
    assertDataFrameEqual(
        got, spark.createDataFrame(expected, "subscriber_key string, label int, score double, churn_cause string")
    )


def test_causes_caught_count_churners_at_or_above_the_top_decile_cut(spark):
    scored = spark.createDataFrame(
        [
            ("a", 1, 0.9, "price", "voluntary"),
            ("b", 1, 0.5, "price", "voluntary"),
            ("c", 1, 0.8, "network", "voluntary"),
            ("d", 0, 0.95, None, None),
            ("e", 1, 0.85, None, "involuntary"),
        ],  # fmt: skip
        "subscriber_key string, label int, score double, churn_cause string, churn_type string",
    )
    got = caught_by_cause(scored, 0.8).select("cause", "churners", "in_top_decile")
    expected = [("price", 2, 1), ("network", 1, 1), ("none in truth: involuntary", 1, 1)]
    assertDataFrameEqual(got, spark.createDataFrame(expected, "cause string, churners long, in_top_decile long"))
