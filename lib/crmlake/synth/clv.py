"""Customers drawn from the lifetime-value models with known parameters, on Spark, to show that
the fits recover them (and to benchmark the fits at operator scale).

Each partition draws its customers with numpy from a generator seeded by the run's seed and the
partition's first id, so a simulation is the same on any cluster. Times are recorded to the day,
as real transaction data is: a customer's age is a whole number of days and the time of the last
purchase is rounded to its day.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

STATISTICS_SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.LongType()),
        T.StructField("frequency", T.LongType()),
        T.StructField("recency", T.DoubleType()),
        T.StructField("age", T.DoubleType()),
        T.StructField("monetary_value", T.DoubleType()),
    ]
)


def _bgnbd_gamma_gamma(ids: np.ndarray, rng: np.random.Generator, bgnbd, gamma_gamma, days: int, unit_days: float):
    n = len(ids)
    r, alpha, a, b = bgnbd
    age_days = rng.integers(1, days + 1, n)  # acquired on one of the observation window's days
    age = age_days / unit_days
    rate = rng.gamma(r, 1.0 / alpha, n)  # purchases per time unit while alive
    dropout = rng.beta(a, b, n)
    arrivals = rng.poisson(rate * age)
    alive_for = rng.geometric(dropout)  # repeat purchases made before dropping out (the last included)
    x = np.minimum(arrivals, alive_for)
    # The x-th of `arrivals` uniform arrival times on (0, T) is T · Beta(x, arrivals − x + 1).
    last = np.where(x > 0, age * rng.beta(np.maximum(x, 1), np.maximum(arrivals - x + 1, 1)), 0.0)
    t_x = np.minimum(np.round(last * unit_days), age_days) / unit_days
    value = np.zeros(n)
    if gamma_gamma is not None:
        p, q, gamma = gamma_gamma
        nu = rng.gamma(q, 1.0 / gamma, n)
        repeat = x > 0
        # The mean of x Gamma(p, nu) values is Gamma(p·x, x·nu).
        value[repeat] = rng.gamma(p * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    return pd.DataFrame({"customer_id": ids, "frequency": x, "recency": t_x, "age": age, "monetary_value": value})


def simulate_transaction_statistics(
    spark: SparkSession,
    customers: int,
    bgnbd: tuple[float, float, float, float],
    gamma_gamma: tuple[float, float, float] | None = None,
    days: int = 273,
    unit_days: float = 7.0,
    seed: int = 42,
    partitions: int = 8,
) -> DataFrame:
    """Per simulated customer: BG/NBD statistics (frequency, recency, age in time units of
    ``unit_days`` days) for purchases recorded to the day over an observation window of up to
    ``days`` days, and the Gamma-Gamma mean value of the repeat purchases (0 without one)."""

    def draw(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            ids = pdf["id"].to_numpy()
            if len(ids) == 0:
                continue
            rng = np.random.default_rng([seed, int(ids[0])])
            yield _bgnbd_gamma_gamma(ids, rng, bgnbd, gamma_gamma, days, unit_days)

    return spark.range(0, customers, numPartitions=partitions).mapInPandas(draw, STATISTICS_SCHEMA)


def simulate_contracts(
    customers: int, alpha: float, beta: float, periods: int, seed: int = 42
) -> tuple[np.ndarray, float]:
    """A cohort of ``customers`` under sBG(alpha, beta) observed for ``periods`` periods: the
    customers lost in each period and those still active (FH 2007's data shape)."""
    rng = np.random.default_rng(seed)
    churn = rng.beta(alpha, beta, customers)
    lifetime = rng.geometric(churn)  # the period in which each contract ends
    lost = np.bincount(np.minimum(lifetime, periods + 1), minlength=periods + 2)[1 : periods + 1]
    return lost.astype(float), float((lifetime > periods).sum())
