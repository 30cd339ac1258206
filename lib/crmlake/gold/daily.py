"""``gold.subscriber_daily``: one row per subscriber per day with any activity, built from the
silver facts of that day, and the bookkeeping that makes it incremental.

A row exists for a subscriber-day when the subscriber had at least one usage record, recharge
or bill, care contact or survey answer that day (silence is the absence of a row; windows in
``features`` count it as zero). Only the partitions of the days asked for are written.

Which days need (re)building is decided by comparing, per day, a fingerprint of the silver
files that make up that day's partitions (Delta files are immutable: a late record, a
re-delivered row or a deletion for that day changes the set) with the fingerprint recorded
when the day was last built (``gold.subscriber_daily_builds``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.catalog import tables
from crmlake.catalog.registry import DAILY_BUILDS_SCHEMA
from crmlake.contracts.entities import ENTITIES, MONEY, cents, silver_schema

SUBSCRIBER_DAILY = "gold.subscriber_daily"
DAILY_BUILDS = "gold.subscriber_daily_builds"
# The silver tables a subscriber-day is built from (all partitioned by event_date).
DAILY_SOURCES = ("silver.usage", "silver.recharges", "silver.care_interactions", "silver.surveys")


# Score thresholds of the survey scales (industry conventions, not tunables).
CSAT_SATISFIED_MIN = 4  # CSAT 1-5: 4 and 5 are "satisfied"
NPS_PROMOTER_MIN = 9  # NPS 0-10: 9-10 promoters, 0-6 detractors, 7-8 passives
NPS_DETRACTOR_MAX = 6
BYTES_PER_MB = 1_000_000

# Columns of gold.subscriber_daily, in order, after the key (subscriber_key, date).
COUNT_COLUMNS = (
    "events",
    "out_events",
    "voice_out_calls",
    "voice_in_calls",
    "sms_out",
    "sms_in",
    "data_sessions",
    "vas_events",
    "on_net_out",
    "off_net_out",
    "intl_out",
    "roaming_events",
    "distinct_cells",
    "topup_count",
    "bill_count",
    "payment_count",
    "care_contacts",
    "complaints",
    "unresolved_contacts",
    "escalated_contacts",
    "fcr_contacts",
    "handle_time_s",
    "csat_answers",
    "csat_satisfied",
    "csat_score_sum",
    "nps_answers",
    "nps_promoters",
    "nps_detractors",
)
AMOUNT_COLUMNS = (
    "revenue_voice",
    "revenue_sms",
    "revenue_data",
    "revenue_vas",
    "revenue_usage",
    "topup_amount",
    "bill_amount",
    "payment_amount",
)


def _count_when(cond: Column) -> Column:
    return F.sum(F.when(cond, 1).otherwise(0)).cast("long")


def _sum_when(cond: Column, value: Column) -> Column:
    return F.coalesce(F.sum(F.when(cond, value)), F.lit(0))


def _cents_sum_when(cond: Column, value: Column) -> Column:
    """Sum of a money column in whole cents, as a long (see :func:`crmlake.contracts.entities.cents`)."""
    return F.sum(F.when(cond, cents(value)).otherwise(0))


def _money_from_cents(amount_cents: Column) -> Column:
    return (amount_cents.cast(T.DecimalType(20, 0)) / 100).cast(MONEY)


# Partial rows: each source is first aggregated to its own grain; amounts are whole cents
# (``*_cents``). ``subscriber_daily`` unions them and finishes with one aggregation.


def usage_per_cell(usage_df: DataFrame) -> DataFrame:
    """silver.usage rows → one row per (subscriber_key, date, cell_id) of usage measures.

    Kept per cell so that the final per-day aggregation counts distinct cells as rows with a
    cell, instead of a ``countDistinct`` inside the wide aggregate.
    """
    svc, out = F.col("service_type"), F.col("direction") == "out"
    voice, sms = svc == "voice", svc == "sms"
    talk_out = (voice | sms) & out
    charge = F.col("charge_amount")
    return usage_df.groupBy("subscriber_key", F.col("event_date").alias("date"), "cell_id").agg(
        F.count(F.lit(1)).alias("events"),
        _count_when(out).alias("out_events"),
        _count_when(voice & out).alias("voice_out_calls"),
        _count_when(voice & ~out).alias("voice_in_calls"),
        _sum_when(voice & out, F.col("duration_s")).alias("voice_out_s"),
        _sum_when(voice & ~out, F.col("duration_s")).alias("voice_in_s"),
        _count_when(sms & out).alias("sms_out"),
        _count_when(sms & ~out).alias("sms_in"),
        _count_when(svc == "data").alias("data_sessions"),
        _sum_when(svc == "data", F.col("bytes_up")).alias("bytes_up"),
        _sum_when(svc == "data", F.col("bytes_down")).alias("bytes_down"),
        _count_when(svc == "vas").alias("vas_events"),
        _count_when(talk_out & (F.col("destination_type") == "on_net")).alias("on_net_out"),
        _count_when(talk_out & (F.col("destination_type") == "off_net")).alias("off_net_out"),
        _count_when(talk_out & (F.col("destination_type") == "international")).alias("intl_out"),
        _count_when(F.col("is_roaming")).alias("roaming_events"),
        _cents_sum_when(voice, charge).alias("revenue_voice_cents"),
        _cents_sum_when(sms, charge).alias("revenue_sms_cents"),
        _cents_sum_when(svc == "data", charge).alias("revenue_data_cents"),
        _cents_sum_when(svc == "vas", charge).alias("revenue_vas_cents"),
    )


def recharges_daily(recharges_df: DataFrame) -> DataFrame:
    """silver.recharges → per subscriber-day top-ups, bills and payments (count, cents)."""
    kind = F.col("txn_type")
    return recharges_df.groupBy("subscriber_key", F.col("event_date").alias("date")).agg(
        *[
            agg
            for t in ("topup", "bill", "payment")
            for agg in (
                _count_when(kind == t).alias(f"{t}_count"),
                _cents_sum_when(kind == t, F.col("amount")).alias(f"{t}_amount_cents"),
            )
        ]
    )


def care_daily(care_df: DataFrame) -> DataFrame:
    """silver.care_interactions → per subscriber-day contacts, complaints, unresolved (known to
    be unresolved), escalated (level > 0), first-contact resolutions and handle time."""
    return care_df.groupBy("subscriber_key", F.col("event_date").alias("date")).agg(
        F.count(F.lit(1)).alias("care_contacts"),
        _count_when(F.col("is_complaint")).alias("complaints"),
        _count_when(~F.col("is_resolved")).alias("unresolved_contacts"),
        _count_when(F.col("escalation_level") > 0).alias("escalated_contacts"),
        _count_when(F.col("is_first_contact_resolution")).alias("fcr_contacts"),
        _sum_when(F.lit(True), F.col("handle_time_s")).cast("long").alias("handle_time_s"),
    )


def surveys_daily(surveys_df: DataFrame) -> DataFrame:
    """silver.surveys → per subscriber-day CSAT and NPS answers, and the day's last score of
    each (latest ``answered_at``; ties broken by survey_id so the result is deterministic)."""
    score, kind = F.col("score"), F.col("survey_type")
    csat, nps = kind == "csat", kind == "nps"
    order = F.struct("answered_at", "survey_id")
    return surveys_df.groupBy("subscriber_key", F.col("event_date").alias("date")).agg(
        _count_when(csat).alias("csat_answers"),
        _count_when(csat & (score >= CSAT_SATISFIED_MIN)).alias("csat_satisfied"),
        _sum_when(csat, score).cast("long").alias("csat_score_sum"),
        F.max_by(F.when(csat, score), F.when(csat, order)).cast("int").alias("csat_last"),
        _count_when(nps).alias("nps_answers"),
        _count_when(nps & (score >= NPS_PROMOTER_MIN)).alias("nps_promoters"),
        _count_when(nps & (score <= NPS_DETRACTOR_MAX)).alias("nps_detractors"),
        F.max_by(F.when(nps, score), F.when(nps, order)).cast("int").alias("nps_last"),
    )


def subscriber_daily(
    usage_df: DataFrame, recharges_df: DataFrame, care_df: DataFrame, surveys_df: DataFrame
) -> DataFrame:
    """The silver rows of some days → ``gold.subscriber_daily`` rows for those days.

    Inputs are silver tables (``subscriber_key``, ``event_date`` and their contract columns),
    already limited to the days wanted. Output: key (``subscriber_key``, ``date``), counts and
    amounts (zero when the source had nothing that day), minutes and MB, shares of outgoing
    voice/SMS by destination, ``csat_last``/``nps_last`` (null without an answer) and
    ``has_revenue_activity`` (outgoing usage, a top-up or a payment: what keeps a prepaid line
    alive under the inactivity churn rule).

    The per-source partial rows are unioned and summed in one aggregation per subscriber-day
    (one shuffle, where full outer joins of the four sources took three shuffles and sorts).
    """
    key = ["subscriber_key", "date"]
    parts_df = (
        usage_per_cell(usage_df)
        .unionByName(recharges_daily(recharges_df), allowMissingColumns=True)
        .unionByName(care_daily(care_df), allowMissingColumns=True)
        .unionByName(surveys_daily(surveys_df), allowMissingColumns=True)
    )
    summed = [c for c in parts_df.columns if c not in (*key, "cell_id", "csat_last", "nps_last")]
    filled_df = parts_df.groupBy(*key).agg(
        *[F.coalesce(F.sum(c), F.lit(0)).cast("long").alias(c) for c in summed],
        F.count("cell_id").alias("distinct_cells"),  # one usage row per cell; other sources have none
        F.max("csat_last").alias("csat_last"),  # only the surveys' row of the day carries it
        F.max("nps_last").alias("nps_last"),
    )
    in_cents = [c for c in summed if c.endswith("_cents")]
    filled_df = filled_df.withColumns({c.removesuffix("_cents"): _money_from_cents(F.col(c)) for c in in_cents})
    revenue_usage = F.col("revenue_voice") + F.col("revenue_sms") + F.col("revenue_data") + F.col("revenue_vas")
    filled_df = filled_df.withColumn("revenue_usage", revenue_usage.cast(MONEY))
    talk_out = F.col("voice_out_calls") + F.col("sms_out")
    return filled_df.select(
        *key,
        *COUNT_COLUMNS,
        *AMOUNT_COLUMNS,
        (F.col("voice_out_s") / 60.0).alias("voice_out_min"),
        (F.col("voice_in_s") / 60.0).alias("voice_in_min"),
        (F.col("bytes_up") / BYTES_PER_MB).alias("data_mb_up"),
        (F.col("bytes_down") / BYTES_PER_MB).alias("data_mb_down"),
        F.when(talk_out > 0, F.col("on_net_out") / talk_out).alias("on_net_share"),
        F.when(talk_out > 0, F.col("off_net_out") / talk_out).alias("off_net_share"),
        F.when(talk_out > 0, F.col("intl_out") / talk_out).alias("intl_share"),
        F.when(F.col("events") > 0, F.col("roaming_events") / F.col("events")).alias("roaming_share"),
        "csat_last",
        "nps_last",
        ((F.col("out_events") > 0) | (F.col("topup_count") > 0) | (F.col("payment_count") > 0)).alias(
            "has_revenue_activity"
        ),
    )


# ---------------------------------------------------------------------------------------------
# incremental bookkeeping


def source_fingerprints(spark: SparkSession, root: str, days: list[dt.date]) -> dict[dt.date, str]:
    """Per day, a hash of the names of the silver data files holding that day's partitions.

    The file lists come from the catalog (:func:`crmlake.catalog.tables.files_by_day`, the current
    snapshot's files of those partitions, from the table's log without reading data), so
    checking 90 days costs a few metadata reads, not a scan.
    """
    files: dict[dt.date, list[str]] = defaultdict(list)
    for name in DAILY_SOURCES:
        if not tables.exists(spark, root, name):
            continue
        for day, names in tables.files_by_day(spark, root, name, days).items():
            files[day] += [f"{name}/{file}" for file in names]
    return {d: hashlib.sha256("\n".join(sorted(files[d])).encode()).hexdigest() for d in days}


def sources_identity(spark: SparkSession, root: str) -> str:
    """What the silver sources are now: a hash of each one's latest commit (a log listing per
    table, no snapshot read). While it has not moved, no day's file list has changed."""
    parts = [f"{name}={tables.identity(spark, root, name)}" for name in DAILY_SOURCES]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass
