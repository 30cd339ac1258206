# %% [markdown]
# # crmlake walkthrough: segments, migration and lifetime value
#
# A percent-format notebook (Jupyter with jupytext, VS Code, or run as a script); the test suite
# executes it. Part 1 takes a tiny synthetic operator through features to segments at two dates:
# the profiles of the segments, the clusters' names and what sets them apart, and who moved
# between them. Part 2 estimates lifetime value: on the operator's own top-ups and postpaid lines,
# and on the CDNOW data set of the BG/NBD paper given as a team's own CSV, where a calibration
# period and a holdout show how well the model predicts. Set `CRMLAKE_NOTEBOOK_ROOT` to choose
# where the tables go.

# %%
import datetime as dt
import os
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import pandas as pd
from crmlake.catalog import tables
from crmlake.core.config import load_config
from crmlake.core.session import build_session
from crmlake.gold import clv_run
from crmlake_jobs.clv import main as clv
from crmlake_jobs.features import main as features
from crmlake_jobs.generate import main as generate
from crmlake_jobs.ingest import main as ingest
from crmlake_jobs.segment import main as segment
from pyspark.sql import functions as F

warnings.filterwarnings("ignore", category=DeprecationWarning)
root = os.environ.get("CRMLAKE_NOTEBOOK_ROOT") or tempfile.mkdtemp(prefix="crmlake-notebook-")
Path(root).mkdir(parents=True, exist_ok=True)
cfg = load_config(overrides={"root": root})
spark = build_session(cfg)  # reuses a running session (a test's, a notebook kernel's)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 20)

START, DAYS = dt.date(2026, 3, 1), 6
FIRST, LAST = START + dt.timedelta(days=1), START + dt.timedelta(days=DAYS - 1)
# Compare snapshots four days apart (the default looks a month back).
conf = Path(root) / "notebook.yaml"
conf.write_text("segments:\n  migration_gap_days: 4\n", encoding="utf-8")


def run(job, *args) -> None:
    argv = ["--root", root, "--conf", str(conf), "--log-format", "text", *[str(a) for a in args]]
    assert job(argv, spark=spark) == 0, f"{job.__module__} {args} failed"


# %% [markdown]
# ## 1. A synthetic operator: 300 subscribers over 6 days, features on the 2nd and the 6th

# %%
run(generate, "--subscribers", 300, "--start", START, "--days", DAYS, "--seed", 11, "--bad-rate", 0)
run(ingest, "--all")
for day in (FIRST, LAST):
    run(features, "--date", day)

# %% [markdown]
# ## 2. Segments on both dates
#
# Every subscriber in the base gets a label from each scheme (thresholds in
# `conf/base/segments.yaml`). The clusters are fitted on the first date, registered in MLflow,
# and reused on the second, so a cluster keeps its id and name.

# %%
run(segment, "--date", FIRST)
run(segment, "--date", LAST)
segments_df = tables.read(spark, root, "gold.segments")
latest_df = segments_df.where(F.col("snapshot_date") == LAST)
print(latest_df.groupBy("lifecycle_stage").count().orderBy(F.desc("count")).toPandas())
versions = segments_df.select("snapshot_date", "segments_model_version").distinct().toPandas()
assert versions["segments_model_version"].nunique() == 1, versions  # the same model on both dates

# %% [markdown]
# ## 3. Segment profiles: size, revenue and, for clusters, what sets them apart

# %%
profiles = tables.read(spark, root, "gold.segment_profiles").where(F.col("snapshot_date") == LAST).toPandas()
print(profiles[profiles["scheme"] == "cluster_name"].drop(columns=["snapshot_date"]).to_string(index=False))
sizes = profiles.groupby("scheme")["subscribers"].sum()
assert (sizes == latest_df.count()).all(), sizes  # every scheme covers the whole base

# %% [markdown]
# ## 4. Migration between the two snapshots
#
# Who moved from one segment to another (and who joined or left the base), with their revenue.

