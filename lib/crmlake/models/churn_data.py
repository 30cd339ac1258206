"""The rows a churn model trains on or scores: the operator's ``gold.features`` × ``gold.churn_labels``
over snapshots split by time, or a team's own table (typed, its labels and splits checked).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.catalog import tables
from crmlake.core.errors import BadValuesError, ConfigError, MissingColumnsError, TableNotFoundError
from crmlake.core.log import log
from crmlake.core.settings import ChurnConfig, ChurnDataset
from crmlake.gold.features import FEATURES, lit_date
from crmlake.gold.labels import CHURN_LABELS
from crmlake.models.churn import (
    KEY,
    LABEL,
    SNAPSHOT,
    SPLITS,
    FeatureSet,
    blank_as_null,
    feature_set,
    label_column,
    numeric_text_columns,
    plan_splits,
    random_split,
    with_split,
)

OPERATOR = "operator"
EXAMPLES = 5  # rows named in an error about values that cannot be read


def brings_own_table(cfg) -> bool:
    """Whether the run trains or scores a team's own table (``churn.dataset``) rather than the
    operator's gold tables: its lake may be new."""
    return cfg.settings.churn.dataset is not None


@dataclass
class Dataset:
    """Training rows: KEY, SNAPSHOT, LABEL (0/1), ``split``, the features; persisted."""

    df: DataFrame
    fs: FeatureSet
    source: str  # gold.churn_scores' source: "operator" or "byo:<name>"
    name: str  # gold.model_metrics' dataset: "gold.features" or the file's path
    model_name: str
    snapshots: dict[str, list[dt.date]]  # {} for a team's own table
    rows: dict[str, int] = field(default_factory=dict)
    positives: dict[str, int] = field(default_factory=dict)


def require_table(spark: SparkSession, root: str, name: str, advice: str) -> None:
    if not tables.exists(spark, root, name):
        raise TableNotFoundError(f"{name} does not exist yet at {tables.table_path(root, name)}: {advice}")


def labelled_snapshots(spark: SparkSession, root: str, d: dt.date, horizon: int) -> list[dt.date]:
    """Snapshot dates with both features and labels of ``horizon`` closed by ``d``."""
    labels = (
        tables.read(spark, root, CHURN_LABELS)
        .where((F.col("horizon_days") == horizon) & (F.col(SNAPSHOT) <= lit_date(d - dt.timedelta(days=horizon))))
        .select(SNAPSHOT)
        .distinct()
    )
    features = tables.read(spark, root, FEATURES).where(F.col(SNAPSHOT) <= lit_date(d)).select(SNAPSHOT).distinct()
    return sorted(r[0] for r in labels.join(features, on=SNAPSHOT, how="inner").collect())


def operator_dataset(spark: SparkSession, root: str, d: dt.date, params: ChurnConfig, horizon: int) -> Dataset:
    """gold.features joined to the labels of ``horizon`` over the planned snapshots."""
    advice = "run `crmlake features` for the snapshot dates and for each date + the label horizon first"
    require_table(spark, root, FEATURES, advice)
    require_table(spark, root, CHURN_LABELS, advice)
    available = labelled_snapshots(spark, root, d, horizon)
    if params.snapshot_dates:
        missing = sorted(set(params.snapshot_dates) - set(available))
        if missing:
            raise ConfigError(
                f"churn.snapshot_dates: {[str(m) for m in missing]} have no features with labels of "
                f"{horizon} days closed by {d}; labelled snapshots: {[str(a) for a in available] or 'none'}"
            )
        available = sorted(params.snapshot_dates)
    counts = {"train": params.train_snapshots, "validation": params.validation_snapshots, "test": params.test_snapshots}
    splits = plan_splits(available, horizon, params.snapshot_every_days, counts, params.embargo)
    dates = [s for split in SPLITS for s in splits[split]]
    features_df = tables.read(spark, root, FEATURES).where(F.col(SNAPSHOT).isin([lit_date(s) for s in dates]))
    labels_df = tables.read(spark, root, CHURN_LABELS).where(
        (F.col("horizon_days") == horizon) & F.col(SNAPSHOT).isin([lit_date(s) for s in dates])
    )
    joined_df = features_df.join(
        labels_df.select(KEY, SNAPSHOT, F.col("is_churned").cast("int").alias(LABEL)), on=[KEY, SNAPSHOT], how="inner"
    )
    exclude = {KEY, SNAPSHOT, LABEL, *params.exclude_features}
    fs = feature_set(features_df.schema, sorted(exclude))
    return Dataset(
        df=with_split(joined_df, splits),
        fs=fs,
        source=OPERATOR,
        name=FEATURES,
        model_name=params.model_name,
        snapshots=splits,
    )


def byo_name(dataset: ChurnDataset) -> str:
    return dataset.name or Path(dataset.path.rstrip("/")).stem.replace(" ", "_")


