# %% [markdown]
# # crmlake walkthrough: analysing a campaign
#
# A percent-format notebook (Jupyter with jupytext, VS Code, or run as a script); the test suite
# executes it. It follows one retention campaign around the loop: the list `crmlake publish`
# builds (who was eligible, who was suppressed and why, treatment and control by risk band and
# segment), the lift `crmlake measure` reads against the control group (overall and by segment,
# with intervals, both ways: plain difference and CUPED), and the uplift model `crmlake
# train-uplift` learns from the answered list, judged by its Qini curve against random targeting.
#
# The lake is built here: a scored base of lines, and the operator's answer to the list, with a
# planted truth (who is persuadable, who is a sleeping dog) so every number can be checked
# against it. On the demo's lake (`scripts/demo.sh`, which lets crmlake's synthetic operator
# answer), set `CRMLAKE_NOTEBOOK_ROOT` to its root and `CRMLAKE_NOTEBOOK_CAMPAIGN` to
# `demo-retention`: the notebook then reads that lake's list, lift and uplift model instead.

# %%
import datetime as dt
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from crmlake.catalog import tables
from crmlake.core.config import load_config
from crmlake.core.session import build_session
from crmlake.models.uplift import with_subscriber_split
from crmlake.models.uplift_evaluation import cell_metrics, curve_table, plot_qini, uplift_cells
from crmlake_jobs.measure import main as measure
from crmlake_jobs.publish import main as publish
from crmlake_jobs.score_uplift import main as score_uplift
from crmlake_jobs.train_uplift import main as train_uplift
from pyspark.sql import functions as F

warnings.filterwarnings("ignore", category=DeprecationWarning)
root = os.environ.get("CRMLAKE_NOTEBOOK_ROOT") or tempfile.mkdtemp(prefix="crmlake-notebook-")
Path(root).mkdir(parents=True, exist_ok=True)
campaign = os.environ.get("CRMLAKE_NOTEBOOK_CAMPAIGN", "")
own_lake = not campaign  # build the lake and play the operator here
cfg = load_config(overrides={"root": root})
spark = build_session(cfg)  # reuses a running session (a test's, a notebook kernel's)
pd.set_option("display.width", 160)
pd.set_option("display.max_columns", 24)
os.environ.setdefault("CRMLAKE_HMAC_KEY", "notebook-key")

# %% [markdown]
# ## A scored base
#
# 3,000 lines on the publish date P: features, a churn score with its risk band, a lifecycle
# segment, the master's consent flags and the delivery numbers. The planted truth: *declining*
# lines that still use data are persuadable (a contact keeps most of those who would leave),
# *new* lines are sleeping dogs (a contact pushes some away), the rest do as they would have.

