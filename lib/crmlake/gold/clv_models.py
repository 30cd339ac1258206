"""Lifetime-value models fitted by maximum likelihood on compressed sufficient statistics.

* BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") for the number of
  repeat transactions of a non-contractual customer, from (x, t_x, T): repeat transactions, time
  of the last one, and age, all in one time unit (``age`` stands for the papers' T in code).
* Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV") for the mean value of a customer's
  transactions, from (x, m̄) over customers with repeat transactions.
* Shifted-beta-geometric (Fader & Hardie 2007, "How to project customer retention") for
  contract renewals of a cohort, from the number of customers lost in each period and the number
  still active; with the discounted expected residual lifetime (Fader & Hardie 2010).

Customers who share the same statistics contribute the same likelihood term, so the fits take
the distinct combinations with their counts (``weights``): at operator scale the problem the
optimizer sees is the number of distinct (x, t_x, T), not the number of customers. Everything
here is numpy/scipy on those small arrays; the statistics are computed, and the predictions
scored, on Spark (:mod:`crmlake.gold.clv`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

BGNBD_PARAMS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMS = ("p", "q", "gamma")
SBG_PARAMS = ("alpha", "beta")


@dataclass(frozen=True)
class Fit:
    """One fitted model: its parameters, the maximized log-likelihood (weighted sum over every
    customer), how many customers it covers, and whether the optimizer converged."""

    model: str
    params: dict[str, float]
    log_likelihood: float
    customers: int
    converged: bool
    message: str


def _fit(
    model, names, negative_ll, start, weights, penalty: float, tolerance: float, max_iter: int, gradient=None
) -> Fit:
    """Minimize the negative log-likelihood per customer over log-parameters (all parameters are
    positive), plus an optional ridge penalty ``penalty`` × Σ θ² — lifetimes' ``penalizer_coef``,
    on the same per-customer scale.

    With an analytic ``gradient`` (of the negative log-likelihood in θ) the fit is L-BFGS: a few
    dozen evaluations where a simplex needs hundreds, which is what makes a million distinct
    statistics cheap. Without one, or where L-BFGS does not converge, a Nelder-Mead simplex
    polished by BFGS. Converged: the optimizer says so, or the gradient per customer at the
    optimum is below √tolerance (a large sum's rounding noise can keep it from saying so)."""
    total = float(np.sum(weights))

    def objective(log_theta):
        theta = np.exp(log_theta)
        value = negative_ll(theta) / total
        return value + penalty * float(np.sum(theta**2)) if np.isfinite(value) else np.inf

    def objective_and_gradient(log_theta):
        theta = np.exp(log_theta)
        value = objective(log_theta)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        grad = (np.asarray(gradient(theta)) / total + 2 * penalty * theta) * theta  # chain rule: dθ/dlog θ = θ
        return value, grad

    def slope(log_theta) -> float:
        if gradient is not None:
            return float(np.max(np.abs(objective_and_gradient(log_theta)[1])))
        step = 1e-6
        g = [
            (objective(log_theta + step * e) - objective(log_theta - step * e)) / (2 * step) for e in np.eye(len(start))
        ]
        return float(np.max(np.abs(g))) if np.all(np.isfinite(g)) else np.inf

    flat_enough = max(np.sqrt(tolerance), 1e-6)
    x0 = np.log(np.asarray(start, dtype=float))
    best, said = None, False
    if gradient is not None:
        best = optimize.minimize(
            objective_and_gradient,
            x0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "ftol": tolerance * 1e-3, "gtol": tolerance},
        )
        said = bool(best.success)
    if best is None or not (np.isfinite(best.fun) and (said or slope(best.x) < flat_enough)):
        simplex = optimize.minimize(
            objective,
            x0,
            method="Nelder-Mead",
            options={"xatol": tolerance, "fatol": tolerance, "maxiter": max_iter, "maxfev": max_iter * 2},
        )
        # Polish with a quasi-Newton step from the simplex's best point.
        polished = optimize.minimize(
            objective, simplex.x, method="BFGS", options={"gtol": tolerance, "maxiter": max_iter}
        )
        best = polished if polished.fun <= simplex.fun else simplex
        said = bool(polished.success or simplex.success)
    theta = np.exp(best.x)
    converged = bool(said or slope(best.x) < flat_enough) and bool(np.isfinite(best.fun))
    message = str(best.message)
    at_bound = [n for n, v in zip(names, theta, strict=True) if v > 1e6 or v < 1e-6]
    if at_bound:
        # A maximum at the edge (no dropout, no churn): a limit the data allow, not an estimate.
        message = f"at a boundary ({', '.join(at_bound)} → 0 or ∞); {message}"
    return Fit(
        model=model,
        params=dict(zip(names, (float(v) for v in theta), strict=True)),
        log_likelihood=float(-negative_ll(theta)),
        customers=int(round(total)),
        converged=converged,
        message=message,
    )


