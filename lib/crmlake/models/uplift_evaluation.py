"""How good is an uplift ranking: the Qini and uplift curves, their areas against the random
ranking's, Poisson-bootstrap intervals, and the observed uplift by predicted-uplift decile.

Input everywhere: a DataFrame with a treatment column (1 = treated, 0 = control), an outcome
column (1 = the good outcome, here: retained) and a score column (the predicted uplift, higher
first). A treatment or outcome that is not 0/1, or a null/NaN score, raises
:class:`BadValuesError`.

Rows are cut into ``bins`` groups of (close to) equal size by predicted uplift, from the top (the
cuts of :func:`crmlake.models.evaluation.decile_cuts`, ties kept together), and one Spark
aggregation counts, per bin and group, the rows and the good outcomes. Only those cells reach
the driver, where the curves are cumulative sums. At ``k`` bins taken from the top, with N_t, N_c
treated and control rows and Y_t, Y_c good outcomes among them, and N rows in all:

- Qini curve: ``(Y_t − Y_c · N_t / N_c) / N`` (the extra good outcomes of treating the top as
  a share of everyone; the second term is 0 while N_c is 0, as in scikit-uplift);
- uplift curve: ``(Y_t / N_t − Y_c / N_c) · (N_t + N_c) / N`` (each rate 0 while its group is
  empty);

both against ``x = (N_t + N_c) / N`` from (0, 0). ``qini`` (the Qini coefficient) is the
area under the Qini curve minus the area under the random ranking's straight line to the same
end point, 0 in expectation for a random score; ``auuc`` is the area under the uplift curve and
``auuc_random`` the random line's (the average treatment effect / 2).

Bootstrap: Poisson weights per row (each row counted w ~ Poisson(1) times, independently) are
drawn exactly at the cell level: a cell's weighted count is a sum of independent Poisson(1)
weights, which is Poisson(its count), independent of the other cells. So ``resamples`` draws of
the 4 · bins cells (treated/control × good/bad outcome) give the same distribution as weighting
every row, without a pass over the rows per resample; the bin cuts stay those of the sample.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from crmlake.core.errors import BadValuesError
from crmlake.models.evaluation import _pyplot, _save, decile_cuts, with_decile

CURVE_COLUMNS = ["bin", "share", "treated", "control", "treated_good", "control_good", "qini", "uplift"]
DECILE_COLUMNS = [
    "decile",
    "treated",
    "control",
    "treated_rate",
    "control_rate",
    "observed_uplift",
    "mean_predicted",
]
METRICS = ("qini", "qini_area", "qini_random", "auuc", "auuc_random", "ate")


def _flag(name: str) -> Column:
    return F.col(name).cast("double")


def uplift_cells(df: DataFrame, treatment_col: str, outcome_col: str, score_col: str, bins: int) -> pd.DataFrame:
    """Per bin 1..bins (highest predicted uplift first, empty bins included): treated, control,
    treated_good, control_good (ints) and mean_score (NaN in an empty bin). Two Spark jobs: the
    cuts, then one aggregation by bin."""
    treated, good, score = _flag(treatment_col), _flag(outcome_col), _flag(score_col)
    invalid = (
        treated.isNull()
        | ~treated.isin(0.0, 1.0)
        | good.isNull()
        | ~good.isin(0.0, 1.0)
        | score.isNull()
        | F.isnan(score)
    )
    cuts = decile_cuts(df, score_col, bins)
    pdf = (
        df.transform(with_decile, cuts, score_col, "_bin")
        .groupBy("_bin")
        .agg(
            F.count(F.when(treated == 1.0, 1)).alias("treated"),
            F.count(F.when(treated == 0.0, 1)).alias("control"),
            F.count(F.when((treated == 1.0) & (good == 1.0), 1)).alias("treated_good"),
            F.count(F.when((treated == 0.0) & (good == 1.0), 1)).alias("control_good"),
            F.avg(score).alias("mean_score"),
            F.count(F.when(invalid, 1)).alias("invalid"),
        )
        .toPandas()
    )
    if int(pdf["invalid"].sum()):
        raise BadValuesError(
            f"{int(pdf['invalid'].sum())} rows have a {treatment_col} or {outcome_col} that is not 0/1 or a "
            f"{score_col} that is null or NaN: filter or fill them before evaluating"
        )
    pdf = pdf.set_index("_bin").reindex(range(1, len(cuts) + 2))
    counts = ["treated", "control", "treated_good", "control_good"]
    out = pd.DataFrame({"bin": np.arange(1, len(cuts) + 2, dtype="int64")})
    for c in counts:
        out[c] = pdf[c].fillna(0).to_numpy(dtype="int64")
    out["mean_score"] = pdf["mean_score"].to_numpy(dtype="float64")
    return out


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype="float64"), where=den != 0)


def _curves(nt: np.ndarray, nc: np.ndarray, yt: np.ndarray, yc: np.ndarray) -> tuple[np.ndarray, ...]:
    """x, qini and uplift curve points (from (0, 0)) of per-bin counts along the last axis."""
    cnt, cnc, cyt, cyc = (np.cumsum(a.astype("float64"), axis=-1) for a in (nt, nc, yt, yc))
    total = (cnt + cnc)[..., -1:]
    total = np.where(total > 0, total, np.nan)
    qini = (cyt - _ratio(cyc * cnt, cnc)) / total
    uplift = (_ratio(cyt, cnt) - _ratio(cyc, cnc)) * (cnt + cnc) / total
    zero = np.zeros((*nt.shape[:-1], 1))
    x = np.concatenate([zero, (cnt + cnc) / total], axis=-1)
    return x, np.concatenate([zero, qini], axis=-1), np.concatenate([zero, uplift], axis=-1)


def _areas(nt: np.ndarray, nc: np.ndarray, yt: np.ndarray, yc: np.ndarray) -> dict[str, np.ndarray]:
    x, qini, uplift = _curves(nt, nc, yt, yc)
    width = np.diff(x, axis=-1)

    def area(y: np.ndarray) -> np.ndarray:
        return np.sum(width * (y[..., 1:] + y[..., :-1]) / 2.0, axis=-1)

    qini_area, auuc = area(qini), area(uplift)
    qini_random, auuc_random = qini[..., -1] / 2.0, uplift[..., -1] / 2.0
    return {
        "qini": qini_area - qini_random,
        "qini_area": qini_area,
        "qini_random": qini_random,
        "auuc": auuc,
        "auuc_random": auuc_random,
        "ate": uplift[..., -1],
    }


def curve_table(cells: pd.DataFrame) -> pd.DataFrame:
    """The Qini and uplift curves of :func:`uplift_cells`: one row per point (bin 0 = nobody
    treated), ``share`` of rows taken, cumulative counts, ``qini`` and ``uplift``."""
    arrays = [cells[c].to_numpy() for c in ("treated", "control", "treated_good", "control_good")]
    x, qini, uplift = _curves(*arrays)
    cum = [np.concatenate([[0], np.cumsum(a)]) for a in arrays]
    return pd.DataFrame(
        {
            "bin": np.arange(len(x), dtype="int64"),
            "share": x,
            "treated": cum[0],
            "control": cum[1],
            "treated_good": cum[2],
            "control_good": cum[3],
            "qini": qini,
            "uplift": uplift,
        }
    )[CURVE_COLUMNS]


def cell_metrics(cells: pd.DataFrame, resamples: int = 0, interval: float = 0.95, seed: int = 0) -> dict[str, float]:
    """:data:`METRICS` of the cells, and with ``resamples`` > 0 each one's Poisson-bootstrap
    percentile interval as ``<metric>_low`` and ``<metric>_high`` (NaN when no resample could
    compute it); ``rows`` and ``resamples`` as numbers too."""
    nt, nc = cells["treated"].to_numpy(), cells["control"].to_numpy()
    yt, yc = cells["treated_good"].to_numpy(), cells["control_good"].to_numpy()
    found = {k: float(v) for k, v in _areas(nt, nc, yt, yc).items()}
    found["rows"] = float(nt.sum() + nc.sum())
    if resamples > 0:
        rng = np.random.default_rng(seed)
        size = (resamples, len(nt))
        draw_yt, draw_bt = rng.poisson(yt, size), rng.poisson(nt - yt, size)
        draw_yc, draw_bc = rng.poisson(yc, size), rng.poisson(nc - yc, size)
        with np.errstate(invalid="ignore", divide="ignore"):
            booted = _areas(draw_yt + draw_bt, draw_yc + draw_bc, draw_yt, draw_yc)
        tail = (1.0 - interval) / 2.0 * 100.0
        for name, values in booted.items():
            values = values[np.isfinite(values)]
            low, high = np.percentile(values, [tail, 100.0 - tail]) if len(values) else (math.nan, math.nan)
            found[f"{name}_low"], found[f"{name}_high"] = float(low), float(high)
        found["resamples"] = float(resamples)
    return found


def uplift_metrics(
    df: DataFrame,
    treatment_col: str,
    outcome_col: str,
    score_col: str,
    bins: int = 100,
    resamples: int = 0,
    interval: float = 0.95,
    seed: int = 0,
) -> tuple[dict[str, float], pd.DataFrame]:
    """:func:`cell_metrics` and :func:`curve_table` of ``df`` in one Spark aggregation."""
    cells = uplift_cells(df, treatment_col, outcome_col, score_col, bins)
    return cell_metrics(cells, resamples, interval, seed), curve_table(cells)


def uplift_by_decile(df: DataFrame, treatment_col: str, outcome_col: str, score_col: str, n: int = 10) -> pd.DataFrame:
    """Per predicted-uplift decile (1 = highest): treated and control rows, each group's good
    outcome rate, ``observed_uplift`` (treated rate − control rate; NaN when a group is empty)
    and ``mean_predicted``. A ranking that works has observed uplift falling with the decile."""
    cells = uplift_cells(df, treatment_col, outcome_col, score_col, n)
    treated_rate = cells["treated_good"] / cells["treated"].where(cells["treated"] > 0)
    control_rate = cells["control_good"] / cells["control"].where(cells["control"] > 0)
    return pd.DataFrame(
        {
            "decile": cells["bin"],
            "treated": cells["treated"],
            "control": cells["control"],
            "treated_rate": treated_rate.astype("float64"),
            "control_rate": control_rate.astype("float64"),
            "observed_uplift": (treated_rate - control_rate).astype("float64"),
            "mean_predicted": cells["mean_score"],
        }
    )[DECILE_COLUMNS]


def plot_qini(curve_pdf: pd.DataFrame, path: str | Path, column: str = "qini") -> Path:
    """The Qini (or uplift) curve of a :func:`curve_table` beside the random ranking's straight
    line to the same end point. Writes a PNG and returns its path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    x, y = curve_pdf["share"].to_numpy(dtype="float64"), curve_pdf[column].to_numpy(dtype="float64")
    ax.plot(x, y, marker=".", color="tab:blue", label="model")
    ax.plot([0, 1], [0, y[-1]], color="grey", linestyle="--", label="random")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("share of subscribers targeted (highest predicted uplift first)")
    ax.set_ylabel("extra retained per subscriber" if column == "qini" else "uplift × share targeted")
    ax.set_xlim(0, 1)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_uplift_by_decile(decile_pdf: pd.DataFrame, path: str | Path) -> Path:
    """Observed uplift (treated − control retention) per predicted-uplift decile, with the mean
    predicted uplift. Writes a PNG and returns its path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(decile_pdf["decile"], decile_pdf["observed_uplift"], color="tab:blue", label="observed")
    ax.plot(decile_pdf["decile"], decile_pdf["mean_predicted"], marker="o", color="tab:orange", label="predicted")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_xlabel("predicted-uplift decile (1 = highest)")
    ax.set_ylabel("treated − control retention")
    ax.legend(loc="best")
    return _save(fig, path)
