"""Landing → bronze: append every file not taken before, as it arrived (all columns as strings,
malformed lines kept whole), with file name, batch id and ingest time; ``bronze.ingested_files``
remembers what was taken.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import INGESTED_FILES_SCHEMA
from crmlake.contracts.entities import Entity
from crmlake.contracts.rules import CORRUPT
from crmlake.core.log import log
from crmlake.landing.files import LandingFile, content_sha256, file_size, read_landing, unreadable_file_error

INGESTED_FILES = "bronze.ingested_files"


def bronze_name(entity: Entity) -> str:
    return f"bronze.{entity.name}"


def bronze_caught_up(spark: SparkSession, root: str, entities: list[Entity]) -> set[str]:
    """The entities whose bronze's latest commit the registry recorded (one registry query for
    all). A run registers its files after its last bronze write (and registers the orphans of
    killed runs before its first), so while bronze has not moved since such a registration, no
    batch it holds can be missing from the registry: the orphan check is skipped without reading
    bronze. A bronze rolled back by a failed run, or a registry of an earlier crmlake, is checked
    in full. An entity without bronze is caught up: nothing can be orphaned."""
    current = {entity.name: tables.identity(spark, root, bronze_name(entity)) for entity in entities}
    caught_up = {name for name, commit in current.items() if commit is None}
    if not tables.exists(spark, root, INGESTED_FILES):
        return caught_up
    registry_df = tables.read(spark, root, INGESTED_FILES)
    if "_bronze_commit" not in registry_df.columns:
        return caught_up
    commits = [commit for commit in current.values() if commit is not None]
    recorded = (
        registry_df.where(F.col("_bronze_commit").isin(commits)).select("entity", "_bronze_commit").distinct().collect()
    )
    return caught_up | {r["entity"] for r in recorded if current.get(r["entity"]) == r["_bronze_commit"]}


def register_orphans(spark: SparkSession, root: str, entity: Entity, days: list[dt.date]) -> int:
    """Registers the files bronze holds rows of but ``bronze.ingested_files`` does not name: a
    run killed between its bronze commit and its registration leaves them so. Bronze is what
    was taken; the registry is caught up with it before anything is judged new (skip the call
    for an entity :func:`bronze_caught_up` names). Returns the files registered."""
    if not days or not tables.exists(spark, root, bronze_name(entity)):
        return 0
    bronze_df = tables.read(spark, root, bronze_name(entity)).where(F.col("_file_date").isin(days))
    registered = None
    if tables.exists(spark, root, INGESTED_FILES):
        registered = tables.read(spark, root, INGESTED_FILES).where(F.col("entity") == entity.name)
    # The batches first (one column read, where the files' columns and counts were a scan of
    # all the days' rows); the files of a batch bronze holds and the registry does not name next.
    batches_df = bronze_df.select("_batch_id").distinct()
    if registered is not None:
        batches_df = batches_df.join(registered.select("_batch_id").distinct(), "_batch_id", "left_anti")
    unregistered = [r["_batch_id"] for r in batches_df.collect()]
    if not unregistered:
        return 0
    taken = (
        bronze_df.where(F.col("_batch_id").isin(unregistered))
        .groupBy("_source_file", "_batch_id", "_file_date")
        .agg(
            F.max("_file_size").alias("_file_size"),
            F.max("_file_modified_at").alias("_file_modified_at"),
            F.max("_ingested_at").alias("_ingested_at"),
            F.count(F.lit(1)).alias("rows"),
        )
    )
    if registered is not None:
        taken = taken.join(registered.select("_source_file", "_batch_id"), ["_source_file", "_batch_id"], "left_anti")
    orphans = taken.collect()
    if not orphans:
        return 0
    rows, bronze_commit = [], tables.identity(spark, root, bronze_name(entity))
    for r in orphans:
        modified_ms = int(r["_file_modified_at"].timestamp() * 1000)  # collected as local time
        landed = LandingFile(f"{root.rstrip('/')}/{r['_source_file']}", r["_source_file"], r["_file_date"],
                             r["_file_size"], modified_ms)  # fmt: skip
        # the content hash, where the file is still there as it was taken
        unchanged = file_size(spark, landed.path) == landed.size
        rows.append((entity.name, r["_source_file"], r["_file_size"], modified_ms, r["_file_date"], r["_batch_id"],
                     r["_ingested_at"], r["rows"], content_sha256(spark, landed) if unchanged else None,
                     bronze_commit))  # fmt: skip
    register(spark, root, rows)
    log(
        "files in bronze that a killed run did not register: registered now, not taken again",
        logging.WARNING,
        entity=entity.name,
        files=sorted(r["_source_file"] for r in orphans),
    )
    return len(orphans)


def new_landing_files(
    spark: SparkSession, root: str, listed: dict[str, list[LandingFile]]
) -> dict[str, list[LandingFile]]:
    """Per entity, the files of ``listed`` bronze has not taken yet, each with its content's
    SHA-256 (one read of the registry for every entity).

    A file whose path, size and modification time were registered is not read again. Otherwise
    its content decides: the same content at the same path is a re-delivery and changes nothing;
    new content is a new delivery, taken (its rows are de-duplicated downstream).
    """
    seen, same_content = set(), set()
    days = sorted({f.day for files in listed.values() for f in files})
    if days and tables.exists(spark, root, INGESTED_FILES):
        registry_df = tables.read(spark, root, INGESTED_FILES)
        # a registry written before content hashes were kept has no such column
        sha = F.col("_content_sha256") if "_content_sha256" in registry_df.columns else F.lit(None).cast("string")
        for r in (
            registry_df.where(F.col("entity").isin(list(listed)) & F.col("_file_date").isin(days))
            .select("entity", "_source_file", "_file_size", "_file_modified_ms", sha.alias("_content_sha256"))
            .collect()
        ):
            seen.add((r["entity"], r["_source_file"], r["_file_size"], r["_file_modified_ms"]))
            if r["_content_sha256"]:
                same_content.add((r["entity"], r["_source_file"], r["_content_sha256"]))
    new: dict[str, list[LandingFile]] = {}
    for entity, files in listed.items():
        new[entity], redelivered = [], []
        for f in files:
            if (entity, f.relative, f.size, f.modified_ms) in seen:
                continue
            f = replace(f, content_sha256=content_sha256(spark, f))
            if f.content_sha256 and (entity, f.relative, f.content_sha256) in same_content:
                redelivered.append(f.relative)
            else:
                new[entity].append(f)
        if redelivered:
            log("re-delivered with the same content: not taken again", entity=entity, files=redelivered)
    return new


@dataclass(frozen=True)
class Delivery:
    """One file taken into bronze, once (a file re-delivered with new content is taken again,
    in another batch): a row of ``bronze.ingested_files``."""

    entity: str
    file_date: dt.date
    source_file: str
    batch_id: str
    rows: int


def deliveries(spark: SparkSession, root: str, entities: list[str], first: dt.date, last: dt.date) -> list[Delivery]:
    """What the registry records of ``entities`` for the file dates from ``first`` to ``last``:
    one read serves every entity of a run (which days changed, the files taken twice, how many
    rows a batch holds)."""
    if not tables.exists(spark, root, INGESTED_FILES):
        return []
    return [
        Delivery(r["entity"], r["_file_date"], r["_source_file"], r["_batch_id"], r["rows"])
        for r in tables.read(spark, root, INGESTED_FILES)
        .where(F.col("entity").isin(entities) & F.col("_file_date").between(F.lit(first), F.lit(last)))
        .select("entity", "_file_date", "_source_file", "_batch_id", "rows")
        .collect()
    ]


def redelivered_files(taken: list[Delivery], days: list[dt.date]) -> list[str]:
    """The files of ``days`` taken more than once (each time with new content), from the
    entity's :func:`deliveries`."""
    batches: dict[str, set[str]] = {}
    for d in taken:
        if d.file_date in days and d.rows > 0:
            batches.setdefault(d.source_file, set()).add(d.batch_id)
    return sorted(name for name, ids in batches.items() if len(ids) > 1)