# ---------------------------------------------------------------------------------------------
# BG/NBD


def bgnbd_log_likelihood(theta, x, t_x, age) -> np.ndarray:
    """Each customer's BG/NBD log-likelihood (FHL 2005, eq. 6)."""
    r, alpha, a, b = theta
    x, t_x, age = (np.asarray(v, dtype=float) for v in (x, t_x, age))
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _by_value(x):
    """Distinct values of ``x`` and where each element is among them: the special functions of
    the likelihoods depend on x alone, and x takes few values (purchase counts)."""
    values, index = np.unique(np.asarray(x, dtype=float), return_inverse=True)
    return values, index


def bgnbd_negative_ll_and_gradient(theta, x, t_x, age, weights) -> tuple[float, np.ndarray]:
    """The weighted BG/NBD negative log-likelihood (FHL 2005, eq. 6) and its gradient in
    (r, α, a, b). With A3 = −(r+x)·log(α+T) and A4 = log a − log(b+x−1) − (r+x)·log(α+t_x), each
    customer's log-likelihood is A1 + A2 + log(e^A3 + e^A4); the derivative of the last term is
    the e^A-weighted mean of A3's and A4's."""
    r, alpha, a, b = theta
    x, t_x, age = (np.asarray(v, dtype=float) for v in (x, t_x, age))
    w = np.asarray(weights, dtype=float)
    xs, at = _by_value(x)
    gl, dg = special.gammaln, special.digamma
    a1 = (gl(r + xs) - gl(r))[at] + r * np.log(alpha)
    a2 = gl(a + b) + (gl(b + xs) - gl(b) - gl(a + b + xs))[at]
    log_age, log_tx = np.log(alpha + age), np.log(alpha + t_x)
    a3 = -(r + x) * log_age
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(repeat, np.log(a) - np.log(b + x - 1) - (r + x) * log_tx, -np.inf)
    tail = np.logaddexp(a3, a4)
    value = -float(np.sum(w * (a1 + a2 + tail)))
    w4 = np.where(repeat, np.exp(a4 - tail), 0.0)
    w3 = 1.0 - w4
    d_r = (dg(r + xs) - dg(r))[at] + np.log(alpha) - w3 * log_age - w4 * log_tx
    with np.errstate(divide="ignore", invalid="ignore"):
        d_alpha = r / alpha - w3 * (r + x) / (alpha + age) - np.where(repeat, w4 * (r + x) / (alpha + t_x), 0.0)
        d_b_tail = np.where(repeat, -w4 / (b + x - 1), 0.0)
    d_a = (dg(a + b) - dg(a + b + xs))[at] + w4 / a
    d_b = (dg(a + b) + dg(b + xs) - dg(b) - dg(a + b + xs))[at] + d_b_tail
    gradient = -np.array([np.sum(w * d) for d in (d_r, d_alpha, d_a, d_b)])
    return value, gradient


