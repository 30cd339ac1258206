"""Orchestration of ``score-churn``: the base (or a team's own table) scored by ``@champion``
with reasons into ``gold.churn_scores``; drift and realized churn into ``gold.model_monitoring``.
Scoring only ever loads ``@champion``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.ml import PipelineModel
from pyspark.ml.classification import GBTClassificationModel, LogisticRegressionModel, RandomForestClassificationModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import MODEL_MONITORING_SCHEMA
from crmlake.core import tracking
from crmlake.core.errors import IncompatibleTableError, TableNotFoundError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import ChurnConfig, MlflowConfig
from crmlake.gold.features import FEATURES, lit_date
from crmlake.gold.labels import CHURN_LABELS
from crmlake.models import evaluation, monitoring
from crmlake.models.churn import KEY, LABEL, SNAPSHOT
from crmlake.models.churn_data import OPERATOR, byo_dataset, byo_name, features_at
from crmlake.models.churn_run import MODEL_PROBABILITY, RAW_VECTOR, classifier_of, scored_by
from crmlake.models.contributions import contributions, top_drivers
from crmlake.models.reasons import drivers_with_reasons
from crmlake.models.registry import Champion, current, incompatibilities

SCORE_JOB = "score-churn"
CHURN_SCORES = "gold.churn_scores"
MODEL_MONITORING = "gold.model_monitoring"


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
    scored_df = scored_by(champion.model, features_df)
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
        features_df = features_at(spark, root, d)
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
    reference_df = features_at(spark, root, reference) if reference else None
    if reference_df is not None and reference_df.limit(1).count():
        current_df = features_at(spark, root, d)
        top = [f for f in champion.inputs["importances"] if f in current_df.columns][: params.psi_features]
        ref_scored = scored_by(champion.model, reference_df).select(F.col("score"), *top)
        cur_scored = scored_by(champion.model, current_df).select(F.col("score"), *top)
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
    monitoring_df = spark.createDataFrame(rows, MODEL_MONITORING_SCHEMA)
    done["rows"] = tables.replace_days(monitoring_df.coalesce(1), root, MODEL_MONITORING, [d], model_name=model_name)
    return done
