"""Orchestration of ``train-churn`` and ``score-churn``: reading the training rows (the operator's
``gold.features`` × ``gold.churn_labels``, or a team's own table), fitting and comparing the
candidates, MLflow tracking and the registry's aliases, ``gold.model_metrics``; scoring the base
with reasons into ``gold.churn_scores``; monitoring into ``gold.model_monitoring``.

Registry: every training run registers one version under ``churn.model_name`` (a team's own
data set under ``<model_name>-<dataset name>``). It becomes ``@champion`` when its
``promotion_metric`` on this run's test rows beats the current champion's on the same rows by
``promotion_margin`` (or when there is no champion, or the champion cannot read these rows);
otherwise it becomes ``@challenger``. Scoring only ever loads ``@champion``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.ml import PipelineModel
from pyspark.ml.classification import (
    GBTClassificationModel,
    LogisticRegression,
    LogisticRegressionModel,
    RandomForestClassificationModel,
)
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import SQLTransformer, VectorSlicer
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.catalog import tables
from crmlake.core import tracking
from crmlake.core.config import ChurnConfig, ChurnDataset, MlflowConfig
from crmlake.core.errors import (
    BadValuesError,
    ConfigError,
    IncompatibleTableError,
    MissingColumnsError,
    TableNotFoundError,
)
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.gold.features import FEATURES, lit_date
from crmlake.gold.labels import CHURN_LABELS
from crmlake.models import evaluation, monitoring
from crmlake.models.churn import (
    FEATURES_COL,
    KEY,
    LABEL,
    SCALED_COL,
    SNAPSHOT,
    SPLITS,
    FeatureSet,
    blank_as_null,
    build_pipeline,
    feature_set,
    label_column,
    missing_columns,
    numeric_text_columns,
    plan_splits,
    random_split,
    with_class_weights,
    with_split,
)
from crmlake.models.contributions import contributions, top_drivers
from crmlake.models.reasons import drivers_with_reasons

TRAIN_JOB = "train-churn"


def brings_own_table(cfg) -> bool:
    """Whether the run trains or scores a team's own table (``churn.dataset``) rather than the
    operator's gold tables: its lake may be new."""
    return cfg.settings.churn.dataset is not None


SCORE_JOB = "score-churn"
CHURN_SCORES = "gold.churn_scores"
MODEL_METRICS = "gold.model_metrics"
MODEL_MONITORING = "gold.model_monitoring"
OPERATOR = "operator"
ARTIFACT = "model"
RAW_VECTOR = "raw_score_vector"
MODEL_PROBABILITY = "model_probability"
METRICS = ("roc_auc", "pr_auc", "top_decile_lift", "brier")
EXAMPLES = 5
# Splits whose metrics are computed and kept (the training split's would cost a pass per
# candidate and say little that validation does not).
EVALUATED = ("validation", "test")
CLASSIFIERS = (LogisticRegressionModel, RandomForestClassificationModel, GBTClassificationModel)


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


# ---------------------------------------------------------------------------------------------
# training rows


def _require(spark: SparkSession, root: str, name: str, advice: str) -> None:
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
    _require(spark, root, FEATURES, advice)
    _require(spark, root, CHURN_LABELS, advice)
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


# ---------------------------------------------------------------------------------------------
# fitting


@dataclass
class Fitted:
    candidate: str
    model: PipelineModel  # features → probability (calibrated when calibration helped)
    params: dict
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    calibrated: bool
    slot_features: list[str]


def _scored(model: PipelineModel, df: DataFrame) -> DataFrame:
    """``score``: the probability of churn (class 1) from the model's ``probability``."""
    return model.transform(df).withColumn("score", vector_to_array(F.col("probability"))[1])


def split_metrics(model: PipelineModel, df: DataFrame) -> dict[str, float]:
    scored_df = _scored(model, df).select(LABEL, "score").persist()
    try:
        found = evaluation.binary_metrics(scored_df, LABEL, "score")
        gains = evaluation.gains_table(scored_df, LABEL, "score")
        found["top_decile_lift"] = evaluation.top_decile_lift(gains)
    finally:
        scored_df.unpersist()
    return found


