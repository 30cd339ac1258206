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

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from crmlake.contracts.entities import ENTITIES
from crmlake.core.config import GenerateConfig, IdentityConfig
from crmlake.core.log import log, stage
from crmlake.synth.campaigns import CAMPAIGN_SCHEMA, campaign_assignments_df, campaign_plan, campaign_responses_df
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


_conf_lock = threading.Lock()
_conf_users: dict[str, int] = {}
_conf_saved: dict[str, str | None] = {}


@contextmanager
def _session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Runtime SQL settings for the duration of a block, restored when the last of the
    (possibly concurrent) blocks using them ends."""
    with _conf_lock:
        for key, value in settings.items():
            if _conf_users.get(key, 0) == 0:
                _conf_saved[key] = spark.conf.get(key, None)
                spark.conf.set(key, value)
            _conf_users[key] = _conf_users.get(key, 0) + 1
    try:
        yield
    finally:
        with _conf_lock:
            for key in settings:
                _conf_users[key] -= 1
                if _conf_users[key] == 0:
                    previous = _conf_saved.pop(key)
                    if previous is None:
                        spark.conf.unset(key)
                    else:
                        spark.conf.set(key, previous)


def _observed(df: DataFrame) -> tuple[DataFrame, Observation]:
    """``df`` counting its rows as the write that consumes it runs (no extra pass)."""
    observation = Observation()
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


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
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(df)
        return df

    try:
        with _session_conf(spark, GENERATE_SQL_CONF):
            counts = _generate(spark, p, root.rstrip("/"), identity, keep)
    finally:
        for df in cached:
            df.unpersist()
    log("generate: done", **counts)
    return counts


def _generate(
    spark: SparkSession, p: GenParams, root: str, identity: IdentityConfig, keep: Callable[[DataFrame], DataFrame]
) -> dict[str, int]:
    landing, truth = f"{root}/landing", f"{root}/truth"

    def bad(rows: DataFrame, entity: str, overrides: dict[str, dict[str, Sql]]) -> DataFrame:
        return _apply_overrides(_with_bad_kind(rows, p, entity), overrides)

    with stage("generate population"):
        days_df = _days_df(spark, p)
        traits = keep(subscriber_traits_df(spark, p))
        with_churn = traits.transform(with_base_churn, p, stable_mean(traits, "raw_hazard"))
        campaigns = spark.createDataFrame(campaign_plan(p), CAMPAIGN_SCHEMA)
        assignments = keep(campaign_assignments_df(with_churn, campaigns, p))
        subs = keep(with_final_churn(with_churn, assignments, p))
        sub_days = keep(subscriber_days_df(subs, days_df, p))
        care_good = keep(care_df(sub_days, p, identity))

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
                _write_csv(arranged, f"{landing}/{name}", name)
            else:
                _write_json(spark, arranged, f"{landing}/{name}")
            info["rows"] = observation.get["rows"]
            return info["rows"], _truth_rows(rows, name)

    def write_cells() -> tuple[int, DataFrame]:
        with stage("generate network_cells") as info:
            cells = keep(bad(network_cells_rows(spark, p), "network_cells", _cell_overrides()))
            observed, observation = _observed(cells)
            _write_network_cells(spark, observed, f"{landing}/network_cells")
            info["rows"] = observation.get["rows"]
            return info["rows"], _truth_rows(cells, "network_cells")

    def write_usage() -> tuple[int, DataFrame]:
        with stage("generate usage", files_per_day=p.usage_files_per_day) as info:
            rows = usage_df(sub_days, p, identity)
            observed, observation = _observed(rows)
            _write_csv(
                observed.sortWithinPartitions("date", "sub_id", "day", "seq", "copy"), f"{landing}/usage", "usage"
            )
            info["rows"] = observation.get["rows"]
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
        tables = {
            "bad_records": (bad_records, ("entity", "file_date", "kind", "key", "detail")),
            "subscribers": (_truth_subscribers(subs, p, identity), ("subscriber_id",)),
            "campaign_assignments": (_truth_assignments(assignments, p, identity), ("campaign_id", "subscriber_id")),
        }
        with ThreadPoolExecutor(max_workers=len(tables)) as pool:
            for future in [
                pool.submit(_write_truth, df, f"{truth}/{name}", order) for name, (df, order) in tables.items()
            ]:
                future.result()
    return {name: results[name][0] for name in ENTITIES}
