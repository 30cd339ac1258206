"""crmlake daily: a day's ingest, then its features and KPIs, in one Spark session.

What a scheduler runs each morning: one application instead of three, so the cluster starts its
executors (and the JVM compiles its code) once. Each step is the job of the same name with the
same options, recording its own row in gold.run_log; the first step that fails ends the run with
its exit code, and the steps after it are not run.

spark-submit jobs/daily.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import dates_from_args, job_parser, run_job
from crmlake.core.config import Config
from crmlake.core.errors import ConfigError, StepFailedError
from crmlake.core.log import log
from crmlake_jobs import features, ingest, kpis
from pyspark.sql import SparkSession

JOB = "daily"
DESCRIPTION = "Ingest a day (or a range), then build its features and KPIs: the three jobs in one Spark session."
STEPS = (ingest, features, kpis)


def body(argv: list[str]):
    def daily(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: None) -> None:
        dates_from_args(args)  # a missing or inverted date is refused before the first step
        if args.every != 1:
            raise ConfigError("daily ingests every day of its range: --every is for backfilling features alone")
        for i, step in enumerate(STEPS):
            log(f"daily: {step.JOB}", job=JOB)
            code = step.main(argv, spark=spark)
            if code != 0:
                skipped = ", ".join(s.JOB for s in STEPS[i + 1 :]) or "none"
                raise StepFailedError(f"{step.JOB} failed (exit {code}); not run: {skipped}", code)

    return daily


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), body(argv), spark=spark, recorded=False)


if __name__ == "__main__":
    sys.exit(main())
