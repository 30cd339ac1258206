"""train-churn and score-churn on a generated operator: snapshots split by time with the
embargo, scores with reasons for the whole base, idempotent reruns, and monitoring (PSI against
the training snapshot, realized churn of an earlier score date once its labels closed)."""

from __future__ import annotations

import datetime as dt
import json
import re

import mlflow
import pytest
from crmlake.catalog import tables
from crmlake.models import churn_run, churn_score, registry
from crmlake_jobs.features import main as features_main
from crmlake_jobs.generate import main as generate_main
from crmlake_jobs.ingest import main as ingest_main
from crmlake_jobs.score_churn import main as score_main
from crmlake_jobs.train_churn import main as train_main
from mlflow import MlflowClient
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

pytestmark = pytest.mark.slow  # generates, ingests, trains and scores an operator

START = dt.date(2026, 3, 1)
HORIZON = 7


def day(n: int) -> dt.date:
    return START + dt.timedelta(days=n)


TRAIN, VALIDATION, TEST = [day(10), day(13), day(16)], [day(23)], [day(30)]
SCORED = day(37)
CONF = f"""
labels:
  horizon_days: {HORIZON}
  prepaid_inactivity_days: 10
generate:
  monthly_churn: 0.12
churn:
  model_name: crmlake-churn-operator-test
  snapshot_every_days: 3
  train_snapshots: 3
  candidates: [gbt]
  grids:
    gbt: {{maxIter: [15], maxDepth: [3]}}
  psi_features: 4
"""


def job(main, root, conf, spark, *args) -> None:
    argv = ["--root", str(root), "--conf", str(conf), "--log-format", "text", *[str(a) for a in args]]
    assert main(argv, spark=spark) == 0, f"{main.__module__} {args} failed"


def evenly_spaced(dates: list[dt.date]) -> list[tuple[dt.date, dt.date, int]]:
    """Sorted ``dates`` as (first, last, step in days): runs of equal steps, each as long as its
    first step allows."""
    runs: list[list[dt.date]] = []
    for d in dates:
        run = runs[-1] if runs else None
        if run and (len(run) == 1 or d - run[-1] == run[1] - run[0]):
            run.append(d)
        else:
            runs.append([d])
    return [(run[0], run[-1], (run[1] - run[0]).days if len(run) > 1 else 1) for run in runs]


@pytest.fixture(scope="module")
def operator(spark, tmp_path_factory):
    import os

    os.environ.setdefault("CRMLAKE_HMAC_KEY", "churn-operator-key")
    base = tmp_path_factory.mktemp("churn-operator")
    conf = base / "churn.yaml"
    conf.write_text(CONF, encoding="utf-8")
    root = base / "root"
    job(generate_main, root, conf, spark, "--subscribers", 500, "--start", START, "--days", 38, "--seed", 21)
    job(ingest_main, root, conf, spark, "--all")
    # each snapshot, and each snapshot + horizon (which writes that snapshot's labels): evenly
    # spaced dates as one range run each (--every), where one run a date cost eight runs
    dates = {*TRAIN, *VALIDATION, *TEST, *[s + dt.timedelta(days=HORIZON) for s in [*TRAIN, *VALIDATION, *TEST]]}
    for first, last, every in evenly_spaced(sorted(dates)):
        job(features_main, root, conf, spark, "--from", first, "--to", last, "--every", every)
    job(train_main, root, conf, spark, "--date", SCORED)
    job(score_main, root, conf, spark, "--date", TEST[0])  # an earlier score, whose labels have closed by SCORED
    job(score_main, root, conf, spark, "--date", SCORED)
    return {"root": str(root), "conf": conf}


def last_run(spark, root, name):
    return (
        tables.read(spark, root, "gold.run_log").where(F.col("job") == name).orderBy(F.col("started_at").desc()).first()
    )


