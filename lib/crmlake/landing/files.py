"""Finding and reading landing files (``landing/<entity>/date=YYYY-MM-DD/<file>``), and naming
the ones that cannot be read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.catalog import tables
from crmlake.contracts.entities import Entity
from crmlake.contracts.rules import CORRUPT
from crmlake.core.errors import UnreadableFileError

# landing/<entity>/date=YYYY-MM-DD/<file>: how bronze names a file, wherever the root is mounted.
LANDING_FILE_PATTERN = r"(landing/[^/]+/date=[^/]+/[^/]+)$"


FILE_DATE_PATTERN = r"date=(\d{4}-\d{2}-\d{2})"


@dataclass(frozen=True)
class LandingFile:
    path: str  # as the file system names it
    relative: str  # landing/<entity>/date=.../<file>, as bronze records it
    day: dt.date  # the file (arrival) date of its folder
    size: int
    modified_ms: int


def relative_landing_path(path: Column | str) -> Column:
    """``landing/<entity>/date=.../<file>`` from a full path, so bronze does not depend on where
    the root was mounted."""
    col = F.col(path) if isinstance(path, str) else path
    return F.regexp_extract(col, LANDING_FILE_PATTERN, 1)


def _list_folder(spark: SparkSession, folder: str) -> list:
    """Hadoop FileStatus entries of a folder (any file system scheme), [] if it does not exist."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(folder)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return list(fs.listStatus(path)) if fs.exists(path) else []


def list_landing_files(spark: SparkSession, root: str, entity: str, day: dt.date) -> list[LandingFile]:
    """Files in ``landing/<entity>/date=<day>/``."""
    found = []
    for status in _list_folder(spark, f"{tables.landing_path(root, entity)}/date={day.isoformat()}"):
        name = status.getPath().getName()
        if status.isFile() and not name.startswith(("_", ".")):
            full = status.getPath().toString()
            relative = re.search(LANDING_FILE_PATTERN, full).group(1)
            found.append(LandingFile(full, relative, day, status.getLen(), status.getModificationTime()))
    return sorted(found, key=lambda f: f.relative)


def landed_dates(spark: SparkSession, root: str, entities: list[str]) -> list[dt.date]:
    """Every file date that has a folder in landing for any of ``entities``, in order."""
    days = set()
    for entity in entities:
        for status in _list_folder(spark, tables.landing_path(root, entity)):
            found = re.fullmatch(FILE_DATE_PATTERN, status.getPath().getName())
            if status.isDirectory() and found:
                days.add(dt.date.fromisoformat(found.group(1)))
    return sorted(days)


def read_landing(spark: SparkSession, entity: Entity, paths: list[str]) -> DataFrame:
    """The files as the bronze layer keeps them: contract columns as strings, ``_corrupt_record``
    for lines that do not parse, and the file's own metadata."""
    if entity.fmt == "parquet":
        # Each file with its own footer schema: a column whose type drifted is cast to string
        # and checked row by row; a column the file lacks is null (and caught as missing).
        frames = []
        for path in paths:
            raw_df = spark.read.parquet(path)
            present = set(raw_df.columns)
            frames.append(
                raw_df.select(
                    *[
                        (F.col(c) if c in present else F.lit(None)).cast("string").alias(c)
                        for c in entity.landing_columns
                    ],
                    F.lit(None).cast("string").alias(CORRUPT),
                    "_metadata",
                )
            )
        df = frames[0]
        for frame in frames[1:]:
            df = df.unionByName(frame)
    else:
        schema = T.StructType([*entity.landing_schema.fields, T.StructField(CORRUPT, T.StringType())])
        reader = (
            spark.read.schema(schema)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("encoding", "UTF-8")
        )
        if entity.fmt == "csv":
            df = reader.option("header", True).option("enforceSchema", False).csv(paths)
        else:
            df = reader.json(paths)
    return df.select(
        *entity.landing_columns,
        CORRUPT,
        relative_landing_path(F.col("_metadata.file_path")).alias("_source_file"),
        F.col("_metadata.file_size").alias("_file_size"),
        F.col("_metadata.file_modification_time").alias("_file_modified_at"),
        F.to_date(F.regexp_extract("_metadata.file_path", FILE_DATE_PATTERN, 1)).alias("_file_date"),
    )


def _read_error_summary(exc: Exception) -> str:
    """The reader's own explanation (the root cause and its detail lines), without the trace."""
    lines = str(exc).splitlines()
    causes = [i for i, line in enumerate(lines) if line.startswith("Caused by:")]
    start = causes[-1] if causes else 0
    detail = []
    for line in lines[start : start + 4]:
        if line.strip().startswith(("at ", "...", "Suppressed")) or line.strip().startswith("CSV file"):
            break
        detail.append(line.replace("Caused by: ", "").strip())
    return " ".join(detail) or type(exc).__name__


def _parse_fully(landing_df: DataFrame, entity: Entity) -> None:
    # The max of a hash of every column makes the reader parse every field (and check every
    # CSV header); a bare count() would let Spark skip the parsing.
    landing_df.agg(F.max(F.hash(*entity.landing_columns, CORRUPT))).collect()


def unreadable_file_error(
    spark: SparkSession, entity: Entity, files: list[LandingFile], exc: Exception
) -> UnreadableFileError:
    """Find which of ``files`` cannot be parsed (each is read alone) and say so."""
    bad = []
    for f in files:
        try:
            _parse_fully(read_landing(spark, entity, [f.path]), entity)
        except Exception as one_exc:  # noqa: BLE001 - any reader failure names its file
            bad.append(f"{f.relative}: {_read_error_summary(one_exc)}")
    detail = "; ".join(bad) if bad else _read_error_summary(exc)
    return UnreadableFileError(
        f"cannot read {entity.name} landing file(s) as {entity.fmt}: {detail}. Nothing of this run was written."
    )