def fit_bgnbd(x, t_x, age, weights=None, penalty: float = 0.0, tolerance: float = 1e-10, max_iter: int = 5000) -> Fit:
    """Fit BG/NBD to (x, t_x, T) (distinct combinations, each with its count in ``weights``)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)

    def negative_ll(theta):
        return bgnbd_negative_ll_and_gradient(theta, x, t_x, age, w)[0]

    def gradient(theta):
        return bgnbd_negative_ll_and_gradient(theta, x, t_x, age, w)[1]

    return _fit("bgnbd", BGNBD_PARAMS, negative_ll, (1.0, 1.0, 1.0, 1.0), w, penalty, tolerance, max_iter, gradient)


def bgnbd_probability_alive(params: dict[str, float], x, t_x, age) -> np.ndarray:
    """P(alive | x, t_x, T) (FHL 2005, eq. 12): 1 for a customer with no repeat transaction."""
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x, t_x, age = (np.asarray(v, dtype=float) for v in (x, t_x, age))
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(x > 0, a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0)
    return 1.0 / (1.0 + odds)


def bgnbd_expected_transactions(params: dict[str, float], t, x, t_x, age) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected transactions in the next ``t`` time units (FHL 2005,
    eq. 10). Needs the Gaussian hypergeometric function 2F1, which Spark has no built-in for."""
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    x, t_x, age = (np.asarray(v, dtype=float) for v in (x, t_x, age))
    hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + age + t))
    first = (a + b + x - 1) / (a - 1) * (1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * hyp)
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = np.where(x > 0, a / (b + x - 1) * ((alpha + age) / (alpha + t_x)) ** (r + x), 0.0)
    return first / (1 + odds)


def bgnbd_unconditional_expected(params: dict[str, float], t) -> np.ndarray:
    """E[X(t)]: repeat transactions a new customer is expected to make in ``t`` time units
    (FHL 2005, eq. 9), for the population curve of cumulative repeat transactions."""
    r, alpha, a, b = (params[k] for k in BGNBD_PARAMS)
    t = np.asarray(t, dtype=float)
    hyp = special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * hyp)


# ---------------------------------------------------------------------------------------------
# Gamma-Gamma


def gamma_gamma_log_likelihood(theta, x, m) -> np.ndarray:
    """Each customer's Gamma-Gamma log-likelihood of the mean value ``m`` of ``x`` transactions."""
    p, q, gamma = theta
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    return (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(x * m + gamma)
    )


def gamma_gamma_negative_ll_and_gradient(theta, x, m, weights) -> tuple[float, np.ndarray]:
    """The weighted Gamma-Gamma negative log-likelihood and its gradient in (p, q, γ)."""
    p, q, gamma = theta
    x, m, w = (np.asarray(v, dtype=float) for v in (x, m, weights))
    gl, dg = special.gammaln, special.digamma
    log_m, log_x, log_total = np.log(m), np.log(x), np.log(x * m + gamma)
    px = p * x
    value = -float(
        np.sum(
            w * (gl(px + q) - gl(px) - gl(q) + q * np.log(gamma) + (px - 1) * log_m + px * log_x - (px + q) * log_total)
        )
    )
    d_p = x * (dg(px + q) - dg(px) + log_m + log_x - log_total)
    d_q = dg(px + q) - dg(q) + np.log(gamma) - log_total
    d_gamma = q / gamma - (px + q) / (x * m + gamma)
    return value, -np.array([np.sum(w * d) for d in (d_p, d_q, d_gamma)])


