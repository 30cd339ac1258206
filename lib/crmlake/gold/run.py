"""Orchestration of the Customer 360 jobs: which days and tables a run needs, reading them,
calling the pure transformations (``daily``, ``features``, ``labels``, ``kpis``) and writing
exactly the partitions of the dates asked for.

A run for date ``D`` touches only what ``D`` needs: the subscriber-days of its windows are
(re)built when missing or stale (``daily.refresh``), everything else is reused.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property, reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.core.log import stage
from crmlake.core.outcome import JobOutcome
from crmlake.gold import daily
from crmlake.gold.builds import SNAPSHOT_BUILDS, SnapshotBuilds, input_fingerprint
from crmlake.gold.features import FEATURES, FeatureParams, features_at
from crmlake.gold.kpis import (
    COHORT_RETENTION,
    KPIS,
    SEGMENT_DIMENSIONS,
    KpiParams,
    cohort_retention,
    kpis_for,
    kpis_scope,
    periods_for,
)
from crmlake.gold.labels import CHURN_LABELS, LabelParams, churn_labels
from crmlake.gold.segments import SEGMENTS
from crmlake.gold.segments_run import segments_as_of

SUBSCRIBERS = "silver.subscribers"
NETWORK = "silver.network_cells"
CARE = "silver.care_interactions"
# Snapshots of one table (features, labels, a date's KPIs, cohort retention) computed in one
# query and written in one commit: a commit and its bookkeeping cost about as much as a small
# snapshot's rows (a 28-day range of 500 subscribers, labels included: 150 s one commit per
# snapshot, 101 s eight per commit). All 28 in one query was slower again: the plan grows with
# every snapshot it unites.
SNAPSHOTS_PER_WRITE = 8


def day_range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def label_snapshot(d: dt.date, labels: LabelParams) -> dt.date:
    """The snapshot whose label (of ``labels.horizon_days``) becomes observable with the data of ``d``."""
    return d - dt.timedelta(days=labels.horizon_days)


def daily_days_for_features(snapshots: list[dt.date], params: FeatureParams, labels: LabelParams) -> list[dt.date]:
    """Every subscriber-day that the features of ``snapshots`` and their due labels read."""
    days: set[dt.date] = set()
    for s in snapshots:
        days.update(day_range(s - dt.timedelta(days=params.lookback_days - 1), s))
        for h in labels.horizons:
            at = labels.at_horizon(h)
            days.update(day_range(*at.daily_range(label_snapshot(s, at))))
    return sorted(days)


class Inputs:
    """The tables a snapshot reads, opened (and the first extract's date queried) only when a
    snapshot is computed: a run that writes nothing reads none of them."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark, self.root = spark, root

    @cached_property
    def history(self) -> DataFrame:
        return tables.read(self.spark, self.root, SUBSCRIBERS)

    @cached_property
    def daily(self) -> DataFrame:
        return tables.read(self.spark, self.root, daily.SUBSCRIBER_DAILY)

    @cached_property
    def network(self) -> DataFrame:
        return daily.silver_or_empty(self.spark, self.root, NETWORK)

    @cached_property
    def care(self) -> DataFrame:
        return daily.silver_or_empty(self.spark, self.root, CARE)

    @cached_property
    def first_extract(self) -> dt.date | None:
        """The first day a subscriber master extract covers (None: none yet)."""
        return self.history.agg(F.min("valid_from")).first()[0]


def run_features(
    spark: SparkSession,
    root: str,
    snapshots: list[dt.date],
    params: FeatureParams,
    labels: LabelParams,
    run_id: str,
) -> JobOutcome:
    """Refresh the subscriber-days the snapshots need, then write each snapshot's features and
    the labels that have become observable (snapshot ``s - horizon`` for each ``s``). A snapshot
    whose inputs did not change since it was written is left as it is
    (:mod:`crmlake.gold.builds`). The snapshots to write are computed :data:`SNAPSHOTS_PER_WRITE`
    at a time, in one query and one commit per table."""
    out = JobOutcome()
    identities = {SUBSCRIBERS: tables.required_identity(spark, root, SUBSCRIBERS)}  # exit 5 before ingest
    with stage("subscriber_daily", snapshots=f"{snapshots[0]}..{snapshots[-1]}") as info:
        refreshed, fingerprints = daily.refresh(spark, root, daily_days_for_features(snapshots, params, labels), run_id)
        info.update({k: v for k, v in refreshed.items() if k != "built"})
    out.details["subscriber_daily"] = refreshed
    out.rows_written += refreshed["rows_written"]
    if refreshed["days_checked"]:
        out.tables.update({daily.SUBSCRIBER_DAILY, daily.DAILY_BUILDS})
    builds = SnapshotBuilds(spark, root, [FEATURES, CHURN_LABELS], run_id)
    identities[NETWORK] = tables.identity(spark, root, NETWORK)
    inputs = Inputs(spark, root)
    unchanged: list[str] = []
    due_features: list[tuple[dt.date, str]] = []  # (snapshot, input fingerprint)
    due_labels: dict[int, list[tuple[dt.date, str]]] = {}  # by horizon
    for s in snapshots:
        window = day_range(s - dt.timedelta(days=params.lookback_days - 1), s)
        fingerprint = input_fingerprint(FEATURES, s, "", fingerprints, window, identities, [params])
        if builds.is_current(FEATURES, s, "", fingerprint):
            unchanged.append(f"{FEATURES} {s}")
        else:
            due_features.append((s, fingerprint))
        for h in labels.horizons:  # the churn model's horizon and the campaigns' outcome window
            at = labels.at_horizon(h)
            ls, scope = label_snapshot(s, at), f"horizon_days={h}"
            fingerprint = input_fingerprint(
                CHURN_LABELS, ls, scope, fingerprints, day_range(*at.daily_range(ls)), identities, [at]
            )
            if builds.is_current(CHURN_LABELS, ls, scope, fingerprint):
                unchanged.append(f"{CHURN_LABELS} {ls} {scope}")
            elif inputs.first_extract is None or ls < inputs.first_extract:
                builds.record(CHURN_LABELS, ls, scope, fingerprint, 0)  # no master known on that day: nobody to label
            else:
                due_labels.setdefault(h, []).append((ls, fingerprint))
    for due in batches(due_features):
        dates = [s for s, _ in due]
        with stage("features", dates=_dates_text(dates)) as info:
            at_each = [
                features_at(inputs.daily, inputs.history, inputs.network, s, params, inputs.first_extract)
                for s in dates
            ]
            info["rows"] = _write_snapshots(spark, union_all(at_each), root, FEATURES, due, builds, "")
            out.rows_written += info["rows"]
            out.tables.add(FEATURES)
    for h, due_at in due_labels.items():
        at = labels.at_horizon(h)
        for due in batches(due_at):
            dates = [ls for ls, _ in due]
            with stage("churn_labels", snapshots=_dates_text(dates), horizon_days=h) as info:
                at_each = [
                    churn_labels(inputs.history, inputs.daily.where(F.col("date").between(*at.daily_range(ls))), ls, at)
                    for ls in dates
                ]
                scope = f"horizon_days={h}"
                info["rows"] = _write_snapshots(
                    spark, union_all(at_each), root, CHURN_LABELS, due, builds, scope, horizon_days=h
                )
                out.rows_written += info["rows"]
                out.tables.add(CHURN_LABELS)
    if builds.commit():
        out.tables.add(SNAPSHOT_BUILDS)
    out.details["snapshots_unchanged"] = unchanged
    return out


def batches(due: list) -> list[list]:
    """``due`` in runs of at most :data:`SNAPSHOTS_PER_WRITE` (read when called)."""
    size = SNAPSHOTS_PER_WRITE
    return [due[i : i + size] for i in range(0, len(due), size)]


def union_all(dfs: list[DataFrame]) -> DataFrame:
    """The rows of every frame of ``dfs`` (same columns, matched by name)."""
    return reduce(DataFrame.unionByName, dfs)


def _dates_text(dates: list[dt.date]) -> str:
    return str(dates[0]) if len(dates) == 1 else f"{len(dates)} dates {dates[0]}..{dates[-1]}"


def _write_kpis(
    spark: SparkSession,
    df: DataFrame,
    root: str,
    due: list[tuple[dt.date, tuple[str, ...], list[tuple[dt.date, str, str]]]],
    builds: SnapshotBuilds,
) -> int:
    """Write the KPI rows of the dates ``due`` (date, its periods, its build keys) in one commit
    and record each date's builds with the rows written for that date. Returns the rows written."""
    scope = tables.any_of(*[kpis_scope(d, periods) for d, periods, _ in due])
    written = tables.replace_where(df, root, KPIS, scope)
    if len(due) == 1:
        by_date = {due[0][0]: written}
    else:
        counted = {
            (r["period"], r["period_start"]): r["count"]
            for r in tables.read(spark, root, KPIS).where(scope).groupBy("period", "period_start").count().collect()
        }
        by_date = {
            d: sum(counted.get((period, start), 0) for period, start, _ in periods_for(d) if period in periods)
            for d, periods, _ in due
        }
    for d, _, keys in due:
        for key in keys:
            builds.record(KPIS, *key, by_date[d])
    return written


def _write_snapshots(
    spark: SparkSession,
    df: DataFrame,
    root: str,
    name: str,
    due: list[tuple[dt.date, str]],
    builds: SnapshotBuilds,
    scope: str,
    **equals,
) -> int:
    """Write the snapshots ``due`` (date, input fingerprint) of ``df`` in one commit and record
    each one's build with its own row count. Returns the rows written."""
    dates = [d for d, _ in due]
    written = tables.replace_days(df, root, name, dates, **equals)
    rows = tables.rows_by_day(spark, root, name, dates, **equals) if len(dates) > 1 else {dates[0]: written}
    for d, fingerprint in due:
        builds.record(name, d, scope, fingerprint, rows.get(d, 0))
    return written


def run_kpis(spark: SparkSession, root: str, dates: list[dt.date], params: KpiParams, run_id: str) -> JobOutcome:
    """For each date: refresh the subscriber-days of its month to date, then write its daily
    and month-to-date KPI rows and the cohort retention as known on that date. Segment
    dimensions take each subscriber's segment from the latest gold.segments snapshot on or
    before the date; without one, their rows are not produced and the details say why.

    The month-to-date rows of a month are written by the last date of that month in ``dates``
    (each date's would replace the one before). A date whose rows were written from the same
    inputs is left as it is (:mod:`crmlake.gold.builds`); the others are computed and written
    :data:`SNAPSHOTS_PER_WRITE` dates at a time, in one query and one commit per table."""
    out = JobOutcome()
    identities = {SUBSCRIBERS: tables.required_identity(spark, root, SUBSCRIBERS)}  # exit 5 before ingest
    needed = sorted({day for d in dates for _, start, end in periods_for(d) for day in day_range(start, end)})
    with stage("subscriber_daily", dates=f"{dates[0]}..{dates[-1]}") as info:
        refreshed, fingerprints = daily.refresh(spark, root, needed, run_id)
        info.update({k: v for k, v in refreshed.items() if k != "built"})
    out.details["subscriber_daily"] = refreshed
    out.rows_written += refreshed["rows_written"]
    if refreshed["days_checked"]:
        out.tables.update({daily.SUBSCRIBER_DAILY, daily.DAILY_BUILDS})
    builds = SnapshotBuilds(spark, root, [KPIS, COHORT_RETENTION], run_id)
    by_segment = [dim for dim in params.dimensions if dim in SEGMENT_DIMENSIONS]
    if by_segment:
        identities[SEGMENTS] = tables.identity(spark, root, SEGMENTS)
    inputs = Inputs(spark, root)
    last_of_month = {d.replace(day=1): d for d in sorted(dates)}
    unchanged = []
    due_kpis: list[tuple[dt.date, tuple[str, ...], list[tuple[dt.date, str, str]]]] = []  # date, periods, keys
    due_cohorts: list[tuple[dt.date, str]] = []  # (date, input fingerprint)
    for d in dates:
        month_start = d.replace(day=1)
        periods = ("day", "month") if last_of_month[month_start] == d else ("day",)
        fingerprint = input_fingerprint(KPIS, d, "", fingerprints, day_range(month_start, d), identities, [params])
        # the day's rows are recorded under the day, the month to date's under the month's first
        # day, with the fingerprint of the date they were computed as of
        keys = [(d if period == "day" else month_start, period, fingerprint) for period in periods]
        if all(builds.is_current(KPIS, *key) for key in keys):
            unchanged.append(f"{KPIS} {d}")
        else:
            due_kpis.append((d, periods, keys))
        fingerprint = input_fingerprint(
            COHORT_RETENTION, d, "", {}, [], {SUBSCRIBERS: identities[SUBSCRIBERS]}, [params]
        )
        if builds.is_current(COHORT_RETENTION, d, "", fingerprint):
            unchanged.append(f"{COHORT_RETENTION} {d}")
        else:
            due_cohorts.append((d, fingerprint))
    for due in batches(due_kpis):
        with stage("kpis", dates=_dates_text([d for d, _, _ in due])) as info:
            at_each = []
            for d, periods, _ in due:
                segments_df, missing = segments_as_of(spark, root, d, by_segment) if by_segment else (None, None)
                if missing:
                    said = f"{missing}: no KPIs by {by_segment}"
                    out.details.setdefault("segment_dimensions_skipped", {})[str(d)] = said
                    info.setdefault("skipped", {})[str(d)] = said
                month_start = d.replace(day=1)
                at_each.append(
                    kpis_for(
                        inputs.history,
                        inputs.daily.where(F.col("date").between(month_start, d)),
                        inputs.care.where(F.col("event_date").between(month_start, d)),
                        d,
                        params,
                        segments_df,
                    ).where(F.col("period").isin(*periods))
                )
            info["rows"] = _write_kpis(spark, union_all(at_each).coalesce(1), root, due, builds)
            out.rows_written += info["rows"]
            out.tables.add(KPIS)
    for due in batches(due_cohorts):
        with stage("cohort_retention", dates=_dates_text([d for d, _ in due])) as info:
            at_each = [cohort_retention(inputs.history, d, params.cohort_months) for d, _ in due]
            info["rows"] = _write_snapshots(
                spark, union_all(at_each).coalesce(1), root, COHORT_RETENTION, due, builds, ""
            )
            out.rows_written += info["rows"]
            out.tables.add(COHORT_RETENTION)
    if builds.commit():
        out.tables.add(SNAPSHOT_BUILDS)
    out.details["snapshots_unchanged"] = unchanged
    return out
