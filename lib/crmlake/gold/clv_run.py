"""The lifetime-value run: read the inputs (the operator's tables, or a team's own), fit BG/NBD +
Gamma-Gamma on the compressed statistics of every customer and sBG per cohort × plan, score every
customer on Spark, compare with the holdout where the data reaches past the calibration end, and
write ``gold.clv``, ``gold.clv_models`` and ``gold.clv_validation`` (scoped to the source and
date, so a rerun replaces exactly its own rows), with the fits and the report in MLflow.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import CLV_MODELS_SCHEMA, CLV_VALIDATION_SCHEMA
from crmlake.core import tracking
from crmlake.core.errors import ConfigError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import ClvConfig, MlflowConfig
from crmlake.gold import clv, clv_models, clv_sources

CLV = "gold.clv"
CLV_MODELS = "gold.clv_models"
CLV_VALIDATION = "gold.clv_validation"
OPERATOR = "operator"
ALL = "all"


@dataclass
class Inputs:
    source: str
    transactions_df: DataFrame | None
    subscriptions_df: DataFrame | None
    score_df: DataFrame | None  # customers to score (the operator's base); None: everyone
    observed_from: dt.date | None = None  # the day the subscriptions data begins (left truncation)


def _fit_row(source, as_of, fit: clv_models.Fit, group, distinct, unit, used, run_id, survival=None) -> dict:
    return {
        "source": source,
        "calibration_end": as_of,
        "model": fit.model,
        "group": group,
        "params": fit.params,
        "log_likelihood": fit.log_likelihood if np.isfinite(fit.log_likelihood) else None,
        "customers": fit.customers,
        "distinct_statistics": int(distinct),
        "time_unit": unit,
        "converged": bool(fit.converged),
        "is_used": bool(used),
        "message": fit.message,
        "survival": survival,
        "run_id": run_id,
    }


def read_inputs(spark: SparkSession, root: str, as_of: dt.date, config: ClvConfig) -> Inputs:
    """Bring-your-own sections when config names them (only those models run), else the
    operator's silver tables."""
    if config.transactions or config.subscriptions:
        tx, subs = config.transactions, config.subscriptions
        source = ";".join(s.path for s in (tx, subs) if s)
        return Inputs(
            source=source,
            transactions_df=clv_sources.byo_transactions(tables.read_external(spark, tx.path, tx.format), tx)
            if tx
            else None,
            subscriptions_df=clv_sources.byo_subscriptions(tables.read_external(spark, subs.path, subs.format), subs)
            if subs
            else None,
            score_df=None,
        )
    history_df = tables.read(spark, root, "silver.subscribers")  # exit 5 before any ingest
    recharges_df = tables.read(spark, root, "silver.recharges")
    months = clv.PERIOD_MONTHS[config.period]
    return Inputs(
        source=OPERATOR,
        transactions_df=clv_sources.operator_transactions(history_df, recharges_df, as_of),
        subscriptions_df=clv_sources.operator_subscriptions(history_df, recharges_df, as_of, config.cohort_by, months),
        score_df=clv_sources.in_base(history_df, as_of),
        observed_from=history_df.agg(F.min("valid_from")).first()[0],
    )


def _scored(df: DataFrame, score_df: DataFrame | None) -> DataFrame:
    return df if score_df is None else df.join(score_df, on="customer_id", how="left_semi")


def _predicts(params: dict[str, float], combos: pd.DataFrame, horizon: float) -> bool:
    """Whether a fit gives finite predictions for every customer: a fit that ran to a boundary
    (r → ∞ on a few days of data) can be a maximum and still overflow 2F1."""
    with np.errstate(all="ignore"):
        expected = clv_models.bgnbd_expected_transactions(
            params, horizon, combos["frequency"], combos["recency"], combos["age"]
        )
        alive = clv_models.bgnbd_probability_alive(params, combos["frequency"], combos["recency"], combos["age"])
    return bool(np.all(np.isfinite(expected)) and np.all(np.isfinite(alive)))


