"""The one module that owns Delta I/O: paths, reads, appends, scoped replaces, merges, versions,
operation metrics and roll-back.

Tables are path-based at ``<root>/<layer>/<table>``; a name is ``"<layer>.<table>"``
(``"silver.usage"``) and must be declared in :mod:`crmlake.catalog.registry`, which also gives
each write its partition columns and date column. Other modules ask for a table by name and never
build paths, partition lists or SQL date literals themselves. ``root`` may be a local folder or
any Hadoop file system URI (``s3a://…``, ``abfss://…``, ``hdfs://…``): removal goes through
Hadoop's FileSystem, not the local disk.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog.registry import TableSpec, spec
from crmlake.core.errors import TableNotFoundError

URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def _join(root: str, *parts: str) -> str:
    """``root/part/...``: a URI root is joined as is, a local folder made absolute."""
    if URI.match(root):
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root).resolve().joinpath(*parts))


def table_path(root: str, name: str) -> str:
    table = spec(name)
    return _join(root, table.layer, table.table)


def landing_path(root: str, entity: str) -> str:
    return _join(root, "landing", entity)


def exists(spark: SparkSession, root: str, name: str) -> bool:
    return DeltaTable.isDeltaTable(spark, table_path(root, name))


def _not_found(root: str, name: str) -> TableNotFoundError:
    return TableNotFoundError(f"{name} does not exist yet at {table_path(root, name)}: run the job that writes it")


def read(spark: SparkSession, root: str, name: str, version: int | None = None) -> DataFrame:
    if not exists(spark, root, name):
        raise _not_found(root, name)
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(table_path(root, name))


def hadoop_fs(spark: SparkSession, location: str):
    """Hadoop's FileSystem for a location (any scheme the session can reach) and its Path."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(location)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def text_lines(spark: SparkSession, location: str) -> Iterator[str]:
    """The lines of a UTF-8 text file, read through Hadoop's FileSystem (any scheme) one at a time;
    the file is closed when the lines run out or the iterator is closed (``contextlib.closing``
    when the caller stops early)."""
    fs, path = hadoop_fs(spark, location)
    jvm = spark.sparkContext._jvm
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(path), "UTF-8"))
    try:
        while (line := reader.readLine()) is not None:
            yield line
    finally:
        reader.close()


# A commit in the Delta log: <20-digit version>.json
COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


def _latest_commit(spark: SparkSession, root: str, name: str):
    """The FileStatus of the newest commit file in the table's log (listed through Hadoop's
    FileSystem, no Spark job), or None when the table does not exist."""
    fs, log_dir = hadoop_fs(spark, f"{table_path(root, name)}/_delta_log")
    if not fs.exists(log_dir):
        return None
    commits = [
        (int(match.group(1)), status)
        for status in fs.listStatus(log_dir)
        if (match := COMMIT_FILE.match(status.getPath().getName()))
    ]
    return max(commits, key=lambda found: found[0])[1] if commits else None


def version(spark: SparkSession, root: str, name: str) -> int | None:
    """The table's latest version, or None when it does not exist: the newest commit file in its
    log (a run asks for every table it writes, before and after)."""
    status = _latest_commit(spark, root, name)
    return None if status is None else int(COMMIT_FILE.match(status.getPath().getName()).group(1))


def identity(spark: SparkSession, root: str, name: str) -> str | None:
    """What the table is now, as a string that changes with every commit: its latest version with
    that commit file's size and modification time (a table dropped and written again up to the
    same version is another table). None when it does not exist. Costs one log listing."""
    status = _latest_commit(spark, root, name)
    if status is None:
        return None
    return f"{status.getPath().getName()}:{status.getLen()}:{status.getModificationTime()}"


def required_identity(spark: SparkSession, root: str, name: str) -> str:
    """The table's :func:`identity`; TableNotFoundError when it does not exist (without loading
    its snapshot, as :func:`read` would)."""
    found = identity(spark, root, name)
    if found is None:
        raise _not_found(root, name)
    return found


def versions(spark: SparkSession, root: str, names) -> dict[str, int | None]:
    return {name: version(spark, root, name) for name in names}


