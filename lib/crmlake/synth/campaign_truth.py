"""What a retention contact truly does to each line of the synthetic operator, from ``truth/``:
the ranking a perfectly informed marketer would contact in, the ceiling the closed loop's
rankings (churn probability, CLV at risk, uplift) are held against. Only evaluations read
``truth/``; no job does.

A line contacted on ``c`` (the first day after the publish date ``P``) and followed to ``P + H``:

- a **persuadable** whose base churn falls in ``(c, P + H]`` for a cause the objective addresses
  is kept with probability ``rescue_rate``: expected effect ``+rescue_rate``;
- a **sleeping dog** not churning by then anyway is pushed away ``BACKLASH_LAG_DAYS`` after the
  contact with probability ``backlash_rate``: expected effect ``-backlash_rate`` times the share
  of those lags that land inside the window;
- everyone else (sure things, lost causes, persuadables who would stay or leave for a cause no
  offer mends) does what they would have done: effect 0.

Delivery is left out: it scales every line of a channel alike and does not change the order.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.silver.identity import hmac_sha256_hex
from crmlake.synth.params import BACKLASH_LAG_DAYS, OBJECTIVE_CAUSES


def truth_uplift(spark: SparkSession, root: str, hmac_key: bytes) -> DataFrame:
    """``truth/subscribers`` keyed like the lake: subscriber_key, uplift_type, base_churn_date,
    base_churn_cause."""
    return spark.read.parquet(f"{root}/truth/subscribers").select(
        hmac_sha256_hex(F.col("msisdn"), hmac_key).alias("subscriber_key"),
        "uplift_type",
        "base_churn_date",
        "base_churn_cause",
    )


def with_true_effect(
    df: DataFrame,
    publish_date: dt.date,
    horizon_days: int,
    objective: str,
    rescue_rate: float,
    backlash_rate: float,
) -> DataFrame:
    """``df`` (with the columns of :func:`truth_uplift`) plus ``true_effect``: the expected change
    in the chance of being retained over ``(P, P + H]`` that a delivered contact on ``P + 1``
    makes."""
    contact = publish_date + dt.timedelta(days=1)
    end = publish_date + dt.timedelta(days=horizon_days)
    lo, hi = BACKLASH_LAG_DAYS
    lags = range(lo, hi + 1)
    in_window = sum(1 for lag in lags if contact + dt.timedelta(days=lag) <= end) / len(lags)
    churn = F.col("base_churn_date")
    churns_in_window = churn.isNotNull() & (churn > F.lit(contact)) & (churn <= F.lit(end))
    addressed = F.col("base_churn_cause").isin(list(OBJECTIVE_CAUSES.get(objective, ())))
    stays_anyway = churn.isNull() | (churn > F.lit(end))
    effect = (
        F.when((F.col("uplift_type") == "persuadable") & churns_in_window & addressed, F.lit(rescue_rate))
        .when((F.col("uplift_type") == "sleeping_dog") & stays_anyway, F.lit(-backlash_rate * in_window))
        .otherwise(F.lit(0.0))
    )
    return df.withColumn("true_effect", effect)
