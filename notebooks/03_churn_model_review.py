# %% [markdown]
# # crmlake walkthrough: reviewing a churn model
#
# A percent-format notebook (Jupyter with jupytext, VS Code, or run as a script); the test suite
# executes it. A team brings its own churn export (a CSV shaped like the public telecom churn
# files: Yes/No labels, numbers written as text with blanks), trains the candidates with
# `crmlake train-churn`, and reviews what a model review asks: the metrics of every candidate on
# validation and test, the gains and reliability of the registered one, what drives its scores,
# the reasons a marketer reads, and whether next month's export still looks like the training
# data (population stability). Set `CRMLAKE_NOTEBOOK_ROOT` to choose where the tables go.

# %%
import os
import tempfile
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml
from crmlake.catalog import tables
from crmlake.core import settings
from crmlake.core.config import load_config
from crmlake.core.session import build_session
from crmlake.models import churn_data, churn_run, churn_score, monitoring, registry
from crmlake_jobs.score_churn import main as score_churn
from crmlake_jobs.train_churn import main as train_churn
from mlflow import MlflowClient
from pyspark.sql import functions as F

warnings.filterwarnings("ignore", category=DeprecationWarning)
root = os.environ.get("CRMLAKE_NOTEBOOK_ROOT") or tempfile.mkdtemp(prefix="crmlake-notebook-")
Path(root).mkdir(parents=True, exist_ok=True)
cfg = load_config(overrides={"root": root})
spark = build_session(cfg)  # reuses a running session (a test's, a notebook kernel's)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)


def export(n: int, seed: int, price_rise: float = 1.0) -> pd.DataFrame:
    """A month's churn export: complaints and month-to-month contracts drive churn, tenure keeps."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n)
    complaints = rng.poisson(0.8, n)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    monthly = np.round(rng.uniform(20, 110, n) * price_rise, 2)
    logit = -2.2 + 1.1 * complaints - 0.04 * tenure + np.where(contract == "Month-to-month", 1.0, -0.5)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    total = np.round(monthly * tenure, 2).astype(str)
    total[rng.random(n) < 0.01] = " "
    return pd.DataFrame(
        {
            "customerID": [f"C{seed}-{i:05d}" for i in range(n)],
            "tenure": tenure,
            "Contract": contract,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "complaints_90d": complaints,
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


data = Path(root) / "exports"
data.mkdir(exist_ok=True)
export(4000, seed=1).to_csv(data / "churn_may.csv", index=False)
export(4000, seed=2, price_rise=1.15).drop(columns=["Churn"]).to_csv(data / "churn_june.csv", index=False)


def conf_for(path: Path) -> str:
    section = {
        "dataset": {"path": str(path), "format": "csv", "id": "customerID", "label": "Churn", "name": "telco"},
        "candidates": ["logistic_regression", "gbt"],
        "grids": {"logistic_regression": {"regParam": [0.01]}, "gbt": {"maxIter": [20], "maxDepth": [3]}},
        "contact_capacity": 400,
    }
    conf = Path(root) / f"{path.stem}.yaml"
    conf.write_text(yaml.safe_dump({"churn": section}), encoding="utf-8")
    return str(conf)


def run(job, conf: str, *args) -> None:
    argv = ["--root", root, "--conf", conf, "--log-format", "text", *[str(a) for a in args]]
    assert job(argv, spark=spark) == 0, f"{job.__module__} {args} failed"


# %% [markdown]
# ## 1. Train on May's export: every candidate on validation and test

# %%
run(train_churn, conf_for(data / "churn_may.csv"))
metrics = tables.read(spark, root, registry.MODEL_METRICS).toPandas()
print(metrics.pivot_table(index=["candidate", "split"], columns="metric", values="value").round(3))
registered = metrics[metrics["is_registered"]].iloc[0]
print(f"registered: {registered['model_name']} version {registered['model_version']} ({registered['candidate']})")

# %% [markdown]
# ## 2. Gains and reliability of the registered model on the test rows, and its drivers
# The training run logged them as MLflow artifacts (tables and images) beside the model.

# %%
client = MlflowClient()
version = client.get_model_version_by_alias(registered["model_name"], "champion")
folder = Path(mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="evaluation"))
gains = pd.read_csv(folder / "gains.csv")
print(gains[["decile", "subscribers", "churners", "churn_rate", "cum_churners_share", "lift"]].round(3))
print(pd.read_csv(folder / "reliability.csv").round(3))
assert gains.loc[0, "lift"] > 1.5, "the riskiest decile should churn well above the base rate"
inputs = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/model_inputs.json")
print("importance:", {k: round(v, 3) for k, v in inputs["importances"].items()})
print("images:", sorted(p.name for p in folder.glob("*.png")))
print(client.get_run(version.run_id).data.tags["promotion.reason"])

# %% [markdown]
# ## 3. Score June's export (no labels yet): probability, decile, band and reasons

# %%
june = conf_for(data / "churn_june.csv")
run(score_churn, june, "--date", "2026-06-30")
scores = tables.read(spark, root, churn_score.CHURN_SCORES).where(F.col("score_date") == "2026-06-30")
print(scores.groupBy("risk_band").agg(F.count("*").alias("customers"), F.avg("probability")).toPandas())
for row in scores.orderBy(F.col("probability").desc()).limit(3).collect():
    print(
        f"{row['subscriber_key']}  P(churn) {row['probability']:.2f}  " + "; ".join(d["reason"] for d in row["drivers"])
    )

# %% [markdown]
# ## 4. Drift: does June look like May? Population stability of the score and the features
# Prices rose 15 % in June: MonthlyCharges and TotalCharges shift, the others do not.

# %%
may_df = churn_data.byo_dataset(
    spark,
    settings.ChurnDataset(path=str(data / "churn_may.csv"), id="customerID", label="Churn"),
    settings.ChurnConfig(),
).df
june_df = churn_data.byo_dataset(
    spark,
    settings.ChurnDataset(path=str(data / "churn_june.csv"), id="customerID", label="Churn"),
    settings.ChurnConfig(),
    scoring=True,
).df
champion = registry.current(registered["model_name"], "champion")
columns = ["tenure", "Contract", "MonthlyCharges", "TotalCharges", "complaints_90d"]
reference = churn_run.scored_by(champion.model, may_df.where(F.col("split") == "train")).select("score", *columns)
current = churn_run.scored_by(champion.model, june_df).select("score", *columns)
psi = monitoring.psi_table(reference, current, ["score", *columns])
print(psi.round(3))
assert psi.set_index("feature").loc["MonthlyCharges", "psi"] > 0.1 > psi.set_index("feature").loc["tenure", "psi"]
