"""How good is a churn score: ranking (ROC AUC, PR AUC), calibration (Brier, reliability), the
gains and lift of contacting the riskiest deciles first, and the score threshold that fits a
retention team's capacity.

Input everywhere: a DataFrame with a label column (0/1 as int, long, double or boolean: 1 =
churned) and a score column (double in [0, 1], the predicted churn probability). A null or NaN
score, or a label that is null or not 0/1, raises :class:`BadValuesError`.

The work is done in Spark: the metrics come from one aggregation per distinct score
(positives, negatives), the tables from one aggregation per decile, and only those small
results reach the driver. ROC AUC and average precision equal scikit-learn's
``roc_auc_score`` and ``average_precision_score`` (tests check it), without collecting rows.

Deciles rank from the top: decile 1 holds the highest scores (the subscribers a campaign
contacts first), decile ``n`` the lowest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.core.errors import BadValuesError

# percentile_approx's accuracy: the rank of a cut is off by at most 1/accuracy of the rows
# (0.001 % here), and exact while rows < accuracy. Higher than segments' 10,000 because a
# decile boundary decides who is contacted.
PERCENTILE_ACCURACY = 100_000
# Subtracted from each decile's probability: percentile_approx takes the row at rank
# ceil(p·rows), and p·rows in floating point can land just above a whole rank (0.55·200 =
# 110.00000000000001), which would move one row into the next decile. Harmless below 10**11 rows.
RANK_NUDGE = 1e-12
# Distinct scores brought to the driver for the cumulative sums; above it, scores are grouped
# rounded to SCORE_DIGITS decimals (at most 10**SCORE_DIGITS + 1 groups for scores in [0, 1]).
MAX_DISTINCT_SCORES = 200_000
SCORE_DIGITS = 6
DECILES = 10

GAINS_COLUMNS = [
    "decile",
    "subscribers",
    "churners",
    "churn_rate",
    "mean_score",
    "min_score",
    "max_score",
    "share_of_churners",
    "cum_subscribers_share",
    "cum_churners_share",
    "lift",
    "cum_lift",
]
RELIABILITY_COLUMNS = ["bin", "rows", "mean_predicted", "observed_rate"]


def _label(label_col: str) -> Column:
    return F.col(label_col).cast("double")


def _score(score_col: str) -> Column:
    return F.col(score_col).cast("double")


def _invalid_rows(label_col: str, score_col: str) -> Column:
    """Counts the rows whose label is not 0/1 or whose score is missing (an aggregate)."""
    label, score = _label(label_col), _score(score_col)
    invalid = label.isNull() | ~label.isin(0.0, 1.0) | score.isNull() | F.isnan(score)
    return F.count(F.when(invalid, 1)).alias("invalid")


def _require_valid(invalid: int, label_col: str, score_col: str) -> None:
    if invalid:
        raise BadValuesError(
            f"{invalid} rows have a {label_col} that is not 0/1 or a {score_col} that is null or NaN: "
            f"filter or fill them before evaluating"
        )


def _score_counts(df: DataFrame, label_col: str, score_col: str, max_distinct: int) -> pd.DataFrame:
    """One row per distinct score, highest first: score, min_score, positives, negatives, sse.

    With more than ``max_distinct`` distinct scores, the rows are grouped by the score rounded to
    SCORE_DIGITS decimals instead; ``min_score`` is then the group's lowest exact score (so a
    threshold taken from it selects exactly the groups above) and ``sse`` stays exact."""
    label, score = _label(label_col), _score(score_col)

    def counts_df(key: Column) -> DataFrame:
        return df.groupBy(key.alias("score")).agg(
            F.min(score).alias("min_score"),
            F.count(F.lit(1)).alias("rows"),
            F.sum(label).alias("positives"),
            F.sum((score - label) * (score - label)).alias("sse"),
            _invalid_rows(label_col, score_col),
        )

    pdf = counts_df(score).limit(max_distinct + 1).toPandas()
    if len(pdf) > max_distinct:
        pdf = counts_df(F.round(score, SCORE_DIGITS)).toPandas()
    _require_valid(int(pdf["invalid"].sum()), label_col, score_col)
    pdf = pdf.sort_values("score", ascending=False, ignore_index=True)
    positives = pdf["positives"].fillna(0).astype("int64")
    return pd.DataFrame(
        {
            "score": pdf["score"].astype("float64"),
            "min_score": pdf["min_score"].astype("float64"),
            "positives": positives,
            "negatives": pdf["rows"].astype("int64") - positives,
            "sse": pdf["sse"].astype("float64"),
        }
    )


def binary_metrics(
    df: DataFrame, label_col: str = "label", score_col: str = "score", max_distinct: int = MAX_DISTINCT_SCORES
) -> dict[str, float]:
    """Ranking and calibration of a score against 0/1 labels.

    Returns ``roc_auc`` (probability that a random churner scores above a random non-churner,
    ties counting half: Mann-Whitney U / (P·N), equal to ``sklearn.metrics.roc_auc_score``),
    ``pr_auc`` (average precision: Σ over distinct scores, highest first, of the recall gained at
    that score × the precision of all rows scoring at least that; one threshold per distinct
    score, equal to ``sklearn.metrics.average_precision_score``), ``brier`` (mean of
    (score − label)²), ``base_rate`` (share of positives), ``rows`` and ``positives`` (ints).

    roc_auc and pr_auc are NaN when either class is absent (never an error: a quiet week can have
    no churner); brier and base_rate are NaN on an empty input.

    One Spark aggregation by distinct score; the cumulative sums run on the driver over at most
    ``max_distinct`` distinct scores. Above that, a second aggregation groups the scores rounded
    to 6 decimals, so scores that round alike count as ties in roc_auc and pr_auc (brier and the
    counts stay exact). Cache ``df`` when it is expensive to compute.
    """
    counts = _score_counts(df, label_col, score_col, max_distinct)
    pos = counts["positives"].to_numpy(dtype="float64")
    neg = counts["negatives"].to_numpy(dtype="float64")
    n_pos, n_neg = pos.sum(), neg.sum()
    rows = n_pos + n_neg
    roc_auc = pr_auc = math.nan
    if n_pos > 0 and n_neg > 0:
        true_pos, false_pos = np.cumsum(pos), np.cumsum(neg)
        # A churner at score s beats the non-churners below s and ties with those at s.
        roc_auc = float(np.sum(pos * (n_neg - false_pos + 0.5 * neg)) / (n_pos * n_neg))
        pr_auc = float(np.sum(pos / n_pos * true_pos / (true_pos + false_pos)))
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "brier": float(counts["sse"].sum() / rows) if rows else math.nan,
        "base_rate": float(n_pos / rows) if rows else math.nan,
        "rows": int(rows),
        "positives": int(n_pos),
    }


def decile_cuts(df: DataFrame, score_col: str = "score", n: int = DECILES) -> list[float]:
    """The ``n − 1`` scores that split ``df`` into ``n`` groups, from the top, in descending order.

    ``cuts[k − 1]`` is the score of the row ranked ``k·rows/n`` from the highest (by
    ``percentile_approx`` of the negated score, exact while rows < PERCENTILE_ACCURACY), so
    :func:`with_decile` puts the top ``rows/n`` rows in decile 1, the next in decile 2, and so on.
    Repeated scores can make cuts equal, and the deciles between them then empty. Null scores are
    ignored. Raises :class:`BadValuesError` when the column has no non-null score.
    """
    if n < 2:
        return []
    probabilities = [k / n - RANK_NUDGE for k in range(1, n)]
    negated = df.agg(F.percentile_approx(-_score(score_col), probabilities, PERCENTILE_ACCURACY)).first()[0]
    if negated is None:
        raise BadValuesError(f"decile_cuts: {score_col} has no non-null values to cut into deciles")
    return [-value + 0.0 for value in negated]  # + 0.0 turns the -0.0 of a zero score into 0.0


def with_decile(
    df: DataFrame, cuts: Sequence[float], score_col: str = "score", decile_col: str = "decile"
) -> DataFrame:
    """Adds ``decile_col`` (int): 1 for ``score >= cuts[0]``, k for ``cuts[k − 2] > score >= cuts[k − 1]``,
    ``len(cuts) + 1`` below the last cut; null for a null score. ``cuts`` are descending, as from
    :func:`decile_cuts`; a score equal to a cut goes to the riskier decile."""
    score = _score(score_col)
    decile = None
    for k, cut in enumerate(cuts, start=1):
        condition = score >= F.lit(float(cut))
        decile = F.when(condition, F.lit(k)) if decile is None else decile.when(condition, F.lit(k))
    lowest = score.isNotNull()
    decile = F.when(lowest, F.lit(len(cuts) + 1)) if decile is None else decile.when(lowest, F.lit(len(cuts) + 1))
    return df.withColumn(decile_col, decile.cast("int"))


def _nonzero(total: float) -> float:
    """A total to divide by: NaN instead of 0, so that a share of nothing is NaN, not an error."""
    return float(total) if total else math.nan


def _decile_summary(df: DataFrame, label_col: str, score_col: str, n: int) -> pd.DataFrame:
    """Per decile 1..n (empty ones included): rows, positives, mean, min and max score."""
    cuts = decile_cuts(df, score_col, n)
    pdf = (
        df.transform(with_decile, cuts, score_col, "_decile")
        .groupBy("_decile")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(_label(label_col)).alias("positives"),
            F.avg(_score(score_col)).alias("mean_score"),
            F.min(_score(score_col)).alias("min_score"),
            F.max(_score(score_col)).alias("max_score"),
            _invalid_rows(label_col, score_col),
        )
        .toPandas()
    )
    _require_valid(int(pdf["invalid"].sum()), label_col, score_col)
    pdf = pdf.set_index("_decile").reindex(range(1, len(cuts) + 2))
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(cuts) + 2, dtype="int64"),
            "rows": pdf["rows"].fillna(0).to_numpy(dtype="int64"),
            "positives": pdf["positives"].fillna(0).to_numpy(dtype="int64"),
            "mean_score": pdf["mean_score"].to_numpy(dtype="float64"),
            "min_score": pdf["min_score"].to_numpy(dtype="float64"),
            "max_score": pdf["max_score"].to_numpy(dtype="float64"),
        }
    )


def gains_table(df: DataFrame, label_col: str = "label", score_col: str = "score", n: int = DECILES) -> pd.DataFrame:
    """The gains (lift) table: one row per decile 1..n, riskiest first, empty deciles included.

    Columns: decile, subscribers, churners, churn_rate (churners / subscribers), mean_score,
    min_score, max_score (NaN in an empty decile), share_of_churners (of all churners),
    cum_subscribers_share and cum_churners_share (deciles 1..this one: the x and y of the gains
    curve), lift (churn_rate / overall churn rate) and cum_lift (cumulative churn rate / overall).
    Shares and lifts are NaN when there is no churner. Two Spark jobs: the cuts, then one
    aggregation by decile.
    """
    summary = _decile_summary(df, label_col, score_col, n)
    subscribers, churners = summary["rows"], summary["positives"]
    cum_subscribers, cum_churners = subscribers.cumsum(), churners.cumsum()
    total_subscribers, total_churners = _nonzero(subscribers.sum()), _nonzero(churners.sum())
    overall_rate = total_churners / total_subscribers
    churn_rate = churners / subscribers.where(subscribers > 0)
    gains = pd.DataFrame(
        {
            "decile": summary["decile"],
            "subscribers": subscribers,
            "churners": churners,
            "churn_rate": churn_rate,
            "mean_score": summary["mean_score"],
            "min_score": summary["min_score"],
            "max_score": summary["max_score"],
            "share_of_churners": churners / total_churners,
            "cum_subscribers_share": cum_subscribers / total_subscribers,
            "cum_churners_share": cum_churners / total_churners,
            "lift": churn_rate / overall_rate,
            "cum_lift": cum_churners / cum_subscribers.where(cum_subscribers > 0) / overall_rate,
        }
    )
    return gains[GAINS_COLUMNS].astype({c: "float64" for c in GAINS_COLUMNS[3:]})


def top_decile_lift(gains: pd.DataFrame) -> float:
    """The lift of decile 1 of a :func:`gains_table`: how many times the overall churn rate the
    riskiest tenth churns at (NaN when there is no churner)."""
    return float(gains.loc[gains["decile"] == 1, "lift"].iloc[0])


def reliability_table(
    df: DataFrame, label_col: str = "label", score_col: str = "score", n: int = DECILES
) -> pd.DataFrame:
    """Calibration by score decile (the same cuts as :func:`gains_table`): one row per bin 1..n,
    bin 1 holding the highest scores, with rows, mean_predicted (mean score) and observed_rate
    (share of positives); both NaN in an empty bin. A calibrated score has mean_predicted close
    to observed_rate in every bin."""
    summary = _decile_summary(df, label_col, score_col, n)
    rows = summary["rows"]
    return pd.DataFrame(
        {
            "bin": summary["decile"],
            "rows": rows,
            "mean_predicted": summary["mean_score"],
            "observed_rate": (summary["positives"] / rows.where(rows > 0)).astype("float64"),
        }
    )[RELIABILITY_COLUMNS]


def capacity_threshold(
    df: DataFrame, label_col: str, score_col: str, capacity: int, max_distinct: int = MAX_DISTINCT_SCORES
) -> dict:
    """The score threshold that fills a contact capacity: the lowest score ``t`` among the rows
    such that at most ``capacity`` rows have ``score >= t``. Rows tied at a score are selected
    together or not at all, so the selection never exceeds the capacity and may fall short of it.

    When even the top score is held by more than ``capacity`` rows (or ``capacity`` is 0),
    nothing is selected and ``threshold`` is the next double above the top score, so that
    ``score >= threshold`` still selects exactly the reported rows (none); on an empty input it is
    ``inf``.

    Returns threshold (float), capacity, selected, churners_selected (ints), precision (share of
    churners among the selected, NaN if none selected) and recall (share of all churners
    selected, NaN if there is none). With more than ``max_distinct`` distinct scores, rows are
    selected by score groups rounded to 6 decimals (see :func:`binary_metrics`); the threshold is
    then the lowest exact score of the last group taken, and the counts stay exact.
    """
    counts = _score_counts(df, label_col, score_col, max_distinct)
    rows = (counts["positives"] + counts["negatives"]).cumsum()
    churners = counts["positives"].cumsum()
    total_churners = int(counts["positives"].sum())
    fits = np.flatnonzero(rows.to_numpy() <= capacity)
    if len(fits):
        last = fits[-1]
        threshold = float(counts["min_score"].iloc[last])
        selected, churners_selected = int(rows.iloc[last]), int(churners.iloc[last])
    else:
        threshold = math.nextafter(float(counts["score"].max()), math.inf) if len(counts) else math.inf
        selected = churners_selected = 0
    return {
        "threshold": threshold,
        "capacity": capacity,
        "selected": selected,
        "churners_selected": churners_selected,
        "precision": churners_selected / selected if selected else math.nan,
        "recall": churners_selected / total_churners if total_churners else math.nan,
    }


def _pyplot():
    """matplotlib's pyplot on the file-only backend (chosen here, not at import, so that importing
    crmlake never changes the backend of a notebook)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_gains(gains_pdf: pd.DataFrame, path: str | Path) -> Path:
    """The cumulative gains curve of a :func:`gains_table`: share of churners captured against
    share of subscribers contacted, riskiest decile first, beside the diagonal of a random
    order. Writes a PNG and returns its path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    x = np.concatenate([[0.0], gains_pdf["cum_subscribers_share"].to_numpy(dtype="float64")])
    y = np.concatenate([[0.0], gains_pdf["cum_churners_share"].to_numpy(dtype="float64")])
    ax.plot(x, y, marker="o", color="tab:blue", label="model")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="random")
    ax.set_xlabel("share of subscribers contacted")
    ax.set_ylabel("share of churners captured")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    return _save(fig, path)


def plot_reliability(rel_pdf: pd.DataFrame, path: str | Path) -> Path:
    """The reliability diagram of a :func:`reliability_table`: observed churn rate against mean
    predicted probability per bin, beside the diagonal of a calibrated score. Writes a PNG and
    returns its path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(rel_pdf["mean_predicted"], rel_pdf["observed_rate"], marker="o", color="tab:blue", label="model")
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="calibrated")
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.legend(loc="upper left")
    return _save(fig, path)


def plot_importances(names: Sequence[str], values: Sequence[float], path: str | Path, top: int = 20) -> Path:
    """A horizontal bar chart of the ``top`` features by absolute importance, largest at the top.
    Writes a PNG and returns its path."""
    plt = _pyplot()
    order = np.argsort(-np.abs(np.asarray(values, dtype="float64")), kind="stable")[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(order) + 1.2))
    ax.barh([names[i] for i in order], [values[i] for i in order], color="tab:blue")
    ax.set_xlabel("importance")
    return _save(fig, path)
