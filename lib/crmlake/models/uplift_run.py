"""Orchestration of ``train-uplift`` and ``score-uplift``: reading past campaign lists with their
features and matured outcomes, fitting every learner × classifier × grid point, choosing one by
validation Qini, MLflow tracking and the registry's aliases (the churn model's rule: a new
version becomes ``@champion`` when its test Qini beats the champion's on the same rows by
``uplift.promotion_margin``, else ``@challenger``), ``gold.model_metrics``; scoring the base into
``gold.uplift_scores``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import MODEL_METRICS_SCHEMA
from crmlake.core import tracking
from crmlake.core.errors import ConfigError, IncompatibleTableError, TableNotFoundError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import MlflowConfig, UpliftConfig
from crmlake.gold.features import FEATURES, lit_date
from crmlake.gold.labels import CHURN_LABELS
from crmlake.models import evaluation
from crmlake.models import uplift_evaluation as ue
from crmlake.models.churn import KEY, SNAPSHOT, FeatureSet, estimator, feature_set, missing_columns
from crmlake.models.churn_data import features_at, require_table
from crmlake.models.registry import (
    MODEL_METRICS,
    Champion,
    current,
    incompatibilities,
    input_kinds,
    mlflow_client,
    pip_requirements,
)
from crmlake.models.uplift import (
    RETAINED,
    SPLIT,
    SPLITS,
    TREATED,
    filter_matured,
    filter_newest_lists,
    fit_uplift,
    grid_points,
    with_outcome,
    with_subscriber_split,
    with_uplift,
)

TRAIN_JOB = "train-uplift"
SCORE_JOB = "score-uplift"
CAMPAIGN_TARGETS = "gold.campaign_targets"
UPLIFT_SCORES = "gold.uplift_scores"
RUN_LOG = "gold.run_log"
ARTIFACT = "model"
EVALUATED = ("validation", "test")
# the metrics kept in gold.model_metrics per candidate and split
KEPT = ("qini", "qini_low", "qini_high", "auuc", "auuc_low", "auuc_high", "auuc_random", "qini_random", "ate")


@dataclass
class Fitted:
    name: str  # "<learner>:<candidate>", the candidate column of gold.model_metrics
    learner: str
    candidate: str
    point: dict
    model: PipelineModel
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> metric -> value


# ---------------------------------------------------------------------------------------------
# training rows


def training_rows(spark: SparkSession, root: str, d: dt.date, params: UpliftConfig, horizon: int) -> dict:
    """The labelled, split rows of the lists matured by ``d`` and what was left out: ``df``
    (persisted), ``fs``, ``unlabelled`` (targets without a label row), ``lists``."""
    advice = "run `crmlake publish` for past dates and `crmlake features` for their label dates first"
    for name in (CAMPAIGN_TARGETS, FEATURES, CHURN_LABELS):
        require_table(spark, root, name, advice)
    targets_df = filter_matured(tables.read(spark, root, CAMPAIGN_TARGETS), d, horizon, params.campaigns)
    if tables.exists(spark, root, RUN_LOG):
        runs_df = tables.read(spark, root, RUN_LOG)
    else:
        runs_df = spark.createDataFrame([], "run_id string, started_at timestamp")
    newest_df = filter_newest_lists(targets_df, runs_df)
    lists = sorted(
        (r["campaign_id"], str(r["publish_date"]))
        for r in newest_df.select("campaign_id", "publish_date").distinct().collect()
    )
    if params.campaigns:
        unknown = sorted(set(params.campaigns) - {c for c, _ in lists})
        if unknown:
            raise ConfigError(
                f"uplift.campaigns: {unknown} have no list in {CAMPAIGN_TARGETS} whose outcome matured by {d} "
                f"(published on or before {d - dt.timedelta(days=horizon)}); lists found: {lists or 'none'}"
            )
    if not lists:
        raise TableNotFoundError(
            f"{CAMPAIGN_TARGETS} has no retention list published on or before {d - dt.timedelta(days=horizon)} "
            f"(outcomes mature {horizon} days after publishing: labels.campaign_horizon_days): "
            "publish earlier dates first"
        )
    dates = sorted({dt.date.fromisoformat(p) for _, p in lists})
    features_df = tables.read(spark, root, FEATURES).where(F.col(SNAPSHOT).isin([lit_date(x) for x in dates]))
    labels_df = tables.read(spark, root, CHURN_LABELS).where(
        (F.col("horizon_days") == horizon) & F.col(SNAPSHOT).isin([lit_date(x) for x in dates])
    )
    joined_df = with_outcome(newest_df, features_df, labels_df.select(KEY, SNAPSHOT, "is_churned"))
    split_df = with_subscriber_split(joined_df, params.validation_share, params.test_share, params.seed).persist()
    unlabelled = split_df.where(F.col(RETAINED).isNull()).count()
    exclude = {KEY, SNAPSHOT, "campaign_id", TREATED, RETAINED, SPLIT, *params.exclude_features}
    fs = feature_set(features_df.schema, sorted(exclude))
    return {"df": split_df, "fs": fs, "unlabelled": unlabelled, "lists": lists}


def group_counts(df: DataFrame) -> dict[str, dict[str, dict[str, int]]]:
    """split -> treatment|control -> rows and retained."""
    found = df.groupBy(SPLIT, TREATED).agg(F.count(F.lit(1)).alias("rows"), F.sum(RETAINED).alias("retained"))
    out: dict = {s: {g: {"rows": 0, "retained": 0} for g in ("treatment", "control")} for s in SPLITS}
    for r in found.collect():
        group = "treatment" if r[TREATED] == 1 else "control"
        out[r[SPLIT]][group] = {"rows": int(r["rows"]), "retained": int(r["retained"] or 0)}
    return out


def check_counts(counts: dict, minimum: int, lists: list) -> None:
    """ConfigError naming the split, group, count and key when a group is too small, or when a
    training group has one outcome only (no classifier can be fitted on it)."""
    problems = []
    for split in SPLITS:
        for group, c in counts[split].items():
            if c["rows"] < minimum:
                problems.append(
                    f"the {group} group of the {split} split has {c['rows']} rows, fewer than "
                    f"uplift.min_rows_per_group ({minimum})"
                )
            elif split == "train" and c["retained"] in (0, c["rows"]):
                problems.append(f"the {group} group of the train split has {c['retained']} retained of {c['rows']}")
    if problems:
        raise ConfigError(
            f"train-uplift: too few labelled target rows: {'; '.join(problems)}. Lists used: {lists}; publish more "
            "lists (or larger control fractions), wait for their outcomes, or lower uplift.min_rows_per_group"
        )


# ---------------------------------------------------------------------------------------------
# fitting and evaluation


def split_metrics(
    model: PipelineModel, learner: str, df: DataFrame, params: UpliftConfig, curves: bool = False
) -> tuple[dict[str, float], dict]:
    """Qini and AUUC (with bootstrap intervals) of the model on ``df``; with ``curves``, the curve
    and decile tables too."""
    scored_df = with_uplift(model.transform(df), learner).select(TREATED, RETAINED, "uplift").persist()
    try:
        cells = ue.uplift_cells(scored_df, TREATED, RETAINED, "uplift", params.curve_bins)
        metrics = ue.cell_metrics(cells, params.bootstrap_resamples, params.interval, params.seed)
        tables_ = {}
        if curves:
            tables_["curve"] = ue.curve_table(cells)
            tables_["deciles"] = ue.uplift_by_decile(scored_df, TREATED, RETAINED, "uplift")
    finally:
        scored_df.unpersist()
    return metrics, tables_


def _finite(value: float) -> float:
    return value if value == value else float("-inf")


def _inputs(df: DataFrame, fs: FeatureSet, chosen: Fitted, lists: list, counts: dict) -> dict:
    return {
        "columns": input_kinds(df, fs),
        "numeric": list(fs.numeric),
        "categorical": list(fs.categorical),
        "with_missing": list(fs.with_missing),
        "learner": chosen.learner,
        "candidate": chosen.candidate,
        "params": chosen.point,
        "lists": [list(x) for x in lists],
        "counts": counts,
    }


def _metric_rows(model_name: str, version: str, run_id: str, fitted: list[Fitted], chosen: Fitted) -> list[tuple]:
    return [
        (model_name, version, f.name, CAMPAIGN_TARGETS, split, m, float(values[m]), f is chosen, run_id)
        for f in fitted
        for split, values in f.metrics.items()
        for m in KEPT
        if m in values
    ]


def train_uplift(
    spark: SparkSession,
    root: str,
    d: dt.date | None,
    params: UpliftConfig,
    horizon: int,
    mlflow_config: MlflowConfig,
    run_id: str,
) -> JobOutcome:
    """Fit every learner × candidate × grid point on the training subscribers, choose by
    validation Qini, register, promote by the rule, and write gold.model_metrics."""
    if d is None:
        raise ConfigError("train-uplift needs --date: the lists whose outcome matured by then train the model")
    out = JobOutcome()
    with stage("uplift training rows", date=d) as info:
        data = training_rows(spark, root, d, params, horizon)
        info.update(unlabelled=data["unlabelled"], lists=len(data["lists"]))
    df = data["df"]
    parts: dict[str, DataFrame] = {}
    try:
        labelled_df = df.where(F.col(RETAINED).isNotNull())
        counts = group_counts(labelled_df)
        out.details.update(counts=counts, unlabelled_targets_left_out=data["unlabelled"], lists=data["lists"])
        if data["unlabelled"]:
            log("uplift: targets without a label row left out", rows=data["unlabelled"], level=logging.WARNING)
        check_counts(counts, params.min_rows_per_group, data["lists"])
        out.rows_read = sum(c["rows"] for s in counts.values() for c in s.values())
        fs, empty = missing_columns(labelled_df.where(F.col(SPLIT) == "train"), data["fs"])
        if empty:
            out.details["features_left_out"] = empty
        if not fs.inputs:
            raise ConfigError("train-uplift: no feature has a value in the training rows")
        parts = {s: labelled_df.where(F.col(SPLIT) == s).persist() for s in SPLITS}
        fitted: list[Fitted] = []
        for learner in params.learners:
            for candidate in params.candidates:
                probe = estimator(candidate, params.seed, "features")
                for point in grid_points(probe, params.grids.get(candidate, {})) or [{}]:
                    with stage("uplift candidate", learner=learner, candidate=candidate, **point) as info:
                        model = fit_uplift(parts["train"], fs, learner, candidate, point, params.seed)
                        f = Fitted(f"{learner}:{candidate}", learner, candidate, point, model)
                        for split in EVALUATED:
                            f.metrics[split], _ = split_metrics(model, learner, parts[split], params)
                        info.update({f"{s}_qini": round(f.metrics[s]["qini"], 5) for s in EVALUATED})
                        fitted.append(f)
        chosen = max(fitted, key=lambda f: _finite(f.metrics["validation"]["qini"]))
        outcome = _register(spark, root, parts["test"], fs, fitted, chosen, data, counts, params, mlflow_config, d,
                            run_id)  # fmt: skip
        version = outcome["version"]
        out.details.update({k: v for k, v in outcome.items() if k != "champion_rows"})
        out.model_version = f"{params.model_name}/{version}"
        rows = _metric_rows(params.model_name, version, run_id, fitted, chosen) + outcome["champion_rows"]
        tables.append(spark.createDataFrame(rows, MODEL_METRICS_SCHEMA).coalesce(1), root, MODEL_METRICS)
        out.rows_written += len(rows)
        out.tables.add(MODEL_METRICS)
    finally:
        for part in parts.values():
            part.unpersist()
        df.unpersist()
    log("uplift model trained", model=out.model_version, decision=out.details.get("promotion", {}).get("decision"))
    return out


def _register(
    spark: SparkSession,
    root: str,
    test_df: DataFrame,
    fs: FeatureSet,
    fitted: list[Fitted],
    chosen: Fitted,
    data: dict,
    counts: dict,
    params: UpliftConfig,
    mlflow_config: MlflowConfig,
    d: dt.date,
    run_id: str,
) -> dict:
    """One MLflow run: params, every candidate's metrics, the chosen model's test curves and
    deciles (CSV and PNG), model_inputs.json, the model registered; then the promotion rule
    against the current champion on the same test rows."""
    import mlflow
    from mlflow.models import infer_signature

    tracking.use(root, mlflow_config, TRAIN_JOB)
    champion = current(params.model_name, params.champion_alias)
    new_value = chosen.metrics["test"]["qini"]
    champion_value, champion_rows = None, []
    if champion is None:
        decision, why = "champion", "no champion yet"
    elif incompatibilities(test_df, champion.inputs):
        problems = incompatibilities(test_df, champion.inputs)
        decision, why = "champion", f"champion version {champion.version} cannot read this test data ({problems[:5]})"
    else:
        learner = champion.inputs.get("learner", "two_model")
        champion_metrics, _ = split_metrics(champion.model, learner, test_df, params)
        champion_value = champion_metrics["qini"]
        champion_rows = [
            (params.model_name, champion.version, "champion", CAMPAIGN_TARGETS, "test", m, float(champion_metrics[m]),
             False, run_id)
            for m in KEPT
        ]  # fmt: skip
        beats = _finite(new_value) >= _finite(champion_value) + params.promotion_margin
        decision = "champion" if beats else "challenger"
        why = (
            f"test qini {new_value:.5f} against champion version {champion.version}'s {champion_value:.5f} "
            f"(margin {params.promotion_margin}): {'promoted' if beats else 'not promoted'}"
        )
    _, curves = split_metrics(chosen.model, chosen.learner, test_df, params, curves=True)
    inputs = _inputs(test_df, fs, chosen, data["lists"], counts)
    with tracking.run(root, mlflow_config, TRAIN_JOB, f"uplift {d}", tags={"crmlake.run_id": run_id}) as active:
        mlflow.log_params(
            {
                "dataset": CAMPAIGN_TARGETS,
                "learners": json.dumps(list(params.learners)),
                "candidates": json.dumps(list(params.candidates)),
                "chosen": chosen.name,
                "curve_bins": params.curve_bins,
                "bootstrap_resamples": params.bootstrap_resamples,
                "features": len(fs.inputs),
                "lists": len(data["lists"]),
                "unlabelled_left_out": data["unlabelled"],
                **{f"rows_{s}_{g}": c["rows"] for s, groups in counts.items() for g, c in groups.items()},
                **{f"chosen.{k}": v for k, v in chosen.point.items()},
            }
        )
        for f in fitted:
            mlflow.log_metrics(
                {f"{f.name}.{s}.{m}".replace(":", "."): v for s, vals in f.metrics.items() for m, v in vals.items()
                 if v == v}
            )  # fmt: skip
        mlflow.log_metrics({f"test.{m}": v for m, v in chosen.metrics["test"].items() if v == v})
        mlflow.log_dict(inputs, "model_inputs.json")
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            curves["curve"].to_csv(folder / "curves.csv", index=False)
            curves["deciles"].to_csv(folder / "uplift_by_decile.csv", index=False)
            ue.plot_qini(curves["curve"], folder / "qini.png")
            ue.plot_qini(curves["curve"], folder / "uplift_curve.png", column="uplift")
            ue.plot_uplift_by_decile(curves["deciles"], folder / "uplift_by_decile.png")
            mlflow.log_artifacts(tmp, "evaluation")
        sample_pdf = test_df.select(*fs.inputs).limit(20).toPandas()
        logged = mlflow.spark.log_model(
            chosen.model,
            ARTIFACT,
            registered_model_name=params.model_name,
            signature=infer_signature(sample_pdf),
            pip_requirements=pip_requirements(),
        )
        version = str(logged.registered_model_version)
        mlflow.set_tags({"promotion.decision": decision, "promotion.reason": why, "model_version": version})
        if champion_value is not None:
            mlflow.log_metrics({"promotion.champion.qini": champion_value, "promotion.new.qini": new_value})
        mlflow_run = active.info.run_id
    client = mlflow_client()
    alias = params.champion_alias if decision == "champion" else params.challenger_alias
    client.set_registered_model_alias(params.model_name, alias, version)
    for key, value in {"learner": chosen.learner, "candidate": chosen.candidate, "promotion": why}.items():
        client.set_model_version_tag(params.model_name, version, key, value)
    log(f"uplift model version {version}: {alias}", model=params.model_name, reason=why)
    return {
        "version": version,
        "chosen": chosen.name,
        "mlflow_run_id": mlflow_run,
        "promotion": {"decision": alias, "reason": why, "metric": "qini", "new": new_value, "champion": champion_value},
        "test": chosen.metrics["test"],
        "uplift_by_decile": curves["deciles"]["observed_uplift"].round(5).tolist(),
        "champion_rows": champion_rows,
    }


# ---------------------------------------------------------------------------------------------
# scoring


def score_rows(features_df: DataFrame, champion: Champion, model_name: str, d: dt.date, run_id: str) -> DataFrame:
    """Every row of ``features_df`` with ``uplift``, ``p_treated`` and ``p_control`` (deciles come
    after, over the whole scored base)."""
    problems = incompatibilities(features_df, champion.inputs)
    if problems:
        raise IncompatibleTableError(
            f"{model_name} version {champion.version} cannot score {FEATURES}: {'; '.join(problems)}; "
            "nothing was written"
        )
    scored_df = with_uplift(champion.model.transform(features_df), champion.inputs["learner"])
    return scored_df.select(
        lit_date(d).alias("score_date"),
        F.col(KEY),
        F.lit(model_name).alias("model_name"),
        F.lit(champion.version).alias("model_version"),
        "uplift",
        "p_treated",
        "p_control",
        F.lit(run_id).alias("run_id"),
    )


def score_uplift(
    spark: SparkSession, root: str, d: dt.date, params: UpliftConfig, mlflow_config: MlflowConfig, run_id: str
) -> JobOutcome:
    """Score the base at ``d`` with ``@champion`` into gold.uplift_scores (that date's rows
    replaced): uplift, the arms' retention probabilities, and the uplift decile (1 = highest)."""
    out = JobOutcome()
    features_df = features_at(spark, root, d)
    tracking.use(root, mlflow_config, SCORE_JOB)
    champion = current(params.model_name, params.champion_alias)
    if champion is None:
        raise TableNotFoundError(
            f"no model {params.model_name}@{params.champion_alias} in the registry: run `crmlake train-uplift` first"
        )
    out.model_version = f"{params.model_name}/{champion.version}"
    with stage("uplift scores", date=d, model=out.model_version) as info:
        scored_df = score_rows(features_df, champion, params.model_name, d, run_id).persist()
        try:
            rows = scored_df.count()
            if rows == 0:
                raise TableNotFoundError(f"{FEATURES} has no snapshot for {d}: run `crmlake features --date {d}` first")
            cuts = evaluation.decile_cuts(scored_df, "uplift")
            final_df = evaluation.with_decile(scored_df, cuts, "uplift", "uplift_decile").select(
                "score_date", KEY, "uplift", "p_treated", "p_control", "uplift_decile", "model_name",
                "model_version", "run_id",
            )  # fmt: skip
            out.rows_written = tables.replace_days(final_df, root, UPLIFT_SCORES, [d])
        finally:
            scored_df.unpersist()
        info["rows"] = rows
    out.rows_read = rows
    out.tables.add(UPLIFT_SCORES)
    return out
