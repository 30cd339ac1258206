"""Churn models, the pure part: which snapshots train, validate and test; which columns are
features; the Spark ML ``Pipeline`` of each candidate; class weights.

A training row is one subscriber at one snapshot date: the ``gold.features`` row of that date
joined to its ``gold.churn_labels`` row (did the line churn within the horizon after it).
Splits are by time: training snapshots come first, then validation (model and calibration
choice), then test (the untouched number reported and used for promotion). With the embargo,
each split's label horizons close on or before the next split's first snapshot, so one churn
event never counts on both sides: an operator training on day ``t`` only has the labels that
closed by ``t``.

The pipeline, for every candidate (one factory, :func:`build_pipeline`):

1. ``SQLTransformer``: booleans and numbers as doubles; for each numeric feature that had
   missing values in training, an ``<f>__missing`` indicator (a null "days since complaint"
   means "none in the lookback", which the imputed median alone would hide);
2. ``StringIndexer`` + ``OneHotEncoder`` for string features (unseen and missing values get a
   slot of their own, never an error at scoring time);
3. ``Imputer`` (median) for numbers;
4. ``VectorAssembler`` into ``features``;
5. ``StandardScaler`` (mean and unit variance) for logistic regression only, so that its
   coefficients are per standard deviation and a contribution is coefficient × z-score;
6. the classifier, trained with a weight column (``weight``) that balances the classes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.ml import Pipeline
from pyspark.ml.classification import GBTClassifier, LogisticRegression, RandomForestClassifier
from pyspark.ml.feature import Imputer, OneHotEncoder, SQLTransformer, StandardScaler, StringIndexer, VectorAssembler
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.core.errors import ConfigError

KEY = "subscriber_key"
SNAPSHOT = "snapshot_date"
LABEL = "label"
WEIGHT = "weight"
FEATURES_COL = "features"
SCALED_COL = "scaled_features"
MISSING_SUFFIX = "__missing"
NUMBER_SUFFIX = "__num"
INDEX_SUFFIX = "__index"
ONEHOT_SUFFIX = "__onehot"
IMPUTED_SUFFIX = "__imputed"
SPLITS = ("train", "validation", "test")

NUMERIC_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


@dataclass(frozen=True)
class FeatureSet:
    """The model's inputs: numeric (and boolean) columns, string columns, and the numeric ones
    that get a missing-value indicator."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    with_missing: tuple[str, ...]

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def slot_features(self, onehot_sizes: dict[str, int]) -> list[str]:
        """The source feature of each slot of the assembled vector, in assembler order (a
        missing indicator counts for its feature, as do all slots of a one-hot column)."""
        slots = [*self.numeric, *self.with_missing]
        for c in self.categorical:
            slots += [c] * onehot_sizes[c]
        return slots


def feature_set(
    schema: T.StructType, exclude: list[str] | tuple[str, ...], with_missing: list[str] | tuple[str, ...] = ()
) -> FeatureSet:
    """Features of a table: every numeric, boolean or string column not in ``exclude``; dates,
    timestamps and nested types are not features."""
    numeric, categorical = [], []
    for field in schema.fields:
        if field.name in exclude:
            continue
        if isinstance(field.dataType, (*NUMERIC_TYPES, T.BooleanType)):
            numeric.append(field.name)
        elif isinstance(field.dataType, T.StringType):
            categorical.append(field.name)
    missing = tuple(c for c in numeric if c in set(with_missing))
    return FeatureSet(tuple(numeric), tuple(categorical), missing)


def missing_columns(df: DataFrame, fs: FeatureSet) -> tuple[FeatureSet, list[str]]:
    """The feature set fitted on ``df`` (the training rows), in one pass: a missing-value
    indicator for each numeric column with a missing value (null or NaN) and the columns with no
    value at all left out (an imputer has nothing to learn from them; a 30-day trend is unknown
    on every snapshot taken before 30 days of history). Returns it with the columns left out."""
    columns = [*fs.numeric, *fs.categorical]
    if not columns:
        return fs, []

    def missing(c: str) -> F.Column:
        value = F.col(_quote(c))
        return value.isNull() | F.isnan(value.cast("double")) if c in fs.numeric else value.isNull()

    row = df.agg(F.count(F.lit(1)), *[F.count(F.when(missing(c), 1)) for c in columns]).first()
    total, counts = row[0], dict(zip(columns, row[1:], strict=True))
    empty = [c for c in columns if counts[c] == total]
    numeric = tuple(c for c in fs.numeric if c not in empty)
    with_missing = tuple(c for c in numeric if counts[c] > 0)
    return FeatureSet(numeric, tuple(c for c in fs.categorical if c not in empty), with_missing), empty


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def prepare_statement(fs: FeatureSet) -> str:
    """The SQLTransformer statement of stage 1: every column as it is (ids, and label and weight
    in training, which scoring rows do not have), numbers as doubles in ``<f>__num``, missing
    indicators in ``<f>__missing``."""
    parts = ["*"]
    parts += [f"CAST({_quote(c)} AS DOUBLE) AS {_quote(c + NUMBER_SUFFIX)}" for c in fs.numeric]
    parts += [f"CAST({_quote(c)} IS NULL AS DOUBLE) AS {_quote(c + MISSING_SUFFIX)}" for c in fs.with_missing]
    return f"SELECT {', '.join(parts)} FROM __THIS__"


