"""Small hand-built silver and gold rows for the Customer 360 tests.

Every builder fills the columns a test does not care about with neutral values, so a test
states only what matters to it and the expected values can be computed by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crmlake.contracts.entities import ENTITIES, business_columns
from crmlake.gold import daily
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

D0 = dt.date(2026, 3, 1)


def day(n: int) -> dt.date:
    """D0 + n days."""
    return D0 + dt.timedelta(days=n)


def at(n: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day(n), dt.time(hour, minute))


def silver_schema(entity_name: str) -> T.StructType:
    entity = ENTITIES[entity_name]
    types = {f.name: f.dataType for f in entity.silver.fields}
    fields = [T.StructField(c, types.get(c, T.StringType())) for c in business_columns(entity)]
    return T.StructType([*fields, T.StructField("event_date", T.DateType())])


DEFAULTS = {
    "usage": {
        "direction": "out",
        "duration_s": 0,
        "bytes_up": 0,
        "bytes_down": 0,
        "charge_amount": Decimal("0.00"),
        "currency": "IRR",
        "destination_type": None,
        "is_roaming": False,
        "cell_id": "C1",
        "radio_tech": "4G",
    },
    "recharges": {"currency": "IRR", "channel": "app"},
    "care_interactions": {
        "channel": "call_centre",
        "reason": "billing",
        "is_complaint": False,
        "is_resolved": True,
        "is_first_contact_resolution": True,
        "escalation_level": 0,
        "handle_time_s": 0,
    },
    "surveys": {},
    "network_cells": {"region": "R1", "radio_tech": "4G"},
}


def silver_rows(spark: SparkSession, entity_name: str, rows: list[dict]) -> DataFrame:
    """Rows of a silver table; ``event_date`` is derived from the entity's event time."""
    entity = ENTITIES[entity_name]
    schema = silver_schema(entity_name)
    full = []
    for i, row in enumerate(rows):
        values = {**DEFAULTS.get(entity_name, {}), **row}
        for k in entity.key:
            values.setdefault(k, f"{entity_name}-{i}")
        when = values[entity.event_time]
        values["event_date"] = when.date() if isinstance(when, dt.datetime) else when
        for c, v in values.items():
            if isinstance(v, (int, float)) and c in ("charge_amount", "amount"):
                values[c] = Decimal(str(v)).quantize(Decimal("0.01"))
        full.append(tuple(values.get(f.name) for f in schema.fields))
    return spark.createDataFrame(full, schema)


SUBSCRIBER_DEFAULTS = {
    "customer_id": "C",
    "status": "active",
    "plan_type": "prepaid",
    "tariff": "PRE_S",
    "customer_type": "B2C",
    "account_id": None,
    "region": "R1",
    "city": "City1",
    "home_cell_id": "C1",
    "activation_date": dt.date(2025, 1, 1),
    "deactivation_date": None,
    "churn_reason": None,
    "age_band": "25-34",
    "gender": "F",
    "device_brand": "Brand",
    "device_type": "smartphone",
    "is_marketing_consent": True,
    "is_do_not_contact": False,
}


def history_rows(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """silver.subscribers history rows: give subscriber_key, valid_from (and valid_to when the
    row was closed) plus the attributes that matter."""
    schema = silver_schema("subscribers")
    schema = T.StructType(
        [
            *schema.fields,
            T.StructField("valid_from", T.DateType()),
            T.StructField("valid_to", T.DateType()),
            T.StructField("is_current", T.BooleanType()),
        ]
    )
    full = []
    for row in rows:
        values = {**SUBSCRIBER_DEFAULTS, **row}
        values.setdefault("extract_date", values["valid_from"])
        values["event_date"] = values["extract_date"]
        values.setdefault("valid_to", None)
        values["is_current"] = values["valid_to"] is None
        full.append(tuple(values.get(f.name) for f in schema.fields))
    return spark.createDataFrame(full, schema)


def daily_schema(spark: SparkSession) -> T.StructType:
    empty = {name: silver_rows(spark, name.split(".")[1], []) for name in daily.DAILY_SOURCES}
    return daily.subscriber_daily(*empty.values()).schema


def daily_rows(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """gold.subscriber_daily rows: zero counts and amounts unless given."""
    schema = daily_schema(spark)
    full = []
    for row in rows:
        values = {}
        for f in schema.fields:
            if isinstance(f.dataType, T.LongType):
                values[f.name] = 0
            elif isinstance(f.dataType, T.DecimalType):
                values[f.name] = Decimal("0.00")
            elif f.name.endswith(("_min", "_mb_up", "_mb_down")):
                values[f.name] = 0.0
            elif f.name == "has_revenue_activity":
                values[f.name] = False
            else:
                values[f.name] = None
        for c, v in row.items():
            values[c] = Decimal(str(v)).quantize(Decimal("0.01")) if c in daily.AMOUNT_COLUMNS else v
        full.append(tuple(values[f.name] for f in schema.fields))
    return spark.createDataFrame(full, schema)