# %%
P, H = dt.date(2026, 3, 2), 14
rng = np.random.default_rng(2026)
if own_lake:
    campaign = "spring-retention"
    n = 3000
    stage = rng.choice(["new", "growing", "mature", "declining"], n, p=[0.15, 0.2, 0.4, 0.25])
    data_mb = np.round(rng.gamma(2.0, 900.0, n), 1)
    tenure = np.where(stage == "new", rng.integers(5, 60, n), rng.integers(60, 2500, n))
    idle = rng.integers(0, 12, n)
    churn_p = 1 / (1 + np.exp(-(-2.6 + 1.3 * (stage == "declining") + 0.6 * (stage == "new") + 0.08 * idle)))
    base = pd.DataFrame(
        {
            "subscriber_key": [f"sub-{i:05d}" for i in range(n)],
            "snapshot_date": P,
            "plan_type": rng.choice(["prepaid", "postpaid"], n, p=[0.7, 0.3]),
            "tenure_days": tenure.astype("int32"),
            "days_since_last_activity": idle.astype("int32"),
            "data_mb_30d": data_mb,
            # usage 30 days against the 30 before: declining lines fade
            "data_trend_30d": np.round(np.where(stage == "declining", -0.4, 0.05) + rng.normal(0, 0.15, n), 3),
            "churn_probability": churn_p,
            "is_persuadable": (stage == "declining") & (data_mb > 600),
            "is_sleeping_dog": stage == "new",
            "lifecycle_stage": stage,
        }
    )
    decile = (base["churn_probability"].rank(ascending=False, method="first") - 1) * 10 // n + 1
    base["risk_band"] = np.where(decile <= 1, "high", np.where(decile <= 3, "medium", "low"))
    features = base[["subscriber_key", "snapshot_date", "plan_type", "tenure_days", "days_since_last_activity",
                     "data_mb_30d", "data_trend_30d"]]  # fmt: skip
    tables.create(spark.createDataFrame(features), root, "gold.features")
    scores = base.assign(source="operator", score_date=P, model_name="crmlake-churn", model_version="1",
                         probability=base["churn_probability"], decile=decile.astype("int32"))  # fmt: skip
    tables.create(
        spark.createDataFrame(
            scores[
                [
                    "source",
                    "score_date",
                    "subscriber_key",
                    "model_name",
                    "model_version",
                    "probability",
                    "decile",
                    "risk_band",
                ]
            ]
        ),  # fmt: skip
        root,
        "gold.churn_scores",
    )
    tables.create(
        spark.createDataFrame(base[["subscriber_key", "snapshot_date", "lifecycle_stage"]]), root, "gold.segments"
    )
    master = pd.DataFrame(
        {
            "subscriber_key": base["subscriber_key"],
            "extract_date": P,
            "status": "active",
            "activation_date": [P - dt.timedelta(days=int(t)) for t in tenure],
            "deactivation_date": pd.Series([None] * n, dtype="object"),
            "is_marketing_consent": rng.random(n) < 0.85,
            "is_do_not_contact": rng.random(n) < 0.03,
            "valid_from": P,
            "valid_to": pd.Series([None] * n, dtype="object"),
            "is_current": True,
        }
    )
    tables.create(
        spark.createDataFrame(
            master,
            "subscriber_key string, extract_date date, status string, activation_date date, "
            "deactivation_date date, is_marketing_consent boolean, is_do_not_contact boolean, valid_from date, "
            "valid_to date, is_current boolean",
        ),
        root,
        "silver.subscribers",
    )
    contacts = pd.DataFrame({"subscriber_key": base["subscriber_key"], "msisdn": [f"+98912{i:07d}" for i in range(n)]})
    tables.create(spark.createDataFrame(contacts), root, "silver.subscriber_contacts")

# %% [markdown]
# ## The list
#
# One campaign: every line with a high or medium churn risk or in decline, ranked by churn
# probability, half of them held out as controls so this small base yields groups large enough
# to read a lift from. `publish` applies consent and do-not-contact whatever the definition says.

# %%
conf_path = Path(root) / "notebook-campaign.yaml"
if own_lake:
    folder = Path(root) / "campaigns"
    folder.mkdir(exist_ok=True)
    definition = {
        "id": campaign,
        "objective": "retention",
        "eligibility": {"where": "risk_band IN ('high', 'medium') OR lifecycle_stage = 'declining'"},
        "ranking": {"by": "churn_probability"},
        "size_cap": 1600,
        "channel": "sms",
        "offer": {"code": "RET-SPRING", "cost": 3.0},
        "control_fraction": 0.5,
        "priority": 1,
    }
    (folder / f"{campaign}.yaml").write_text(yaml.safe_dump(definition), encoding="utf-8")
    conf = {
        "publish": {"campaigns_dir": str(folder), "measure": {"min_group_size": 30}},
        "labels": {"horizon_days": H, "campaign_horizon_days": H},
        "uplift": {"model_name": "crmlake-uplift-notebook", "candidates": ["logistic_regression"],
                   "min_rows_per_group": 30, "curve_bins": 20},
    }  # fmt: skip
    conf_path.write_text(yaml.safe_dump(conf), encoding="utf-8")
    assert publish(["--root", root, "--conf", str(conf_path), "--date", str(P)], spark=spark) == 0
argv = ["--root", root] + (["--conf", str(conf_path)] if conf_path.exists() else [])