def _grid(classifier, grid: dict) -> list:
    builder = ParamGridBuilder()
    for name, values in grid.items():
        if not classifier.hasParam(name):
            raise ConfigError(f"churn.grids: {type(classifier).__name__} has no parameter {name!r}")
        param = classifier.getParam(name)
        builder = builder.addGrid(param, [v for v in values])
    return builder.build()


def _with_outputs(classifier) -> None:
    classifier.setRawPredictionCol(RAW_VECTOR).setProbabilityCol(MODEL_PROBABILITY).setPredictionCol("model_prediction")


def _onehot_sizes(model: PipelineModel, sample_df: DataFrame, fs: FeatureSet) -> dict[str, int]:
    if not fs.categorical:
        return {}
    out = model.transform(sample_df.limit(1))
    from crmlake.models.churn import ONEHOT_SUFFIX

    return {c: int(out.schema[c + ONEHOT_SUFFIX].metadata["ml_attr"]["num_attrs"]) for c in fs.categorical}


def fit_candidate(
    candidate: str, data: Dataset, train_df: DataFrame, params: ChurnConfig
) -> tuple[PipelineModel, dict]:
    """The candidate's pipeline fitted on the training rows, hyper-parameters chosen by
    TrainValidationSplit (a random ``tuning_train_ratio`` of the training rows, PR AUC) when its
    grid has more than one point."""
    pipeline, classifier = build_pipeline(data.fs, candidate, params.seed)
    _with_outputs(classifier)
    grid = _grid(classifier, params.grids.get(candidate, {}))
    if len(grid) <= 1:
        chosen = grid[0] if grid else {}
        model = pipeline.fit(train_df, chosen)
        return model, {p.name: v for p, v in chosen.items()}
    tvs = TrainValidationSplit(
        estimator=pipeline,
        estimatorParamMaps=grid,
        evaluator=BinaryClassificationEvaluator(labelCol=LABEL, rawPredictionCol=RAW_VECTOR, metricName="areaUnderPR"),
        trainRatio=params.tuning_train_ratio,
        parallelism=params.parallelism,
        seed=params.seed,
    )
    fitted = tvs.fit(train_df)
    best = max(range(len(grid)), key=lambda i: fitted.validationMetrics[i])
    return fitted.bestModel, {p.name: v for p, v in grid[best].items()}


def with_calibration(model: PipelineModel, validation_df: DataFrame, how: str) -> tuple[PipelineModel, bool, dict]:
    """The model with a last stage that writes ``probability``: Platt scaling (a logistic
    regression on the model's raw class-1 score, fitted on the validation rows) when ``how`` is
    "platt", or "auto" and it lowers the validation Brier score; else the model's own."""
    passthrough = SQLTransformer(statement=f"SELECT *, {MODEL_PROBABILITY} AS probability FROM __THIS__")
    plain = PipelineModel(stages=[*model.stages, passthrough])
    if how == "none":
        return plain, False, {}
    slicer = VectorSlicer(inputCol=RAW_VECTOR, outputCol="raw_class1", indices=[1])
    scored_df = slicer.transform(model.transform(validation_df))
    platt = LogisticRegression(
        featuresCol="raw_class1", labelCol=LABEL, predictionCol="prediction", maxIter=100, regParam=0.0
    )
    platt_model = platt.fit(scored_df)
    calibrated = PipelineModel(stages=[*model.stages, slicer, platt_model])
    if how == "platt":
        return calibrated, True, {}
    before = evaluation.binary_metrics(_scored(plain, validation_df), LABEL, "score")["brier"]
    after = evaluation.binary_metrics(_scored(calibrated, validation_df), LABEL, "score")["brier"]
    info = {"validation_brier_uncalibrated": before, "validation_brier_calibrated": after}
    return (calibrated, True, info) if after < before else (plain, False, info)


