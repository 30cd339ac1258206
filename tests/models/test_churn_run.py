"""train-churn and score-churn on a team's own table (a CSV export as public churn data sets
come: Yes/No labels, numbers written as text with blanks, categorical text): metrics, the
registry's aliases and the promotion rule, scoring with reasons, and the refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from crmlake.catalog import tables
from crmlake.core import settings
from crmlake.models import churn_data, churn_run, churn_score, registry
from crmlake.models.churn import LABEL
from crmlake_jobs import score_churn as score_job
from crmlake_jobs import train_churn as train_job
from mlflow import MlflowClient
from pyspark.sql import functions as F

N = 3000
FAST_GRIDS = {
    "logistic_regression": {"regParam": [0.01]},
    "gbt": {"maxIter": [15], "maxDepth": [3]},
}

pytestmark = pytest.mark.slow  # train-churn and score-churn end to end, with MLflow


def telecom_export(n: int = N, seed: int = 3) -> pd.DataFrame:
    """A churn export shaped like the public ones: complaints drive churn, long tenure and
    yearly contracts keep customers, ``noise`` means nothing."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    complaints = rng.poisson(0.8, n)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    monthly = np.round(rng.uniform(20, 110, n), 2)
    logit = -2.2 + 1.1 * complaints - 0.04 * tenure + np.where(contract == "Month-to-month", 1.0, -0.5)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    total = np.round(monthly * tenure, 2).astype(str)
    total[rng.random(n) < 0.01] = " "  # new customers without a bill yet, as in the Telco file
    return pd.DataFrame(
        {
            "customerID": [f"C{i:05d}" for i in range(n)],
            "tenure": tenure,
            "Contract": contract,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "complaints_90d": complaints,
            "noise": np.round(rng.normal(size=n), 4),
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


def conf_file(folder, name: str, path: str, **churn) -> str:
    dataset = churn.pop("dataset", {})
    section = {
        "dataset": {"path": path, "format": "csv", "id": "customerID", "label": "Churn", "name": name},
        "candidates": ["logistic_regression"],
        "grids": FAST_GRIDS,
        **churn,
    }
    section["dataset"].update(dataset)
    conf = folder / f"{name}-{len(list(folder.iterdir()))}.yaml"
    conf.write_text(yaml.safe_dump({"churn": section}))
    return str(conf)


@pytest.fixture(scope="module")
def byo(spark, tmp_path_factory):
    """One export trained with logistic regression and gradient-boosted trees, then scored."""
    folder = tmp_path_factory.mktemp("byo")
    root = str(folder / "root")
    telecom_export().to_csv(folder / "telco.csv", index=False)
    conf = conf_file(folder, "telco", str(folder / "telco.csv"), candidates=["logistic_regression", "gbt"])
    assert train_job.main(["--conf", conf, "--root", root, "--log-format", "text"], spark=spark) == 0
    assert score_job.main(["--conf", conf, "--root", root, "--date", "2026-01-31"], spark=spark) == 0
    return {"root": root, "conf": conf, "folder": folder, "model": "crmlake-churn-telco"}


def test_byo_run_writes_every_metric_of_every_candidate_and_split(spark, byo):
    metrics_df = tables.read(spark, byo["root"], registry.MODEL_METRICS)
    got = {(r["candidate"], r["split"], r["metric"]) for r in metrics_df.collect()}
    expected = {
        (c, s, m)
        for c in ("logistic_regression", "gbt")
        for s in ("validation", "test")
        for m in ("roc_auc", "pr_auc", "top_decile_lift", "brier")
    }
    assert got == expected
    test = {r["metric"]: r["value"] for r in metrics_df.where("is_registered AND split = 'test'").collect()}
    assert test["roc_auc"] > 0.75 and test["top_decile_lift"] > 2.0 and 0 < test["brier"] < 0.25
    assert metrics_df.select("model_name", "model_version", "dataset").distinct().collect()[0].asDict() == {
        "model_name": byo["model"],
        "model_version": "1",
        "dataset": str(byo["folder"] / "telco.csv"),
    }
    assert str(MlflowClient().get_model_version_by_alias(byo["model"], "champion").version) == "1"


def test_byo_scores_every_row_with_deciles_bands_and_reasons(spark, byo):
    scores_df = tables.read(spark, byo["root"], churn_score.CHURN_SCORES)
    assert scores_df.count() == N
    row = scores_df.agg(
        F.min("decile"), F.max("decile"), F.countDistinct("risk_band"), F.min("probability"), F.max("probability")
    ).first()
    assert (row[0], row[1], row[2]) == (1, 10, 3) and 0 < row[3] < row[4] < 1
    assert scores_df.select("source", "model_name", "model_version").distinct().collect()[0].asDict() == {
        "source": "byo:telco",
        "model_name": byo["model"],
        "model_version": "1",
    }
    # the riskiest decile churns far more often than the base: the score ranks
    labels = spark.createDataFrame(telecom_export()[["customerID", "Churn"]]).withColumnRenamed(
        "customerID", "subscriber_key"
    )
    joined = scores_df.join(labels, on="subscriber_key", how="inner")
    rates = {
        r["decile"]: r["rate"]
        for r in joined.groupBy("decile").agg(F.avg((F.col("Churn") == "Yes").cast("double")).alias("rate")).collect()
    }
    assert rates[1] > 2 * rates[10]


def test_contributions_add_up_to_the_raw_score_on_every_row(spark, byo):
    champion = registry.current(byo["model"], "champion")
    data = churn_data.byo_dataset(
        spark,
        settings.ChurnDataset(path=str(byo["folder"] / "telco.csv"), id="customerID", label="Churn", name="telco"),
        settings.ChurnConfig(),
        scoring=True,
    )
    sample_df = data.df.drop(LABEL, "split").limit(500)
    explained = churn_score.explain(churn_run.scored_by(champion.model, sample_df), champion.model, champion.inputs, 3)
    rows = explained.select(
        "raw_score", "bias", F.aggregate("contributions", F.lit(0.0), lambda a, x: a + x).alias("total")
    ).collect()
    assert len(rows) == 500
    assert max(abs(r["bias"] + r["total"] - r["raw_score"]) for r in rows) < 1e-9


def test_reasons_name_the_feature_that_drives_the_score(spark, byo):
    """Churn was made to rise with complaints: for customers with five or more, complaints are
    the first reason, written with their own count."""
    scores_df = tables.read(spark, byo["root"], churn_score.CHURN_SCORES)
    export = telecom_export()
    heavy = export.loc[export["complaints_90d"] >= 5, ["customerID", "complaints_90d"]]
    assert len(heavy) >= 5
    got = {
        r["subscriber_key"]: (r["drivers"][0]["feature"], r["reason_1"])
        for r in scores_df.where(F.col("subscriber_key").isin(list(heavy["customerID"]))).collect()
    }
    expected = {
        c: ("complaints_90d", f"{n} complaints in 90 days")
        for c, n in zip(heavy["customerID"], heavy["complaints_90d"], strict=True)
    }
    assert got == expected


def test_promotion_rule_keeps_the_better_model_as_champion(spark, tmp_path):
    """A weak first model becomes champion (there is none); a better one replaces it; a weaker
    one after that only becomes challenger. Both numbers of every decision are logged."""
    root = str(tmp_path / "root")
    telecom_export().to_csv(tmp_path / "promo.csv", index=False)
    path = str(tmp_path / "promo.csv")
    weak = conf_file(tmp_path, "promo", path, dataset={"features": ["noise"]})
    strong = conf_file(tmp_path, "promo", path)
    client = MlflowClient()
    decisions = []
    for conf in (weak, strong, weak):
        assert train_job.main(["--conf", conf, "--root", root], spark=spark) == 0
        run = tables.read(spark, root, "gold.run_log").orderBy(F.col("started_at").desc()).first()
        decisions.append(
            (run["model_version"], str(client.get_model_version_by_alias("crmlake-churn-promo", "champion").version))
        )
    assert decisions == [("crmlake-churn-promo/1", "1"), ("crmlake-churn-promo/2", "2"), ("crmlake-churn-promo/3", "2")]
    assert str(client.get_model_version_by_alias("crmlake-churn-promo", "challenger").version) == "3"
    compared = tables.read(spark, root, registry.MODEL_METRICS).where("candidate = 'champion' AND metric = 'pr_auc'")
    assert sorted(r["model_version"] for r in compared.collect()) == ["1", "2"]  # the champion at runs 2 and 3


def test_scoring_refuses_a_table_without_the_models_columns_and_writes_nothing(spark, byo, tmp_path):
    export = telecom_export(200).drop(columns=["complaints_90d"])
    export["tenure"] = export["tenure"].astype(str)
    export.loc[0, "tenure"] = "about a year"  # no longer a number: read as text
    export.to_csv(tmp_path / "telco.csv", index=False)
    conf = conf_file(tmp_path, "telco", str(tmp_path / "telco.csv"))
    before = tables.version(spark, byo["root"], churn_score.CHURN_SCORES)
    code = score_job.main(["--conf", conf, "--root", byo["root"], "--date", "2026-02-28"], spark=spark)
    assert code == 4
    assert tables.version(spark, byo["root"], churn_score.CHURN_SCORES) == before
    failed = tables.read(spark, byo["root"], "gold.run_log").orderBy(F.col("started_at").desc()).first()
    assert failed["status"] == "failed"
    assert "'complaints_90d' is missing" in failed["message"] and "'tenure' is string" in failed["message"]


def test_unreadable_labels_stop_the_run_naming_file_column_and_rows(spark, tmp_path, capsys):
    export = telecom_export(300)
    export.loc[[5, 9], "Churn"] = "maybe"
    export.to_csv(tmp_path / "bad.csv", index=False)
    conf = conf_file(tmp_path, "bad", str(tmp_path / "bad.csv"))
    root = str(tmp_path / "root")
    assert train_job.main(["--conf", conf, "--root", root], spark=spark) == 4
    err = capsys.readouterr().err
    assert "bad.csv" in err and "column 'Churn'" in err and "2 row(s)" in err and "C00005" in err
    assert not tables.exists(spark, root, registry.MODEL_METRICS)
