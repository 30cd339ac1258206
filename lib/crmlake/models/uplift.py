"""Uplift models, the pure part: the training rows of past campaign lists, the subscriber split,
the two learners and the uplift they predict.

A training row is one subscriber in one published list (``gold.campaign_targets``: campaign,
publish date, group) with the features the publisher saw (``gold.features`` at the publish date)
and the outcome (``gold.churn_labels`` at the publish date: retained = not churned within the
horizon). Controls were drawn by hash and never contacted, so treated against control rows of
the same lists estimate what the contact changed.

Learners, both on the churn model's feature preparation (:func:`crmlake.models.churn.build_pipeline`
without its classifier, fitted once on the training rows of both groups):

- ``two_model`` (T-learner): one classifier of retention fitted on the treated rows, one on the
  control rows; ``uplift = P(retained | treated) − P(retained | control)``.
- ``class_transformation``: one classifier of ``Z = T·Y + (1 − T)(1 − Y)`` with the groups
  weighted to equal total weight (``1 / (2·share)``), since ``2·P(Z = 1) − 1`` is the uplift
  only when treated and control are equally likely; ``p_treated`` and ``p_control`` are then
  unknown (null).

Both are one fitted ``PipelineModel`` (preparation, then the classifier(s) with their own output
columns), so the registry holds one artifact per version; :func:`with_uplift` reads its outputs.
"""

from __future__ import annotations

import datetime as dt
import itertools

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from crmlake.core.errors import ConfigError
from crmlake.gold.features import lit_date
from crmlake.models.churn import KEY, SNAPSHOT, WEIGHT, FeatureSet, build_pipeline

TREATED = "treated"  # 1 treatment, 0 control
RETAINED = "retained"  # 1 not churned within the horizon after the publish date
Z_LABEL = "z_label"
SPLIT = "split"
SPLITS = ("train", "validation", "test")
LEARNERS = ("two_model", "class_transformation")
# output columns of each classifier inside the fitted pipeline
ARMS = {"treated": "t_", "control": "c_", "z": "z_"}
# 52 bits of the key's hash: a share in [0, 1), exact in a double
HASH_SPACE = 2**52


def filter_newest_lists(targets_df: DataFrame, runs_df: DataFrame) -> DataFrame:
    """The rows of the newest run of each campaign and publish date: ``runs_df`` gives each
    ``run_id`` its ``started_at`` (gold.run_log); a run it does not know counts as oldest, ties
    go to the greater run id."""
    lists_df = targets_df.select("campaign_id", "publish_date", "run_id").distinct()
    started_df = runs_df.select("run_id", "started_at").dropDuplicates(["run_id"])
    order = Window.partitionBy("campaign_id", "publish_date").orderBy(
        F.col("started_at").desc_nulls_last(), F.col("run_id").desc()
    )
    newest_df = (
        lists_df.join(started_df, on="run_id", how="left")
        .withColumn("_n", F.row_number().over(order))
        .where(F.col("_n") == 1)
        .select("campaign_id", "publish_date", "run_id")
    )
    return targets_df.join(newest_df, on=["campaign_id", "publish_date", "run_id"], how="inner")


def filter_matured(targets_df: DataFrame, d: dt.date, horizon: int, campaigns: tuple[str, ...]) -> DataFrame:
    """Lists whose outcome has matured by ``d`` (published on or before ``d − horizon``), of the
    ``campaigns`` named, or of every retention campaign when none is."""
    chosen = F.col("campaign_id").isin(list(campaigns)) if campaigns else F.col("objective") == "retention"
    return targets_df.where(chosen & (F.col("publish_date") <= lit_date(d - dt.timedelta(days=horizon))))


def with_outcome(targets_df: DataFrame, features_df: DataFrame, labels_df: DataFrame) -> DataFrame:
    """Target rows (``campaign_id``, ``publish_date``, ``subscriber_key``, ``group``) with the
    features of the publish date (inner join: the publisher read them) and ``treated``, plus
    ``retained`` (null where no label row exists: the caller counts and drops them).
    ``labels_df``: one horizon's ``subscriber_key``, ``snapshot_date``, ``is_churned``."""
    keyed_df = targets_df.select(
        "campaign_id",
        F.col("publish_date").alias(SNAPSHOT),
        KEY,
        (F.col("group") == "treatment").cast("int").alias(TREATED),
    )
    outcome_df = labels_df.select(KEY, SNAPSHOT, (~F.col("is_churned")).cast("int").alias(RETAINED))
    return keyed_df.join(features_df, on=[KEY, SNAPSHOT], how="inner").join(outcome_df, on=[KEY, SNAPSHOT], how="left")


