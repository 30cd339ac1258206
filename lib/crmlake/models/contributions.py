"""Per-subscriber reasons for a churn score: how much each feature moved this subscriber's raw
score, such that ``bias + sum(contributions) == raw score`` on every row (to rounding).

Raw score, per model type (binary classifiers only):

- ``LogisticRegressionModel``: the log-odds, ``intercept + w·x`` (``rawPrediction[1]``).
- ``GBTClassificationModel``: the log-odds of the predicted probability, which is **twice** the
  margin ``sum(treeWeights[t] * tree_t(x))`` that ``rawPrediction[1]`` holds: MLlib's GBT log loss
  is ``2·log(1 + exp(-2·y·margin))``, so its probability is ``1 / (1 + exp(-2·margin))``.
- ``RandomForestClassificationModel``: the probability of class 1, i.e. the mean over the trees of
  the class-1 share of the leaf's class counts (each tree's counts are normalized before they are
  averaged; ``treeWeights`` are all 1 and MLlib ignores them).

Trees (random forest and GBT) are attributed along the decision path (Saabas): walking a row
from the root to its leaf, each split adds ``weight × (value(child) - value(parent))`` to the
feature it splits on, and ``bias = sum over trees of weight × value(root)``. ``value(node)`` is
the node's prediction for a GBT's regression trees and the class-1 share of the node's (weighted)
training class counts for a random forest's trees; ``weight`` is ``2 × treeWeights[t]`` for a GBT
and ``1 / numTrees`` for a random forest. A split follows MLlib: a continuous split goes left when
``value <= threshold`` (NaN goes right), a categorical one when the category is one of its left
categories. A value that is none of a categorical split's categories (unseen, fractional, NaN)
goes left only when more than ``numCategories // 2`` of them go left: MLlib keeps the smaller of
the two sets and tests membership in it. The trees' nodes are read once per call, by saving the
model to a temporary directory and reading back the one-row-per-node table MLlib writes there:
about 6 s for 100 trees of depth 10 (57,000 nodes) on two cores, where reading them through py4j,
one call per node attribute, took a minute (about a millisecond per node).

Logistic regression is attributed against an average subscriber: ``contribution_j = w_j × (x_j -
mean_j)`` and ``bias = intercept + sum_j w_j × mean_j``, where ``x`` is the model's input vector
and ``means`` the training means of that vector. A contribution thus says how far this
subscriber's value pushes the log-odds away from those of a subscriber with average values.

The input vector may hold several slots per source feature (a one-hot encoded categorical).
``slot_features`` names the source feature of each slot, in vector order, repeated for one-hot
slots; ``contributions`` holds one sum per distinct source feature, in the order in which the
names first appear there (:func:`source_features` gives that list).

All functions keep every column of ``df`` and add ``bias`` (double; the same for every row of a
model) and ``contributions`` (array<double>); :func:`top_drivers` turns the contributions into the
few features that pushed a score up the most.
"""

from __future__ import annotations

