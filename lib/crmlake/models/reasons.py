"""A churn score's drivers in words a marketer reads.

Each driver is a feature whose contribution pushed this subscriber's score up (see
:mod:`crmlake.models.contributions`); its sentence is written from the subscriber's own value of
that feature, as it is in the feature table (before imputation, so "unknown" stays unknown):
``data_mb_trend_7v30 = 0.4`` reads "data use fell 60% in the last 7 days (against the 30
before)", ``unresolved_contacts_90d = 2`` reads "2 unresolved care contacts in 90 days". A
feature without a sentence of its own (a team's own feature table) reads "<feature> is <value>".
"""

from __future__ import annotations

import re

from pyspark.sql import Column
from pyspark.sql import functions as F

MEASURES = {
    "revenue": "spend",
    "voice_min": "voice use",
    "data_mb": "data use",
    "events": "activity",
    "voice_out_calls": "outgoing calls",
    "sms_out": "SMS sent",
}

DAYS_SINCE = {
    "days_since_last_activity": ("no activity for {} days", "no activity in the lookback"),
    "days_since_last_revenue_activity": ("no paid use or top-up for {} days", "no paid use or top-up in the lookback"),
    "days_since_last_recharge": ("no top-up or payment for {} days", "no top-up or payment in the lookback"),
    "days_since_last_bill": ("last bill {} days ago", "no bill in the lookback"),
    "days_since_last_payment": ("last payment {} days ago", "no payment in the lookback"),
    "days_since_last_complaint": ("complained {} days ago", "no complaint in the lookback"),
}

COUNTS = {
    "complaints": "{} complaints in {} days",
    "unresolved_contacts": "{} unresolved care contacts in {} days",
    "escalations": "{} escalated care contacts in {} days",
    "care_contacts": "{} care contacts in {} days",
    "recharge_count": "{} top-ups in {} days",
    "active_days": "active on {} of the last {} days",
    "voice_out_calls": "{} outgoing calls in {} days",
    "sms_out": "{} SMS sent in {} days",
    "events": "{} usage events in {} days",
}

AMOUNTS = {
    "revenue": "spent {} in {} days",
    "data_mb": "{} MB of data in {} days",
    "voice_min": "{} voice minutes in {} days",
    "recharge_amount": "topped up {} in {} days",
    "bill_amount": "billed {} in {} days",
    "payment_amount": "paid {} in {} days",
    "avg_recharge_amount": "average top-up {} over {} days",
}

SHARES = {
    "on_net_share": "{}% of calls and SMS on-net over {} days",
    "off_net_share": "{}% of calls and SMS to other networks over {} days",
    "intl_share": "{}% of calls and SMS international over {} days",
    "roaming_share": "{}% of usage while roaming over {} days",
    "fcr_rate": "{}% of care contacts resolved first time over {} days",
    "payment_ratio": "paid {}% of the bills of {} days",
}


def _number(value: Column, decimals: int = 0) -> Column:
    return F.format_number(value.cast("double"), decimals)


def _pct(value: Column) -> Column:
    return F.format_number(value.cast("double") * 100.0, 0)


def _fill(template: str, *values: Column) -> Column:
    """``template`` with ``{}`` replaced by the values (a null value makes the whole text null)."""
    pieces = template.split("{}")
    parts: list[Column] = []
    for i, piece in enumerate(pieces):
        if piece:
            parts.append(F.lit(piece))
        if i < len(values):
            parts.append(values[i])
    return F.concat(*parts)


def _label(feature: str) -> str:
    return feature.replace("_", " ")


