"""The lifetime-value models against independent references: the lifetimes package (BG/NBD,
Gamma-Gamma) on its CDNOW data, and the sBG paper's own data, fitted values and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from crmlake.gold import clv_models as m

warnings.filterwarnings("ignore", category=DeprecationWarning)
lifetimes = pytest.importorskip("lifetimes")
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value  # noqa: E402


@pytest.fixture(scope="module")
def cdnow():
    return load_cdnow_summary_data_with_monetary_value()


def compressed(df, columns):
    grouped = df.groupby(columns).size().reset_index(name="n")
    return [grouped[c].to_numpy() for c in columns], grouped["n"].to_numpy()


def test_bgnbd_matches_lifetimes_and_the_paper_on_cdnow(cdnow):
    (x, t_x, age), n = compressed(cdnow, ["frequency", "recency", "T"])
    assert len(n) < len(cdnow)  # customers share statistics: the fit sees fewer rows
    fit = m.fit_bgnbd(x, t_x, age, weights=n)
    reference = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert fit.converged and fit.customers == len(cdnow)
    for name in m.BGNBD_PARAMS:
        assert fit.params[name] == pytest.approx(reference.params_[name], rel=1e-3), name
    # FHL 2005 report r = 0.243, alpha = 4.414, a = 0.793, b = 2.426 and LL = -9582.4.
    assert [round(fit.params[k], 3) for k in m.BGNBD_PARAMS] == [0.243, 4.414, 0.793, 2.426]
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)

    f, r, age = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    alive = m.bgnbd_probability_alive(fit.params, f, r, age)
    expected = m.bgnbd_expected_transactions(fit.params, 39.0, f, r, age)
    np.testing.assert_allclose(alive, reference.conditional_probability_alive(f, r, age), rtol=1e-3)
    np.testing.assert_allclose(
        expected, reference.conditional_expected_number_of_purchases_up_to_time(39.0, f, r, age), rtol=1e-3
    )


def test_gamma_gamma_matches_lifetimes_on_cdnow(cdnow):
    repeaters = cdnow[cdnow["frequency"] > 0]
    fit = m.fit_gamma_gamma(repeaters["frequency"].to_numpy(), repeaters["monetary_value"].to_numpy())
    reference = lifetimes.GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])
    assert fit.converged
    for ours, theirs in zip(m.GAMMA_GAMMA_PARAMS, ("p", "q", "v"), strict=True):
        assert fit.params[ours] == pytest.approx(reference.params_[theirs], rel=1e-3), ours
    x, mean = repeaters["frequency"].to_numpy(), repeaters["monetary_value"].to_numpy()
    np.testing.assert_allclose(
        m.gamma_gamma_expected_value(fit.params, x, mean),
        reference.conditional_expected_average_profit(repeaters["frequency"], repeaters["monetary_value"]),
        rtol=1e-3,
    )


# Fader & Hardie (2007), table 1: customers of each cohort still active after years 0..7.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


@pytest.mark.parametrize(("survivors", "alpha", "beta"), [(REGULAR, 0.704, 1.182), (HIGH_END, 0.668, 3.806)])
def test_sbg_recovers_the_papers_fit(survivors, alpha, beta):
    lost = -np.diff(survivors)
    fit = m.fit_sbg(lost, survivors[-1])
    assert fit.converged and fit.customers == survivors[0]
    assert (round(fit.params["alpha"], 3), round(fit.params["beta"], 3)) == (alpha, beta)
    # Survival from the closed form S(t) = B(alpha, beta + t) / B(alpha, beta).
    from scipy.special import beta as beta_fn

    t = np.arange(0, 13)
    a, b = fit.params["alpha"], fit.params["beta"]
    np.testing.assert_allclose(m.sbg_survival(a, b, 12), beta_fn(a, b + t) / beta_fn(a, b), rtol=1e-12)


def test_sbg_derl_equals_the_discounted_sum_of_survival():
    alpha, beta, d = 0.668, 3.806, 0.10
    horizon = 5000
    survival = m.sbg_survival(alpha, beta, horizon)
    for renewals in (0, 1, 4, 10):
        n = renewals + 1
        # Periods n, n+1, ... of a customer alive in period n, each discounted from period n.
        series = sum(survival[t] / survival[n - 1] / (1 + d) ** (t - n) for t in range(n, horizon))
        assert m.sbg_derl(alpha, beta, renewals, d) == pytest.approx(series, rel=1e-6), renewals


def test_the_analytic_gradients_equal_central_differences(cdnow):
    x, t_x, age, value = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    w = np.ones(len(x))

    def numeric(f, theta):
        h = 1e-6
        return np.array([(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(len(theta))])

    theta = np.array([0.3, 4.0, 0.9, 2.0])
    _, grad = m.bgnbd_negative_ll_and_gradient(theta, x, t_x, age, w)
    ll = lambda t: m.bgnbd_negative_ll_and_gradient(t, x, t_x, age, w)[0]  # noqa: E731
    np.testing.assert_allclose(grad, numeric(ll, theta), rtol=1e-5)
    assert ll(theta) == pytest.approx(-np.sum(m.bgnbd_log_likelihood(theta, x, t_x, age)), rel=1e-12)
    repeat = x > 0
    theta = np.array([6.0, 3.5, 15.0])
    _, grad = m.gamma_gamma_negative_ll_and_gradient(theta, x[repeat], value[repeat], w[repeat])
    ll = lambda t: m.gamma_gamma_negative_ll_and_gradient(t, x[repeat], value[repeat], w[repeat])[0]  # noqa: E731
    np.testing.assert_allclose(grad, numeric(ll, theta), rtol=1e-5)
