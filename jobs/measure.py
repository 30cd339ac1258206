"""crmlake measure: the lift of a campaign's lists whose outcome window (publish date +
labels.campaign_horizon_days) has closed by --date, treatment against control, overall, by risk
band and by segment, into gold.campaign_results: retention, revenue per subscriber (difference in means and
CUPED) and offer acceptance, with intervals.

spark-submit jobs/measure.py --campaign retention-at-risk --date 2026-04-30 --root /data/crm
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.publish.measure_run import CAMPAIGN_RESULTS, measure
from pyspark.sql import SparkSession

JOB = "measure"
DESCRIPTION = "Measure campaign lists whose outcome is known: lift with intervals into gold.campaign_results."


def parser() -> argparse.ArgumentParser:
    p = job_parser(JOB, DESCRIPTION)
    p.add_argument(
        "--campaign", action="append", required=True, metavar="ID", help="the campaign to measure (repeatable)"
    )
    return p


def run(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    settings = cfg.settings
    # --date is the day of measurement (default today): every list whose window closed by then
    d = optional_date(args, allowed=True) or dt.date.today()
    record.run_date, record.tables_written = d, {CAMPAIGN_RESULTS}
    outcome = measure(
        spark,
        cfg.root,
        d,
        sorted(set(args.campaign)),
        settings.publish.measure,
        settings.labels.campaign_horizon,
        record.run_id,
    )
    outcome.into(record)
    record.event_dates = {p for _, p in outcome.measured}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, parser(), run, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