def with_subscriber_split(df: DataFrame, validation_share: float, test_share: float, seed: int) -> DataFrame:
    """Adds ``split`` from a seeded hash of the subscriber key alone: every row of a subscriber
    (several campaigns, several dates) lands on the same side, the same way on every run."""
    share = F.pmod(F.xxhash64(F.col(KEY), F.lit(seed)), F.lit(HASH_SPACE)).cast("double") / F.lit(float(HASH_SPACE))
    split = (
        F.when(share < F.lit(test_share), F.lit("test"))
        .when(share < F.lit(test_share + validation_share), F.lit("validation"))
        .otherwise(F.lit("train"))
    )
    return df.withColumn(SPLIT, split)


def with_transformed_label(df: DataFrame, treated_share: float) -> DataFrame:
    """Adds ``z_label`` (1 for a retained treated or a churned control) and ``weight`` giving
    treated and control rows equal total weight (mean weight 1)."""
    z = F.col(TREATED) * F.col(RETAINED) + (F.lit(1) - F.col(TREATED)) * (F.lit(1) - F.col(RETAINED))
    weight = F.when(F.col(TREATED) == 1, F.lit(0.5 / treated_share)).otherwise(F.lit(0.5 / (1.0 - treated_share)))
    return df.withColumn(Z_LABEL, z.cast("int")).withColumn(WEIGHT, weight)


def grid_points(classifier, grid: dict) -> list[dict]:
    """Every combination of the grid's values (Spark ML param names of ``classifier``)."""
    for name in grid:
        if not classifier.hasParam(name):
            raise ConfigError(f"uplift.grids: {type(classifier).__name__} has no parameter {name!r}")
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*[grid[n] for n in names])]


def _arm(classifier, point: dict, label: str, prefix: str):
    arm = classifier.copy({classifier.getParam(k): v for k, v in point.items()})
    return (
        arm.setLabelCol(label)
        .setRawPredictionCol(prefix + "raw")
        .setProbabilityCol(prefix + "probability")
        .setPredictionCol(prefix + "prediction")
    )


def fit_uplift(
    train_df: DataFrame, fs: FeatureSet, learner: str, candidate: str, point: dict, seed: int
) -> PipelineModel:
    """The learner with classifier ``candidate`` (params ``point``) fitted on ``train_df``
    (``treated``, ``retained``, the features): preparation, then the arm(s)."""
    pipeline, classifier = build_pipeline(fs, candidate, seed)
    prep = Pipeline(stages=pipeline.getStages()[:-1]).fit(train_df)
    prepared_df = prep.transform(train_df).persist()
    try:
        if learner == "two_model":
            weighted_df = prepared_df.withColumn(WEIGHT, F.lit(1.0))
            treated = _arm(classifier, point, RETAINED, ARMS["treated"]).fit(weighted_df.where(F.col(TREATED) == 1))
            control = _arm(classifier, point, RETAINED, ARMS["control"]).fit(weighted_df.where(F.col(TREATED) == 0))
            arms = [treated, control]
        elif learner == "class_transformation":
            share = prepared_df.agg(F.avg(F.col(TREATED).cast("double"))).first()[0]
            z_df = with_transformed_label(prepared_df, share)
            arms = [_arm(classifier, point, Z_LABEL, ARMS["z"]).fit(z_df)]
        else:
            raise ConfigError(f"uplift.learners: unknown learner {learner!r} (known: {list(LEARNERS)})")
    finally:
        prepared_df.unpersist()
    return PipelineModel(stages=[*prep.stages, *arms])


def _class1(prefix: str) -> F.Column:
    return vector_to_array(F.col(prefix + "probability"))[1]


def with_uplift(scored_df: DataFrame, learner: str) -> DataFrame:
    """Adds ``p_treated``, ``p_control`` and ``uplift`` (doubles) to rows a fitted uplift
    pipeline has transformed; the class-transformation learner has no arm probabilities (null)."""
    if learner == "two_model":
        p_treated, p_control = _class1(ARMS["treated"]), _class1(ARMS["control"])
        uplift = p_treated - p_control
    else:
        p_treated = p_control = F.lit(None).cast("double")
        uplift = F.lit(2.0) * _class1(ARMS["z"]) - F.lit(1.0)
    return scored_df.withColumns({"p_treated": p_treated, "p_control": p_control, "uplift": uplift})
