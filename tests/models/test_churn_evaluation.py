"""Churn evaluation: metrics against scikit-learn, gains and capacity against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from crmlake.core.errors import BadValuesError
from crmlake.models import evaluation
from pandas.testing import assert_frame_equal
from pyspark.testing import assertDataFrameEqual

sklearn_metrics = pytest.importorskip("sklearn.metrics")


def scored(spark, labels, scores, label_type="long"):
    return spark.createDataFrame(list(zip(labels, scores, strict=True)), f"label {label_type}, score double")


def random_scores(seed: int, rows: int, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels that depend on the score, and scores rounded so that many rows tie."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.beta(2, 5, rows), decimals)
    labels = (rng.random(rows) < scores).astype(int)
    return labels, scores


@pytest.mark.parametrize("label_type", ["long", "boolean", "double"])
def test_metrics_equal_sklearn_with_ties(spark, label_type):
    labels, scores = random_scores(7, 5_000, 2)
    as_type = {"long": int, "boolean": bool, "double": float}[label_type]
    values = [as_type(v) for v in labels]
    got = evaluation.binary_metrics(scored(spark, values, scores.tolist(), label_type))
    assert len(np.unique(scores)) < 100  # many ties
    assert got["roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-9)
    assert got["pr_auc"] == pytest.approx(sklearn_metrics.average_precision_score(labels, scores), abs=1e-9)
    assert got["brier"] == pytest.approx(np.mean((scores - labels) ** 2), abs=1e-12)
    assert (got["rows"], got["positives"]) == (5_000, labels.sum())
    assert got["base_rate"] == pytest.approx(labels.mean())


def test_too_many_distinct_scores_are_grouped_to_six_decimals(spark):
    labels, scores = random_scores(11, 3_000, 9)
    got = evaluation.binary_metrics(scored(spark, labels.tolist(), scores.tolist()), max_distinct=1_000)
    rounded = np.round(scores, 6)
    assert len(np.unique(rounded)) < len(np.unique(scores))  # the grouping changes ties
    assert got["roc_auc"] == pytest.approx(sklearn_metrics.roc_auc_score(labels, rounded), abs=1e-9)
    assert got["pr_auc"] == pytest.approx(sklearn_metrics.average_precision_score(labels, rounded), abs=1e-9)
    assert got["brier"] == pytest.approx(np.mean((scores - labels) ** 2), abs=1e-12)  # exact scores


@pytest.mark.parametrize("label", [0, 1])
def test_one_class_gives_nan_auc(spark, label):
    got = evaluation.binary_metrics(scored(spark, [label] * 4, [0.1, 0.2, 0.2, 0.9]))
    assert math.isnan(got["roc_auc"]) and math.isnan(got["pr_auc"])
    assert got["brier"] == pytest.approx(np.mean((np.array([0.1, 0.2, 0.2, 0.9]) - label) ** 2))
    assert (got["rows"], got["positives"], got["base_rate"]) == (4, 4 * label, float(label))


@pytest.mark.parametrize(("labels", "scores"), [([0, 2], [0.1, 0.2]), ([0, 1], [0.1, None]), ([None, 1], [0.1, 0.2])])
def test_bad_labels_and_missing_scores_are_named(spark, labels, scores):
    with pytest.raises(BadValuesError, match="not 0/1"):
        evaluation.binary_metrics(scored(spark, labels, scores))


def test_decile_cuts_rank_from_the_top(spark):
    # 20 distinct scores: each decile holds two, decile 1 the two highest.
    df = spark.createDataFrame([(k / 100,) for k in range(1, 21)], "score double")
    cuts = evaluation.decile_cuts(df)
    assert cuts == [k / 100 for k in range(19, 2, -2)]
    got = evaluation.with_decile(df, cuts).groupBy("decile").count()
    assertDataFrameEqual(got, spark.createDataFrame([(d, 2) for d in range(1, 11)], "decile int, count long"))


def test_with_decile_sends_ties_to_the_riskier_decile(spark):
    rows = [("a", 0.95), ("b", 0.8), ("c", 0.79), ("d", 0.5), ("e", 0.2), ("f", 0.0), ("g", None)]
    df = spark.createDataFrame(rows, "id string, score double")
    got = evaluation.with_decile(df, [0.8, 0.5, 0.2], decile_col="risk")
    expected = spark.createDataFrame(
        [("a", 0.95, 1), ("b", 0.8, 1), ("c", 0.79, 2), ("d", 0.5, 2), ("e", 0.2, 3), ("f", 0.0, 4), ("g", None, None)],
        "id string, score double, risk int",
    )
    assertDataFrameEqual(got, expected)


# Eight subscribers, two per quartile: churners 2, 1, 1, 0 from the top; overall rate 1/2.
QUARTILES = ([1, 1, 1, 0, 0, 1, 0, 0], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])


def test_gains_table_by_hand(spark):
    gains = evaluation.gains_table(scored(spark, *QUARTILES), "label", "score", n=4)
    expected = pd.DataFrame(
        {
            "decile": [1, 2, 3, 4],
            "subscribers": [2, 2, 2, 2],
            "churners": [2, 1, 1, 0],
            "churn_rate": [1.0, 0.5, 0.5, 0.0],
            "mean_score": [0.85, 0.65, 0.45, 0.25],
            "min_score": [0.8, 0.6, 0.4, 0.2],
            "max_score": [0.9, 0.7, 0.5, 0.3],
            "share_of_churners": [0.5, 0.25, 0.25, 0.0],
            "cum_subscribers_share": [0.25, 0.5, 0.75, 1.0],
            "cum_churners_share": [0.5, 0.75, 1.0, 1.0],
            "lift": [2.0, 1.0, 1.0, 0.0],
            "cum_lift": [2.0, 1.5, 4 / 3, 1.0],
        }
    )
    assert_frame_equal(gains, expected, check_exact=False, rtol=1e-12)
    assert evaluation.top_decile_lift(gains) == 2.0


def test_reliability_table_lists_empty_bins(spark):
    rel = evaluation.reliability_table(scored(spark, *QUARTILES), "label", "score", n=4)
    expected = pd.DataFrame(
        {"bin": [1, 2, 3, 4], "rows": [2, 2, 2, 2], "mean_predicted": [0.85, 0.65, 0.45, 0.25],
         "observed_rate": [1.0, 0.5, 0.5, 0.0]}
    )  # fmt: skip
    assert_frame_equal(rel, expected, check_exact=False, rtol=1e-12)
    # One score for all: every cut is that score, so bin 1 takes everyone and the rest are empty.
    tied = evaluation.reliability_table(scored(spark, [1, 0, 0], [0.3] * 3), "label", "score", n=3)
    expected = pd.DataFrame(
        {"bin": [1, 2, 3], "rows": [3, 0, 0], "mean_predicted": [0.3, math.nan, math.nan],
         "observed_rate": [1 / 3, math.nan, math.nan]}
    )  # fmt: skip
    assert_frame_equal(tied, expected, check_exact=False, rtol=1e-12)


def test_capacity_threshold_never_splits_a_tie(spark):
    # Cumulative rows from the top: 0.9 → 2, 0.8 → 3, 0.7 → 5, 0.6 → 6, 0.5 → 7; churners 1, 2, 2, 3, 3.
    df = scored(spark, [1, 0, 1, 0, 0, 1, 0], [0.9, 0.9, 0.8, 0.7, 0.7, 0.6, 0.5])
    got = pd.DataFrame([evaluation.capacity_threshold(df, "label", "score", c) for c in (1, 4, 5, 100)])
    expected = pd.DataFrame(
        {
            "threshold": [math.nextafter(0.9, math.inf), 0.8, 0.7, 0.5],  # 1: even the top tie is too many
            "capacity": [1, 4, 5, 100],
            "selected": [0, 3, 5, 7],
            "churners_selected": [0, 2, 2, 3],
            "precision": [math.nan, 2 / 3, 2 / 5, 3 / 7],
            "recall": [0.0, 2 / 3, 2 / 3, 1.0],
        }
    )
    assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_plots_write_png_files(tmp_path):
    gains = pd.DataFrame({"cum_subscribers_share": [0.25, 0.5, 0.75, 1.0], "cum_churners_share": [0.5, 0.75, 1.0, 1.0]})
    reliability = pd.DataFrame({"mean_predicted": [0.85, 0.65, 0.45], "observed_rate": [0.9, 0.5, 0.4]})
    paths = [
        evaluation.plot_gains(gains, tmp_path / "gains.png"),
        evaluation.plot_reliability(reliability, tmp_path / "reliability.png"),
        evaluation.plot_importances(["tenure", "complaints", "arpu"], [0.1, -0.7, 0.3], tmp_path / "imp.png", top=2),
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 1_000