class DailyPlan:
    """What :func:`refresh` does for some days: ``todo`` (missing or stale, with ``reasons``), the
    current ``fingerprints`` of every day, the ``sources`` identity they were taken at, and the
    days ``confirmed`` current by listing files since their last check."""

    todo: list[dt.date]
    fingerprints: dict[dt.date, str]
    reasons: dict[dt.date, str]
    sources: str
    confirmed: list[dt.date] = field(default_factory=list)


def days_to_build(spark: SparkSession, root: str, days: list[dt.date]) -> DailyPlan:
    """Which of ``days`` are missing from subscriber_daily or stale (their silver files changed
    since they were built). When every day was built or found current while the sources were
    what they are now, no file is listed."""
    sources = sources_identity(spark, root)  # taken first: a commit after it is seen next time
    built: dict[dt.date, tuple[str, str | None]] = {}
    if tables.exists(spark, root, DAILY_BUILDS):
        builds_df = tables.read(spark, root, DAILY_BUILDS)
        checked = F.col("sources_checked") if "sources_checked" in builds_df.columns else F.lit(None)
        lo, hi = min(days), max(days)
        for row in (
            builds_df.where(F.col("date").between(F.lit(lo), F.lit(hi)))
            .select("date", "source_fingerprint", checked.cast("string").alias("sources_checked"))
            .collect()
        ):
            built[row["date"]] = (row["source_fingerprint"], row["sources_checked"])
    if all(d in built and built[d][1] == sources for d in days):
        return DailyPlan([], {d: built[d][0] for d in days}, {}, sources)
    current = source_fingerprints(spark, root, days)
    reasons = {}
    for d in days:
        if d not in built:
            reasons[d] = "missing"
        elif built[d][0] != current[d]:
            reasons[d] = "stale"
    confirmed = [d for d in days if d not in reasons and built[d][1] != sources]
    return DailyPlan(sorted(reasons), current, reasons, sources, confirmed)


