"""Is the churn model still looking at the population it was trained on, and do its scores come
true: feature drift as the Population Stability Index (PSI) against a reference sample, and
realized churn by score decile once the labels of a scoring date have matured.

PSI = Σ over bins (current share − reference share) · ln(current share / reference share),
shares floored at ``eps`` so that an empty bin counts as rare rather than infinite. Common
reading: below 0.1 stable, 0.1-0.25 some shift, above 0.25 a shift to act on (the configured
alarm is ``churn.psi_threshold``).

Bins come from the reference alone, so that the current side is judged against fixed bins:

- numeric columns: edges at the reference's quantiles (``percentile_approx``; repeated edges
  dropped, so a column with few values gets fewer bins); bins are ``[edge_i, edge_i+1)``, the
  first open below and the last open above; null (and NaN) is its own bin ``missing``;
- string and boolean columns: one bin per category of the reference, ``other`` for categories
  the reference never had, and ``missing`` for null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.core.errors import ConfigError, MissingColumnsError
from crmlake.models.evaluation import PERCENTILE_ACCURACY

PSI_BINS = 10
PSI_EPS = 1e-4
# Categories a column may have in the reference: PSI by category is meant for plans, channels,
# regions, flags; an identifier or free text would bring a table-sized result to the driver.
MAX_CATEGORIES = 1_000
MISSING = "missing"
OTHER = "other"

PSI_COLUMNS = ["bin", "reference_share", "current_share", "contribution"]
PSI_TABLE_COLUMNS = ["feature", "psi", "bins", "kind"]


@dataclass(frozen=True)
class _Binning:
    """How one column is binned: numeric by ``edges``, categorical by ``categories``."""

    column: str
    kind: str  # "numeric" or "categorical"
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def labels(self) -> list[str]:
        """Bin labels in code order (code 0, 1, ...), then ``missing``."""
        if self.kind == "categorical":
            return [*self.categories, OTHER, MISSING]
        bounds = ["-inf", *(f"{e:.6g}" for e in self.edges), "inf"]
        return [f"[{lo}, {hi})" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)] + [MISSING]

    def value(self) -> Column:
        """The column as binned: numbers as double with NaN as null, categories as strings."""
        c = F.col(self.column)
        if self.kind == "categorical":
            return c.cast("string")
        c = c.cast("double")
        return F.when(~F.isnan(c), c)

    def code(self) -> Column:
        """The bin of each row as an int in label order; null for ``missing``."""
        value = self.value()
        if self.kind == "numeric":
            # How many edges the value reaches: 0 below the first edge, len(edges) at or above the last.
            reached = [(value >= F.lit(e)).cast("int") for e in self.edges]
            return sum(reached[1:], reached[0]) if reached else F.when(value.isNotNull(), F.lit(0))
        if not self.categories:  # a reference with no value at all: everything present is new
            return F.when(value.isNotNull(), F.lit(0))
        position = F.array_position(F.array(*(F.lit(c) for c in self.categories)), value).cast("int")
        return F.when(position > 0, position - 1).when(position == 0, F.lit(len(self.categories)))


def _kind(dtype: T.DataType, column: str) -> str:
    if isinstance(dtype, T.NumericType):
        return "numeric"
    if isinstance(dtype, T.StringType | T.BooleanType):
        return "categorical"
    raise ConfigError(f"psi: {column} is {dtype.simpleString()}; PSI bins numeric, string and boolean columns")


def _binnings(
    reference_df: DataFrame, current_df: DataFrame, columns: Sequence[str], bins: int, max_categories: int
) -> list[_Binning]:
    """Bins of each column from the reference: one Spark job for the quantiles of every numeric
    column, one for the categories of every categorical column."""
    for side, df in (("reference", reference_df), ("current", current_df)):
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise MissingColumnsError(f"psi: the {side} DataFrame lacks {missing}")
    binnings = []
    for c in columns:
        kind = _kind(reference_df.schema[c].dataType, c)
        if _kind(current_df.schema[c].dataType, c) != kind:
            raise ConfigError(f"psi: {c} is {kind} in the reference but not in the current DataFrame")
        binnings.append(_Binning(c, kind))

    numeric = [b for b in binnings if b.kind == "numeric"]
    edges: dict[str, tuple[float, ...]] = {}
    if numeric:
        probabilities = [k / bins for k in range(1, bins)]
        quantiles = reference_df.agg(
            *(F.percentile_approx(b.value(), probabilities, PERCENTILE_ACCURACY).alias(b.column) for b in numeric)
        ).first()
        edges = {b.column: tuple(sorted({float(q) for q in quantiles[b.column] or ()})) for b in numeric}

    categorical = [b for b in binnings if b.kind == "categorical"]
    categories: dict[str, tuple[str, ...]] = {}
    if categorical:
        pairs = F.array(*(F.struct(F.lit(b.column).alias("feature"), b.value().alias("value")) for b in categorical))
        values = (
            reference_df.select(F.inline(pairs))
            .where(F.col("value").isNotNull())
            .distinct()
            .limit(len(categorical) * max_categories + 1)
            .toPandas()
        )
        counts = values["feature"].value_counts()
        if len(counts) and counts.max() > max_categories:
            raise ConfigError(
                f"psi: {counts.idxmax()} has more than {max_categories} categories in the reference; "
                f"PSI by category is meant for low-cardinality columns: bin or leave it out"
            )
        categories = {b.column: tuple(sorted(values.loc[values["feature"] == b.column, "value"])) for b in categorical}

    return [_Binning(b.column, b.kind, edges.get(b.column, ()), categories.get(b.column, ())) for b in binnings]


def _bin_counts(df: DataFrame, binnings: Sequence[_Binning]) -> pd.DataFrame:
    """Rows per (feature, code) of every column in one aggregation; a null code is ``missing``."""
    pairs = F.array(*(F.struct(F.lit(b.column).alias("feature"), b.code().alias("code")) for b in binnings))
    return df.select(F.inline(pairs)).groupBy("feature", "code").agg(F.count(F.lit(1)).alias("rows")).toPandas()


def _shares(counts: pd.DataFrame, binning: _Binning) -> np.ndarray:
    """Share of rows per bin in label order (``missing`` last); NaN on an empty side."""
    mine = counts[counts["feature"] == binning.column]
    missing = len(binning.labels) - 1
    codes = mine["code"].fillna(missing).to_numpy(dtype="int64")
    rows = np.bincount(codes, weights=mine["rows"].to_numpy(dtype="float64"), minlength=len(binning.labels))
    total = rows.sum()
    return rows / total if total else np.full(len(rows), math.nan)


def _psi_frame(
    binning: _Binning, reference_counts: pd.DataFrame, current_counts: pd.DataFrame, eps: float
) -> pd.DataFrame:
    """One column's PSI bin by bin, from the bin counts of both sides."""
    reference = np.maximum(_shares(reference_counts, binning), eps)
    current = np.maximum(_shares(current_counts, binning), eps)
    contribution = (current - reference) * np.log(current / reference)
    return pd.DataFrame(
        {"bin": binning.labels, "reference_share": reference, "current_share": current, "contribution": contribution}
    )


