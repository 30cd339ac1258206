"""Orchestration of ``train-churn``: the training rows (:mod:`crmlake.models.churn_data`), fitting
and comparing the candidates, MLflow tracking and the registry's aliases, ``gold.model_metrics``.
Scoring and monitoring are :mod:`crmlake.models.churn_score`.

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
from dataclasses import dataclass
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

from crmlake.catalog import tables
from crmlake.catalog.registry import MODEL_METRICS_SCHEMA
from crmlake.core import tracking
from crmlake.core.errors import ConfigError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import ChurnConfig, MlflowConfig
from crmlake.models import evaluation
from crmlake.models.churn import (
    FEATURES_COL,
    LABEL,
    SCALED_COL,
    SPLITS,
    FeatureSet,
    build_pipeline,
    missing_columns,
    with_class_weights,
)
from crmlake.models.churn_data import Dataset, byo_dataset, operator_dataset
from crmlake.models.registry import (
    MODEL_METRICS,
    current,
    incompatibilities,
    input_kinds,
    mlflow_client,
    pip_requirements,
)

TRAIN_JOB = "train-churn"
ARTIFACT = "model"
RAW_VECTOR = "raw_score_vector"
MODEL_PROBABILITY = "model_probability"
METRICS = ("roc_auc", "pr_auc", "top_decile_lift", "brier")
# Splits whose metrics are computed and kept (the training split's would cost a pass per
# candidate and say little that validation does not).
EVALUATED = ("validation", "test")
CLASSIFIERS = (LogisticRegressionModel, RandomForestClassificationModel, GBTClassificationModel)


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


def scored_by(model: PipelineModel, df: DataFrame) -> DataFrame:
    """``score``: the probability of churn (class 1) from the model's ``probability``."""
    return model.transform(df).withColumn("score", vector_to_array(F.col("probability"))[1])


def split_metrics(model: PipelineModel, df: DataFrame) -> dict[str, float]:
    scored_df = scored_by(model, df).select(LABEL, "score").persist()
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
    before = evaluation.binary_metrics(scored_by(plain, validation_df), LABEL, "score")["brier"]
    after = evaluation.binary_metrics(scored_by(calibrated, validation_df), LABEL, "score")["brier"]
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
        metrics_df = spark.createDataFrame(metric_rows, MODEL_METRICS_SCHEMA)
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
    scored_df = scored_by(chosen.model, test_df).select(LABEL, "score").persist()
    try:
        gains = evaluation.gains_table(scored_df, LABEL, "score")
        reliability = evaluation.reliability_table(scored_df, LABEL, "score")
        capacity = evaluation.capacity_threshold(scored_df, LABEL, "score", params.contact_capacity)
    finally:
        scored_df.unpersist()
    weights = importances(chosen.model, chosen.slot_features)
    inputs = {
        "columns": input_kinds(test_df, data.fs),
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
            pip_requirements=pip_requirements(),
        )
        version = str(logged.registered_model_version)
        mlflow.set_tags({"promotion.decision": decision, "promotion.reason": why, "model_version": version})
        if champion_value is not None:
            mlflow.log_metrics({f"promotion.champion.{metric}": champion_value, f"promotion.new.{metric}": new_value})
        mlflow_run = active.info.run_id
    client = mlflow_client()
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