def classifier_of(model: PipelineModel):
    """The churn classifier inside a fitted pipeline (not the calibration stage after it)."""
    for found in model.stages:
        if isinstance(found, CLASSIFIERS) and found.getFeaturesCol() in (FEATURES_COL, SCALED_COL):
            return found
    raise ConfigError("the churn pipeline holds no classifier reading the assembled features")


def importances(model: PipelineModel, slot_features: list[str]) -> dict[str, float]:
    """Per source feature: summed tree importances, or for the linear model the summed absolute
    coefficients (per standard deviation); normalized to sum 1."""
    clf = classifier_of(model)
    values = clf.featureImportances.toArray() if hasattr(clf, "featureImportances") else abs(clf.coefficients.toArray())
    out: dict[str, float] = {}
    for name, v in zip(slot_features, values, strict=True):
        out[name] = out.get(name, 0.0) + float(v)
    total = sum(out.values()) or 1.0
    return dict(sorted(((k, v / total) for k, v in out.items()), key=lambda kv: -kv[1]))


def _finite(value: float) -> float:
    return value if value == value else float("-inf")  # NaN (one class absent) never wins


def _pip_requirements() -> list[str]:
    import pyspark

    return [f"pyspark=={pyspark.__version__}"]


def _counts(df: DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    found = df.groupBy("split").agg(F.count(F.lit(1)).alias("rows"), F.sum(LABEL).alias("positives")).collect()
    return {r["split"]: int(r["rows"]) for r in found}, {r["split"]: int(r["positives"] or 0) for r in found}


def _check_counts(data: Dataset) -> None:
    for split in SPLITS:
        rows, positives = data.rows.get(split, 0), data.positives.get(split, 0)
        if rows == 0 or positives == 0 or positives == rows:
            raise ConfigError(
                f"churn: the {split} split of {data.name} has {rows} rows and {positives} churners; each split "
                f"needs churners and non-churners (snapshots: {data.snapshots.get(split, 'random split')})"
            )


@dataclass(frozen=True)
class Champion:
    model: PipelineModel
    version: str
    inputs: dict  # the model's input columns and types, slots, importances (model_inputs.json)


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def current(model_name: str, alias: str) -> Champion | None:
    """The version an alias points at, or None when there is none."""
    import mlflow

    client = _client()
    if not client.search_registered_models(filter_string=f"name = '{model_name}'"):
        return None
    if alias not in client.get_registered_model(model_name).aliases:
        return None
    version = client.get_model_version_by_alias(model_name, alias)
    inputs = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/model_inputs.json")
    model = mlflow.spark.load_model(f"models:/{model_name}@{alias}")
    return Champion(model, str(version.version), inputs)


def incompatibilities(df: DataFrame, inputs: dict) -> list[str]:
    """What ``df`` lacks or holds with another kind of type than the model read in training
    (numbers and booleans may change width; text must stay text)."""
    problems = []
    for name, kind in inputs["columns"].items():
        if name not in df.columns:
            problems.append(f"{name!r} is missing")
            continue
        found = df.schema[name].dataType
        have = (
            "string"
            if isinstance(found, T.StringType)
            else "number"
            if isinstance(found, (*NUMERIC, T.BooleanType))
            else found.simpleString()
        )
        if have != kind:
            problems.append(f"{name!r} is {found.simpleString()}, the model reads {kind}")
    return problems


NUMERIC = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)


def _kinds(df: DataFrame, fs: FeatureSet) -> dict[str, str]:
    return {c: ("string" if c in fs.categorical else "number") for c in fs.inputs}


def _metric_rows(
    data: Dataset, model_version: str, run_id: str, fitted: list[Fitted], chosen: Fitted, champion_rows: list[tuple]
) -> list[tuple]:
    rows = []
    for f in fitted:
        for split, values in f.metrics.items():
            for metric in METRICS:
                rows.append(
                    (
                        data.model_name,
                        model_version,
                        f.candidate,
                        data.name,
                        split,
                        metric,
                        float(values[metric]),
                        f is chosen,
                        run_id,
                    )
                )
    return rows + champion_rows