def last_operation_metrics(spark: SparkSession, root: str, name: str) -> dict[str, str]:
    """Delta's operation metrics of the table's latest commit, read from that commit's file (its
    ``commitInfo`` action): one log listing and one small read, where ``history(1)`` loaded the
    snapshot and ran a Spark job (about 0.1 s, paid after every write)."""
    status = _latest_commit(spark, root, name)
    if status is None:
        raise _not_found(root, name)
    with closing(text_lines(spark, status.getPath().toString())) as lines:
        for line in lines:
            if line.startswith('{"commitInfo"'):
                return json.loads(line)["commitInfo"].get("operationMetrics") or {}
    return {}


def last_operation_rows(spark: SparkSession, root: str, name: str) -> int:
    """Rows the table's latest commit wrote (a write) or inserted plus updated (a MERGE), from
    Delta's own operation metrics."""
    metrics = last_operation_metrics(spark, root, name)
    if "numTargetRowsInserted" in metrics:
        return int(metrics["numTargetRowsInserted"]) + int(metrics.get("numTargetRowsUpdated", 0))
    return int(metrics.get("numOutputRows", 0))


# ---------------------------------------------------------------------------------------------
# scopes: the SQL predicates of replaceWhere and MERGE, built here only


def sql_literal(value) -> str:
    """A SQL literal for a date, number, bool or string (quotes escaped)."""
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_external(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """A table that is not crmlake's own (a team's transactions, a data set): a CSV file or
    folder (header row, every column read as text for the caller to parse and name what fails),
    Parquet, or a Delta table, by path. Raises :class:`UnreadableFileError` naming the path when
    nothing is there."""
    from crmlake.core.errors import UnreadableFileError

    local = not URI.match(path) or path.startswith("file:")
    if local and not Path(path.removeprefix("file:")).exists():
        raise UnreadableFileError(f"{path}: no such file or folder")
    if fmt == "delta" and not DeltaTable.isDeltaTable(spark, path):
        raise UnreadableFileError(f"{path}: not a Delta table (no _delta_log)")
    if fmt == "csv":
        # Records may hold quoted newlines (RFC 4180).
        return spark.read.option("header", True).option("multiLine", True).option("escape", '"').csv(path)
    return spark.read.format(fmt).load(path)


def where(alias: str | None = None, **equals) -> str:
    """``col = v AND col IN (…)``: a list (or set, tuple) of values becomes ``IN``; ``alias``
    prefixes every column (``t.`` in a MERGE condition)."""
    prefix = f"{alias}." if alias else ""
    terms = []
    for column, value in equals.items():
        if isinstance(value, list | tuple | set | frozenset):
            listed = ", ".join(sql_literal(v) for v in sorted(value))
            terms.append(f"{prefix}{column} IN ({listed})")
        else:
            terms.append(f"{prefix}{column} = {sql_literal(value)}")
    return " AND ".join(terms)


def any_of(*scopes: str) -> str:
    return " OR ".join(f"({s})" for s in scopes)


def days_scope(name: str, days: Iterable[dt.date], alias: str | None = None, **equals) -> str:
    """The rows of table ``name`` dated on ``days`` (its declared date column), plus ``equals``."""
    table = spec(name)
    if table.date_column is None:
        raise ValueError(f"{name} declares no date column to scope by")
    return where(alias, **{table.date_column: list(days)}, **equals)


# ---------------------------------------------------------------------------------------------
# writes: partition columns come from the catalog


def _writer(df: DataFrame, table: TableSpec, mode: str):
    writer = df.write.format("delta").mode(mode)
    if table.change_feed:
        writer = writer.option("delta.enableChangeDataFeed", "true")
    with_stats = [c for c in table.stats_columns if c in df.columns]
    if with_stats:  # a table property: taken when the write creates the table
        writer = writer.option("delta.dataSkippingStatsColumns", ",".join(with_stats))
    if table.partition_by:
        writer = writer.partitionBy(*table.partition_by)
    return writer


def append(df: DataFrame, root: str, name: str, merge_schema: bool = False) -> None:
    """Append ``df``; ``merge_schema``: columns the table lacks are added to it."""
    writer = _writer(df, spec(name), "append")
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.save(table_path(root, name))


def replace_where(df: DataFrame, root: str, name: str, condition: str) -> int:
    """Replace exactly the rows matching ``condition`` (build it with :func:`days_scope` or
    :func:`where`) with ``df``. Creates the table when it does not exist. Rerunning with the same
    data leaves the same rows. Returns the rows written."""
    _writer(df, spec(name), "overwrite").option("replaceWhere", condition).save(table_path(root, name))
    return last_operation_rows(df.sparkSession, root, name)


def replace_where_changed(df: DataFrame, root: str, name: str, condition: str, ignore: Iterable[str] = ()) -> int:
    """:func:`replace_where`, unless the table's rows matching ``condition`` are ``df``'s rows
    already (as a multiset, the ``ignore`` columns aside: a run id, an ingest time): a rerun with
    the same rows then writes nothing and makes no new version. Returns the rows written, 0 when
    none. The comparison is one Spark job (rows counted by content on both sides, where two
    ``exceptAll`` were two); cache ``df`` first when it is costly to compute."""
    spark = df.sparkSession
    if exists(spark, root, name):
        new_df = df.drop(*ignore)
        old_df = read(spark, root, name).where(condition).select(*new_df.columns)
        side = "_crmlake_side"
        counted = (
            old_df.withColumn(side, F.lit(1))
            .unionByName(new_df.withColumn(side, F.lit(-1)))
            .groupBy(*new_df.columns)
            .agg(F.sum(side).alias(side))
        )
        if counted.where(F.col(side) != 0).isEmpty():
            return 0
    return replace_where(df, root, name, condition)


def replace_days(df: DataFrame, root: str, name: str, days: Iterable[dt.date], **equals) -> int:
    """Replace the rows of ``days`` (and ``equals``) with ``df``: one day of a table is never
    changed by overwriting the whole table. Returns the rows written."""
    return replace_where(df, root, name, days_scope(name, days, **equals))


def rows_by_day(spark: SparkSession, root: str, name: str, days: Iterable[dt.date], **equals) -> dict[dt.date, int]:
    """The rows of each of ``days`` (and ``equals``) in the table; a day without rows is absent."""
    column = spec(name).date_column
    found = read(spark, root, name).where(days_scope(name, days, **equals)).groupBy(column).count().collect()
    return {r[column]: r["count"] for r in found}


def create(df: DataFrame, root: str, name: str) -> int:
    """Write ``df`` as a new table (an error if it exists). Returns the rows written."""
    _writer(df, spec(name), "errorifexists").save(table_path(root, name))
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


def upsert(spark: SparkSession, source_df: DataFrame, root: str, name: str) -> None:
    """Insert or replace ``source_df``'s rows by the table's declared key; a missing table is
    created from them."""
    if not exists(spark, root, name):
        create(source_df, root, name)
        return
    merge(spark, source_df, root, name, on=" AND ".join(f"t.{k} = s.{k}" for k in spec(name).key))


def merge_actions(
    spark: SparkSession,
    source_df: DataFrame,
    root: str,
    name: str,
    on: str,
    updates: list[tuple[str, dict[str, str]]],
    inserts: list[tuple[str, dict[str, str]]],
) -> int:
    """A MERGE of ``source_df`` (alias ``s``) into the table (alias ``t``) with explicit clauses:
    ``updates`` and ``inserts`` are (condition, column → SQL expression) pairs, applied in order.
    Returns rows inserted plus updated."""
    builder = DeltaTable.forPath(spark, table_path(root, name)).alias("t").merge(source_df.alias("s"), on)
    for condition, columns in updates:
        builder = builder.whenMatchedUpdate(condition=condition, set=columns)
    for condition, columns in inserts:
        builder = builder.whenNotMatchedInsert(condition=condition, values=columns)
    builder.execute()
    return last_operation_rows(spark, root, name)


def upsert_changed(
    spark: SparkSession,
    source_df: DataFrame,
    root: str,
    name: str,
    wins_when: str,
    days: Iterable[dt.date] | None = None,
    keys: list[str] | None = None,
    hash_col: str = "_row_hash",
) -> int:
    """Insert new keys and update changed rows, writing nothing when nothing changed.

    ``source_df`` must be unique on ``keys`` (default: the table's declared key) and carry
    ``hash_col`` (a hash of the business columns). A matched row is replaced only when its hash
    differs and ``wins_when`` (a SQL condition over ``s`` and ``t``) says the source is newer.
    ``days`` (every date the source rows have) limits the target rows considered to those dates
    (so Delta prunes partitions), and the source rows of days the table holds nothing of yet are
    appended without a MERGE: a day's new events meet only the days they may change, not the
    history. A missing table is created.
    Returns rows inserted plus updated; a rerun with the same source writes no new version and
    returns 0.
    """
    keys = list(keys or spec(name).key)
    if not exists(spark, root, name):
        return create(source_df, root, name)
    target_df = read(spark, root, name)
    written = 0
    scope = None
    if days is not None:
        days = sorted(set(days))
        date_column = spec(name).date_column
        held = {r[0] for r in target_df.where(days_scope(name, days)).select(date_column).distinct().collect()}
        new_days = [day for day in days if day not in held]
        if new_days:
            append(source_df.where(F.col(date_column).isin(new_days)), root, name)
            written += last_operation_rows(spark, root, name)
            source_df = source_df.where(~F.col(date_column).isin(new_days))
        if not held:
            return written
        scope = days_scope(name, sorted(held), alias="t")
        target_df = target_df.alias("t").where(scope)
    changed_df = source_df.join(target_df.select(*keys, hash_col), on=[*keys, hash_col], how="left_anti")
    if changed_df.isEmpty():
        return written
    on = " AND ".join(f"t.{k} <=> s.{k}" for k in keys)
    if scope:
        on = f"({scope}) AND {on}"
    merge(spark, changed_df, root, name, on=on, update_when=f"s.{hash_col} <> t.{hash_col} AND ({wins_when})")
    return written + last_operation_rows(spark, root, name)


def delete_matching(spark: SparkSession, root: str, name: str, keys_df: DataFrame, on: Column) -> int:
    """Delete the table's rows (alias ``t``) that match a row of ``keys_df`` (alias ``s``) on
    ``on``. A table with no such row gets no new version. Returns the rows deleted."""
    target_df = read(spark, root, name).alias("t")
    if target_df.join(keys_df.alias("s"), on=on, how="left_semi").isEmpty():
        return 0
    (
        DeltaTable.forPath(spark, table_path(root, name))
        .alias("t")
        .merge(keys_df.alias("s"), on)
        .whenMatchedDelete()
        .execute()
    )
    return int(last_operation_metrics(spark, root, name).get("numTargetRowsDeleted", 0))


def add_missing_columns(spark: SparkSession, root: str, name: str) -> list[str]:
    """Add the columns the table's declared schema has and the table lacks (a table written by an
    earlier crmlake), nullable: the rows it holds read null there. Returns the columns added."""
    present = set(read(spark, root, name).columns)
    missing = [field for field in spec(name).schema.fields if field.name not in present]
    if missing:
        columns = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in missing)
        spark.sql(f"ALTER TABLE delta.`{table_path(root, name)}` ADD COLUMNS ({columns})")
    return [field.name for field in missing]


