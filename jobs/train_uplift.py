"""crmlake train-uplift: fit uplift models on past campaign lists (gold.campaign_targets, treatment
against the hash-drawn control) whose outcome matured by --date (retained = not churned in
gold.churn_labels at the publish date), with the features the publisher saw; choose a learner by
validation Qini, register it in MLflow, promote it to @champion only if its test Qini beats the
champion's on the same rows, and write gold.model_metrics.

spark-submit jobs/train_uplift.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.models.uplift_run import MODEL_METRICS, TRAIN_JOB, train_uplift
from pyspark.sql import SparkSession

JOB = TRAIN_JOB
DESCRIPTION = (
    "Train uplift models (two-model and class-transformation learners) on past campaign lists with "
    "matured outcomes, evaluate Qini and AUUC with bootstrap intervals, register and promote by rule."
)
WRITES = [MODEL_METRICS]


def train(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    settings = cfg.settings
    d = optional_date(args, allowed=False)
    record.run_date, record.tables_written = d, set(WRITES)
    outcome = train_uplift(
        spark, cfg.root, d, settings.uplift, settings.labels.campaign_horizon, settings.mlflow, record.run_id
    )
    outcome.into(record)
    record.event_dates = {d}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), train, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
