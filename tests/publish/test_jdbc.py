"""The JDBC hand-off against a real PostgreSQL (the ``postgres`` fixture): treatment rows only,
upserted by (campaign_id, run_id, subscriber_key) so a repeat adds nothing and a new run adds its
own rows, one transaction so a failure leaves the table as it was and no staging table behind,
credentials from the environment, and the same through ``crmlake publish``."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from crmlake.catalog import tables
from crmlake.catalog.registry import CAMPAIGN_TARGETS_SCHEMA
from crmlake.core.config import load_config
from crmlake.core.errors import ConfigError, JdbcPushError
from crmlake.core.settings import JdbcConfig
from crmlake.publish.jdbc import DRIVER_CLASS, PUSHED, push
from crmlake.publish.run import CAMPAIGN_TARGETS
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from test_publish import CAMPAIGNS, D, _conf, _lake, run

USER_ENV, PASSWORD_ENV = "CRMLAKE_TEST_PG_USER", "CRMLAKE_TEST_PG_PASSWORD"
VALID = D + dt.timedelta(days=7)


def _list(spark, run_id: str, rows: list[tuple]):
    """A list in gold.campaign_targets' schema from (subscriber, group, rank, msisdn) tuples."""
    return spark.createDataFrame(
        [
            (
                "retention",
                D,
                run_id,
                key,
                msisdn,
                group,
                rank,
                "high",
                "RET-1",
                5.0,
                "sms",
                "retention",
                ["crmlake-churn/3"],
                VALID,
            )
            for key, group, rank, msisdn in rows
        ],  # fmt: skip
        CAMPAIGN_TARGETS_SCHEMA,
    )


FIRST = [
    ("k1", "treatment", 1, "+989120000001"),
    ("k2", "control", 2, None),
    ("k3", "treatment", 3, "+989120000003"),
    ("k4", "treatment", 4, "+989120000004"),
    ("k5", "control", 5, None),
]


def _expected(spark, run_id: str, rows: list[tuple]):
    """What the database must hold for these rows: treatment only, the pushed columns, by hand."""
    return spark.createDataFrame(
        [
            ("retention", run_id, key, D, msisdn, rank, "high", "RET-1", "sms", VALID)
            for key, group, rank, msisdn in rows
            if group == "treatment"
        ],  # fmt: skip
        "campaign_id string, run_id string, subscriber_key string, publish_date date, msisdn string, rank int, "
        "score_band string, offer_code string, channel string, valid_until date",
    )


@pytest.fixture
def jdbc(postgres, monkeypatch, request):
    monkeypatch.setenv(USER_ENV, postgres.user)
    monkeypatch.setenv(PASSWORD_ENV, "unused-under-trust")
    table = "t_" + request.node.name.removeprefix("test_")[:40]
    postgres.sql(f"DROP TABLE IF EXISTS {table}")
    return JdbcConfig(enabled=True, url=postgres.url, table=table, user_env=USER_ENV, password_env=PASSWORD_ENV)


def _read(spark, postgres, table: str):
    return spark.read.jdbc(postgres.url, table, properties={"user": postgres.user, "driver": DRIVER_CLASS})


def _staging_tables(postgres) -> str:
    return postgres.sql(
        "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_name LIKE '%stg%'"
    )


def test_treatment_rows_are_upserted_and_a_repeat_adds_nothing(spark, postgres, jdbc):
    assert push(spark, _list(spark, "r1", FIRST), jdbc, "pusher-1") == 3
    assertDataFrameEqual(_read(spark, postgres, jdbc.table), _expected(spark, "r1", FIRST))
    assert sorted(_read(spark, postgres, jdbc.table).columns) == sorted(PUSHED)
    # the same list again (a rerun): nothing inserted or changed, no duplicate
    assert push(spark, _list(spark, "r1", FIRST), jdbc, "pusher-2") == 0
    assertDataFrameEqual(_read(spark, postgres, jdbc.table), _expected(spark, "r1", FIRST))
    # a changed value under the same key is updated in place
    changed = [("k3", "treatment", 3, "+989129999999"), *[r for r in FIRST if r[0] != "k3"]]
    assert push(spark, _list(spark, "r1", changed), jdbc, "pusher-3") == 1
    assertDataFrameEqual(_read(spark, postgres, jdbc.table), _expected(spark, "r1", changed))
    assert (
        postgres.sql(
            "SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_index i JOIN pg_attribute a "
            f"ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{jdbc.table}'::regclass "
            "AND i.indisprimary"
        )
        == "campaign_id,run_id,subscriber_key"
    )
    assert _staging_tables(postgres) == ""


def test_a_new_run_of_the_campaign_adds_that_runs_rows_only(spark, postgres, jdbc):
    push(spark, _list(spark, "r1", FIRST), jdbc, "pusher-1")
    second = [
        ("k4", "treatment", 1, "+989120000004"),
        ("k6", "treatment", 2, "+989120000006"),
        ("k1", "control", 3, None),
    ]
    assert push(spark, _list(spark, "r2", second), jdbc, "pusher-2") == 2
    expected = _expected(spark, "r1", FIRST).unionByName(_expected(spark, "r2", second))
    assertDataFrameEqual(_read(spark, postgres, jdbc.table), expected)


