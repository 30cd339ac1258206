"""One way to run and record a job: every run leaves one row in gold.run_log, failed ones too,
without the job writing the row itself."""

from __future__ import annotations

import argparse

import pytest
from crmlake.catalog import tables
from crmlake.core.errors import ReconciliationError
from crmlake.core.jobkit import run_recorded


def test_a_failing_body_is_recorded_as_failed_and_its_error_goes_on(spark, cfg):
    def body(spark, cfg, args, record):
        record.run_date = None
        record.tables_written = {"gold.run_log"}
        raise ReconciliationError("usage 2026-01-05: counts do not reconcile\nsecond line")

    with pytest.raises(ReconciliationError):
        run_recorded(spark, cfg, argparse.Namespace(), "probe", body)

    def fine(spark, cfg, args, record):
        record.rows_written = 7

    run_recorded(spark, cfg, argparse.Namespace(), "probe", fine)
    rows = tables.read(spark, cfg.root, "gold.run_log").orderBy("started_at").collect()
    seen = [(r["job"], r["status"], r["rows_written"]) for r in rows]
    assert seen == [("probe", "failed", 0), ("probe", "succeeded", 7)]
    assert rows[0]["message"] == "usage 2026-01-05: counts do not reconcile"
    assert ReconciliationError.exit_code == 6


def test_every_steps_through_a_range_and_keeps_its_last_day():
    import datetime as dt

    from crmlake.core.errors import ConfigError
    from crmlake.core.jobkit import dates_from_args, job_parser

    parser = job_parser("probe", "a job")
    args = parser.parse_args(["--from", "2026-01-01", "--to", "2026-01-20", "--every", "7"])
    assert dates_from_args(args) == [dt.date(2026, 1, d) for d in (1, 8, 15, 20)]
    args = parser.parse_args(["--from", "2026-01-01", "--to", "2026-01-15", "--every", "7"])
    assert dates_from_args(args) == [dt.date(2026, 1, d) for d in (1, 8, 15)]
    with pytest.raises(ConfigError, match="--every"):
        dates_from_args(parser.parse_args(["--from", "2026-01-01", "--to", "2026-01-02", "--every", "0"]))
