"""Ingest under what a data team does to it: odd files, re-sent files, kills, two runs at once,
the wrong folder. Each test is a fault that once lost, duplicated or hid data."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from crmlake.core.errors import ReconciliationError
from crmlake.silver.run import Ingestor
from crmlake_jobs.ingest import main as ingest_main
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from test_ingest import D1, D2, SUB_HEADER, USAGE_HEADER, base_landing, subscriber_line, usage_line, write

RECHARGE_HEADER = ",".join(ENTITIES["recharges"].landing_columns)


def run_ingest(root: str, spark, *args: str) -> int:
    return ingest_main(["--root", root, *args], spark=spark)


def test_quarantine_keeps_the_value_that_failed_as_it_arrived(spark, cfg, hmac_key):
    base_landing(cfg.root)
    write(cfg.root, "usage", D1, "odd.csv", [USAGE_HEADER, usage_line("r40", "09121110001", "31/02/2026 25:61")])
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    row = (
        tables.read(spark, cfg.root, "silver.quarantine")
        .where(F.col("_source_file").endswith("odd.csv"))
        .select("rule", "column", "raw")
        .collect()
    )
    assert [(r["rule"], r["column"]) for r in row] == [("invalid_type", "event_time")]
    raw = json.loads(row[0]["raw"])
    assert raw["event_time"] == "31/02/2026 25:61" and raw["record_id"] == "r40" and raw["msisdn"] == "09121110001"
    # every quarantined row shows what arrived
    assert tables.read(spark, cfg.root, "silver.quarantine").where(F.col("raw").isNull()).isEmpty()


def test_a_quoted_line_break_is_one_record_not_fragments(spark, cfg, hmac_key):
    """RFC 4180: a quoted field may hold a line break; the record is still one record."""
    line = subscriber_line("09121110009", D1, first='"Ali\nReza"', last='"Rezaei, ""Jr"""')
    write(cfg.root, "subscribers", D1, "subscribers.csv", [SUB_HEADER, subscriber_line("09121110001", D1), line])
    write(cfg.root, "usage", D1, "u.csv", [USAGE_HEADER, usage_line("r1", "09121110009", "2026-01-05 08:00:00")])
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    assert tables.read(spark, cfg.root, "bronze.subscribers").count() == 2
    assert (
        not tables.exists(spark, cfg.root, "silver.quarantine")
        or tables.read(spark, cfg.root, "silver.quarantine").isEmpty()
    )
    names = {
        (r["first_name"], r["last_name"]) for r in tables.read(spark, cfg.root, "silver.subscriber_contacts").collect()
    }
    assert names == {("Ali", "Rezaei"), ("Ali\nReza", 'Rezaei, "Jr"')}
    assert tables.read(spark, cfg.root, "silver.usage").count() == 1


INGEST_TABLES = [
    "bronze.subscribers",
    "bronze.usage",
    "bronze.ingested_files",
    "silver.subscribers",
    "silver.subscriber_contacts",
    "silver.usage",
    "silver.quarantine",
    "silver.derivations",
]


def test_a_drifted_header_is_refused_before_the_first_write(spark, cfg, hmac_key, capsys, ingested_d1):
    versions = tables.versions(spark, cfg.root, INGEST_TABLES)
    write(cfg.root, "subscribers", D2, "s.csv", [SUB_HEADER, subscriber_line("09121110001", D2, tariff="X")])
    drifted = usage_line("r50", "09121110001", "2026-01-06 07:00:00") + ",5G,roaming"
    write(cfg.root, "usage", D2, "u.csv", [USAGE_HEADER + ",rat_detail,zone", drifted])
    assert run_ingest(cfg.root, spark, "--date", D2) == 4
    err = capsys.readouterr().err
    assert "landing/usage/date=2026-01-06/u.csv" in err and "['rat_detail', 'zone']" in err
    assert tables.versions(spark, cfg.root, INGEST_TABLES) == versions  # no write, so no restore either


def test_a_parquet_file_that_is_not_parquet_is_refused_before_the_first_write(spark, cfg, hmac_key, capsys):
    base_landing(cfg.root)
    folder = Path(cfg.root) / "landing" / "network_cells" / f"date={D1}"
    folder.mkdir(parents=True)
    (folder / "cells.parquet").write_text("cell_id,date\nTEH-001,2026-01-05\n")
    assert run_ingest(cfg.root, spark, "--date", D1) == 4
    assert "landing/network_cells/date=2026-01-05/cells.parquet: not a Parquet file" in capsys.readouterr().err
    assert all(v is None for v in tables.versions(spark, cfg.root, INGEST_TABLES).values())