def estimator(candidate: str, seed: int, features_col: str):
    """The classifier of a candidate, reading ``features_col``, ``label`` and ``weight``."""
    common = {"featuresCol": features_col, "labelCol": LABEL, "weightCol": WEIGHT}
    if candidate == "logistic_regression":
        # The scaler standardizes already; MLlib's own standardization would do it twice.
        return LogisticRegression(**common, maxIter=200, standardization=False, family="binomial")
    if candidate == "random_forest":
        return RandomForestClassifier(**common, seed=seed, featureSubsetStrategy="sqrt", minInstancesPerNode=5)
    if candidate == "gbt":
        return GBTClassifier(**common, seed=seed, minInstancesPerNode=5)
    raise ConfigError(f"churn.candidates: unknown candidate {candidate!r}")


def build_pipeline(fs: FeatureSet, candidate: str, seed: int) -> tuple[Pipeline, object]:
    """The candidate's pipeline (stages in the module docstring) and its classifier, whose
    params the grid search sets."""
    stages: list = [SQLTransformer(statement=prepare_statement(fs))]
    onehot = [c + ONEHOT_SUFFIX for c in fs.categorical]
    if fs.categorical:
        index = [c + INDEX_SUFFIX for c in fs.categorical]
        stages.append(
            StringIndexer(
                inputCols=list(fs.categorical), outputCols=index, handleInvalid="keep", stringOrderType="frequencyDesc"
            )
        )
        stages.append(OneHotEncoder(inputCols=index, outputCols=onehot, handleInvalid="keep", dropLast=True))
    imputed = [c + IMPUTED_SUFFIX for c in fs.numeric]
    if fs.numeric:
        numbers = [c + NUMBER_SUFFIX for c in fs.numeric]
        stages.append(Imputer(inputCols=numbers, outputCols=imputed, strategy="median"))
    missing = [c + MISSING_SUFFIX for c in fs.with_missing]
    stages.append(VectorAssembler(inputCols=imputed + missing + onehot, outputCol=FEATURES_COL, handleInvalid="error"))
    features_col = FEATURES_COL
    if candidate == "logistic_regression":
        stages.append(StandardScaler(inputCol=FEATURES_COL, outputCol=SCALED_COL, withMean=True, withStd=True))
        features_col = SCALED_COL
    classifier = estimator(candidate, seed, features_col)
    stages.append(classifier)
    return Pipeline(stages=stages), classifier


def with_class_weights(df: DataFrame, class_weight: str, positives: int, rows: int) -> DataFrame:
    """Adds ``weight``: "balanced" gives each class half the total weight (n / (2 n_class)),
    so a 3 % churn rate does not teach the model that nobody churns; "none" weighs 1."""
    if class_weight == "none" or positives in (0, rows):
        return df.withColumn(WEIGHT, F.lit(1.0))
    w_pos, w_neg = rows / (2.0 * positives), rows / (2.0 * (rows - positives))
    return df.withColumn(WEIGHT, F.when(F.col(LABEL) == 1, F.lit(w_pos)).otherwise(F.lit(w_neg)))


def label_column(label: str) -> F.Column:
    """A label written as yes/no, true/false, 1/0 (any case, a boolean or a number) as 0/1;
    anything else is null (the caller reports it)."""
    # "True." and "False." (with a full stop) are how some public churn files spell them
    text = F.regexp_replace(F.lower(F.trim(F.col(label).cast("string"))), r"^(true|false|yes|no)\.$", "$1")
    return (
        F.when(text.isin("1", "1.0", "yes", "y", "true", "t"), F.lit(1))
        .when(text.isin("0", "0.0", "no", "n", "false", "f"), F.lit(0))
        .cast("int")
    )