# %%
moves = tables.read(spark, root, "gold.segment_migration").where(F.col("to_date") == LAST).toPandas()
lifecycle = moves[moves["scheme"] == "lifecycle_stage"].sort_values("subscribers", ascending=False)
print(lifecycle.head(12).to_string(index=False))
changed = lifecycle[lifecycle["from_segment"] != lifecycle["to_segment"]]
print(f"{changed['subscribers'].sum()} subscribers changed lifecycle stage between {FIRST} and {LAST}")

# %% [markdown]
# ## 5. Lifetime value of the operator's customers
#
# Calibrated on the top-ups up to the 4th day; the last two days are the holdout. Prepaid lines
# get BG/NBD + Gamma-Gamma, postpaid lines an sBG per cohort and tariff.

# %%
CALIBRATION = START + dt.timedelta(days=3)
run(clv, "--date", CALIBRATION)
fits = tables.read(spark, root, "gold.clv_models").toPandas()
print(fits[["model", "group", "customers", "converged", "is_used", "message"]].head(10).to_string(index=False))
value_df = tables.read(spark, root, "gold.clv").where(F.col("as_of_date") == CALIBRATION)
print(value_df.groupBy("model").agg(F.count("*").alias("customers"), F.avg("clv_12m").alias("clv_12m")).toPandas())
if tables.exists(spark, root, "gold.clv_validation"):  # only where BG/NBD could be used on 4 days
    print(tables.read(spark, root, "gold.clv_validation").toPandas())

# %% [markdown]
# ## 6. Bring your own data: CDNOW, calibration against holdout
#
# The 2,357 CDNOW customers of Fader, Hardie & Lee (2005) as a CSV export: 39 weeks of
# calibration (to 1997-09-30), 39 weeks of holdout. The fit gives the paper's r = 0.243,
# α = 4.414, a = 0.793, b = 2.426.

# %%
source = resources.files("lifetimes.datasets") / "CDNOW_sample.txt"
cdnow = pd.read_csv(source, sep=r"\s+", header=None, names=["master", "customer", "date", "cds", "dollars"])
cdnow_csv = Path(root) / "cdnow.csv"
cdnow[["customer", "date", "dollars"]].to_csv(cdnow_csv, index=False)
byo = Path(root) / "cdnow.yaml"
byo.write_text(
    "clv:\n"
    f"  transactions: {{path: '{cdnow_csv}', customer: customer, time: date, amount: dollars}}\n"
    "  time_unit: week\n",
    encoding="utf-8",
)
byo_root = Path(root) / "cdnow-root"
byo_root.mkdir(exist_ok=True)
assert clv(["--root", str(byo_root), "--conf", str(byo), "--date", "1997-09-30"], spark=spark) == 0
bgnbd = tables.read(spark, str(byo_root), "gold.clv_models").where("model = 'bgnbd'").first()["params"]
print({k: round(v, 3) for k, v in bgnbd.items()})
assert [round(bgnbd[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]

# %% [markdown]
# Predicted against actual repeat purchases in the holdout, by the number of repeat purchases in
# calibration, and the cumulative repeat purchases week by week (the paper's Figure 3).

# %%
report = tables.read(spark, str(byo_root), "gold.clv_validation").toPandas()
print(report[["report", "bucket", "customers", "predicted", "actual", "mean_absolute_error"]].to_string(index=False))
transactions_df = (
    spark.read.option("header", True)
    .csv(str(cdnow_csv))
    .select(
        F.col("customer").alias("customer_id"),
        F.to_timestamp(F.col("date"), "yyyyMMdd").alias("time"),
        F.col("dollars").cast("double").alias("amount"),
    )
)
settings = load_config([str(byo)]).settings.clv
tracking = clv_run.cumulative_tracking(
    transactions_df, dt.date(1997, 9, 30), dt.date(1998, 6, 30), dict(bgnbd), settings
)
weekly = tracking.iloc[::7]
print(weekly.tail(5).to_string(index=False))
figure = Path(root) / "cdnow_tracking.png"
clv_run.plot_tracking(tracking, dt.date(1997, 9, 30), figure)
print(f"plot: {figure}")
assert abs(tracking["predicted"].iloc[-1] / tracking["actual"].iloc[-1] - 1) < 0.1
