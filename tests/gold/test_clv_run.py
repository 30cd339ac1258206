"""The clv job end to end on bring-your-own files: the CDNOW data set of the BG/NBD and
Gamma-Gamma papers, and the two cohorts of the sBG paper, fitted and scored through
``crmlake clv`` and checked against the papers and the lifetimes package."""

from __future__ import annotations

import datetime as dt
import warnings
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import yaml
from crmlake.catalog import tables
from crmlake.gold import clv_models
from crmlake_jobs import clv as clv_job
from pyspark.sql import functions as F

warnings.filterwarnings("ignore", category=DeprecationWarning)
lifetimes = pytest.importorskip("lifetimes")
pytestmark = pytest.mark.slow  # the clv job end to end, with MLflow

CALIBRATION_END = "1997-09-30"
# FH 2007, Table 1: customers still active at the start of years 0..7, of 1,000 acquired.
SBG_SURVIVORS = {
    "regular": [1000, 631, 468, 382, 326, 289, 262, 241],
    "highend": [1000, 869, 743, 653, 593, 551, 517, 491],
}
SBG_PAPER = {"regular": (0.704, 1.182), "highend": (0.668, 3.806)}


def write_conf(path, section: dict) -> str:
    path.write_text(yaml.safe_dump({"clv": section}))
    return str(path)


def cdnow_raw() -> pd.DataFrame:
    source = resources.files("lifetimes.datasets") / "CDNOW_sample.txt"
    return pd.read_csv(source, sep=r"\s+", header=None, names=["master", "customer", "date", "cds", "dollars"])


@pytest.fixture(scope="module")
def cdnow_root(spark, tmp_path_factory):
    """CDNOW_sample (2,357 customers, 1997-01 to 1998-06) as a team's CSV export, run through the
    job with the calibration end of the papers (39 weeks)."""
    folder = tmp_path_factory.mktemp("cdnow")
    raw = cdnow_raw()
    raw[["customer", "date", "cds", "dollars"]].to_csv(folder / "cdnow.csv", index=False)
    conf = write_conf(
        folder / "byo.yaml",
        {
            "transactions": {
                "path": str(folder / "cdnow.csv"),
                "format": "csv",
                "customer": "customer",
                "time": "date",
                "amount": "dollars",
            },
            "time_unit": "week",
            "clv_months": [12],
        },
    )
    root = folder / "root"
    root.mkdir()
    code = clv_job.main(["--date", CALIBRATION_END, "--root", str(root), "--conf", conf, "--log-format", "text"], spark)
    assert code == 0
    return str(root)


def fits(spark, root) -> dict:
    rows = tables.read(spark, root, "gold.clv_models").collect()
    return {(r["model"], r["group"]): r for r in rows}


def test_cdnow_fits_match_the_papers_and_lifetimes(spark, cdnow_root):
    found = fits(spark, cdnow_root)
    bg, gg = found[("bgnbd", "all")], found[("gamma_gamma", "all")]
    assert bg["converged"] and bg["is_used"] and bg["customers"] == 2357 and bg["time_unit"] == "week"
    # FHL 2005: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    assert [round(bg["params"][k], 3) for k in clv_models.BGNBD_PARAMS] == [0.243, 4.414, 0.793, 2.426]
    assert bg["log_likelihood"] == pytest.approx(-9582.4, abs=0.05)
    # FHL 2005b: p = 6.25, q = 3.74, gamma = 15.44 over the 946 customers with repeat purchases.
    assert gg["customers"] == 946 and gg["converged"]
    assert [round(gg["params"][k], 2) for k in clv_models.GAMMA_GAMMA_PARAMS] == [6.25, 3.74, 15.44]


def test_cdnow_predictions_equal_lifetimes_on_the_same_statistics(spark, cdnow_root):
    scored = tables.read(spark, cdnow_root, "gold.clv").toPandas().set_index("subscriber_key").sort_index()
    assert len(scored) == 2357 and set(scored["model"]) == {"bgnbd+gamma_gamma"}
    found = fits(spark, cdnow_root)
    bg = lifetimes.BetaGeoFitter()
    bg.params_ = pd.Series(found[("bgnbd", "all")]["params"])
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time  # what lifetimes' fit() sets
    gg = lifetimes.GammaGammaFitter()
    gg.params_ = pd.Series(
        {
            "p": found[("gamma_gamma", "all")]["params"]["p"],
            "q": found[("gamma_gamma", "all")]["params"]["q"],
            "v": found[("gamma_gamma", "all")]["params"]["gamma"],
        }
    )
    f, r, t, m = (scored[c] for c in ("frequency", "recency", "age", "monetary_value"))
    np.testing.assert_allclose(scored["probability_alive"], bg.conditional_probability_alive(f, r, t), rtol=1e-9)
    np.testing.assert_allclose(
        scored["expected_transactions_90d"],
        bg.conditional_expected_number_of_purchases_up_to_time(90 / 7, f, r, t),
        rtol=1e-7,
    )
    np.testing.assert_allclose(scored["expected_value"], gg.conditional_expected_average_profit(f, m), rtol=1e-9)
    monthly = 1.1 ** (1 / 12) - 1
    clv = gg.customer_lifetime_value(bg, f, r, t, m, time=12, discount_rate=monthly, freq="W")
    np.testing.assert_allclose(scored["clv_12m"], clv.to_numpy(), rtol=1e-6)