def _psi_details(
    reference_df: DataFrame,
    current_df: DataFrame,
    columns: Sequence[str],
    bins: int,
    eps: float,
    max_categories: int,
) -> list[tuple[_Binning, pd.DataFrame]]:
    binnings = _binnings(reference_df, current_df, columns, bins, max_categories)
    reference_counts, current_counts = _bin_counts(reference_df, binnings), _bin_counts(current_df, binnings)
    return [(b, _psi_frame(b, reference_counts, current_counts, eps)) for b in binnings]


def psi(
    reference_df: DataFrame,
    current_df: DataFrame,
    column: str,
    bins: int = PSI_BINS,
    eps: float = PSI_EPS,
    max_categories: int = MAX_CATEGORIES,
) -> pd.DataFrame:
    """The PSI of one column, bin by bin: one row per bin (``bin`` label, ``reference_share``,
    ``current_share``, both floored at ``eps``, and ``contribution`` = (current − reference) ·
    ln(current / reference)); the PSI is the sum of ``contribution`` (:func:`psi_value`).

    Numeric bins are labelled ``[lo, hi)`` (edges to 6 significant digits), categorical ones by
    the category; ``other`` (categorical only) and ``missing`` are always listed, empty or not.
    Shares are NaN when a side has no rows. Raises :class:`MissingColumnsError` when a side
    lacks the column and :class:`ConfigError` for a column that is neither numeric, string nor
    boolean, or has more than ``max_categories`` categories.
    """
    return _psi_details(reference_df, current_df, [column], bins, eps, max_categories)[0][1][PSI_COLUMNS]