def reason(feature: str, value: Column, categorical: bool = False) -> Column:
    """The sentence for one feature and its value (a column expression)."""
    if categorical:
        return F.concat(F.lit(f"{_label(feature)} is "), F.coalesce(value.cast("string"), F.lit("unknown")))
    if feature in DAYS_SINCE:
        known, unknown = DAYS_SINCE[feature]
        return F.coalesce(_fill(known, value.cast("long").cast("string")), F.lit(unknown))
    if m := re.fullmatch(r"(\w+?)_trend_(\d+)v(\d+)", feature):
        label, recent, base = MEASURES.get(m[1], _label(m[1])), m[2], m[3]
        fell = _fill(f"{label} fell {{}}% in the last {recent} days (against the {base} before)", _pct(1 - value))
        rose = _fill(f"{label} rose {{}}% in the last {recent} days (against the {base} before)", _pct(value - 1))
        return F.when(value < 1, fell).when(value >= 1, rose).otherwise(F.lit(f"{label} trend unknown"))
    if m := re.fullmatch(r"(\w+?)_slope_(\d+)d", feature):
        label, days = MEASURES.get(m[1], _label(m[1])), m[2]
        text = _fill(
            f"{label} {{}} by {{}} a day over {days} days",
            F.when(value < 0, "falling").otherwise("rising"),
            _number(F.abs(value), 1),
        )
        return F.coalesce(text, F.lit(f"{label} slope unknown"))
    if m := re.fullmatch(r"(\w+?)_(\d+)d", feature):
        name, days = m[1], m[2]
        if name in COUNTS:
            return F.coalesce(
                _fill(COUNTS[name], value.cast("long").cast("string"), F.lit(days)), F.lit(f"{_label(feature)} unknown")
            )
        if name in AMOUNTS:
            return F.coalesce(_fill(AMOUNTS[name], _number(value), F.lit(days)), F.lit(f"{_label(feature)} unknown"))
        if name in SHARES:
            return F.coalesce(_fill(SHARES[name], _pct(value), F.lit(days)), F.lit(f"{_label(feature)} unknown"))
        if name == "distinct_cells_per_active_day":
            return F.coalesce(
                _fill(f"{{}} cells a day over {days} days", _number(value, 1)), F.lit("cells a day unknown")
            )
    if m := re.fullmatch(r"home_cell_(\w+)_(\d+)d", feature):
        name, days = m[1], m[2]
        texts = {
            "dropped_call_rate": (f"home cell drops {{}}% of calls (last {days} days)", _number(value * 100.0, 1)),
            "throughput_mbps": (f"home cell throughput {{}} Mbps (last {days} days)", _number(value, 1)),
            "availability_pct": (f"home cell available {{}}% of the time (last {days} days)", _number(value, 1)),
            "poor_days": (f"home cell poor on {{}} of the last {days} days", value.cast("long").cast("string")),
        }
        if name in texts:
            return F.coalesce(_fill(*texts[name]), F.lit("home cell quality unknown"))
    if feature == "tenure_days":
        return _fill("line active for {} days", value.cast("long").cast("string"))
    if feature == "last_nps":
        return F.coalesce(_fill("last NPS answer {} of 10", value.cast("long").cast("string")), F.lit("no NPS answer"))
    if feature == "last_csat":
        return F.coalesce(_fill("last CSAT {} of 5", value.cast("long").cast("string")), F.lit("no CSAT answer"))
    if feature.startswith("is_"):
        return F.concat(
            F.lit(f"{_label(feature[3:])}: "),
            F.when(value.cast("boolean"), "yes").when(value.isNotNull(), "no").otherwise("unknown"),
        )
    return F.concat(F.lit(f"{_label(feature)} is "), F.coalesce(value.cast("string"), F.lit("unknown")))


def drivers_with_reasons(drivers_col: str, categorical: set[str] | frozenset[str], features: list[str]) -> Column:
    """``drivers_col`` (array<struct<feature, contribution>>) with each driver's ``value`` (as
    text) and ``reason`` added; ``features`` are the model's source features, columns of ``df``.
    Only the matching branch is evaluated per driver, so the cost is per driver, not per feature."""

    def text(d: Column) -> Column:
        found = None
        for name in features:
            sentence = reason(name, F.col(name), name in categorical)
            found = (
                F.when(d["feature"] == name, sentence) if found is None else found.when(d["feature"] == name, sentence)
            )
        return found if found is not None else F.lit(None).cast("string")

    def value(d: Column) -> Column:
        found = None
        for name in features:
            v = F.col(name).cast("string")
            found = F.when(d["feature"] == name, v) if found is None else found.when(d["feature"] == name, v)
        return found if found is not None else F.lit(None).cast("string")

    return F.transform(
        F.col(drivers_col),
        lambda d: F.struct(
            d["feature"].alias("feature"),
            d["contribution"].alias("contribution"),
            value(d).alias("value"),
            text(d).alias("reason"),
        ),
    )
