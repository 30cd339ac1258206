"""Usage records (calls, SMS, data sessions, VAS), the big feed.

Usage is one row per subscriber-day carrying an event count, exploded with ``sequence``; only
those small rows are shuffled, to group each file's records.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import (
    _bool_str,
    _case,
    _date_str,
    _hour_sec,
    _int_below,
    _key,
    _lit,
    _lognormal,
    _money,
    _pick,
    _ts_str,
    _u,
    _x,
)
from crmlake.synth.faults import _apply_overrides, _usage_overrides, _with_bad_kind
from crmlake.synth.msisdn import _msisdn_as_exported
from crmlake.synth.network import _cell_id
from crmlake.synth.params import (
    CURRENCY,
    DATA_MEDIAN_BYTES,
    DATA_PRICE_PER_MB,
    DATA_SIGMA,
    DATA_TARIFFS,
    DESTINATION_MIX,
    HOME_CELL_SHARE,
    HOUR_WEIGHTS_USAGE,
    MAX_BYTES_PER_S,
    MAX_CALL_S,
    MAX_SESSION_S,
    OUTGOING_SHARE,
    POSTPAID_OVER_BUNDLE_SHARE,
    RADIO_MIX,
    ROAMING_PRICE_FACTOR,
    SAME_REGION_CELL_SHARE,
    SERVICE_MIX,
    SESSION_MEDIAN_S,
    SESSION_SIGMA,
    SMS_PRICE,
    UPLINK_SHARE,
    VAS_PRICES,
    VOICE_MEDIAN_S,
    VOICE_RATE_PER_MIN,
    VOICE_SIGMA,
    GenParams,
)
from crmlake.synth.writers import _with_csv_line

# --- usage ----------------------------------------------------------------------------------------------

USAGE_BASE_COLUMNS = (
    "sub_id", "day", "date_str", "date_compact", "nat", "plan_type", "tariff_now", "device_type",
    "region_idx", "home_cell_id", "is_roaming",
)  # fmt: skip


def usage_arrivals_df(sub_days_df: DataFrame, p: GenParams, partitioned: bool = True) -> DataFrame:
    """Subscriber-day rows split by arrival: records ``lo..hi`` arrive in the file of
    ``file_day`` (``date``). Records ``0..n_on_time-1`` arrive on their day, the rest (the late
    ones) on ``late_day`` unless that is after the days generated; only arrivals from ``p.from_day``
    on (the files this run writes). Partitioned by (arrival day,
    subscriber bucket) so that each write task holds whole files; only these small rows are
    shuffled, each is exploded into its records where it landed."""
    files = p.usage_files_per_day
    # what is the same for all records of a subscriber-day is formatted before the explode
    base = sub_days_df.select(
        *USAGE_BASE_COLUMNS, "n", "n_on_time", "late_day",
        _x("concat('U', date_compact, '-', sub_id, '-')").alias("record_prefix"),
    )  # fmt: skip
    columns = (*USAGE_BASE_COLUMNS, "record_prefix")
    on_time = base.where("n_on_time > 0").select(
        *columns, F.lit(0).alias("lo"), (F.col("n_on_time") - 1).alias("hi"),
        F.col("day").alias("file_day"), F.col("date_str").alias("date"),
    )  # fmt: skip
    late = base.where(f"n > n_on_time AND late_day < {p.total_days}").select(
        *columns, F.col("n_on_time").alias("lo"), (F.col("n") - 1).alias("hi"),
        F.col("late_day").alias("file_day"), _x(_date_str(p, "late_day")).alias("date"),
    )  # fmt: skip
    written = p.total_days - p.from_day
    tasks = max(1, min(written * files, math.ceil(p.expected_usage_rows * written / p.days / p.usage_rows_per_file)))
    arrivals = on_time.unionByName(late).where(F.col("file_day") >= p.from_day)  # earlier files exist
    return arrivals.repartition(tasks, "file_day", _x(f"pmod(sub_id, {files})")) if partitioned else arrivals


def usage_df(sub_days_df: DataFrame, p: GenParams, ident: IdentityConfig, partitioned: bool = True) -> DataFrame:
    """All usage records with bad ones injected and their CSV ``line``, partitioned for writing
    (see :func:`usage_arrivals_df`) unless ``partitioned`` is false."""
    rows = usage_events_df(usage_arrivals_df(sub_days_df, p, partitioned), p, ident)
    rows = _apply_overrides(_with_bad_kind(rows, p, "usage"), _usage_overrides(p, ident))
    return _with_csv_line(rows, "usage", text_columns=())


def usage_events_df(base_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    """Explodes subscriber-day rows into their usage records ``lo..hi`` (sequence numbers ``seq``).
    Returns the contract's fields as strings plus ``date`` (file date), ``rk`` (the record's
    random key), ``key`` (record_id), ``nat`` and the sort columns sub_id, day, seq."""
    df = base_df.select("*", F.explode(F.sequence("lo", "hi")).alias("seq"))
    df = df.withColumn("rk", _x(_key(p.seed, "usage", "sub_id", "day", "seq")))
    profile = (
        "CASE WHEN device_type = 'feature_phone' THEN 'voice_device'"
        " WHEN device_type IN ('tablet', 'mifi') THEN 'data_device'"
        f" WHEN tariff_now IN ({', '.join(_lit(t) for t in DATA_TARIFFS)}) THEN 'data_tariff'"
        " ELSE 'default' END"
    )

    def by_profile(salt: str, mixes: dict[str, Sequence[tuple[str, float]]]) -> Column:
        whens = " ".join(f"WHEN {_lit(k)} THEN {_pick(_u('rk', salt), mix)}" for k, mix in mixes.items())
        return _x(f"CASE profile {whens} END")

    df = df.withColumn("profile", _x(profile))
    df = df.withColumns({
        "svc": by_profile("service", SERVICE_MIX),
        "radio": by_profile("radio", RADIO_MIX),
        "sec": _x(_hour_sec("rk", "time", HOUR_WEIGHTS_USAGE)),
    })  # fmt: skip
    call_s = f"least({MAX_CALL_S}, greatest(1, floor({_lognormal('rk', 'call', VOICE_MEDIAN_S, VOICE_SIGMA)})))"
    session_s = (
        f"least({MAX_SESSION_S}, greatest(1, floor({_lognormal('rk', 'session', SESSION_MEDIAN_S, SESSION_SIGMA)})))"
    )
    df = df.withColumns({
        "dest": _x(f"CASE WHEN svc IN ('voice', 'sms') THEN {_pick(_u('rk', 'destination'), DESTINATION_MIX)} END"),
        "duration": _x(f"CAST(CASE svc WHEN 'voice' THEN {call_s} WHEN 'data' THEN {session_s} ELSE 0 END AS BIGINT)"),
    })  # fmt: skip
    lo_up, hi_up = UPLINK_SHARE
    down = f"least(duration * {MAX_BYTES_PER_S!r}D, {_lognormal('rk', 'bytes', DATA_MEDIAN_BYTES, DATA_SIGMA)})"
    df = df.withColumn("down", _x(f"CAST(CASE WHEN svc = 'data' THEN floor({down}) ELSE 0 END AS BIGINT)"))
    df = df.withColumn(
        "up", _x(f"CAST(floor(down * ({_u('rk', 'uplink')} * {hi_up - lo_up!r}D + {lo_up!r}D)) AS BIGINT)")
    )
    price = (
        f"CASE svc WHEN 'voice' THEN ceil(duration / 60D) * {_case('dest', VOICE_RATE_PER_MIN)}"
        f" WHEN 'sms' THEN {_case('dest', SMS_PRICE)}"
        f" WHEN 'data' THEN ceil((down + up) / 1000000D) * {DATA_PRICE_PER_MB}"
        f" ELSE {_pick(_u('rk', 'vas_price'), VAS_PRICES)} END"  # vas
        f" * CASE WHEN is_roaming THEN {ROAMING_PRICE_FACTOR!r}D ELSE 1D END"
    )
    charged = (
        f"plan_type = 'prepaid' OR dest = 'international' OR is_roaming"
        f" OR {_u('rk', 'over_bundle')} < {POSTPAID_OVER_BUNDLE_SHARE!r}D"
    )
    cell_u = _u("rk", "cell")
    other_region = (
        f"CASE WHEN {cell_u} < {HOME_CELL_SHARE + SAME_REGION_CELL_SHARE!r}D THEN region_idx"
        f" ELSE {_int_below('rk', 'cell_region', p.regions)} END"
    )
    other_cell = _cell_id(p, other_region, _int_below("rk", "cell_idx", p.cells_per_region))
    cell = (
        f"CASE WHEN is_roaming THEN NULL WHEN {cell_u} < {HOME_CELL_SHARE!r}D THEN home_cell_id ELSE {other_cell} END"
    )
    direction = (
        f"CASE WHEN svc IN ('voice', 'sms') AND {_u('rk', 'direction')} >= {OUTGOING_SHARE!r}D THEN 'in' ELSE 'out' END"
    )
    return df.select(
        "sub_id", "day", "seq", "rk", "nat", "file_day",
        "date",
        _x("concat(record_prefix, CAST(seq AS STRING))").alias("record_id"),
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date_str", "sec")).alias("event_time"),
        F.col("svc").alias("service_type"),
        _x(direction).alias("direction"),
        F.col("duration").cast("string").alias("duration_s"),
        F.col("up").cast("string").alias("bytes_up"),
        F.col("down").cast("string").alias("bytes_down"),
        _x(_money(f"CASE WHEN {charged} THEN {price} ELSE 0D END")).alias("charge_amount"),
        F.lit(CURRENCY).alias("currency"),
        F.col("dest").alias("destination_type"),
        _x(_bool_str("is_roaming")).alias("is_roaming"),
        _x(cell).alias("cell_id"),
        F.col("radio").alias("radio_tech"),
    ).withColumn("key", F.col("record_id"))  # fmt: skip