METRICS_SCHEMA = T.StructType(
    [
        T.StructField("model_name", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("candidate", T.StringType(), False),
        T.StructField("dataset", T.StringType(), False),
        T.StructField("split", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("value", T.DoubleType()),
        T.StructField("is_registered", T.BooleanType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)


def train_churn(
    spark: SparkSession,
    root: str,
    d: dt.date | None,
    params: ChurnConfig,
    horizon: int,
    mlflow_config: MlflowConfig,
    run_id: str,
) -> JobOutcome:
    """Fit every candidate, pick one on the validation rows, register it, promote it by the
    rule, and write gold.model_metrics."""
    out = JobOutcome()
    with stage("churn training rows") as info:
        if params.dataset is not None:
            data = byo_dataset(spark, params.dataset, params)
        else:
            if d is None:
                raise ConfigError("train-churn needs --date (or churn.dataset for a table of your own)")
            data = operator_dataset(spark, root, d, params, horizon)
        data.df = data.df.persist()
        data.rows, data.positives = _counts(data.df)
        info.update(rows=data.rows, churners=data.positives)
    try:
        _check_counts(data)
        out.rows_read = sum(data.rows.values())
        out.details.update(
            rows=data.rows,
            churners=data.positives,
            snapshots={k: [str(s) for s in v] for k, v in data.snapshots.items()},
        )
        fs, empty = missing_columns(data.df.where(F.col("split") == "train"), data.fs)
        if empty:
            log("churn features left out: no value in any training row", columns=empty, level=logging.WARNING)
            out.details["features_left_out"] = empty
        if not fs.inputs:
            raise ConfigError(f"train-churn: no feature has a value in the training rows of {data.name}")
        data.fs = fs
        weighted_df = with_class_weights(data.df, params.class_weight, data.positives["train"], data.rows["train"])
        parts = {split: weighted_df.where(F.col("split") == split).persist() for split in SPLITS}
        fitted: list[Fitted] = []
        for candidate in params.candidates:
            with stage("churn candidate", candidate=candidate) as info:
                model, chosen_params = fit_candidate(candidate, data, parts["train"], params)
                model, calibrated, calibration = with_calibration(model, parts["validation"], params.calibration)
                metrics = {split: split_metrics(model, parts[split]) for split in EVALUATED}
                slots = fs.slot_features(_onehot_sizes(model, parts["test"], fs))
                fitted.append(Fitted(candidate, model, {**chosen_params, **calibration}, metrics, calibrated, slots))
                info.update(
                    {f"{s}_{params.selection_metric}": round(metrics[s][params.selection_metric], 4) for s in EVALUATED}
                )
        chosen = max(fitted, key=lambda f: _finite(f.metrics["validation"][params.selection_metric]))
        outcome = _register(spark, data, parts["test"], fitted, chosen, params, mlflow_config, root, run_id, d)
        out.details.update(outcome)
        out.model_version = f"{data.model_name}/{outcome['version']}"
        metric_rows = _metric_rows(data, outcome["version"], run_id, fitted, chosen, outcome.pop("champion_rows"))
        metrics_df = spark.createDataFrame(metric_rows, METRICS_SCHEMA)
        tables.append(metrics_df.coalesce(1), root, MODEL_METRICS)
        out.rows_written += len(metric_rows)
        out.tables.add(MODEL_METRICS)
    finally:
        for part in locals().get("parts", {}).values():
            part.unpersist()
        data.df.unpersist()
    log("churn model trained", model=out.model_version, decision=out.details.get("promotion", {}).get("decision"))
    return out


def _register(
    spark: SparkSession,
    data: Dataset,
    test_df: DataFrame,
    fitted: list[Fitted],
    chosen: Fitted,
    params: ChurnConfig,
    mlflow_config: MlflowConfig,
    root: str,
    run_id: str,
    d: dt.date | None,
) -> dict:
    """One MLflow run: params, every candidate's metrics, the chosen model's test artifacts
    (gains, reliability, importances, capacity threshold), the model registered with its
    signature; then the promotion rule against the current champion on the same test rows."""
    import mlflow
    from mlflow.models import infer_signature

    job = TRAIN_JOB
    tracking.use(root, mlflow_config, job)
    champion = current(data.model_name, params.champion_alias)
    metric = params.promotion_metric
    new_value = chosen.metrics["test"][metric]
    champion_rows: list[tuple] = []
    if champion is None:
        decision, champion_value, why = "champion", None, "no champion yet"
    else:
        problems = incompatibilities(test_df, champion.inputs)
        if problems:
            decision, champion_value = "champion", None
            why = f"champion version {champion.version} cannot read this test data ({'; '.join(problems[:5])})"
        else:
            champion_metrics = split_metrics(champion.model, test_df)
            champion_value = champion_metrics[metric]
            champion_rows = [
                (
                    data.model_name,
                    champion.version,
                    "champion",
                    data.name,
                    "test",
                    m,
                    float(champion_metrics[m]),
                    False,
                    run_id,
                )
                for m in METRICS
            ]
            beats = _finite(new_value) >= _finite(champion_value) + params.promotion_margin
            decision = "champion" if beats else "challenger"
            why = (
                f"test {metric} {new_value:.4f} against champion version {champion.version}'s {champion_value:.4f} "
                f"(margin {params.promotion_margin}): {'promoted' if beats else 'not promoted'}"
            )
    scored_df = _scored(chosen.model, test_df).select(LABEL, "score").persist()
    try:
        gains = evaluation.gains_table(scored_df, LABEL, "score")
        reliability = evaluation.reliability_table(scored_df, LABEL, "score")
        capacity = evaluation.capacity_threshold(scored_df, LABEL, "score", params.contact_capacity)
    finally:
        scored_df.unpersist()
    weights = importances(chosen.model, chosen.slot_features)
    inputs = {
        "columns": _kinds(test_df, data.fs),
        "numeric": list(data.fs.numeric),
        "categorical": list(data.fs.categorical),
        "with_missing": list(data.fs.with_missing),
        "slot_features": chosen.slot_features,
        "importances": weights,
        "candidate": chosen.candidate,
        "calibrated": chosen.calibrated,
        "snapshots": {k: [str(s) for s in v] for k, v in data.snapshots.items()},
        "source": data.source,
        "dataset": data.name,
    }
    with tracking.run(root, mlflow_config, job, f"churn {d or data.name}", tags={"crmlake.run_id": run_id}) as active:
        mlflow.log_params(
            {
                "dataset": data.name,
                "source": data.source,
                "candidates": json.dumps(list(params.candidates)),
                "chosen": chosen.candidate,
                "selection_metric": params.selection_metric,
                "class_weight": params.class_weight,
                "calibrated": chosen.calibrated,
                "features": len(data.fs.inputs),
                **{f"snapshots_{k}": ",".join(str(s) for s in v) for k, v in data.snapshots.items()},
                **{f"rows_{k}": v for k, v in data.rows.items()},
                **{f"churners_{k}": v for k, v in data.positives.items()},
                **{f"{f.candidate}.{k}": v for f in fitted for k, v in f.params.items()},
            }
        )
        for f in fitted:
            mlflow.log_metrics(
                {f"{f.candidate}.{s}.{m}": v for s, vals in f.metrics.items() for m, v in vals.items() if v == v}
            )
        mlflow.log_metrics({f"test.{m}": v for m, v in chosen.metrics["test"].items() if v == v})
        mlflow.log_metrics(
            {f"capacity.{k}": float(v) for k, v in capacity.items() if isinstance(v, int | float) and math.isfinite(v)}
        )
        mlflow.log_dict(inputs, "model_inputs.json")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            gains.to_csv(folder / "gains.csv", index=False)
            reliability.to_csv(folder / "reliability.csv", index=False)
            evaluation.plot_gains(gains, folder / "gains.png")
            evaluation.plot_reliability(reliability, folder / "reliability.png")
            evaluation.plot_importances(list(weights), list(weights.values()), folder / "importances.png")
            mlflow.log_artifacts(tmp, "evaluation")
        sample_pdf = test_df.select(*data.fs.inputs).limit(20).toPandas()
        logged = mlflow.spark.log_model(
            chosen.model,
            ARTIFACT,
            registered_model_name=data.model_name,
            signature=infer_signature(sample_pdf),
            pip_requirements=_pip_requirements(),
        )
        version = str(logged.registered_model_version)
        mlflow.set_tags({"promotion.decision": decision, "promotion.reason": why, "model_version": version})
        if champion_value is not None:
            mlflow.log_metrics({f"promotion.champion.{metric}": champion_value, f"promotion.new.{metric}": new_value})
        mlflow_run = active.info.run_id
    client = _client()
    alias = params.champion_alias if decision == "champion" else params.challenger_alias
    client.set_registered_model_alias(data.model_name, alias, version)
    for key, value in {"candidate": chosen.candidate, "promotion": why, "dataset": data.name}.items():
        client.set_model_version_tag(data.model_name, version, key, value)
    log(f"churn model version {version}: {alias}", model=data.model_name, reason=why)
    return {
        "version": version,
        "candidate": chosen.candidate,
        "mlflow_run_id": mlflow_run,
        "promotion": {"decision": alias, "reason": why, "metric": metric, "new": new_value, "champion": champion_value},
        "test": chosen.metrics["test"],
        "capacity": capacity,
        "champion_rows": champion_rows,
    }


# ---------------------------------------------------------------------------------------------
# scoring


def risk_band(decile: F.Column, bands: dict[str, int]) -> F.Column:
    """The first band whose decile bound holds the decile (bands in config order, 1 = riskiest)."""
    found = None
    for name, bound in bands.items():
        found = F.when(decile <= bound, F.lit(name)) if found is None else found.when(decile <= bound, F.lit(name))
    return found


def explain(scored_df: DataFrame, model: PipelineModel, inputs: dict, k: int) -> DataFrame:
    """``raw_score``, ``bias`` and ``drivers`` (the ``k`` features pushing the score up most,
    each with its value and sentence) for rows the model has transformed."""
    clf = classifier_of(model)
    slots = inputs["slot_features"]
    # the linear model reads standardized inputs: an average subscriber is the zero vector
    means = [0.0] * len(slots) if isinstance(clf, LogisticRegressionModel) else None
    with_contrib_df = contributions(scored_df, clf, clf.getFeaturesCol(), slots, means)
    names = list(dict.fromkeys(slots))
    driven_df = top_drivers(with_contrib_df, names, k)
    return driven_df.withColumn("raw_score", raw_score(clf)).withColumn(
        "drivers", drivers_with_reasons("drivers", set(inputs["categorical"]), names)
    )


def raw_score(clf) -> F.Column:
    """The classifier's own score before calibration, on the scale its contributions add up to:
    the log-odds for logistic regression and gradient-boosted trees, the probability for a
    random forest (an average of its trees' leaf shares)."""
    if isinstance(clf, RandomForestClassificationModel):
        return vector_to_array(F.col(MODEL_PROBABILITY))[1]
    margin = vector_to_array(F.col(RAW_VECTOR))[1]
    # MLlib's GBT probability is 1 / (1 + exp(-2 margin)): its log-odds are twice the margin
    return margin * 2.0 if isinstance(clf, GBTClassificationModel) else margin


def score_rows(
    features_df: DataFrame,
    champion: Champion,
    model_name: str,
    source: str,
    d: dt.date,
    params: ChurnConfig,
    run_id: str,
) -> DataFrame:
    """Every row of ``features_df`` scored: probability, raw score, drivers and their reasons
    (deciles come after, over the whole scored base)."""
    problems = incompatibilities(features_df, champion.inputs)
    if problems:
        raise IncompatibleTableError(
            f"{model_name} version {champion.version} cannot score this table: {'; '.join(problems)}; "
            "nothing was written"
        )
    scored_df = _scored(champion.model, features_df)
    explained_df = explain(scored_df, champion.model, champion.inputs, params.reasons)
    return explained_df.select(
        F.lit(source).alias("source"),
        lit_date(d).alias("score_date"),
        F.col(KEY),
        F.lit(model_name).alias("model_name"),
        F.lit(champion.version).alias("model_version"),
        F.col("score").alias("probability"),
        "raw_score",
        "bias",
        "drivers",
        *[F.get(F.col("drivers"), i)["reason"].alias(f"reason_{i + 1}") for i in range(params.reasons)],
        F.lit(run_id).alias("run_id"),
    )


def _features_at(spark: SparkSession, root: str, d: dt.date) -> DataFrame:
    advice = f"run `crmlake features --date {d}` first"
    _require(spark, root, FEATURES, advice)
    return tables.read(spark, root, FEATURES).where(F.col(SNAPSHOT) == lit_date(d))


def score_churn(
    spark: SparkSession,
    root: str,
    d: dt.date,
    params: ChurnConfig,
    horizon: int,
    mlflow_config: MlflowConfig,
    run_id: str,
) -> JobOutcome:
    """Score the base at ``d`` (or a team's own table) with ``@champion`` into gold.churn_scores
    (that date's rows replaced), then monitor drift and realized churn (operator data only)."""
    out = JobOutcome()
    if params.dataset is not None:
        features_df = byo_dataset(spark, params.dataset, params, scoring=True).df.drop(LABEL, "split")
        model_name, source = f"{params.model_name}-{byo_name(params.dataset)}", f"byo:{byo_name(params.dataset)}"
    else:
        features_df = _features_at(spark, root, d)
        model_name, source = params.model_name, OPERATOR
    tracking.use(root, mlflow_config, SCORE_JOB)
    champion = current(model_name, params.champion_alias)
    if champion is None:
        raise TableNotFoundError(
            f"no model {model_name}@{params.champion_alias} in the registry: run `crmlake train-churn` first"
        )
    out.model_version = f"{model_name}/{champion.version}"
    with stage("churn scores", date=d, model=out.model_version) as info:
        scored_df = score_rows(features_df, champion, model_name, source, d, params, run_id).persist()
        try:
            rows = scored_df.count()
            if rows == 0:
                raise TableNotFoundError(f"{FEATURES} has no snapshot for {d}: run `crmlake features --date {d}` first")
            cuts = evaluation.decile_cuts(scored_df, "probability")
            decile_df = evaluation.with_decile(scored_df, cuts, "probability", "decile")
            final_df = decile_df.withColumn("risk_band", risk_band(F.col("decile"), params.risk_bands)).select(
                "source", "score_date", KEY, "model_name", "model_version", "probability", "raw_score", "bias",
                "decile", "risk_band", "drivers", *[f"reason_{i + 1}" for i in range(params.reasons)], "run_id",
            )  # fmt: skip
            out.rows_written += tables.replace_days(final_df, root, CHURN_SCORES, [d], source=source)
        finally:
            scored_df.unpersist()
        info["rows"] = rows
    out.rows_read = rows
    out.tables.add(CHURN_SCORES)
    if source == OPERATOR:
        monitored = monitor(spark, root, d, champion, model_name, params, horizon)
        out.rows_written += monitored["rows"]
        out.tables.add(MODEL_MONITORING)
        out.details["monitoring"] = {k: v for k, v in monitored.items() if k != "rows"}
        if monitored["flagged"]:
            out.message = f"population shift above PSI {params.psi_threshold}: {', '.join(monitored['flagged'])}"
            log(out.message, date=d, model=out.model_version)
    else:
        out.details["monitoring"] = "a team's own table has no snapshots to compare: no monitoring"
    return out


# ---------------------------------------------------------------------------------------------
# monitoring

MONITORING_SCHEMA = T.StructType(
    [
        T.StructField("monitor_date", T.DateType(), False),
        T.StructField("model_name", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("check", T.StringType(), False),  # psi | realized
        T.StructField("subject", T.StringType(), False),  # score, a feature, or decile_<n>
        T.StructField("score_date", T.DateType(), False),
        T.StructField("reference_date", T.DateType()),
        T.StructField("value", T.DoubleType()),  # the PSI, or the realized churn rate
        T.StructField("expected", T.DoubleType()),  # the predicted churn rate (realized rows)
        T.StructField("subscribers", T.LongType()),
        T.StructField("threshold", T.DoubleType()),
        T.StructField("is_flagged", T.BooleanType(), False),
    ]
)


def monitor(
    spark: SparkSession, root: str, d: dt.date, champion: Champion, model_name: str, params: ChurnConfig, horizon: int
) -> dict:
    """PSI of the score and of the ``psi_features`` most important features between the
    model's latest training snapshot and ``d``; realized churn by decile of every earlier score
    date whose labels have closed. Rows of ``d`` in gold.model_monitoring are replaced."""
    rows: list[tuple] = []
    done: dict = {"flagged": []}
    train_dates = champion.inputs.get("snapshots", {}).get("train", [])
    reference = dt.date.fromisoformat(train_dates[-1]) if train_dates else None
    reference_df = _features_at(spark, root, reference) if reference else None
    if reference_df is not None and reference_df.limit(1).count():
        current_df = _features_at(spark, root, d)
        top = [f for f in champion.inputs["importances"] if f in current_df.columns][: params.psi_features]
        ref_scored = _scored(champion.model, reference_df).select(F.col("score"), *top)
        cur_scored = _scored(champion.model, current_df).select(F.col("score"), *top)
        table = monitoring.psi_table(ref_scored, cur_scored, ["score", *top], params.psi_bins)
        for r in table.itertuples():
            flagged = bool(r.psi > params.psi_threshold)
            if flagged:
                done["flagged"].append(f"{r.feature} {r.psi:.3f}")
            rows.append(
                (
                    d,
                    model_name,
                    champion.version,
                    "psi",
                    r.feature,
                    d,
                    reference,
                    float(r.psi),
                    None,
                    None,
                    params.psi_threshold,
                    flagged,
                )
            )
        done["psi_reference"] = str(reference)
    else:
        done["psi_reference"] = f"no gold.features snapshot at the model's training date {reference}: no PSI"
    if tables.exists(spark, root, CHURN_LABELS) and tables.exists(spark, root, CHURN_SCORES):
        scores_df = tables.read(spark, root, CHURN_SCORES).where(
            (F.col("source") == OPERATOR)
            & (F.col("model_name") == model_name)
            & (F.col("score_date") <= lit_date(d - dt.timedelta(days=horizon)))
        )
        labels_df = tables.read(spark, root, CHURN_LABELS).where(F.col("horizon_days") == horizon)
        realized = monitoring.realized_by_decile(
            scores_df.select(KEY, "score_date", "decile", "probability", "model_version"),
            labels_df.select(KEY, SNAPSHOT, "is_churned"),
        ).collect()
        for r in realized:
            rows.append((d, model_name, champion.version, "realized", f"decile_{r['decile']}", r["score_date"],
                         None, float(r["realized_rate"]), float(r["predicted_rate"]), int(r["subscribers"]), None,
                         False))  # fmt: skip
        done["realized_score_dates"] = sorted({str(r["score_date"]) for r in realized})
    monitoring_df = spark.createDataFrame(rows, MONITORING_SCHEMA)
    done["rows"] = tables.replace_days(monitoring_df.coalesce(1), root, MODEL_MONITORING, [d], model_name=model_name)
    return done
