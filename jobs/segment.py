"""crmlake segment: gold.segments (every subscriber of a feature snapshot labelled by each
scheme: geography, demographics, behaviour, value tier, RFM, lifecycle, cluster),
gold.segment_profiles and gold.segment_migration (moves since an earlier snapshot).

spark-submit jobs/segment.py --date 2026-03-31 --root /data/crm [--refit]
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import dates_from_args, job_parser, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.gold.segments_run import run_segments
from pyspark.sql import SparkSession

JOB = "segment"
DESCRIPTION = (
    "Segment the base of feature snapshots (rules, value tiers, RFM, lifecycle, clusters kept in "
    "MLflow), profile each segment and count the moves between snapshots."
)
WRITES = ["gold.segments", "gold.segment_profiles", "gold.segment_migration"]


def parser() -> argparse.ArgumentParser:
    found = job_parser(JOB, DESCRIPTION)
    found.add_argument(
        "--refit", action="store_true", help="fit a new cluster model instead of reusing the registered one"
    )
    return found


def segment(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    dates = dates_from_args(args)
    record.run_date, record.date_from, record.tables_written = dates[-1], dates[0], set(WRITES)
    settings = cfg.settings
    outcome = run_segments(spark, cfg.root, dates, settings.segments, settings.mlflow, args.refit, record.run_id)
    outcome.into(record)
    record.event_dates = set(dates)


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, parser(), segment, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
