"""crmlake score-uplift: score every subscriber in the base at a date with
models:/<uplift.model_name>@champion into gold.uplift_scores (uplift, retention if treated and if
not, uplift decile), the date's rows replaced; a campaign ranks by it with `ranking: {by: uplift}`.

spark-submit jobs/score_uplift.py --date 2026-03-31 --root /data/crm
"""

from __future__ import annotations

import argparse
import sys

from crmlake.catalog.jobkit import job_parser, optional_date, run_job
from crmlake.catalog.runlog import RunRecord
from crmlake.core.config import Config
from crmlake.models.uplift_run import SCORE_JOB, UPLIFT_SCORES, score_uplift
from pyspark.sql import SparkSession

JOB = SCORE_JOB
DESCRIPTION = "Score the base with the champion uplift model (uplift, both arms' retention, decile)."
WRITES = [UPLIFT_SCORES]


def score(spark: SparkSession, cfg: Config, args: argparse.Namespace, record: RunRecord) -> None:
    settings = cfg.settings
    d = optional_date(args, allowed=False)
    record.run_date, record.tables_written = d, set(WRITES)
    outcome = score_uplift(spark, cfg.root, d, settings.uplift, settings.mlflow, record.run_id)
    outcome.into(record)
    record.event_dates = {d}


def main(argv: list[str] | None = None, spark: SparkSession | None = None) -> int:
    return run_job(JOB, argv, job_parser(JOB, DESCRIPTION), score, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
