"""Ingest end to end on small hand-written landing files."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from crmlake_jobs.ingest import main as ingest_main
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

KEY = b"test-key-0123456789abcdef"
D1, D2 = "2026-01-05", "2026-01-06"

SUB_HEADER = ",".join(ENTITIES["subscribers"].landing_columns)
USAGE_HEADER = ",".join(ENTITIES["usage"].landing_columns)


def sk(e164: str) -> str:
    return hmac.new(KEY, e164.encode(), hashlib.sha256).hexdigest()


def write(root: str, entity: str, day: str, name: str, lines: list[str]) -> Path:
    folder = Path(root) / "landing" / entity / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def subscriber_line(msisdn, day, tariff="PRE_BASIC", status="active", consent="true", first="Ali", last="Rezaei"):
    return (
        f"{msisdn},C-{msisdn[-4:]},{day},{status},prepaid,{tariff},B2C,,Tehran,Tehran,TEH-001,2025-03-01,,,25-34,M,"
        f"Samsung,smartphone,{consent},false,{first},{last}"
    )


def usage_line(rid, msisdn, ts, service="voice", duration="60", up="0", down="0", charge="1200.00"):
    return f"{rid},{msisdn},{ts},{service},out,{duration},{up},{down},{charge},IRR,on_net,false,TEH-001,4G"


@pytest.fixture
def ingest(spark, cfg, hmac_key):
    def run(*args: str) -> int:
        return ingest_main(["--root", cfg.root, *args], spark=spark)

    return run


def base_landing(root: str) -> None:
    write(
        root,
        "subscribers",
        D1,
        "subscribers.csv",
        [
            SUB_HEADER,
            subscriber_line("09121110001", D1, first="مریم", last="احمدی"),
            subscriber_line("+989121110002", D1, first="Ayşe", last="Yılmaz"),
            subscriber_line("0912 111 0003", D1, first="さくら", last="田中"),
        ],
    )
    write(
        root,
        "usage",
        D1,
        "usage_1.csv",
        [
            USAGE_HEADER,
            usage_line("r1", "09121110001", "2026-01-05 08:00:00"),
            usage_line(
                "r2",
                "+98-912-111-0002",
                "2026-01-05 09:30:00",
                service="data",
                duration="600",
                down="5000000",
                charge="0",
            ),
            usage_line("r3", "00989121110003", "2026-01-04 23:59:00"),  # late: belongs to the day before
            usage_line("r1", "09121110001", "2026-01-05 08:00:00"),  # exact duplicate
            usage_line("r4", "09121110001", "2026-01-05 10:00:00", duration="-5"),
            usage_line("r5", "09121110001", "2026-01-05 10:00:00", duration="12s"),
            usage_line("", "09121110001", "2026-01-05 10:00:00"),
            usage_line("r6", "02188776655", "2026-01-05 10:00:00"),
            usage_line("r7", "09121110001", "2026-01-05 10:00:00", service="hologram"),
            usage_line("r8", "09121110001", "2026-01-09 10:00:00"),
            usage_line("r9", "09121110001", "2026-01-05 10:00:00", duration="10", down=str(10**15)),
            usage_line("r10", "09359999999", "2026-01-05 10:00:00"),
            "r11,09121110001,2026-01-05 10:00:00,voice",
            "r12,09121110001,2026-01-05 10:00:00,voice,out,60,0,0,1200.00,IRR,on_net,false,TEH-001,4G,extra",
        ],
    )


def test_ingest_accepts_cleans_and_quarantines_by_rule(spark, cfg, ingest):
    base_landing(cfg.root)
    assert ingest("--date", D1) == 0

    usage_df = tables.read(spark, cfg.root, "silver.usage").select(
        "record_id", "subscriber_key", "event_date", "service_type", "duration_s", "bytes_down", "charge_amount"
    )
    expected = spark.createDataFrame(
        [
            ("r1", sk("+989121110001"), dt.date(2026, 1, 5), "voice", 60, 0, 1200),
            ("r2", sk("+989121110002"), dt.date(2026, 1, 5), "data", 600, 5000000, 0),
            ("r3", sk("+989121110003"), dt.date(2026, 1, 4), "voice", 60, 0, 1200),
        ],
        "record_id string, subscriber_key string, event_date date, service_type string, duration_s long, "
        "bytes_down long, charge_amount int",
    ).withColumn("charge_amount", F.col("charge_amount").cast("decimal(18,2)"))
    assertDataFrameEqual(usage_df, expected)

    quarantine_df = (
        tables.read(spark, cfg.root, "silver.quarantine")
        .where("entity = 'usage'")
        .select(F.get_json_object("raw", "$.record_id").alias("record_id"), "rule", "column")
    )
    expected_q = spark.createDataFrame(
        [
            ("r4", "out_of_range", "duration_s"),
            ("r5", "invalid_type", "duration_s"),
            (None, "missing_required", "record_id"),
            ("r6", "invalid_msisdn", "msisdn"),
            ("r7", "invalid_enum", "service_type"),
            ("r8", "future_event_time", "event_time"),
            ("r9", "impossible_bytes", "bytes_down"),
            ("r10", "unknown_subscriber", "msisdn"),
            (None, "malformed_row", None),
            (None, "malformed_row", None),
        ],
        "record_id string, rule string, column string",
    )
    assertDataFrameEqual(quarantine_df, expected_q)
    malformed = tables.read(spark, cfg.root, "silver.quarantine").where("rule = 'malformed_row'").select("raw")
    assert sorted(r["raw"][:3] for r in malformed.collect()) == ["r11", "r12"]

    log = tables.read(spark, cfg.root, "gold.run_log").where("job = 'ingest'").first()
    details = json.loads(log["details"])["usage"]
    assert details == {
        **details,
        "read": 14,
        "accepted": 3,
        "quarantined": 10,
        "duplicates": 1,
        "event_dates": ["2026-01-04", "2026-01-05"],
    }
    assert log["rows_read"] == log["rows_written"] + log["rows_rejected"] + log["rows_duplicate"]
    assert log["status"] == "succeeded"


def test_raw_numbers_stay_in_the_restricted_table(spark, cfg, ingest, ingested_d1):
    subs = tables.read(spark, cfg.root, "silver.subscribers")
    assert not {"msisdn", "first_name", "last_name"} & set(subs.columns)
    contacts = tables.read(spark, cfg.root, "silver.subscriber_contacts").select(
        "subscriber_key", "msisdn", "first_name"
    )
    expected = spark.createDataFrame(
        [
            (sk("+989121110001"), "+989121110001", "مریم"),
            (sk("+989121110002"), "+989121110002", "Ayşe"),
            (sk("+989121110003"), "+989121110003", "さくら"),
        ],
        "subscriber_key string, msisdn string, first_name string",
    )
    assertDataFrameEqual(contacts, expected)
    for name in ("silver.usage", "silver.subscribers"):
        text = " ".join(str(v) for r in tables.read(spark, cfg.root, name).collect() for v in r)
        assert "9121110001" not in text


def test_rerun_is_idempotent_and_reingest_changes_nothing(spark, cfg, ingest, ingested_d1):
    names = ["silver.usage", "silver.subscribers", "silver.quarantine", "bronze.usage", "silver.subscriber_contacts"]
    before = {n: tables.read(spark, cfg.root, n).drop("run_id").collect() for n in names}
    versions = tables.versions(spark, cfg.root, names)
    assert ingest("--date", D1) == 0
    assert tables.versions(spark, cfg.root, names) == versions
    for n in names:
        assertDataFrameEqual(tables.read(spark, cfg.root, n).drop("run_id"), before[n])
    runs = tables.read(spark, cfg.root, "gold.run_log").orderBy("started_at").collect()
    assert [r["rows_written"] for r in runs] == [runs[0]["rows_written"], 0]
    # the day was derived from the same deliveries under the same rules: not read again
    assert runs[0]["rows_read"] > 0 and runs[1]["rows_read"] == 0
    details = json.loads(runs[1]["details"])
    assert [details[name]["unchanged_days"] for name in ("subscribers", "usage")] == [[D1], [D1]]


def test_late_records_land_in_their_own_day_and_latest_wins(spark, cfg, ingest):
    base_landing(cfg.root)
    write(
        cfg.root,
        "usage",
        D2,
        "usage_2.csv",
        [
            USAGE_HEADER,
            usage_line("r20", "09121110001", "2026-01-06 07:00:00"),
            usage_line("r21", "09121110002", "2026-01-05 22:00:00"),  # late, for D1
            usage_line(
                "r2", "09121110002", "2026-01-05 09:30:00", service="data", duration="600", down="7000000", charge="0"
            ),
        ],
    )
    assert ingest("--all") == 0  # finds D1 and D2 in landing
    got = tables.read(spark, cfg.root, "silver.usage").select("record_id", "event_date", "bytes_down", "_file_date")
    expected = spark.createDataFrame(
        [
            ("r1", dt.date(2026, 1, 5), 0, dt.date(2026, 1, 5)),
            ("r2", dt.date(2026, 1, 5), 7000000, dt.date(2026, 1, 6)),  # re-sent a day later: latest wins
            ("r3", dt.date(2026, 1, 4), 0, dt.date(2026, 1, 5)),
            ("r20", dt.date(2026, 1, 6), 0, dt.date(2026, 1, 6)),
            ("r21", dt.date(2026, 1, 5), 0, dt.date(2026, 1, 6)),
        ],
        "record_id string, event_date date, bytes_down long, _file_date date",
    )
    assertDataFrameEqual(got, expected)
    run = tables.read(spark, cfg.root, "gold.run_log").where(F.col("job") == "ingest").first()
    assert (run["date_from"], run["run_date"]) == (dt.date(2026, 1, 5), dt.date(2026, 1, 6))
    assert run["event_dates"] == [dt.date(2026, 1, 4), dt.date(2026, 1, 5), dt.date(2026, 1, 6)]
    by_day = json.loads(run["details"])["usage"]["by_file_date"]
    assert by_day == {
        D1: {"read": 14, "accepted": 2, "quarantined": 10, "duplicate": 2},  # r2 is superseded by D2's copy
        D2: {"read": 3, "accepted": 3, "quarantined": 0, "duplicate": 0},
    }


def test_subscriber_history_keeps_versions(spark, cfg, ingest):
    base_landing(cfg.root)
    write(
        cfg.root,
        "subscribers",
        D2,
        "subscribers.csv",
        [
            SUB_HEADER,
            subscriber_line("09121110001", D2, tariff="PRE_DATA"),  # changed tariff
            subscriber_line("09121110002", D2),  # unchanged
            subscriber_line("09121110003", D2),  # unchanged
        ],
    )
    assert ingest("--from", D1, "--to", D2, "--entities", "subscribers") == 0
    got = tables.read(spark, cfg.root, "silver.subscribers").select(
        "subscriber_key", "tariff", "valid_from", "valid_to", "is_current"
    )
    d1, d2 = dt.date(2026, 1, 5), dt.date(2026, 1, 6)
    expected = spark.createDataFrame(
        [
            (sk("+989121110001"), "PRE_BASIC", d1, d2, False),
            (sk("+989121110001"), "PRE_DATA", d2, None, True),
            (sk("+989121110002"), "PRE_BASIC", d1, None, True),
            (sk("+989121110003"), "PRE_BASIC", d1, None, True),
        ],
        "subscriber_key string, tariff string, valid_from date, valid_to date, is_current boolean",
    )
    assertDataFrameEqual(got, expected)


def test_unreadable_file_fails_naming_it_and_writes_nothing(spark, cfg, ingest, capsys, ingested_d1):
    names = [
        "silver.subscribers",
        "silver.subscriber_contacts",
        "bronze.subscribers",
        "silver.usage",
        "bronze.usage",
        "bronze.ingested_files",
        "silver.quarantine",
    ]
    before = {n: tables.read(spark, cfg.root, n).collect() for n in names}
    versions = tables.versions(spark, cfg.root, names)
    # Subscribers come first in a run: the usage file's header is refused before they are written.
    write(cfg.root, "subscribers", D2, "subscribers.csv", [SUB_HEADER, subscriber_line("09121110001", D2, tariff="X")])
    write(cfg.root, "usage", D2, "good.csv", [USAGE_HEADER, usage_line("r30", "09121110001", "2026-01-06 07:00:00")])
    write(cfg.root, "usage", D2, "bad.csv", ["id;number;when", "1;2;3"])
    assert ingest("--date", D2) == 4
    err = capsys.readouterr().err
    assert "UnreadableFileError" in err
    assert "landing/usage/date=2026-01-06/bad.csv" in err and "good.csv" not in err
    for n in names:
        assertDataFrameEqual(tables.read(spark, cfg.root, n), before[n])
    assert tables.versions(spark, cfg.root, names) == versions  # not written and restored: not written
    failed = tables.read(spark, cfg.root, "gold.run_log").where("status = 'failed'").first()
    assert "bad.csv" in failed["message"]


def test_silver_opens_in_a_reader_that_is_not_spark(spark, cfg, ingest, ingested_d1):
    """A campaign or BI system reads silver with delta-rs (the deltalake package), not Spark."""
    from deltalake import DeltaTable

    usage = DeltaTable(tables.table_path(cfg.root, "silver.usage"))
    assert usage.version() == tables.version(spark, cfg.root, "silver.usage")
    arrow = usage.to_pyarrow_table(columns=["record_id", "subscriber_key", "event_date", "charge_amount"])
    from_rust = spark.createDataFrame(arrow.to_pandas()).select("record_id", "subscriber_key", "event_date")
    from_spark = tables.read(spark, cfg.root, "silver.usage").select("record_id", "subscriber_key", "event_date")
    assertDataFrameEqual(from_rust, from_spark)
    assert sorted(usage.metadata().partition_columns) == ["event_date"]
    history = DeltaTable(tables.table_path(cfg.root, "silver.subscribers")).to_pyarrow_table()
    assert history.num_rows == 3 and "valid_from" in history.column_names


def test_unknown_entity_or_mixed_date_flags_are_usage_errors(cfg, ingest, capsys):
    Path(cfg.root).mkdir(parents=True)
    assert ingest("--date", D1, "--entities", "usage,calls") == 2
    assert "unknown entities ['calls']" in capsys.readouterr().err
    assert ingest("--all", "--date", D1) == 2
    assert "either --all or dates" in capsys.readouterr().err
