"""Campaigns: the plan, who each campaign targets (treatment and control, with the outcome each
line's uplift type gives a contact) and the response records of the contacted lines."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crmlake.core.settings import IdentityConfig
from crmlake.silver.identity import hmac_sha256_hex
from crmlake.synth.draws import _bool_str, _case, _date_str, _hour_sec, _key, _lit, _money, _ts_str, _u, _x
from crmlake.synth.msisdn import _e164, _msisdn_as_exported
from crmlake.synth.params import (
    ACCEPT_RATE,
    CAMPAIGN_CHANNEL_CYCLE,
    CURRENCY,
    DELIVERY_RATE,
    HOUR_WEIGHTS_OFFICE,
    OFFER_PRICES_IRR,
    PUBLISHED_CHANNEL_LANDED,
    RESPONSE_RATE,
    GenParams,
)


def campaign_plan(p: GenParams) -> list[tuple[int, str, int, str, float]]:
    """(index, campaign_id, day, channel, offer amount) of each campaign, spread over the window."""
    plan = []
    for i in range(p.campaigns):
        day = min(p.days - 1, max(0, round((i + 1) * p.days / (p.campaigns + 1))))
        date = p.start + dt.timedelta(days=day)
        channel = CAMPAIGN_CHANNEL_CYCLE[i % len(CAMPAIGN_CHANNEL_CYCLE)]
        offer = float(OFFER_PRICES_IRR[i % len(OFFER_PRICES_IRR)])
        plan.append((i, f"CMP-{date:%Y%m%d}-{i + 1:02d}", day, channel, offer))
    return plan


CAMPAIGN_SCHEMA = "campaign_idx int, campaign_id string, campaign_day int, channel string, offer_amount double"


def campaign_assignments_df(subs_df: DataFrame, campaigns_df: DataFrame, p: GenParams) -> DataFrame:
    """Targets of each campaign: a random sample of the lines that are active, consenting and not
    do-not-contact on the campaign day, split into treatment and control. Treated lines get the
    contact outcome their uplift type gives. ``ak`` is the assignment's random key."""
    eligible = (
        "activation_day <= campaign_day"
        " AND (base_churn_day IS NULL OR base_churn_day > campaign_day)"
        " AND is_marketing_consent"
        " AND (consent_optout_day IS NULL OR consent_optout_day > campaign_day)"
        " AND NOT is_do_not_contact"
    )
    df = subs_df.crossJoin(F.broadcast(campaigns_df)).where(eligible)
    df = df.withColumn("ak", _x(_key(p.seed, "campaign", "campaign_idx", "sub_id")))
    df = df.where(_x(f"{_u('ak', 'target')} < {_lit(p.campaign_target_share)}"))
    treated = f"{_u('ak', 'group')} < {_lit(p.campaign_treatment_share)}"
    df = df.withColumns({
        "group": _x(f"CASE WHEN {treated} THEN 'treatment' ELSE 'control' END"),
        "is_delivered": _x(f"{treated} AND {_u('ak', 'delivered')} < {_case('channel', DELIVERY_RATE)}"),
    })  # fmt: skip
    accepted = f"is_delivered AND {_u('ak', 'accept')} < {_case('uplift_type', ACCEPT_RATE)}"
    df = df.withColumn("has_accepted_offer", _x(accepted))
    return df.select(
        "sub_id", "nat", "uplift_type", "campaign_idx", "campaign_id", "campaign_day", "channel",
        "ak", "group", "is_delivered",
        _x(f"is_delivered AND (has_accepted_offer OR {_u('ak', 'respond')} < {RESPONSE_RATE!r}D)")
        .alias("has_responded"),
        "has_accepted_offer",
        _x("CASE WHEN has_accepted_offer THEN offer_amount ELSE 0D END").alias("revenue"),
        _x(_hour_sec("ak", "contact", HOUR_WEIGHTS_OFFICE)).alias("contact_sec"),
    )  # fmt: skip


