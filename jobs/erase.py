"""crmlake erase: erase subscribers named by number from every table holding a subscriber, and
register their keys so that no campaign list ever names them again.

spark-submit jobs/erase.py --root /data/crm --numbers /secure/erasure-2026-03.csv --request GDPR-0042
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.registry import holding_subscribers
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.core.lock import SILVER_WRITERS
from crmlake.privacy.erasure import erase
from crmlake.silver.erasure_register import ERASURE_REGISTER
from crmlake.silver.identity import keys_of_listed_numbers, load_hmac_key
from pyspark.sql import SparkSession

JOB = "erase"
DESCRIPTION = "Erase subscribers (a CSV of numbers, column msisdn) from every table; register their keys."


def parser() -> argparse.ArgumentParser:
    p = job_parser(JOB, DESCRIPTION)
    p.add_argument("--numbers", required=True, metavar="FILE", help="CSV with a header and an msisdn column")
    p.add_argument("--request", required=True, metavar="ID", help="the erasure request's id, kept in the register")
    return p


def run(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    identity = cfg.settings.identity
    d = optional_date(args, allowed=True) or dt.date.today()
    hmac_key = load_hmac_key(identity, cfg.root)
    numbers_df = spark.read.option("header", True).csv(args.numbers)
    keys_df = keys_of_listed_numbers(numbers_df, identity, hmac_key, args.numbers)
    record.run_date = d
    record.tables_written = {ERASURE_REGISTER, *(t.name for t in holding_subscribers())}
    deleted = erase(spark, cfg.root, keys_df, identity, hmac_key, args.request, d)
    record.rows_read = keys_df.count()
    record.rows_written = sum(deleted.values())
    record.details = {"request": args.request, "rows_deleted": deleted}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, parser(), run, spark=spark, lock=SILVER_WRITERS)


if __name__ == "__main__":
    sys.exit(main())
