"""``crmlake measure``: the lift of campaign lists whose outcome window has closed, into
gold.campaign_results.

Reads the lists of the campaigns asked for from gold.campaign_targets (the newest run of each
list), their churn labels at the publish date, revenue and activity around it from
gold.subscriber_daily, the campaign's contacts from silver.campaign_responses and the segment
labels of the newest gold.segments snapshot on or before the publish date; computes
:mod:`crmlake.publish.measure`'s rows and replaces exactly the rows of the lists measured.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.core.errors import ConfigError, OutcomeNotKnownError, TableNotFoundError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import MeasureConfig
from crmlake.gold.segments import SCHEMES, SEGMENTS
from crmlake.publish.measure import (
    filter_newest_run,
    outcome_known_on,
    results,
    segment_labels_as_of,
    with_breakdowns,
    with_outcomes,
)

CAMPAIGN_RESULTS = "gold.campaign_results"
CAMPAIGN_TARGETS = "gold.campaign_targets"
CHURN_LABELS = "gold.churn_labels"
SUBSCRIBER_DAILY = "gold.subscriber_daily"
CAMPAIGN_RESPONSES = "silver.campaign_responses"
# The job that writes each input, for the message when it is missing.
WRITTEN_BY = {
    CAMPAIGN_TARGETS: "crmlake publish",
    CHURN_LABELS: "crmlake features",
    SUBSCRIBER_DAILY: "crmlake features",
    CAMPAIGN_RESPONSES: "crmlake ingest (campaign_responses)",
}


@dataclass
class MeasureOutcome(JobOutcome):
    """A run's counts, and the lists it measured (campaign, publish date): the job's event dates."""

    measured: list[tuple[str, dt.date]] = field(default_factory=list)


def require(spark: SparkSession, root: str, names) -> None:
    """Every input table exists, or a :class:`TableNotFoundError` naming each missing one and
    the job that writes it."""
    missing = [n for n in names if not tables.exists(spark, root, n)]
    if missing:
        listed = "; ".join(f"{n} (written by `{WRITTEN_BY[n]}`)" for n in missing)
        raise TableNotFoundError(f"measure reads tables that do not exist under {root}: {listed}")


def lists_to_measure(
    listed: list[tuple[str, dt.date]], campaigns: list[str], d: dt.date, horizon_days: int
) -> tuple[list[tuple[str, dt.date]], list[str]]:
    """The lists (campaign, publish date) whose outcome window has closed by ``d``, and a line
    for each that has not, naming the day its outcome becomes known. Raises
    :class:`ConfigError` for a campaign without any list, :class:`OutcomeNotKnownError` when no
    list can be measured yet."""
    unlisted = sorted(set(campaigns) - {c for c, _ in listed})
    if unlisted:
        raise ConfigError(f"--campaign {unlisted}: no list of it in {CAMPAIGN_TARGETS} (run `crmlake publish`)")
    ready = sorted(x for x in listed if outcome_known_on(x[1], horizon_days) <= d)
    pending = [
        f"{c} of {p}: outcome known on {outcome_known_on(p, horizon_days)} (publish date + "
        f"labels.campaign_horizon_days, {horizon_days})"
        for c, p in sorted(listed)
        if (c, p) not in ready
    ]
    if not ready:
        raise OutcomeNotKnownError(f"no list's outcome is known by {d}, nothing measured: " + "; ".join(pending))
    return ready, pending


def require_labels(spark: SparkSession, root: str, ready: list[tuple[str, dt.date]], horizon_days: int) -> None:
    """The churn labels of every publish date to measure are written, or an
    :class:`OutcomeNotKnownError` naming the dates and the run that writes them."""
    dates = sorted({p for _, p in ready})
    found = {
        r[0]
        for r in tables.read(spark, root, CHURN_LABELS)
        .where(F.expr(tables.days_scope(CHURN_LABELS, dates, horizon_days=horizon_days)))
        .select("snapshot_date")
        .distinct()
        .collect()
    }
    absent = [p for p in dates if p not in found]
    if absent:
        advice = ", ".join(f"`crmlake features --date {outcome_known_on(p, horizon_days)}`" for p in absent)
        raise OutcomeNotKnownError(
            f"{CHURN_LABELS} has no labels at snapshot(s) {[str(p) for p in absent]} (horizon {horizon_days} days): "
            f"the outcome is not known yet; once the data up to the end of the window is ingested, run {advice}"
        )


def schemes_to_break_down(spark: SparkSession, root: str, params: MeasureConfig) -> list[str]:
    """The segment schemes asked for (``publish.measure.segment_schemes``, or every one
    gold.segments holds). Named schemes that gold.segments lacks are a :class:`ConfigError`."""
    if not tables.exists(spark, root, SEGMENTS):
        if params.segment_schemes:
            raise TableNotFoundError(
                f"publish.measure.segment_schemes names {list(params.segment_schemes)} but {SEGMENTS} does not "
                "exist (run `crmlake segment`)"
            )
        return []
    present = set(tables.read(spark, root, SEGMENTS).columns)
    if params.segment_schemes:
        lacking = [s for s in params.segment_schemes if s not in present]
        if lacking:
            raise ConfigError(f"publish.measure.segment_schemes: {SEGMENTS} has no scheme(s) {lacking}")
        return list(params.segment_schemes)
    return [s for s in SCHEMES if s in present]


def read_targets(spark: SparkSession, root: str, campaigns: list[str]) -> DataFrame:
    """The campaigns' rows of gold.campaign_targets with ``_written_at``, the modification time
    of the data file that holds each row (for :func:`filter_newest_run`)."""
    return (
        tables.read(spark, root, CAMPAIGN_TARGETS)
        .where(F.col("campaign_id").isin(campaigns))
        .withColumn("_written_at", F.col("_metadata.file_modification_time"))
    )


def measure(
    spark: SparkSession,
    root: str,
    d: dt.date,
    campaigns: list[str],
    params: MeasureConfig,
    horizon_days: int,
    run_id: str,
) -> MeasureOutcome:
    out = MeasureOutcome()
    require(spark, root, [CAMPAIGN_TARGETS, CHURN_LABELS, SUBSCRIBER_DAILY, CAMPAIGN_RESPONSES])
    targets_df = read_targets(spark, root, campaigns)
    listed = [(r[0], r[1]) for r in targets_df.select("campaign_id", "publish_date").distinct().collect()]
    ready, pending = lists_to_measure(listed, campaigns, d, horizon_days)
    require_labels(spark, root, ready, horizon_days)
    schemes = schemes_to_break_down(spark, root, params)
    if pending:
        out.details["pending"] = pending
        log("lists not measured yet: " + "; ".join(pending))

    scope = tables.any_of(
        *[
            tables.where(campaign_id=c, publish_date=[p for cc, p in ready if cc == c])
            for c in sorted({c for c, _ in ready})
        ]
    )
    with stage("campaign results", campaigns=campaigns, date=d) as info:
        list_df = filter_newest_run(targets_df.where(F.expr(scope)))
        first, last = min(p for _, p in ready), max(p for _, p in ready)
        daily_df = tables.read(spark, root, SUBSCRIBER_DAILY).where(
            F.col("date").between(first - dt.timedelta(days=horizon_days - 1), last + dt.timedelta(days=horizon_days))
        )
        labels_df = tables.read(spark, root, CHURN_LABELS).where(
            F.expr(tables.days_scope(CHURN_LABELS, sorted({p for _, p in ready}), horizon_days=horizon_days))
        )
        responses_df = tables.read(spark, root, CAMPAIGN_RESPONSES).where(
            F.col("campaign_id").isin(campaigns) & (F.col("event_date") >= F.lit(first))
        )
        units_df = with_outcomes(list_df, labels_df, daily_df, responses_df, horizon_days)
        segment_df = None
        if schemes:
            segment_df = segment_labels_as_of(tables.read(spark, root, SEGMENTS), list_df, schemes)
        units_df = with_breakdowns(units_df, segment_df, schemes).localCheckpoint()
        out.rows_read = units_df.count()
        results_df = results(
            units_df, horizon_days, d, run_id, params.confidence, params.min_group_size
        ).localCheckpoint()
        out.rows_written = tables.replace_where(results_df, root, CAMPAIGN_RESULTS, scope)
        info.update(lists=len(ready), targets=out.rows_read, rows=out.rows_written)
    out.tables.add(CAMPAIGN_RESULTS)
    out.measured = ready
    out.details["measured"] = [f"{c} of {p}" for c, p in ready]
    out.details["segment_schemes"] = schemes
    out.message = f"measured {len(ready)} list(s)" + (f"; not yet: {'; '.join(pending)}" if pending else "")
    return out
