"""crmlake score-churn: score every subscriber in the base at a date (or every row of a team's
own table) with models:/<name>@champion into gold.churn_scores (probability, decile, risk band,
the top drivers in words), then monitor: PSI of the score and top features against the
training snapshot, and realized churn of earlier scores by decile, into gold.model_monitoring.

spark-submit jobs/score_churn.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.models.churn_data import brings_own_table
from crmlake.models.churn_score import CHURN_SCORES, MODEL_MONITORING, score_churn
from pyspark.sql import SparkSession

JOB = "score-churn"
DESCRIPTION = (
    "Score the base with the champion churn model (probability, decile, risk band, reasons in words) "
    "and monitor drift and realized churn."
)
WRITES = [CHURN_SCORES, MODEL_MONITORING]


def score(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    settings = cfg.settings
    byo = settings.churn.dataset is not None
    # A team's own table is scored as of --date, or today when none is given.
    d = optional_date(args, allowed=byo) or dt.date.today()
    record.run_date, record.tables_written = d, set(WRITES)
    outcome = score_churn(
        spark, cfg.root, d, settings.churn, settings.labels.horizon_days, settings.mlflow, record.run_id
    )
    outcome.into(record)
    record.event_dates = {d}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    # on the team's own table (churn.dataset) the lake may be new: its root is made for the outputs
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), score, spark=spark, creates_root=brings_own_table)


if __name__ == "__main__":
    sys.exit(main())
