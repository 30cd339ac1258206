"""Landing → bronze: append every file not taken before, as it arrived (all columns as strings,
malformed lines kept whole), with file name, batch id and ingest time; ``bronze.ingested_files``
remembers what was taken.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import INGESTED_FILES_SCHEMA
from crmlake.contracts.entities import Entity
from crmlake.landing.files import LandingFile, read_landing, unreadable_file_error

INGESTED_FILES = "bronze.ingested_files"


def bronze_name(entity: Entity) -> str:
    return f"bronze.{entity.name}"


def new_landing_files(spark: SparkSession, root: str, entity: Entity, files: list[LandingFile]) -> list[LandingFile]:
    """The files bronze has not taken yet (a file is the same when path, size and mtime are)."""
    if not files or not tables.exists(spark, root, INGESTED_FILES):
        return files
    seen = {
        (r["_source_file"], r["_file_size"], r["_file_modified_ms"])
        for r in tables.read(spark, root, INGESTED_FILES)
        .where(F.col("entity") == entity.name)
        .where(F.col("_file_date").isin(list({f.day for f in files})))
        .select("_source_file", "_file_size", "_file_modified_ms")
        .collect()
    }
    return [f for f in files if (f.relative, f.size, f.modified_ms) not in seen]


def land_to_bronze(
    spark: SparkSession,
    root: str,
    entity: Entity,
    files: list[LandingFile],
    batch_id: str,
    ingested_at: dt.datetime,
) -> int:
    """Append ``files`` to bronze and register them. Returns rows.

    A file that cannot be parsed fails the write (Delta commits nothing) and is named in an
    :class:`UnreadableFileError`; the caller restores whatever the run wrote before.
    """
    bronze_df = read_landing(spark, entity, [f.path for f in files]).withColumns(
        {"_batch_id": F.lit(batch_id), "_ingested_at": F.lit(ingested_at).cast("timestamp")}
    )
    try:
        tables.append(bronze_df, root, bronze_name(entity))
    except Exception as exc:  # noqa: BLE001 - a reader failure becomes a named-file error
        raise unreadable_file_error(spark, entity, files, exc) from None
    rows_per_file = {
        r["_source_file"]: r["count"]
        for r in tables.read(spark, root, bronze_name(entity))
        .where(F.col("_file_date").isin(list({f.day for f in files})))
        .where(F.col("_batch_id") == batch_id)
        .groupBy("_source_file")
        .count()
        .collect()
    }
    registry = [
        (
            entity.name,
            f.relative,
            f.size,
            f.modified_ms,
            f.day,
            batch_id,
            ingested_at,
            rows_per_file.get(f.relative, 0),
        )
        for f in files
    ]
    tables.append(spark.createDataFrame(registry, INGESTED_FILES_SCHEMA).coalesce(1), root, INGESTED_FILES)
    return sum(rows_per_file.values())
