"""Random draws and lookups as SQL text, the window's days and the formatting every entity shares.

Every random draw is a column expression. A uniform is ``xxhash64`` of the seed, a salt that names
the draw and the row's identity (subscriber, day, sequence number), so a value does not depend on
partitioning and the same seed writes the same file contents. Normal draws use Box-Muller on two
such uniforms. The draws are built as SQL text (``F.expr``): one call into the JVM per draw instead
of dozens, which keeps building the plans fast.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.synth.params import GenParams

HASH_BITS = 53  # a uniform takes the top 53 bits of a 64-bit hash: all a double holds
UNIT = float(1 << HASH_BITS)


class Sql(str):
    """SQL text standing for a value (an expression or a column), not a string literal."""


def _sql(text: str) -> Sql:
    return Sql(f"({text})")


def _lit(value: Any) -> str:
    """``value`` as SQL: :class:`Sql` text as it is, Python values as literals."""
    if isinstance(value, Sql):
        return str(value)
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**31 else f"{value}L"
    if isinstance(value, float):
        return f"{value!r}D"
    escaped = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _key(seed: int, salt: str, *cols: str) -> Sql:
    """A 64-bit random key for a row: the seed, a salt naming the stream, the row's identity."""
    return _sql(f"xxhash64({seed}L, {_lit(salt)}, {', '.join(cols)})")


def _salt(salt: str) -> str:
    """A salt as a 64-bit literal (stable across runs): hashing a long is cheaper than a string."""
    return f"{int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), 'big', signed=True)}L"


def _u(key: str, salt: str) -> Sql:
    """A uniform draw in [0, 1) for the row ``key``; different salts give independent draws."""
    return _sql(f"shiftrightunsigned(xxhash64({_salt(salt)}, {key}), {64 - HASH_BITS}) / {UNIT!r}D")


def _normal(key: str, salt: str) -> Sql:
    """A standard normal draw (Box-Muller; 1 - u is in (0, 1], so the log is finite)."""
    radius = f"sqrt(-2D * ln(1D - {_u(key, salt + ':r')}))"
    return _sql(f"{radius} * cos({_u(key, salt + ':t')} * {2.0 * math.pi!r}D)")


def _lognormal(key: str, salt: str, median: float | Sql, sigma: float) -> Sql:
    return _sql(f"exp({_normal(key, salt)} * {sigma!r}D) * {_lit(median)}")


def _mean_one(key: str, salt: str, sigma: float) -> Sql:
    """A lognormal multiplier whose mean is 1."""
    return _sql(f"exp({_normal(key, salt)} * {sigma!r}D - {sigma * sigma / 2.0!r}D)")


def _int_below(key: str, salt: str, n: int | Sql) -> Sql:
    """A uniform integer in [0, n)."""
    return _sql(f"CAST(floor({_u(key, salt)} * {_lit(n)}) AS INT)")


def _pick(u: Sql, choices: Sequence[tuple[Any, float | Sql]]) -> Sql:
    """The value whose bracket of cumulative weight holds the uniform ``u`` (a categorical
    draw). Weights may be numbers or, varying by row, SQL expressions."""
    if len(choices) == 1:
        return Sql(_lit(choices[0][0]))
    if all(isinstance(w, int | float) for _, w in choices):
        total = float(sum(w for _, w in choices))
        bounds, acc = [], 0.0
        for _, weight in choices[:-1]:
            acc += weight / total
            bounds.append(_lit(acc))
        scaled = str(u)
    else:
        terms = [_lit(w) for _, w in choices]
        bounds = [_sql(" + ".join(terms[: i + 1])) for i in range(len(terms) - 1)]
        scaled = f"{u} * ({' + '.join(terms)})"
    whens = " ".join(f"WHEN {scaled} < {b} THEN {_lit(v)}" for (v, _), b in zip(choices[:-1], bounds, strict=True))
    return _sql(f"CASE {whens} ELSE {_lit(choices[-1][0])} END")  # the last bracket


def _case(column: str, branches: dict[str, Any]) -> Sql:
    """``CASE column WHEN key THEN value …``; null for a key not listed."""
    whens = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in branches.items())
    return _sql(f"CASE {column} {whens} END")


def _at(values: Sequence[Any], index0: str) -> Sql:
    """``values[index0]`` for a 0-based index."""
    return _sql(f"element_at(array({', '.join(_lit(v) for v in values)}), {index0} + 1)")


def _hour_sec(key: str, salt: str, weights: Sequence[float]) -> Sql:
    """Seconds into the day: an hour from the profile, then uniform within it."""
    hour = _pick(_u(key, salt + ":h"), list(enumerate(weights)))
    return _sql(f"{hour} * 3600 + {_int_below(key, salt + ':s', 3600)}")


def _x(text: str) -> Column:
    return F.expr(text)


# --- formatting ------------------------------------------------------------------------------------


def _date(p: GenParams, day: str) -> Sql:
    return _sql(f"date_add(DATE'{p.start.isoformat()}', {day})")


def _date_str(p: GenParams, day: str) -> Sql:
    return _sql(f"CAST({_date(p, day)} AS STRING)")


def _ts_str(date_str: str, sec: str) -> Sql:
    """``yyyy-MM-dd HH:mm:ss`` from a date string and seconds into the day (UTC, any session)."""
    parts = [f"{sec} div 3600", f"({sec} div 60) % 60", f"{sec} % 60"]
    hms = ", ':', ".join(f"lpad(CAST({x} AS STRING), 2, '0')" for x in parts)
    return _sql(f"concat({date_str}, ' ', {hms})")


def _money(x: str) -> Sql:
    """An amount in whole rials (IRR has no minor unit in use) written with two decimals."""
    return _sql(f"concat(CAST(CAST(round({x}) AS BIGINT) AS STRING), '.00')")


def _bool_str(x: str) -> Sql:
    return _sql(f"CASE WHEN {x} THEN 'true' WHEN NOT {x} THEN 'false' END")


# --- the window's days -------------------------------------------------------------------------


def _days_df(spark: SparkSession, p: GenParams) -> DataFrame:
    return spark.range(p.total_days, numPartitions=1).select(F.col("id").cast("int").alias("day"))