def register(spark: SparkSession, root: str, rows: list[tuple]) -> None:
    """Records files taken (the rows :func:`land_to_bronze` returns) in ``bronze.ingested_files``:
    one commit for every entity of a run, after its last bronze write."""
    if not rows:
        return
    registry_df = spark.createDataFrame(rows, INGESTED_FILES_SCHEMA).coalesce(1)
    # mergeSchema: a registry written before content hashes were kept gains the column
    tables.append(registry_df, root, INGESTED_FILES, merge_schema=True)


def _with_batch(landing_df: DataFrame, batch_id: str, ingested_at: dt.datetime) -> DataFrame:
    """Bronze's batch columns on rows read from landing."""
    return landing_df.withColumns({"_batch_id": F.lit(batch_id), "_ingested_at": F.lit(ingested_at).cast("timestamp")})


def land_to_bronze(
    spark: SparkSession,
    root: str,
    entity: Entity,
    files: list[LandingFile],
    batch_id: str,
    ingested_at: dt.datetime,
) -> list[tuple]:
    """Append ``files`` to bronze; returns their rows for :func:`register`, which the caller
    commits after the run's last bronze write (a run killed between the two leaves batches
    :func:`register_orphans` finds).

    A file that cannot be parsed fails the write (Delta commits nothing) and is named in an
    :class:`UnreadableFileError`; the caller restores whatever the run wrote before.
    """
    with_content = [f for f in files if f.size > 0]  # an empty file is registered, holding no rows
    rows_per_file: dict[str, int] = {}
    if with_content:
        bronze_df = _with_batch(read_landing(spark, entity, [f.path for f in with_content]), batch_id, ingested_at)
        try:
            tables.append(bronze_df, root, bronze_name(entity))
        except Exception as exc:  # noqa: BLE001 - a reader failure becomes a named-file error
            raise unreadable_file_error(spark, entity, with_content, exc) from None
        # One pass over the batch counts each file's rows and, for CSV, finds the files whose
        # records span lines.
        batch = (
            tables.read(spark, root, bronze_name(entity))
            .where(F.col("_file_date").isin(list({f.day for f in with_content})))
            .where(F.col("_batch_id") == batch_id)
        )
        measures = [F.count(F.lit(1)).alias("rows")]
        if entity.fmt == "csv":
            measures += _split_record_measures()
        by_file = {r["_source_file"]: r for r in batch.groupBy("_source_file").agg(*measures).collect()}
        rows_per_file = {name: r["rows"] for name, r in by_file.items()}
        if entity.fmt == "csv":
            rows_per_file |= _reread_split_records(spark, root, entity, with_content, batch_id, ingested_at, by_file)
    for f in with_content:
        if not rows_per_file.get(f.relative):
            log("landing file without records (a header only?): taken, no rows", logging.WARNING, file=f.relative)
    bronze_commit = tables.identity(spark, root, bronze_name(entity))  # after the entity's last bronze write
    return [
        (
            entity.name,
            f.relative,
            f.size,
            f.modified_ms,
            f.day,
            batch_id,
            ingested_at,
            rows_per_file.get(f.relative, 0),
            f.content_sha256,
            bronze_commit,
        )
        for f in files
    ]


