"""crmlake publish: the target lists of the campaigns active on a date (or those named with
--campaign) into gold.campaign_targets: eligibility, suppression (consent, do-not-contact, an
opt-out list, lines out of the base), the contact policy across campaigns, ranking under each
campaign's cap, and a control group drawn from the subscriber key and campaign id.

spark-submit jobs/publish.py --date 2026-03-31 --root /data/crm [--campaign retention-at-risk]
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.publish.run import CAMPAIGN_TARGETS, publish
from crmlake.silver.identity import load_hmac_key
from pyspark.sql import SparkSession

JOB = "publish"
DESCRIPTION = "Publish campaign target lists (suppression, contact policy, control groups) to gold.campaign_targets."


def parser() -> argparse.ArgumentParser:
    p = job_parser(JOB, DESCRIPTION)
    p.add_argument(
        "--campaign", action="append", default=[], metavar="ID", help="publish only this campaign (repeatable)"
    )
    return p


def run(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    settings = cfg.settings
    d = optional_date(args, allowed=False)
    record.run_date, record.tables_written = d, {CAMPAIGN_TARGETS}
    outcome = publish(
        spark,
        cfg.root,
        d,
        settings.publish,
        settings.identity,
        load_hmac_key(settings.identity, cfg.root),
        list(settings.churn.risk_bands),
        record.run_id,
        args.campaign or None,
    )
    outcome.into(record)
    record.event_dates = {d}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, parser(), run, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