def test_a_root_that_does_not_exist_is_an_error_and_stays_absent(spark, tmp_path, hmac_key, capsys):
    missing = tmp_path / "no-such-lake"
    assert run_ingest(str(missing), spark, "--date", D1) == 2
    assert "the root" in capsys.readouterr().err and not missing.exists()


def test_ingest_never_makes_a_key(spark, cfg, monkeypatch, capsys):
    monkeypatch.delenv("CRMLAKE_HMAC_KEY", raising=False)
    base_landing(cfg.root)
    assert run_ingest(cfg.root, spark, "--date", D1) == 3  # the local config would let generate make one
    assert "CRMLAKE_HMAC_KEY" in capsys.readouterr().err
    assert not (Path(cfg.root) / ".secrets").exists()


def test_a_day_without_files_is_reported_and_can_fail_the_run(spark, cfg, hmac_key, tmp_path):
    base_landing(cfg.root)
    assert run_ingest(cfg.root, spark, "--from", D1, "--to", D2) == 0
    last = tables.read(spark, cfg.root, "gold.run_log").orderBy(F.col("started_at").desc()).first()
    assert last["status"] == "succeeded" and last["message"] == f"no landing files for {D2}"
    assert json.loads(last["details"])["days_without_files"] == [D2]
    strict = tmp_path / "strict.yaml"
    strict.write_text("ingest:\n  fail_on_day_without_files: true\n")
    assert run_ingest(cfg.root, spark, "--conf", str(strict), "--date", D2) == 4
    last = tables.read(spark, cfg.root, "gold.run_log").orderBy(F.col("started_at").desc()).first()
    assert last["status"] == "failed" and D2 in last["message"]


def test_empty_and_header_only_files_are_taken_with_a_warning(spark, cfg, hmac_key, capsys):
    base_landing(cfg.root)
    write(cfg.root, "usage", D1, "header_only.csv", [USAGE_HEADER])
    (Path(cfg.root) / "landing" / "usage" / f"date={D1}" / "empty.csv").write_bytes(b"")
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    err = capsys.readouterr().err
    assert "empty.csv" in err and "header_only.csv" in err
    taken = {
        r["_source_file"].rsplit("/", 1)[1]: r["rows"]
        for r in tables.read(spark, cfg.root, "bronze.ingested_files").where("entity = 'usage'").collect()
    }
    assert taken == {"usage_1.csv": 14, "header_only.csv": 0, "empty.csv": 0}
    # taken means taken: the next run finds nothing new
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    assert tables.read(spark, cfg.root, "bronze.ingested_files").count() == 4


