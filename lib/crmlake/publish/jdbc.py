"""Handing a published list to a relational database: the treatment rows of gold.campaign_targets,
in the columns a campaign system needs, upserted into a PostgreSQL table keyed by
(campaign_id, run_id, subscriber_key), all of a list in one transaction.

Spark writes the rows in parallel to a staging table of this run, then one JDBC connection, with
autocommit off, creates the target when absent, copies staging into it with
``INSERT ... ON CONFLICT ... DO UPDATE``, drops staging and commits. A consumer therefore sees a
list whole or not at all, and pushing the same list again (a rerun) changes nothing. Any failure
rolls the transaction back (the target is as it was), drops staging and raises
:class:`JdbcPushError` naming the URL and table. Controls never leave the lake.

Credentials are read from the environment variables that ``publish.jdbc.user_env`` and
``password_env`` name; the YAML holds only those names.
"""

from __future__ import annotations

import contextlib
import os
import re

from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from crmlake.catalog.registry import CAMPAIGN_TARGETS_SCHEMA
from crmlake.core.errors import ConfigError, JdbcPushError
from crmlake.core.settings import JdbcConfig
from crmlake.publish.targets import TREATMENT

DRIVER_CLASS = "org.postgresql.Driver"
KEY = ("campaign_id", "run_id", "subscriber_key")
# py4j's error for a direct JVM call; PySpark's own for a failed Spark write it recognizes
JVM_ERRORS = (Py4JError, PySparkException)
# What leaves the lake: the key, who to contact, with what, until when; no group, no cost.
PUSHED = (*KEY, "publish_date", "msisdn", "rank", "score_band", "offer_code", "channel", "valid_until")
SQL_TYPES = {T.StringType(): "text", T.DateType(): "date", T.IntegerType(): "integer"}
MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names


def credentials(cfg: JdbcConfig) -> tuple[str, str | None]:
    """The user and password from the environment variables the config names (password None when
    ``password_env`` is ""). ConfigError naming the variable and the key when one is not set."""
    values = []
    for key, name in (("user_env", cfg.user_env), ("password_env", cfg.password_env)):
        if not name:
            values.append(None)
            continue
        if name not in os.environ:
            raise ConfigError(
                f"publish.jdbc.{key}: environment variable {name} is not set; it must hold the "
                f"{key.removesuffix('_env')} for {redacted(cfg.url)}"
            )
        values.append(os.environ[name])
    return values[0], values[1]


def redacted(url: str) -> str:
    """The URL without any password parameter, for messages and logs."""
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


def staging_name(table: str, run_id: str) -> str:
    """This run's staging table, in the target's schema: ``<table>__stg_<run>``."""
    schema, _, name = table.rpartition(".")
    suffix = "__stg_" + re.sub(r"[^a-z0-9_]", "_", run_id.lower())[:20]
    staged = name[: MAX_IDENTIFIER - len(suffix)] + suffix
    return f"{schema}.{staged}" if schema else staged


def pushed_rows(targets_df: DataFrame) -> DataFrame:
    """The treatment rows of gold.campaign_targets' columns, in the pushed columns."""
    return targets_df.where(F.col("group") == TREATMENT).select(*PUSHED)


def create_sql(table: str) -> str:
    fields = {f.name: f for f in CAMPAIGN_TARGETS_SCHEMA.fields}
    columns = [f"{c} {SQL_TYPES[fields[c].dataType]}{'' if fields[c].nullable else ' NOT NULL'}" for c in PUSHED]
    return f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(columns)}, PRIMARY KEY ({', '.join(KEY)}))"


def upsert_sql(table: str, staging: str) -> str:
    """Insert staging's rows; a row whose key is there already takes the new values, and only
    when one differs (a rerun then rewrites nothing and counts 0)."""
    names = ", ".join(PUSHED)
    rest = [c for c in PUSHED if c not in KEY]
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM EXCLUDED.{c}" for c in rest)
    return (
        f"INSERT INTO {table} AS t ({names}) SELECT {names} FROM {staging} "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in rest)} "
        f"WHERE {changed}"
    )


def connect(spark: SparkSession, cfg: JdbcConfig):
    """A JDBC connection through the driver's JVM (py4j). The driver jar is on spark.jars, in
    Spark's class loader, which java.sql.DriverManager does not search: Spark's registry wraps
    it into one that DriverManager accepts, as Spark's own JDBC source does."""
    jvm = spark._jvm
    jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(DRIVER_CLASS)
    user, password = credentials(cfg)
    props = jvm.java.util.Properties()
    props.setProperty("user", user)
    if password is not None:
        props.setProperty("password", password)
    return jvm.java.sql.DriverManager.getConnection(cfg.url, props)


def _cause(exc: Exception) -> str:
    """The database's own message, not py4j's stack trace."""
    java = getattr(exc, "java_exception", None)
    text = str(java.getMessage()) if java is not None else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _drop_quietly(spark: SparkSession, cfg: JdbcConfig, staging: str) -> None:
    try:
        conn = connect(spark, cfg)
        try:
            conn.createStatement().execute(f"DROP TABLE IF EXISTS {staging}")
        finally:
            conn.close()
    except (*JVM_ERRORS, ConfigError):
        pass  # the push's own error is the one to report; a later run drops staging of its name


def push(spark: SparkSession, targets_df: DataFrame, cfg: JdbcConfig, run_id: str) -> int:
    """Upsert the treatment rows of ``targets_df`` (gold.campaign_targets' columns) into
    ``cfg.table`` in one transaction, through a staging table named after ``run_id`` (the pushing
    run). Returns the rows inserted or changed (0 when the same list was pushed before)."""
    user, password = credentials(cfg)
    staging = staging_name(cfg.table, run_id)
    where = f"{redacted(cfg.url)}, table {cfg.table}"
    writer = (
        pushed_rows(targets_df)
        .write.format("jdbc")
        .option("url", cfg.url)
        .option("dbtable", staging)
        .option("driver", DRIVER_CLASS)
        .option("user", user)
        .option("batchsize", cfg.batch_size)
        .mode("overwrite")  # a staging table of the same name left by a run that died
    )
    if password is not None:
        writer = writer.option("password", password)
    try:
        writer.save()
    except JVM_ERRORS as exc:
        _drop_quietly(spark, cfg, staging)
        raise JdbcPushError(f"{where}: writing the staging table {staging} failed: {_cause(exc)}") from None
    conn = None
    try:
        conn = connect(spark, cfg)
        conn.setAutoCommit(False)
        statement = conn.createStatement()
        statement.execute(create_sql(cfg.table))
        rows = statement.executeUpdate(upsert_sql(cfg.table, staging))
        statement.execute(f"DROP TABLE {staging}")
        conn.commit()
        return int(rows)
    except JVM_ERRORS as exc:
        if conn is not None:
            # a broken connection cannot roll back: the server then drops what was not committed
            with contextlib.suppress(Py4JError):
                conn.rollback()
        _drop_quietly(spark, cfg, staging)
        raise JdbcPushError(f"{where}: the upsert was rolled back, the table is as it was: {_cause(exc)}") from None
    finally:
        if conn is not None:
            with contextlib.suppress(Py4JError):
                conn.close()
