"""Delta I/O of the catalog: the operation metrics read from a commit's file, and a scoped
replace that writes nothing when the rows are there already."""

from __future__ import annotations

import datetime as dt

import pytest
from crmlake.catalog import registry, tables
from crmlake.catalog.registry import PersonalData, TableSpec
from delta.tables import DeltaTable
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

NAME = "gold.catalog_test"
D1, D2 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)
SCHEMA = "id long, label string, day date, run_id string"


@pytest.fixture
def declared(monkeypatch):
    spec = TableSpec(
        name=NAME,
        grain="one test row",
        key=("id",),
        personal_data=PersonalData.NONE,
        partition_by=("day",),
        date_column="day",
    )
    monkeypatch.setitem(registry.TABLES, NAME, spec)
    return spec


def rows(spark, *values):
    return spark.createDataFrame(list(values), SCHEMA)


def history_metrics(spark, root):
    return DeltaTable.forPath(spark, tables.table_path(root, NAME)).history(1).collect()[0]["operationMetrics"]


def test_operation_metrics_are_those_delta_recorded_for_each_kind_of_commit(spark, cfg, declared):
    root = cfg.root
    first = rows(spark, *[(i, f"x{i}", D1 if i % 2 else D2, "r1") for i in range(10)])
    assert tables.create(first, root, NAME) == 10
    assert tables.last_operation_metrics(spark, root, NAME) == history_metrics(spark, root)
    tables.append(rows(spark, (20, "a", D1, "r2")), root, NAME)
    assert tables.last_operation_rows(spark, root, NAME) == 1
    assert tables.replace_days(rows(spark, (30, "b", D2, "r3"), (31, "c", D2, "r3")), root, NAME, [D2]) == 2
    assert tables.last_operation_metrics(spark, root, NAME) == history_metrics(spark, root)
    tables.upsert(spark, rows(spark, (30, "changed", D2, "r4"), (40, "new", D1, "r4")), root, NAME)
    assert tables.last_operation_metrics(spark, root, NAME) == history_metrics(spark, root)
    assert tables.last_operation_rows(spark, root, NAME) == 2  # one updated, one inserted
    gone = rows(spark, (20, "", D1, "")).select("id")
    assert tables.delete_matching(spark, root, NAME, gone, F.expr("t.id = s.id")) == 1
    assert tables.last_operation_metrics(spark, root, NAME) == history_metrics(spark, root)


def test_a_replace_with_the_rows_already_there_writes_nothing_and_a_changed_multiset_is_written(spark, cfg, declared):
    root = cfg.root
    held = [(1, "a", D1, "r1"), (2, "b", D1, "r1"), (3, "c", D2, "r1")]
    tables.create(rows(spark, *held), root, NAME)
    scope = tables.days_scope(NAME, [D1])
    version = tables.version(spark, root, NAME)

    # the same rows of D1, in another order and from another run: nothing written, no new version
    again = rows(spark, (2, "b", D1, "r2"), (1, "a", D1, "r2"))
    assert tables.replace_where_changed(again, root, NAME, scope, ignore=("run_id",)) == 0
    assert tables.version(spark, root, NAME) == version
    # the run id is compared when it is not ignored
    assert tables.replace_where_changed(again, root, NAME, scope) == 2
    assert tables.version(spark, root, NAME) == version + 1

    # one row twice is another multiset: written; the rows of D2 stay as they were
    doubled = rows(spark, (1, "a", D1, "r3"), (1, "a", D1, "r3"), (2, "b", D1, "r3"))
    assert tables.replace_where_changed(doubled, root, NAME, scope, ignore=("run_id",)) == 3
    assertDataFrameEqual(tables.read(spark, root, NAME), rows(spark, *doubled.collect(), held[2]))
    # and no rows for D1 at all is a change too: D1's rows are removed, none written
    version = tables.version(spark, root, NAME)
    assert tables.replace_where_changed(rows(spark), root, NAME, scope, ignore=("run_id",)) == 0
    assert tables.version(spark, root, NAME) == version + 1
    assert tables.read(spark, root, NAME).where(scope).isEmpty()