def test_a_failing_upsert_leaves_the_table_as_it_was_and_no_staging(spark, postgres, jdbc):
    # a table the team made, accepting only the first two ranks: the third row breaks it
    push(spark, _list(spark, "r0", FIRST[:1]), jdbc, "pusher-0")
    postgres.sql(f"ALTER TABLE {jdbc.table} ADD CONSTRAINT top_two CHECK (rank <= 2)")
    before = postgres.sql(f"SELECT * FROM {jdbc.table} ORDER BY 1, 2, 3")
    with pytest.raises(JdbcPushError) as err:
        push(spark, _list(spark, "r1", FIRST), jdbc, "pusher-1")
    message = str(err.value)
    assert postgres.url in message and f"table {jdbc.table}" in message and "top_two" in message
    assert "unused-under-trust" not in message
    assert postgres.sql(f"SELECT * FROM {jdbc.table} ORDER BY 1, 2, 3") == before
    assert _staging_tables(postgres) == ""


def test_a_push_failing_after_it_created_the_table_leaves_no_table(spark, postgres, jdbc):
    # one key twice: the upsert fails after CREATE TABLE ran in the same transaction
    twice = [("k1", "treatment", 1, "+989120000001"), ("k1", "treatment", 2, "+989120000002")]
    with pytest.raises(JdbcPushError, match="rolled back"):
        push(spark, _list(spark, "r1", twice), jdbc, "pusher-1")
    assert postgres.sql(f"SELECT to_regclass('{jdbc.table}') IS NULL") == "t"
    assert _staging_tables(postgres) == ""


def test_a_missing_credential_is_a_config_error_naming_the_variable(spark, jdbc, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConfigError, match=f"publish.jdbc.password_env: environment variable {PASSWORD_ENV} is not set"):
        push(spark, _list(spark, "r1", FIRST), jdbc, "pusher-1")


def test_the_jdbc_section_is_checked_with_the_rest_of_the_config():
    with pytest.raises(ConfigError) as err:
        load_config(env="local", overrides={"publish.jdbc.table": "crm.targets; drop", "publish.jdbc.user_env": "1X"})
    message = str(err.value)
    assert "key 'publish.jdbc.table'" in message and "key 'publish.jdbc.user_env'" in message
    with pytest.raises(ConfigError, match="publish.jdbc': enabled needs a url"):
        load_config(env="local", overrides={"publish.jdbc.enabled": True})
    with pytest.raises(ConfigError, match="must not hold a password"):
        load_config(env="local", overrides={"publish.jdbc.url": "jdbc:postgresql://db/crm?password=secret"})
    jdbc = load_config(env="local").settings.publish.jdbc
    assert (jdbc.enabled, jdbc.table, jdbc.user_env, jdbc.password_env) == (
        False, "campaign_targets", "CRMLAKE_JDBC_USER", "CRMLAKE_JDBC_PASSWORD")  # fmt: skip


@pytest.mark.slow  # two publishes to PostgreSQL and a refused one
def test_publish_pushes_each_lists_treatment_rows_and_a_rerun_adds_none(spark, postgres, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRMLAKE_HMAC_KEY", "publish-key")
    monkeypatch.setenv(USER_ENV, postgres.user)
    table = "crm_lists"
    postgres.sql(f"DROP TABLE IF EXISTS {table}")
    root = str(tmp_path / "root")
    _lake(spark, root)
    jdbc = {"enabled": True, "url": postgres.url, "table": table, "user_env": USER_ENV, "password_env": ""}
    conf = _conf(tmp_path, CAMPAIGNS, jdbc=jdbc)
    assert run(spark, root, conf, "--date", D) == 0
    stored = tables.read(spark, root, CAMPAIGN_TARGETS)
    treated = stored.where(F.col("group") == "treatment").select(*PUSHED)
    assertDataFrameEqual(_read(spark, postgres, table), treated)
    details = json.loads(tables.read(spark, root, "gold.run_log").where(F.col("job") == "publish").first()["details"])
    per_campaign = {c: details["campaigns"][c]["upserted"] for c in CAMPAIGNS}
    assert per_campaign == {c: treated.where(F.col("campaign_id") == c).count() for c in CAMPAIGNS}
    assert details["jdbc"] == {"url": postgres.url, "table": table}
    # a rerun: the same list (the lake writes nothing), the same rows in the database
    assert run(spark, root, conf, "--date", D, "--campaign", "retention") == 0
    assertDataFrameEqual(_read(spark, postgres, table), treated)
    # without the user's variable the run stops before it reads a table (here: none to read)
    monkeypatch.delenv(USER_ENV)
    (tmp_path / "empty").mkdir()
    assert run(spark, str(tmp_path / "empty"), conf, "--date", D) == 2
    assert f"publish.jdbc.user_env: environment variable {USER_ENV} is not set" in capsys.readouterr().err
