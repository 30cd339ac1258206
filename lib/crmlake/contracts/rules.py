"""Schema contracts: typing and rule checks for bronze rows on their way to silver.

Every rule is a column expression. A row breaks at most one rule, the first in this order:
``malformed_row``, ``missing_required``, ``invalid_type``, ``invalid_msisdn``,
``invalid_enum``, ``out_of_range``, ``impossible_bytes``, ``future_event_time``, ``too_late``,
``unknown_subscriber``. The rule and the column it concerns are kept with the row, so the
quarantine says exactly what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.contracts.entities import Entity
from crmlake.core.settings import IngestConfig

CORRUPT = "_corrupt_record"
TRUE_WORDS = ("true", "t", "1", "yes", "y")
FALSE_WORDS = ("false", "f", "0", "no", "n")
SECONDS_PER_DAY = 86400
BITS_PER_BYTE = 8

# Range rules that hold for one survey type only (the contract's generic range is 0-10).
CSAT_RANGE = (1, 5)


@dataclass(frozen=True)
class ContractParams:
    """The configurable limits of the contracts (``ingest`` section of the config)."""

    future_tolerance_hours: int
    max_lateness_days: int
    max_duration_s: int
    max_throughput_bps: int
    max_amount: float
    currencies: tuple[str, ...]

    @classmethod
    def from_settings(cls, ingest: IngestConfig) -> ContractParams:
        return cls(
            future_tolerance_hours=ingest.future_tolerance_hours,
            max_lateness_days=ingest.max_lateness_days,
            max_duration_s=ingest.max_duration_s,
            max_throughput_bps=ingest.max_throughput_bps,
            max_amount=ingest.max_amount,
            currencies=tuple(ingest.currencies),
        )


def raw_text(name: str) -> Column:
    """The column as arrived, trimmed, with empty strings as null."""
    trimmed = F.trim(F.col(name).cast("string"))
    return F.when(trimmed != "", trimmed)


def typed(name: str, dtype: T.DataType) -> Column:
    """The raw column cast to its contract type, null where it does not parse."""
    raw = raw_text(name)
    if isinstance(dtype, T.StringType):
        return raw
    if isinstance(dtype, T.BooleanType):
        lowered = F.lower(raw)
        return F.when(lowered.isin(*TRUE_WORDS), F.lit(True)).when(lowered.isin(*FALSE_WORDS), F.lit(False))
    return raw.try_cast(dtype)


def with_typed_columns(bronze_df: DataFrame, entity: Entity) -> DataFrame:
    """Adds ``<col>__typed`` for every contract column (bronze keeps the raw strings)."""
    return bronze_df.withColumns({f"{f.name}__typed": typed(f.name, f.dataType) for f in entity.silver.fields})


def _rule(condition: Column, rule: str, column: str | None = None) -> Column:
    return F.when(condition, F.struct(F.lit(rule).alias("rule"), F.lit(column).cast("string").alias("column")))


def rule_checks(entity: Entity, params: ContractParams, is_unknown_subscriber: Column | None = None) -> list[Column]:
    """The ordered rule expressions for one entity over a frame from :func:`with_typed_columns`
    that also has ``_file_date`` and, for entities with a phone number, ``msisdn_e164``.
    ``is_unknown_subscriber`` drives the referential rule (None: not checked)."""
    t = {f.name: F.col(f"{f.name}__typed") for f in entity.silver.fields}
    checks: list[Column] = []
    if entity.fmt != "parquet":
        checks.append(_rule(F.col(CORRUPT).isNotNull(), "malformed_row"))
    checks += [_rule(raw_text(c).isNull(), "missing_required", c) for c in entity.required]
    checks += [
        _rule(raw_text(f.name).isNotNull() & t[f.name].isNull(), "invalid_type", f.name)
        for f in entity.silver.fields
        if not isinstance(f.dataType, T.StringType)
    ]
    if entity.has_msisdn:
        checks.append(_rule(raw_text("msisdn").isNotNull() & F.col("msisdn_e164").isNull(), "invalid_msisdn", "msisdn"))
    checks += [_rule(~t[c].isin(*values), "invalid_enum", c) for c, values in entity.enums.items()]
    if "currency" in t:
        checks.append(_rule(~t["currency"].isin(*params.currencies), "invalid_enum", "currency"))
    for c, (low, high) in entity.ranges.items():
        if low is not None:
            checks.append(_rule(t[c] < F.lit(low), "out_of_range", c))
        if high is not None:
            checks.append(_rule(t[c] > F.lit(high), "out_of_range", c))
    for money in ("amount", "charge_amount", "revenue_amount"):
        if money in t:
            checks.append(_rule(t[money] > F.lit(params.max_amount), "out_of_range", money))
    if entity.name == "usage":
        checks.append(_rule(t["duration_s"] > F.lit(params.max_duration_s), "out_of_range", "duration_s"))
        # A link carries at most max_throughput_bps; short records get one second's worth. In
        # doubles: a day at a limit above 10^15 bit/s, or two byte counts near the top of a
        # long, overflow a long (an error under ANSI SQL, not a rejected row).
        seconds = F.greatest(F.coalesce(t["duration_s"], F.lit(0)), F.lit(1)).cast("double")
        capacity = seconds * F.lit(params.max_throughput_bps / BITS_PER_BYTE)
        volume = F.coalesce(t["bytes_up"], F.lit(0)).cast("double") + F.coalesce(t["bytes_down"], F.lit(0))
        checks.append(_rule(volume > capacity, "impossible_bytes", "bytes_down"))
    if entity.name == "surveys":
        low, high = CSAT_RANGE
        checks.append(_rule((t["survey_type"] == "csat") & ~t["score"].between(low, high), "out_of_range", "score"))
    event = t[entity.event_time].cast("timestamp")
    latest_allowed = F.col("_file_date").cast("timestamp") + F.make_interval(
        days=F.lit(1), hours=F.lit(params.future_tolerance_hours)
    )
    checks.append(_rule(event > latest_allowed, "future_event_time", entity.event_time))
    earliest_allowed = F.date_sub(F.col("_file_date"), params.max_lateness_days)
    checks.append(_rule(F.to_date(event) < earliest_allowed, "too_late", entity.event_time))
    if is_unknown_subscriber is not None:
        checks.append(_rule(is_unknown_subscriber, "unknown_subscriber", "msisdn"))
    return checks


def with_reject_reason(
    typed_df: DataFrame, entity: Entity, params: ContractParams, is_unknown_subscriber: Column | None = None
) -> DataFrame:
    """Adds ``reject_rule`` and ``reject_column``: the first rule the row breaks, or nulls."""
    first = F.coalesce(*rule_checks(entity, params, is_unknown_subscriber))
    return (
        typed_df.withColumn("_reject", first)
        .withColumns({"reject_rule": F.col("_reject.rule"), "reject_column": F.col("_reject.column")})
        .drop("_reject")
    )


def raw_content(entity: Entity) -> Column:
    """What arrived, for the quarantine: the unparsed line, or the fields as JSON."""
    as_json = F.to_json(F.struct(*[F.col(c) for c in entity.landing_columns]))
    if entity.fmt == "parquet":
        return as_json
    return F.coalesce(F.col(CORRUPT), as_json)
