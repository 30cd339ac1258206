"""crmlake erase: an erasure request given as numbers in any format deletes every row naming
those subscribers from the tables that hold one (by key in silver and gold, by the raw number
in bronze), registers their keys, changes nothing on a rerun, and stops on a number it cannot
read before anything is written."""

from __future__ import annotations

import datetime as dt

import pytest
from crmlake.catalog import tables
from crmlake.core.errors import BadValuesError
from crmlake.silver.erasure_register import ERASURE_REGISTER
from crmlake.silver.identity import hmac_sha256_hex
from crmlake_jobs.erase import main as erase_main
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

D = dt.date(2026, 3, 5)
KEY = "erasure-test-key"
# national numbers of three subscribers and how bronze got each of them
PEOPLE = {"a": "9121110001", "b": "9121110002", "c": "9121110003"}
RAW = {"a": ["09121110001", "+98 912 111 0001"], "b": ["00989121110002", "۰۹۱۲۱۱۱۰۰۰۲"], "c": ["9121110003"]}


def _key(spark, national: str) -> str:
    df = spark.createDataFrame([(f"+98{national}",)], "e164 string")
    return df.select(hmac_sha256_hex(F.col("e164"), KEY.encode())).first()[0]


@pytest.fixture
def lake(spark, tmp_path, monkeypatch):
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", KEY)
    root = str(tmp_path / "root")
    keys = {p: _key(spark, n) for p, n in PEOPLE.items()}
    bronze = [(raw, D, f"{p}-{i}") for p, forms in RAW.items() for i, raw in enumerate(forms)]
    tables.create(spark.createDataFrame(bronze, "msisdn string, _file_date date, record string"), root, "bronze.usage")
    silver = [(keys[p], D, f"{p}-{i}") for p in PEOPLE for i in range(2)]
    tables.create(
        spark.createDataFrame(silver, "subscriber_key string, event_date date, record_id string"), root, "silver.usage"
    )
    contacts = [(keys[p], f"+98{n}") for p, n in PEOPLE.items()]
    tables.create(
        spark.createDataFrame(contacts, "subscriber_key string, msisdn string"), root, "silver.subscriber_contacts"
    )
    features = [(keys[p], D, 1.0) for p in PEOPLE]
    tables.create(
        spark.createDataFrame(features, "subscriber_key string, snapshot_date date, x double"), root, "gold.features"
    )
    return {"root": root, "keys": keys, "tmp": tmp_path}


def _numbers(tmp_path, *numbers: str) -> str:
    path = tmp_path / "erase.csv"
    path.write_text("msisdn\n" + "\n".join(numbers) + "\n", encoding="utf-8")
    return str(path)


def _erase(root: str, numbers: str, request: str = "REQ-1") -> int:
    from pyspark.sql import SparkSession

    argv = ["--root", root, "--numbers", numbers, "--request", request, "--date", str(D), "--log-format", "text"]
    return erase_main(argv, spark=SparkSession.getActiveSession())


def test_erase_deletes_every_row_of_the_named_subscribers_and_registers_their_keys(spark, lake):
    root, keys = lake["root"], lake["keys"]
    # a in the form the care system writes, b with the international prefix
    assert _erase(root, _numbers(lake["tmp"], "0912-111-0001", "+989121110002")) == 0
    assertDataFrameEqual(
        tables.read(spark, root, "bronze.usage").select("msisdn", "record"),
        spark.createDataFrame([("9121110003", "c-0")], "msisdn string, record string"),
    )
    assertDataFrameEqual(
        tables.read(spark, root, "silver.usage").select("subscriber_key", "record_id"),
        spark.createDataFrame([(keys["c"], "c-0"), (keys["c"], "c-1")], "subscriber_key string, record_id string"),
    )
    for name in ("silver.subscriber_contacts", "gold.features"):
        assert [r[0] for r in tables.read(spark, root, name).select("subscriber_key").collect()] == [keys["c"]], name
    assertDataFrameEqual(
        tables.read(spark, root, ERASURE_REGISTER),
        spark.createDataFrame(
            [(keys["a"], "REQ-1", D), (keys["b"], "REQ-1", D)],
            "subscriber_key string, request_id string, erased_on date",
        ),
    )
    log = tables.read(spark, root, "gold.run_log").where("job = 'erase'").first()
    assert log["status"] == "succeeded" and log["rows_written"] == 4 + 4 + 2 + 2
    assert not [n for n in PEOPLE.values() if n in str(log.asDict())], "the run log names no number"


@pytest.mark.slow  # four runs
def test_a_rerun_of_the_request_changes_nothing(spark, lake):
    root = lake["root"]
    numbers = _numbers(lake["tmp"], "09121110001")
    assert _erase(root, numbers) == 0
    names = ["bronze.usage", "silver.usage", "silver.subscriber_contacts", "gold.features", ERASURE_REGISTER]
    before = tables.versions(spark, root, names)
    assert _erase(root, numbers) == 0
    assert tables.versions(spark, root, names) == before
    # a second request for the same line keeps the first request in the register
    assert _erase(root, numbers, request="REQ-2") == 0
    assert [r["request_id"] for r in tables.read(spark, root, ERASURE_REGISTER).collect()] == ["REQ-1"]


def test_an_unreadable_number_stops_the_request_before_anything_is_written(spark, lake):
    root = lake["root"]
    names = ["bronze.usage", "silver.usage", "silver.subscriber_contacts", "gold.features"]
    before = tables.versions(spark, root, names)
    numbers = _numbers(lake["tmp"], "09121110001", "12-34")
    assert _erase(root, numbers) == BadValuesError.exit_code
    assert tables.versions(spark, root, names) == before
    assert not tables.exists(spark, root, ERASURE_REGISTER)
