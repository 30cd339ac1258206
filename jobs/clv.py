"""crmlake clv: customer lifetime value on the date — BG/NBD + Gamma-Gamma for prepaid top-ups,
shifted-beta-geometric per acquisition cohort and tariff for postpaid lines — into gold.clv, the
fits into gold.clv_models and, where the data reaches past the date, the holdout comparison into
gold.clv_validation (and MLflow). With clv.transactions / clv.subscriptions in config it runs on a
team's own data instead.

spark-submit jobs/clv.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import dates_from_args, job_parser, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.gold.clv_run import run_clv
from pyspark.sql import SparkSession

JOB = "clv"
DESCRIPTION = (
    "Estimate customer lifetime value (BG/NBD + Gamma-Gamma for prepaid, sBG per cohort for postpaid, "
    "or on your own transactions and subscriptions) and check it against the holdout."
)
WRITES = ["gold.clv", "gold.clv_models", "gold.clv_validation"]


def clv(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    dates = dates_from_args(args)
    record.run_date, record.date_from, record.tables_written = dates[-1], dates[0], set(WRITES)
    record.tables_written = set()
    for d in dates:
        outcome = run_clv(spark, cfg.root, d, cfg.settings.clv, cfg.settings.mlflow, record.run_id)
        record.rows_written += outcome.rows_written
        record.tables_written |= outcome.tables
        record.details[str(d)] = outcome.details
    record.event_dates = set(dates)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), clv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