def silver_or_empty(spark: SparkSession, root: str, name: str) -> DataFrame:
    """A silver table, or an empty frame of its shape when nothing has arrived for it yet
    (e.g. no survey answer so far)."""
    if tables.exists(spark, root, name):
        return tables.read(spark, root, name)
    return spark.createDataFrame([], silver_schema(ENTITIES[name.split(".", 1)[1]]))


def read_sources_for(spark: SparkSession, root: str, days: list[dt.date]) -> dict[str, DataFrame]:
    """The silver source tables of subscriber_daily limited to ``days``."""
    return {name: silver_or_empty(spark, root, name).where(tables.days_scope(name, days)) for name in DAILY_SOURCES}


def build_days(spark: SparkSession, root: str, plan: DailyPlan, run_id: str) -> int:
    """(Re)build subscriber_daily for the plan's days in one pass and record the builds (and the
    days confirmed current). Returns rows written."""
    per_day: dict[dt.date, int] = {}
    if plan.todo:
        src = read_sources_for(spark, root, plan.todo)
        daily_df = subscriber_daily(
            src["silver.usage"], src["silver.recharges"], src["silver.care_interactions"], src["silver.surveys"]
        )
        tables.replace_days(daily_df, root, SUBSCRIBER_DAILY, plan.todo)
        # Rows per day for the registry, from the partitions just written (footers only).
        built_df = tables.read(spark, root, SUBSCRIBER_DAILY).where(tables.days_scope(SUBSCRIBER_DAILY, plan.todo))
        per_day = {r["date"]: r["count"] for r in built_df.groupBy("date").count().collect()}
    record_builds(spark, root, plan, per_day, run_id)
    return sum(per_day.values())


