"""What every job shares: its command line, config loading, logging, the session, run_log
rows, and turning named errors into one clear line and a meaningful exit code.

Exit codes: see :mod:`crmlake.core.errors`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import traceback
from collections.abc import Callable

from pyspark.sql import SparkSession

from crmlake.catalog import tables
from crmlake.catalog.runlog import RunRecord, append_run
from crmlake.core.config import Config, load_config
from crmlake.core.errors import ConfigError, CrmlakeError
from crmlake.core.lock import root_lock
from crmlake.core.log import log, setup_logging
from crmlake.core.session import build_session


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def job_parser(job: str, description: str, dated: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"crmlake {job}", description=description)
    parser.add_argument(
        "--conf", action="append", default=[], metavar="FILE", help="extra YAML config, applied in order"
    )
    parser.add_argument(
        "--root", help="folder (or URI) holding landing/, bronze/, silver/, gold/ (default: config root, ./data)"
    )
    parser.add_argument("--env", help="config overlay: local (default) or cluster; or set CRMLAKE_ENV")
    parser.add_argument("--log-format", choices=["json", "text"], help="log line format (default from config)")
    parser.add_argument("--verbose", action="store_true", help="print stack traces of unexpected errors")
    if dated:
        parser.add_argument("--date", type=parse_date, help="the day to process (YYYY-MM-DD)")
        parser.add_argument("--from", dest="date_from", type=parse_date, help="first day of a range")
        parser.add_argument("--to", dest="date_to", type=parse_date, help="last day of a range (inclusive)")
        parser.add_argument(
            "--every",
            type=int,
            default=1,
            metavar="N",
            help="with --from/--to: every Nth day from --from, and --to (weekly snapshots: --every 7)",
        )
    return parser


def dates_from_args(args: argparse.Namespace) -> list[dt.date]:
    if args.date and (args.date_from or args.date_to):
        raise ConfigError("give either --date or --from/--to, not both")
    if args.date:
        return [args.date]
    if args.date_from and args.date_to:
        if args.date_to < args.date_from:
            raise ConfigError(f"--to {args.date_to} is before --from {args.date_from}")
        every = getattr(args, "every", 1)
        if every < 1:
            raise ConfigError(f"--every must be 1 or more, not {every}")
        days = (args.date_to - args.date_from).days
        picked = [args.date_from + dt.timedelta(days=i) for i in range(0, days + 1, every)]
        return picked if picked[-1] == args.date_to else [*picked, args.date_to]
    raise ConfigError("a date is required: --date YYYY-MM-DD, or --from D1 --to D2")


def optional_date(args: argparse.Namespace, allowed: bool) -> dt.date | None:
    """The single ``--date`` of a job that can also run without one (on a table of the team's
    own); None only where ``allowed``."""
    if args.date_from or args.date_to:
        raise ConfigError("this job takes one --date, not a range")
    if args.date is None and not allowed:
        raise ConfigError("a date is required: --date YYYY-MM-DD")
    return args.date


def load_job_config(args: argparse.Namespace, overrides: dict | None = None) -> Config:
    merged = {"root": args.root, "logging.format": args.log_format}
    merged.update(overrides or {})
    return load_config(args.conf, overrides=merged, env=args.env)


def record_run(spark: SparkSession, cfg: Config, record: RunRecord) -> None:
    record.table_versions = {
        k: v for k, v in tables.versions(spark, cfg.root, sorted(record.tables_written)).items() if v is not None
    }
    append_run(spark, cfg.root, record)
    log(
        f"{record.job} {record.status}",
        job=record.job,
        date=record.run_date,
        rows_read=record.rows_read,
        rows_written=record.rows_written,
        rows_rejected=record.rows_rejected,
        rows_duplicate=record.rows_duplicate,
        run_id=record.run_id,
    )


JobBody = Callable[[SparkSession, Config, argparse.Namespace, RunRecord], None]


def run_recorded(
    spark: SparkSession, cfg: Config, args: argparse.Namespace, job: str, body: JobBody, lock: str | None = None
) -> None:
    """Run ``body`` with a fresh :class:`RunRecord` and write it to ``gold.run_log`` whatever
    happens: ``succeeded`` when the body returns, ``failed`` with the error's first line when it
    raises (the error then goes on to its exit code). The body fills in dates, counts and
    ``tables_written``; it never writes the record itself, so no job can forget the failure row.
    With ``lock``, the body runs holding the root's lock of that name (:mod:`crmlake.core.lock`)."""
    record = RunRecord(job, None)
    try:
        if lock:
            with root_lock(cfg.root, lock, job, record.run_id):
                body(spark, cfg, args, record)
        else:
            body(spark, cfg, args, record)
    except Exception as exc:
        record.status = "failed"
        record.message = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        try:
            record_run(spark, cfg, record)
        except Exception as log_exc:  # noqa: BLE001 - the run's own error is the one to report
            log(f"could not record the failed run in gold.run_log: {log_exc}", logging.ERROR, job=job)
        raise
    record.status = "succeeded"
    record_run(spark, cfg, record)


