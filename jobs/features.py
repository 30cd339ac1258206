"""crmlake features: gold.subscriber_daily (the days the windows need), gold.features (one
point-in-time snapshot per date) and gold.churn_labels (the snapshot whose horizon just closed).

spark-submit jobs/features.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import dates_from_args, job_parser, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.gold.run import run_features
from pyspark.sql import SparkSession

JOB = "features"
DESCRIPTION = (
    "Build subscriber-day aggregates (only missing or stale days), point-in-time feature snapshots "
    "and the churn labels whose horizon has closed."
)
WRITES = [
    "gold.subscriber_daily",
    "gold.subscriber_daily_builds",
    "gold.features",
    "gold.churn_labels",
    "gold.snapshot_builds",
]


def features(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    dates = dates_from_args(args)
    record.run_date, record.date_from, record.tables_written = dates[-1], dates[0], set(WRITES)
    outcome = run_features(
        spark,
        cfg.root,
        dates,
        cfg.settings.features,
        cfg.settings.labels,
        record.run_id,
    )
    outcome.into(record)
    record.event_dates = set(dates)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), features, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