def fit_gamma_gamma(x, m, weights=None, penalty: float = 0.0, tolerance: float = 1e-10, max_iter: int = 5000) -> Fit:
    """Fit Gamma-Gamma to customers with at least one repeat transaction (x > 0, m > 0)."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)

    def negative_ll(theta):
        return gamma_gamma_negative_ll_and_gradient(theta, x, m, w)[0]

    def gradient(theta):
        return gamma_gamma_negative_ll_and_gradient(theta, x, m, w)[1]

    # The likelihood has a long ridge (p → ∞, γ → 0) on which a start at (1, 1, 1) can get lost:
    # also start where the population mean p·γ/(q−1) equals the observed mean, keep the better.
    mean = float(np.average(np.asarray(m, dtype=float), weights=w))
    fit = _fit(
        "gamma_gamma",
        GAMMA_GAMMA_PARAMS,
        negative_ll,
        (5.0, 3.0, max(mean, 1e-6) * 2.0 / 5.0),
        w,
        penalty,
        tolerance,
        max_iter,
        gradient,
    )
    if fit.converged and "boundary" not in fit.message:
        return fit
    other = _fit(
        "gamma_gamma", GAMMA_GAMMA_PARAMS, negative_ll, (1.0, 1.0, 1.0), w, penalty, tolerance, max_iter, gradient
    )
    return max((fit, other), key=lambda f: (f.converged, f.log_likelihood))


def gamma_gamma_expected_value(params: dict[str, float], x, m) -> np.ndarray:
    """E[M | x, m̄] (FHL 2005b, eq. 5): the population mean shrunk towards the customer's own."""
    p, q, gamma = (params[k] for k in GAMMA_GAMMA_PARAMS)
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    return (gamma + x * m) * p / (p * x + q - 1)


# ---------------------------------------------------------------------------------------------
# shifted-beta-geometric


def sbg_churn_probabilities(alpha: float, beta: float, periods: int) -> np.ndarray:
    """P(T = t), t = 1..periods: the chance a customer's contract ends in period t (FH 2007,
    eq. 7, by its recursion)."""
    probs = np.empty(periods)
    probs[0] = alpha / (alpha + beta)
    for t in range(2, periods + 1):
        probs[t - 1] = probs[t - 2] * (beta + t - 2) / (alpha + beta + t - 1)
    return probs


def sbg_survival(alpha: float, beta: float, periods: int) -> np.ndarray:
    """S(t), t = 0..periods: the share of a cohort still active after t periods."""
    return np.concatenate([[1.0], 1.0 - np.cumsum(sbg_churn_probabilities(alpha, beta, periods))])


def sbg_log_likelihood(theta, periods, is_active, entered) -> np.ndarray:
    """Each customer's sBG log-likelihood: log P(T = t) for a contract that ended in period t,
    log S(t) for one still active after t periods — each conditioned on having been seen alive
    after ``entered`` periods (log S(entered) subtracted), for customers who joined before the
    data begins (left truncation: a customer lost before the first extract is never seen, so
    the survivors must not be read as the whole cohort)."""
    alpha, beta = theta
    periods, entered = np.asarray(periods, dtype=int), np.asarray(entered, dtype=int)
    longest = int(max(periods.max(initial=1), entered.max(initial=0), 1))
    probs = np.concatenate([[np.nan], sbg_churn_probabilities(alpha, beta, longest)])
    survival = sbg_survival(alpha, beta, longest)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_probs, log_survival = np.log(probs), np.log(survival)
    own = np.where(np.asarray(is_active, dtype=bool), log_survival[periods], log_probs[np.maximum(periods, 1)])
    return own - log_survival[entered]


def fit_sbg_observations(
    periods, is_active, entered=None, weights=None, penalty: float = 0.0, tolerance: float = 1e-12, max_iter: int = 5000
) -> Fit:
    """Fit sBG to customers' contract periods (distinct combinations, counted in ``weights``):
    ``periods`` is the period a lost contract ended in, or the renewals an active one has made;
    ``entered`` the renewals made before the customer was first seen (0: seen from the start)."""
    periods = np.asarray(periods, dtype=int)
    entered = np.zeros(len(periods), dtype=int) if entered is None else np.asarray(entered, dtype=int)
    w = np.ones(len(periods)) if weights is None else np.asarray(weights, dtype=float)

    def negative_ll(theta):
        with np.errstate(all="ignore"):
            value = -float(np.sum(w * sbg_log_likelihood(theta, periods, is_active, entered)))
        return value if np.isfinite(value) else np.inf

    return _fit("sbg", SBG_PARAMS, negative_ll, (1.0, 1.0), w, penalty, tolerance, max_iter)