targets_df = tables.read(spark, root, "gold.campaign_targets").where(F.col("campaign_id") == campaign)
P = targets_df.agg(F.max("publish_date")).first()[0]
targets_df = targets_df.where(F.col("publish_date") == P)
run = (
    tables.read(spark, root, "gold.run_log")
    .where((F.col("job") == "publish") & (F.col("run_date") == P))
    .orderBy(F.col("started_at").desc())
    .first()
)
print(f"{campaign} on {P}: suppressed before ranking (reasons overlap):", run["details"] if run else "not logged")
segments_df = tables.read(spark, root, "gold.segments")
seg_date = segments_df.where(F.col("snapshot_date") <= P).agg(F.max("snapshot_date")).first()[0]
composition = (
    targets_df.join(
        segments_df.where(F.col("snapshot_date") == seg_date).select("subscriber_key", "lifecycle_stage"),
        on="subscriber_key",
        how="left",
    )
    .groupBy("group", "score_band", "lifecycle_stage")
    .count()
    .toPandas()
    .pivot_table(index=["score_band", "lifecycle_stage"], columns="group", values="count", fill_value=0)
)
print(composition)

# %% [markdown]
# ## The operator answers
#
# (Skipped on a lake whose operator answered.) Over the next H days a line leaves with its churn
# probability, except that a delivered offer keeps 80% of persuadable leavers and pushes 35% of
# the sleeping dogs away; accepted offers appear in the campaign responses. The answer lands in
# the tables `measure` reads: churn labels at P, subscriber-days around P, the responses.

# %%
if own_lake:
    listed = targets_df.select("subscriber_key", "group").toPandas().merge(base, on="subscriber_key")
    treated = (listed["group"] == "treatment").to_numpy()
    p_leave = listed["churn_probability"].to_numpy()
    is_persuadable = listed["is_persuadable"].to_numpy()
    is_dog = listed["is_sleeping_dog"].to_numpy()
    p_leave = np.where(treated & is_persuadable, p_leave * 0.2, p_leave)
    p_leave = np.where(treated & is_dog, p_leave + 0.35 * (1 - p_leave), p_leave)
    churned = rng.random(len(listed)) < p_leave
    labels = pd.DataFrame({"subscriber_key": listed["subscriber_key"], "snapshot_date": P, "horizon_days": H,
                           "is_churned": churned})  # fmt: skip
    tables.create(spark.createDataFrame(labels), root, "gold.churn_labels")
    churn_day = np.where(churned, rng.integers(1, H + 1, len(listed)), H + 1)
    daily = []
    spend = listed["data_mb_30d"].to_numpy() / 400.0
    for i, key in enumerate(listed["subscriber_key"]):
        for offset in range(-H + 1, H + 1):
            if offset >= churn_day[i]:
                break
            active = rng.random() < 0.85
            amount = round(float(spend[i] * rng.uniform(0.5, 1.5)), 2) if active else 0.0
            daily.append((key, P + dt.timedelta(days=offset), amount, 0.0, active))
    tables.create(
        spark.createDataFrame(
            daily,
            "subscriber_key string, date date, revenue_usage double, bill_amount double, has_revenue_activity boolean",
        ).select(
            "subscriber_key",
            "date",
            F.col("revenue_usage").cast("decimal(18,2)").alias("revenue_usage"),
            F.col("bill_amount").cast("decimal(18,2)").alias("bill_amount"),
            "has_revenue_activity",
        ),  # fmt: skip
        root,
        "gold.subscriber_daily",
    )
    accepts = treated & (rng.random(len(listed)) < np.where(is_persuadable, 0.45, np.where(is_dog, 0.0, 0.2)))
    responses = listed.loc[treated, ["subscriber_key"]].assign(
        campaign_id=campaign, event_date=P + dt.timedelta(days=1), has_accepted_offer=accepts[treated]
    )
    tables.create(spark.createDataFrame(responses), root, "silver.campaign_responses")
    measured_on = P + dt.timedelta(days=H)
    assert measure([*argv, "--campaign", campaign, "--date", str(measured_on)], spark=spark) == 0