def test_snapshots_are_split_by_time_with_an_embargo(spark, operator):
    version = MlflowClient().get_model_version_by_alias("crmlake-churn-operator-test", "champion")
    inputs = mlflow.artifacts.load_dict(f"runs:/{version.run_id}/model_inputs.json")
    snapshots = {k: [dt.date.fromisoformat(s) for s in v] for k, v in inputs["snapshots"].items()}
    assert snapshots == {"train": TRAIN, "validation": VALIDATION, "test": TEST}
    for earlier, later in (("train", "validation"), ("validation", "test")):
        assert max(snapshots[earlier]) + dt.timedelta(days=HORIZON) <= min(snapshots[later])
    assert max(snapshots["test"]) + dt.timedelta(days=HORIZON) <= SCORED  # every label had closed
    details = json.loads(last_run(spark, operator["root"], "train-churn")["details"])
    labels = tables.read(spark, operator["root"], "gold.churn_labels")
    for split, dates in snapshots.items():
        expected = labels.where(F.col("snapshot_date").isin(dates) & (F.col("horizon_days") == HORIZON)).count()
        assert details["rows"][split] == expected


def test_every_subscriber_in_the_base_is_scored_once_with_reasons(spark, operator):
    root = operator["root"]
    base = tables.read(spark, root, "gold.features").where(F.col("snapshot_date") == SCORED)
    scores = tables.read(spark, root, churn_score.CHURN_SCORES).where(F.col("score_date") == SCORED)
    assertDataFrameEqual(scores.select("subscriber_key"), base.select("subscriber_key"))
    assert scores.agg(F.min("decile"), F.max("decile")).first() == (1, 10)
    # a subscriber has drivers exactly when some feature pushes the score up (a low-risk one has none)
    champion = registry.current("crmlake-churn-operator-test", "champion")
    explained = churn_score.explain(churn_run.scored_by(champion.model, base), champion.model, champion.inputs, 3)
    pushed_up = explained.where(F.exists("contributions", lambda c: c > 0)).select("subscriber_key")
    assertDataFrameEqual(scores.where(F.size("drivers") > 0).select("subscriber_key"), pushed_up)
    assert scores.where(F.col("decile") == 1).agg(F.min(F.size("drivers"))).first()[0] > 0
    high = scores.where(F.col("risk_band") == "high").agg(F.max("decile")).first()[0]
    assert high == 1
    example = scores.where(F.col("reason_1").isNotNull()).orderBy(F.col("probability").desc()).first()
    assert example["drivers"][0]["reason"] == example["reason_1"] and example["model_version"] == "1"


def test_tree_contributions_add_up_on_the_operators_features(spark, operator):
    champion = registry.current("crmlake-churn-operator-test", "champion")
    sample = tables.read(spark, operator["root"], "gold.features").where(F.col("snapshot_date") == SCORED).limit(300)
    explained = churn_score.explain(churn_run.scored_by(champion.model, sample), champion.model, champion.inputs, 3)
    total = F.aggregate("contributions", F.lit(0.0), lambda a, x: a + x)
    worst = explained.select(F.max(F.abs(F.col("bias") + total - F.col("raw_score")))).first()[0]
    assert worst < 1e-9


def test_rescoring_a_date_leaves_the_same_rows(spark, operator):
    root = operator["root"]
    before = tables.read(spark, root, churn_score.CHURN_SCORES).where(F.col("score_date") == SCORED).drop("run_id")
    before = before.localCheckpoint()
    job(score_main, root, operator["conf"], spark, "--date", SCORED)
    after = tables.read(spark, root, churn_score.CHURN_SCORES).where(F.col("score_date") == SCORED).drop("run_id")
    assertDataFrameEqual(after, before)


def test_monitoring_compares_with_the_training_snapshot_and_realized_churn(spark, operator):
    monitoring = tables.read(spark, operator["root"], churn_score.MODEL_MONITORING).where(
        F.col("monitor_date") == SCORED
    )
    psi = monitoring.where(F.col("check") == "psi")
    assert {r["reference_date"] for r in psi.collect()} == {TRAIN[-1]}
    assert psi.where(F.col("subject") == "score").count() == 1 and psi.count() == 5
    realized = monitoring.where(F.col("check") == "realized")
    assert {r["score_date"] for r in realized.collect()} == {TEST[0]}
    # realized churn by decile counts exactly the labelled subscribers scored on that date
    labelled = (
        tables.read(spark, operator["root"], churn_score.CHURN_SCORES)
        .where(F.col("score_date") == TEST[0])
        .join(
            tables.read(spark, operator["root"], "gold.churn_labels")
            .where((F.col("snapshot_date") == TEST[0]) & (F.col("horizon_days") == HORIZON))
            .select("subscriber_key"),
            on="subscriber_key",
            how="inner",
        )
        .count()
    )
    assert realized.agg(F.sum("subscribers")).first()[0] == labelled


