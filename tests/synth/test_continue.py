"""crmlake generate --continue: the same operator carried on for more days, earlier files
untouched, answering the campaign lists published in the meantime.

One operator (200 lines × 10 days) is generated once and copied; the copies are continued by 5
days without a list, by 2 then 3 days, and by 5 days honouring a list written straight to
gold.campaign_targets (treatment and control over the operator's own lines).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import shutil
from pathlib import Path

import pytest
from crmlake.catalog import tables
from crmlake.catalog.registry import CAMPAIGN_TARGETS_SCHEMA
from crmlake.core.settings import GenerateConfig
from crmlake.silver.identity import hmac_sha256_hex
from crmlake.synth.params import OBJECTIVE_CAUSES
from crmlake.synth.record import GenerationRecordError
from crmlake.synth.run import continue_operator, generate_operator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window
from pyspark.testing import assertDataFrameEqual

pytestmark = pytest.mark.slow  # generates and continues operators

START = dt.date(2026, 1, 1)
DAYS, MORE = 10, 5
FIRST_NEW = START + dt.timedelta(days=DAYS)
SETTINGS = {"subscribers": 200, "start": START.isoformat(), "days": DAYS, "seed": 7, "bad_rate": 0.05,
            "monthly_churn": 0.3}  # fmt: skip
LIST_ID = "RET-TEST"
KEY = b"continue-test-key"


def _files(root: Path) -> dict[str, str]:
    """SHA-256 of every landing file by its path under landing/ (Spark's checksums aside)."""
    return {
        str(f.relative_to(root / "landing")): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in (root / "landing").rglob("*")
        if f.is_file() and not f.name.startswith(".") and f.name != "_SUCCESS"
    }


def _by_folder(files: dict[str, str]) -> list[tuple[str, str]]:
    """(folder, checksum) pairs: part-file names differ between runs, contents must not."""
    return sorted((str(Path(path).parent), digest) for path, digest in files.items())


def _truth(spark, root: Path, table: str) -> DataFrame:
    return spark.read.parquet(str(root / "truth" / table))


def _write_list(spark, root: Path) -> dict[str, list[str]]:
    """A retention list published on the last generated day: treatment holds every line still
    active that is a persuadable or a sleeping dog, and a third of the others; control the rest
    of the active lines. Returns the E.164 numbers of each group."""
    subs = _truth(spark, root, "subscribers").where(
        (F.col("deactivation_date").isNull() | (F.col("deactivation_date") > F.lit(FIRST_NEW)))
        & (F.col("activation_date") < F.lit(FIRST_NEW))
    )
    third = F.conv(F.substring(F.sha2("msisdn", 256), 1, 4), 16, 10).cast("int") % 3 == 0
    treated = F.col("uplift_type").isin("persuadable", "sleeping_dog") | third
    rows = subs.select(
        F.lit(LIST_ID).alias("campaign_id"),
        F.lit(FIRST_NEW - dt.timedelta(days=1)).alias("publish_date"),
        F.lit("run-1").alias("run_id"),
        hmac_sha256_hex(F.col("msisdn"), KEY).alias("subscriber_key"),
        F.when(treated, F.col("msisdn")).alias("msisdn"),
        F.when(treated, "treatment").otherwise("control").alias("group"),
        F.row_number().over(Window.orderBy("msisdn")).alias("rank"),
        F.lit(None).cast("string").alias("score_band"),
        F.lit("RET10").alias("offer_code"),
        F.lit(500_000.0).alias("offer_cost"),
        F.lit("sms").alias("channel"),
        F.lit("retention").alias("objective"),
        F.array().cast("array<string>").alias("models"),
        F.lit(FIRST_NEW + dt.timedelta(days=14)).alias("valid_until"),
    )
    tables.create(spark.createDataFrame(rows.rdd, CAMPAIGN_TARGETS_SCHEMA), str(root), "gold.campaign_targets")
    groups = {g: [r.msisdn for r in subs.where(treated if g == "treatment" else ~treated).select("msisdn").collect()]
              for g in ("treatment", "control")}  # fmt: skip
    return groups


@pytest.fixture(scope="module")
def operators(spark, base_cfg, tmp_path_factory):
    # Late in the suite the one driver's heap holds what earlier modules cached; in the full
    # suite a broadcast here once ran out of it. This module starts from an empty cache.
    spark.catalog.clearCache()
    gen = copy.deepcopy(base_cfg["generate"])
    gen.update(SETTINGS)
    identity = base_cfg.settings.identity
    original = tmp_path_factory.mktemp("original")
    generate_operator(spark, str(original), GenerateConfig.model_validate(gen), identity)
    before = _files(original)
    roots = {name: tmp_path_factory.mktemp(name) / "root" for name in ("five", "two_three", "listed")}
    for root in roots.values():
        shutil.copytree(original, root)
    groups = _write_list(spark, roots["listed"])

    # One after another: three continuations of the same operator cache equal plans, and Spark
    # 4.2 can deadlock two queries that materialize shared cached relations in opposite orders
    # (CachedRDDBuilder monitors), which hung this fixture once when run side by side.
    continue_operator(spark, str(roots["five"]), MORE, identity)
    continue_operator(spark, str(roots["two_three"]), 2, identity)
    continue_operator(spark, str(roots["two_three"]), 3, identity)
    continue_operator(spark, str(roots["listed"]), MORE, identity, KEY)
    return {"original": original, "before": before, "groups": groups, **roots}


def test_continuing_leaves_earlier_files_alone_and_writes_the_same_new_days(spark, operators):
    before = operators["before"]
    for name in ("five", "two_three", "listed"):
        after = _files(operators[name])
        assert {path: after.get(path) for path in before} == before, name  # byte for byte
        new = set(after) - set(before)
        assert new and all(p.split("/")[1] >= f"date={FIRST_NEW}" for p in new), name
    five, two_three = _files(operators["five"]), _files(operators["two_three"])
    # the 2-day continuation cut the last line of its last usage file, as every run does
    truncated = f"usage/date={FIRST_NEW + dt.timedelta(days=1)}"
    assert [x for x in _by_folder(five) if x[0] != truncated] == [x for x in _by_folder(two_three) if x[0] != truncated]
    days = sorted({p.split("/")[1] for p in five if p.startswith("usage/")})
    assert days[-1] == f"date={FIRST_NEW + dt.timedelta(days=MORE - 1)}" and len(days) == DAYS + MORE


def test_continuing_keeps_the_truth_of_the_days_generated(spark, operators):
    for table in ("subscribers", "campaign_assignments"):
        assertDataFrameEqual(_truth(spark, operators["two_three"], table), _truth(spark, operators["five"], table))
    original, five = (
        _truth(spark, operators["original"], "subscribers"),
        _truth(spark, operators["five"], "subscribers"),
    )
    churned = original.where("churn_date IS NOT NULL").select("subscriber_id")
    assertDataFrameEqual(five.join(churned, "subscriber_id"), original.join(churned, "subscriber_id"))
    horizon = START + dt.timedelta(days=DAYS + 45)  # the original's churn horizon
    newly = five.join(original.where("churn_date IS NULL").select("subscriber_id"), "subscriber_id")
    assert newly.where(F.col("churn_date") < F.lit(horizon)).count() == 0
    bad = _truth(spark, operators["two_three"], "bad_records")
    assert bad.where("kind = 'truncated_file'").count() == 3  # the original's and each continuation's
    assert bad.where(F.col("file_date") >= F.lit(FIRST_NEW)).count() > 0


def test_a_published_list_is_answered(spark, operators, base_cfg):
    groups, listed = operators["groups"], operators["listed"]
    assignments = _truth(spark, listed, "campaign_assignments").where(F.col("campaign_id") == LIST_ID)
    for group, numbers in groups.items():
        got = [r.msisdn for r in assignments.where(F.col("group") == group).select("msisdn").collect()]
        assert sorted(got) == sorted(numbers), group
    treated = assignments.where("group = 'treatment'")
    assert treated.where("is_delivered").count() >= 0.85 * len(groups["treatment"])  # sms: 97 %
    assert assignments.where("group = 'control' AND (is_delivered OR has_accepted_offer)").count() == 0
    assert treated.where("has_accepted_offer AND uplift_type = 'sleeping_dog'").count() == 0
    assert set(r.campaign_date for r in assignments.select("campaign_date").distinct().collect()) == {FIRST_NEW}

    # the landing responses of the new days: the treated lines only, on the first new day
    trunk, cc = base_cfg.settings.identity.trunk_prefix, base_cfg.settings.identity.country_code
    responses = (
        spark.read.option("header", True).option("escape", '"').csv(str(listed / "landing" / "campaign_responses"))
        .where(F.col("campaign_id") == LIST_ID)
        .withColumn("e164", F.regexp_replace(F.regexp_replace("msisdn", f"^{trunk}", f"+{cc}"), f"^{cc}", f"+{cc}"))
    )  # fmt: skip
    assert responses.where(F.col("date") != F.lit(FIRST_NEW)).count() == 0
    numbers = {r.e164 for r in responses.select("e164").collect()}
    assert not numbers & set(groups["control"])
    assert len(numbers & set(groups["treatment"])) >= 0.9 * len(groups["treatment"])  # bad rows aside

    # the effects, against the same continuation without the list
    with_list = _truth(spark, listed, "subscribers")
    without = _truth(spark, operators["five"], "subscribers")
    controls = assignments.where("group = 'control'").select("subscriber_id")
    assertDataFrameEqual(with_list.join(controls, "subscriber_id"), without.join(controls, "subscriber_id"))
    untouched = with_list.where("list_contact_date IS NULL").select("subscriber_id")
    assertDataFrameEqual(
        with_list.join(untouched, "subscriber_id").drop("list_objective"),
        without.join(untouched, "subscriber_id").drop("list_objective"),
    )
    pair = with_list.alias("w").join(without.alias("o"), "subscriber_id")
    dogs = pair.where("w.uplift_type = 'sleeping_dog' AND w.list_contact_date IS NOT NULL")
    assert dogs.count() > 0
    assert dogs.where("o.churn_date IS NOT NULL AND (w.churn_date IS NULL OR w.churn_date > o.churn_date)").count() == 0
    assert dogs.where("w.churn_cause = 'campaign_backlash' AND w.churn_date > w.list_contact_date").count() > 0
    causes = ", ".join(f"'{c}'" for c in OBJECTIVE_CAUSES["retention"])
    savable = pair.where(
        "w.uplift_type = 'persuadable' AND w.list_contact_date IS NOT NULL"
        f" AND o.churn_date > w.list_contact_date AND o.churn_cause IN ({causes})"
    )
    assert savable.count() > 0
    assert savable.where("w.churn_date IS NOT NULL AND w.churn_date <> o.churn_date").count() == 0
    assert savable.where("w.churn_date IS NULL AND w.is_rescued").count() > 0
    unaddressed = pair.where(
        "w.uplift_type = 'persuadable' AND w.list_contact_date IS NOT NULL"
        f" AND o.churn_date > w.list_contact_date AND o.churn_cause NOT IN ({causes})"
    )
    assert unaddressed.where("w.churn_date IS NULL").count() == 0


def test_continuing_without_a_generation_is_refused(spark, base_cfg, tmp_path, operators):
    identity = base_cfg.settings.identity
    with pytest.raises(GenerationRecordError, match=str(tmp_path / "empty" / "truth" / "generation.json")):
        continue_operator(spark, str(tmp_path / "empty"), 3, identity)
    with pytest.raises(GenerationRecordError, match="generate.seed"):
        continue_operator(spark, str(operators["original"]), 3, identity, expected={"seed": 8})