# Delta's optimistic concurrency: another writer committed to the table between this run's read
# and its commit.
CONFLICTS = ("ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
             "ConcurrentTransactionException", "MetadataChangedException", "ProtocolChangedException")  # fmt: skip


def describe_unexpected(exc: BaseException) -> str:
    """One line for an error nobody named: for an error of the JVM, the Java exception and its
    message (not Py4J's "An error occurred while calling o123.save"), and what a Delta commit
    conflict means."""
    text = str(exc).strip()
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause = java
            while cause.getCause() is not None and cause.getCause() != cause:
                cause = cause.getCause()
            text = java.toString() if cause.equals(java) else f"{java.toString()} (caused by {cause.toString()})"
        except Exception:  # noqa: BLE001 - the gateway may be gone; keep Python's text
            pass
    first_line = (text.splitlines() or [type(exc).__name__])[0]
    if any(name in text for name in CONFLICTS):
        return (
            f"conflicting write: another run committed to a table this run was writing, and Delta refused "
            f"this run's commit ({first_line}). Run one writer at a time per root"
        )
    return f"{type(exc).__name__}: {first_line}"


def run_job(
    job: str,
    argv: list[str] | None,
    parser: argparse.ArgumentParser,
    body: JobBody,
    spark: SparkSession | None = None,
    overrides: Callable[[argparse.Namespace], dict] | None = None,
    creates_root: bool | Callable[[Config], bool] = False,
    lock: str | None = None,
    recorded: bool = True,
) -> int:
    """Parse, configure, build (or reuse) the session, run ``body`` recorded in ``gold.run_log``
    (:func:`run_recorded`), map errors to exit codes.

    A caller that passes ``spark`` (a test, a notebook) keeps its session; otherwise the job
    builds one and stops it at the end. The root must exist unless the job ``creates_root`` (for
    this config, when it is a function of it); a job
    that rewrites tables another may be rewriting names the ``lock`` it holds while it runs. A
    job made of other jobs, each recording its own run, is not ``recorded`` itself (its body gets
    no record) and takes no lock: each of its jobs takes its own.
    """
    if lock and not recorded:
        raise ValueError(f"{job}: a job that is not recorded runs jobs that take their own locks; it takes none")
    args = parser.parse_args(argv)
    own_session = spark is None
    try:
        cfg = load_job_config(args, overrides(args) if overrides else None)
        setup_logging(cfg["logging"]["level"], cfg["logging"]["format"])
        if own_session:
            spark = build_session(cfg, verbose=args.verbose)
        may_create = creates_root(cfg) if callable(creates_root) else creates_root
        if not may_create and not tables.location_exists(spark, cfg.root):
            # before the run log is written there: a mistyped --root must not become a new lake
            raise ConfigError(
                f"the root {cfg.root} does not exist: give --root the folder that holds landing/ and the "
                "tables (only crmlake generate creates one)"
            )
        if recorded:
            run_recorded(spark, cfg, args, job, body, lock)
        else:
            body(spark, cfg, args, None)
        return 0
    except CrmlakeError as exc:
        log(f"{type(exc).__name__}: {exc}", logging.ERROR, job=job)
        print(f"crmlake {job}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one clear line, exit 1
        if args.verbose:
            traceback.print_exc()
        print(f"crmlake {job}: unexpected {describe_unexpected(exc)} (rerun with --verbose)", file=sys.stderr)
        return 1
    finally:
        if own_session and spark is not None:
            spark.stop()
