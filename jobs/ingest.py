"""crmlake ingest: landing → bronze → silver for a day or a range of days.

spark-submit jobs/ingest.py --date 2026-01-05 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import dates_from_args, job_parser, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.contracts.rules import ContractParams
from crmlake.core.config import Config
from crmlake.core.errors import ConfigError
from crmlake.core.lock import SILVER_WRITERS
from crmlake.landing.files import landed_dates
from crmlake.silver.identity import load_hmac_key, normalize_msisdn_from_config
from crmlake.silver.run import Ingestor, resolve_entities, tables_written_by_ingest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

JOB = "ingest"
DESCRIPTION = (
    "Ingest landing files into bronze (as arrived) and silver (typed, validated, deduplicated, "
    "pseudonymized); rejected rows go to silver.quarantine with the rule they broke."
)


def build_parser() -> argparse.ArgumentParser:
    parser = job_parser(JOB, DESCRIPTION)
    parser.add_argument("--entities", help="comma-separated subset of entities (default: all)")
    parser.add_argument(
        "--all", action="store_true", help="every file date that has a folder in landing (instead of --date)"
    )
    return parser


def ingest(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    entities = resolve_entities(args.entities.split(",") if args.entities else cfg["ingest"]["entities"])
    ingestor = Ingestor(
        spark,
        cfg.root,
        ContractParams.from_settings(cfg.settings.ingest),
        normalize_msisdn_from_config(F.col("msisdn"), cfg.settings.identity),
        load_hmac_key(cfg.settings.identity, cfg.root),
        fail_on_day_without_files=cfg.settings.ingest.fail_on_day_without_files,
        rederive=cfg.settings.ingest.rederive,
        at_once=cfg.settings.ingest.entities_at_once,
    )
    record.tables_written = set(tables_written_by_ingest(entities))
    if args.all and (args.date or args.date_from or args.date_to):
        raise ConfigError("give either --all or dates, not both")
    days = landed_dates(spark, cfg.root, entities) if args.all else dates_from_args(args)
    if not days:
        raise ConfigError(f"--all: no landing/<entity>/date=YYYY-MM-DD folders under {cfg.root}")
    record.run_date, record.date_from = days[-1], days[0]
    counts = ingestor.run(days, entities, record.run_id)
    record.rows_read = sum(c.read for c in counts.values())
    record.rows_written = sum(c.written for c in counts.values())
    record.rows_rejected = sum(c.quarantined for c in counts.values())
    record.rows_duplicate = sum(c.duplicates for c in counts.values())
    record.event_dates = {d for c in counts.values() for d in c.event_dates}
    record.details = {name: c.as_dict() for name, c in counts.items()}
    if ingestor.days_without_files:
        missing = [d.isoformat() for d in ingestor.days_without_files]
        record.details["days_without_files"] = missing
        record.message = f"no landing files for {', '.join(missing)}"


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, build_parser(), ingest, spark=spark, lock=SILVER_WRITERS)


if __name__ == "__main__":
    sys.exit(main())
