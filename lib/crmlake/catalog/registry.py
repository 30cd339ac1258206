"""Every table crmlake writes, declared once: name, grain and key, partition columns, schema where
it is fixed, and what personal data it holds. The bronze and silver table of each source entity
are declared by its contract (:mod:`crmlake.contracts.tables`) and registered here.

Writers take partition columns and date scopes from here (:mod:`crmlake.catalog.tables`), never
from their call sites. Erasure asks which tables hold a subscriber (and in which column);
publishing asks which columns may leave the lake.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pyspark.sql import types as T

from crmlake.core.errors import UnknownTableError

LAYERS = ("bronze", "silver", "gold")
LINEAGE = ("_source_file", "_batch_id", "_ingested_at", "_file_date")


class PersonalData(enum.StrEnum):
    """What a table holds about a person."""

    NONE = "none"  # no subscriber in it (network cells, run log, KPIs by group)
    PSEUDONYMIZED = "pseudonymized"  # keyed by subscriber_key, no raw number or name
    RESTRICTED = "restricted"  # raw numbers, names or raw rows as they arrived


@dataclass(frozen=True)
class TableSpec:
    name: str  # "<layer>.<table>"
    grain: str  # what one row is
    key: tuple[str, ...]  # unique together; () where the layer keeps what arrived, duplicates included
    personal_data: PersonalData
    partition_by: tuple[str, ...] = ()
    # The date column whose days scope replaces and merges (a partition column where there is one).
    date_column: str | None = None
    # The column that names the subscriber, for erasure (None: the table holds no subscriber).
    subscriber_column: str | None = None
    schema: T.StructType | None = None  # fixed by declaration; None: as the producing transformation selects
    change_feed: bool = False  # Delta's change data feed on, for consumers that read increments
    # The columns Delta keeps min/max statistics of, for skipping files on read (set when the
    # table is created); () keeps Delta's default, the first 32 columns.
    stats_columns: tuple[str, ...] = ()

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


# The allow-list of what a target list holds: no features, no other personal data.
CAMPAIGN_TARGETS_SCHEMA = T.StructType(
    [
        T.StructField("campaign_id", T.StringType(), False),
        T.StructField("publish_date", T.DateType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("subscriber_key", T.StringType(), False),
        T.StructField("msisdn", T.StringType()),  # E.164, treatment rows only: controls are never contacted
        T.StructField("group", T.StringType(), False),  # treatment | control
        T.StructField("rank", T.IntegerType(), False),
        T.StructField("score_band", T.StringType()),  # the churn risk band when one was scored
        T.StructField("offer_code", T.StringType(), False),
        T.StructField("offer_cost", T.DoubleType(), False),
        T.StructField("channel", T.StringType(), False),
        T.StructField("objective", T.StringType(), False),
        T.StructField("models", T.ArrayType(T.StringType(), False), False),  # name/version of each model read
        T.StructField("valid_until", T.DateType(), False),
    ]
)

# The lift of one campaign list, overall and by breakdown: numbers only, no subscriber.
CAMPAIGN_RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("campaign_id", T.StringType(), False),
        T.StructField("publish_date", T.DateType(), False),
        T.StructField("measured_on", T.DateType(), False),
        T.StructField("run_id", T.StringType(), False),  # the measure run
        T.StructField("target_run_id", T.StringType(), False),  # the publish run of the list measured
        T.StructField("horizon_days", T.IntegerType(), False),
        T.StructField("breakdown", T.StringType(), False),  # all | risk_band | segment:<scheme>
        T.StructField("breakdown_value", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),  # retention | revenue_cents | acceptance
        T.StructField("method", T.StringType(), False),  # difference | cuped
        T.StructField("confidence", T.DoubleType(), False),
        T.StructField("n_treatment", T.LongType(), False),
        T.StructField("n_control", T.LongType(), False),
        T.StructField("n_unknown", T.LongType(), False),
        T.StructField("mean_treatment", T.DoubleType()),
        T.StructField("mean_control", T.DoubleType()),
        T.StructField("abs_lift", T.DoubleType()),
        T.StructField("abs_lift_lo", T.DoubleType()),
        T.StructField("abs_lift_hi", T.DoubleType()),
        T.StructField("rel_lift", T.DoubleType()),
        T.StructField("rel_lift_lo", T.DoubleType()),
        T.StructField("rel_lift_hi", T.DoubleType()),
        T.StructField("p_value", T.DoubleType()),
        T.StructField("variance_reduction", T.DoubleType()),
        T.StructField("incremental", T.DoubleType()),
        T.StructField("offer_cost_total_cents", T.LongType()),
        T.StructField("incremental_revenue_net_cents", T.LongType()),
        T.StructField("note", T.StringType()),
    ]
)

# Every training run's metrics, per candidate and split: numbers and model names only.
MODEL_METRICS_SCHEMA = T.StructType(
    [
        T.StructField("model_name", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("candidate", T.StringType(), False),
        T.StructField("dataset", T.StringType(), False),
        T.StructField("split", T.StringType(), False),
        T.StructField("metric", T.StringType(), False),
        T.StructField("value", T.DoubleType()),
        T.StructField("is_registered", T.BooleanType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)

# A lifetime-value model fit per source, calibration end and group.
CLV_MODELS_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("calibration_end", T.DateType(), False),
        T.StructField("model", T.StringType(), False),
        T.StructField("group", T.StringType(), False),
        T.StructField("params", T.MapType(T.StringType(), T.DoubleType()), False),
        T.StructField("log_likelihood", T.DoubleType()),
        T.StructField("customers", T.LongType(), False),
        T.StructField("distinct_statistics", T.LongType(), False),
        T.StructField("time_unit", T.StringType(), False),
        T.StructField("converged", T.BooleanType(), False),
        T.StructField("is_used", T.BooleanType(), False),
        T.StructField("message", T.StringType()),
        T.StructField("survival", T.ArrayType(T.DoubleType())),
        T.StructField("run_id", T.StringType(), False),
    ]
)

# The holdout comparison of a lifetime-value fit.
CLV_VALIDATION_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("calibration_end", T.DateType(), False),
        T.StructField("holdout_end", T.DateType(), False),
        T.StructField("report", T.StringType(), False),
        T.StructField("bucket", T.StringType(), False),
        T.StructField("customers", T.LongType(), False),
        T.StructField("predicted", T.DoubleType()),
        T.StructField("actual", T.DoubleType()),
        T.StructField("mean_absolute_error", T.DoubleType()),
        T.StructField("rmse", T.DoubleType()),
    ]
)

# One check of a churn scoring run.
MODEL_MONITORING_SCHEMA = T.StructType(
    [
        T.StructField("monitor_date", T.DateType(), False),
        T.StructField("model_name", T.StringType(), False),
        T.StructField("model_version", T.StringType(), False),
        T.StructField("check", T.StringType(), False),  # psi | realized
        T.StructField("subject", T.StringType(), False),  # score, a feature, or decile_<n>
        T.StructField("score_date", T.DateType(), False),
        T.StructField("reference_date", T.DateType()),
        T.StructField("value", T.DoubleType()),  # the PSI, or the realized churn rate
        T.StructField("expected", T.DoubleType()),  # the predicted churn rate (realized rows)
        T.StructField("subscribers", T.LongType()),
        T.StructField("threshold", T.DoubleType()),
        T.StructField("is_flagged", T.BooleanType(), False),
    ]
)

INGESTED_FILES_SCHEMA = T.StructType(
    [
        T.StructField("entity", T.StringType(), False),
        T.StructField("_source_file", T.StringType(), False),
        T.StructField("_file_size", T.LongType(), False),
        T.StructField("_file_modified_ms", T.LongType(), False),
        T.StructField("_file_date", T.DateType(), False),
        T.StructField("_batch_id", T.StringType(), False),
        T.StructField("_ingested_at", T.TimestampType(), False),
        T.StructField("rows", T.LongType(), False),
        # what the file held (None where the file system could not say): a re-delivered file
        # with the same content is not taken again
        T.StructField("_content_sha256", T.StringType()),
        # bronze's latest commit (tables.identity) when the file was registered: while bronze has
        # not moved since, every batch it holds is registered and the orphan check is skipped
        T.StructField("_bronze_commit", T.StringType()),
    ]
)

DERIVATIONS_SCHEMA = T.StructType(
    [
        T.StructField("entity", T.StringType(), False),
        T.StructField("_file_date", T.DateType(), False),
        # a hash of the file date's deliveries in bronze.ingested_files (file and batch of each)
        T.StructField("source_fingerprint", T.StringType(), False),
        # a hash of what classifying depends on besides bronze: the contract limits, the number
        # normalization, the pseudonymization key and crmlake's version
        T.StructField("rules_fingerprint", T.StringType(), False),
        T.StructField("rows", T.LongType(), False),  # bronze rows read
        T.StructField("derived_at", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)

DAILY_BUILDS_SCHEMA = T.StructType(
    [
        T.StructField("date", T.DateType()),
        T.StructField("source_fingerprint", T.StringType()),
        T.StructField("rows", T.LongType()),
        T.StructField("built_at", T.TimestampType()),
        T.StructField("run_id", T.StringType()),
        # the identity of the silver sources (their latest commits) when source_fingerprint was last
        # found current: while they have not moved, the day is current without listing their files
        T.StructField("sources_checked", T.StringType()),
    ]
)

SNAPSHOT_BUILDS_SCHEMA = T.StructType(
    [
        T.StructField("table_name", T.StringType(), False),
        T.StructField("snapshot_date", T.DateType(), False),
        T.StructField("scope", T.StringType(), False),  # e.g. "horizon_days=30"; "" for a whole date
        # a hash of everything the snapshot was computed from: the subscriber-days it read (their
        # source fingerprints), the other tables' identities, the parameters and crmlake's version
        T.StructField("input_fingerprint", T.StringType(), False),
        T.StructField("rows", T.LongType(), False),
        T.StructField("built_at", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)

RUN_LOG_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("job", T.StringType(), False),
        T.StructField("run_date", T.DateType()),  # the day processed (the last day of a range)
        T.StructField("date_from", T.DateType()),  # the first day of a range (= run_date for one day)
        T.StructField("status", T.StringType(), False),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("finished_at", T.TimestampType(), False),
        T.StructField("duration_s", T.DoubleType(), False),
        T.StructField("rows_read", T.LongType()),
        T.StructField("rows_written", T.LongType()),
        T.StructField("rows_rejected", T.LongType()),
        T.StructField("rows_duplicate", T.LongType()),
        T.StructField("table_versions", T.MapType(T.StringType(), T.LongType())),
        T.StructField("event_dates", T.ArrayType(T.DateType())),
        T.StructField("model_version", T.StringType()),
        T.StructField("message", T.StringType()),
        T.StructField("details", T.StringType()),
    ]
)


def _per_subscriber(name: str, grain: str, key: tuple[str, ...], date_column: str) -> TableSpec:
    """A gold table keyed by subscriber, partitioned by its date."""
    return TableSpec(
        name=name,
        grain=grain,
        key=key,
        personal_data=PersonalData.PSEUDONYMIZED,
        partition_by=(date_column,),
        date_column=date_column,
        subscriber_column="subscriber_key",
    )


# Every table, in the order of the layers (the README's table map). The bronze and silver table
# of each source entity are declared by its contract and registered below the catalog's own
# (crmlake.contracts.tables, which the package's entry imports).
TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            name="bronze.ingested_files",
            grain="one landing file taken, per batch",
            key=("entity", "_source_file", "_batch_id"),
            personal_data=PersonalData.NONE,
            date_column="_file_date",
            schema=INGESTED_FILES_SCHEMA,
        ),
        TableSpec(
            name="silver.subscriber_contacts",
            grain="one subscriber: the raw number and name, for delivery at publish time only",
            key=("subscriber_key",),
            personal_data=PersonalData.RESTRICTED,
            subscriber_column="subscriber_key",
        ),
        TableSpec(
            name="silver.quarantine",
            grain="one rejected row, as it arrived, with the rule it broke (duplicates kept)",
            key=(),
            personal_data=PersonalData.RESTRICTED,
            partition_by=("entity", "_file_date"),
            date_column="_file_date",
        ),
        TableSpec(
            name="silver.derivations",
            grain="one entity and file date: the deliveries and rules its silver rows and quarantine came from",
            key=("entity", "_file_date"),
            personal_data=PersonalData.NONE,
            date_column="_file_date",
            schema=DERIVATIONS_SCHEMA,
        ),
        TableSpec(
            # the keys of erased subscribers, never their numbers; names no subscriber to erase
            # (it must outlive the erasure it records)
            name="silver.erasure_register",
            grain="one erased subscriber key, with the request that erased it",
            key=("subscriber_key",),
            personal_data=PersonalData.PSEUDONYMIZED,
        ),
        _per_subscriber(
            "gold.subscriber_daily", "one subscriber per day with any activity", ("subscriber_key", "date"), "date"
        ),
        TableSpec(
            name="gold.subscriber_daily_builds",
            grain="one day of gold.subscriber_daily: the silver files it was built from",
            key=("date",),
            personal_data=PersonalData.NONE,
            date_column="date",
            schema=DAILY_BUILDS_SCHEMA,
        ),
        TableSpec(
            name="gold.snapshot_builds",
            grain="one snapshot of a gold table (date and scope): what it was computed from",
            key=("table_name", "snapshot_date", "scope"),
            personal_data=PersonalData.NONE,
            date_column="snapshot_date",
            schema=SNAPSHOT_BUILDS_SCHEMA,
        ),
        _per_subscriber(
            "gold.features",
            "one subscriber in the base per snapshot date (point in time)",
            ("subscriber_key", "snapshot_date"),
            "snapshot_date",
        ),
        _per_subscriber(
            "gold.churn_labels",
            "one subscriber in the base per snapshot date and horizon",
            ("subscriber_key", "snapshot_date", "horizon_days"),
            "snapshot_date",
        ),
        _per_subscriber(
            "gold.segments",
            "one subscriber in the base per snapshot date: every segment scheme's label",
            ("subscriber_key", "snapshot_date"),
            "snapshot_date",
        ),
        TableSpec(
            name="gold.segment_profiles",
            grain="one segment of one scheme per snapshot date: size, revenue, what sets it apart",
            key=("snapshot_date", "scheme", "segment"),
            personal_data=PersonalData.NONE,
            partition_by=("snapshot_date",),
            date_column="snapshot_date",
        ),
        TableSpec(
            name="gold.segment_migration",
            grain="one move between two snapshots: scheme, from segment, to segment",
            key=("to_date", "from_date", "scheme", "from_segment", "to_segment"),
            personal_data=PersonalData.NONE,
            partition_by=("to_date",),
            date_column="to_date",
        ),
        TableSpec(
            name="gold.clv",
            grain="one customer per source and as-of date: the model used, its predictions and CLV",
            key=("source", "as_of_date", "subscriber_key"),
            personal_data=PersonalData.PSEUDONYMIZED,
            partition_by=("as_of_date",),
            date_column="as_of_date",
            subscriber_column="subscriber_key",
        ),
        TableSpec(
            name="gold.clv_models",
            grain="one model fit per source, calibration end and group (cohort x plan, or all)",
            key=("source", "calibration_end", "model", "group"),
            personal_data=PersonalData.NONE,
            date_column="calibration_end",
            schema=CLV_MODELS_SCHEMA,
        ),
        TableSpec(
            name="gold.clv_validation",
            grain="one holdout comparison per source and calibration end: overall or a frequency bucket",
            key=("source", "calibration_end", "report", "bucket"),
            personal_data=PersonalData.NONE,
            date_column="calibration_end",
            schema=CLV_VALIDATION_SCHEMA,
        ),
        TableSpec(
            name="gold.churn_scores",
            grain="one subscriber per source and score date: churn probability, decile, band, reasons",
            key=("source", "score_date", "subscriber_key"),
            personal_data=PersonalData.PSEUDONYMIZED,
            partition_by=("score_date",),
            date_column="score_date",
            subscriber_column="subscriber_key",
        ),
        _per_subscriber(
            "gold.uplift_scores",
            "one subscriber in the base per score date: predicted uplift of retention, both arms, decile",
            ("score_date", "subscriber_key"),
            "score_date",
        ),
        TableSpec(
            name="gold.campaign_targets",
            grain="one subscriber in one campaign's list of one publish date: group, rank, offer, delivery number",
            key=("campaign_id", "publish_date", "subscriber_key"),
            # the delivery number of each treated subscriber: the one place outside
            # silver.subscriber_contacts that holds it, for the campaign systems that contact them
            personal_data=PersonalData.RESTRICTED,
            partition_by=("publish_date",),
            date_column="publish_date",
            subscriber_column="subscriber_key",
            schema=CAMPAIGN_TARGETS_SCHEMA,
            change_feed=True,
        ),
        TableSpec(
            name="gold.campaign_results",
            grain="one metric of one campaign list by one method, overall or for one breakdown value",
            key=("campaign_id", "publish_date", "breakdown", "breakdown_value", "metric", "method"),
            personal_data=PersonalData.NONE,
            date_column="publish_date",
            schema=CAMPAIGN_RESULTS_SCHEMA,
        ),
        TableSpec(
            name="gold.model_metrics",
            grain="one metric of one candidate on one split of a training run",
            key=("run_id", "model_name", "model_version", "candidate", "dataset", "split", "metric"),
            personal_data=PersonalData.NONE,
            schema=MODEL_METRICS_SCHEMA,
        ),
        TableSpec(
            name="gold.model_monitoring",
            grain="one check of a scoring run: the PSI of the score or a feature, or realized churn by decile",
            key=("monitor_date", "model_name", "check", "subject", "score_date"),
            personal_data=PersonalData.NONE,
            date_column="monitor_date",
            schema=MODEL_MONITORING_SCHEMA,
        ),
        TableSpec(
            name="gold.kpis",
            grain="one KPI per period, dimension value and breakdown",
            key=("period", "period_start", "dimension", "dimension_value", "kpi", "breakdown"),
            personal_data=PersonalData.NONE,
            date_column="period_start",
        ),
        TableSpec(
            name="gold.cohort_retention",
            grain="one activation-month cohort per months since activation, as of a date",
            key=("as_of_date", "cohort_month", "months_since_activation"),
            personal_data=PersonalData.NONE,
            date_column="as_of_date",
        ),
        TableSpec(
            name="gold.run_log",
            grain="one job run",
            key=("run_id",),
            personal_data=PersonalData.NONE,
            schema=RUN_LOG_SCHEMA,
        ),
    ]
}


def register(*specs: TableSpec) -> None:
    """Add tables declared outside the catalog (each source entity's bronze and silver). A name
    declared twice is an error, not an override."""
    for new in specs:
        if new.name in TABLES:
            raise ValueError(f"table {new.name!r} is already declared in the catalog")
        if new.layer not in LAYERS:
            raise ValueError(f"table {new.name!r}: the layer must be one of {', '.join(LAYERS)}")
    ordered = sorted([*TABLES.values(), *specs], key=lambda s: LAYERS.index(s.layer))  # stable: in layer order
    TABLES.clear()
    TABLES.update((s.name, s) for s in ordered)


def spec(name: str) -> TableSpec:
    """The declaration of table ``name`` (``"<layer>.<table>"``)."""
    try:
        return TABLES[name]
    except KeyError:
        raise UnknownTableError(
            f"no table {name!r} in the catalog (crmlake.catalog.registry); known: {', '.join(sorted(TABLES))}"
        ) from None


def holding_subscribers() -> list[TableSpec]:
    """Tables that hold a subscriber, with the column that names them (for erasure)."""
    return [s for s in TABLES.values() if s.subscriber_column]


def markdown() -> str:
    """The table map in the README (``python -m crmlake.catalog`` prints it; a test
    keeps the README equal to it)."""

    def cols(names) -> str:
        return ", ".join(f"`{n}`" for n in names) or "—"

    lines = [
        "| table | grain | key | partitioned by | personal data |",
        "|---|---|---|---|---|",
    ]
    for table in TABLES.values():
        lines.append(
            f"| `{table.name}` | {table.grain} | {cols(table.key)} | {cols(table.partition_by)} "
            f"| {table.personal_data.value} |"
        )
    return "\n".join(lines)
