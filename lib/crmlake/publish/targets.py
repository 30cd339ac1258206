"""Building one campaign's target list from the eligible subscribers: suppression, contact
policy, ranking under the size cap, and the control group.

Each step is a DataFrame function of its inputs, so the order the campaign loop needs is plain:
suppression and the contact policy apply to treatment and control alike (a control is someone
the campaign would have contacted), the cap is taken by rank, and the control group is drawn
from the subscriber key and campaign id alone, never from the rank.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

TREATMENT, CONTROL = "treatment", "control"
# The share of the 52-bit draw space below which a subscriber is a control.
DRAW_BITS = 13  # hex digits of sha-256 read: 52 bits, exact in a double


def control_draw(campaign_id: str, key: str = "subscriber_key") -> F.Column:
    """A number in [0, 1) fixed by the campaign id and the subscriber key: the first 52 bits of
    sha-256 over ``<campaign_id>:<subscriber_key>``. Any engine can recompute it, reruns and
    reorderings do not move it, and two campaigns draw independently."""
    digest = F.sha2(F.concat(F.lit(f"{campaign_id}:"), F.col(key)), 256)
    return F.conv(F.substring(digest, 1, DRAW_BITS), 16, 10).cast("double") / F.lit(float(16**DRAW_BITS))


def assign_groups(df: DataFrame, campaign_id: str, control_fraction: float) -> DataFrame:
    """``df`` plus ``group``: control where the draw falls below the fraction."""
    return df.withColumn(
        "group", F.when(control_draw(campaign_id) < F.lit(control_fraction), CONTROL).otherwise(TREATMENT)
    )


def suppressed(
    eligible_df: DataFrame,
    master_df: DataFrame,
    base_df: DataFrame,
    opted_out_df: DataFrame | None = None,
    erased_df: DataFrame | None = None,
) -> DataFrame:
    """Why each eligible subscriber may not be contacted, whatever a campaign says: one row per
    (subscriber_key, reason) with reason ``not_in_base`` (no row in ``base_df``: the day's
    feature snapshot), ``no_master_row`` (not in the newest master), ``marketing_opt_out``
    (``is_marketing_consent`` not true: unknown consent is no consent), ``do_not_contact``,
    ``opt_out_list`` (in ``opted_out_df``), ``erased`` (in ``erased_df``). Every input is keyed by
    ``subscriber_key``."""
    keys = eligible_df.select("subscriber_key").distinct()
    master = master_df.select("subscriber_key", "is_marketing_consent", "is_do_not_contact")
    flagged = keys.join(master, on="subscriber_key", how="left").join(
        base_df.select("subscriber_key").distinct().withColumn("_in_base", F.lit(True)), on="subscriber_key", how="left"
    )
    reasons = F.array_compact(
        F.array(
            F.when(F.col("_in_base").isNull(), F.lit("not_in_base")),
            F.when(
                F.col("is_marketing_consent").isNull() & F.col("is_do_not_contact").isNull(), F.lit("no_master_row")
            ),
            F.when(~F.coalesce(F.col("is_marketing_consent"), F.lit(False)), F.lit("marketing_opt_out")),
            F.when(F.coalesce(F.col("is_do_not_contact"), F.lit(False)), F.lit("do_not_contact")),
        )
    )
    out = flagged.select("subscriber_key", F.explode(reasons).alias("reason"))
    for listed, reason in ((opted_out_df, "opt_out_list"), (erased_df, "erased")):
        if listed is not None:
            out = out.unionByName(
                keys.join(listed.select("subscriber_key").distinct(), on="subscriber_key").withColumn(
                    "reason", F.lit(reason)
                )
            )
    return out


def held_by_contact_policy(
    eligible_df: DataFrame, contacts_df: DataFrame, d: dt.date, max_contacts: int, window_days: int, quiet_days: int
) -> DataFrame:
    """Subscribers the contact policy holds back on ``d``, one row per (subscriber_key, reason):
    ``contact_limit`` (``max_contacts`` or more contacts in the ``window_days`` before ``d``) or
    ``quiet_period`` (contacted within ``quiet_days`` before ``d``). ``contacts_df``: past
    contacts, ``subscriber_key`` and ``contact_date`` (treatment rows of earlier lists)."""
    day = F.lit(d).cast("date")
    recent = (
        contacts_df.where((F.col("contact_date") < day) & (F.col("contact_date") >= F.date_sub(day, window_days)))
        .groupBy("subscriber_key")
        .agg(F.count(F.lit(1)).alias("_contacts"), F.max("contact_date").alias("_last"))
    )
    joined = eligible_df.select("subscriber_key").distinct().join(recent, on="subscriber_key")
    reasons = F.array_compact(
        F.array(
            F.when(F.col("_contacts") >= max_contacts, F.lit("contact_limit")),
            F.when(F.col("_last") >= F.date_sub(day, quiet_days), F.lit("quiet_period")),
        )
    )
    return joined.select("subscriber_key", F.explode(reasons).alias("reason"))


def take_ranked(candidates_df: DataFrame, size_cap: int, score_col: str = "rank_score") -> DataFrame:
    """The ``size_cap`` best candidates by ``score_col`` (highest first; ties and missing scores
    last, broken by subscriber key so reruns pick the same), with ``rank`` 1..n."""
    order = Window.orderBy(F.col(score_col).desc_nulls_last(), F.col("subscriber_key"))
    return candidates_df.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= size_cap)
