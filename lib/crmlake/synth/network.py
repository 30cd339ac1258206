"""The network: cells in each region, and each cell's radio technology and quality on a day.

A cell-day is a pure function of (cell, day), so the subscriber-day rows recompute it for their
home cell instead of joining the cell table.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from crmlake.synth.draws import Sql, _at, _case, _date, _days_df, _key, _lit, _mean_one, _pick, _sql, _u, _x
from crmlake.synth.params import (
    BASE_DROP_RATE,
    CELL_NOISE_SIGMA,
    CELL_TECH_MIX_NON_5G,
    HEALTHY_CELL_DOWNTIME_PCT,
    OUTAGE_AVAILABILITY_PCT,
    OUTAGE_DROP_FACTOR,
    OUTAGE_THROUGHPUT_FACTOR,
    POOR_CELL_DOWNTIME_PCT,
    POOR_CELL_DROP_FACTOR,
    POOR_CELL_THROUGHPUT_FACTOR,
    POOR_DAY_AVAILABILITY_PCT,
    POOR_DAY_DROP_RATE,
    REGIONS,
    TECH_THROUGHPUT_MBPS,
    GenParams,
)


def _region_attr(p: GenParams, attr: str, region_idx: str) -> Sql:
    return _at([getattr(r, attr) for r in REGIONS[: p.regions]], region_idx)


def _cell_key(p: GenParams, region_idx: str, cell_idx: str) -> Sql:
    return _key(p.seed, "cell", region_idx, cell_idx)


def _cell_id(p: GenParams, region_idx: str, cell_idx: str) -> Sql:
    code = _region_attr(p, "code", region_idx)
    return _sql(f"concat({code}, '-', lpad(CAST({cell_idx} + 1 AS STRING), 4, '0'))")


def _cell_is_poor(p: GenParams, cell_key: str) -> Sql:
    return _sql(f"{_u(cell_key, 'chronic')} < {_lit(p.poor_cell_share)}")


def _cell_day(p: GenParams, region_idx: str, cell_idx: str, day: str) -> dict[str, Sql]:
    """A cell's radio technology and quality on a day. A pure function of (cell, day): the
    subscriber-day rows recompute it for their home cell instead of joining the cell table."""
    ck = _cell_key(p, region_idx, cell_idx)
    dk = _sql(f"xxhash64('cell_day', {ck}, {day})")
    quality = _region_attr(p, "quality", region_idx)
    poor = _cell_is_poor(p, ck)
    outage = _sql(f"{_u(dk, 'outage')} < {_lit(p.outage_rate)}")
    five_g = _region_attr(p, "five_g_share", region_idx)
    tech = _pick(
        _u(ck, "tech"),
        [("5G", five_g)] + [(t, _sql(f"(1D - {five_g}) * {w!r}D")) for t, w in CELL_TECH_MIX_NON_5G],
    )

    def factor(cond: Sql, value: float) -> str:
        return f"CASE WHEN {cond} THEN {value!r}D ELSE 1D END"

    drop = _sql(
        f"least(1D, {BASE_DROP_RATE!r}D / {quality} * {factor(poor, POOR_CELL_DROP_FACTOR)}"
        f" * {factor(outage, OUTAGE_DROP_FACTOR)} * {_mean_one(dk, 'drop', CELL_NOISE_SIGMA)})"
    )
    throughput = _sql(
        f"{_case(tech, TECH_THROUGHPUT_MBPS)} * {quality}"
        f" * {factor(poor, POOR_CELL_THROUGHPUT_FACTOR)} * {factor(outage, OUTAGE_THROUGHPUT_FACTOR)}"
        f" * {_mean_one(dk, 'throughput', CELL_NOISE_SIGMA)}"
    )
    low, high = OUTAGE_AVAILABILITY_PCT
    u_avail = _u(dk, "availability")
    downtime = f"CASE WHEN {poor} THEN {POOR_CELL_DOWNTIME_PCT!r}D ELSE {HEALTHY_CELL_DOWNTIME_PCT!r}D END"
    availability = _sql(  # exponential downtime on a normal day
        f"CASE WHEN {outage} THEN {u_avail} * {high - low!r}D + {low!r}D"
        f" ELSE greatest(0D, 100D + ln(1D - {u_avail}) * {downtime}) END"
    )
    return {
        "radio_tech": tech,
        "dropped_call_rate": _sql(f"round({drop}, 4)"),
        "avg_throughput_mbps": _sql(f"round({throughput}, 2)"),
        "availability_pct": _sql(f"round({availability}, 2)"),
        "is_poor_day": _sql(
            f"{outage} OR {drop} > {POOR_DAY_DROP_RATE!r}D OR {availability} < {POOR_DAY_AVAILABILITY_PCT!r}D"
        ),
    }


def network_cells_df(spark: SparkSession, p: GenParams) -> DataFrame:
    """One row per cell per day, typed as ``ENTITIES["network_cells"].silver``, plus ``day``."""
    cells = spark.range(p.regions * p.cells_per_region, numPartitions=1).select(
        _x(f"CAST(id div {p.cells_per_region} AS INT)").alias("region_idx"),
        _x(f"CAST(id % {p.cells_per_region} AS INT)").alias("cell_idx"),
    )
    df = cells.crossJoin(_days_df(spark, p))
    metrics = _cell_day(p, "region_idx", "cell_idx", "day")
    return df.select(
        "day",
        _x(_cell_id(p, "region_idx", "cell_idx")).alias("cell_id"),
        _x(_date(p, "day")).alias("date"),
        _x(_region_attr(p, "name", "region_idx")).alias("region"),
        _x(metrics["radio_tech"]).alias("radio_tech"),
        *[_x(f"CAST({metrics[c]} AS DOUBLE)").alias(c)
          for c in ("dropped_call_rate", "avg_throughput_mbps", "availability_pct")],
    )  # fmt: skip


def network_cells_rows(spark: SparkSession, p: GenParams) -> DataFrame:
    """:func:`network_cells_df` with the row bookkeeping that bad-record injection needs."""
    df = network_cells_df(spark, p).withColumn("rk", _x(_key(p.seed, "cell_row", "cell_id", "day")))
    return df.withColumn("key", _x("concat_ws('|', cell_id, CAST(date AS STRING))"))
