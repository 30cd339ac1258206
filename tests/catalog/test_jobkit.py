"""One way to run and record a job: every run leaves one row in gold.run_log, failed ones too,
without the job writing the row itself."""

from __future__ import annotations

import argparse

import pytest
from crmlake.catalog import tables
from crmlake.catalog.jobkit import describe_unexpected, run_recorded
from crmlake.core.errors import ReconciliationError


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

    from crmlake.catalog.jobkit import dates_from_args, job_parser
    from crmlake.core.errors import ConfigError

    parser = job_parser("probe", "a job")
    args = parser.parse_args(["--from", "2026-01-01", "--to", "2026-01-20", "--every", "7"])
    assert dates_from_args(args) == [dt.date(2026, 1, d) for d in (1, 8, 15, 20)]
    args = parser.parse_args(["--from", "2026-01-01", "--to", "2026-01-15", "--every", "7"])
    assert dates_from_args(args) == [dt.date(2026, 1, d) for d in (1, 8, 15)]
    with pytest.raises(ConfigError, match="--every"):
        dates_from_args(parser.parse_args(["--from", "2026-01-01", "--to", "2026-01-02", "--every", "0"]))


def test_an_error_of_the_jvm_is_named_by_its_java_exception_not_by_py4j(spark):
    from py4j.protocol import Py4JJavaError

    with pytest.raises(Py4JJavaError) as caught:  # one PySpark does not translate
        spark.sparkContext._jvm.java.io.FileInputStream("/no/such/landing/file.csv")
    said = describe_unexpected(caught.value)
    assert said.startswith("Py4JJavaError: java.io.FileNotFoundException: /no/such/landing/file.csv")
    assert "An error occurred while calling" not in said

    # Delta's refusal of a commit into a snapshot another writer moved is told for what it is
    jvm = spark.sparkContext._jvm
    refused = jvm.io.delta.exceptions.ConcurrentAppendException("Files were added by a concurrent update")
    said = describe_unexpected(Py4JJavaError("An error occurred while calling o1.execute.", refused))
    assert said.startswith("conflicting write: another run committed to a table this run was writing")
    assert "io.delta.exceptions.ConcurrentAppendException" in said


def test_a_job_made_of_jobs_takes_no_lock_of_its_own():
    """crmlake daily's steps each take their lock; a lock asked of the unrecorded whole would be
    silently held by nobody, so asking is refused before anything runs."""
    from crmlake.catalog.jobkit import job_parser, run_job

    def body(spark, cfg, args, record):
        raise AssertionError("not run")

    with pytest.raises(ValueError, match="takes none"):
        run_job("probe", [], job_parser("probe", "a job"), body, lock="silver", recorded=False)
