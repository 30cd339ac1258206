"""What a job body reports lands in its run_log record as it did when each job copied it by hand."""

from __future__ import annotations

from crmlake.catalog.runlog import RunRecord
from crmlake.core.outcome import JobOutcome


def test_into_copies_counts_details_and_tables_and_sets_model_and_message_only_when_given():
    record = RunRecord(job="probe", run_date=None, tables_written={"gold.features", "gold.churn_labels"})
    JobOutcome(rows_written=5, tables={"gold.features"}, details={"snapshots": 1}).into(record)
    assert (record.rows_read, record.rows_written, record.details) == (0, 5, {"snapshots": 1})
    assert record.tables_written == {"gold.features"}
    assert (record.model_version, record.message) == (None, None)

    JobOutcome(rows_read=3, model_version="churn/2", message="").into(record)
    assert (record.rows_read, record.rows_written, record.model_version, record.message) == (3, 0, "churn/2", "")
    assert record.tables_written == set()