# %% [markdown]
# ## The lift
#
# Treatment against control, overall and by segment, with 95% intervals. CUPED adjusts each
# line's outcome by the same quantity before P (days active for retention, revenue for revenue),
# which narrows the interval where it correlates with the outcome; both are shown. A segment
# with too few controls gets a note instead of a number.

# %%
results = (
    tables.read(spark, root, "gold.campaign_results")
    .where((F.col("campaign_id") == campaign) & (F.col("publish_date") == P))
    .toPandas()
)
show = ["breakdown", "breakdown_value", "metric", "method", "n_treatment", "n_control", "mean_treatment",
        "mean_control", "abs_lift", "abs_lift_lo", "abs_lift_hi", "variance_reduction", "note"]  # fmt: skip
overall = results[results["breakdown"] == "all"].sort_values(["metric", "method"])[show]
print(overall.to_string(index=False))
by_segment = results[(results["breakdown"].str.startswith("segment")) & (results["metric"] == "retention")]
print(by_segment.sort_values(["breakdown", "breakdown_value", "method"])[show].to_string(index=False))

# %%
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plotted = by_segment[(by_segment["method"] == "difference") & by_segment["abs_lift"].notna()]
    fig, ax = plt.subplots(figsize=(6, 3))
    y = np.arange(len(plotted))
    ax.errorbar(
        plotted["abs_lift"],
        y,
        xerr=[plotted["abs_lift"] - plotted["abs_lift_lo"], plotted["abs_lift_hi"] - plotted["abs_lift"]],
        fmt="o",
    )
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(y, plotted["breakdown"] + " = " + plotted["breakdown_value"])
    ax.set_xlabel("retention lift (treated − control), 95% interval")
    fig.tight_layout()
    fig.savefig(Path(root) / "lift_by_segment.png", dpi=100)
    plt.close(fig)
except ImportError:  # matplotlib is optional: the tables above carry the same numbers
    pass

if own_lake:
    # the planted truth: declining lines (mostly persuadable) gain, new lines (sleeping dogs) do not
    plain = by_segment[by_segment["method"] == "difference"].set_index("breakdown_value")["abs_lift"]
    assert plain["declining"] > 0, plain
    assert not plain.get("new", -1) > plain["declining"], plain

# %% [markdown]
# ## Uplift: who to contact next time
#
# `train-uplift` learns from the answered list (a two-model and a class-transformation learner,
# chosen on validation Qini), registers the model, and `score-uplift` scores the base. The Qini
# curve below is drawn on the test split only (subscribers the model never saw), against the
# random ranking's straight line; the coefficient comes with a bootstrap interval.

# %%
trained_on = P + dt.timedelta(days=H)
if own_lake:
    assert train_uplift([*argv, "--date", str(trained_on)], spark=spark) == 0
    assert score_uplift([*argv, "--date", str(P)], spark=spark) == 0
scores_df = tables.read(spark, root, "gold.uplift_scores").where(F.col("score_date") == P)
labels_df = tables.read(spark, root, "gold.churn_labels").where(
    (F.col("snapshot_date") == P) & (F.col("horizon_days") == H)
)
answered_df = (
    targets_df.join(scores_df.select("subscriber_key", "uplift"), on="subscriber_key", how="inner")
    .join(labels_df.select("subscriber_key", "is_churned"), on="subscriber_key", how="inner")
    .select(
        "subscriber_key",
        F.col("publish_date").alias("snapshot_date"),
        (F.col("group") == "treatment").cast("int").alias("treated"),
        (~F.col("is_churned")).cast("int").alias("retained"),
        "uplift",
    )
)
uplift_conf = cfg.settings.uplift
test_df = with_subscriber_split(answered_df, uplift_conf.validation_share, uplift_conf.test_share, uplift_conf.seed)
test_df = test_df.where(F.col("split") == "test")
cells = uplift_cells(test_df, "treated", "retained", "uplift", 10)
metrics = cell_metrics(cells, resamples=200, interval=0.95, seed=1)
print({k: round(v, 4) for k, v in metrics.items()})
curve = curve_table(cells)
print(curve[["share", "qini", "uplift"]].round(4).to_string(index=False))
plot_qini(curve, Path(root) / "qini.png")
