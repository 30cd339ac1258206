"""Every kind of bad input the generator injects is handled: quarantined under the right rule
or cleaned, never silently lost, never a stack trace. Checked against the generator's ground
truth (truth/bad_records), which the pipeline itself never reads."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from crmlake_jobs.generate import main as generate_main
from crmlake_jobs.ingest import main as ingest_main
from pyspark.sql import functions as F

pytestmark = pytest.mark.slow

RULE_FOR_KIND = {
    "malformed_line": "malformed_row",
    "truncated_file": "malformed_row",
    "wrong_type": "invalid_type",
    "missing_key": "missing_required",
    "invalid_msisdn": "invalid_msisdn",
    "negative_value": "out_of_range",
    "future_timestamp": "future_event_time",
    "impossible_bytes": "impossible_bytes",
    "unknown_enum": "invalid_enum",
    "unknown_subscriber": "unknown_subscriber",
}
CLEANED_KINDS = ("odd_msisdn_format", "non_ascii_text")


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    import os

    os.environ.setdefault("CRMLAKE_HMAC_KEY", "bad-input-key")
    root = str(tmp_path_factory.mktemp("bad") / "root")
    assert (
        generate_main(
            [
                "--root",
                root,
                "--subscribers",
                "400",
                "--start",
                "2026-04-01",
                "--days",
                "4",
                "--bad-rate",
                "0.03",
                "--seed",
                "11",
                "--log-format",
                "text",
            ],
            spark=spark,
        )
        == 0
    )
    assert ingest_main(["--root", root, "--all", "--log-format", "text"], spark=spark) == 0
    truth = spark.read.parquet(f"{root}/truth/bad_records")
    return root, truth


def test_every_kind_was_injected(ingested):
    _, truth = ingested
    kinds = {r["kind"] for r in truth.select("kind").distinct().collect()}
    assert kinds >= set(RULE_FOR_KIND) | set(CLEANED_KINDS) | {"duplicate"}


def test_rejected_kinds_are_quarantined_under_their_rule(spark, ingested):
    root, truth = ingested
    expected = Counter((r["entity"], RULE_FOR_KIND[r["kind"]]) for r in truth.collect() if r["kind"] in RULE_FOR_KIND)
    quarantine = tables.read(spark, root, "silver.quarantine")
    got = Counter(
        {(r["entity"], r["rule"]): r["count"] for r in quarantine.groupBy("entity", "rule").count().collect()}
    )
    assert got == expected


def test_keyed_rejects_are_the_injected_records(spark, ingested):
    """Row by row: each injected record with a key is in quarantine, under its rule."""
    root, truth = ingested
    quarantine = tables.read(spark, root, "silver.quarantine")
    for entity_name in ("usage", "recharges", "care_interactions"):
        key = ENTITIES[entity_name].key[0]
        injected = truth.where(F.col("entity") == entity_name).where(
            F.col("kind").isin(
                "wrong_type",
                "invalid_msisdn",
                "negative_value",
                "future_timestamp",
                "impossible_bytes",
                "unknown_enum",
                "unknown_subscriber",
            )
        )
        caught = quarantine.where(F.col("entity") == entity_name).select(
            F.get_json_object("raw", f"$.{key}").alias("key"), "rule"
        )
        missed = injected.join(caught, on="key", how="left_anti")
        assert missed.count() == 0, missed.collect()[:5]


def test_cleaned_kinds_are_accepted_intact(spark, ingested):
    root, truth = ingested
    usage_ids = truth.where("entity = 'usage' AND kind = 'odd_msisdn_format'").select(F.col("key").alias("record_id"))
    assert usage_ids.count() > 0
    silver = tables.read(spark, root, "silver.usage")
    assert usage_ids.join(silver, "record_id", "left_anti").count() == 0
    # Names in Persian, Turkish and Japanese survive into the restricted contact table.
    names = [r["first_name"] for r in tables.read(spark, root, "silver.subscriber_contacts").collect()]
    assert any(any("\u0600" <= ch <= "\u06ff" for ch in n or "") for n in names)
    assert any(any("\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" for ch in n or "") for n in names)


def test_duplicates_are_dropped_and_counted(spark, ingested):
    root, truth = ingested
    run = tables.read(spark, root, "gold.run_log").where("job = 'ingest'").first()
    details = json.loads(run["details"])
    injected_usage_dups = truth.where("entity = 'usage' AND kind = 'duplicate'").count()
    assert details["usage"]["duplicates"] >= injected_usage_dups > 0
    silver = tables.read(spark, root, "silver.usage")
    assert silver.count() == silver.select("record_id").distinct().count()


def test_nothing_is_lost(spark, ingested):
    """Every bronze row of every entity is accepted, quarantined or a counted duplicate."""
    root, _ = ingested
    run = tables.read(spark, root, "gold.run_log").where("job = 'ingest'").first()
    details = json.loads(run["details"])
    for name in ENTITIES:
        bronze_rows = tables.read(spark, root, f"bronze.{name}").count()
        c = details[name]
        assert c["read"] == bronze_rows == c["accepted"] + c["quarantined"] + c["duplicates"], name
    assert run["rows_rejected"] == tables.read(spark, root, "silver.quarantine").count()


def test_demo_summary_reads_the_tables_without_spark(ingested):
    """scripts/summary.py (what demo.sh prints) reads the root with delta-rs alone."""
    import subprocess
    import sys

    root, _ = ingested
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(repo / "scripts" / "summary.py"), root], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "silver.usage" in out.stdout and "quarantine by entity and rule" in out.stdout
    assert "run_log: 2 runs, 0 failed" in out.stdout  # generate and ingest
