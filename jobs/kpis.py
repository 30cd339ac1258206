"""crmlake kpis: gold.kpis (the day and the month to date, overall and per dimension) and
gold.cohort_retention (activation-month cohorts as known on the date).

spark-submit jobs/kpis.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import dates_from_args, job_parser, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.gold.run import run_kpis
from pyspark.sql import SparkSession

JOB = "kpis"
DESCRIPTION = (
    "Compute the operator's KPIs (base, churn, ARPU, MOU, CSAT, NPS, FCR, care mix) per day and "
    "month to date, and cohort retention."
)
WRITES = [
    "gold.subscriber_daily",
    "gold.subscriber_daily_builds",
    "gold.kpis",
    "gold.cohort_retention",
    "gold.snapshot_builds",
]


def kpis(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    dates = dates_from_args(args)
    record.run_date, record.date_from, record.tables_written = dates[-1], dates[0], set(WRITES)
    outcome = run_kpis(spark, cfg.root, dates, cfg.settings.kpis, record.run_id)
    outcome.into(record)
    record.event_dates = set(dates)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), kpis, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