def campaign_responses_df(assignments_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    """One row per contacted (treatment) line; control lines are only in the truth."""
    df = assignments_df.where("group = 'treatment'").withColumns({
        "date": _x(_date_str(p, "campaign_day")),
        "rk": F.col("ak"),
    })  # fmt: skip
    df = df.withColumn("contacted_at", _x(_ts_str("date", "contact_sec")))
    return df.select(
        "sub_id", "nat", F.col("campaign_day").alias("day"), "rk", "date", "revenue",
        _x(f"concat_ws('|', campaign_id, {_e164('nat', ident)}, contacted_at)").alias("key"),
        "campaign_id",
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        "contacted_at",
        "channel",
        _x(_bool_str("is_delivered")).alias("is_delivered"),
        _x(_bool_str("has_responded")).alias("has_responded"),
        _x(_bool_str("has_accepted_offer")).alias("has_accepted_offer"),
        _x(_money("revenue")).alias("revenue_amount"),
        F.lit(CURRENCY).alias("currency"),
    )  # fmt: skip


# --- lists published by crmlake publish -----------------------------------------------------------

# What an assignment says beyond the generator's own campaigns: where it came from and, for a
# published list, its publication day, objective and offer.
LIST_COLUMNS = {"source": "string", "publish_date": "date", "objective": "string", "offer_code": "string"}
GENERATED_SOURCE, PUBLISHED_SOURCE = "generator", "published"


def with_generated_source(assignments_df: DataFrame) -> DataFrame:
    """The generator's own assignments with the list columns of :func:`list_assignments_df`."""
    return assignments_df.withColumns(
        {"source": F.lit(GENERATED_SOURCE)}
        | {name: F.lit(None).cast(kind) for name, kind in LIST_COLUMNS.items() if name != "source"}
    )


def list_assignments_df(
    subs_df: DataFrame, lists_df: DataFrame, p: GenParams, ident: IdentityConfig, hmac_key: bytes | None
) -> DataFrame:
    """The rows of published lists (``gold.campaign_targets`` plus ``contact_day``) as
    assignments of the generator's lines, in the columns of :func:`campaign_assignments_df`
    plus :data:`LIST_COLUMNS`. Treatment rows are matched on their E.164 number, control rows
    (which carry no number) on ``subscriber_key``, the HMAC of that number under ``hmac_key``;
    rows of numbers the operator does not have are left out. A treated line is contacted on
    ``contact_day`` on the list's channel (as the landing contract names it); delivery (none
    once the line is deactivated), acceptance by uplift type, response and revenue (the offer's
    cost when accepted) are drawn as for the generator's own campaigns, keyed by the campaign,
    the contact day and the line, so a rerun gives the same answers."""
    lines = subs_df.select("sub_id", "nat", "uplift_type", "deactivation_day", _x(_e164("nat", ident)).alias("e164"))
    treated = lists_df.where("group = 'treatment'").join(lines, F.col("msisdn") == F.col("e164"))
    assigned = treated
    if hmac_key is not None:
        keyed = lines.withColumn("line_key", hmac_sha256_hex(F.col("e164"), hmac_key))
        controls = lists_df.where("group = 'control'").join(keyed, F.col("subscriber_key") == F.col("line_key"))
        assigned = treated.unionByName(controls.drop("line_key"))
    df = assigned.withColumns({
        "campaign_day": F.col("contact_day"),
        "channel": _x(_case("channel", PUBLISHED_CHANNEL_LANDED)),
        "ak": _x(_key(p.seed, "published", "campaign_id", "contact_day", "sub_id")),
    })  # fmt: skip
    reachable = "(deactivation_day IS NULL OR deactivation_day > campaign_day)"
    df = df.withColumn(
        "is_delivered",
        _x(f"group = 'treatment' AND {reachable} AND {_u('ak', 'delivered')} < {_case('channel', DELIVERY_RATE)}"),
    )
    df = df.withColumn(
        "has_accepted_offer", _x(f"is_delivered AND {_u('ak', 'accept')} < {_case('uplift_type', ACCEPT_RATE)}")
    )
    return df.select(
        "sub_id", "nat", "uplift_type", F.lit(None).cast("int").alias("campaign_idx"), "campaign_id",
        "campaign_day", "channel", "ak", "group", "is_delivered",
        _x(f"is_delivered AND (has_accepted_offer OR {_u('ak', 'respond')} < {RESPONSE_RATE!r}D)")
        .alias("has_responded"),
        "has_accepted_offer",
        _x("CASE WHEN has_accepted_offer THEN offer_cost ELSE 0D END").alias("revenue"),
        _x(_hour_sec("ak", "contact", HOUR_WEIGHTS_OFFICE)).alias("contact_sec"),
        F.lit(PUBLISHED_SOURCE).alias("source"), "publish_date", "objective", "offer_code",
    )  # fmt: skip
