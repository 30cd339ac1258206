"""Ingest: landing → bronze → silver, one file date at a time.

* Landing → bronze appends every file not ingested before (same path, size and modification
  time), as it arrived (all columns as strings, malformed lines kept whole), with the file
  name, batch id and ingest time. ``bronze.ingested_files`` remembers what was taken.
* Bronze → silver re-derives the date's contribution from bronze: types, the entity's
  contract (:mod:`crmlake.contracts`), E.164 + HMAC pseudonymization, the referential check,
  de-duplication by key (latest arrival wins, ties broken deterministically). Accepted rows
  are merged into silver by key, scoped to the event dates they touch; rejected rows replace
  the date's slice of ``silver.quarantine``. Subscribers become a history (valid_from /
  valid_to); their raw numbers go only to the restricted ``silver.subscriber_contacts``.

A run is all or nothing: the files are read in full before anything is written, and a failure
after the first write restores every table to the version it had before the run.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake import tables
from crmlake.contracts import (
    CORRUPT,
    ContractParams,
    raw_content,
    with_reject_reason,
    with_typed_columns,
)
from crmlake.errors import ConfigError, CrmlakeError, UnreadableFileError
from crmlake.identity import hmac_sha256_hex
from crmlake.log import log, stage
from crmlake.schemas import ENTITIES, Entity

INGESTED_FILES = "bronze.ingested_files"
QUARANTINE = "silver.quarantine"
SUBSCRIBER_CONTACTS = "silver.subscriber_contacts"
LINEAGE = ["_source_file", "_batch_id", "_ingested_at", "_file_date"]
SUBSCRIBER_PII = ("msisdn", "first_name", "last_name")
# A row from a later file date, or a later batch of the same date, replaces the one in silver.
LATEST_ARRIVAL_WINS = (
    "s._file_date > t._file_date OR (s._file_date = t._file_date AND s._ingested_at >= t._ingested_at)"
)

INGESTED_FILES_SCHEMA = T.StructType(
    [
        T.StructField("entity", T.StringType(), False),
        T.StructField("_source_file", T.StringType(), False),
        T.StructField("_file_size", T.LongType(), False),
        T.StructField("_file_modified_ms", T.LongType(), False),
        T.StructField("_file_date", T.DateType(), False),
        T.StructField("_batch_id", T.StringType(), False),
        T.StructField("_ingested_at", T.TimestampType(), False),
        T.StructField("rows", T.LongType(), False),
    ]
)


class ReconciliationError(CrmlakeError):
    """Counts do not add up: read != accepted + quarantined + duplicates."""


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


@dataclass
class EntityCounts:
    new_files: int = 0
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    written: int = 0
    event_dates: tuple[dt.date, ...] = ()
    # file date -> {"read", "accepted", "quarantined", "duplicate"}: each day reconciles alone.
    by_file_date: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {**self.__dict__, "event_dates": [d.isoformat() for d in self.event_dates]}


def bronze_name(entity: Entity) -> str:
    return f"bronze.{entity.name}"


def silver_name(entity: Entity) -> str:
    return f"silver.{entity.name}"


def tables_written_by_ingest(entities: list[str]) -> list[str]:
    names = [INGESTED_FILES, QUARANTINE, SUBSCRIBER_CONTACTS]
    for name in entities:
        names += [bronze_name(ENTITIES[name]), silver_name(ENTITIES[name])]
    return names


# ---------------------------------------------------------------------------------------------
# landing → bronze


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


def resolve_entities(names: list[str]) -> list[str]:
    """The named entities, checked, in ingest order (subscribers first)."""
    unknown = sorted(set(names) - set(ENTITIES))
    if unknown:
        raise ConfigError(f"unknown entities {unknown}; known: {list(ENTITIES)}")
    return [name for name in ENTITIES if name in names]


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
        tables.append(bronze_df, root, bronze_name(entity), partition_by=["_file_date"])
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


# ---------------------------------------------------------------------------------------------
# bronze → silver (pure transformations)


def with_subscriber_key(df: DataFrame, msisdn_e164: Column, hmac_key: bytes) -> DataFrame:
    """Adds ``msisdn_e164`` and ``subscriber_key`` (keyed HMAC of the E.164 number)."""
    return df.withColumn("msisdn_e164", msisdn_e164).withColumn(
        "subscriber_key", hmac_sha256_hex(F.col("msisdn_e164"), hmac_key)
    )


def silver_key(entity: Entity) -> list[str]:
    return ["subscriber_key" if k == "msisdn" else k for k in entity.key]


def business_columns(entity: Entity) -> list[str]:
    cols = [f.name for f in entity.silver.fields if f.name not in SUBSCRIBER_PII]
    return (["subscriber_key"] if entity.has_msisdn else []) + cols


def classify(
    bronze_df: DataFrame,
    entity: Entity,
    params: ContractParams,
    msisdn_e164: Column | None,
    hmac_key: bytes | None,
    known_subscribers_df: DataFrame | None,
) -> DataFrame:
    """Every bronze row with ``_status`` ∈ {accepted, quarantined, duplicate}, the rule it broke,
    typed contract columns (under their own names), ``subscriber_key``, ``event_date`` and
    ``_row_hash`` (a hash of the business columns).

    ``known_subscribers_df`` (one column, ``subscriber_key``, unique) drives the referential
    check; pass None for entities that are not checked.
    """
    df = with_typed_columns(bronze_df, entity)
    if entity.has_msisdn:
        df = with_subscriber_key(df, msisdn_e164, hmac_key)
    is_unknown = None
    if entity.checks_subscriber and known_subscribers_df is not None:
        known = known_subscribers_df.select("subscriber_key").withColumn("_is_known", F.lit(True))
        df = df.join(known, on="subscriber_key", how="left")
        is_unknown = F.col("_is_known").isNull() & F.col("subscriber_key").isNotNull()
    df = with_reject_reason(df, entity, params, is_unknown)
    df = df.withColumns({f.name: F.col(f"{f.name}__typed") for f in entity.silver.fields})
    df = df.withColumn("event_date", F.to_date(F.col(entity.event_time)))
    content = [c for c in business_columns(entity) if not (entity.is_snapshot and c == entity.event_time)]
    df = df.withColumn("_row_hash", F.sha2(F.to_json(F.struct(*content)), 256))

    # A snapshot entity holds one row per key per snapshot day; events one row per key.
    keys = silver_key(entity) + (["_file_date"] if entity.is_snapshot else [])
    newest_first = Window.partitionBy(*keys, F.col("reject_rule").isNull()).orderBy(
        F.col("_file_date").desc(),
        F.col("_ingested_at").desc(),
        F.col("_batch_id").desc(),
        F.col("_source_file").desc(),
        F.col("_row_hash").desc(),
    )
    return (
        df.withColumn("_rank", F.row_number().over(newest_first))
        .withColumn(
            "_status",
            F.when(F.col("reject_rule").isNotNull(), F.lit("quarantined"))
            .when(F.col("_rank") == 1, F.lit("accepted"))
            .otherwise(F.lit("duplicate")),
        )
        .drop("_rank", *[c for c in df.columns if c.endswith("__typed")], "_is_known")
    )


def quarantine_rows(classified_df: DataFrame, entity: Entity, run_id: str) -> DataFrame:
    return classified_df.where(F.col("_status") == "quarantined").select(
        F.lit(entity.name).alias("entity"),
        "_file_date",
        "_source_file",
        "_batch_id",
        "_ingested_at",
        F.col("reject_rule").alias("rule"),
        F.col("reject_column").alias("column"),
        raw_content(entity).alias("raw"),
        F.lit(run_id).alias("run_id"),
    )


def silver_schema(entity: Entity) -> T.StructType:
    """The business columns of a silver table (``subscriber_key`` for the raw number) and
    ``event_date``: what readers of silver may rely on."""
    types = {f.name: f.dataType for f in entity.silver.fields}
    return T.StructType(
        [T.StructField(c, types.get(c, T.StringType())) for c in business_columns(entity)]
        + [T.StructField("event_date", T.DateType())]
    )


def silver_rows(classified_df: DataFrame, entity: Entity) -> DataFrame:
    """Accepted rows in silver shape: business columns, event_date, row hash, lineage."""
    return classified_df.where(F.col("_status") == "accepted").select(
        *business_columns(entity), "event_date", "_row_hash", *LINEAGE
    )


# ---------------------------------------------------------------------------------------------
# subscribers: history and the restricted contact table

SCD_COLUMNS = ["valid_from", "valid_to", "is_current"]


def subscriber_history_changes(extract_df: DataFrame, history_df: DataFrame) -> DataFrame:
    """What one day's accepted extract changes in ``silver.subscribers`` (SCD type 2).

    ``extract_df``: silver-shaped subscriber rows (unique ``subscriber_key``, ``extract_date``,
    ``_row_hash``). ``history_df``: the current history. Returns staged rows with ``_action``:
    ``insert`` (a new version), ``close`` (end the version valid at the extract date), or
    ``replace`` (same valid_from, new attributes: a re-delivered extract), keyed for a MERGE on
    ``(_merge_key, _merge_from)``. An unchanged subscriber yields nothing.
    """
    h = history_df.alias("h")
    s = extract_df.alias("s")
    valid_at = (
        (F.col("h.subscriber_key") == F.col("s.subscriber_key"))
        & (F.col("h.valid_from") <= F.col("s.extract_date"))
        & (F.col("h.valid_to").isNull() | (F.col("h.valid_to") > F.col("s.extract_date")))
    )
    joined = s.join(h, valid_at, "left").select(
        "s.*",
        F.col("h.valid_from").alias("_cur_from"),
        F.col("h.valid_to").alias("_cur_to"),
        F.col("h._row_hash").alias("_cur_hash"),
        F.col("h.subscriber_key").isNotNull().alias("_has_cur"),
    )
    later = (
        s.join(
            h,
            (F.col("h.subscriber_key") == F.col("s.subscriber_key"))
            & (F.col("h.valid_from") > F.col("s.extract_date")),
            "inner",
        )
        .groupBy(F.col("s.subscriber_key").alias("subscriber_key"))
        .agg(F.min("h.valid_from").alias("_next_from"))
    )
    changed = joined.where(~F.col("_has_cur") | (F.col("_cur_hash") != F.col("_row_hash"))).join(
        later, on="subscriber_key", how="left"
    )
    new_to = F.when(F.col("_has_cur"), F.col("_cur_to")).otherwise(F.col("_next_from"))
    versioned = changed.withColumns(
        {"valid_from": F.col("extract_date"), "valid_to": new_to, "is_current": new_to.isNull()}
    )
    in_place = F.col("_has_cur") & (F.col("_cur_from") == F.col("extract_date"))
    inserts = versioned.where(~in_place).withColumns(
        {"_action": F.lit("insert"), "_merge_key": F.lit(None).cast("string"), "_merge_from": F.lit(None).cast("date")}
    )
    replaces = versioned.where(in_place).withColumns(
        {"_action": F.lit("replace"), "_merge_key": F.col("subscriber_key"), "_merge_from": F.col("_cur_from")}
    )
    closes = versioned.where(F.col("_has_cur") & ~in_place).withColumns(
        {"_action": F.lit("close"), "_merge_key": F.col("subscriber_key"), "_merge_from": F.col("_cur_from")}
    )
    return (
        inserts.unionByName(replaces)
        .unionByName(closes)
        .drop("_cur_from", "_cur_to", "_cur_hash", "_has_cur", "_next_from")
    )


def write_subscriber_history(spark: SparkSession, root: str, extract_df: DataFrame) -> int:
    name = silver_name(ENTITIES["subscribers"])
    columns = [*extract_df.columns, *SCD_COLUMNS]
    if not tables.exists(spark, root, name):
        first = extract_df.withColumns(
            {"valid_from": F.col("extract_date"), "valid_to": F.lit(None).cast("date"), "is_current": F.lit(True)}
        )
        return tables.create(first.select(*columns), root, name)
    staged = subscriber_history_changes(extract_df, tables.read(spark, root, name))
    if staged.isEmpty():
        return 0
    every = {c: f"s.{c}" for c in columns}
    (
        tables.delta_table(spark, root, name)
        .alias("t")
        .merge(staged.alias("s"), "t.subscriber_key = s._merge_key AND t.valid_from = s._merge_from")
        .whenMatchedUpdate(condition="s._action = 'close'", set={"valid_to": "s.valid_from", "is_current": "false"})
        .whenMatchedUpdate(condition="s._action = 'replace'", set=every)
        .whenNotMatchedInsert(condition="s._action = 'insert'", values=every)
        .execute()
    )
    return tables.last_operation_rows(spark, root, name)


def contact_rows(classified_df: DataFrame) -> DataFrame:
    """The restricted subscriber_key → raw number (and name) table, for delivery at publish."""
    accepted = classified_df.where(F.col("_status") == "accepted")
    return accepted.select(
        "subscriber_key",
        F.col("msisdn_e164").alias("msisdn"),
        "first_name",
        "last_name",
        "_file_date",
        "_ingested_at",
        F.sha2(F.to_json(F.struct("msisdn_e164", "first_name", "last_name")), 256).alias("_row_hash"),
    )


# ---------------------------------------------------------------------------------------------
# orchestration


class Ingestor:
    """Runs ingest for a set of file dates across entities, with all-or-nothing semantics.

    All the days of a run are classified in one pass per entity (a day costs its rows, not a
    round of Spark jobs); each day's counts are kept apart and reconcile on their own.
    """

    def __init__(self, spark: SparkSession, root: str, params: ContractParams, msisdn_e164: Column, hmac_key: bytes):
        self.spark = spark
        self.root = root
        self.params = params
        self.msisdn_e164 = msisdn_e164
        self.hmac_key = hmac_key

    def run(self, days: list[dt.date], entities: list[str], run_id: str) -> dict[str, EntityCounts]:
        written = tables_written_by_ingest(entities)
        before = tables.versions(self.spark, self.root, written)
        batch_id = f"{days[-1].isoformat()}-{uuid.uuid4().hex[:12]}"
        ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        counts: dict[str, EntityCounts] = {}
        try:
            # Which files are new is settled before the first write. A file that cannot be
            # parsed fails its entity's bronze write; everything written before is restored.
            new_files = {}
            for name in entities:
                listed = [f for day in days for f in list_landing_files(self.spark, self.root, name, day)]
                new_files[name] = new_landing_files(self.spark, self.root, ENTITIES[name], listed)
            for name in entities:
                entity = ENTITIES[name]
                with stage(f"ingest {name}", dates=f"{days[0]}..{days[-1]}") as info:
                    counts[name] = self._ingest_entity(entity, days, new_files[name], batch_id, ingested_at, run_id)
                    info.update({k: v for k, v in counts[name].as_dict().items() if k != "by_file_date"})
        except Exception:
            rolled = tables.restore(self.spark, self.root, before)
            if rolled:
                log("run failed: tables restored to their versions before the run", tables=rolled)
            raise
        return counts

    def _ingest_entity(
        self,
        entity: Entity,
        days: list[dt.date],
        files: list[LandingFile],
        batch_id: str,
        ingested_at: dt.datetime,
        run_id: str,
    ) -> EntityCounts:
        counts = EntityCounts(new_files=len(files))
        if files:
            land_to_bronze(self.spark, self.root, entity, files, batch_id, ingested_at)
        if not tables.exists(self.spark, self.root, bronze_name(entity)):
            return counts
        bronze_df = tables.read(self.spark, self.root, bronze_name(entity)).where(F.col("_file_date").isin(days))
        known_df = None
        if entity.checks_subscriber:
            subscribers = silver_name(ENTITIES["subscribers"])
            known_df = (
                tables.read(self.spark, self.root, subscribers).select("subscriber_key").distinct()
                if tables.exists(self.spark, self.root, subscribers)
                else self.spark.createDataFrame([], "subscriber_key string")
            )
        classified_df = classify(
            bronze_df, entity, self.params, self.msisdn_e164 if entity.has_msisdn else None, self.hmac_key, known_df
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            for row in classified_df.groupBy("_file_date", "_status").count().collect():
                day = counts.by_file_date.setdefault(
                    row["_file_date"].isoformat(), {"read": 0, "accepted": 0, "quarantined": 0, "duplicate": 0}
                )
                day[row["_status"]] += row["count"]
                day["read"] += row["count"]
            for day, c in counts.by_file_date.items():
                if c["read"] != c["accepted"] + c["quarantined"] + c["duplicate"]:
                    raise ReconciliationError(f"{entity.name} {day}: counts do not reconcile: {c}")
            counts.read = sum(c["read"] for c in counts.by_file_date.values())
            counts.accepted = sum(c["accepted"] for c in counts.by_file_date.values())
            counts.quarantined = sum(c["quarantined"] for c in counts.by_file_date.values())
            counts.duplicates = sum(c["duplicate"] for c in counts.by_file_date.values())
            self._write_quarantine(entity, days, classified_df, run_id)
            counts.written, counts.event_dates = self._write_silver(entity, classified_df)
        finally:
            classified_df.unpersist()
        return counts

    def _write_quarantine(self, entity: Entity, days: list[dt.date], classified_df: DataFrame, run_id: str) -> None:
        scope = f"entity = '{entity.name}' AND {tables.date_in('_file_date', days)}"
        rows_df = quarantine_rows(classified_df, entity, run_id)
        if tables.exists(self.spark, self.root, QUARANTINE):
            old_df = tables.read(self.spark, self.root, QUARANTINE).where(scope).drop("run_id", "_ingested_at")
            new_df = rows_df.drop("run_id", "_ingested_at")
            if old_df.exceptAll(new_df).isEmpty() and new_df.exceptAll(old_df).isEmpty():
                return
        elif rows_df.isEmpty():
            return
        tables.replace_where(rows_df, self.root, QUARANTINE, scope, partition_by=["entity", "_file_date"])

    def _write_silver(self, entity: Entity, classified_df: DataFrame) -> tuple[int, tuple[dt.date, ...]]:
        rows_df = silver_rows(classified_df, entity)
        event_dates = tuple(sorted(r["event_date"] for r in rows_df.select("event_date").distinct().collect()))
        if not event_dates:
            return 0, ()
        if entity.name == "subscribers":
            # History is built one extract at a time, in date order.
            written = sum(
                write_subscriber_history(
                    self.spark,
                    self.root,
                    latest_per_key(rows_df.where(F.col("extract_date") == F.lit(day)), ["subscriber_key"]),
                )
                for day in event_dates
            )
            tables.upsert_changed(
                self.spark,
                latest_per_key(contact_rows(classified_df), ["subscriber_key"]),
                self.root,
                SUBSCRIBER_CONTACTS,
                keys=["subscriber_key"],
                wins_when="s._file_date >= t._file_date",
            )
            return written, event_dates
        written = tables.upsert_changed(
            self.spark,
            rows_df,
            self.root,
            silver_name(entity),
            keys=silver_key(entity),
            wins_when=LATEST_ARRIVAL_WINS,
            scope=tables.date_in("t.event_date", event_dates),
            partition_by=["event_date"],
        )
        return written, event_dates


def latest_per_key(df: DataFrame, keys: list[str]) -> DataFrame:
    """One row per key: the one from the latest file date (then batch time, then content)."""
    newest = Window.partitionBy(*keys).orderBy(
        F.col("_file_date").desc(), F.col("_ingested_at").desc(), F.col("_row_hash").desc()
    )
    return df.withColumn("_rank", F.row_number().over(newest)).where("_rank = 1").drop("_rank")