def test_no_table_open_to_analysts_holds_a_number_or_a_name_from_the_landing_files(spark, operator):
    """The catalog's restricted tables (bronze with numbers, the quarantine, the contacts) are
    the only ones that may hold what identifies a person as it arrived. Every other table of a
    whole run (silver, features, labels, scores, metrics, run log) is scanned, every string
    column, for the landing files' numbers in any format and their first and last names."""
    from crmlake.catalog.registry import TABLES, PersonalData
    from crmlake.contracts.entities import ENTITIES
    from crmlake.landing.files import read_landing

    root = operator["root"]
    landed = read_landing(spark, ENTITIES["subscribers"], [f"{root}/landing/subscribers/*/*"]).select(
        "msisdn", "first_name", "last_name"
    )
    digits = {re.sub(r"\D", "", r["msisdn"] or "") for r in landed.select("msisdn").distinct().collect()}
    numbers = sorted({d[-10:] for d in digits if len(d) >= 10})  # the national number, 9XXXXXXXXX
    names = sorted(
        {v for r in landed.select("first_name", "last_name").distinct().collect() for v in r if v and len(v) >= 3}
    )
    assert len(numbers) > 400 and len(names) > 50
    known_numbers = F.array(*[F.lit(n) for n in numbers])
    words = [n for n in names if re.fullmatch(r"\w+", n)]
    phrases = [n for n in names if n not in words]  # company names: "Pars Trading Co., Ltd."
    known_words = F.array(*[F.lit(n) for n in words])

    def identifies(value):
        # separators between digits dropped ("0912 111 0003", "+98-912-…"), then a whole digit run
        # that is a landing number with or without its country or trunk prefix
        runs = F.regexp_extract_all(F.regexp_replace(value, "(?<=[0-9])[ ().-]+(?=[0-9])", ""), F.lit("[0-9]+"), 0)
        national = F.transform(runs, lambda run: F.regexp_replace(run, "^(98|0098|0)(?=[0-9]{10}$)", ""))
        # or a name as a whole word (a phrase for the names of several words)
        found = F.arrays_overlap(national, known_numbers) | F.arrays_overlap(F.split(value, r"(?U)\W+"), known_words)
        if not phrases:
            return found
        return found | value.rlike(f"(?U)\\b({'|'.join(re.escape(n) for n in phrases)})\\b")

    def scan(name: str) -> dict[str, list]:
        """Up to three values of each string column that identify someone: each distinct value
        of every column is checked once, in one pass over the table."""
        df = tables.read(spark, root, name)
        strings = [f.name for f in df.schema.fields if isinstance(f.dataType, T.StringType)]
        if not strings:
            return {}
        pairs = F.array(*[F.struct(F.lit(c).alias("column"), F.col(c).alias("value")) for c in strings])
        values = df.select(F.explode(pairs).alias("pair")).select("pair.*").distinct()
        found = (
            values.where(identifies(F.col("value")))
            .groupBy("column")
            .agg(F.slice(F.sort_array(F.collect_list("value")), 1, 3).alias("values"))
        )
        return {f"{name}.{r['column']}": r["values"] for r in found.collect()}

    n, w = numbers, words
    probes = [f"+98 {n[0][:3]} {n[0][3:]}", f"0{n[1]}", f"x0098{n[2]}y", f"{n[3]}1", f"hi {w[0]}!", f"{w[1]}x"]
    probed = spark.createDataFrame([(p,) for p in probes], "value string").select(identifies(F.col("value")))
    assert [r[0] for r in probed.collect()] == [True, True, True, False, True, False]
    scanned, found = [], {}
    for spec in TABLES.values():
        if spec.personal_data == PersonalData.RESTRICTED or not tables.exists(spark, root, spec.name):
            continue
        scanned.append(spec.name)
        found.update(scan(spec.name))
    assert {"silver.usage", "silver.subscribers", "silver.care_interactions", "gold.features", "gold.run_log"} <= set(
        scanned
    )
    assert found == {}
    # the scan does find what is there: the restricted contacts table holds every number and name
    assert set(scan("silver.subscriber_contacts")) == {
        f"silver.subscriber_contacts.{c}" for c in ("msisdn", "first_name", "last_name")
    }
