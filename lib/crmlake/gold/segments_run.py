"""Orchestration of the segment job: for each snapshot date, read gold.features through the
catalog, label every subscriber (rules and clusters), and write gold.segments,
gold.segment_profiles and gold.segment_migration for that date only.

The cluster model lives in the MLflow registry (``segments.clusters.model_name``, alias
``segments.clusters.alias``). A run reuses the model the alias points at, so a subscriber whose
behaviour did not change keeps their cluster id from one snapshot to the next; it fits a new one
(k by silhouette on a sample, see :func:`crmlake.gold.segments.fit_clusters`) only when asked to
(``--refit``) or when there is none yet. A fitted model's cluster names are kept as tags of its
model version: names, like ids, stay as fitted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.core import tracking
from crmlake.core.errors import ConfigError, TableNotFoundError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import MlflowConfig
from crmlake.gold.features import FEATURES, lit_date
from crmlake.gold.segments import (
    CLUSTER_ID,
    NAMES_SCHEMA,
    SEGMENT_MIGRATION,
    SEGMENT_PROFILES,
    SEGMENTS,
    ClusterParams,
    SegmentParams,
    cluster_assignments,
    cluster_differences,
    cluster_names,
    fit_clusters,
    migration,
    profiles,
    require_columns,
    rule_segments,
    segments,
    top_differences,
)

JOB = "segment"
ARTIFACT = "segments"  # the model's name inside its MLflow run


@dataclass(frozen=True)
class ClusterModel:
    """A registered cluster pipeline and what it was fitted with."""

    model: PipelineModel
    version: str  # "<registered model>/<version>", as gold.segments and run_log record it
    names: dict[int, str]
    features: tuple[str, ...]
    log_features: tuple[str, ...]


def features_snapshot(spark: SparkSession, root: str, d: dt.date, columns: list[str]) -> tuple[DataFrame, int]:
    """The gold.features rows of ``d``, persisted (the rules, the percentiles, the model and the
    profiles all read them), and how many there are. TableNotFoundError (exit 5) when there are
    none; MissingColumnsError when the snapshot lacks ``columns``."""
    advice = f"run `crmlake features --date {d}` first"
    if not tables.exists(spark, root, FEATURES):
        raise TableNotFoundError(f"{FEATURES} does not exist yet at {tables.table_path(root, FEATURES)}: {advice}")
    snapshot_df = tables.read(spark, root, FEATURES).where(F.col("snapshot_date") == lit_date(d))
    require_columns(snapshot_df, columns, FEATURES)
    snapshot_df = snapshot_df.persist()
    rows = snapshot_df.count()
    if rows == 0:
        snapshot_df.unpersist()
        raise TableNotFoundError(f"{FEATURES} has no snapshot for {d} at {tables.table_path(root, FEATURES)}: {advice}")
    return snapshot_df, rows


def latest_snapshot(spark: SparkSession, root: str, on_or_before: dt.date) -> dt.date | None:
    """The latest snapshot date of gold.segments on or before ``on_or_before`` (None: none)."""
    if not tables.exists(spark, root, SEGMENTS):
        return None
    return (
        tables.read(spark, root, SEGMENTS)
        .where(F.col("snapshot_date") <= lit_date(on_or_before))
        .agg(F.max("snapshot_date"))
        .first()[0]
    )


def segments_as_of(
    spark: SparkSession, root: str, d: dt.date, columns: list[str]
) -> tuple[DataFrame | None, str | None]:
    """``columns`` of the latest gold.segments snapshot on or before ``d``, one row per
    subscriber (for the KPIs by segment); or None and the reason there is none."""
    found = latest_snapshot(spark, root, d)
    if found is None:
        return None, f"{SEGMENTS} has no snapshot on or before {d}"
    snapshot_df = tables.read(spark, root, SEGMENTS).where(F.col("snapshot_date") == lit_date(found))
    return snapshot_df.select("subscriber_key", *columns), None


# ---------------------------------------------------------------------------------------------
# the model in the MLflow registry


def _pip_requirements() -> list[str]:
    import pyspark

    return [f"pyspark=={pyspark.__version__}"]


def current_model(root: str, params: ClusterParams, mlflow_config: MlflowConfig) -> ClusterModel | None:
    """The model the registry alias points at, or None when there is none yet."""
    import mlflow
    from mlflow import MlflowClient

    tracking.use(root, mlflow_config, JOB)
    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{params.model_name}'"):
        return None
    if params.alias not in client.get_registered_model(params.model_name).aliases:
        return None
    version = client.get_model_version_by_alias(params.model_name, params.alias)
    tags = version.tags
    found = ClusterModel(
        model=mlflow.spark.load_model(f"models:/{params.model_name}@{params.alias}"),
        version=f"{params.model_name}/{version.version}",
        names={int(k): v for k, v in json.loads(tags["cluster_names"]).items()},
        features=tuple(json.loads(tags["features"])),
        log_features=tuple(json.loads(tags["log_features"])),
    )
    if (found.features, found.log_features) != (tuple(params.features), tuple(params.log_features)):
        raise ConfigError(
            f"segments model {found.version} was fitted on features {list(found.features)} (log "
            f"{list(found.log_features)}); segments.clusters now lists {list(params.features)} (log "
            f"{list(params.log_features)}): run `crmlake segment --refit` to fit a new model"
        )
    return found


def fit_and_register(
    spark: SparkSession,
    root: str,
    features_df: DataFrame,
    rows: int,
    d: dt.date,
    params: ClusterParams,
    mlflow_config: MlflowConfig,
    run_id: str,
) -> ClusterModel:
    """Choose k on a sample of ``features_df`` (the snapshot of ``d``, ``rows`` rows), name the
    clusters from their differences on the whole snapshot, log everything to one MLflow run,
    register the pipeline and point the alias at it."""
    import mlflow
    from mlflow import MlflowClient

    fraction = min(1.0, params.sample_size / rows)
    sample_df = (features_df.sample(fraction=fraction, seed=params.seed) if fraction < 1.0 else features_df).persist()
    try:
        sample_rows = sample_df.count()
        fit = fit_clusters(sample_df, params, sample_rows)
    finally:
        sample_df.unpersist()
    differences_df = cluster_differences(fit.model.transform(features_df), params.features).cache()  # k x features
    try:
        named = cluster_names(differences_df, params.features, shown=params.top_differences).collect()  # k rows
        sizes = {r[CLUSTER_ID]: r["subscribers"] for r in differences_df.collect()}
    finally:
        differences_df.unpersist()
    names = {r[CLUSTER_ID]: r["cluster_name"] for r in named}
    with tracking.run(root, mlflow_config, JOB, f"segments {d}", tags={"crmlake.run_id": run_id}):
        mlflow.log_params(
            {
                "snapshot_date": d.isoformat(),
                "features": json.dumps(list(params.features)),
                "log_features": json.dumps(list(params.log_features)),
                "k_min": params.k_min,
                "k_max": params.k_max,
                "sample_size": params.sample_size,
                "sample_rows": sample_rows,
                "seed": params.seed,
                "max_iter": params.max_iter,
            }
        )
        mlflow.log_metrics({f"silhouette_k{k}": s for k, s in fit.silhouettes.items()})
        mlflow.log_metrics({"chosen_k": fit.k, **{f"cluster_size_{i}": n for i, n in sizes.items()}})
        mlflow.log_dict(
            {
                "chosen_k": fit.k,
                "silhouettes": fit.silhouettes,
                "clusters": [
                    {"cluster_id": r[CLUSTER_ID], "name": r["cluster_name"], "subscribers": sizes.get(r[CLUSTER_ID]),
                     "top_differences": r["top_differences"]}
                    for r in sorted(named, key=lambda r: r[CLUSTER_ID])
                ],
            },
            "clusters.json",
        )  # fmt: skip
        # The Spark flavor still takes the artifact path positionally (no ``name=`` in this MLflow).
        logged = mlflow.spark.log_model(
            fit.model, ARTIFACT, registered_model_name=params.model_name, pip_requirements=_pip_requirements()
        )
    version = str(logged.registered_model_version)
    client = MlflowClient()
    tags = {
        "cluster_names": json.dumps({str(k): v for k, v in sorted(names.items())}),
        "features": json.dumps(list(params.features)),
        "log_features": json.dumps(list(params.log_features)),
        "fit_date": d.isoformat(),
        "chosen_k": str(fit.k),
    }
    for key, value in tags.items():
        client.set_model_version_tag(params.model_name, version, key, value)
    client.set_registered_model_alias(params.model_name, params.alias, version)
    log("segments model fitted", model=params.model_name, version=version, k=fit.k, names=json.dumps(names))
    return ClusterModel(fit.model, f"{params.model_name}/{version}", names, params.features, params.log_features)


# ---------------------------------------------------------------------------------------------
# one snapshot


def segment_snapshot(
    spark: SparkSession, root: str, d: dt.date, features_df: DataFrame, model: ClusterModel, params: SegmentParams
) -> dict:
    """Write the three tables for ``d``; returns what was done, for the run log."""
    done: dict = {}
    assigned_df = model.model.transform(features_df)
    names_df = spark.createDataFrame(sorted(model.names.items()), NAMES_SCHEMA)
    segments_df = segments(
        rule_segments(features_df, params), cluster_assignments(assigned_df, names_df), model.version
    )
    done[SEGMENTS] = tables.replace_days(segments_df, root, SEGMENTS, [d])

    written_df = tables.read(spark, root, SEGMENTS).where(F.col("snapshot_date") == lit_date(d))
    # Profiles describe each cluster as it is on this date; its name stays the fitted one.
    differences_df = cluster_differences(assigned_df, model.features)
    text_df = top_differences(differences_df, model.features, params.clusters.top_differences).join(
        names_df, on=CLUSTER_ID, how="inner"
    )
    profiles_df = profiles(written_df, features_df, text_df)
    done[SEGMENT_PROFILES] = tables.replace_days(profiles_df.coalesce(1), root, SEGMENT_PROFILES, [d])

    wanted = d - dt.timedelta(days=params.migration_gap_days)
    from_date = latest_snapshot(spark, root, wanted)
    if from_date is None:
        done["migration"] = f"no snapshot in {SEGMENTS} on or before {wanted}: no migration for {d}"
        log(done["migration"], date=d)
        return done
    from_df = tables.read(spark, root, SEGMENTS).where(F.col("snapshot_date") == lit_date(from_date))
    migration_df = migration(from_df, written_df, from_date, d, params.migration_schemes)
    done[SEGMENT_MIGRATION] = tables.replace_days(migration_df.coalesce(1), root, SEGMENT_MIGRATION, [d])
    done["migration_from"] = from_date
    return done


def run_segments(
    spark: SparkSession,
    root: str,
    dates: list[dt.date],
    params: SegmentParams,
    mlflow_config: MlflowConfig,
    refit: bool,
    run_id: str,
) -> JobOutcome:
    """Segment each snapshot date in order. The model is loaded (or, with ``refit`` or none
    registered, fitted on the first date) once and used for every date of the run."""
    out = JobOutcome()
    model: ClusterModel | None = None
    for d in sorted(dates):
        with stage("segments", date=d) as info:
            features_df, rows = features_snapshot(spark, root, d, list(params.clusters.features))
            try:
                out.rows_read += rows
                if model is None:
                    model = None if refit else current_model(root, params.clusters, mlflow_config)
                    if model is None:
                        with stage("segments model", date=d, refit=refit):
                            model = fit_and_register(
                                spark, root, features_df, rows, d, params.clusters, mlflow_config, run_id
                            )
                        out.details["fitted_on"] = d
                done = segment_snapshot(spark, root, d, features_df, model, params)
            finally:
                features_df.unpersist()
            info["rows"] = done[SEGMENTS]
            out.rows_written += sum(v for k, v in done.items() if k in (SEGMENTS, SEGMENT_PROFILES, SEGMENT_MIGRATION))
            out.tables.update(k for k in done if k in (SEGMENTS, SEGMENT_PROFILES, SEGMENT_MIGRATION))
            out.details[str(d)] = {"subscribers": rows, **{k: str(v) for k, v in done.items()}}
    out.model_version = model.version if model else None
    return out
