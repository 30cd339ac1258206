"""Orchestration of the Customer 360 jobs: which days and tables a run needs, reading them,
calling the pure transformations (``daily``, ``features``, ``labels``, ``kpis``) and writing
exactly the partitions of the dates asked for.

A run for date ``D`` touches only what ``D`` needs: the subscriber-days of its windows are
(re)built when missing or stale (``daily.refresh``), everything else is reused.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.core.log import stage
from crmlake.core.outcome import JobOutcome
from crmlake.gold import daily
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
from crmlake.gold.segments_run import segments_as_of

SUBSCRIBERS = "silver.subscribers"
NETWORK = "silver.network_cells"
CARE = "silver.care_interactions"


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


def _history(spark: SparkSession, root: str) -> DataFrame:
    return tables.read(spark, root, SUBSCRIBERS)  # TableNotFoundError (exit 5) before ingest


def run_features(
    spark: SparkSession,
    root: str,
    snapshots: list[dt.date],
    params: FeatureParams,
    labels: LabelParams,
    run_id: str,
) -> JobOutcome:
    """Refresh the subscriber-days the snapshots need, then write each snapshot's features and
    the labels that have become observable (snapshot ``s - horizon`` for each ``s``)."""
    out = JobOutcome()
    history_df = _history(spark, root)
    with stage("subscriber_daily", snapshots=f"{snapshots[0]}..{snapshots[-1]}") as info:
        refreshed = daily.refresh(spark, root, daily_days_for_features(snapshots, params, labels), run_id)
        info.update({k: v for k, v in refreshed.items() if k != "built"})
    out.details["subscriber_daily"] = refreshed
    out.rows_written += refreshed["rows_written"]
    if refreshed["days_built"]:
        out.tables.update({daily.SUBSCRIBER_DAILY, daily.DAILY_BUILDS})
    daily_df = tables.read(spark, root, daily.SUBSCRIBER_DAILY)
    network_df = daily.silver_or_empty(spark, root, NETWORK)
    first_extract = history_df.agg(F.min("valid_from")).first()[0]
    for s in snapshots:
        with stage("features", date=s) as info:
            features_df = features_at(daily_df, history_df, network_df, s, params, first_extract)
            tables.replace_days(features_df, root, FEATURES, [s])
            info["rows"] = tables.last_operation_rows(spark, root, FEATURES)
            out.rows_written += info["rows"]
            out.tables.add(FEATURES)
        for h in labels.horizons:  # the churn model's horizon and the campaigns' outcome window
            at = labels.at_horizon(h)
            ls = label_snapshot(s, at)
            if first_extract is None or ls < first_extract:
                continue  # no master known on that day: nobody to label
            with stage("churn_labels", snapshot=ls, horizon_days=h) as info:
                lo, hi = at.daily_range(ls)
                labels_df = churn_labels(history_df, daily_df.where(F.col("date").between(lo, hi)), ls, at)
                tables.replace_days(labels_df, root, CHURN_LABELS, [ls], horizon_days=h)
                info["rows"] = tables.last_operation_rows(spark, root, CHURN_LABELS)
                out.rows_written += info["rows"]
                out.tables.add(CHURN_LABELS)
    return out


def run_kpis(spark: SparkSession, root: str, dates: list[dt.date], params: KpiParams, run_id: str) -> JobOutcome:
    """For each date: refresh the subscriber-days of its month to date, then write its daily
    and month-to-date KPI rows and the cohort retention as known on that date. Segment
    dimensions take each subscriber's segment from the latest gold.segments snapshot on or
    before the date; without one, their rows are not produced and the details say why."""
    out = JobOutcome()
    history_df = _history(spark, root)
    needed = sorted({day for d in dates for _, start, end in periods_for(d) for day in day_range(start, end)})
    with stage("subscriber_daily", dates=f"{dates[0]}..{dates[-1]}") as info:
        refreshed = daily.refresh(spark, root, needed, run_id)
        info.update({k: v for k, v in refreshed.items() if k != "built"})
    out.details["subscriber_daily"] = refreshed
    out.rows_written += refreshed["rows_written"]
    if refreshed["days_built"]:
        out.tables.update({daily.SUBSCRIBER_DAILY, daily.DAILY_BUILDS})
    daily_df = tables.read(spark, root, daily.SUBSCRIBER_DAILY)
    care_df = daily.silver_or_empty(spark, root, CARE)
    by_segment = [dim for dim in params.dimensions if dim in SEGMENT_DIMENSIONS]
    for d in dates:
        month_start = d.replace(day=1)
        segments_df, missing = segments_as_of(spark, root, d, by_segment) if by_segment else (None, None)
        if missing:
            out.details.setdefault("segment_dimensions_skipped", {})[str(d)] = f"{missing}: no KPIs by {by_segment}"
        with stage("kpis", date=d) as info:
            if missing:
                info["skipped"] = f"{missing}: no KPIs by {by_segment}"
            kpis_df = kpis_for(
                history_df,
                daily_df.where(F.col("date").between(month_start, d)),
                care_df.where(F.col("event_date").between(month_start, d)),
                d,
                params,
                segments_df,
            )
            tables.replace_where(kpis_df.coalesce(1), root, KPIS, kpis_scope(d))
            info["rows"] = tables.last_operation_rows(spark, root, KPIS)
            out.rows_written += info["rows"]
        with stage("cohort_retention", date=d) as info:
            cohorts_df = cohort_retention(history_df, d, params.cohort_months)
            tables.replace_days(cohorts_df.coalesce(1), root, COHORT_RETENTION, [d])
            info["rows"] = tables.last_operation_rows(spark, root, COHORT_RETENTION)
            out.rows_written += info["rows"]
    out.tables.update({KPIS, COHORT_RETENTION})
    return out
