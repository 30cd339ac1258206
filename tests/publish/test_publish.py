"""crmlake publish on a small constructed lake: suppression whatever the campaign says (erased
subscribers included), priority between campaigns, the cap and the control group, delivery
numbers for treatment only, the contact policy across days, idempotent reruns (no new version),
the change feed, and refusals that name the problem and write nothing."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import yaml
from crmlake.catalog import tables
from crmlake.publish.run import CAMPAIGN_TARGETS
from crmlake.silver.erasure_register import ERASURE_REGISTER
from crmlake_jobs.publish import main as publish_main
from pyspark.sql import functions as F

D = dt.date(2026, 3, 2)
N = 400


def _lake(spark, root: str) -> dict:
    rng = random.Random(7)
    rows = []
    for i in range(N):
        rows.append(
            {
                "key": f"k{i:04d}",
                "plan": "prepaid" if i % 3 else "postpaid",
                "tenure": rng.randrange(10, 900),
                "idle": rng.randrange(0, 30),
                "p": rng.random(),
                "clv": rng.uniform(0, 1000),
                "stage": rng.choice(["mature", "declining", "new"]),
                "consent": rng.random() > 0.1,
                "dnc": rng.random() < 0.05,
                "deactivated": i % 50 == 0,
            }
        )
    features = spark.createDataFrame(
        [(r["key"], D, r["plan"], r["tenure"], r["idle"]) for r in rows],
        "subscriber_key string, snapshot_date date, plan_type string, tenure_days int, days_since_last_activity int",
    )
    tables.create(features, root, "gold.features")
    decile = {r["key"]: d for d, r in enumerate(sorted(rows, key=lambda r: -r["p"]))}
    for r in rows:
        r["band"] = "high" if decile[r["key"]] < N // 10 else "medium" if decile[r["key"]] < 3 * N // 10 else "low"
    scores = spark.createDataFrame(
        [
            (
                "operator",
                D,
                r["key"],
                "crmlake-churn",
                "3",
                r["p"],
                1 + decile[r["key"]] * 10 // N,
                "high" if decile[r["key"]] < N // 10 else "medium" if decile[r["key"]] < 3 * N // 10 else "low",
            )
            for r in rows
        ],  # fmt: skip
        "source string, score_date date, subscriber_key string, model_name string, model_version string, "
        "probability double, decile int, risk_band string",
    )
    tables.create(scores, root, "gold.churn_scores")
    clv = spark.createDataFrame(
        [("operator", D - dt.timedelta(days=1), r["key"], r["clv"]) for r in rows],
        "source string, as_of_date date, subscriber_key string, clv_12m double",
    )
    tables.create(clv, root, "gold.clv")
    segments = spark.createDataFrame(
        [(r["key"], D, r["stage"]) for r in rows], "subscriber_key string, snapshot_date date, lifecycle_stage string"
    )
    tables.create(segments, root, "gold.segments")
    master = spark.createDataFrame(
        [
            (
                r["key"],
                D,
                "deactivated" if r["deactivated"] else "active",
                dt.date(2024, 1, 1),
                None,
                r["consent"],
                r["dnc"],
                D,
                None,
                True,
            )
            for r in rows
        ],  # fmt: skip
        "subscriber_key string, extract_date date, status string, activation_date date, deactivation_date date, "
        "is_marketing_consent boolean, is_do_not_contact boolean, valid_from date, valid_to date, is_current boolean",
    )
    tables.create(master, root, "silver.subscribers")
    contacts = spark.createDataFrame(
        [(r["key"], f"+98912{i:07d}") for i, r in enumerate(rows)], "subscriber_key string, msisdn string"
    )
    tables.create(contacts, root, "silver.subscriber_contacts")
    return {r["key"]: r for r in rows}


CAMPAIGNS = {
    "retention": {
        "id": "retention",
        "objective": "retention",
        "eligibility": {
            "plan_types": ["prepaid"],
            "risk_bands": ["high", "medium"],
            "where": "days_since_last_activity < 20",
        },
        "ranking": {"by": "clv_at_risk"},
        "size_cap": 60,
        "channel": "sms",
        "offer": {"code": "RET-1", "cost": 5},
        "control_fraction": 0.25,
        "priority": 1,
    },
    "upsell": {
        "id": "upsell",
        "objective": "upsell",
        "eligibility": {"segments": {"lifecycle_stage": ["mature", "declining"]}},
        "ranking": {"by": "expression", "expression": "tenure_days"},
        "size_cap": 500,
        "channel": "email",
        "offer": {"code": "UP-2", "cost": 1.5},
        "control_fraction": 0.1,
        "priority": 5,
    },
}


def _conf(tmp_path, campaigns: dict, **publish) -> str:
    folder = tmp_path / "campaigns"
    folder.mkdir(exist_ok=True)
    for f in folder.glob("*.yaml"):
        f.unlink()
    for cid, c in campaigns.items():
        (folder / f"{cid}.yaml").write_text(yaml.safe_dump(c), encoding="utf-8")
    conf = tmp_path / "publish.yaml"
    conf.write_text(yaml.safe_dump({"publish": {"campaigns_dir": str(folder), **publish}}), encoding="utf-8")
    return str(conf)


def run(spark, root, conf, *args) -> int:
    return publish_main(
        ["--root", root, "--conf", conf, "--log-format", "text", *[str(a) for a in args]], spark=_spark()
    )


def _spark():
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


@pytest.fixture
def lake(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", "publish-key")
    root = str(tmp_path / "root")
    truth = _lake(spark, root)
    return {"root": root, "truth": truth, "conf": _conf(tmp_path, CAMPAIGNS), "tmp": tmp_path}


def test_lists_keep_suppression_priority_cap_and_groups(spark, lake):
    truth = lake["truth"]
    # three of the best retention candidates were erased (crmlake erase registered their keys)
    erased = sorted(truth, key=lambda k: -truth[k]["p"] * truth[k]["clv"])[:3]
    register = spark.createDataFrame(
        [(k, "REQ-1", D) for k in erased], "subscriber_key string, request_id string, erased_on date"
    )
    tables.create(register, lake["root"], ERASURE_REGISTER)
    assert run(spark, lake["root"], lake["conf"], "--date", D) == 0
    got = tables.read(spark, lake["root"], CAMPAIGN_TARGETS).collect()
    assert not set(erased) & {r["subscriber_key"] for r in got}
    by_campaign = {c: [r for r in got if r["campaign_id"] == c] for c in CAMPAIGNS}
    # nobody without consent, on do-not-contact, or out of the base, in any list or group
    for r in got:
        t = truth[r["subscriber_key"]]
        assert t["consent"] and not t["dnc"] and not t["deactivated"], r
    # the retention list: eligible only, the cap, ranked by CLV at risk
    retention = by_campaign["retention"]
    allowed = [t for t in truth.values() if t["consent"] and not t["dnc"] and not t["deactivated"]]
    wanted = [
        t
        for t in allowed
        if t["plan"] == "prepaid" and t["idle"] < 20 and t["band"] in ("high", "medium") and t["key"] not in erased
    ]
    best = sorted(wanted, key=lambda t: -t["p"] * t["clv"])[:60]
    assert {r["subscriber_key"] for r in retention} == {t["key"] for t in best}
    assert {r["score_band"] for r in retention} <= {"high", "medium"}
    ordered = sorted(retention, key=lambda r: r["rank"])
    at_risk = [truth[r["subscriber_key"]]["p"] * truth[r["subscriber_key"]]["clv"] for r in ordered]
    assert at_risk == sorted(at_risk, reverse=True)
    # priority: nobody is in both lists
    assert not {r["subscriber_key"] for r in retention} & {r["subscriber_key"] for r in by_campaign["upsell"]}
    # groups: numbers only for treatment; the models read are recorded
    for r in got:
        assert (r["msisdn"] is not None) == (r["group"] == "treatment")
        assert r["models"] == (["crmlake-churn/3"] if r["campaign_id"] == "retention" else [])
    controls = sum(r["group"] == "control" for r in by_campaign["upsell"])
    assert 0 < controls < 0.25 * len(by_campaign["upsell"])


@pytest.mark.slow  # three runs
def test_a_rerun_writes_nothing_and_the_next_day_keeps_the_quiet_period(spark, lake):
    root = lake["root"]
    assert run(spark, root, lake["conf"], "--date", D) == 0
    version = tables.version(spark, root, CAMPAIGN_TARGETS)
    first = tables.read(spark, root, CAMPAIGN_TARGETS).drop("run_id").collect()
    assert run(spark, root, lake["conf"], "--date", D) == 0
    assert tables.version(spark, root, CAMPAIGN_TARGETS) == version
    assert sorted(tables.read(spark, root, CAMPAIGN_TARGETS).drop("run_id").collect()) == sorted(first)
    # the change feed holds the inserts of the first publish
    changes = (
        spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
        .load(tables.table_path(root, CAMPAIGN_TARGETS))
    )  # fmt: skip
    assert changes.where(F.col("_change_type") == "insert").count() == len(first)
    # the next day (same snapshot moved forward): yesterday's treated are in their quiet period
    next_day = D + dt.timedelta(days=1)
    for name, column in (("gold.features", "snapshot_date"), ("gold.churn_scores", "score_date"),
                         ("gold.segments", "snapshot_date")):  # fmt: skip
        moved = tables.read(spark, root, name).where(F.col(column) == D).withColumn(column, F.lit(next_day))
        tables.append(moved, root, name)
    assert run(spark, root, lake["conf"], "--date", next_day, "--campaign", "retention") == 0
    treated = {r["subscriber_key"] for r in first if r["group"] == "treatment"}
    controls = {r["subscriber_key"] for r in first if r["group"] == "control" and r["campaign_id"] == "retention"}
    today = tables.read(spark, root, CAMPAIGN_TARGETS).where(F.col("publish_date") == next_day).collect()
    assert today and not treated & {r["subscriber_key"] for r in today}
    # controls were never contacted: the policy does not hold them back
    assert controls & {r["subscriber_key"] for r in today}


def test_a_definition_reading_a_missing_column_or_segment_fails_naming_the_file(spark, lake, capsys):
    bad = {
        **CAMPAIGNS["upsell"],
        "eligibility": {"segments": {"lifecycle_stage": ["sleepy"]}, "where": "moodiness > 1"},
    }
    conf = _conf(lake["tmp"], {"upsell": bad})
    assert run(spark, lake["root"], conf, "--date", D) == 2
    err = capsys.readouterr().err
    assert "upsell.yaml: key 'eligibility.where' reads ['moodiness']" in err
    assert "no segment ['sleepy']" in err
    assert not tables.exists(spark, lake["root"], CAMPAIGN_TARGETS)


def test_a_stale_master_stops_the_run(spark, lake, capsys):
    conf = _conf(lake["tmp"], CAMPAIGNS, max_master_age_days=0)
    later = D + dt.timedelta(days=1)
    for name, column in (("gold.features", "snapshot_date"), ("gold.segments", "snapshot_date")):
        moved = tables.read(spark, lake["root"], name).withColumn(column, F.lit(later))
        tables.append(moved, lake["root"], name)
    assert run(spark, lake["root"], conf, "--date", later, "--campaign", "upsell") == 5
    assert "newest subscriber extract is 2026-03-02" in capsys.readouterr().err
    assert not tables.exists(spark, lake["root"], CAMPAIGN_TARGETS)


def test_the_treatment_group_is_handed_over_with_a_manifest_and_a_marker_written_last(spark, lake):
    from crmlake.publish.handoff import MARKER, export_folder, verify

    root = lake["root"]
    assert run(spark, root, lake["conf"], "--date", D, "--campaign", "retention") == 0
    stored = tables.read(spark, root, CAMPAIGN_TARGETS).collect()
    run_id = stored[0]["run_id"]
    folder = export_folder(f"{root}/exports", "retention", D, run_id)
    manifest = verify(folder)
    treated = sorted(r["msisdn"] for r in stored if r["group"] == "treatment")
    assert manifest["rows"] == len(treated) and manifest["models"] == ["crmlake-churn/3"]
    csv = spark.read.option("header", True).csv(str(folder / "targets.csv"))
    assert sorted(r["msisdn"] for r in csv.collect()) == treated
    assert "subscriber_key" not in csv.columns and "group" not in csv.columns
    parquet = spark.read.parquet(str(folder / "targets.parquet"))
    assert parquet.count() == len(treated)
    # a run that died after renaming the folder into place but before the marker: redone
    (folder / MARKER).unlink()
    (folder / "targets.csv").rename(folder / "half")
    assert run(spark, root, lake["conf"], "--date", D, "--campaign", "retention") == 0
    assert verify(folder)["rows"] == len(treated)
    # a file changed after the hand-over is caught by the manifest
    part = next((folder / "targets.csv").glob("part-*"))
    part.write_text("msisdn\n+989120000000\n", encoding="utf-8")
    with pytest.raises(ValueError, match="does not match the manifest"):
        verify(folder)