def record_builds(spark: SparkSession, root: str, plan: DailyPlan, per_day: dict[dt.date, int], run_id: str) -> None:
    """Record the built days (fingerprint, rows, run) and mark the confirmed ones as checked at
    the plan's source identity, in one commit."""
    if not plan.todo and not plan.confirmed:
        return
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    builds_df = spark.createDataFrame(
        [(d, plan.fingerprints[d], int(per_day.get(d, 0)), now, run_id, plan.sources) for d in plan.todo],
        DAILY_BUILDS_SCHEMA,
    )
    if not tables.exists(spark, root, DAILY_BUILDS):
        tables.create(builds_df.coalesce(1), root, DAILY_BUILDS)
        return
    tables.add_missing_columns(spark, root, DAILY_BUILDS)  # sources_checked, on a table of an earlier crmlake
    checked_df = spark.createDataFrame(
        [(d, None, None, None, None, plan.sources) for d in plan.confirmed], DAILY_BUILDS_SCHEMA
    )
    every = {c: f"s.{c}" for c in DAILY_BUILDS_SCHEMA.fieldNames()}
    tables.merge_actions(
        spark,
        builds_df.withColumn("is_built", F.lit(True)).unionByName(checked_df.withColumn("is_built", F.lit(False))),
        root,
        DAILY_BUILDS,
        on="t.date = s.date",
        updates=[("s.is_built", every), ("NOT s.is_built", {"sources_checked": "s.sources_checked"})],
        inserts=[("s.is_built", every)],
    )


def refresh(spark: SparkSession, root: str, days: list[dt.date], run_id: str) -> tuple[dict, dict[dt.date, str]]:
    """Make subscriber_daily current for ``days``: build what is missing or stale, reuse the
    rest. Returns what was done (for logs and run_log details) and every day's source
    fingerprint (what the snapshots that read those days depend on)."""
    plan = days_to_build(spark, root, days)
    rows = build_days(spark, root, plan, run_id)
    return {
        "days_needed": len(days),
        "days_built": len(plan.todo),
        "days_missing": sum(1 for r in plan.reasons.values() if r == "missing"),
        "days_stale": sum(1 for r in plan.reasons.values() if r == "stale"),
        "days_checked": len(plan.todo) + len(plan.confirmed),
        "rows_written": rows,
        "built": [d.isoformat() for d in plan.todo],
    }, plan.fingerprints
