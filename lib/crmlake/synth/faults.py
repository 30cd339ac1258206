"""Injected bad records: the kind drawn for each row, the overrides that make each kind in each
entity, the truncated usage file, and the rows of ``truth/bad_records`` that list them."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import Sql, _date_str, _int_below, _lit, _money, _pick, _sql, _ts_str, _u, _x
from crmlake.synth.msisdn import _invalid_msisdn, _odd_msisdn, _unknown_msisdn
from crmlake.synth.params import (
    FUTURE_DAYS,
    IMPOSSIBLE_BYTES,
    IMPOSSIBLE_DURATION_S,
    KINDS_BY_ENTITY,
    NEGATIVE_OFFSET,
    NON_ASCII_FIRST_NAME,
    NON_ASCII_LAST_NAME,
    NON_ASCII_NOTE,
    SECONDS_PER_DAY,
    GenParams,
)
from crmlake.synth.writers import _part_files

# --- bad records ------------------------------------------------------------------------------------


def _msisdn_overrides(ident: IdentityConfig) -> dict[str, dict[str, Sql]]:
    """Bad numbers, from the national number ``nat`` and the row key ``rk``."""
    return {
        "odd_msisdn_format": {"msisdn": _odd_msisdn("nat", _u("rk", "odd_msisdn"), ident)},
        "invalid_msisdn": {"msisdn": _invalid_msisdn("nat", "rk", ident)},
        "unknown_subscriber": {"msisdn": _unknown_msisdn("rk", ident)},
    }


def _future_ts(p: GenParams, file_day: str) -> Sql:
    lo, hi = FUTURE_DAYS
    day = f"{file_day} + {lo} + {_int_below('rk', 'future_day', hi - lo + 1)}"
    return _ts_str(_date_str(p, day), _int_below("rk", "future_sec", SECONDS_PER_DAY))


def _negative(column: str) -> Sql:
    """A negative version of a non-negative numeric string column (never -0)."""
    return _sql(f"concat('-', CAST(CAST(abs(CAST({column} AS DOUBLE)) + {NEGATIVE_OFFSET} AS BIGINT) AS STRING))")


def _negative_money(value: str) -> Sql:
    return _money(f"-(abs({value}) + {NEGATIVE_OFFSET})")


def _with_bad_kind(df: DataFrame, p: GenParams, entity: str) -> DataFrame:
    """Adds ``bad_kind`` (null for a good row), drawn from the row key ``rk``; a row drawn as
    ``duplicate`` is exploded into two identical rows (``copy`` 0 and 1)."""
    if p.bad_rate <= 0:
        kind = F.lit(None).cast("string")
    else:
        kinds = [(k, 1.0) for k in KINDS_BY_ENTITY[entity]]
        kind = _x(f"CASE WHEN {_u('rk', 'bad')} < {p.bad_rate!r}D THEN {_pick(_u('rk', 'bad_kind'), kinds)} END")
    df = df.withColumn("bad_kind", kind)
    return df.withColumn("copy", F.explode(_x("CASE WHEN bad_kind = 'duplicate' THEN array(0, 1) ELSE array(0) END")))


def _apply_overrides(df: DataFrame, overrides: dict[str, dict[str, Sql]]) -> DataFrame:
    """Replaces fields of bad rows: ``overrides`` maps a kind to {column: bad value (SQL)}. Adds
    ``detail``, the bad values written, for the truth table."""
    by_column: dict[str, list[tuple[str, str]]] = {}
    for kind, columns in overrides.items():
        for column, value in columns.items():
            by_column.setdefault(column, []).append((kind, value))
    updates = {}
    for column, variants in by_column.items():
        whens = " ".join(f"WHEN {_lit(kind)} THEN {value}" for kind, value in variants)
        # kinds that leave this column alone keep it
        updates[column] = _x(
            f"CASE WHEN bad_kind IS NULL THEN {column} ELSE CASE bad_kind {whens} ELSE {column} END END"
        )
    df = df.withColumns(updates)
    notes = []
    for kind, columns in overrides.items():
        text = ", ".join(f"'{c}=', coalesce(CAST({c} AS STRING), '')" for c in columns)
        notes.append(f"WHEN {_lit(kind)} THEN concat({text})")
    detail = f"CASE bad_kind {' '.join(notes)} WHEN 'duplicate' THEN 'copy of the line before' END"
    return df.withColumn("detail", _x(detail))


# --- overrides per entity ------------------------------------------------------------------------


def _usage_overrides(p: GenParams, ident: IdentityConfig) -> dict[str, dict[str, Sql]]:
    third = _u("rk", "variant")
    return {
        **_msisdn_overrides(ident),
        "wrong_type": {
            "duration_s": _sql(f"CASE WHEN {third} < {1 / 3!r}D THEN '12s'"
                               f" WHEN {third} < {2 / 3!r}D THEN 'abc' ELSE duration_s END"),
            "charge_amount": _sql(f"CASE WHEN {third} >= {2 / 3!r}D THEN '1.2.3' ELSE charge_amount END"),
        },
        "missing_key": {"record_id": Sql("''")},
        "negative_value": {"duration_s": _negative("duration_s")},
        "future_timestamp": {"event_time": _future_ts(p, "file_day")},
        "impossible_bytes": {
            "service_type": Sql("'data'"),
            "duration_s": Sql(_lit(str(IMPOSSIBLE_DURATION_S))),
            "bytes_down": Sql(_lit(str(IMPOSSIBLE_BYTES))),
        },
        "unknown_enum": {"service_type": Sql("'hologram'")},
    }  # fmt: skip


def _subscriber_overrides(p: GenParams, ident: IdentityConfig) -> dict[str, dict[str, Sql]]:
    half = f"{_u('rk', 'variant')} < 0.5D"
    msisdn = _msisdn_overrides(ident)
    return {
        "odd_msisdn_format": msisdn["odd_msisdn_format"],
        "invalid_msisdn": msisdn["invalid_msisdn"],
        "wrong_type": {
            "activation_date": _sql(f"CASE WHEN {half} THEN '2024-02-30' ELSE activation_date END"),
            "is_marketing_consent": _sql(f"CASE WHEN NOT {half} THEN 'perhaps' ELSE is_marketing_consent END"),
        },
        "missing_key": {"msisdn": Sql("''")},
        "unknown_enum": {
            "status": _sql(f"CASE WHEN {half} THEN 'zombie' ELSE status END"),
            "plan_type": _sql(f"CASE WHEN NOT {half} THEN 'barter' ELSE plan_type END"),
        },
        "non_ascii_text": {
            "first_name": Sql(_lit(NON_ASCII_FIRST_NAME)), "last_name": Sql(_lit(NON_ASCII_LAST_NAME)),
        },
    }  # fmt: skip


def _recharge_overrides(p: GenParams, ident: IdentityConfig) -> dict[str, dict[str, Sql]]:
    half = f"{_u('rk', 'variant')} < 0.5D"
    return {
        **_msisdn_overrides(ident),
        "wrong_type": {"amount": _sql(f"CASE WHEN {half} THEN '1.2.3' ELSE 'abc' END")},
        "missing_key": {"txn_id": Sql("''")},
        "negative_value": {"amount": _negative_money("value")},
        "future_timestamp": {"txn_time": _future_ts(p, "day")},
        "unknown_enum": {
            "channel": _sql(f"CASE WHEN {half} THEN 'pigeon' ELSE channel END"),
            "txn_type": _sql(f"CASE WHEN NOT {half} THEN 'refund' ELSE txn_type END"),
        },
    }  # fmt: skip


def _json_overrides(ident: IdentityConfig, p: GenParams, key: str, time: str, enum: tuple[str, str],
                    negative: str, text: str) -> dict[str, dict[str, Sql]]:  # fmt: skip
    """The bad-record kinds of a JSON entity (wrong_type and malformed_line are in the line)."""
    return {
        **_msisdn_overrides(ident),
        "missing_key": {key: Sql("''")},
        "negative_value": {negative: _sql(f"-({negative} + {NEGATIVE_OFFSET})")},
        "future_timestamp": {time: _future_ts(p, "day")},
        "unknown_enum": {enum[0]: Sql(_lit(enum[1]))},
        "non_ascii_text": {text: Sql(_lit(NON_ASCII_NOTE))},
    }


def _campaign_overrides(p: GenParams, ident: IdentityConfig) -> dict[str, dict[str, Sql]]:
    half = f"{_u('rk', 'variant')} < 0.5D"
    return {
        **_msisdn_overrides(ident),
        "wrong_type": {
            "revenue_amount": _sql(f"CASE WHEN {half} THEN '1.2.3' ELSE revenue_amount END"),
            "is_delivered": _sql(f"CASE WHEN NOT {half} THEN 'maybe' ELSE is_delivered END"),
        },
        "missing_key": {"campaign_id": Sql("''")},
        "negative_value": {"revenue_amount": _negative_money("revenue")},
        "future_timestamp": {"contacted_at": _future_ts(p, "day")},
        "unknown_enum": {"channel": Sql("'pigeon'")},
    }  # fmt: skip


def _cell_overrides() -> dict[str, dict[str, Sql]]:
    return {"negative_value": {"avg_throughput_mbps": _sql(f"-(avg_throughput_mbps + {NEGATIVE_OFFSET})")}}


# --- files and truth ----------------------------------------------------------------------------


def truncate_last_line(spark: SparkSession, folder: str) -> tuple[str | None, str] | None:
    """Cuts the final line of one CSV file in ``folder`` (the smallest part file) in the middle,
    as a transfer that stopped early would. Returns (first field of that line, detail), or None
    when no file has a data line. Rewritten through the Hadoop FileSystem, so checksums match."""
    files = sorted(_part_files(spark, folder), key=lambda s: (s.getLen(), s.getPath().getName()))
    jvm = spark.sparkContext._jvm
    for status in files:
        fs, path = tables.hadoop_fs(spark, status.getPath().toString())
        stream = fs.open(path)
        try:
            data = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
        body = data[:-1] if data.endswith(b"\n") else data
        start = body.rfind(b"\n") + 1
        if start == 0:  # a header only
            continue
        last = body[start:]
        keep = max(1, len(last) // 2)
        out = fs.create(path, True)
        try:
            out.write(bytearray(body[:start] + last[:keep]))
        finally:
            out.close()
        key = last.split(b",", 1)[0].decode("utf-8", errors="replace") or None
        return key, f"last line cut after {keep} of {len(last)} bytes"
    return None


def _truncate_usage(spark: SparkSession, landing: str, p: GenParams, truth_parts: list[DataFrame]) -> list[DataFrame]:
    """Cuts the last line of a usage file of the last day; the truth then lists that line as
    ``truncated_file`` (and no longer as whatever it was injected as)."""
    last_day = p.start + dt.timedelta(days=p.total_days - 1)
    cut = truncate_last_line(spark, f"{landing}/usage/date={last_day.isoformat()}")
    if cut is None:
        return truth_parts
    key, detail = cut
    truncated = spark.createDataFrame(
        [("usage", last_day, "truncated_file", key, detail)],
        "entity string, file_date date, kind string, key string, detail string",
    )
    same_line = (F.col("entity") == "usage") & (F.col("file_date") == F.lit(last_day)) & (F.col("key") == key)
    return [t.where(~F.coalesce(same_line, F.lit(False))) for t in truth_parts] + [truncated]


def _truth_rows(df: DataFrame, entity: str) -> DataFrame:
    """The injected bad rows of an entity, as rows of truth/bad_records."""
    return df.where("bad_kind IS NOT NULL AND (bad_kind <> 'duplicate' OR copy = 1)").select(
        F.lit(entity).alias("entity"),
        F.to_date("date").alias("file_date"),
        F.col("bad_kind").alias("kind"),
        _x("CASE WHEN bad_kind = 'missing_key' THEN NULL ELSE CAST(key AS STRING) END").alias("key"),
        F.col("detail").cast("string").alias("detail"),
    )
