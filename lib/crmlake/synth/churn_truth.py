"""How well could a churn model do on the synthetic operator? The generator knows each line's
latent churn hazard (``truth/subscribers``); scoring the labelled lines of a snapshot by that
hazard gives the ceiling the README reports next to the model's holdout metrics. Only the
evaluation reads ``truth/``; no job does.

The hazard is what a perfectly informed model would know *before* any sign of churn. The data
also shows the fade of usage in the weeks before a churn, which the hazard does not: a model that
reads the fade can beat this "ceiling" on short horizons, and the README says so when it does.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.silver.identity import hmac_sha256_hex
from crmlake.synth.params import DAYS_PER_MONTH


def truth_subscribers(spark: SparkSession, root: str, hmac_key: bytes) -> DataFrame:
    """``truth/subscribers`` keyed like the lake: subscriber_key, monthly_hazard, churn_cause."""
    return spark.read.parquet(f"{root}/truth/subscribers").select(
        hmac_sha256_hex(F.col("msisdn"), hmac_key).alias("subscriber_key"),
        "monthly_hazard",
        "churn_cause",
        "plan_type",
    )


def hazard_scores(labels_df: DataFrame, truth_df: DataFrame, snapshots: list[dt.date], horizon_days: int) -> DataFrame:
    """The labelled lines of ``snapshots`` with ``label`` and ``score``: the true probability of
    churning within the horizon from the latent hazard, 1 - exp(-hazard × horizon / month)."""
    rate = F.col("monthly_hazard") * F.lit(horizon_days / DAYS_PER_MONTH)
    return (
        labels_df.where(F.col("snapshot_date").isin([F.lit(s).cast("date") for s in snapshots]))
        .where(F.col("horizon_days") == horizon_days)
        .join(truth_df, on="subscriber_key", how="inner")
        .select(
            "subscriber_key",
            "snapshot_date",
            F.col("is_churned").cast("int").alias("label"),
            (F.lit(1.0) - F.exp(-rate)).alias("score"),
            "churn_cause",
            F.col("churn_type"),
        )
    )


def caught_by_cause(scored_df: DataFrame, cut: float) -> DataFrame:
    """Of the churners (label 1) per true cause, how many score at or above ``cut`` (the top
    decile's lower bound): which churn causes a model sees and which it misses."""
    churners = scored_df.where(F.col("label") == 1).withColumn(
        "cause", F.coalesce(F.col("churn_cause"), F.concat(F.lit("none in truth: "), F.col("churn_type")))
    )
    return (
        churners.groupBy("cause")
        .agg(F.count(F.lit(1)).alias("churners"), F.sum((F.col("score") >= cut).cast("int")).alias("in_top_decile"))
        .withColumn("share_caught", F.col("in_top_decile") / F.col("churners"))
        .orderBy(F.col("churners").desc())
    )