def byo_dataset(spark: SparkSession, dataset: ChurnDataset, params: ChurnConfig, scoring: bool = False) -> Dataset:
    """A team's own table: id, label (yes/no, true/false, 1/0 in any case), an optional
    train/test split column, features (listed, or every other column). Text columns whose every
    value reads as a number are numbers (blanks missing); other text columns are categorical.
    BadValuesError (nothing written) for labels or split values that cannot be read. For
    ``scoring``, the label and split columns may be absent (rows to score have no outcome yet)."""
    raw_df = tables.read_external(spark, dataset.path, dataset.format)
    has_label = dataset.label in raw_df.columns or not scoring
    has_split = bool(dataset.split) and (dataset.split in raw_df.columns or not scoring)
    wanted = [dataset.id, *([dataset.label] if has_label else []), *([dataset.split] if has_split else [])]
    missing = [c for c in [*wanted, *dataset.features] if c not in raw_df.columns]
    if missing:
        raise MissingColumnsError(f"{dataset.path} lacks {missing} (churn.dataset); its columns: {raw_df.columns}")
    # A date column named like crmlake's own snapshot column is the snapshot; another column
    # named like one of crmlake's own (subscriber_key, snapshot_date, label, split) is left out,
    # or refused when it is listed as a feature.
    given = [c for c in raw_df.columns if c not in (dataset.id, dataset.label, dataset.split)]
    dated = isinstance(raw_df.schema[SNAPSHOT].dataType, T.DateType | T.TimestampType) if SNAPSHOT in given else False
    clashes = [c for c in given if c in (KEY, SNAPSHOT, LABEL, "split") and not (c == SNAPSHOT and dated)]
    listed = [c for c in clashes if c in dataset.features]
    if listed:
        raise ConfigError(
            f"churn.dataset.features: {listed} in {dataset.path} are named like columns crmlake adds "
            f"itself ({KEY}, {SNAPSHOT}, {LABEL}, split); rename them in the table or leave them out"
        )
    if clashes:
        log("churn dataset: columns left out", columns=clashes, path=dataset.path, level=logging.WARNING)
    # Every column is typed and kept, listed as a feature or not, so that the champion, which may
    # have read other columns, is compared on the very same rows.
    others = [c for c in given if c not in clashes and c != SNAPSHOT]
    features = list(dataset.features) or others
    text = [c for c in others if isinstance(raw_df.schema[c].dataType, T.StringType)]
    as_numbers = set(numeric_text_columns(raw_df, text))
    no_text = F.lit(None).cast("string")
    columns = [
        F.col(dataset.id).cast("string").alias(KEY),
        (F.col(SNAPSHOT).cast("date") if dated else F.lit(None).cast("date")).alias(SNAPSHOT),
        label_column(dataset.label).alias(LABEL) if has_label else F.lit(None).cast("int").alias(LABEL),
        F.lower(F.trim(F.col(dataset.split))).alias("split") if has_split else no_text.alias("split"),
        F.col(dataset.label).cast("string").alias("_label_raw") if has_label else no_text.alias("_label_raw"),
        F.input_file_name().alias("_file"),
    ]
    for c in others:
        if c in as_numbers:
            columns.append(blank_as_null(F.col(c)).cast("double").alias(c))
        elif c in text:
            columns.append(blank_as_null(F.col(c)).alias(c))
        else:
            columns.append(F.col(c))
    typed_df = raw_df.select(*columns)
    checks = {"label": (dataset.label, F.col(LABEL).isNull(), "_label_raw")} if has_label else {}
    if has_split:
        checks["split"] = (dataset.split, ~F.col("split").isin("train", "test") | F.col("split").isNull(), "split")
    if checks:
        _refuse_bad(typed_df, checks, dataset.path)
    name = byo_name(dataset)
    kept_df = typed_df.drop("_label_raw", "_file")
    if not scoring:
        kept_df = random_split(kept_df, params.test_share, params.validation_share, params.seed, has_split)
    return Dataset(
        df=kept_df,
        fs=feature_set(kept_df.select(*features).schema, []),
        source=f"byo:{name}",
        name=dataset.path,
        model_name=f"{params.model_name}-{name}",
        snapshots={},
    )


def _refuse_bad(df: DataFrame, checks: dict[str, tuple[str, F.Column, str]], path: str) -> None:
    counts = df.agg(*[F.sum(F.when(bad, 1).otherwise(0)).alias(k) for k, (_, bad, _) in checks.items()]).first()
    problems = []
    for key, (column, bad, shown) in checks.items():
        if not counts[key]:
            continue
        examples = df.where(bad).select("_file", KEY, shown).limit(EXAMPLES).collect()
        listed = "; ".join(f"{Path(str(e[0])).name}: id {e[1]!r} has {e[2]!r}" for e in examples)
        allowed = "yes/no, true/false or 1/0" if key == "label" else "train or test"
        problems.append(f"column {column!r} ({key}, {allowed}): {counts[key]} row(s) cannot be read, e.g. {listed}")
    if problems:
        raise BadValuesError(f"{path}: " + " | ".join(problems))


def features_at(spark: SparkSession, root: str, d: dt.date) -> DataFrame:
    advice = f"run `crmlake features --date {d}` first"
    require_table(spark, root, FEATURES, advice)
    return tables.read(spark, root, FEATURES).where(F.col(SNAPSHOT) == lit_date(d))
