"""Qini and AUUC against a case computed by hand, the random-ranking baseline, the bootstrap
intervals, and uplift by decile."""

from __future__ import annotations

import random

import pandas as pd
import pytest
from crmlake.core.errors import BadValuesError
from crmlake.models import uplift_evaluation as ue

# score, treated, retained: 4 bins of 2 rows (one treated, one control each), highest first
HAND = [
    (8.0, 1, 1),
    (7.0, 0, 0),
    (6.0, 1, 1),
    (5.0, 0, 1),
    (4.0, 1, 0),
    (3.0, 0, 1),
    (2.0, 1, 0),
    (1.0, 0, 0),
]
SCHEMA = "score double, treated int, retained int"


def test_qini_and_auuc_match_a_hand_computed_case(spark):
    df = spark.createDataFrame(HAND, SCHEMA)
    metrics, curve = ue.uplift_metrics(df, "treated", "retained", "score", bins=4)
    # cumulative (N_t, N_c, Y_t, Y_c) after each bin: (1,1,1,0) (2,2,2,1) (3,3,2,2) (4,4,2,2)
    # Qini/8: 1/8, 1/8, 0, 0; uplift curve: (1-0)*2/8, (1-.5)*4/8, 0, 0
    expected = pd.DataFrame(
        {
            "bin": [0, 1, 2, 3, 4],
            "share": [0.0, 0.25, 0.5, 0.75, 1.0],
            "treated": [0, 1, 2, 3, 4],
            "control": [0, 1, 2, 3, 4],
            "treated_good": [0, 1, 2, 2, 2],
            "control_good": [0, 0, 1, 2, 2],
            "qini": [0.0, 0.125, 0.125, 0.0, 0.0],
            "uplift": [0.0, 0.25, 0.25, 0.0, 0.0],
        }
    )
    pd.testing.assert_frame_equal(curve, expected, check_dtype=False)
    # areas by trapezoids of width 1/4; both random lines end at 0 (no overall effect)
    assert metrics["qini_area"] == pytest.approx(0.0625)
    assert metrics["qini"] == pytest.approx(0.0625) and metrics["qini_random"] == pytest.approx(0.0)
    assert metrics["auuc"] == pytest.approx(0.125) and metrics["auuc_random"] == pytest.approx(0.0)
    assert metrics["ate"] == pytest.approx(0.0) and metrics["rows"] == 8


def test_uplift_by_decile_of_the_hand_case(spark):
    df = spark.createDataFrame(HAND, SCHEMA)
    got = ue.uplift_by_decile(df, "treated", "retained", "score", n=4)
    expected = pd.DataFrame(
        {
            "decile": [1, 2, 3, 4],
            "treated": [1, 1, 1, 1],
            "control": [1, 1, 1, 1],
            "treated_rate": [1.0, 1.0, 0.0, 0.0],
            "control_rate": [0.0, 1.0, 1.0, 0.0],
            "observed_uplift": [1.0, 0.0, -1.0, 0.0],
            "mean_predicted": [7.5, 5.5, 3.5, 1.5],
        }
    )
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_a_random_ranking_lands_near_zero_and_the_true_uplift_beats_it(spark):
    """Retention 0.6 for controls; treatment adds 0.3·x with x uniform in [-1, 1] (persuadables
    above 0, sleeping dogs below)."""
    rng = random.Random(5)
    rows = []
    for _ in range(4000):
        x = rng.uniform(-1, 1)
        treated = int(rng.random() < 0.5)
        p = 0.6 + (0.3 * x if treated else 0.0)
        rows.append((x, rng.random(), treated, int(rng.random() < p)))
    df = spark.createDataFrame(rows, "true_uplift double, noise double, treated int, retained int").cache()
    truth, _ = ue.uplift_metrics(df, "treated", "retained", "true_uplift", bins=20, resamples=200, seed=1)
    noise, _ = ue.uplift_metrics(df, "treated", "retained", "noise", bins=20, resamples=200, seed=1)
    df.unpersist()
    assert noise["qini_low"] < 0 < noise["qini_high"]  # random: 0 inside its interval
    assert abs(noise["qini"]) < 0.02
    assert truth["qini_low"] > noise["qini_high"]  # the true uplift beats random beyond the noise
    assert truth["qini_low"] < truth["qini"] < truth["qini_high"]
    assert truth["auuc"] > truth["auuc_random"] and truth["ate"] == pytest.approx(noise["ate"])


def test_the_bootstrap_is_seeded(spark):
    df = spark.createDataFrame(HAND * 20, SCHEMA)
    cells = ue.uplift_cells(df, "treated", "retained", "score", 4)
    first, again = ue.cell_metrics(cells, 50, seed=3), ue.cell_metrics(cells, 50, seed=3)
    other = ue.cell_metrics(cells, 50, seed=4)
    assert first == again and first != other


def test_a_treatment_that_is_not_0_or_1_is_refused(spark):
    df = spark.createDataFrame([(1.0, 2, 1), (0.5, 0, 0)], SCHEMA)
    with pytest.raises(BadValuesError, match="treated or retained that is not 0/1"):
        ue.uplift_metrics(df, "treated", "retained", "score", bins=2)