import functools
import operator
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.ml.classification import (
    GBTClassificationModel,
    LogisticRegressionModel,
    RandomForestClassificationModel,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

BIAS = "bias"
CONTRIBUTIONS = "contributions"
DRIVERS = "drivers"

# MLlib's GBT probability is 1 / (1 + exp(-2·margin)): its log-odds are twice the margin.
GBT_LOG_ODDS_PER_MARGIN = 2.0

TreeModel = GBTClassificationModel | RandomForestClassificationModel


def source_features(slot_features: Sequence[str]) -> list[str]:
    """The distinct source features of ``slot_features`` in the order of first appearance: the
    names of the ``contributions`` array's elements."""
    return list(dict.fromkeys(slot_features))


def contributions(
    df: DataFrame,
    model: LogisticRegressionModel | TreeModel,
    features_col: str,
    slot_features: Sequence[str],
    means: Sequence[float] | None = None,
) -> DataFrame:
    """``df`` plus ``bias`` and ``contributions`` of ``model``'s raw score (see the module
    docstring), by :func:`linear_contributions` or :func:`tree_contributions` as the model's type
    says. ``model`` is the fitted classifier itself, not the ``PipelineModel`` around it;
    ``means`` is required for a logistic regression and ignored for trees."""
    if isinstance(model, LogisticRegressionModel):
        if means is None:
            raise ValueError("linear contributions need the training means of the model's input vector (means=...)")
        return linear_contributions(df, model, features_col, slot_features, means)
    if isinstance(model, GBTClassificationModel | RandomForestClassificationModel):
        return tree_contributions(df, model, features_col, slot_features)
    hint = " (pass the fitted classifier, e.g. pipeline_model.stages[-1])" if hasattr(model, "stages") else ""
    raise TypeError(
        f"contributions support LogisticRegressionModel, RandomForestClassificationModel and "
        f"GBTClassificationModel, not {type(model).__name__}{hint}"
    )


def linear_contributions(
    df: DataFrame,
    model: LogisticRegressionModel,
    features_col: str,
    slot_features: Sequence[str],
    means: Sequence[float],
) -> DataFrame:
    """``df`` plus ``bias`` and ``contributions`` of a binary logistic regression's log-odds:
    ``w_j × (x_j - mean_j)`` summed per source feature, ``bias = intercept + sum_j w_j × mean_j``.
    ``features_col`` is the model's input vector column (non-null); ``means`` has one training
    mean per slot of it."""
    if model.coefficientMatrix.numRows != 1:
        raise ValueError(
            f"linear contributions need a binary logistic regression, not one with {model.numClasses} classes "
            f"(family={model.getFamily()!r}); fit it with family='binomial'"
        )
    weights = model.coefficients.toArray().tolist()
    _check_slots(slot_features, len(weights))
    if len(means) != len(weights):
        raise ValueError(f"means has {len(means)} values but the model's input vector has {len(weights)} slots")
    x = vector_to_array(F.col(features_col))
    slot_terms = [F.lit(w) * (x[j] - F.lit(float(m))) for j, (w, m) in enumerate(zip(weights, means, strict=True))]
    by_source = [
        functools.reduce(operator.add, (slot_terms[j] for j in slots)) for slots in _slots_by_source(slot_features)
    ]
    bias = model.intercept + sum(w * float(m) for w, m in zip(weights, means, strict=True))
    return df.withColumn(BIAS, F.lit(bias)).withColumn(CONTRIBUTIONS, F.array(*by_source))


def tree_contributions(df: DataFrame, model: TreeModel, features_col: str, slot_features: Sequence[str]) -> DataFrame:
    """``df`` plus ``bias`` and ``contributions`` of a binary random forest's class-1 probability
    or a GBT's log-odds, by path attribution (see the module docstring). ``features_col`` is the
    model's input vector column (non-null). The trees are read once, into the driver, through
    ``df``'s session (see :func:`_read_forest`); the rows are walked on the executors, all trees at
    once, one tree level per step."""
    tree_weights = model.treeWeights
    if isinstance(model, GBTClassificationModel):
        weights = [GBT_LOG_ODDS_PER_MARGIN * w for w in tree_weights]
        node_value = _prediction()
    elif isinstance(model, RandomForestClassificationModel):
        if model.numClasses != 2:
            raise ValueError(f"tree contributions need a binary random forest, not one with {model.numClasses} classes")
        weights = [1.0 / len(tree_weights)] * len(tree_weights)
        node_value = _class_1_share()
    else:
        raise TypeError(
            f"tree contributions support RandomForestClassificationModel and GBTClassificationModel, "
            f"not {type(model).__name__}"
        )
    _check_slots(slot_features, model.numFeatures)
    sources = _source_of_slot(slot_features)
    forest = _read_forest(df.sparkSession, model, weights, node_value, sources)
    bias = float(np.sum(forest.weights * forest.value[forest.roots]))
    n_slots, n_sources = model.numFeatures, len(source_features(slot_features))

    # A pandas UDF because no built-in walks a tree. A scalar one rather than mapInPandas: only
    # the input vector (as an array) travels to Python and back comes one array, while the other
    # columns stay in the JVM (mapInPandas would round-trip them all, and it cannot return a
    # VectorUDT column such as the features themselves). The forest's arrays travel inside the
    # UDF; PySpark broadcasts a UDF bigger than spark.broadcast.UDFCompressionThreshold (1 MB).
    @F.pandas_udf(T.ArrayType(T.DoubleType()))
    def walk(features: pd.Series) -> pd.Series:
        x = np.stack(features.to_numpy()) if len(features) else np.empty((0, n_slots))
        return pd.Series(list(_path_contributions(forest, n_sources, x)))

    return df.withColumn(BIAS, F.lit(bias)).withColumn(CONTRIBUTIONS, walk(vector_to_array(F.col(features_col))))


def top_drivers(
    df: DataFrame, feature_names: Sequence[str], k: int = 3, contributions_col: str = CONTRIBUTIONS
) -> DataFrame:
    """``df`` plus ``drivers``: array<struct<feature: string, contribution: double>> of the ``k``
    largest positive contributions (those pushing the score towards churn), largest first; fewer
    when fewer are positive, empty when none is. Equal contributions keep the order of
    ``feature_names``, which names the elements of ``contributions_col`` (see
    :func:`source_features`). Zero, negative and NaN contributions are never drivers."""
    if k < 1:
        raise ValueError(f"top_drivers needs k >= 1, not {k}")
    names = F.array(*[F.lit(name) for name in feature_names])
    # sort_array orders structs field by field: contribution first, then the negated position
    # so that of two equal contributions the feature named first comes first (descending).
    ranked = F.transform(
        F.col(contributions_col),
        lambda c, i: F.struct(c.alias("contribution"), (-i).alias("neg_position"), F.get(names, i).alias("feature")),
    )
    positive = F.filter(ranked, lambda d: (d["contribution"] > 0) & ~F.isnan(d["contribution"]))
    top = F.slice(F.sort_array(positive, asc=False), 1, k)
    return df.withColumn(
        DRIVERS,
        F.transform(top, lambda d: F.struct(d["feature"].alias("feature"), d["contribution"].alias("contribution"))),
    )


@dataclass(frozen=True)
class _Forest:
    """All trees' nodes in flat arrays (one element per node, trees one after the other)."""

    roots: np.ndarray  # node index of each tree's root
    weights: np.ndarray  # each tree's weight in the raw score
    slot: np.ndarray  # the split's slot of the input vector; -1 at a leaf
    source: np.ndarray  # the split's source feature (index into source_features)
    threshold: np.ndarray  # a continuous split goes left when value <= threshold
    is_categorical: np.ndarray
    n_categories: np.ndarray  # a categorical split's categories are 0 .. n_categories - 1
    left_categories: np.ndarray  # (node, category): a categorical split sends the category left
    other_goes_left: np.ndarray  # where a categorical split sends a value that is no category
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    depth: int  # the longest path from a root to a leaf, in splits


def _path_contributions(forest: _Forest, n_sources: int, x: np.ndarray) -> np.ndarray:
    """Contributions (rows × source features) of the rows of ``x`` (rows × slots): every row
    descends every tree one level per step, each split crediting its source feature."""
    n_rows = len(x)
    node = np.tile(forest.roots, (n_rows, 1))
    out = np.zeros(n_rows * n_sources)
    for _ in range(forest.depth):
        row, tree = np.nonzero(forest.slot[node] >= 0)
        if row.size == 0:
            break
        here = node[row, tree]
        value = x[row, forest.slot[here]]
        goes_left = np.where(
            forest.is_categorical[here],
            _categorical_goes_left(forest, here, value),
            value <= forest.threshold[here],
        )
        child = np.where(goes_left, forest.left[here], forest.right[here])
        gain = forest.weights[tree] * (forest.value[child] - forest.value[here])
        out += np.bincount(row * n_sources + forest.source[here], weights=gain, minlength=n_rows * n_sources)
        node[row, tree] = child
    return out.reshape(n_rows, n_sources)


def _categorical_goes_left(forest: _Forest, node: np.ndarray, value: np.ndarray) -> np.ndarray:
    """MLlib's ``CategoricalSplit.shouldGoLeft`` for each (node, value)."""
    known = (value >= 0) & (value < forest.n_categories[node]) & (value == np.floor(value))
    category = np.where(known, value, 0).astype(np.int64)
    return np.where(known, forest.left_categories[node, category], forest.other_goes_left[node])


def _read_forest(
    spark: SparkSession, model: TreeModel, weights: Sequence[float], node_value: Column, sources: np.ndarray
) -> _Forest:
    """``model``'s trees as a :class:`_Forest`, with ``node_value`` (over MLlib's ``nodeData``
    struct) as each node's value.

    Reading node by node through py4j costs a call per node attribute; MLlib's own persistence
    writes every tree's nodes as one table instead, one row per node: ``treeID`` and ``nodeData``
    (``id``, numbered from 0 at each root in pre-order, ``prediction``, ``impurityStats``,
    ``leftChild`` and ``rightChild`` (-1 at a leaf) and ``split``: ``featureIndex`` (-1 at a leaf),
    ``leftCategoriesOrThreshold`` and ``numCategories``, -1 for a continuous split, whose threshold
    is the one element of ``leftCategoriesOrThreshold``). So the model is saved to a temporary
    directory and that table is read back and collected: it holds the model, not the data."""
    with tempfile.TemporaryDirectory() as folder:
        model.write().session(spark).overwrite().save(folder)
        nodes = (
            spark.read.parquet(f"{folder}/data")
            .select(
                F.col("treeID").alias("tree"),
                F.col("nodeData.id").alias("id"),
                node_value.alias("value"),
                F.col("nodeData.leftChild").alias("left"),
                F.col("nodeData.rightChild").alias("right"),
                F.col("nodeData.split.featureIndex").alias("slot"),
                F.col("nodeData.split.numCategories").alias("n_categories"),
                F.col("nodeData.split.leftCategoriesOrThreshold").alias("categories_or_threshold"),
            )
            .toArrow()
            .sort_by([("tree", "ascending"), ("id", "ascending")])
        )
    tree, node_id, left, right, slot, n_categories = (
        nodes.column(name).to_numpy().astype(np.int64)
        for name in ("tree", "id", "left", "right", "slot", "n_categories")
    )
    n_trees = len(weights)
    sizes = np.bincount(tree, minlength=n_trees)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    if len(sizes) != n_trees or not np.array_equal(node_id, np.arange(len(tree)) - roots[tree]):
        raise ValueError(
            f"the saved model's node table does not number each of its {n_trees} trees' nodes 0, 1, ...: "
            "MLlib's tree persistence has changed"
        )
    # Children as indices into the flat arrays: each tree's ids are offset by its root's index.
    left = np.where(left >= 0, roots[tree] + left, -1)
    right = np.where(right >= 0, roots[tree] + right, -1)

    is_categorical = (slot >= 0) & (n_categories >= 0)
    listed = nodes.column("categories_or_threshold").combine_chunks()
    lengths = listed.value_lengths().to_numpy()
    listed_values = listed.flatten().to_numpy()
    owner = np.repeat(np.arange(len(tree)), lengths)  # the node of each element of listed_values
    is_threshold = (slot >= 0) & ~is_categorical
    threshold = np.full(len(tree), np.nan)
    threshold[is_threshold] = listed_values[(np.cumsum(lengths) - lengths)[is_threshold]]
    in_categorical = is_categorical[owner]
    left_categories = np.zeros((len(tree), max(1, n_categories.max())), dtype=bool)
    left_categories[owner[in_categorical], listed_values[in_categorical].astype(np.int64)] = True
    n_left_categories = np.where(is_categorical, lengths, 0)

    return _Forest(
        roots=roots,
        weights=np.array(weights, dtype=np.float64),
        slot=slot,
        source=np.where(slot >= 0, sources[slot], -1),
        threshold=threshold,
        is_categorical=is_categorical,
        n_categories=np.where(is_categorical, n_categories, 0),
        left_categories=left_categories,
        # MLlib keeps the left categories when they are at most n // 2, else the right ones, and
        # sends whatever is not in the kept set the other way.
        other_goes_left=n_left_categories > np.where(is_categorical, n_categories, 0) // 2,
        left=left,
        right=right,
        value=nodes.column("value").to_numpy().astype(np.float64),
        depth=_depth(roots, slot, left, right),
    )


def _depth(roots: np.ndarray, slot: np.ndarray, left: np.ndarray, right: np.ndarray) -> int:
    """The longest path from a root to a leaf, in splits: the trees descended a level at a time."""
    depth, splits = 0, roots[slot[roots] >= 0]
    while splits.size:
        children = np.concatenate([left[splits], right[splits]])
        splits = children[slot[children] >= 0]
        depth += 1
    return depth


def _prediction() -> Column:
    """A regression tree node's value: its prediction (the mean of its training targets)."""
    return F.col("nodeData.prediction")


def _class_1_share() -> Column:
    """A classification tree node's value as MLlib's random forest votes with it: class 1's
    share of the node's class counts (0 for a node without any, as MLlib skips such a tree)."""
    counts = F.col("nodeData.impurityStats")
    total = F.aggregate(counts, F.lit(0.0), operator.add)
    return F.when(total == 0, F.lit(0.0)).otherwise(counts[1] / total)


def _check_slots(slot_features: Sequence[str], n_slots: int) -> None:
    if len(slot_features) != n_slots:
        raise ValueError(f"slot_features names {len(slot_features)} slots but the model's input vector has {n_slots}")


def _source_of_slot(slot_features: Sequence[str]) -> np.ndarray:
    """For each slot, the index of its source feature in :func:`source_features`."""
    position = {name: i for i, name in enumerate(source_features(slot_features))}
    return np.array([position[name] for name in slot_features], dtype=np.int64)


def _slots_by_source(slot_features: Sequence[str]) -> list[list[int]]:
    """For each source feature (in :func:`source_features` order), the slots it fills."""
    slots: dict[str, list[int]] = {}
    for j, name in enumerate(slot_features):
        slots.setdefault(name, []).append(j)
    return list(slots.values())
