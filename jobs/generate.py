"""crmlake generate: write a synthetic operator's landing files (and its ground truth).

spark-submit jobs/generate.py --root /data/crm --subscribers 200000 --start 2026-01-01 --days 30
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.core.jobkit import job_parser, parse_date, run_job
from crmlake.synth.run import generate_operator
from pyspark.sql import SparkSession

JOB = "generate"
DESCRIPTION = (
    "Generate a synthetic mobile operator: landing files for every source entity (usage CSV, "
    "care and surveys JSON lines, subscriber extracts, recharges, campaign responses, network "
    "cells Parquet), with injected bad records at --bad-rate, and the ground truth in truth/."
)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(JOB, DESCRIPTION, dated=False)
    parser.add_argument("--subscribers", type=int, help="number of subscribers")
    parser.add_argument("--start", type=parse_date, help="first day (YYYY-MM-DD)")
    parser.add_argument("--days", type=int, help="number of days")
    parser.add_argument("--seed", type=int, help="random seed: the same seed writes the same data")
    parser.add_argument("--bad-rate", type=float, help="share of records made bad (0 to 1)")
    return parser


def overrides(args: argparse.Namespace) -> dict:
    return {
        "generate.subscribers": args.subscribers,
        "generate.start": args.start.isoformat() if args.start else None,
        "generate.days": args.days,
        "generate.seed": args.seed,
        "generate.bad_rate": args.bad_rate,
    }


def generate(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    gen = cfg["generate"]
    record.run_date = dt.date.fromisoformat(str(gen["start"]))
    counts = generate_operator(spark, cfg.root, cfg.settings.generate, cfg.settings.identity)
    record.rows_written = int(sum(counts.values()))
    record.details = {"counts": counts, **{k: gen[k] for k in ("subscribers", "start", "days", "seed", "bad_rate")}}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, build_parser(), generate, spark=spark, overrides=overrides)


if __name__ == "__main__":
    sys.exit(main())
