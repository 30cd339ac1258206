"""Lifetime value on Spark: the per-customer sufficient statistics of the models in
:mod:`crmlake.gold.clv_models`, compressed to the distinct combinations the likelihoods need, and
the per-customer predictions of the fitted models.

Non-contractual customers (prepaid top-ups, any transactions): as in the papers (and the
``lifetimes`` package), purchases on the same day — or, with ``merge="unit"``, in the same time
unit — are one transaction whose value is their sum; the first transaction opens the customer and
is not a repeat; ``frequency`` counts repeat transactions, ``recency`` is the time of the last
one and ``age`` (the papers' T) the time from the first to the calibration end, in time units
(days / 7 for weeks, as the BG/NBD paper's CDNOW data); the mean value is over repeat
transactions only.

Contractual customers (postpaid lines, any subscriptions): each customer's contract periods —
the period in which a lost customer ended (1 = did not renew at the first renewal), or the
renewals an active customer has made by the as-of date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.contracts.entities import cents
from crmlake.gold import clv_models

TIME_UNITS = ("day", "week", "month")
UNIT_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12}
# A month in time units, as lifetimes' customer_lifetime_value steps it (30 days, 4.345 weeks).
MONTH_IN_UNITS = {"day": 30.0, "week": 4.345, "month": 1.0}
PERIOD_MONTHS = {"month": 1, "year": 12}
STATISTICS = ("frequency", "recency", "age")


def _period(column: Column, unit: str) -> Column:
    """The start of the time unit holding ``column`` (a date)."""
    if unit == "day":
        return F.to_date(column)
    return F.to_date(F.date_trunc(unit, F.to_date(column)))


def _units_between(start: Column, end: Column, unit: str) -> Column:
    """Whole time units from period ``start`` to period ``end`` (both period starts)."""
    if unit == "day":
        return F.datediff(end, start)
    if unit == "week":
        return (F.datediff(end, start) / 7).cast("int")
    return F.months_between(end, start).cast("int")


def _check(unit: str, merge: str) -> None:
    if unit not in TIME_UNITS:
        raise ValueError(f"time unit must be one of {TIME_UNITS}, got {unit!r}")
    if merge not in ("day", "unit"):
        raise ValueError(f"merge must be 'day' or 'unit', got {merge!r}")


def merged_transactions(transactions_df: DataFrame, unit: str, merge: str, customer: str) -> DataFrame:
    """One row per customer and merged transaction: ``period`` (its day, or its time unit's
    start) and ``value_cents``."""
    _check(unit, merge)
    grain = "day" if merge == "day" else unit
    return transactions_df.groupBy(customer, _period(F.col("time"), grain).alias("period")).agg(
        F.sum(cents(F.col("amount"))).alias("value_cents")
    )


def _elapsed(start: Column, end: Column, unit: str, merge: str) -> Column:
    if merge == "day":
        return F.datediff(end, start) / F.lit(UNIT_DAYS[unit])
    return _units_between(start, end, unit).cast("double")


def rfm_statistics(
    transactions_df: DataFrame,
    calibration_end: dt.date,
    unit: str = "day",
    customer: str = "customer_id",
    merge: str = "unit",
) -> DataFrame:
    """Per customer with a transaction on or before ``calibration_end``: ``frequency``,
    ``recency``, ``age`` (in ``unit``s) and ``monetary_value`` (mean of repeat transactions;
    0 without one).

    Requires ``customer``, ``time`` (date or timestamp) and ``amount`` (numeric) columns.
    """
    end = F.lit(calibration_end).cast("date")
    merged_df = merged_transactions(transactions_df.where(F.to_date("time") <= end), unit, merge, customer)
    per_customer_df = merged_df.groupBy(customer).agg(
        F.min("period").alias("first_period"),
        F.max("period").alias("last_period"),
        F.count(F.lit(1)).alias("units"),
        F.sum("value_cents").alias("total_cents"),
        F.min_by("value_cents", "period").alias("first_cents"),
    )
    repeats = F.col("units") - 1
    end_period = end if merge == "day" else _period(end, unit)
    return per_customer_df.select(
        customer,
        repeats.cast("long").alias("frequency"),
        _elapsed(F.col("first_period"), F.col("last_period"), unit, merge).alias("recency"),
        _elapsed(F.col("first_period"), end_period, unit, merge).alias("age"),
        F.when(repeats > 0, (F.col("total_cents") - F.col("first_cents")) / repeats / 100.0)
        .otherwise(F.lit(0.0))
        .alias("monetary_value"),
    )


def holdout_statistics(
    transactions_df: DataFrame,
    calibration_end: dt.date,
    holdout_end: dt.date,
    unit: str = "day",
    customer: str = "customer_id",
    merge: str = "unit",
) -> DataFrame:
    """Per customer: ``holdout_transactions`` (merged as in calibration) and ``holdout_value``
    after ``calibration_end`` up to ``holdout_end``. With ``merge="unit"`` the unit holding the
    calibration end belongs to calibration."""
    end = F.lit(calibration_end).cast("date")
    in_holdout_df = transactions_df.where(F.to_date("time") <= F.lit(holdout_end).cast("date"))
    merged_df = merged_transactions(in_holdout_df, unit, merge, customer)
    after = F.col("period") > (end if merge == "day" else _period(end, unit))
    return (
        merged_df.where(after)
        .groupBy(customer)
        .agg(
            F.count(F.lit(1)).alias("holdout_transactions"),
            (F.sum("value_cents") / 100.0).alias("holdout_value"),
        )
    )


def holdout_length(calibration_end: dt.date, holdout_end: dt.date, unit: str, merge: str) -> float:
    """The holdout's length in time units, as :func:`holdout_statistics` counts it."""
    if merge == "day" or unit == "day":
        return (holdout_end - calibration_end).days / (UNIT_DAYS[unit] if merge == "day" else 1.0)
    if unit == "week":  # Spark's weeks start on Monday
        monday = holdout_end - dt.timedelta(days=holdout_end.weekday())
        return float((monday - (calibration_end - dt.timedelta(days=calibration_end.weekday()))).days // 7)
    return float((holdout_end.year - calibration_end.year) * 12 + holdout_end.month - calibration_end.month)


def compressed_statistics(statistics_df: DataFrame) -> DataFrame:
    """The distinct (frequency, recency, age) with how many customers share each: all the BG/NBD
    likelihood needs, and far fewer rows than customers."""
    return statistics_df.groupBy(*STATISTICS).agg(F.count(F.lit(1)).alias("customers"))


def compressed_values(statistics_df: DataFrame) -> DataFrame:
    """The distinct (frequency, monetary_value) of customers with a repeat transaction, counted:
    what the Gamma-Gamma likelihood needs."""
    return (
        statistics_df.where((F.col("frequency") > 0) & (F.col("monetary_value") > 0))
        .groupBy("frequency", "monetary_value")
        .agg(F.count(F.lit(1)).alias("customers"))
    )


# ---------------------------------------------------------------------------------------------
# Scoring the non-contractual models


def probability_alive(params: dict[str, float]) -> Column:
    """P(alive | x, t_x, T) of BG/NBD (FHL 2005, eq. 12) as a column expression: 1 for a
    customer without a repeat transaction."""
    r, alpha, a, b = (params[k] for k in clv_models.BGNBD_PARAMS)
    x, t_x, age = F.col("frequency"), F.col("recency"), F.col("age")
    odds = F.lit(a) / (F.lit(b) + x - 1) * F.pow((F.lit(alpha) + age) / (F.lit(alpha) + t_x), F.lit(r) + x)
    return F.when(x > 0, 1.0 / (1.0 + odds)).otherwise(F.lit(1.0))


def expected_value(params: dict[str, float]) -> Column:
    """E[M | x, m̄] of Gamma-Gamma (FHL 2005b, eq. 5): the population mean (x = 0) shrunk towards
    the customer's own mean."""
    p, q, gamma = (params[k] for k in clv_models.GAMMA_GAMMA_PARAMS)
    x, m = F.col("frequency").cast("double"), F.col("monetary_value")
    return (F.lit(gamma) + x * m) * F.lit(p) / (F.lit(p) * x + F.lit(q) - 1)


def transaction_forecasts(
    combos_df: DataFrame,
    params: dict[str, float],
    horizons: dict[str, float],
    clv_months: tuple[int, ...],
    month_units: float,
    monthly_discount: float,
) -> DataFrame:
    """Per distinct (frequency, recency, age): ``expected_transactions_<name>`` over each horizon
    (in time units) and ``discounted_transactions_<M>m``, the transactions expected in each of
    the next M months discounted to today — Σₘ (E[Y(m)] − E[Y(m−1)]) / (1+d)ᵐ, the monthly
    steps of lifetimes' ``customer_lifetime_value``.

    E[Y(t) | x, t_x, T] needs the Gaussian hypergeometric function 2F1, which Spark has no
    built-in for: it runs in pandas (scipy) over the distinct combinations — far fewer than
    customers — in parallel across the cluster, and the caller joins the result back.
    """
    names = [f"expected_transactions_{n}" for n in horizons] + [f"discounted_transactions_{m}m" for m in clv_months]
    schema = T.StructType(
        [T.StructField(c, T.LongType() if c == "frequency" else T.DoubleType()) for c in STATISTICS]
        + [T.StructField(n, T.DoubleType()) for n in names]
    )
    last_month = max(clv_months)

    def forecast(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            x, t_x, age = (pdf[c].to_numpy(dtype=float) for c in STATISTICS)
            out = pdf[list(STATISTICS)].copy()
            for name, t in horizons.items():
                out[f"expected_transactions_{name}"] = clv_models.bgnbd_expected_transactions(params, t, x, t_x, age)
            before, discounted = np.zeros(len(pdf)), np.zeros(len(pdf))
            for month in range(1, last_month + 1):
                now = clv_models.bgnbd_expected_transactions(params, month * month_units, x, t_x, age)
                discounted += (now - before) / (1 + monthly_discount) ** month
                before = now
                if month in clv_months:
                    out[f"discounted_transactions_{month}m"] = discounted.copy()
            yield out

    return combos_df.select(*STATISTICS).distinct().mapInPandas(forecast, schema)


def with_transaction_predictions(
    statistics_df: DataFrame,
    bgnbd: dict[str, float],
    gamma_gamma: dict[str, float] | None,
    horizons_days: tuple[int, ...],
    clv_months: tuple[int, ...],
    unit: str,
    annual_discount: float,
    margin: float,
) -> DataFrame:
    """Adds ``probability_alive``, ``expected_transactions_<h>d``, ``expected_value`` and
    ``expected_spend_<h>d`` (value unknown without a Gamma-Gamma fit), ``clv_<M>m`` (margin ×
    expected value × discounted transactions) to per-customer statistics."""
    horizons = {f"{h}d": h / UNIT_DAYS[unit] for h in horizons_days}
    monthly = (1 + annual_discount) ** (1 / 12) - 1
    forecasts_df = transaction_forecasts(statistics_df, bgnbd, horizons, clv_months, MONTH_IN_UNITS[unit], monthly)
    value = expected_value(gamma_gamma) if gamma_gamma else F.lit(None).cast("double")
    joined_df = statistics_df.join(forecasts_df, on=list(STATISTICS), how="left")
    return joined_df.select(
        *statistics_df.columns,
        probability_alive(bgnbd).alias("probability_alive"),
        *[F.col(f"expected_transactions_{h}") for h in horizons],
        value.alias("expected_value"),
        *[(F.col(f"expected_transactions_{h}") * value).alias(f"expected_spend_{h}") for h in horizons],
        *[(F.col(f"discounted_transactions_{m}m") * value * F.lit(margin)).alias(f"clv_{m}m") for m in clv_months],
    )


# ---------------------------------------------------------------------------------------------
# Contracts


def contract_statistics(
    subscriptions_df: DataFrame, as_of: dt.date, period: str, observed_from: dt.date | None = None
) -> DataFrame:
    """Per subscription started on or before ``as_of``: ``is_active`` (no end, or an end after
    ``as_of``), ``lost_period`` (the period t = 1, 2, … in which a lost customer's contract ended:
    an end within the first period, up to the first renewal date, is t = 1) and ``renewals``
    (periods completed by an active customer, each a renewal made), and ``entered``: renewals
    made before ``observed_from``, the day the data begins (0 without it, or for contracts started
    since) — a customer who was already there when the data began was seen because they had not
    yet left.

    Requires ``start`` and ``end`` (dates; ``end`` null while active) and keeps every other
    column.
    """
    months = PERIOD_MONTHS[period]
    day = F.lit(as_of).cast("date")
    ended = F.col("end").isNotNull() & (F.col("end") <= day)
    lived = F.months_between(F.col("end"), F.col("start")) / months
    elapsed = F.months_between(day, F.col("start")) / months
    others = [c for c in subscriptions_df.columns if c not in ("start", "end")]
    if observed_from is None:
        entered = F.lit(0)
    else:
        before = F.months_between(F.lit(observed_from).cast("date"), F.col("start")) / months
        entered = F.greatest(F.floor(before), F.lit(0))
    return subscriptions_df.where(F.col("start") <= day).select(
        *others,
        "start",
        F.when(ended, F.col("end")).alias("end"),
        (~ended).alias("is_active"),
        F.when(ended, F.greatest(F.ceil(lived), F.lit(1)).cast("int")).alias("lost_period"),
        F.when(~ended, F.floor(elapsed).cast("int")).alias("renewals"),
        entered.cast("int").alias("entered"),
    )


def compressed_contracts(contracts_df: DataFrame, group: str) -> DataFrame:
    """Per ``group``: customers lost in each period and active after each number of renewals,
    by the renewals made before they were first seen — the whole sBG likelihood of that group."""
    periods = F.coalesce("lost_period", "renewals")
    return contracts_df.groupBy(
        group,
        "is_active",
        periods.alias("periods"),
        # Seen alive after `entered` renewals: a lost contract had made at most periods - 1.
        F.least(F.col("entered"), F.when(F.col("is_active"), periods).otherwise(periods - 1)).alias("entered"),
    ).agg(F.count(F.lit(1)).alias("customers"))


def sbg_projections(
    fits: dict[str, dict[str, float]],
    renewals: dict[str, list[int]],
    clv_periods: dict[str, int],
    discount: float,
) -> pd.DataFrame:
    """Per group and renewals made: ``retention_next_period``, ``derl`` (Fader & Hardie 2010: the
    discounted expected number of renewals still to come, the next one undiscounted) and the
    discounted expected renewals within each CLV horizon (``renewals_<name>``, summed as DERL's
    first terms). Small (groups × distinct ages) and computed where 2F1 is: on the driver."""
    rows = []
    for group, params in fits.items():
        alpha, beta = params["alpha"], params["beta"]
        longest = max(clv_periods.values())
        for r in renewals.get(group, []):
            path = clv_models.sbg_retention_path(alpha, beta, r, longest)
            weights = path / (1 + discount) ** np.arange(longest)
            row = {
                "group": group,
                "renewals": int(r),
                "retention_next_period": float(path[0]),
                "derl": float(clv_models.sbg_derl(alpha, beta, r, discount)),
            }
            row.update({f"renewals_{name}": float(weights[:k].sum()) for name, k in clv_periods.items()})
            rows.append(row)
    return pd.DataFrame(rows)