def test_cdnow_holdout_report_counts_the_actual_repeat_purchases(spark, cdnow_root):
    raw = cdnow_raw()
    days = raw.drop_duplicates(["customer", "date"])  # purchases on one day are one transaction
    in_holdout = days[(days["date"] > 19970930) & (days["date"] <= 19980630)]
    expected_actual = len(in_holdout)
    report = tables.read(spark, cdnow_root, "gold.clv_validation").toPandas()
    overall = report[report["report"] == "overall"].iloc[0]
    assert overall["holdout_end"] == dt.date(1998, 6, 30) and overall["customers"] == 2357
    assert overall["actual"] == expected_actual
    # Predicted: each customer's E[Y(39 weeks) | x, t_x, T], summed (lifetimes on the same fit).
    scored = tables.read(spark, cdnow_root, "gold.clv").toPandas()
    bg = lifetimes.BetaGeoFitter()
    bg.params_ = pd.Series(fits(spark, cdnow_root)[("bgnbd", "all")]["params"])
    f, r, t = (scored[c] for c in ("frequency", "recency", "age"))
    expected_predicted = bg.conditional_expected_number_of_purchases_up_to_time(273 / 7, f, r, t).sum()
    assert overall["predicted"] == pytest.approx(expected_predicted, rel=1e-9)
    assert overall["predicted"] == pytest.approx(expected_actual, rel=0.15)  # 1,653 against 1,882
    buckets = report[report["report"] == "frequency"].set_index("bucket")
    assert buckets["customers"].sum() == 2357 and buckets["actual"].sum() == expected_actual
    calibration = days[days["date"] <= 19970930].groupby("customer").size() - 1
    assert buckets.loc["0", "customers"] == (calibration == 0).sum()
    assert buckets.loc["10+", "customers"] == (calibration >= 10).sum()


def test_sbg_cohorts_match_the_paper_and_score_with_derl(spark, tmp_path):
    rows, start = [], dt.date(2000, 1, 1)
    for cohort, survivors in SBG_SURVIVORS.items():
        n = 0
        for t in range(1, len(survivors)):
            for _ in range(survivors[t - 1] - survivors[t]):
                rows.append((f"{cohort}-{n}", cohort, start, start.replace(year=2000 + t), 50.0))
                n += 1
        for _ in range(survivors[-1]):
            rows.append((f"{cohort}-{n}", cohort, start, None, 50.0))
            n += 1
    pd.DataFrame(rows, columns=["id", "segment", "since", "until", "fee"]).to_csv(tmp_path / "subs.csv", index=False)
    conf = write_conf(
        tmp_path / "byo.yaml",
        {
            "subscriptions": {
                "path": str(tmp_path / "subs.csv"),
                "customer": "id",
                "cohort": "segment",
                "start": "since",
                "end": "until",
                "amount": "fee",
            },
            "period": "year",
            "discount_rate_annual": 0.1,
        },
    )
    root = tmp_path / "empty-root"
    root.mkdir()
    assert clv_job.main(["--date", "2007-01-01", "--root", str(root), "--conf", conf], spark) == 0
    found = fits(spark, str(root))
    for cohort, (alpha, beta) in SBG_PAPER.items():
        fit = found[("sbg", cohort)]
        assert fit["converged"] and fit["is_used"] and fit["customers"] == 1000
        assert (round(fit["params"]["alpha"], 3), round(fit["params"]["beta"], 3)) == (alpha, beta)
    scored = tables.read(spark, str(root), "gold.clv").where(F.col("group") == "regular").toPandas()
    assert len(scored) == 241 and set(scored["renewals"]) == {7}
    a, b = found[("sbg", "regular")]["params"]["alpha"], found[("sbg", "regular")]["params"]["beta"]
    # FH 2010: DERL of a customer with 7 renewals; CLV over 36 months = the first 3 renewals.
    derl = clv_models.sbg_derl(a, b, 7, 0.1)
    first = np.cumprod([(b + 7 + j) / (a + b + 7 + j) for j in range(3)])
    assert scored["derl"].iloc[0] == pytest.approx(derl, rel=1e-9)
    assert scored["residual_value"].iloc[0] == pytest.approx(50 * derl, rel=1e-9)
    assert scored["clv_36m"].iloc[0] == pytest.approx(50 * (first / 1.1 ** np.arange(3)).sum(), rel=1e-9)
    assert scored["clv_12m"].iloc[0] == pytest.approx(50 * first[0], rel=1e-9)


def test_unreadable_values_stop_the_run_naming_file_column_and_customer(spark, tmp_path, capsys):
    (tmp_path / "tx.csv").write_text("cust,day,value\nA,2026-01-01,5.0\nB,31/02/2026,7.5\nC,2026-01-03,abc\n")
    conf = write_conf(
        tmp_path / "byo.yaml",
        {"transactions": {"path": str(tmp_path / "tx.csv"), "customer": "cust", "time": "day", "amount": "value"}},
    )
    root = tmp_path / "root"
    root.mkdir()
    assert clv_job.main(["--date", "2026-01-31", "--root", str(root), "--conf", conf], spark) == 4
    err = capsys.readouterr().err
    assert "tx.csv" in err and "'day'" in err and "customer 'B' has '31/02/2026'" in err
    assert "'value'" in err and "customer 'C' has 'abc'" in err
    assert not tables.exists(spark, str(root), "gold.clv")
