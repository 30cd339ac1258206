"""The contract of every source entity, in one place.

For each entity: how it lands (format, columns in file order), its key, the column that
dates an event, the typed silver schema, required columns, enumerations and ranges. The
generator writes to this contract, ingest checks against it, and nothing else defines it.

Landing files live at ``<root>/landing/<entity>/date=YYYY-MM-DD/``; CSV files have a header
row, JSON files hold one object a line, Parquet files carry their own types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql import types as T

MONEY = T.DecimalType(18, 2)


def cents(amount: Column) -> Column:
    """A MONEY amount as whole cents in a long, for sums (DECIMAL sums run row by row on
    BigDecimal).

    Exact: a MONEY amount has two decimals, so amount × 100 is a whole number and its double lies
    within far less than half a cent of it (below 2^53 cents); ``rint`` takes that nearest whole
    number. ``round`` gives the same but goes through ``java.math.BigDecimal`` for every row.
    """
    return F.rint(amount.cast("double") * 100).cast("long")


# Enumerations (value sets) shared by the generator and the contracts.
STATUSES = ("active", "suspended", "deactivated")
PLAN_TYPES = ("prepaid", "postpaid")
CUSTOMER_TYPES = ("B2C", "B2B")
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
GENDERS = ("F", "M", "U")
DEVICE_TYPES = ("smartphone", "feature_phone", "tablet", "mifi")
CHURN_REASONS = ("price", "network", "service", "competitor", "relocation", "non_payment", "inactivity", "port_out")
SERVICE_TYPES = ("voice", "sms", "data", "vas")
DIRECTIONS = ("out", "in")
DESTINATION_TYPES = ("on_net", "off_net", "international")
RADIO_TECHS = ("2G", "3G", "4G", "5G")
TXN_TYPES = ("topup", "bill", "payment")
RECHARGE_CHANNELS = ("retail", "app", "ussd", "bank", "auto_debit", "voucher", "billing")
CARE_CHANNELS = ("call_centre", "app", "web", "chat", "email", "social", "store")
CARE_REASONS = (
    "billing",
    "network_coverage",
    "data_speed",
    "device",
    "tariff_change",
    "roaming",
    "recharge",
    "cancellation",
    "other",
)
SURVEY_TYPES = ("csat", "nps")
CAMPAIGN_CHANNELS = ("sms", "push", "call", "email")


@dataclass(frozen=True)
class Entity:
    """The contract of one source entity."""

    name: str
    record: str  # what one record is, in the catalog's words ("care contact")
    fmt: str  # csv | json | parquet
    silver: T.StructType  # typed columns as they arrive, in file order (msisdn still raw)
    key: tuple[str, ...]
    event_time: str  # the column whose date partitions silver
    required: tuple[str, ...]
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # column -> (min, max), inclusive; None leaves that side open.
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    has_msisdn: bool = True
    checks_subscriber: bool = True  # referential check against silver.subscribers
    # A daily snapshot (the subscriber extract): the event time dates the snapshot and is not
    # part of the row's content, so an unchanged subscriber hashes the same every day.
    is_snapshot: bool = False

    @property
    def landing_columns(self) -> list[str]:
        return [f.name for f in self.silver.fields]

    @property
    def landing_schema(self) -> T.StructType:
        """What bronze keeps: every column as the string that arrived (Parquet values are cast
        to string, so a file whose types drifted is checked row by row, not refused whole)."""
        return T.StructType([T.StructField(c, T.StringType()) for c in self.landing_columns])


def _schema(*fields: tuple[str, T.DataType]) -> T.StructType:
    return T.StructType([T.StructField(name, dtype) for name, dtype in fields])


S, L, I, D, B, TS, DT = (  # noqa: E741 - short type names keep the contracts readable
    T.StringType(),
    T.LongType(),
    T.IntegerType(),
    T.DoubleType(),
    T.BooleanType(),
    T.TimestampType(),
    T.DateType(),
)

# Subscribers come first: ingest checks the other entities against them.
ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in [
        Entity(
            name="subscribers",
            record="subscriber extract line",
            fmt="csv",
            silver=_schema(
                ("msisdn", S),
                ("customer_id", S),
                ("extract_date", DT),
                ("status", S),
                ("plan_type", S),
                ("tariff", S),
                ("customer_type", S),
                ("account_id", S),
                ("region", S),
                ("city", S),
                ("home_cell_id", S),
                ("activation_date", DT),
                ("deactivation_date", DT),
                ("churn_reason", S),
                ("age_band", S),
                ("gender", S),
                ("device_brand", S),
                ("device_type", S),
                ("is_marketing_consent", B),
                ("is_do_not_contact", B),
                ("first_name", S),
                ("last_name", S),
            ),
            key=("msisdn",),
            event_time="extract_date",
            required=(
                "msisdn",
                "customer_id",
                "extract_date",
                "status",
                "plan_type",
                "tariff",
                "customer_type",
                "region",
                "activation_date",
            ),
            enums={
                "status": STATUSES,
                "plan_type": PLAN_TYPES,
                "customer_type": CUSTOMER_TYPES,
                "age_band": AGE_BANDS,
                "gender": GENDERS,
                "device_type": DEVICE_TYPES,
                "churn_reason": CHURN_REASONS,
            },
            checks_subscriber=False,
            is_snapshot=True,
        ),
        Entity(
            name="usage",
            record="charging/usage record",
            fmt="csv",
            silver=_schema(
                ("record_id", S),
                ("msisdn", S),
                ("event_time", TS),
                ("service_type", S),
                ("direction", S),
                ("duration_s", L),
                ("bytes_up", L),
                ("bytes_down", L),
                ("charge_amount", MONEY),
                ("currency", S),
                ("destination_type", S),
                ("is_roaming", B),
                ("cell_id", S),
                ("radio_tech", S),
            ),
            key=("record_id",),
            event_time="event_time",
            required=("record_id", "msisdn", "event_time", "service_type", "direction"),
            enums={
                "service_type": SERVICE_TYPES,
                "direction": DIRECTIONS,
                "destination_type": DESTINATION_TYPES,
                "radio_tech": RADIO_TECHS,
            },
            ranges={
                "duration_s": (0, None),
                "bytes_up": (0, None),
                "bytes_down": (0, None),
                "charge_amount": (0, None),
            },
        ),
        Entity(
            name="recharges",
            record="top-up, bill or payment",
            fmt="csv",
            silver=_schema(
                ("txn_id", S),
                ("msisdn", S),
                ("txn_time", TS),
                ("txn_type", S),
                ("amount", MONEY),
                ("currency", S),
                ("channel", S),
            ),
            key=("txn_id",),
            event_time="txn_time",
            required=("txn_id", "msisdn", "txn_time", "txn_type", "amount", "currency"),
            enums={"txn_type": TXN_TYPES, "channel": RECHARGE_CHANNELS},
            ranges={"amount": (0, None)},
        ),
        Entity(
            name="care_interactions",
            record="care contact",
            fmt="json",
            silver=_schema(
                ("interaction_id", S),
                ("msisdn", S),
                ("started_at", TS),
                ("channel", S),
                ("reason", S),
                ("is_complaint", B),
                ("is_resolved", B),
                ("is_first_contact_resolution", B),
                ("escalation_level", I),
                ("handle_time_s", L),
                ("agent_id", S),
                ("notes", S),
            ),
            key=("interaction_id",),
            event_time="started_at",
            required=("interaction_id", "msisdn", "started_at", "channel", "reason"),
            enums={"channel": CARE_CHANNELS, "reason": CARE_REASONS},
            ranges={"escalation_level": (0, 3), "handle_time_s": (0, 86400)},
        ),
        Entity(
            name="surveys",
            record="survey answer (CSAT 1-5, NPS 0-10)",
            fmt="json",
            silver=_schema(
                ("survey_id", S),
                ("msisdn", S),
                ("answered_at", TS),
                ("survey_type", S),
                ("interaction_id", S),
                ("score", I),
                ("comment", S),
            ),
            key=("survey_id",),
            event_time="answered_at",
            required=("survey_id", "msisdn", "answered_at", "survey_type", "score"),
            enums={"survey_type": SURVEY_TYPES},
            ranges={"score": (0, 10)},
        ),
        Entity(
            name="campaign_responses",
            record="contact of a campaign target",
            fmt="csv",
            silver=_schema(
                ("campaign_id", S),
                ("msisdn", S),
                ("contacted_at", TS),
                ("channel", S),
                ("is_delivered", B),
                ("has_responded", B),
                ("has_accepted_offer", B),
                ("revenue_amount", MONEY),
                ("currency", S),
            ),
            key=("campaign_id", "msisdn", "contacted_at"),
            event_time="contacted_at",
            required=("campaign_id", "msisdn", "contacted_at", "channel"),
            enums={"channel": CAMPAIGN_CHANNELS},
            ranges={"revenue_amount": (0, None)},
        ),
        Entity(
            name="network_cells",
            record="cell per day",
            fmt="parquet",
            silver=_schema(
                ("cell_id", S),
                ("date", DT),
                ("region", S),
                ("radio_tech", S),
                ("dropped_call_rate", D),
                ("avg_throughput_mbps", D),
                ("availability_pct", D),
            ),
            key=("cell_id", "date"),
            event_time="date",
            required=("cell_id", "date", "region"),
            enums={"radio_tech": RADIO_TECHS},
            ranges={"dropped_call_rate": (0, 1), "avg_throughput_mbps": (0, 10000), "availability_pct": (0, 100)},
            has_msisdn=False,
            checks_subscriber=False,
        ),
    ]
}

# Raw personal data of the subscriber master: only silver.subscriber_contacts keeps it.
SUBSCRIBER_PII = ("msisdn", "first_name", "last_name")


def silver_key(entity: Entity) -> list[str]:
    """The silver key: the raw number's place is taken by ``subscriber_key``."""
    return ["subscriber_key" if k == "msisdn" else k for k in entity.key]


def business_columns(entity: Entity) -> list[str]:
    """The columns silver keeps of an entity: no raw personal data, ``subscriber_key`` first."""
    cols = [f.name for f in entity.silver.fields if f.name not in SUBSCRIBER_PII]
    return (["subscriber_key"] if entity.has_msisdn else []) + cols


def silver_schema(entity: Entity) -> T.StructType:
    """The business columns of a silver table (``subscriber_key`` for the raw number) and
    ``event_date``: what readers of silver may rely on."""
    types = {f.name: f.dataType for f in entity.silver.fields}
    return T.StructType(
        [T.StructField(c, types.get(c, T.StringType())) for c in business_columns(entity)]
        + [T.StructField("event_date", T.DateType())]
    )