def fit_sbg(lost, active, penalty: float = 0.0, tolerance: float = 1e-12, max_iter: int = 5000) -> Fit:
    """Fit sBG to a cohort: ``lost[t-1]`` customers ended in period t (t = 1..n) and ``active``
    are still active after period n (FH 2007, eq. 8). Where customers joined at different times,
    ``active`` is a sequence: ``active[k]`` customers are active after k periods (k = 0..), each
    contributing S(k) — the same likelihood, censored at each customer's own age."""
    lost = np.asarray(lost, dtype=float)
    if np.ndim(active) == 0:
        censored = np.zeros(len(lost) + 1)
        censored[len(lost)] = float(active)
    else:
        censored = np.asarray(active, dtype=float)
    periods = np.concatenate([np.arange(1, len(lost) + 1), np.arange(len(censored))])
    is_active = np.concatenate([np.zeros(len(lost), dtype=bool), np.ones(len(censored), dtype=bool)])
    weights = np.concatenate([lost, censored])
    keep = weights > 0
    return fit_sbg_observations(
        periods[keep], is_active[keep], weights=weights[keep], penalty=penalty, tolerance=tolerance, max_iter=max_iter
    )


def sbg_retention_path(alpha: float, beta: float, renewals: int, periods: int) -> np.ndarray:
    """P(T > r + j | T > r), j = 1..periods, for a customer who has made r renewals: the chance
    of still being a customer after each of the next ``periods`` renewals. Each step renews with
    probability (β + r + j − 1) / (α + β + r + j − 1) (FH 2007, eq. 5 conditioned on survival)."""
    j = np.arange(1, periods + 1, dtype=float)
    return np.cumprod((beta + renewals + j - 1) / (alpha + beta + renewals + j - 1))


def sbg_derl(alpha: float, beta: float, renewals: np.ndarray | int, discount: float) -> np.ndarray:
    """Discounted expected residual lifetime, in periods, of a customer who has made ``renewals``
    renewals (is in period n = renewals + 1), at discount rate ``discount`` per period (Fader &
    Hardie 2010, eq. 6): (β+n−1)/(α+β+n−1) · 2F1(1, β+n; α+β+n; 1/(1+d)). The period now under
    way is paid already; the sum runs over the periods to come."""
    n = np.asarray(renewals, dtype=float) + 1
    return (beta + n - 1) / (alpha + beta + n - 1) * special.hyp2f1(1, beta + n, alpha + beta + n, 1 / (1 + discount))


def standard_errors(negative_ll, theta) -> np.ndarray:
    """Asymptotic standard errors of a maximum-likelihood estimate: the square roots of the
    diagonal of the inverse observed information (the Hessian of the negative log-likelihood at
    ``theta``, by central differences with steps relative to each parameter)."""
    theta = np.asarray(theta, dtype=float)
    k = len(theta)
    h = 1e-4 * np.maximum(np.abs(theta), 1e-3)
    hessian = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            shifted = []
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                point = theta.copy()
                point[i] += si * h[i]
                point[j] += sj * h[j]
                shifted.append(negative_ll(point))
            hessian[i, j] = hessian[j, i] = (shifted[0] - shifted[1] - shifted[2] + shifted[3]) / (4 * h[i] * h[j])
    return np.sqrt(np.diag(np.linalg.inv(hessian)))


def bgnbd_standard_errors(params: dict[str, float], x, t_x, age, weights=None) -> dict[str, float]:
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    errors = standard_errors(
        lambda theta: -float(np.sum(w * bgnbd_log_likelihood(theta, x, t_x, age))),
        [params[k] for k in BGNBD_PARAMS],
    )
    return dict(zip(BGNBD_PARAMS, (float(e) for e in errors), strict=True))


def gamma_gamma_standard_errors(params: dict[str, float], x, m, weights=None) -> dict[str, float]:
    w = np.ones(len(x)) if weights is None else np.asarray(weights, dtype=float)
    errors = standard_errors(
        lambda theta: -float(np.sum(w * gamma_gamma_log_likelihood(theta, x, m))),
        [params[k] for k in GAMMA_GAMMA_PARAMS],
    )
    return dict(zip(GAMMA_GAMMA_PARAMS, (float(e) for e in errors), strict=True))
