"""The one module that owns Delta I/O: table names, paths, appends, scoped replaces, merges,
versions and roll-back.

Tables are path-based at ``<root>/<layer>/<table>``; a name is ``"<layer>.<table>"``
(``"silver.usage"``). Other modules ask for a table by name and never build paths themselves.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from crmlake.core.errors import TableNotFoundError

LAYERS = ("bronze", "silver", "gold")


def table_path(root: str, name: str) -> str:
    layer, _, table = name.partition(".")
    if layer not in LAYERS or not table:
        raise ValueError(f"table name must be '<layer>.<table>' with layer in {LAYERS}: {name!r}")
    return str(Path(root).resolve() / layer / table)


def landing_path(root: str, entity: str) -> str:
    return str(Path(root).resolve() / "landing" / entity)


def exists(spark: SparkSession, root: str, name: str) -> bool:
    return DeltaTable.isDeltaTable(spark, table_path(root, name))


def read(spark: SparkSession, root: str, name: str, version: int | None = None) -> DataFrame:
    if not exists(spark, root, name):
        raise TableNotFoundError(f"{name} does not exist yet at {table_path(root, name)}: run the job that writes it")
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(table_path(root, name))


def version(spark: SparkSession, root: str, name: str) -> int | None:
    """The table's latest version, or None when it does not exist."""
    if not exists(spark, root, name):
        return None
    return DeltaTable.forPath(spark, table_path(root, name)).history(1).collect()[0]["version"]


def versions(spark: SparkSession, root: str, names) -> dict[str, int | None]:
    return {name: version(spark, root, name) for name in names}


def append(df: DataFrame, root: str, name: str, partition_by: list[str] | None = None) -> None:
    writer = df.write.format("delta").mode("append")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(table_path(root, name))


def date_in(column: str, days) -> str:
    """A SQL predicate ``column IN (DATE'…', …)``, for replaceWhere conditions and MERGE scopes
    that Delta can prune partitions with."""
    listed = ", ".join(f"DATE'{d.isoformat()}'" for d in sorted(days))
    return f"{column} IN ({listed})"


def replace_where(df: DataFrame, root: str, name: str, condition: str, partition_by: list[str] | None = None) -> int:
    """Replace exactly the rows matching ``condition`` (a partition predicate) with ``df``.

    Creates the table when it does not exist. Rerunning with the same data leaves the same rows.
    Returns the rows written.
    """
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(table_path(root, name))
    return last_operation_rows(df.sparkSession, root, name)


def create(df: DataFrame, root: str, name: str, partition_by: list[str] | None = None) -> int:
    """Write ``df`` as a new table (an error if it exists). Returns the rows written."""
    writer = df.write.format("delta").mode("errorifexists")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(table_path(root, name))
    return last_operation_rows(df.sparkSession, root, name)


def merge(
    spark: SparkSession, source_df: DataFrame, root: str, name: str, on: str, update_when: str | None = None
) -> None:
    """Upsert ``source_df`` into the table (alias ``t``, source ``s``) on the ``on`` condition:
    matched rows are updated (only where ``update_when`` holds, if given), the rest inserted."""
    (
        DeltaTable.forPath(spark, table_path(root, name))
        .alias("t")
        .merge(source_df.alias("s"), on)
        .whenMatchedUpdateAll(condition=update_when)
        .whenNotMatchedInsertAll()
        .execute()
    )


def upsert_changed(
    spark: SparkSession,
    source_df: DataFrame,
    root: str,
    name: str,
    keys: list[str],
    wins_when: str,
    scope: str | None = None,
    hash_col: str = "_row_hash",
    partition_by: list[str] | None = None,
) -> int:
    """Insert new keys and update changed rows, writing nothing when nothing changed.

    ``source_df`` must be unique on ``keys`` and carry ``hash_col`` (a hash of the business
    columns). A matched row is replaced only when its hash differs and ``wins_when`` (a SQL
    condition over ``s`` and ``t``) says the source is newer. ``scope`` (over ``t``) limits the
    target rows considered, so Delta prunes partitions. A missing table is created. Returns rows
    inserted plus updated; a rerun with the same source writes no new version and returns 0.
    """
    if not exists(spark, root, name):
        return create(source_df, root, name, partition_by)
    target_df = read(spark, root, name)
    if scope:
        target_df = target_df.alias("t").where(scope)
    changed_df = source_df.join(target_df.select(*keys, hash_col), on=[*keys, hash_col], how="left_anti")
    if changed_df.isEmpty():
        return 0
    on = " AND ".join(f"t.{k} <=> s.{k}" for k in keys)
    if scope:
        on = f"({scope}) AND {on}"
    merge(spark, changed_df, root, name, on=on, update_when=f"s.{hash_col} <> t.{hash_col} AND ({wins_when})")
    return last_operation_rows(spark, root, name)


def last_operation_rows(spark: SparkSession, root: str, name: str) -> int:
    """Rows the table's latest commit wrote (a write) or inserted plus updated (a MERGE), from
    Delta's own operation metrics."""
    metrics = DeltaTable.forPath(spark, table_path(root, name)).history(1).collect()[0]["operationMetrics"] or {}
    if "numTargetRowsInserted" in metrics:
        return int(metrics["numTargetRowsInserted"]) + int(metrics.get("numTargetRowsUpdated", 0))
    return int(metrics.get("numOutputRows", 0))


def delta_table(spark: SparkSession, root: str, name: str) -> DeltaTable:
    return DeltaTable.forPath(spark, table_path(root, name))


def restore(spark: SparkSession, root: str, before: dict[str, int | None]) -> list[str]:
    """Put tables back to the versions they had before a failed run.

    A table that did not exist before is removed again. Returns the names rolled back.
    """
    rolled = []
    for name, prior in before.items():
        current = version(spark, root, name)
        if current is None or current == prior:
            continue
        if prior is None:
            shutil.rmtree(table_path(root, name), ignore_errors=True)
        else:
            DeltaTable.forPath(spark, table_path(root, name)).restoreToVersion(prior)
        rolled.append(name)
    return rolled