# ---------------------------------------------------------------------------------------------
# time split


def plan_splits(
    available: list[dt.date],
    horizon_days: int,
    every_days: int,
    counts: dict[str, int],
    embargo: bool,
) -> dict[str, list[dt.date]]:
    """Pick snapshot dates for each split from ``available`` (labelled snapshots), latest first:
    ``counts["test"]`` test snapshots from the latest, then validation, then training, each at
    least ``every_days`` after the one before it; with ``embargo``, a split's latest snapshot is
    at least ``horizon_days`` before the next split's earliest. ConfigError when there are too
    few, naming what was available."""
    pool = sorted(set(available), reverse=True)
    chosen: dict[str, list[dt.date]] = {}
    bound: dt.date | None = None  # every pick must be on or before it
    for split in reversed(SPLITS):  # test, validation, train
        picked: list[dt.date] = []
        for d in pool:
            if bound is not None and d > bound:
                continue
            if picked and (picked[-1] - d).days < every_days:
                continue
            picked.append(d)
            if len(picked) == counts[split]:
                break
        if not picked or (split != "train" and len(picked) < counts[split]):
            raise ConfigError(
                f"churn: not enough labelled snapshots for the {split} split: need {counts[split]} "
                f"{every_days} days apart{' with a ' + str(horizon_days) + '-day embargo' if embargo else ''}; "
                f"labelled snapshots available: {[str(d) for d in sorted(pool)] or 'none'}"
            )
        chosen[split] = sorted(picked)
        gap = horizon_days if embargo else every_days
        bound = min(picked) - dt.timedelta(days=gap)
    return {s: chosen[s] for s in SPLITS}


def with_split(df: DataFrame, splits: dict[str, list[dt.date]]) -> DataFrame:
    """Adds ``split`` from the snapshot date; rows of other dates are dropped."""
    column = None
    for name, dates in splits.items():
        cond = F.col(SNAPSHOT).isin([F.lit(d).cast("date") for d in dates])
        column = F.when(cond, F.lit(name)) if column is None else column.when(cond, F.lit(name))
    return df.withColumn("split", column).where(F.col("split").isNotNull())


def random_split(df: DataFrame, test_share: float, validation_share: float, seed: int, has_split: bool) -> DataFrame:
    """Adds (or completes) ``split`` by a stratified draw: within each label, rows are ordered by
    a seeded hash of their id (the same rows every run, whatever the partitioning) and the first
    ``test_share`` go to test (unless ``has_split``: the given train/test split is kept), then
    ``validation_share`` of the training rows to validation."""
    order = F.xxhash64(F.col(KEY), F.lit(seed))
    rank = F.percent_rank().over(Window.partitionBy(LABEL, "_given").orderBy(order))
    given = F.col("split") if has_split else F.lit("train")
    ranked_df = df.withColumn("_given", given).withColumn("_rank", rank)
    if has_split:
        split = F.when(F.col("_given") == "test", F.lit("test"))
    else:
        split = F.when(F.col("_rank") < test_share, F.lit("test"))
    cut = F.lit(test_share) if not has_split else F.lit(0.0)
    # the rows past the test share, re-scaled to [0, 1), give the validation share
    rest = (F.col("_rank") - cut) / (F.lit(1.0) - cut)
    split = split.when(rest < validation_share, F.lit("validation")).otherwise(F.lit("train"))
    return ranked_df.withColumn("split", split).drop("_given", "_rank")


# ---------------------------------------------------------------------------------------------
# bring your own features

MISSING_MARKERS = ("", "na", "n/a", "nan", "null", "none", "?", "-")


def blank_as_null(column: F.Column) -> F.Column:
    """Text with the usual spellings of "missing" (blank, NA, N/A, null, ?, -) as null."""
    text = F.trim(column.cast("string"))
    return F.when(~F.lower(text).isin(*MISSING_MARKERS), text)


def numeric_text_columns(df: DataFrame, columns: list[str]) -> list[str]:
    """Text columns of an export whose every non-missing value reads as a number (a CSV holds
    only text; a blank in a number column, as in many public churn files, is a missing value)."""
    if not columns:
        return []
    counts = df.agg(
        *[
            F.count(
                F.when(blank_as_null(F.col(c)).isNotNull() & blank_as_null(F.col(c)).try_cast("double").isNull(), 1)
            ).alias(c)
            for c in columns
        ]
    ).first()
    return [c for c in columns if counts[c] == 0]
