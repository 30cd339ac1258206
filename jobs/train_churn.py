"""crmlake train-churn: fit the churn candidates on point-in-time snapshots (gold.features ×
gold.churn_labels, split by time) or on a team's own table (churn.dataset), register the best in
MLflow, promote it to @champion only if it beats the champion on the same test rows, and write
gold.model_metrics.

spark-submit jobs/train_churn.py --date 2026-03-31 --root /data/crm
spark-submit jobs/train_churn.py --conf my_dataset.yaml          # churn.dataset: no --date needed
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.models.churn_data import brings_own_table
from crmlake.models.churn_run import train_churn
from crmlake.models.registry import MODEL_METRICS
from pyspark.sql import SparkSession

JOB = "train-churn"
DESCRIPTION = (
    "Train churn models (logistic regression, random forest, gradient-boosted trees) on time-split "
    "snapshots or your own table, register the best in MLflow and promote it by rule."
)
WRITES = [MODEL_METRICS]


def train(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    settings = cfg.settings
    d = optional_date(args, allowed=settings.churn.dataset is not None)
    record.run_date, record.tables_written = d, set(WRITES)
    outcome = train_churn(
        spark, cfg.root, d, settings.churn, settings.labels.horizon_days, settings.mlflow, record.run_id
    )
    outcome.into(record)
    record.event_dates = {d} if d else set()


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    # on the team's own table (churn.dataset) the lake may be new: its root is made for the outputs
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), train, spark=spark, creates_root=brings_own_table)


if __name__ == "__main__":
    sys.exit(main())