def delta_table(spark: SparkSession, root: str, name: str) -> DeltaTable:
    return DeltaTable.forPath(spark, table_path(root, name))


def files_by_day(spark: SparkSession, root: str, name: str, days: Iterable[dt.date]) -> dict[dt.date, list[str]]:
    """Per day, the names of the data files of the table's current snapshot in that day's
    partition (its declared date column), from the Delta log alone: no data is read. A day with
    no file maps to []."""
    days = list(days)
    column = spec(name).date_column
    partition = re.compile(rf"{re.escape(column)}=(\d{{4}}-\d{{2}}-\d{{2}})/([^/]+)$")
    found: dict[dt.date, list[str]] = {d: [] for d in days}
    for path in read(spark, root, name).where(days_scope(name, days)).inputFiles():
        match = partition.search(path)
        if match and dt.date.fromisoformat(match.group(1)) in found:
            found[dt.date.fromisoformat(match.group(1))].append(match.group(2))
    return {d: sorted(files) for d, files in found.items()}


def location_exists(spark: SparkSession, location: str) -> bool:
    """Whether a file or folder exists, through Hadoop's FileSystem (any scheme)."""
    fs, path = hadoop_fs(spark, location)
    return bool(fs.exists(path))


def _remove(spark: SparkSession, location: str) -> None:
    """Delete a folder through Hadoop's FileSystem (any scheme the session can reach)."""
    fs, path = hadoop_fs(spark, location)
    fs.delete(path, True)


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
            _remove(spark, table_path(root, name))
        else:
            DeltaTable.forPath(spark, table_path(root, name)).restoreToVersion(prior)
        rolled.append(name)
    return rolled
