"""Finding and reading landing files (``landing/<entity>/date=YYYY-MM-DD/<file>``), and naming
the ones that cannot be read.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import re
from contextlib import closing
from dataclasses import dataclass
from urllib.parse import urlparse

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.catalog import tables
from crmlake.contracts.entities import Entity
from crmlake.contracts.rules import CORRUPT
from crmlake.core.errors import UnreadableFileError
from crmlake.core.log import log

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
    content_sha256: str | None = None  # filled where bronze decides whether the file is new


def relative_landing_path(path: Column | str) -> Column:
    """``landing/<entity>/date=.../<file>`` from a full path, so bronze does not depend on where
    the root was mounted."""
    col = F.col(path) if isinstance(path, str) else path
    return F.regexp_extract(col, LANDING_FILE_PATTERN, 1)


def file_size(spark: SparkSession, location: str) -> int | None:
    """A file's size in bytes, None where there is no such file."""
    fs, path = tables.hadoop_fs(spark, location)
    return int(fs.getFileStatus(path).getLen()) if fs.exists(path) else None


def _list_folder(spark: SparkSession, folder: str) -> list:
    """Hadoop FileStatus entries of a folder (any file system scheme), [] if it does not exist."""
    fs, path = tables.hadoop_fs(spark, folder)
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


def read_landing(spark: SparkSession, entity: Entity, paths: list[str], multi_line: bool = False) -> DataFrame:
    """The files as the bronze layer keeps them: contract columns as strings, ``_corrupt_record``
    for lines that do not parse, and the file's own metadata. ``multi_line`` (CSV): a quoted
    field may span lines."""
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
            # RFC 4180 quotes a quote by doubling it (""). Records are read line by line (a file
            # splits across tasks, and a stray quote spoils one line, not the rest of the file);
            # multi_line reads quoted line breaks as part of their record, each file whole.
            df = (
                reader.option("header", True)
                .option("enforceSchema", False)
                .option("multiLine", multi_line)
                .option("escape", '"')
                .csv(paths)
            )
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


def _first_line(spark: SparkSession, path: str) -> str | None:
    """The first line of a file (UTF-8, without a byte order mark), None for an empty file."""
    with closing(tables.text_lines(spark, path)) as lines:
        line = next(lines, None)
    return None if line is None else line.lstrip("\ufeff")


def _ends(spark: SparkSession, landing_file: LandingFile, length: int) -> tuple[bytes, bytes]:
    """The first and last ``length`` bytes of a file."""
    fs, hadoop_path = tables.hadoop_fs(spark, landing_file.path)
    stream = fs.open(hadoop_path)
    try:
        head = bytes(stream.read() for _ in range(length))
        stream.seek(landing_file.size - length)
        tail = bytes(stream.read() for _ in range(length))
    finally:
        stream.close()
    return head, tail


def header_problem(header: str, entity: Entity) -> str | None:
    """What is wrong with a CSV header against the entity's contract (as Spark compares them:
    by position, names case-insensitively), or None."""
    found = [c.strip() for c in next(csv.reader(io.StringIO(header)), [])]
    expected = list(entity.landing_columns)
    if [c.lower() for c in found] == [c.lower() for c in expected]:
        return None
    lowered = {c.lower() for c in found}
    extra = [c for c in found if c.lower() not in {e.lower() for e in expected}]
    missing = [c for c in expected if c.lower() not in lowered]
    parts = []
    if extra:
        parts.append(f"columns not in the contract {extra}")
    if missing:
        parts.append(f"missing {missing}")
    if not parts:
        parts.append(f"columns in another order: {found}")
    return f"the header does not match the {entity.name} contract: {'; '.join(parts)}"


def inspect_files(spark: SparkSession, entity: Entity, files: list[LandingFile]) -> list[LandingFile]:
    """Checks what can be checked of each file before anything is written: a CSV header against
    the contract, a Parquet file's magic bytes. Raises :class:`UnreadableFileError` naming every
    file that fails. Returns the files with content to read: an empty (0-byte) file is taken
    with a warning and holds no rows."""
    problems, readable = [], []
    for f in files:
        if f.size == 0:
            log("empty landing file (0 bytes): taken, no rows", logging.WARNING, entity=entity.name, file=f.relative)
            continue
        if entity.fmt == "csv":
            problem = header_problem(_first_line(spark, f.path) or "", entity)
        elif entity.fmt == "parquet":
            magic = b"PAR1"
            ok = f.size >= 12 and _ends(spark, f, len(magic)) == (magic, magic)
            problem = None if ok else "not a Parquet file (its first and last bytes are not PAR1)"
        else:
            problem = None
        if problem:
            problems.append(f"{f.relative}: {problem}")
        readable.append(f)
    if problems:
        raise UnreadableFileError(
            f"cannot take {entity.name} landing file(s): {'; '.join(problems)}. Nothing of this run was written."
        )
    return readable


def content_sha256(spark: SparkSession, landing_file: LandingFile) -> str | None:
    """The SHA-256 of a file's bytes where it is on a local or mounted folder; elsewhere the file
    system's own checksum (HDFS, some object stores) or None."""
    parsed = urlparse(landing_file.path)
    if parsed.scheme in ("", "file"):
        digest = hashlib.sha256()
        with open(parsed.path if parsed.scheme else landing_file.path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    fs, hadoop_path = tables.hadoop_fs(spark, landing_file.path)
    checksum = fs.getFileChecksum(hadoop_path)
    return None if checksum is None else f"{checksum.getAlgorithmName()}:{checksum.toString()}"