def _odd_quotes(text: Column) -> Column:
    return (F.length(text) - F.length(F.regexp_replace(text, '"', ""))) % 2 == 1


# A quote that closes a field (at a line's start or after a character that is not a comma, and
# followed by a comma or the line's end): what the last fragment of a record split by a quoted
# line break holds, and a stray quote at a field's start (the usual malformed line) does not.
CLOSING_QUOTE = '(^|[^,])"(,|$)'


def _split_record_measures() -> list[Column]:
    """Per file of a CSV batch: ``parsed`` lines; ``odd`` malformed lines with an odd number of
    quotes and whether one of them ``closes`` a quoted field (see :func:`_reread_split_records`)."""
    odd = F.col(CORRUPT).isNotNull() & _odd_quotes(F.col(CORRUPT))
    return [
        F.count_if(F.col(CORRUPT).isNull()).alias("parsed"),
        F.count_if(odd).alias("odd"),
        F.max(odd & F.col(CORRUPT).rlike(CLOSING_QUOTE)).alias("closes"),
    ]


def _reread_split_records(
    spark: SparkSession,
    root: str,
    entity: Entity,
    files: list[LandingFile],
    batch_id: str,
    ingested_at: dt.datetime,
    by_file: dict,
) -> dict[str, int]:
    """A CSV file whose records span lines (a quoted field holding a line break, RFC 4180) was
    read line by line as fragments: malformed lines with an odd number of quotes. Such a file is
    read again as multi-line records, and that reading replaces the first where it makes sense
    of more records. (A stray quote reads worse as multi-line: it swallows the lines after it.)
    ``by_file`` holds each file's :func:`_split_record_measures`. Returns the rows of each file
    replaced.
    """
    # A split record leaves at least two fragments with an odd number of quotes, the last closing
    # a field; a file of stray quotes only is not read again (a whole second, single-threaded
    # parse of the file).
    suspects = [name for name, r in by_file.items() if r["odd"] >= 2 and r["closes"]]
    by_name = {f.relative: f for f in files}
    replaced = {}
    for name in sorted(suspects):
        landing_file = by_name[name]
        records = _with_batch(
            read_landing(spark, entity, [landing_file.path], multi_line=True), batch_id, ingested_at
        ).persist()
        try:
            counted = records.agg(F.count(F.lit(1)).alias("rows"), F.count_if(F.col(CORRUPT).isNull()).alias("parsed"))
            rows, parsed = counted.first()
            if parsed > by_file[name]["parsed"]:
                scope = tables.where(_file_date=landing_file.day, _batch_id=batch_id, _source_file=name)
                tables.replace_where(records, root, bronze_name(entity), scope)
                replaced[name] = rows
                log("records span lines: the file was read as multi-line CSV", file=name)
        finally:
            records.unpersist()
    return replaced