@pytest.mark.slow  # several roots and runs / a second JVM, killed
def test_the_outcome_does_not_depend_on_how_days_are_grouped_into_runs(spark, tmp_path, hmac_key):
    """A line the subscriber master shows only from D2 calls on D1 and D2 and tops up on D1; D2's
    files also change a record of D1, open a new day and change a known line's tariff. Over both
    days at once, day by day, or day by day with D1 run again afterwards, the tables end the
    same: D1's call and top-up wait in the quarantine as unknown_subscriber until D2's extract
    names the line, and the run that brings the extract derives D1 again for both entities (the
    waiting rows of every entity are looked up in one query a run)."""
    roots = {}
    plans = {"range": [["--from", D1, "--to", D2]], "daily": [["--date", D1], ["--date", D2]]}
    for mode, runs in plans.items():
        root = str(tmp_path / mode)
        base_landing(root)
        joiner = "09124440004"
        write(
            root,
            "subscribers",
            D2,
            "s.csv",
            [SUB_HEADER, subscriber_line(joiner, D2), subscriber_line("09121110001", D2, tariff="PRE_DATA")],
        )
        write(
            root,
            "usage",
            D2,
            "usage_2.csv",
            [
                USAGE_HEADER,
                usage_line("r1", "09121110001", "2026-01-05 08:00:00", duration="61"),  # changes a held day
                usage_line("r30", "09121110001", "2026-01-06 09:00:00"),  # the first row of a new day
            ],
        )
        write(root, "usage", D1, "j1.csv", [USAGE_HEADER, usage_line("r60", joiner, "2026-01-05 12:00:00")])
        write(root, "usage", D2, "j2.csv", [USAGE_HEADER, usage_line("r61", joiner, "2026-01-06 12:00:00")])
        write(
            root,
            "recharges",
            D1,
            "j1.csv",
            [RECHARGE_HEADER, f"t60,{joiner},2026-01-05 12:30:00,topup,50000.00,IRR,app"],
        )
        for args in runs:
            assert run_ingest(root, spark, *args) == 0
        roots[mode] = root
    # day by day, then D1 again: a copy of the daily root (files keep their times) runs D1 once more
    roots["daily, D1 again"] = str(tmp_path / "daily-D1-again")
    shutil.copytree(roots["daily"], roots["daily, D1 again"])
    assert run_ingest(roots["daily, D1 again"], spark, "--date", D1) == 0
    quarantine = tables.read(spark, roots["daily"], "silver.quarantine")
    assert quarantine.where(F.col("_source_file").contains("/j")).isEmpty()
    assert tables.read(spark, roots["daily"], "silver.usage").where("record_id IN ('r60', 'r61')").count() == 2
    assert tables.read(spark, roots["daily"], "silver.recharges").where("txn_id = 't60'").count() == 1
    changed = tables.read(spark, roots["daily"], "silver.usage").where("record_id IN ('r1', 'r30')")
    assert sorted((r["record_id"], r["duration_s"]) for r in changed.collect()) == [("r1", 61), ("r30", 60)]
    tariffs = tables.read(spark, roots["daily"], "silver.subscribers").where("tariff = 'PRE_DATA'")
    assert tariffs.count() == 1
    first_day = tables.read(spark, roots["daily"], "gold.run_log").orderBy("started_at").first()
    assert (
        json.loads(first_day["details"])["usage"]["by_file_date"][D1]["quarantined"] == 11
    )  # 10 as in base_landing, and r60 waited
    drop = ["_batch_id", "_ingested_at", "run_id"]
    for name in (
        "silver.usage",
        "silver.recharges",
        "silver.subscribers",
        "silver.quarantine",
        "silver.subscriber_contacts",
    ):
        for mode in ("daily", "daily, D1 again"):
            assertDataFrameEqual(
                tables.read(spark, roots[mode], name).drop(*drop), tables.read(spark, roots["range"], name).drop(*drop)
            )


def test_a_redelivered_file_with_the_same_content_changes_nothing(spark, cfg, hmac_key, ingested_d1):
    versions = tables.versions(spark, cfg.root, INGEST_TABLES)
    usage_file = Path(cfg.root) / "landing" / "usage" / f"date={D1}" / "usage_1.csv"
    os.utime(usage_file, (time.time() + 60, time.time() + 60))  # re-sent: same bytes, new time
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    assert tables.versions(spark, cfg.root, INGEST_TABLES) == versions


def test_a_redelivered_file_with_new_content_is_a_new_delivery_without_duplicates(spark, cfg, hmac_key, ingested_d1):
    quarantine_before = (
        tables.read(spark, cfg.root, "silver.quarantine").drop("_batch_id", "_ingested_at", "run_id").localCheckpoint()
    )
    accepted_before = {r["record_id"] for r in tables.read(spark, cfg.root, "silver.usage").collect()}
    usage_file = Path(cfg.root) / "landing" / "usage" / f"date={D1}" / "usage_1.csv"
    lines = usage_file.read_text(encoding="utf-8").splitlines()
    corrected = [line.replace(",600,0,5000000,0,", ",700,0,5000000,0,") for line in lines]  # r2 lasted longer
    corrected.append(usage_line("r13", "09121110001", "2026-01-05 11:00:00"))
    usage_file.write_text("\n".join(corrected) + "\n", encoding="utf-8")
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    assert tables.read(spark, cfg.root, "bronze.usage").count() == 2 * (len(lines) - 1) + 1  # both deliveries
    usage = {r["record_id"]: r["duration_s"] for r in tables.read(spark, cfg.root, "silver.usage").collect()}
    assert usage["r2"] == 700 and usage["r13"] == 60 and set(usage) == accepted_before | {"r13"}
    # every rejected line of the file is in the quarantine once, from the newest delivery
    quarantine = tables.read(spark, cfg.root, "silver.quarantine")
    assertDataFrameEqual(quarantine.drop("_batch_id", "_ingested_at", "run_id"), quarantine_before)
    assert quarantine.select("_batch_id").distinct().count() == 1  # the newest delivery's
    last = tables.read(spark, cfg.root, "gold.run_log").orderBy(F.col("started_at").desc()).first()
    counts = json.loads(last["details"])["usage"]
    assert counts["read"] == 2 * (len(lines) - 1) + 1
    assert counts["read"] == counts["accepted"] + counts["quarantined"] + counts["duplicates"]


