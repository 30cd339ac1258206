"""Parameter recovery: customers simulated on Spark from the lifetime-value models with known
parameters, compressed and fitted as the clv job does, give back those parameters within their
sampling error (4 standard errors of the fit). The benchmark runs the same at 10M customers."""

from __future__ import annotations

import numpy as np
import pytest
from crmlake.gold import clv, clv_models
from crmlake.synth.clv import simulate_contracts, simulate_transaction_statistics

BGNBD = (0.243, 4.414, 0.793, 2.426)  # the CDNOW fit, in weeks
GAMMA_GAMMA = (6.25, 3.74, 15.44)


def within(fit, truth, errors, names):
    for name, true in zip(names, truth, strict=True):
        assert abs(fit.params[name] - true) < 4 * errors[name], (name, fit.params[name], true, errors[name])


def test_bgnbd_and_gamma_gamma_recover_simulated_parameters(spark):
    stats_df = simulate_transaction_statistics(spark, 200_000, BGNBD, GAMMA_GAMMA, days=273, seed=7).cache()
    combos = clv.compressed_statistics(stats_df).toPandas()
    assert combos["customers"].sum() == 200_000 and len(combos) < 200_000 / 4  # day-recorded data compresses
    x, t_x, age, n = (combos[c].to_numpy() for c in ("frequency", "recency", "age", "customers"))
    fit = clv_models.fit_bgnbd(x, t_x, age, n)
    assert fit.converged
    within(fit, BGNBD, clv_models.bgnbd_standard_errors(fit.params, x, t_x, age, n), clv_models.BGNBD_PARAMS)

    values = stats_df.where("frequency > 0").select("frequency", "monetary_value").toPandas()
    gg = clv_models.fit_gamma_gamma(values["frequency"], values["monetary_value"])
    assert gg.converged
    errors = clv_models.gamma_gamma_standard_errors(gg.params, values["frequency"], values["monetary_value"])
    within(gg, GAMMA_GAMMA, errors, clv_models.GAMMA_GAMMA_PARAMS)
    stats_df.unpersist()


@pytest.mark.parametrize(("alpha", "beta"), [(0.704, 1.182), (0.668, 3.806)])
def test_sbg_recovers_simulated_cohorts(alpha, beta):
    lost, active = simulate_contracts(100_000, alpha, beta, periods=12, seed=3)
    fit = clv_models.fit_sbg(lost, active)

    def negative_ll(theta):
        probs = clv_models.sbg_churn_probabilities(theta[0], theta[1], 12)
        return -float(np.sum(lost * np.log(probs)) + active * np.log(1 - probs.sum()))

    errors = dict(
        zip(
            ("alpha", "beta"),
            clv_models.standard_errors(negative_ll, [fit.params["alpha"], fit.params["beta"]]),
            strict=True,
        )
    )
    assert fit.converged
    within(fit, (alpha, beta), errors, clv_models.SBG_PARAMS)


def test_sbg_with_customers_seen_only_after_some_renewals_recovers_the_cohort():
    """An operator's first extract holds only the lines still there: a cohort seen from its
    third renewal on. Conditioning on survival to entry recovers the parameters; reading the
    survivors as the whole cohort does not."""
    alpha, beta, seen_from = 0.704, 1.182, 3
    rng = np.random.default_rng(11)
    lifetime = rng.geometric(rng.beta(alpha, beta, 200_000))
    seen = lifetime > seen_from  # lost before the data began: never in any extract
    periods = np.minimum(lifetime[seen], 12)
    is_active = lifetime[seen] > 12
    periods = np.where(is_active, 12, periods)
    fit = clv_models.fit_sbg_observations(periods, is_active, np.full(len(periods), seen_from))
    assert fit.converged
    assert fit.params["alpha"] == pytest.approx(alpha, rel=0.1) and fit.params["beta"] == pytest.approx(beta, rel=0.1)
    naive = clv_models.fit_sbg_observations(periods, is_active)
    assert abs(naive.params["alpha"] / alpha - 1) > 0.3  # the survivors alone look far more loyal
