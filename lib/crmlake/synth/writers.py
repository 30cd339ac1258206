"""Landing files and truth tables: each record as its CSV or JSON line (broken lines included),
the CSV, JSON-lines and Parquet writes into dated folders, and the truth tables.

Files are written partitioned by arrival date and sorted within each file by a unique key.
Readers of the CSV files should use ``header=true`` and ``escape='"'`` (a field holding a comma or
a quote is quoted and its quotes doubled, as RFC 4180 has it); JSON files hold one object a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import _at, _date, _int_below, _x
from crmlake.synth.msisdn import _e164
from crmlake.synth.params import CHURN_CAUSES, MALFORMED_VARIANTS, GenParams

# The CSV writer writes one pre-built line a row, under a header made of the column names.
_CSV_WRITE_OPTIONS = {"header": "true", "sep": "\u0001", "quote": "", "escapeQuotes": "false",
                      "ignoreLeadingWhiteSpace": "false", "ignoreTrailingWhiteSpace": "false",
                      "partitionOverwriteMode": "static"}  # fmt: skip


# --- lines ----------------------------------------------------------------------------------------


def _csv_field(column: str) -> str:
    """A text field as CSV writes it: quoted, quotes doubled, when it holds a comma or a quote."""
    return (
        f"CASE WHEN {column} LIKE '%,%' OR {column} LIKE '%\"%'"
        f" THEN concat('\"', replace({column}, '\"', '\"\"'), '\"') ELSE {column} END"
    )


def _with_csv_line(df: DataFrame, entity: str, text_columns: Sequence[str]) -> DataFrame:
    """Adds ``line``: the fields joined by commas, broken for ``malformed_line`` rows."""
    columns = ENTITIES[entity].landing_columns
    parts = [f"coalesce({_csv_field(c) if c in text_columns else c}, '')" for c in columns]
    df = df.withColumn("line", _x(f"concat_ws(',', {', '.join(parts)})"))
    variant = _int_below("rk", "malformed", len(MALFORMED_VARIANTS))
    malformed = (
        f"CASE {variant} WHEN 0 THEN concat_ws(',', {', '.join(parts[:-1])})"
        f" WHEN 1 THEN concat(line, ',EXTRA') ELSE concat('\"', line) END"  # unbalanced quote
    )
    return df.withColumns({
        "line": _x(f"CASE WHEN bad_kind = 'malformed_line' THEN {malformed} ELSE line END"),
        "detail": _x(f"CASE WHEN bad_kind = 'malformed_line' THEN {_at(MALFORMED_VARIANTS, variant)}"
                     " ELSE detail END"),
    })  # fmt: skip


def _with_json_line(df: DataFrame, entity: str, wrong_types: dict[str, str]) -> DataFrame:
    """Adds ``line``: the typed fields as one JSON object (nulls written out). A ``wrong_type``
    row gets a string where the contract has a number (``wrong_types`` maps columns to such
    strings; one is chosen per row), a ``malformed_line`` row is cut in the middle."""
    columns = ENTITIES[entity].landing_columns
    df = df.withColumn("line", F.to_json(F.struct(*[F.col(c) for c in columns]), {"ignoreNullFields": "false"}))
    variant = _int_below("rk", "wrong_type", len(wrong_types))
    wrong, detail = [], []
    for i, (column, text) in enumerate(wrong_types.items()):
        wrong.append(f'WHEN {i} THEN regexp_replace(line, \'"{column}":-?[0-9]+\', \'"{column}":"{text}"\')')
        detail.append(f"WHEN {i} THEN '{column}={text}'")
    return df.withColumns({
        "line": _x("CASE bad_kind WHEN 'malformed_line' THEN substr(line, 1, length(line) div 2)"
                   f" WHEN 'wrong_type' THEN CASE {variant} {' '.join(wrong)} END ELSE line END"),
        "detail": _x("CASE bad_kind WHEN 'malformed_line' THEN 'cut in the middle'"
                     f" WHEN 'wrong_type' THEN CASE {variant} {' '.join(detail)} END ELSE detail END"),
    })  # fmt: skip


# --- writing ----------------------------------------------------------------------------------------------


def _part_files(spark: SparkSession, folder: str) -> list[Any]:
    fs, path = tables.hadoop_fs(spark, folder)
    if not fs.exists(path):
        return []
    return [s for s in fs.listStatus(path) if s.isFile() and s.getPath().getName().startswith("part-")]


def _arranged(df: DataFrame, n_partitions: int, sort_columns: Sequence[str]) -> DataFrame:
    """Rows grouped so that one task writes each date's file, sorted by a unique key inside."""
    return df.repartition(n_partitions, "date").sortWithinPartitions("date", *sort_columns)


