import hashlib
import hmac

import pytest
from crmlake.core.errors import MissingSecretError
from crmlake.silver.identity import create_demo_key, hmac_sha256_hex, load_hmac_key, normalize_msisdn
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual


def test_normalize_accepts_the_forms_operators_export(spark):
    raw = [
        ("09123456789", "+989123456789"),
        ("0912 345 6789", "+989123456789"),
        ("+98-912-345-6789", "+989123456789"),
        ("00989123456789", "+989123456789"),
        ("989123456789", "+989123456789"),
        ("9123456789", "+989123456789"),
        ("(0912) 345.6789", "+989123456789"),
        ("۰۹۱۲۳۴۵۶۷۸۹", "+989123456789"),
        (" +989351112233 ", "+989351112233"),
        ("02112345678", None),  # a landline, not a mobile number
        ("0912345678", None),  # one digit short
        ("+1 212 555 0100", None),  # another country
        ("0912abc6789", None),
        ("", None),
        (None, None),
    ]
    df = spark.createDataFrame(raw, "raw string, expected string")
    got = df.select("raw", normalize_msisdn(F.col("raw"), "98").alias("expected"))
    assertDataFrameEqual(got, df)


@pytest.mark.parametrize(
    "key",
    [
        b"\x0b" * 20,  # RFC 4231 test case 1 key
        b"Jefe",  # RFC 4231 test case 2 key
        b"\xaa" * 131,  # longer than the block: hashed first (RFC 4231 case 6)
    ],
)
def test_hmac_matches_python_hmac(spark, key):
    messages = ["Hi There", "what do ya want for nothing?", "+989123456789", "سلام", ""]
    df = spark.createDataFrame([(m,) for m in messages] + [(None,)], "m string")
    got = df.select("m", hmac_sha256_hex(F.col("m"), key).alias("h"))
    expected = spark.createDataFrame(
        [(m, hmac.new(key, m.encode(), hashlib.sha256).hexdigest()) for m in messages] + [(None, None)],
        "m string, h string",
    )
    assertDataFrameEqual(got, expected)


def test_hmac_rfc4231_case_2_vector(spark):
    df = spark.createDataFrame([("what do ya want for nothing?",)], "m string")
    got = df.select(hmac_sha256_hex(F.col("m"), b"Jefe").alias("h")).first()["h"]
    assert got == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"


def test_key_missing_is_a_clear_error_even_where_the_demo_may_make_one(cfg, monkeypatch):
    """Only crmlake generate makes a key: a job reading data never invents one."""
    monkeypatch.delenv("CRMLAKE_HMAC_KEY", raising=False)
    for may_make in (False, True):
        cfg["identity"]["generate_local_key"] = may_make
        with pytest.raises(MissingSecretError, match="CRMLAKE_HMAC_KEY"):
            load_hmac_key(cfg.settings.identity, cfg.root)


def test_the_demo_key_is_made_once_and_reused(cfg, monkeypatch):
    monkeypatch.delenv("CRMLAKE_HMAC_KEY", raising=False)
    cfg["identity"]["generate_local_key"] = False
    create_demo_key(cfg.settings.identity, cfg.root)  # not the embedded demo: no key
    with pytest.raises(MissingSecretError):
        load_hmac_key(cfg.settings.identity, cfg.root)
    cfg["identity"]["generate_local_key"] = True
    create_demo_key(cfg.settings.identity, cfg.root)
    first = load_hmac_key(cfg.settings.identity, cfg.root)
    assert len(first) == 64
    create_demo_key(cfg.settings.identity, cfg.root)
    assert load_hmac_key(cfg.settings.identity, cfg.root) == first


def test_key_from_environment_wins(cfg, monkeypatch):
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", "from-env")
    assert load_hmac_key(cfg.settings.identity, cfg.root) == b"from-env"