def kill_ingest_at(root: str, point: str) -> None:
    """Runs ingest of D1 in a second process that SIGKILLs itself at failpoint ``point``."""
    env = {**os.environ, "CRMLAKE_FAILPOINT": point}
    killed = subprocess.run(
        [sys.executable, "-m", "crmlake.core.cli", "ingest", "--root", root, "--date", D1],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert (Path(root) / "_locks" / "silver.lock").exists()


def assert_as_one_clean_run_leaves(spark, root: str, clean: str, names: list[str] = INGEST_TABLES) -> None:
    """``root`` holds what ``clean`` holds in the tables ``names``: the session's one uninterrupted
    run of the same landing, or another run of it."""
    # batch ids, times and the fingerprint of the batches differ from root to root
    drop = [
        "_batch_id",
        "_ingested_at",
        "run_id",
        "_file_modified_ms",
        "_file_modified_at",
        "derived_at",
        "source_fingerprint",
        "_bronze_commit",
    ]
    for name in names:
        assertDataFrameEqual(tables.read(spark, root, name).drop(*drop), tables.read(spark, clean, name).drop(*drop))


@pytest.mark.slow  # a second JVM, killed
@pytest.mark.parametrize(
    ("point", "left"),
    [
        # bronze committed for both entities, their files not registered: the next run registers
        # what bronze holds instead of taking the files again
        (
            "ingest.between_bronze_and_registry",
            {"bronze.subscribers": 3, "bronze.usage": 14, "bronze.ingested_files": None},
        ),
        # the files taken and registered, silver without them: the next run finds no new file,
        # yet derives the day, because silver.derivations does not show it derived from those deliveries
        ("ingest.between_registry_and_silver", {"bronze.ingested_files": 2, "silver.subscribers": None}),
    ],
)
def test_a_run_killed_mid_way_leaves_nothing_taken_twice_or_missed(spark, cfg, hmac_key, point, left, base_ingested):
    """SIGKILL at the worst moments, the lock left behind by a process that is gone: the next
    run takes the lock over and leaves what one clean run (the session's) leaves."""
    base_landing(cfg.root)
    kill_ingest_at(cfg.root, point)
    for name, rows in left.items():
        assert (tables.read(spark, cfg.root, name).count() if tables.exists(spark, cfg.root, name) else None) == rows
    assert run_ingest(cfg.root, spark, "--date", D1) == 0
    assert_as_one_clean_run_leaves(spark, cfg.root, str(base_ingested))


def test_the_orphan_check_reads_bronze_only_when_bronze_moved_past_the_registry(spark, cfg, hmac_key, ingested_d1):
    """After a run, bronze's latest commit is recorded in the registry: the next run knows no
    batch can be unregistered without reading bronze. A bronze commit the registry never saw
    (what a run killed before its registration leaves) is looked for, and registered."""
    from crmlake.bronze.land import bronze_caught_up, register_orphans
    from crmlake.contracts.entities import ENTITIES

    entities = [ENTITIES[name] for name in ("subscribers", "usage", "surveys")]  # no survey file: no bronze
    assert bronze_caught_up(spark, cfg.root, entities) == {"subscribers", "usage", "surveys"}

    orphan_df = tables.read(spark, cfg.root, "bronze.usage").withColumn("_batch_id", F.lit("killed-run-batch"))
    tables.append(orphan_df.localCheckpoint(), cfg.root, "bronze.usage")
    assert bronze_caught_up(spark, cfg.root, entities) == {"subscribers", "surveys"}  # usage moved, alone
    assert register_orphans(spark, cfg.root, ENTITIES["usage"], [dt.date.fromisoformat(D1)]) == 1
    registry_df = tables.read(spark, cfg.root, "bronze.ingested_files")
    assert registry_df.where("_batch_id = 'killed-run-batch'").count() == 1
    assert bronze_caught_up(spark, cfg.root, entities) == {"subscribers", "usage", "surveys"}

    # a registry an earlier crmlake wrote records no bronze commit: the check runs in full
    registry_df.drop("_bronze_commit").localCheckpoint().write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true"
    ).save(tables.table_path(cfg.root, "bronze.ingested_files"))
    assert bronze_caught_up(spark, cfg.root, entities) == {"surveys"}
    assert register_orphans(spark, cfg.root, ENTITIES["usage"], [dt.date.fromisoformat(D1)]) == 0