def psi_value(
    reference_df: DataFrame,
    current_df: DataFrame,
    column: str,
    bins: int = PSI_BINS,
    eps: float = PSI_EPS,
    max_categories: int = MAX_CATEGORIES,
) -> float:
    """The PSI of one column: the sum of :func:`psi`'s contributions."""
    return float(psi(reference_df, current_df, column, bins, eps, max_categories)["contribution"].sum())


def psi_table(
    reference_df: DataFrame,
    current_df: DataFrame,
    columns: Sequence[str],
    bins: int = PSI_BINS,
    eps: float = PSI_EPS,
    max_categories: int = MAX_CATEGORIES,
) -> pd.DataFrame:
    """The PSI of many columns: one row per column, in the order given, with ``feature``, ``psi``,
    ``bins`` (value bins formed from the reference: quantile bins after dropping repeated edges,
    or categories; ``other`` and ``missing`` not counted) and ``kind`` (numeric or categorical).

    Four Spark aggregations whatever the number of columns: the reference's quantiles, the
    reference's categories, then one aggregation per side over all columns at once.
    """
    rows = [
        {
            "feature": b.column,
            "psi": float(detail["contribution"].sum()),
            "bins": len(b.edges) + 1 if b.kind == "numeric" else len(b.categories),
            "kind": b.kind,
        }
        for b, detail in _psi_details(reference_df, current_df, columns, bins, eps, max_categories)
    ]
    return pd.DataFrame(rows, columns=PSI_TABLE_COLUMNS).astype({"bins": "int64", "psi": "float64"})


def realized_by_decile(scores_df: DataFrame, labels_df: DataFrame) -> DataFrame:
    """Predicted against realized churn per scoring date and decile, once labels have matured.

    ``scores_df``: subscriber_key, score_date (date), decile (int), probability (double);
    ``labels_df``: subscriber_key, snapshot_date, is_churned (boolean). The two meet on
    subscriber_key and score_date = snapshot_date (inner join: a scored subscriber without a
    label yet is left out). Each (subscriber_key, date) must be unique on both sides; a joined
    pair seen twice fails the query with a message naming the subscriber, rather than
    counting them twice.

    Returns score_date, decile, subscribers, predicted_rate (mean probability), realized_rate
    (share churned) and difference (realized_rate − predicted_rate: positive when the model
    under-predicts churn).
    """
    keys = ["subscriber_key", "score_date"]
    joined_df = scores_df.select(*keys, "decile", "probability").join(
        labels_df.select("subscriber_key", F.col("snapshot_date").alias("score_date"), "is_churned"),
        on=keys,
        how="inner",
    )
    matches = F.count(F.lit(1)).over(Window.partitionBy(*keys))
    duplicate = F.raise_error(
        F.concat(
            F.lit("realized_by_decile: subscriber_key "),
            F.col("subscriber_key").cast("string"),
            F.lit(" on "),
            F.col("score_date").cast("string"),
            F.lit(
                " has more than one score or label row; (subscriber_key, score_date) must be unique in the scores "
                "and (subscriber_key, snapshot_date) in the labels"
            ),  # fmt: skip
        )
    )
    checked_df = joined_df.withColumn(
        "is_churned", F.when(matches > 1, duplicate).otherwise(F.col("is_churned").cast("double"))
    )
    return (
        checked_df.groupBy("score_date", "decile")
        .agg(
            F.count(F.lit(1)).alias("subscribers"),
            F.avg("probability").alias("predicted_rate"),
            F.avg("is_churned").alias("realized_rate"),
        )
        .select(
            "score_date",
            "decile",
            "subscribers",
            "predicted_rate",
            "realized_rate",
            (F.col("realized_rate") - F.col("predicted_rate")).alias("difference"),
        )
    )