def _partitions(from_day: int) -> str:
    """The overwrite mode of a landing write: a continuation (``from_day`` > 0) replaces only the
    date folders it writes and leaves the earlier days' files as they are."""
    return "dynamic" if from_day > 0 else "static"


def _write_csv(df: DataFrame, path: str, entity: str, from_day: int = 0) -> None:
    header = ",".join(ENTITIES[entity].landing_columns)
    (
        df.select(F.col("line").alias(header), "date")
        .write.mode("overwrite").options(**_CSV_WRITE_OPTIONS)
        .option("partitionOverwriteMode", _partitions(from_day)).partitionBy("date").csv(path)
    )  # fmt: skip


def _write_json(spark: SparkSession, df: DataFrame, path: str, from_day: int = 0) -> None:
    """JSON lines, written as text (so broken lines can be among them), files named ``.json``."""
    (
        df.select("line", "date").write.mode("overwrite").option("partitionOverwriteMode", _partitions(from_day))
        .partitionBy("date").text(path)
    )  # fmt: skip
    fs, root = tables.hadoop_fs(spark, path)
    jvm = spark.sparkContext._jvm
    for folder in fs.listStatus(root):
        if folder.isDirectory():
            for status in _part_files(spark, folder.getPath().toString()):
                name = status.getPath().getName()
                if name.endswith(".txt"):
                    target = jvm.org.apache.hadoop.fs.Path(folder.getPath(), name[: -len(".txt")] + ".json")
                    fs.rename(status.getPath(), target)


def _write_network_cells(spark: SparkSession, df: DataFrame, path: str, from_day: int = 0) -> None:
    """Parquet rows carry a ``date`` column too, so the folder column is written as
    ``file_date`` and the folders renamed to ``date=…`` afterwards."""
    columns = ENTITIES["network_cells"].landing_columns
    (
        df.select(*columns, F.col("date").cast("string").alias("file_date"), "copy")
        .repartition(1, "file_date").sortWithinPartitions("file_date", "cell_id", "copy")
        .drop("copy")
        .write.mode("overwrite").option("partitionOverwriteMode", _partitions(from_day))
        .partitionBy("file_date").parquet(path)
    )  # fmt: skip
    fs, root = tables.hadoop_fs(spark, path)
    jvm = spark.sparkContext._jvm
    for folder in fs.listStatus(root):
        name = folder.getPath().getName()
        if folder.isDirectory() and name.startswith("file_date="):
            fs.rename(folder.getPath(), jvm.org.apache.hadoop.fs.Path(root, "date=" + name.split("=", 1)[1]))


# --- truth ------------------------------------------------------------------------------------------------


def _truth_subscribers(subs_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    def date(day: str) -> Column:
        return _x(_date(p, day))

    return subs_df.select(
        F.col("sub_id").alias("subscriber_id"),
        _x(_e164("nat", ident)).alias("msisdn"),
        "customer_id", "plan_type", "customer_type", "region", "home_cell_id",
        date("activation_day").alias("activation_date"),
        date("churn_day").alias("churn_date"),
        "churn_cause",
        date("deactivation_day").alias("deactivation_date"),
        "churn_reason",
        date("base_churn_day").alias("base_churn_date"),
        "base_churn_cause", "monthly_hazard",
        *[f"hazard_{c}" for c in CHURN_CAUSES],
        "is_short_tenure", "is_home_cell_poor", "complaint_propensity", "price_sensitivity",
        "competitor_exposure", "intensity", "payer_type", "uplift_type",
        date("treat_day").alias("first_contact_date"),
        "is_rescued", "is_backlash",
        date("list_contact_day").alias("list_contact_date"), "list_objective",
    )  # fmt: skip


def _truth_assignments(assignments_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    return assignments_df.select(
        "campaign_id",
        _x(_date(p, "campaign_day")).alias("campaign_date"),
        "channel",
        _x(_e164("nat", ident)).alias("msisdn"),
        F.col("sub_id").alias("subscriber_id"),
        "group", "uplift_type", "is_delivered", "has_accepted_offer",
        "has_responded", "revenue", "source", "publish_date", "objective", "offer_code",
    )  # fmt: skip


def _write_truth(df: DataFrame, path: str, sort_columns: Sequence[str]) -> None:
    df.repartition(1).sortWithinPartitions(*sort_columns).write.mode("overwrite").parquet(path)