@pytest.mark.slow  # four runs
def test_a_rerun_derives_only_the_days_that_changed_and_an_idle_one_nothing(spark, cfg, hmac_key, ingested_d1):
    write(cfg.root, "usage", D2, "usage_2.csv", [USAGE_HEADER, usage_line("r20", "09121110001", "2026-01-06 07:00:00")])
    for _ in range(2):
        assert run_ingest(cfg.root, spark, "--from", D1, "--to", D2) == 0
    first, second, idle = tables.read(spark, cfg.root, "gold.run_log").orderBy("started_at").collect()
    usage = [json.loads(run["details"])["usage"] for run in (first, second, idle)]
    assert [sorted(u["by_file_date"]) for u in usage] == [[D1], [D2], []]
    assert [u["unchanged_days"] for u in usage] == [[], [D1], [D1, D2]]
    assert (second["rows_read"], idle["rows_read"], idle["rows_written"]) == (1, 0, 0)
    assert tables.read(spark, cfg.root, "silver.usage").where("record_id = 'r20'").count() == 1
    assert second["table_versions"] == idle["table_versions"]  # the idle run wrote nothing
    # silver.usage dropped to be built again: the next run derives every asked day of it
    usage_before = tables.read(spark, cfg.root, "silver.usage").drop("_ingested_at", "_batch_id").localCheckpoint()
    shutil.rmtree(tables.table_path(cfg.root, "silver.usage"))
    assert run_ingest(cfg.root, spark, "--from", D1, "--to", D2) == 0
    assertDataFrameEqual(tables.read(spark, cfg.root, "silver.usage").drop("_ingested_at", "_batch_id"), usage_before)


def test_a_rerun_under_other_rules_derives_its_days_again(spark, cfg, hmac_key, tmp_path, ingested_d1):
    """r9 carries 10^15 bytes in 10 s: impossible at 10 Gbit/s, possible under a limit raised by
    config. The same files run again under the new limit are derived again. (The limit is
    high enough that a day's capacity overflows a long, as the check once did.)"""
    quarantined = tables.read(spark, cfg.root, "silver.quarantine").where(F.col("raw").contains('"r9"'))
    assert [r["rule"] for r in quarantined.collect()] == ["impossible_bytes"]
    raised = tmp_path / "raised.yaml"
    raised.write_text("ingest:\n  max_throughput_bps: 1000000000000000000\n")
    assert run_ingest(cfg.root, spark, "--conf", str(raised), "--date", D1) == 0
    assert tables.read(spark, cfg.root, "silver.quarantine").where(F.col("raw").contains('"r9"')).isEmpty()
    assert tables.read(spark, cfg.root, "silver.usage").where("record_id = 'r9'").count() == 1


def test_two_runs_at_once_take_turns_and_the_second_names_the_first(spark, cfg, hmac_key, capsys):
    base_landing(cfg.root)
    lock = Path(cfg.root) / "_locks" / "silver.lock"
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(run_ingest, cfg.root, spark, "--date", D1)
        deadline = time.time() + 120
        while not (lock.exists() and lock.read_text().endswith("}")) and time.time() < deadline:
            time.sleep(0.05)
        holder = json.loads(lock.read_text())
        assert run_ingest(cfg.root, spark, "--date", D1) == 8
        assert first.result() == 0
    err = capsys.readouterr().err
    assert f"held by ingest run {holder['run_id']}" in err and "RootLockedError" in err
    runs = tables.read(spark, cfg.root, "gold.run_log").select("run_id", "status").collect()
    assert sorted(r["status"] for r in runs) == ["failed", "succeeded"]
    assert not lock.exists()  # given back at the end
    assert tables.read(spark, cfg.root, "bronze.usage").count() == 14  # taken once


