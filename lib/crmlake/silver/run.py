"""Ingest: landing → bronze → silver, one file date at a time.

* Landing → bronze appends every file not taken before (same path and content), as it
  arrived (all columns as strings, malformed lines kept whole), with the file name, batch id
  and ingest time. ``bronze.ingested_files`` remembers what was taken.
* Bronze → silver re-derives the date's contribution from bronze: types, the entity's
  contract (:mod:`crmlake.contracts`), E.164 + HMAC pseudonymization, the referential check,
  de-duplication by key (latest arrival wins, ties broken deterministically). Accepted rows
  are merged into silver by key, scoped to the event dates they touch; rejected rows replace
  the date's slice of ``silver.quarantine``. Subscribers become a history (valid_from /
  valid_to); their raw numbers go only to the restricted ``silver.subscriber_contacts``.

A run is all or nothing: every new file's header (CSV) or format (Parquet) is checked before
anything is written, and a failure after the first write restores every table to the version
it had before the run. Entities are landed, and derived after the subscriber master, a few at once
(``ingest.entities_at_once``): their tables are their own, and the shared quarantine takes one
writer at a time. Runs on one root take turns (:mod:`crmlake.core.lock`), so a restore
puts back only the run's own commits. A file is taken once: a re-delivery with the same
content changes nothing, and bronze is what was taken even when a run was killed before it
registered its files (:func:`crmlake.bronze.land.register_orphans`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from dataclasses import dataclass, field
from functools import partial

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.bronze.land import (
    INGESTED_FILES,
    Delivery,
    bronze_caught_up,
    bronze_name,
    deliveries,
    land_to_bronze,
    new_landing_files,
    redelivered_files,
    register,
    register_orphans,
)
from crmlake.catalog import tables
from crmlake.contracts.entities import ENTITIES, Entity, silver_key
from crmlake.contracts.rules import ContractParams
from crmlake.core.errors import ConfigError, MissingInputError, ReconciliationError
from crmlake.core.failpoints import failpoint
from crmlake.core.log import log, stage
from crmlake.core.session import concurrently, session_settings
from crmlake.landing.files import inspect_files, list_landing_files
from crmlake.silver.classify import (
    QUARANTINE,
    apply_rules,
    latest_per_key,
    latest_wins,
    number_keys,
    quarantine_rows,
    repeated_keys,
    silver_name,
    silver_rows,
    with_subscriber_key,
)
from crmlake.silver.derivations import (
    DERIVATIONS,
    Derivation,
    Derived,
    days_to_derive,
    derived,
    record_derivations,
    rules_fingerprint,
    source_fingerprints,
)
from crmlake.silver.subscribers import (
    SUBSCRIBER_CONTACTS,
    contact_rows,
    write_subscriber_history,
    write_subscriber_history_batch,
)

# Keys up to this many are broadcast (about 150 bytes each in the broadcast relation): the
# subscriber master's to the referential check, a batch's numbers to its rows, its repeated
# keys to latest-wins; beyond it, a shuffled join.
BROADCAST_KEYS_MAX = 5_000_000


def cached_for_joins(df: DataFrame, rows_at_most: int | None = None) -> tuple[DataFrame, DataFrame]:
    """``df`` cached (the first read builds it), and the frame to join with: broadcast when it
    holds at most ``BROADCAST_KEYS_MAX`` rows. A bound known beforehand (``rows_at_most``)
    decides without a Spark job; without one, or above the limit, the cache is counted.
    Unpersist the first when done."""
    cached = df.persist()
    if rows_at_most is None or rows_at_most > BROADCAST_KEYS_MAX:
        rows_at_most = cached.count()
    return cached, F.broadcast(cached) if rows_at_most <= BROADCAST_KEYS_MAX else cached


# A row from a later file date, or a later batch of the same date, replaces the one in silver.
LATEST_ARRIVAL_WINS = (
    "s._file_date > t._file_date OR (s._file_date = t._file_date AND s._ingested_at >= t._ingested_at)"
)


@dataclass
class EntityCounts:
    new_files: int = 0
    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    duplicates: int = 0
    written: int = 0
    event_dates: tuple[dt.date, ...] = ()
    # asked file dates whose deliveries and rules are those they were derived from: not derived again
    unchanged_days: tuple[dt.date, ...] = ()
    # file date -> {"read", "accepted", "quarantined", "duplicate"}: each day reconciles alone.
    by_file_date: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            **self.__dict__,
            "event_dates": [d.isoformat() for d in self.event_dates],
            "unchanged_days": [d.isoformat() for d in self.unchanged_days],
        }


def tables_written_by_ingest(entities: list[str]) -> list[str]:
    names = [INGESTED_FILES, QUARANTINE, SUBSCRIBER_CONTACTS, DERIVATIONS]
    for name in entities:
        names += [bronze_name(ENTITIES[name]), silver_name(ENTITIES[name])]
    return names


def resolve_entities(names: list[str]) -> list[str]:
    """The named entities, checked, in ingest order (subscribers first)."""
    unknown = sorted(set(names) - set(ENTITIES))
    if unknown:
        raise ConfigError(f"unknown entities {unknown}; known: {list(ENTITIES)}")
    return [name for name in ENTITIES if name in names]


class Ingestor:
    """Runs ingest for a set of file dates across entities, with all-or-nothing semantics.

    All the days of a run are classified in one pass per entity (a day costs its rows, not a
    round of Spark jobs); each day's counts are kept apart and reconcile on their own.
    """

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        params: ContractParams,
        msisdn_e164: Column,
        hmac_key: bytes,
        fail_on_day_without_files: bool = False,
        rederive: bool = False,
        at_once: int = 2,
    ):
        self.spark = spark
        self.root = root
        self.params = params
        self.msisdn_e164 = msisdn_e164
        self.hmac_key = hmac_key
        self.fail_on_day_without_files = fail_on_day_without_files
        self.rederive = rederive
        self.at_once = at_once  # entities landed and derived at once
        self._quarantine_lock = threading.Lock()  # one writer: its first write creates the table
        self.rules = rules_fingerprint(params, msisdn_e164, hmac_key)
        self.days_without_files: list[dt.date] = []
        self._known_cached: DataFrame | None = None  # the keys, cached
        self._known_df: DataFrame | None = None  # the same, with the broadcast hint where they fit
        self._entities: list[str] = []  # the run's
        # entity -> file dates whose waiting rows the master now shows; one query for the run
        self._resolved: dict[str, list[dt.date]] | None = None

    def run(self, days: list[dt.date], entities: list[str], run_id: str) -> dict[str, EntityCounts]:
        self._entities = entities
        written = tables_written_by_ingest(entities)
        before = tables.versions(self.spark, self.root, written)
        batch_id = f"{days[-1].isoformat()}-{uuid.uuid4().hex[:12]}"
        ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
        counts: dict[str, EntityCounts] = {}
        try:
            # Which files are new is settled before the first write. A file that cannot be
            # parsed fails its entity's bronze write; everything written before is restored.
            listed = {}
            caught_up = bronze_caught_up(self.spark, self.root, [ENTITIES[name] for name in entities])
            for name in entities:
                listed[name] = [f for day in days for f in list_landing_files(self.spark, self.root, name, day)]
                if name not in caught_up:
                    register_orphans(self.spark, self.root, ENTITIES[name], sorted({f.day for f in listed[name]}))
            new_files = new_landing_files(self.spark, self.root, listed)
            for name in entities:
                # headers and file formats are checked before the first write
                inspect_files(self.spark, ENTITIES[name], new_files[name])
            listed_days = {f.day for files in listed.values() for f in files}
            self.days_without_files = [day for day in days if day not in listed_days]
            if self.days_without_files:
                message = f"no landing files for {', '.join(d.isoformat() for d in self.days_without_files)}"
                if self.fail_on_day_without_files:
                    raise MissingInputError(f"{message} (ingest.fail_on_day_without_files is on)")
                log(message, logging.WARNING, entities=entities)

            # Bronze for every entity, then one registration; a run killed between the two
            # leaves batches the next run's orphan check registers.
            def land(name: str) -> list[tuple]:
                with stage(f"bronze {name}", files=len(new_files[name])):
                    return land_to_bronze(self.spark, self.root, ENTITIES[name], new_files[name], batch_id, ingested_at)

            landed = concurrently(
                self.spark, {name: partial(land, name) for name in entities if new_files[name]}, self.at_once
            )
            failpoint("ingest.between_bronze_and_registry")
            register(self.spark, self.root, [row for rows in landed.values() for row in rows])
            failpoint("ingest.between_registry_and_silver")
            # What the registry and the derivations record of the run's file dates (and those a
            # late subscriber line may derive again): one read each for every entity.
            first = days[0] - dt.timedelta(days=self.params.max_lateness_days)
            taken = deliveries(self.spark, self.root, entities, first, days[-1])
            recorded = derived(self.spark, self.root, entities, first, days[-1])
            done: list[Derivation] = []

            def derive(name: str) -> EntityCounts:
                with stage(f"ingest {name}", dates=f"{days[0]}..{days[-1]}") as info:
                    entity_counts = self._ingest_entity(
                        ENTITIES[name], days, [d for d in taken if d.entity == name], recorded, done, run_id
                    )
                    entity_counts.new_files = len(new_files[name])
                    info.update({k: v for k, v in entity_counts.as_dict().items() if k != "by_file_date"})
                return entity_counts

            # The subscriber master first: the other entities check their rows against it. They
            # are then derived a few at once, sharing its keys and the waiting rows it resolves.
            if "subscribers" in entities:
                counts["subscribers"] = derive("subscribers")
            others = [name for name in entities if name != "subscribers"]
            if any(ENTITIES[name].checks_subscriber for name in others):
                self._days_with_resolved_unknowns(self._known_subscribers(), days)
            counts |= concurrently(self.spark, {name: partial(derive, name) for name in others}, self.at_once)
            record_derivations(self.spark, self.root, done, run_id)
        except Exception:
            rolled = tables.restore(self.spark, self.root, before)
            if rolled:
                log("run failed: tables restored to their versions before the run", tables=rolled)
            raise
        finally:
            self._forget_known_subscribers()
            self._resolved = None
        return counts

    def _ingest_entity(
        self,
        entity: Entity,
        days: list[dt.date],
        taken: list[Delivery],
        recorded: Derived,
        done: list[Derivation],
        run_id: str,
    ) -> EntityCounts:
        """Bronze → silver for the file dates of ``days`` whose deliveries (``taken``, the
        entity's) or rules changed since ``recorded``; the dates derived are added to ``done``."""
        counts = EntityCounts()
        if not tables.exists(self.spark, self.root, bronze_name(entity)):
            return counts
        known_df, resolved = None, []
        if entity.checks_subscriber:
            known_df = self._known_subscribers()
            # Days whose rows waited for a line the subscriber master shows by now are derived
            # again: one run over a range, day-by-day runs and a day run again agree.
            resolved = self._days_with_resolved_unknowns(known_df, days).get(entity.name, [])
        candidates = sorted({*days, *resolved})
        sources = source_fingerprints(taken, candidates)
        # a silver table that is gone (dropped to be built again) is derived again, whatever was recorded
        everything = self.rederive or not tables.exists(self.spark, self.root, silver_name(entity))
        to_derive = days if everything else days_to_derive(recorded, entity, days, sources, self.rules)
        changed = set(resolved) | set(to_derive)
        counts.unchanged_days = tuple(d for d in days if d not in changed)
        if counts.unchanged_days:
            log("file dates derived before from the same deliveries and rules: not derived again",
                entity=entity.name, days=[d.isoformat() for d in counts.unchanged_days])  # fmt: skip
        earlier = sorted(set(resolved) - set(days))
        if earlier:
            log("rows of earlier days now match the subscriber master: derived again",
                entity=entity.name, days=[d.isoformat() for d in earlier])  # fmt: skip
        days = sorted(changed)
        if not days:
            return counts
        # The registry's rows of the batch bound its numbers and its repeated keys: for a batch of
        # at most BROADCAST_KEYS_MAX rows the broadcast decisions cost no count.
        batch_rows = sum(d.rows for d in taken if d.file_date in changed)
        bronze_df = tables.read(self.spark, self.root, bronze_name(entity)).where(F.col("_file_date").isin(days))
        # A batch's numbers are normalized and hashed once each (a few hundred thousand numbers
        # for millions of rows). The batch with its rules applied is cached for the reads that
        # follow (the keys seen twice, counts, quarantine, silver) and dropped: compressing its
        # columns cost more than it saved (10.9 M usage rows, warm: the cache cost 32 s
        # compressed, 15 s not). Latest-wins then ranks only the rows whose key repeats.
        with session_settings(self.spark, {"spark.sql.inMemoryColumnarStorage.compressed": "false"}):
            numbers_cached = rules_df = repeated_cached = None
            try:
                numbers_df = None
                if entity.has_msisdn:
                    numbers_cached, numbers_df = cached_for_joins(
                        number_keys(bronze_df, self.msisdn_e164, self.hmac_key), batch_rows
                    )
                rules_df = apply_rules(
                    bronze_df,
                    entity,
                    self.params,
                    numbers_df,
                    known_df,
                    redelivered_files(taken, days),
                ).persist(StorageLevel.MEMORY_AND_DISK)
                repeated_cached, repeated_df = cached_for_joins(repeated_keys(rules_df, entity), batch_rows // 2)
                classified_df = latest_wins(rules_df, entity, repeated_df)
                # One pass counts each file date's rows by outcome and finds the event dates silver
                # receives.
                accepted_dates = set()
                for row in classified_df.groupBy("_file_date", "_status", "event_date").count().collect():
                    if row["_status"] == "accepted":
                        accepted_dates.add(row["event_date"])
                    day = counts.by_file_date.setdefault(
                        row["_file_date"].isoformat(), {"read": 0, "accepted": 0, "quarantined": 0, "duplicate": 0}
                    )
                    day[row["_status"]] += row["count"]
                    day["read"] += row["count"]
                for day, c in counts.by_file_date.items():
                    if c["read"] != c["accepted"] + c["quarantined"] + c["duplicate"]:
                        raise ReconciliationError(f"{entity.name} {day}: counts do not reconcile: {c}")
                counts.read = sum(c["read"] for c in counts.by_file_date.values())
                counts.accepted = sum(c["accepted"] for c in counts.by_file_date.values())
                counts.quarantined = sum(c["quarantined"] for c in counts.by_file_date.values())
                counts.duplicates = sum(c["duplicate"] for c in counts.by_file_date.values())
                self._write_quarantine(entity, days, classified_df, run_id)
                counts.event_dates = tuple(sorted(accepted_dates))
                counts.written = self._write_silver(entity, classified_df, counts.event_dates)
                for d in days:
                    read = counts.by_file_date.get(d.isoformat(), {}).get("read", 0)
                    done.append(Derivation(entity.name, d, sources[d], self.rules, read))
            finally:
                for cached in (repeated_cached, rules_df, numbers_cached):
                    if cached is not None:
                        cached.unpersist()
        return counts

    def _known_subscribers(self) -> DataFrame:
        """The keys the subscriber master shows, read once a run after its subscribers are
        written, and broadcast to the referential check when they fit: the events then meet
        them where they are read instead of being shuffled across the cluster to a join."""
        if self._known_df is None:
            name = silver_name(ENTITIES["subscribers"])
            if not tables.exists(self.spark, self.root, name):
                return self.spark.createDataFrame([], "subscriber_key string")
            keys_df = tables.read(self.spark, self.root, name).select("subscriber_key").distinct()
            self._known_cached, self._known_df = cached_for_joins(keys_df)
        return self._known_df

    def _forget_known_subscribers(self) -> None:
        if self._known_cached is not None:
            self._known_cached.unpersist()
        self._known_cached = self._known_df = None

    def _days_with_resolved_unknowns(self, known_df: DataFrame, days: list[dt.date]) -> dict[str, list[dt.date]]:
        """Per entity of the run that checks the subscriber: the file dates (from
        ``max_lateness_days`` before the run's first day to its last) whose quarantine holds
        ``unknown_subscriber`` rows of lines the subscriber master now shows. Asked once a run,
        for every entity in one query, after the run's subscribers are written (they come first)."""
        if self._resolved is not None:
            return self._resolved
        self._resolved = {}
        checked = [name for name in self._entities if ENTITIES[name].checks_subscriber]
        if not checked or not tables.exists(self.spark, self.root, QUARANTINE):
            return self._resolved
        earliest = days[0] - dt.timedelta(days=self.params.max_lateness_days)
        waiting = (
            tables.read(self.spark, self.root, QUARANTINE)
            .where(F.col("entity").isin(checked) & (F.col("rule") == "unknown_subscriber"))
            .where(F.col("_file_date").between(F.lit(earliest), F.lit(days[-1])))
            .select("entity", "_file_date", F.get_json_object("raw", "$.msisdn").alias("msisdn"))
        )
        keyed = with_subscriber_key(waiting, self.msisdn_e164, self.hmac_key)
        for r in (
            keyed.join(known_df, on="subscriber_key", how="left_semi")
            .select("entity", "_file_date")
            .distinct()
            .collect()
        ):
            self._resolved.setdefault(r["entity"], []).append(r["_file_date"])
        for found in self._resolved.values():
            found.sort()
        return self._resolved

    def _write_quarantine(self, entity: Entity, days: list[dt.date], classified_df: DataFrame, run_id: str) -> None:
        """Replaces the quarantine rows of ``days`` when they differ from the batch's. The rows are
        cached for the comparison and the write: a batch's rejects are few, its rows many."""
        scope = tables.days_scope(QUARANTINE, days, entity=entity.name)
        rows_df = quarantine_rows(classified_df, entity, run_id).persist()
        try:
            if not tables.exists(self.spark, self.root, QUARANTINE) and rows_df.isEmpty():
                return
            with self._quarantine_lock:
                tables.replace_where_changed(rows_df, self.root, QUARANTINE, scope, ignore=("run_id", "_ingested_at"))
        finally:
            rows_df.unpersist()

    def _write_silver(self, entity: Entity, classified_df: DataFrame, event_dates: tuple[dt.date, ...]) -> int:
        """Writes the accepted rows (of ``event_dates``) to silver; returns the rows written."""
        rows_df = silver_rows(classified_df, entity)
        if not event_dates:
            return 0
        if entity.name == "subscribers":
            self._forget_known_subscribers()
            # Extracts all newer than the history are added in one pass; otherwise (a late or
            # re-delivered extract) the history is built one extract at a time, in date order.
            latest_df = latest_per_key(rows_df, ["subscriber_key", "extract_date"])
            written = write_subscriber_history_batch(self.spark, self.root, latest_df)
            if written is None:
                written = sum(
                    write_subscriber_history(
                        self.spark,
                        self.root,
                        latest_per_key(rows_df.where(F.col("extract_date") == F.lit(day)), ["subscriber_key"]),
                    )
                    for day in event_dates
                )
            tables.upsert_changed(
                self.spark,
                latest_per_key(contact_rows(classified_df), ["subscriber_key"]),
                self.root,
                SUBSCRIBER_CONTACTS,
                keys=["subscriber_key"],
                wins_when="s._file_date >= t._file_date",
            )
            return written
        written = tables.upsert_changed(
            self.spark,
            rows_df,
            self.root,
            silver_name(entity),
            keys=silver_key(entity),
            wins_when=LATEST_ARRIVAL_WINS,
            days=event_dates,
        )
        return written
