"""crmlake generate: write a synthetic operator's landing files (and its ground truth).

spark-submit jobs/generate.py --root /data/crm --subscribers 200000 --start 2026-01-01 --days 30
spark-submit jobs/generate.py --root /data/crm --continue --days 7   # 7 more days, honouring the
                                                                      # lists published meanwhile
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from crmlake.catalog import tables
from crmlake.catalog.jobkit import job_parser, parse_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.core.errors import ConfigError
from crmlake.silver.identity import create_demo_key, load_hmac_key
from crmlake.synth.record import read_record
from crmlake.synth.run import continue_operator, generate_operator
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
    parser.add_argument("--days", type=int, help="number of days (with --continue: the number of days to add)")
    parser.add_argument("--seed", type=int, help="random seed: the same seed writes the same data")
    parser.add_argument("--bad-rate", type=float, help="share of records made bad (0 to 1)")
    parser.add_argument(
        "--continue",
        dest="continue_",
        action="store_true",
        help="carry the operator generated under --root on for --days more days (its settings come from "
        "truth/generation.json; --seed, --subscribers, --start, --bad-rate, if given, must agree), "
        "contacting the lines of the lists crmlake publish wrote meanwhile",
    )
    return parser


def overrides(args: argparse.Namespace) -> dict:
    if args.continue_:  # the recorded settings apply; the flags are checked against them
        return {}
    return {
        "generate.subscribers": args.subscribers,
        "generate.start": args.start.isoformat() if args.start else None,
        "generate.days": args.days,
        "generate.seed": args.seed,
        "generate.bad_rate": args.bad_rate,
    }


def generate(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    if args.continue_:
        continue_generation(spark, cfg, args, record)
        return
    gen = cfg["generate"]
    record.run_date = dt.date.fromisoformat(str(gen["start"]))
    create_demo_key(cfg.settings.identity, cfg.root)  # the one place a key is made: a new demo operator
    counts = generate_operator(spark, cfg.root, cfg.settings.generate, cfg.settings.identity)
    record.rows_written = int(sum(counts.values()))
    record.details = {"counts": counts, **{k: gen[k] for k in ("subscribers", "start", "days", "seed", "bad_rate")}}


def continue_generation(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    if args.days is None:
        raise ConfigError("--continue needs --days N, the number of days to add")
    identity = cfg.settings.identity
    # control rows of the published lists carry no number: they are matched by their HMAC key
    has_lists = tables.exists(spark, cfg.root, "gold.campaign_targets")
    hmac_key = load_hmac_key(identity, cfg.root) if has_lists else None
    given = {"seed": args.seed, "subscribers": args.subscribers, "start": args.start, "bad_rate": args.bad_rate}
    counts = continue_operator(spark, cfg.root, args.days, identity, hmac_key, given)
    generation = read_record(spark, cfg.root)
    start = dt.date.fromisoformat(generation["generate"]["start"])
    record.run_date = start + dt.timedelta(days=generation["days_generated"] - args.days)
    record.rows_written = int(sum(counts.values()))
    record.details = {"counts": counts, "more_days": args.days, "days_generated": generation["days_generated"],
                      "lists": generation["lists"]}  # fmt: skip


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, build_parser(), generate, spark=spark, overrides=overrides, creates_root=True)


if __name__ == "__main__":
    sys.exit(main())