def test_daily_stops_at_the_step_that_fails_with_its_exit_code(spark, cfg, hmac_key, capsys, ingested_d1):
    """crmlake daily runs ingest, features and kpis in one session: an unreadable landing file
    fails ingest (exit 4), and neither features nor kpis runs after it."""
    from crmlake_jobs.daily import main as daily_main

    write(cfg.root, "usage", D2, "bad.csv", ["id;number;when", "1;2;3"])
    runs_before = tables.read(spark, cfg.root, "gold.run_log").count()
    assert daily_main(["--root", cfg.root, "--date", D2], spark=spark) == 4
    err = capsys.readouterr().err
    assert "crmlake ingest: UnreadableFileError" in err and "bad.csv" in err
    assert "crmlake daily: StepFailedError: ingest failed (exit 4); not run: features, kpis" in err
    runs = tables.read(spark, cfg.root, "gold.run_log").orderBy("started_at").collect()[runs_before:]
    assert [(r["job"], r["status"]) for r in runs] == [("ingest", "failed")]
    assert not tables.exists(spark, cfg.root, "gold.features")
    assert daily_main(["--root", cfg.root, "--from", D2, "--to", D1], spark=spark) == 2  # refused before a step
    assert daily_main(["--root", cfg.root, "--from", D1, "--to", D2, "--every", "2"], spark=spark) == 2
    assert tables.read(spark, cfg.root, "gold.run_log").count() == runs_before + 1


def recharge_line(txn: str, number: str, when: str, amount: str = "50000.00") -> str:
    return f"{txn},{number},{when},topup,{amount},IRR,app"


@pytest.mark.slow  # two roots and runs
def test_entities_derived_at_once_leave_what_one_at_a_time_leaves(spark, tmp_path, hmac_key):
    """Usage and recharges, landed and derived two at once (the default) or one after the
    other (``ingest.entities_at_once: 1``), end in the same rows and the same counts."""
    roots, details = {}, {}
    for at_once in (1, 2):
        root = str(tmp_path / f"at-once-{at_once}")
        base_landing(root)
        write(
            root,
            "recharges",
            D1,
            "recharges_1.csv",
            [
                RECHARGE_HEADER,
                recharge_line("t1", "09121110001", "2026-01-05 12:30:00"),
                recharge_line("t2", "09359999999", "2026-01-05 13:00:00"),  # no such line
                recharge_line("t3", "09121110001", "2026-01-05 13:30:00", amount="-1.00"),
            ],
        )
        conf = tmp_path / f"at-once-{at_once}.yaml"
        conf.write_text(f"ingest:\n  entities_at_once: {at_once}\n", encoding="utf-8")
        assert run_ingest(root, spark, "--conf", str(conf), "--date", D1) == 0
        roots[at_once] = root
        details[at_once] = json.loads(tables.read(spark, root, "gold.run_log").first()["details"])
    names = [*INGEST_TABLES, "bronze.recharges", "silver.recharges"]
    assert_as_one_clean_run_leaves(spark, roots[2], roots[1], names)
    assert details[2] == details[1]
    assert (details[2]["recharges"]["accepted"], details[2]["recharges"]["quarantined"]) == (1, 2)


@pytest.mark.slow  # a failed run restoring eight tables, over a copied good one
def test_an_entity_failing_beside_another_undoes_both_and_names_its_error(
    spark, cfg, hmac_key, capsys, monkeypatch, ingested_d1
):
    """Recharges fails after its silver write while usage is derived beside it: the run fails
    with recharges' error, and every table is as it was before the run, usage's new rows and the
    tables the run created included."""
    write(cfg.root, "usage", D2, "usage_2.csv", [USAGE_HEADER, usage_line("r30", "09121110001", "2026-01-06 09:00:00")])
    write(
        cfg.root,
        "recharges",
        D2,
        "recharges_2.csv",
        [RECHARGE_HEADER, recharge_line("t30", "09121110001", "2026-01-06 12:30:00")],
    )
    before = {name: tables.read(spark, cfg.root, name).collect() for name in INGEST_TABLES}
    written, write_silver = [], Ingestor._write_silver

    def write_then_fail(self, entity, classified_df, event_dates):
        rows = write_silver(self, entity, classified_df, event_dates)
        written.append((entity.name, rows))
        if entity.name == "recharges":
            raise ReconciliationError("recharges: failed after its silver write (injected by the test)")
        return rows

    monkeypatch.setattr(Ingestor, "_write_silver", write_then_fail)
    assert run_ingest(cfg.root, spark, "--date", D2) == 6
    assert sorted(w for w in written if w[1]) == [("recharges", 1), ("usage", 1)]  # both wrote before it failed
    err = capsys.readouterr().err
    assert "ReconciliationError: recharges: failed after its silver write" in err
    for name in INGEST_TABLES:
        assertDataFrameEqual(tables.read(spark, cfg.root, name), before[name])
    assert not tables.exists(spark, cfg.root, "bronze.recharges")
    assert not tables.exists(spark, cfg.root, "silver.recharges")
