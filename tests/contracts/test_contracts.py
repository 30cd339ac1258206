"""Contracts rule by rule, on inline bronze rows (no files, no Delta)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal

from crmlake.contracts.entities import ENTITIES, MONEY, cents
from crmlake.contracts.rules import ContractParams
from crmlake.silver.classify import apply_rules, classify, latest_wins, number_keys, repeated_keys, row_hash
from crmlake.silver.identity import normalize_msisdn
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

PARAMS = ContractParams(
    future_tolerance_hours=6,
    max_lateness_days=30,
    max_duration_s=86400,
    max_throughput_bps=10_000_000_000,
    max_amount=1e8,
    currencies=("IRR",),
)
FILE_DATE = dt.date(2026, 1, 5)
KEY = b"k"


def bronze(spark, entity_name: str, rows: list[dict]):
    entity = ENTITIES[entity_name]
    full = [
        {
            **{c: None for c in entity.landing_columns},
            "_corrupt_record": None,
            "_source_file": f"landing/{entity_name}/date=2026-01-05/f.json",
            "_file_date": FILE_DATE,
            "_batch_id": "b1",
            "_ingested_at": dt.datetime(2026, 1, 6, 1),
            **r,
        }
        for r in rows
    ]
    schema = ", ".join(
        [f"{f.name} {f.dataType.simpleString()}" for f in entity.landing_schema.fields]
        + [
            "_corrupt_record string",
            "_source_file string",
            "_file_date date",
            "_batch_id string",
            "_ingested_at timestamp",
        ]
    )
    return spark.createDataFrame(full, schema)


def known(spark, *numbers):
    from crmlake.silver.identity import hmac_sha256_hex

    return spark.createDataFrame([(n,) for n in numbers], "n string").select(
        hmac_sha256_hex(F.col("n"), KEY).alias("subscriber_key")
    )


def outcome(spark, entity_name, rows, known_numbers=("+989120000001",)):
    entity = ENTITIES[entity_name]
    df = classify(
        bronze(spark, entity_name, rows),
        entity,
        PARAMS,
        normalize_msisdn(F.col("msisdn"), "98") if entity.has_msisdn else None,
        KEY,
        known(spark, *known_numbers) if entity.checks_subscriber else None,
    )
    return df.select(F.col(entity.key[0]).alias("id"), "_status", "reject_rule", "reject_column")


def care(iid, **over):
    base = {
        "interaction_id": iid,
        "msisdn": "09120000001",
        "started_at": "2026-01-05 10:00:00",
        "channel": "chat",
        "reason": "billing",
        "is_complaint": "true",
        "is_resolved": "false",
        "is_first_contact_resolution": "false",
        "escalation_level": "1",
        "handle_time_s": "300",
        "notes": "مشکل شبکه — 電波が弱い",
    }
    return {**base, **over}


def test_care_interactions_rules(spark):
    rows = [
        care("c1"),
        care("c2", is_resolved="YES", is_first_contact_resolution="0"),
        care("c3", is_complaint="maybe"),
        care("c4", escalation_level="7"),
        care("c5", channel="pigeon"),
        care("c6", started_at="yesterday"),
        care("c7", started_at="2025-11-01 10:00:00"),
        care("c8", msisdn="+989129999999"),
        care("c9", reason=None),
        care("c1", notes="an exact key repeat, arriving in the same batch"),
        {"_corrupt_record": '{"interaction_id": "c10", broken'},
    ]
    expected = spark.createDataFrame(
        [
            ("c1", "accepted", None, None),
            ("c1", "duplicate", None, None),
            ("c2", "accepted", None, None),
            ("c3", "quarantined", "invalid_type", "is_complaint"),
            ("c4", "quarantined", "out_of_range", "escalation_level"),
            ("c5", "quarantined", "invalid_enum", "channel"),
            ("c6", "quarantined", "invalid_type", "started_at"),
            ("c7", "quarantined", "too_late", "started_at"),
            ("c8", "quarantined", "unknown_subscriber", "msisdn"),
            ("c9", "quarantined", "missing_required", "reason"),
            (None, "quarantined", "malformed_row", None),
        ],
        "id string, _status string, reject_rule string, reject_column string",
    )
    assertDataFrameEqual(outcome(spark, "care_interactions", rows), expected)


def test_booleans_accept_the_usual_spellings(spark):
    rows = [care("c1", is_resolved="YES", is_first_contact_resolution="0", is_complaint="t")]
    entity = ENTITIES["care_interactions"]
    df = classify(
        bronze(spark, "care_interactions", rows), entity, PARAMS, normalize_msisdn(F.col("msisdn"), "98"), KEY, None
    )
    got = df.select("is_resolved", "is_first_contact_resolution", "is_complaint", "notes")
    expected = spark.createDataFrame(
        [(True, False, True, "مشکل شبکه — 電波が弱い")],
        "is_resolved boolean, is_first_contact_resolution boolean, is_complaint boolean, notes string",
    )
    assertDataFrameEqual(got, expected)


def test_survey_scores_depend_on_the_survey_type(spark):
    def survey(sid, kind, score):
        return {
            "survey_id": sid,
            "msisdn": "09120000001",
            "answered_at": "2026-01-05 12:00:00",
            "survey_type": kind,
            "score": score,
        }

    rows = [
        survey("s1", "csat", "5"),
        survey("s2", "csat", "9"),
        survey("s3", "nps", "9"),
        survey("s4", "nps", "11"),
        survey("s5", "csat", "0"),
    ]
    expected = spark.createDataFrame(
        [
            ("s1", "accepted", None, None),
            ("s2", "quarantined", "out_of_range", "score"),
            ("s3", "accepted", None, None),
            ("s4", "quarantined", "out_of_range", "score"),
            ("s5", "quarantined", "out_of_range", "score"),
        ],
        "id string, _status string, reject_rule string, reject_column string",
    )
    assertDataFrameEqual(outcome(spark, "surveys", rows), expected)


def test_network_cells_ranges_and_keys(spark):
    def cell(cid, day="2026-01-05", drop="0.01", tput="35.0", avail="99.5"):
        return {
            "cell_id": cid,
            "date": day,
            "region": "Tehran",
            "radio_tech": "4G",
            "dropped_call_rate": drop,
            "avg_throughput_mbps": tput,
            "availability_pct": avail,
        }

    rows = [
        cell("A"),
        cell("B", drop="1.5"),
        cell("C", tput="-1.0"),
        cell(None),
        cell("D", day="2026-01-09"),
        cell("E", avail="n/a"),
    ]
    expected = spark.createDataFrame(
        [
            ("A", "accepted", None, None),
            ("B", "quarantined", "out_of_range", "dropped_call_rate"),
            ("C", "quarantined", "out_of_range", "avg_throughput_mbps"),
            (None, "quarantined", "missing_required", "cell_id"),
            ("D", "quarantined", "future_event_time", "date"),
            ("E", "quarantined", "invalid_type", "availability_pct"),
        ],
        "id string, _status string, reject_rule string, reject_column string",
    )
    assertDataFrameEqual(outcome(spark, "network_cells", rows), expected)


def test_recharges_money_rules(spark):
    def txn(tid, amount="50000", currency="IRR", kind="topup"):
        return {
            "txn_id": tid,
            "msisdn": "0912-000-0001",
            "txn_time": "2026-01-05 09:00:00",
            "txn_type": kind,
            "amount": amount,
            "currency": currency,
            "channel": "app",
        }

    rows = [
        txn("t1"),
        txn("t2", amount="-10"),
        txn("t3", amount="1.2.3"),
        txn("t4", currency="USD"),
        txn("t5", amount="1e12"),
        txn("t6", kind="gift"),
    ]
    expected = spark.createDataFrame(
        [
            ("t1", "accepted", None, None),
            ("t2", "quarantined", "out_of_range", "amount"),
            ("t3", "quarantined", "invalid_type", "amount"),
            ("t4", "quarantined", "invalid_enum", "currency"),
            ("t5", "quarantined", "out_of_range", "amount"),  # above ingest.max_amount
            ("t6", "quarantined", "invalid_enum", "txn_type"),
        ],
        "id string, _status string, reject_rule string, reject_column string",
    )
    assertDataFrameEqual(outcome(spark, "recharges", rows), expected)


def test_money_as_whole_cents_is_exact(spark):
    """Sums of money run on cents in longs: the conversion must give the exact cents of every
    two-decimal amount, negative and large ones included, and leave an unknown amount unknown."""
    amounts = ["0.15", "0.29", "0.01", "1.00", "-12.34", "-0.05", "123456789.99", "999999999999.99", "0"]
    df = spark.createDataFrame(
        [(Decimal(a),) for a in amounts] + [(None,)], T.StructType([T.StructField("amount", MONEY)])
    )
    expected = spark.createDataFrame(
        [(Decimal(a), int(Decimal(a) * 100)) for a in amounts] + [(None, None)], "amount decimal(18,2), cents long"
    )
    assertDataFrameEqual(df.select("amount", cents(F.col("amount")).alias("cents")), expected)


def test_latest_wins_ranks_only_the_keys_a_batch_repeats(spark):
    def later(row, day, batch, hour):
        return {**row, "_file_date": day, "_batch_id": batch, "_ingested_at": dt.datetime(2026, 1, 7, hour)}

    d6 = dt.date(2026, 1, 6)
    rows = [
        care("c1", notes="first delivery"),
        later(care("c1", notes="next day, later batch"), d6, "b3", 5),
        later(care("c1", notes="next day, earlier batch"), d6, "b2", 4),
        care("c2", notes="only once"),
        care("c3", channel="pigeon", notes="broke a rule"),
        later(care("c3", notes="mended the next day"), d6, "b2", 4),
    ]
    entity = ENTITIES["care_interactions"]
    bronze_df = bronze(spark, "care_interactions", rows)
    numbers_df = number_keys(bronze_df, normalize_msisdn(F.col("msisdn"), "98"), KEY)
    rules_df = apply_rules(bronze_df, entity, PARAMS, numbers_df, None)
    repeated = repeated_keys(rules_df, entity)
    assertDataFrameEqual(repeated, spark.createDataFrame([("c1", True)], "interaction_id string, _repeated boolean"))
    got = latest_wins(rules_df, entity, repeated).select("interaction_id", "notes", "_file_date", "_status")
    expected = spark.createDataFrame(
        [
            ("c1", "first delivery", FILE_DATE, "duplicate"),
            ("c1", "next day, later batch", d6, "accepted"),
            ("c1", "next day, earlier batch", d6, "duplicate"),
            ("c2", "only once", FILE_DATE, "accepted"),
            ("c3", "broke a rule", FILE_DATE, "quarantined"),
            ("c3", "mended the next day", d6, "accepted"),
        ],
        "interaction_id string, notes string, _file_date date, _status string",
    )
    assertDataFrameEqual(got, expected)


def test_a_row_hash_tells_apart_what_differs_and_only_that(spark):
    """An event's hash: equal for equal columns, different where a value moved to the column
    beside it (xxHash alone skips nulls, so (null, x) and (x, null) would hash alike), at most 16
    hex digits. The subscriber master keeps SHA-256 of the JSON its history recorded."""
    df = spark.createDataFrame(
        [(1, None, "x"), (2, "x", None), (3, None, "x"), (4, None, None), (5, "", None)], "id int, a string, b string"
    )
    usage, subscribers = ENTITIES["usage"], ENTITIES["subscribers"]
    got = df.select("id", row_hash(usage, ["a", "b"]).alias("h"), row_hash(subscribers, ["a", "b"]).alias("s"))
    rows = {r["id"]: r for r in got.collect()}
    assert rows[1]["h"] == rows[3]["h"]
    assert len({rows[i]["h"] for i in (1, 2, 4, 5)}) == 4
    assert all(0 < len(r["h"]) <= 16 for r in rows.values())
    expected = hashlib.sha256(b'{"b":"x"}').hexdigest()
    assert rows[1]["s"] == expected and all(len(r["s"]) == 64 for r in rows.values())


def test_network_cells_keep_the_latest_row_per_cell_and_day(spark):
    def cell(cid, date, day, batch, drop):
        return {
            "cell_id": cid,
            "date": date,
            "region": "Tehran",
            "radio_tech": "4G",
            "dropped_call_rate": drop,
            "avg_throughput_mbps": "35.0",
            "availability_pct": "99.5",
            "_file_date": day,
            "_batch_id": batch,
        }

    d6 = dt.date(2026, 1, 6)
    rows = [
        cell("A", "2026-01-05", FILE_DATE, "b1", "0.01"),
        cell("A", "2026-01-05", d6, "b2", "0.02"),  # re-sent in the next day's file: replaces it
        cell("A", "2026-01-04", FILE_DATE, "b1", "0.05"),
        cell("B", "2026-01-05", FILE_DATE, "b1", "0.03"),
        cell("B", "2026-01-05", FILE_DATE, "b2", "0.04"),  # the same file date, a later batch
    ]
    got = classify(bronze(spark, "network_cells", rows), ENTITIES["network_cells"], PARAMS, None, KEY, None)
    expected = spark.createDataFrame(
        [
            ("A", dt.date(2026, 1, 5), 0.01, "duplicate"),
            ("A", dt.date(2026, 1, 5), 0.02, "accepted"),
            ("A", dt.date(2026, 1, 4), 0.05, "accepted"),
            ("B", dt.date(2026, 1, 5), 0.03, "duplicate"),
            ("B", dt.date(2026, 1, 5), 0.04, "accepted"),
        ],
        "cell_id string, date date, dropped_call_rate double, _status string",
    )
    assertDataFrameEqual(got.select("cell_id", "date", "dropped_call_rate", "_status"), expected)


def test_number_keys_hold_each_number_of_a_batch_once(spark):
    rows = [care("c1"), care("c2"), care("c3", msisdn="+98 912 000 0001"), care("c4", msisdn="12345"),
            care("c5", msisdn=None)]  # fmt: skip
    got = number_keys(bronze(spark, "care_interactions", rows), normalize_msisdn(F.col("msisdn"), "98"), KEY)
    key = hmac.new(KEY, b"+989120000001", hashlib.sha256).hexdigest()
    expected = spark.createDataFrame(
        [("09120000001", "+989120000001", key), ("+98 912 000 0001", "+989120000001", key), ("12345", None, None)],
        "msisdn string, msisdn_e164 string, subscriber_key string",
    )
    assertDataFrameEqual(got, expected)
