"""train-uplift and score-uplift on a small constructed lake with a planted uplift: past lists of a
retention campaign (treatment and hash-drawn control) whose treated lines with x > 0 are retained
more and with x < 0 less; the registry's aliases and the promotion rule, gold.model_metrics, the
Qini against the random baseline, uplift by decile, idempotent scoring, publish ranking by uplift,
and the refusal of too few rows."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
import yaml
from crmlake.catalog import tables
from crmlake.catalog.registry import CAMPAIGN_TARGETS_SCHEMA
from crmlake.models import uplift_run
from crmlake.models.uplift import with_subscriber_split
from crmlake.publish.run import lake_view
from crmlake_jobs import publish as publish_job
from crmlake_jobs import score_uplift as score_job
from crmlake_jobs import train_uplift as train_job
from mlflow import MlflowClient
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

MODEL = "crmlake-uplift-test"
HORIZON = 14
PUBLISHED = [dt.date(2026, 1, 5), dt.date(2026, 1, 12), dt.date(2026, 1, 19)]
TRAINED = dt.date(2026, 2, 10)  # every list's outcome has matured
SCORED = dt.date(2026, 2, 25)  # past the contact policy's window of the lists' treatments
N = 1200  # subscribers; each in two of the three lists
CONF = {
    "labels": {"horizon_days": HORIZON, "campaign_horizon_days": HORIZON},
    "uplift": {
        "model_name": MODEL,
        "candidates": ["logistic_regression"],
        "curve_bins": 20,
        "min_rows_per_group": 30,
        "seed": 7,
    },
}


def subscriber(i: int, rng: random.Random) -> dict:
    return {
        "key": f"s{i:05d}",
        "x": rng.uniform(-1, 1),
        "tenure": None if rng.random() < 0.05 else rng.randrange(30, 1500),
        "plan": rng.choice(["prepaid", "postpaid"]),
        "noise": rng.gauss(0, 1),
    }


def retained_probability(s: dict, treated: bool) -> float:
    """The planted truth: tenure keeps lines whatever happens; the contact adds 0.35·x."""
    base = 0.55 + (0.2 if (s["tenure"] or 0) > 365 else 0.0)
    return min(0.98, max(0.02, base + (0.35 * s["x"] if treated else 0.0)))


def build_lake(spark, root: str, seed: int = 11) -> dict:
    rng = random.Random(seed)
    subs = [subscriber(i, rng) for i in range(N)]
    feature_rows, target_rows, label_rows, unlabelled = [], [], [], 0
    for s in subs:
        for d in [*PUBLISHED, SCORED]:
            feature_rows.append((s["key"], d, s["x"], s["tenure"], s["plan"], s["noise"], "active"))
        for rank, d in enumerate(rng.sample(PUBLISHED, 2)):
            treated = rng.random() < 0.7
            target_rows.append(
                ("retention-test", d, f"run-{d}", s["key"], "+98912" if treated else None,
                 "treatment" if treated else "control", rank + 1, None, "RET", 1.0, "sms", "retention", [],
                 d + dt.timedelta(days=14))
            )  # fmt: skip
            if rng.random() < 0.02:
                unlabelled += 1  # no label row: left out and counted
                continue
            churned = rng.random() >= retained_probability(s, treated)
            label_rows.append((s["key"], d, HORIZON, churned))
        # an upsell campaign's list is not a retention list: left out by default
        target_rows.append(
            ("upsell-test", PUBLISHED[0], f"run-up-{PUBLISHED[0]}", s["key"], None, "control", 1, None, "UP", 1.0,
             "sms", "upsell", [], PUBLISHED[0])
        )  # fmt: skip
    features = spark.createDataFrame(
        feature_rows,
        "subscriber_key string, snapshot_date date, x double, tenure_days int, plan_type string, noise double, "
        "status string",
    )
    tables.create(features, root, "gold.features")
    tables.create(spark.createDataFrame(target_rows, CAMPAIGN_TARGETS_SCHEMA), root, "gold.campaign_targets")
    labels = spark.createDataFrame(
        label_rows, "subscriber_key string, snapshot_date date, horizon_days int, is_churned boolean"
    )
    tables.create(labels, root, "gold.churn_labels")
    return {"subscribers": {s["key"]: s for s in subs}, "unlabelled": unlabelled, "retention_rows": 2 * N}


def conf_file(folder, **uplift) -> str:
    conf = {**CONF, "uplift": {**CONF["uplift"], **uplift}}
    path = folder / f"uplift-{len(list(folder.glob('uplift-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(conf, sort_keys=False), encoding="utf-8")
    return str(path)


def last_run(spark, root: str, job: str):
    log_df = tables.read(spark, root, "gold.run_log").where(F.col("job") == job)
    return log_df.orderBy(F.col("started_at").desc()).first()


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uplift")
    root = str(folder / "root")
    truth = build_lake(spark, root)
    conf = conf_file(folder)
    argv = ["--root", root, "--conf", conf, "--log-format", "text"]
    assert train_job.main([*argv, "--date", str(TRAINED)], spark=spark) == 0
    assert score_job.main([*argv, "--date", str(SCORED)], spark=spark) == 0
    return {"root": root, "conf": conf, "folder": folder, "argv": argv, **truth}


@pytest.mark.slow
def test_training_registers_a_champion_and_writes_every_metric(spark, lake):
    version = MlflowClient().get_model_version_by_alias(MODEL, "champion")
    assert str(version.version) == "1"
    metrics_df = tables.read(spark, lake["root"], uplift_run.MODEL_METRICS).where(F.col("model_name") == MODEL)
    got = {(r["candidate"], r["split"], r["metric"]) for r in metrics_df.collect()}
    expected = {
        (f"{learner}:logistic_regression", split, metric)
        for learner in ("two_model", "class_transformation")
        for split in ("validation", "test")
        for metric in uplift_run.KEPT
    }
    assert got == expected
    assert metrics_df.select("dataset", "model_version").distinct().collect()[0].asDict() == {
        "dataset": "gold.campaign_targets",
        "model_version": "1",
    }
    run = last_run(spark, lake["root"], "train-uplift")
    details = json.loads(run["details"])
    assert run["status"] == "succeeded" and run["model_version"] == f"{MODEL}/1"
    # retention lists only, the targets without a label left out and counted
    assert details["unlabelled_targets_left_out"] == lake["unlabelled"]
    assert run["rows_read"] == lake["retention_rows"] - lake["unlabelled"]
    assert {c for c, _ in details["lists"]} == {"retention-test"}
    folder = Path(MlflowClient().download_artifacts(version.run_id, "evaluation"))
    assert {"qini.png", "uplift_curve.png", "uplift_by_decile.png", "curves.csv"} <= {p.name for p in folder.iterdir()}


@pytest.mark.slow
def test_the_models_test_qini_beats_random_and_its_deciles_are_ordered(spark, lake):
    details = json.loads(last_run(spark, lake["root"], "train-uplift")["details"])
    test = details["test"]
    assert test["qini_low"] > 0 and test["qini"] > 0.01  # the random ranking's Qini is 0
    assert test["auuc"] > test["auuc_random"]
    deciles = details["uplift_by_decile"]
    assert len(deciles) == 10
    assert deciles[0] > deciles[-1] and sum(deciles[:3]) > sum(deciles[-3:])


@pytest.mark.slow
def test_scoring_covers_the_base_once_follows_the_planted_uplift_and_is_idempotent(spark, lake):
    root = lake["root"]
    scores = tables.read(spark, root, uplift_run.UPLIFT_SCORES).where(F.col("score_date") == SCORED)
    base = tables.read(spark, root, "gold.features").where(F.col("snapshot_date") == SCORED)
    assertDataFrameEqual(scores.select("subscriber_key"), base.select("subscriber_key"))
    assert scores.agg(F.min("uplift_decile"), F.max("uplift_decile")).first() == (1, 10)
    assert scores.select("model_name", "model_version").distinct().collect()[0].asDict() == {
        "model_name": MODEL,
        "model_version": "1",
    }
    x = {k: s["x"] for k, s in lake["subscribers"].items()}
    by_decile = {}
    for r in scores.select("subscriber_key", "uplift_decile").collect():
        by_decile.setdefault(r["uplift_decile"], []).append(x[r["subscriber_key"]])
    assert sum(by_decile[1]) / len(by_decile[1]) > 0.5 > -0.5 > sum(by_decile[10]) / len(by_decile[10])
    before = scores.drop("run_id").localCheckpoint()
    assert score_job.main([*lake["argv"], "--date", str(SCORED)], spark=spark) == 0
    after = tables.read(spark, root, uplift_run.UPLIFT_SCORES).where(F.col("score_date") == SCORED).drop("run_id")
    assertDataFrameEqual(after, before)


@pytest.mark.slow
def test_a_retrained_equal_model_stays_challenger_and_the_comparison_is_kept(spark, lake):
    assert train_job.main([*lake["argv"], "--date", str(TRAINED)], spark=spark) == 0
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(MODEL, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(MODEL, "challenger").version) == "2"
    details = json.loads(last_run(spark, lake["root"], "train-uplift")["details"])
    assert "not promoted" in details["promotion"]["reason"]
    compared = tables.read(spark, lake["root"], uplift_run.MODEL_METRICS).where(
        (F.col("candidate") == "champion") & (F.col("metric") == "qini")
    )
    assert [(r["model_version"], r["value"]) for r in compared.collect()] == [("1", details["promotion"]["champion"])]


@pytest.mark.slow
def test_publish_ranks_a_campaign_by_uplift(spark, lake, monkeypatch):
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", "uplift-key")
    root, folder = lake["root"], lake["folder"]
    keys = sorted(lake["subscribers"])
    master = spark.createDataFrame(
        [(k, SCORED, "active", dt.date(2024, 1, 1), None, True, False, SCORED, None, True) for k in keys],
        "subscriber_key string, extract_date date, status string, activation_date date, deactivation_date date, "
        "is_marketing_consent boolean, is_do_not_contact boolean, valid_from date, valid_to date, is_current boolean",
    )
    tables.create(master, root, "silver.subscribers")
    contacts = spark.createDataFrame(
        [(k, f"+98912{i:07d}") for i, k in enumerate(keys)], "subscriber_key string, msisdn string"
    )
    tables.create(contacts, root, "silver.subscriber_contacts")
    campaigns = folder / "campaigns"
    campaigns.mkdir()
    definition = {
        "id": "persuade",
        "objective": "retention",
        "eligibility": {"plan_types": ["prepaid"]},
        "ranking": {"by": "uplift"},
        "size_cap": 80,
        "channel": "sms",
        "offer": {"code": "P-1", "cost": 1},
        "control_fraction": 0.2,
    }
    (campaigns / "persuade.yaml").write_text(yaml.safe_dump(definition), encoding="utf-8")
    conf = folder / "publish.yaml"
    conf.write_text(yaml.safe_dump({"publish": {"campaigns_dir": str(campaigns)}}), encoding="utf-8")
    argv = ["--root", root, "--conf", str(conf), "--log-format", "text", "--date", str(SCORED)]
    assert publish_job.main(argv, spark=spark) == 0
    got = tables.read(spark, root, "gold.campaign_targets").where(F.col("campaign_id") == "persuade")
    scores = tables.read(spark, root, uplift_run.UPLIFT_SCORES).where(F.col("score_date") == SCORED)
    prepaid = tables.read(spark, root, "gold.features").where(
        (F.col("snapshot_date") == SCORED) & (F.col("plan_type") == "prepaid")
    )
    best = (
        scores.join(prepaid.select("subscriber_key"), on="subscriber_key", how="inner")
        .orderBy(F.col("uplift").desc(), "subscriber_key")
        .limit(80)
        .collect()
    )
    ranked = [r["subscriber_key"] for r in got.orderBy("rank").collect()]
    assert ranked == [r["subscriber_key"] for r in best]
    assert {tuple(r["models"]) for r in got.collect()} == {(f"{MODEL}/1",)}


@pytest.mark.slow  # builds a lake of its own
def test_too_few_rows_in_a_group_stop_training_naming_the_count_and_key(spark, tmp_path, capsys):
    root = str(tmp_path / "root")
    build_lake(spark, root)
    conf = conf_file(tmp_path, min_rows_per_group=1000)
    argv = ["--root", root, "--conf", conf, "--log-format", "text", "--date", str(TRAINED)]
    assert train_job.main(argv, spark=spark) == 2
    err = capsys.readouterr().err
    assert "uplift.min_rows_per_group (1000)" in err and "the control group of the train split has" in err
    assert not tables.exists(spark, root, uplift_run.MODEL_METRICS)


def test_one_subscriber_never_spans_two_splits(spark):
    rows = [(f"k{i % 300}", i) for i in range(1200)]
    split_df = with_subscriber_split(spark.createDataFrame(rows, "subscriber_key string, n int"), 0.25, 0.25, 3)
    sides = split_df.groupBy("subscriber_key").agg(F.collect_set("split").alias("sides"))
    assert sides.where(F.size("sides") != 1).count() == 0
    shares = {r["split"]: r["count"] / 1200 for r in split_df.groupBy("split").count().collect()}
    assert set(shares) == {"train", "validation", "test"} and 0.4 < shares["train"] < 0.6
    again = with_subscriber_split(spark.createDataFrame(rows, "subscriber_key string, n int"), 0.25, 0.25, 3)
    assertDataFrameEqual(again, split_df)


def test_the_lake_view_knows_a_model_kind_by_its_joined_scores(spark):
    churn_only = spark.createDataFrame([("a", 0.3)], "subscriber_key string, churn_probability double")
    both = spark.createDataFrame([("a", 0.3, 0.1)], "subscriber_key string, churn_probability double, uplift double")
    assert lake_view(churn_only, ["crmlake-churn/1"]).models == {"churn"}
    assert lake_view(both, ["crmlake-churn/1", "crmlake-uplift/2"]).models == {"churn", "uplift"}
    assert lake_view(both, []).models == set()