def fit_transactions(
    tx_df: DataFrame, as_of: dt.date, config: ClvConfig, source: str, run_id: str
) -> tuple[DataFrame | None, list[dict], dict]:
    """Statistics → compressed → BG/NBD and Gamma-Gamma fits → per-customer statistics with
    predictions (None when BG/NBD did not converge: an unconverged fit is never used)."""
    stats_df = clv.rfm_statistics(tx_df, as_of, config.time_unit, "customer_id", config.merge).cache()
    combos = clv.compressed_statistics(stats_df).toPandas()
    if combos.empty:
        return None, [], {"customers": 0}
    opts = {"penalty": config.penalty, "tolerance": config.tolerance, "max_iter": config.max_iter}
    bg = clv_models.fit_bgnbd(combos["frequency"], combos["recency"], combos["age"], combos["customers"], **opts)
    bg_ok = bg.converged and _predicts(bg.params, combos, max(config.horizons_days) / clv.UNIT_DAYS[config.time_unit])
    if bg.converged and not bg_ok:
        bg = dataclasses.replace(bg, message=f"predictions are not finite at these parameters; {bg.message}")
    values = clv.compressed_values(stats_df).toPandas()
    gg = None
    if len(values) >= 2:
        gg = clv_models.fit_gamma_gamma(values["frequency"], values["monetary_value"], values["customers"], **opts)
        # E[M] needs q > 1: a fit without it has no mean value to use.
        gg_ok = gg.converged and gg.params["q"] > 1
    else:
        gg_ok = False
    rows = [_fit_row(source, as_of, bg, ALL, len(combos), config.time_unit, bg_ok, run_id)]
    if gg:
        rows.append(_fit_row(source, as_of, gg, ALL, len(values), config.time_unit, bg_ok and gg_ok, run_id))
    details = {"customers": int(combos["customers"].sum()), "distinct_statistics": len(combos), "bgnbd": bg.params}
    if not bg_ok:
        log(f"BG/NBD not used ({bg.message}): no transaction-model predictions written", job="clv")
        return None, rows, details
    predicted_df = clv.with_transaction_predictions(
        stats_df,
        bg.params,
        gg.params if gg_ok else None,
        config.horizons_days,
        config.clv_months,
        config.time_unit,
        config.discount_rate_annual,
        config.margin,
    )
    model = "bgnbd+gamma_gamma" if gg_ok else "bgnbd"
    return predicted_df.withColumn("model", F.lit(model)).withColumn("group", F.lit(ALL)), rows, details


