"""A synthetic mobile operator, generated distributed in Spark: :func:`generate_operator`.

It writes every source entity's landing files under ``<root>/landing/<entity>/date=YYYY-MM-DD/``
(format and columns from :mod:`crmlake.contracts.entities`) and the ground truth, which the
pipeline never reads, under ``<root>/truth/``. The population and its churn are drawn first
(:mod:`~crmlake.synth.population`, :mod:`~crmlake.synth.campaigns`); each entity's records come
from their own module (:mod:`~crmlake.synth.usage`, :mod:`~crmlake.synth.money`,
:mod:`~crmlake.synth.care`, :mod:`~crmlake.synth.network`, :mod:`~crmlake.synth.campaigns`), with
bad records injected at ``bad_rate`` (:mod:`~crmlake.synth.faults`) and written by
:mod:`~crmlake.synth.writers`. Every draw is a hash of the seed and the row's identity
(:mod:`~crmlake.synth.draws`), so the same seed writes the same files.

The entities' writes are independent and submitted together, so their fixed costs overlap. Row
counts come from an ``Observation`` on each write, not from an extra pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES
from crmlake.core.errors import MissingSecretError
from crmlake.core.log import log, stage
from crmlake.core.session import session_settings
from crmlake.core.settings import GenerateConfig, IdentityConfig
from crmlake.synth.campaigns import (
    CAMPAIGN_SCHEMA,
    campaign_assignments_df,
    campaign_plan,
    campaign_responses_df,
    list_assignments_df,
    with_generated_source,
)
from crmlake.synth.care import care_df, surveys_df
from crmlake.synth.draws import Sql, _days_df
from crmlake.synth.faults import (
    _apply_overrides,
    _campaign_overrides,
    _cell_overrides,
    _json_overrides,
    _recharge_overrides,
    _subscriber_overrides,
    _truncate_usage,
    _truth_rows,
    _with_bad_kind,
)
from crmlake.synth.money import recharges_df
from crmlake.synth.network import network_cells_rows
from crmlake.synth.params import GenParams
from crmlake.synth.population import (
    stable_mean,
    subscriber_days_df,
    subscriber_extract_df,
    subscriber_traits_df,
    with_base_churn,
    with_final_churn,
)
from crmlake.synth.record import (
    GenerationRecordError,
    identity_formats,
    read_record,
    record_path,
    write_record,
)
from crmlake.synth.usage import usage_df
from crmlake.synth.writers import (
    _arranged,
    _truth_assignments,
    _truth_subscribers,
    _with_csv_line,
    _with_json_line,
    _write_csv,
    _write_json,
    _write_network_cells,
    _write_truth,
)

# The usage projection compiles to one large method, and HotSpot does not JIT-compile methods
# over 8000 bytes of bytecode: let Spark split such stages instead of running them interpreted.
GENERATE_SQL_CONF = {"spark.sql.codegen.hugeMethodLimit": "8000"}


def _observed(df: DataFrame) -> tuple[DataFrame, Observation]:
    """``df`` counting its rows as the write that consumes it runs (no extra pass)."""
    observation = Observation()
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


def _rows_written(observation: Observation, df: DataFrame) -> int:
    """The rows a write observed; a write of no rows (a continuation's day without campaign
    contacts) collects no metrics, and is counted instead."""
    try:
        return int(observation.get["rows"])
    except Exception:  # noqa: BLE001 - Spark asserts when the observed plan ran no task; count() re-raises real errors
        return df.count()


def generate_operator(spark: SparkSession, root: str, gen: GenerateConfig, identity: IdentityConfig) -> dict[str, int]:
    """Writes a synthetic operator's landing files and ground truth under ``root``.

    ``gen`` is the validated ``generate`` config section, ``identity`` the ``identity`` section
    (country code and prefixes that format the numbers). Landing files go to
    ``<root>/landing/<entity>/date=YYYY-MM-DD/`` (the arrival date), truth tables (Parquet) to
    ``<root>/truth/{subscribers,campaign_assignments,bad_records}``. Returns the number of rows
    written per entity, counted while the files are written.
    """
    p = GenParams.from_settings(gen)
    log("generate: started", subscribers=p.subscribers, start=str(p.start), days=p.days,
        seed=p.seed, bad_rate=p.bad_rate)  # fmt: skip
    root = root.rstrip("/")
    counts = _run(spark, p, root, identity, None, None)
    write_record(spark, root, {"generate": gen.model_dump(mode="json"), "identity": identity_formats(identity),
                               "days_generated": p.total_days, "lists": []})  # fmt: skip
    log("generate: done", **counts)
    return counts


def continue_operator(
    spark: SparkSession,
    root: str,
    more_days: int,
    identity: IdentityConfig,
    hmac_key: bytes | None = None,
    expected: dict[str, object] | None = None,
) -> dict[str, int]:
    """Carries the operator generated under ``root`` on for ``more_days`` days, honouring the
    lists ``crmlake publish`` wrote to ``gold.campaign_targets`` in the meantime.

    The generation record (``truth/generation.json``, see :mod:`~crmlake.synth.record`) gives
    the settings; ``expected`` (settings given again, e.g. on the command line) must agree with
    it, and so must the number formats of ``identity``. Every draw is the one the first run made,
    so only the landing files of the new days are written; the earlier days' files are left as
    they are. Lists published on a day already generated (and still valid) are contacted on the
    first new day; the lists honoured before are read again at the table version recorded. The
    truth tables are rewritten for the whole operator. ``hmac_key`` matches control rows (they
    carry no number) to lines. Returns the rows written per entity."""
    root = root.rstrip("/")
    record = read_record(spark, root)
    gen = GenerateConfig.model_validate(record["generate"])
    for key, value in (expected or {}).items():
        recorded = getattr(gen, key)
        if value is not None and str(value) != str(recorded):
            raise GenerationRecordError(
                f"generate.{key}: {value!r} given, but {record_path(root)} records {str(recorded)!r};"
                " a continuation keeps the settings of the generation it continues"
            )
    if identity_formats(identity) != record["identity"]:
        raise GenerationRecordError(
            f"identity {identity_formats(identity)} differs from {record['identity']} recorded in"
            f" {record_path(root)}: the numbers would not match the ones already written"
        )
    if more_days < 1:
        raise GenerationRecordError(f"--days must be at least 1 to continue, not {more_days}")
    base = GenParams.from_settings(gen)
    done = int(record["days_generated"])
    p = replace(base, extend_days=done + more_days - base.days, from_day=done)
    p.check()
    lists = _lists_to_honour(spark, root, p, record["lists"])
    log("generate: continuing", subscribers=p.subscribers, start=str(p.start), days_generated=done,
        more_days=more_days, lists=len(lists))  # fmt: skip
    lists_df = _lists_df(spark, root, lists) if lists else None
    if lists_df is not None and hmac_key is None and lists_df.where("group = 'control'").limit(1).count():
        raise MissingSecretError(
            "the published lists have control rows, which carry no number: the pseudonymization key"
            " is needed to match them to lines (see identity.key_env / identity.key_file)"
        )
    counts = _run(spark, p, root, identity, lists_df, hmac_key)
    write_record(spark, root, {**record, "days_generated": p.total_days, "lists": lists})
    log("generate: done", **counts)
    return counts


def _lists_to_honour(spark: SparkSession, root: str, p: GenParams, honoured: list[dict]) -> list[dict]:
    """The lists honoured before, and the ones published since on a day already generated and
    still valid on the first new day: (campaign_id, publish_date, contact_date, table_version)."""
    if not tables.exists(spark, root, "gold.campaign_targets"):
        return list(honoured)
    version = tables.version(spark, root, "gold.campaign_targets")
    first_new = p.start + dt.timedelta(days=p.from_day)
    seen = {(h["campaign_id"], h["publish_date"]) for h in honoured}
    published = (
        tables.read(spark, root, "gold.campaign_targets", version=version)
        .where((F.col("publish_date") >= F.lit(p.start)) & (F.col("publish_date") < F.lit(first_new)))
        .where(F.col("valid_until") >= F.lit(first_new))
        .select("campaign_id", "publish_date")
        .distinct()
        .collect()
    )
    new = [
        {"campaign_id": row.campaign_id, "publish_date": row.publish_date.isoformat(),
         "contact_date": first_new.isoformat(), "table_version": version}
        for row in sorted(published) if (row.campaign_id, row.publish_date.isoformat()) not in seen
    ]  # fmt: skip
    return list(honoured) + new


LIST_SCHEMA = "campaign_id string, publish_date date, contact_date date, table_version long"


def _lists_df(spark: SparkSession, root: str, lists: list[dict]) -> DataFrame:
    """The rows of the honoured lists, each read at the table version recorded, with
    ``contact_day`` (a day index)."""
    chosen = spark.createDataFrame(
        [(h["campaign_id"], dt.date.fromisoformat(h["publish_date"]), dt.date.fromisoformat(h["contact_date"]),
          int(h["table_version"])) for h in lists],
        LIST_SCHEMA,
    )  # fmt: skip
    parts = []
    for version in sorted({int(h["table_version"]) for h in lists}):
        rows = tables.read(spark, root, "gold.campaign_targets", version=version)
        parts.append(rows.join(chosen.where(F.col("table_version") == version), on=["campaign_id", "publish_date"]))
    df = parts[0]
    for part in parts[1:]:
        df = df.unionByName(part)
    return df


def _run(
    spark: SparkSession,
    p: GenParams,
    root: str,
    identity: IdentityConfig,
    lists_df: DataFrame | None,
    hmac_key: bytes | None,
) -> dict[str, int]:
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(df)
        return df

    try:
        with session_settings(spark, GENERATE_SQL_CONF):
            return _generate(spark, p, root, identity, keep, lists_df, hmac_key)
    finally:
        for df in cached:
            df.unpersist()


def _generate(
    spark: SparkSession,
    p: GenParams,
    root: str,
    identity: IdentityConfig,
    keep: Callable[[DataFrame], DataFrame],
    lists_df: DataFrame | None = None,
    hmac_key: bytes | None = None,
) -> dict[str, int]:
    landing, truth = f"{root}/landing", f"{root}/truth"
    from_date = (p.start + dt.timedelta(days=p.from_day)).isoformat()

    def bad(rows: DataFrame, entity: str, overrides: dict[str, dict[str, Sql]]) -> DataFrame:
        new_rows = rows.where(F.col("date") >= from_date) if p.from_day else rows  # earlier files exist
        return _apply_overrides(_with_bad_kind(new_rows, p, entity), overrides)

    with stage("generate population"):
        days_df = _days_df(spark, p)
        traits = keep(subscriber_traits_df(spark, p))
        with_churn = traits.transform(with_base_churn, p, stable_mean(traits, "raw_hazard"))
        campaigns = spark.createDataFrame(campaign_plan(p), CAMPAIGN_SCHEMA)
        assignments = keep(with_generated_source(campaign_assignments_df(with_churn, campaigns, p)))
        shared = [traits, assignments]  # the caches the writers below share
        if lists_df is None:
            subs = keep(with_final_churn(with_churn, assignments, p))
        else:
            # list contacts are drawn against the outcome of the generator's own campaigns
            before = with_final_churn(with_churn, assignments, p)
            days = lists_df.withColumn("contact_day", F.datediff("contact_date", F.lit(p.start)))
            listed = keep(list_assignments_df(before, days, p, identity, hmac_key))
            subs = keep(with_final_churn(with_churn, assignments, p, listed))
            shared.append(listed)
            assignments = assignments.unionByName(listed)
        sub_days = keep(subscriber_days_df(subs, days_df, p))
        care_good = keep(care_df(sub_days, p, identity))
        # Built here, one after another: the writes below read these caches from seven threads at
        # once, and Spark 4.2 deadlocked two queries building shared cached relations side by side
        # (each held one relation's builder while it waited for the other's). A built cache is read
        # without taking its builder's lock.
        for df in [*shared, subs, sub_days, care_good]:
            df.count()

    json_kinds = {"care_interactions": dict(key="interaction_id", time="started_at", enum=("channel", "pigeon"),
                                            negative="handle_time_s", text="notes"),
                  "surveys": dict(key="survey_id", time="answered_at", enum=("survey_type", "smoke_signal"),
                                  negative="score", text="comment")}  # fmt: skip
    small_entities = {
        "subscribers": lambda: _with_csv_line(
            bad(subscriber_extract_df(subs, days_df, p, identity), "subscribers", _subscriber_overrides(p, identity)),
            "subscribers", ("region", "city", "first_name", "last_name")),
        "recharges": lambda: _with_csv_line(
            bad(recharges_df(spark, subs, sub_days, p, identity), "recharges", _recharge_overrides(p, identity)),
            "recharges", ()),
        "care_interactions": lambda: _with_json_line(
            bad(care_good, "care_interactions", _json_overrides(identity, p, **json_kinds["care_interactions"])),
            "care_interactions", {"escalation_level": "high", "handle_time_s": "5m"}),
        "surveys": lambda: _with_json_line(
            bad(surveys_df(care_good, subs, p, identity), "surveys",
                _json_overrides(identity, p, **json_kinds["surveys"])),
            "surveys", {"score": "five"}),
        "campaign_responses": lambda: _with_csv_line(
            bad(campaign_responses_df(assignments, p, identity), "campaign_responses",
                _campaign_overrides(p, identity)),
            "campaign_responses", ()),
    }  # fmt: skip

    def write_small(name: str) -> tuple[int, DataFrame]:
        with stage(f"generate {name}") as info:
            rows = keep(small_entities[name]())  # filled by the write, read again for the truth
            observed, observation = _observed(rows)
            arranged = _arranged(observed, p.small_entity_tasks, ("key", "copy"))
            if ENTITIES[name].fmt == "csv":
                _write_csv(arranged, f"{landing}/{name}", name, p.from_day)
            else:
                _write_json(spark, arranged, f"{landing}/{name}", p.from_day)
            info["rows"] = _rows_written(observation, rows)
            return info["rows"], _truth_rows(rows, name)

    def write_cells() -> tuple[int, DataFrame]:
        with stage("generate network_cells") as info:
            cells = keep(bad(network_cells_rows(spark, p), "network_cells", _cell_overrides()))
            observed, observation = _observed(cells)
            _write_network_cells(spark, observed, f"{landing}/network_cells", p.from_day)
            info["rows"] = _rows_written(observation, cells)
            return info["rows"], _truth_rows(cells, "network_cells")

    def write_usage() -> tuple[int, DataFrame]:
        with stage("generate usage", files_per_day=p.usage_files_per_day) as info:
            rows = usage_df(sub_days, p, identity)
            observed, observation = _observed(rows)
            _write_csv(
                observed.sortWithinPartitions("date", "sub_id", "day", "seq", "copy"),
                f"{landing}/usage",
                "usage",
                p.from_day,
            )
            info["rows"] = _rows_written(observation, observed)
            # the truth needs the same rows, not their partitioning: no second shuffle
            return info["rows"], _truth_rows(usage_df(sub_days, p, identity, partitioned=False), "usage")

    # The writes are independent: submitted together, their fixed costs (planning, commits)
    # overlap; Spark queues their tasks on the cores it has.
    writes = {"network_cells": write_cells, **{name: partial(write_small, name) for name in small_entities},
              "usage": write_usage}  # fmt: skip
    with ThreadPoolExecutor(max_workers=len(writes)) as pool:
        done = {name: pool.submit(write) for name, write in writes.items()}
        results = {name: future.result() for name, future in done.items()}
    truth_parts = [part for _, part in results.values()]
    if p.bad_rate > 0:
        truth_parts = _truncate_usage(spark, landing, p, truth_parts)

    with stage("generate truth"):
        bad_records = truth_parts[0]
        for part in truth_parts[1:]:
            bad_records = bad_records.unionByName(part)
        if p.from_day:  # the earlier days' files are as they were: so are their bad records
            earlier = spark.read.parquet(f"{truth}/bad_records").where(
                F.col("file_date") < F.lit(from_date).cast("date")
            )
            bad_records = earlier.unionByName(bad_records)
        truth_tables = {
            "bad_records": (bad_records, ("entity", "file_date", "kind", "key", "detail")),
            "subscribers": (_truth_subscribers(subs, p, identity), ("subscriber_id",)),
            "campaign_assignments": (
                _truth_assignments(assignments, p, identity),
                ("campaign_id", "campaign_date", "subscriber_id"),
            ),
        }
        suffix = ".next" if p.from_day else ""  # bad_records is read while it is written
        with ThreadPoolExecutor(max_workers=len(truth_tables)) as pool:
            for future in [
                pool.submit(_write_truth, df, f"{truth}/{name}{suffix}", order)
                for name, (df, order) in truth_tables.items()
            ]:
                future.result()
        if suffix:
            for name in truth_tables:
                _replace_folder(spark, f"{truth}/{name}{suffix}", f"{truth}/{name}")
    return {name: results[name][0] for name in ENTITIES}


def _replace_folder(spark: SparkSession, source: str, target: str) -> None:
    """Moves the folder ``source`` to ``target``, replacing what was there."""
    fs, target_path = tables.hadoop_fs(spark, target)
    _, source_path = tables.hadoop_fs(spark, source)
    if fs.exists(target_path):
        fs.delete(target_path, True)
    if not fs.rename(source_path, target_path):
        raise OSError(f"could not move {source} to {target}")