def fit_contracts(
    subs_df: DataFrame,
    as_of: dt.date,
    config: ClvConfig,
    source: str,
    run_id: str,
    observed_from: dt.date | None = None,
) -> tuple[DataFrame | None, list[dict], dict]:
    """Contract periods → sBG per group (and over all customers when there are several groups)
    → the active customers with retention, DERL and CLV from their group's fit, or the overall
    fit where their group is small or did not converge."""
    spark = subs_df.sparkSession
    contracts_df = clv.contract_statistics(subs_df, as_of, config.period, observed_from).cache()
    counts = clv.compressed_contracts(contracts_df, "group").toPandas()
    if counts.empty:
        return None, [], {"customers": 0}
    opts = {"penalty": config.penalty, "tolerance": 1e-12 if config.tolerance < 1e-12 else config.tolerance}

    def fit(frame: pd.DataFrame) -> clv_models.Fit:
        return clv_models.fit_sbg_observations(
            frame["periods"], frame["is_active"], frame["entered"], frame["customers"], max_iter=config.max_iter, **opts
        )

    groups = {g: frame for g, frame in counts.groupby("group")}
    fits: dict[str, clv_models.Fit] = {g: fit(frame) for g, frame in groups.items()}
    if len(groups) > 1:
        fits[ALL] = fit(counts)
    sizes = {g: int(frame["customers"].sum()) for g, frame in groups.items()}
    sizes[ALL] = int(counts["customers"].sum())
    usable = {g for g, f in fits.items() if f.converged and sizes[g] >= config.min_group_customers}
    if len(groups) == 1:
        usable |= {g for g, f in fits.items() if f.converged}  # one group: it is everybody
    scoring = {g: (g if g in usable else ALL) for g in groups}
    scoring = {g: s for g, s in scoring.items() if s in usable}
    horizon = 24 if config.period == "month" else 5
    rows = [
        _fit_row(
            source,
            as_of,
            f,
            g,
            len(groups.get(g, counts)),
            config.period,
            g in scoring.values(),
            run_id,
            [float(v) for v in clv_models.sbg_survival(f.params["alpha"], f.params["beta"], horizon)]
            if f.converged
            else None,
        )
        for g, f in fits.items()
    ]
    details = {
        "customers": sizes[ALL],
        "groups": len(groups),
        "groups_scored_by_all": sum(1 for g, s in scoring.items() if s != g),
    }
    for g, f in fits.items():
        if not f.converged:
            log(f"sBG for group {g} did not converge ({f.message}): not used", job="clv")
    if not scoring:
        return None, rows, details
    months = clv.PERIOD_MONTHS[config.period]
    clv_periods = {f"{m}m": max(1, m // months) for m in config.clv_months}
    discount = (1 + config.discount_rate_annual) ** (months / 12) - 1
    active_df = contracts_df.where("is_active").withColumn(
        "fit_group", F.element_at(F.create_map(*[F.lit(x) for kv in scoring.items() for x in kv]), F.col("group"))
    )
    renewals = active_df.groupBy("fit_group", "renewals").count().toPandas()
    needed = {s: sorted(int(r) for r in renewals.loc[renewals["fit_group"] == s, "renewals"]) for s in usable}
    projections = clv.sbg_projections({s: fits[s].params for s in usable}, needed, clv_periods, discount)
    projections_df = spark.createDataFrame(projections).withColumnRenamed("group", "fit_group")
    scored_df = active_df.join(F.broadcast(projections_df), on=["fit_group", "renewals"], how="left")
    return (
        scored_df.select(
            "customer_id",
            F.lit("sbg").alias("model"),
            F.col("fit_group").alias("group"),
            "renewals",
            F.lit(1.0).alias("probability_alive"),
            "retention_next_period",
            "derl",
            (F.col("amount") * F.lit(config.margin) * F.col("derl")).alias("residual_value"),
            *[
                (F.col("amount") * F.lit(config.margin) * F.col(f"renewals_{name}")).alias(f"clv_{name}")
                for name in clv_periods
            ],
        ),
        rows,
        details,
    )


def clv_columns(config: ClvConfig) -> list[tuple[str, str]]:
    """gold.clv's columns: one set for every model, unknown where a model has no such quantity."""
    horizons = [f"{h}d" for h in config.horizons_days]
    return [
        ("customer_id", "string"),
        ("model", "string"),
        ("group", "string"),
        ("frequency", "long"),
        ("recency", "double"),
        ("age", "double"),
        ("monetary_value", "double"),
        ("renewals", "int"),
        ("probability_alive", "double"),
        *[(f"expected_transactions_{h}", "double") for h in horizons],
        ("expected_value", "double"),
        *[(f"expected_spend_{h}", "double") for h in horizons],
        ("retention_next_period", "double"),
        ("derl", "double"),
        ("residual_value", "double"),
        *[(f"clv_{m}m", "double") for m in config.clv_months],
    ]


def _conform(df: DataFrame, columns: list[tuple[str, str]], source: str, as_of: dt.date) -> DataFrame:
    present = set(df.columns)
    return df.select(
        F.lit(source).alias("source"),
        F.lit(as_of).cast("date").alias("as_of_date"),
        F.col("customer_id").alias("subscriber_key"),
        *[(F.col(c) if c in present else F.lit(None)).cast(t).alias(c) for c, t in columns if c != "customer_id"],
    )


def validate_holdout(
    tx_df: DataFrame,
    predicted_df: DataFrame,
    as_of: dt.date,
    holdout_end: dt.date,
    bgnbd: dict[str, float],
    config: ClvConfig,
    source: str,
) -> tuple[list[dict], dict]:
    """Predicted against actual repeat transactions in (calibration end, holdout end]: over all
    customers, per frequency bucket, and each customer's error."""
    length = clv.holdout_length(as_of, holdout_end, config.time_unit, config.merge)
    actual_df = clv.holdout_statistics(tx_df, as_of, holdout_end, config.time_unit, "customer_id", config.merge)
    forecasts_df = clv.transaction_forecasts(
        predicted_df, bgnbd, {"holdout": length}, (1,), clv.MONTH_IN_UNITS[config.time_unit], 0.0
    ).select(*clv.STATISTICS, F.col("expected_transactions_holdout").alias("predicted"))
    compared_df = (
        predicted_df.select("customer_id", *clv.STATISTICS)
        .join(forecasts_df, on=list(clv.STATISTICS), how="left")
        .join(actual_df, on="customer_id", how="left")
        .select(
            "frequency",
            "predicted",
            F.coalesce("holdout_transactions", F.lit(0)).cast("double").alias("actual"),
        )
    )
    bounds = config.frequency_buckets
    bucket = F.lit(f"{bounds[-1]}+")
    for lo, hi in reversed(list(zip(bounds, bounds[1:], strict=False))):
        label = str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}"
        bucket = F.when((F.col("frequency") >= lo) & (F.col("frequency") < hi), F.lit(label)).otherwise(bucket)
    error = F.col("predicted") - F.col("actual")
    measures = [
        F.count(F.lit(1)).alias("customers"),
        F.sum("predicted").alias("predicted"),
        F.sum("actual").alias("actual"),
        F.avg(F.abs(error)).alias("mean_absolute_error"),
        F.sqrt(F.avg(error * error)).alias("rmse"),
    ]
    overall = compared_df.agg(*measures).first().asDict()
    by_bucket = (
        compared_df.where(F.col("frequency") >= bounds[0]).groupBy(bucket.alias("bucket")).agg(*measures).collect()
    )
    base = {"source": source, "calibration_end": as_of, "holdout_end": holdout_end}
    rows = [{**base, "report": "overall", "bucket": "all", **overall}]
    rows += [{**base, "report": "frequency", **r.asDict()} for r in sorted(by_bucket, key=lambda r: r["bucket"])]
    metrics = {
        "holdout_length": length,
        "holdout_predicted": overall["predicted"],
        "holdout_actual": overall["actual"],
        "holdout_mae": overall["mean_absolute_error"],
        "holdout_rmse": overall["rmse"],
    }
    return rows, metrics


def cumulative_tracking(
    tx_df: DataFrame, as_of: dt.date, holdout_end: dt.date, bgnbd: dict[str, float], config: ClvConfig
) -> pd.DataFrame:
    """Per day from the first purchase to the holdout end: cumulative repeat transactions, actual
    and as BG/NBD expects them of customers who made their first purchase by the calibration end
    (Σ over first-purchase days n_f · E[X(t − f)], FHL 2005 eq. 9). Small: days × first days."""
    merged_df = clv.merged_transactions(
        tx_df.where(F.to_date("time") <= F.lit(holdout_end)), config.time_unit, "day", "customer_id"
    )
    first_df = merged_df.groupBy("customer_id").agg(F.min("period").alias("first"))
    cohort_df = first_df.where(F.col("first") <= F.lit(as_of))
    firsts = cohort_df.groupBy("first").count().toPandas()
    repeats = (
        merged_df.join(cohort_df, on="customer_id", how="inner")
        .where(F.col("period") > F.col("first"))
        .groupBy("period")
        .count()
        .toPandas()
    )
    start = min(firsts["first"])
    days = pd.date_range(start, holdout_end, freq="D").date
    actual = pd.Series(0.0, index=days)
    for period, n in zip(repeats["period"], repeats["count"], strict=True):
        actual[period] += n
    elapsed = (
        np.array([[(d - f).days for f in firsts["first"]] for d in days], dtype=float) / clv.UNIT_DAYS[config.time_unit]
    )
    expected = clv_models.bgnbd_unconditional_expected(bgnbd, np.clip(elapsed, 0, None))
    predicted = (expected * firsts["count"].to_numpy()[None, :]).sum(axis=1)
    return pd.DataFrame({"date": days, "actual": actual.cumsum().to_numpy(), "predicted": predicted})


def plot_tracking(tracking_df: pd.DataFrame, as_of: dt.date, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(tracking_df["date"], tracking_df["actual"], label="actual", color="black")
    ax.plot(tracking_df["date"], tracking_df["predicted"], label="BG/NBD", color="tab:blue", linestyle="--")
    ax.axvline(as_of, color="grey", linestyle=":", label="calibration end")
    ax.set_ylabel("cumulative repeat transactions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_clv(
    spark: SparkSession, root: str, as_of: dt.date, config: ClvConfig, mlflow_config: MlflowConfig, run_id: str
) -> JobOutcome:
    out = JobOutcome()
    inputs = read_inputs(spark, root, as_of, config)
    columns = clv_columns(config)
    parts: list[DataFrame] = []
    fit_rows: list[dict] = []
    validation_rows: list[dict] = []
    metrics: dict[str, float] = {}
    tracking_df = None
    if inputs.transactions_df is not None:
        tx_df = inputs.transactions_df.cache()
        with stage("clv_transactions", date=as_of) as info:
            predicted_df, rows, details = fit_transactions(tx_df, as_of, config, inputs.source, run_id)
            fit_rows += rows
            info.update({k: v for k, v in details.items() if k != "bgnbd"})
            out.details["transactions"] = details
        if predicted_df is not None:
            predicted_df = predicted_df.cache()
            parts.append(_conform(_scored(predicted_df, inputs.score_df), columns, inputs.source, as_of))
            last = tx_df.agg(F.max(F.to_date("time"))).first()[0]
            if last is not None and last > as_of:
                with stage("clv_holdout", calibration_end=as_of, holdout_end=last):
                    bg = rows[0]["params"]
                    validation_rows, metrics = validate_holdout(
                        tx_df, predicted_df, as_of, last, bg, config, inputs.source
                    )
                    tracking_df = cumulative_tracking(tx_df, as_of, last, bg, config)
    if inputs.subscriptions_df is not None:
        with stage("clv_contracts", date=as_of) as info:
            scored_df, rows, details = fit_contracts(
                inputs.subscriptions_df, as_of, config, inputs.source, run_id, inputs.observed_from
            )
            fit_rows += rows
            info.update(details)
            out.details["subscriptions"] = details
        if scored_df is not None:
            parts.append(_conform(_scored(scored_df, inputs.score_df), columns, inputs.source, as_of))
    if not fit_rows:
        raise ConfigError(f"clv: nothing to fit on {as_of}: no transactions or subscriptions on or before it")

    models_df = spark.createDataFrame(fit_rows, CLV_MODELS_SCHEMA)
    out.rows_written += tables.replace_days(models_df.coalesce(1), root, CLV_MODELS, [as_of], source=inputs.source)
    out.tables.add(CLV_MODELS)
    if parts:
        clv_df = parts[0]
        for part in parts[1:]:
            clv_df = clv_df.unionByName(part)
        with stage("clv_write", date=as_of) as info:
            info["rows"] = tables.replace_days(clv_df, root, CLV, [as_of], source=inputs.source)
            out.rows_written += info["rows"]
            out.tables.add(CLV)
    if validation_rows:
        validation_df = spark.createDataFrame(validation_rows, CLV_VALIDATION_SCHEMA)
        out.rows_written += tables.replace_days(
            validation_df.coalesce(1), root, CLV_VALIDATION, [as_of], source=inputs.source
        )
        out.tables.add(CLV_VALIDATION)
    out.details["fits"] = [
        {k: r[k] for k in ("model", "group", "params", "converged", "is_used", "customers")} for r in fit_rows
    ]
    _track(root, mlflow_config, as_of, inputs.source, fit_rows, metrics, validation_rows, tracking_df, run_id)
    return out


def _track(root, mlflow_config, as_of, source, fit_rows, metrics, validation_rows, tracking_df, run_id) -> None:
    """One MLflow run per CLV run: every fit's parameters and log-likelihood, the holdout
    report and the cumulative-transactions plot."""
    import mlflow

    tags = {"crmlake.run_id": run_id, "crmlake.source": source, "crmlake.calibration_end": str(as_of)}
    with tracking.run(root, mlflow_config, "clv", f"clv {as_of}", tags):
        for row in fit_rows[:50]:  # the overall fits, and the first groups: the table holds them all
            prefix = re.sub(r"[^A-Za-z0-9_.\- /]", "_", f"{row['model']}.{row['group']}")
            mlflow.log_params({f"{prefix}.{k}": round(v, 8) for k, v in row["params"].items()})
            if row["log_likelihood"] is not None:
                mlflow.log_metric(f"{prefix}.log_likelihood", row["log_likelihood"])
        mlflow.log_metric("fits", len(fit_rows))
        mlflow.log_metric("fits_converged", sum(r["converged"] for r in fit_rows))
        if metrics:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        with tempfile.TemporaryDirectory() as folder:
            report = Path(folder) / "holdout.json"
            if validation_rows:
                report.write_text(json.dumps(validation_rows, default=str, indent=1))
                mlflow.log_artifact(str(report))
            if tracking_df is not None:
                plot = Path(folder) / "cumulative_repeat_transactions.png"
                plot_tracking(tracking_df, as_of, plot)
                mlflow.log_artifact(str(plot))
                tracking_df.to_csv(Path(folder) / "cumulative_repeat_transactions.csv", index=False)
                mlflow.log_artifact(str(Path(folder) / "cumulative_repeat_transactions.csv"))
