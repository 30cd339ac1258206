"""The population: subscribers with their attributes and latent traits, their churn and the
frames derived from them day by day (subscriber-days, the daily subscriber extract).

Subscribers carry latent traits (usage intensity, complaint propensity, price sensitivity,
competitor exposure, home-cell quality, uplift type) and a churn date drawn from competing
cause-specific hazards; campaign contact (:mod:`crmlake.synth.campaigns`) then keeps persuadables
and pushes sleeping dogs away. Usage and top-ups fade before churn and stop at it.
"""

from __future__ import annotations

import math

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import (
    Sql,
    _at,
    _bool_str,
    _case,
    _date,
    _date_str,
    _int_below,
    _key,
    _lit,
    _mean_one,
    _normal,
    _pick,
    _sql,
    _u,
    _x,
)
from crmlake.synth.msisdn import _e164, _msisdn_as_exported, _national_number
from crmlake.synth.network import _cell_day, _cell_id, _cell_is_poor, _cell_key, _region_attr
from crmlake.synth.params import (
    AGE_MIX,
    B2B_LINES_PER_ACCOUNT,
    B2B_NAMED_USER_SHARE,
    B2B_SLEEPING_DOG_FACTOR,
    B2B_TARIFFS,
    BACKLASH_CAUSE,
    BACKLASH_LAG_DAYS,
    BILL_CYCLE_DAYS,
    CHURN_CAUSES,
    CHURN_REASONS_BY_CAUSE,
    COMPANY_NAMES,
    COMPETITOR_SIGMA,
    COMPLAINT_SIGMA,
    DAYS_PER_MONTH,
    DEFAULT_MONTH,
    DEVICE_BRANDS,
    DEVICE_TYPE_MIX,
    FIRST_NAMES,
    GENDER_MIX,
    LAST_NAMES,
    MAIN_CITY_SHARE,
    MAX_EVENTS_PER_DAY,
    MAX_INTENSITY,
    MAX_TENURE_DAYS,
    MIN_LIFE_DAYS,
    NAME_CULTURES,
    OBJECTIVE_CAUSES,
    PAYMENT_DUE_DAYS,
    POOR_CELL_RISK,
    POOR_DAY_USAGE_FACTOR,
    POSTPAID_TARIFFS,
    PREPAID_CHURN_REASON,
    PREPAID_TARIFFS,
    PRICE_SIGMA,
    REGIONS,
    ROAMING_USAGE_FACTOR,
    SHORT_TENURE_RISK,
    SUSPEND_AFTER_DAYS,
    SUSPENDED_USAGE_FACTOR,
    UPLIFT_CHURN_RISK,
    WEEKDAY_NUMBERS,
    YOUTH_PREPAID_TARIFFS,
    GenParams,
)

# --- subscribers ----------------------------------------------------------------------------------------


def subscriber_traits_df(spark: SparkSession, p: GenParams) -> DataFrame:
    """One row per subscriber: attributes and their changes in the window, latent traits and
    the raw (uncalibrated) churn hazard of each cause. ``sk`` is the subscriber's random key."""
    n_parts = max(1, min(spark.sparkContext.defaultParallelism * 4, p.subscribers // 25_000 + 1))
    df = spark.range(p.subscribers, numPartitions=n_parts).select(F.col("id").alias("sub_id"))
    df = df.withColumn("sk", _x(_key(p.seed, "subscriber", "sub_id")))
    regions = [(i, r.weight) for i, r in enumerate(REGIONS[: p.regions])]
    b2c_prepaid = min(1.0, p.prepaid_share / max(1e-9, 1.0 - p.b2b_share))
    tenure = f"least({MAX_TENURE_DAYS}, floor(-ln(1D - {_u('sk', 'tenure')}) * {p.mean_tenure_days!r}D))"
    n_accounts = max(1, round(p.subscribers * p.b2b_share / B2B_LINES_PER_ACCOUNT))
    df = df.withColumns({
        "nat": _x(_national_number(p, "sub_id")),
        "is_b2b": _x(f"{_u('sk', 'b2b')} < {_lit(p.b2b_share)}"),
        "region_idx": _x(_pick(_u("sk", "region"), regions)),
        "home_cell_idx": _x(_int_below("sk", "home_cell", p.cells_per_region)),
        "age_band": _x(_pick(_u("sk", "age"), AGE_MIX)),
        "device_type": _x(_pick(_u("sk", "device_type"), DEVICE_TYPE_MIX)),
        "activation_day": _x(
            f"CAST(CASE WHEN {_u('sk', 'new')} < {_lit(p.new_activation_share)}"
            f" THEN {_int_below('sk', 'activation', p.days)} ELSE -1 - {tenure} END AS INT)"),
        "intensity": _x(f"least({MAX_INTENSITY!r}D, exp({_normal('sk', 'intensity')} * {p.intensity_sigma!r}D))"),
        "complaint_propensity": _x(_mean_one("sk", "complaints", COMPLAINT_SIGMA)),
        "price_sensitivity": _x(_mean_one("sk", "price", PRICE_SIGMA)),
        "competitor_draw": _x(_mean_one("sk", "competitor", COMPETITOR_SIGMA)),
        "culture": _x(_pick(_u("sk", "culture"), NAME_CULTURES)),
        "is_marketing_consent": _x(f"{_u('sk', 'consent')} < {_lit(p.consent_share)}"),
        "is_do_not_contact": _x(f"{_u('sk', 'dnc')} < {_lit(p.do_not_contact_share)}"),
        "bill_cycle_day": _x(f"{_int_below('sk', 'bill_cycle', BILL_CYCLE_DAYS)} + 1"),
        "account_no": _x(_int_below("sk", "account", n_accounts)),
        "device_change_day": _x(_change_day(p, "device_change")),
        "tariff_change_day": _x(_change_day(p, "tariff_change")),
        "consent_optout_day": _x(_change_day(p, "optout")),
    })  # fmt: skip
    company = _at(COMPANY_NAMES, f"pmod(account_no, {len(COMPANY_NAMES)})")
    df = df.withColumns({
        "customer_type": _x("CASE WHEN is_b2b THEN 'B2B' ELSE 'B2C' END"),
        "plan_type": _x(f"CASE WHEN is_b2b OR {_u('sk', 'plan')} >= {b2c_prepaid!r}D"
                        " THEN 'postpaid' ELSE 'prepaid' END"),
        "gender": _x(f"CASE WHEN is_b2b THEN {_pick(_u('sk', 'gender'), GENDER_MIX['B2B'])}"
                     f" ELSE {_pick(_u('sk', 'gender'), GENDER_MIX['B2C'])} END"),
        "device_brand": _x(_brand(_u("sk", "brand"))),
        "device_brand_new": _x(_brand(_u("sk", "brand_new"))),
        "region": _x(_region_attr(p, "name", "region_idx")),
        "city": _x(_city(p, _u("sk", "city"))),
        "home_cell_id": _x(_cell_id(p, "region_idx", "home_cell_idx")),
        "is_home_cell_poor": _x(_cell_is_poor(p, _cell_key(p, "region_idx", "home_cell_idx"))),
        "region_quality": _x(_region_attr(p, "quality", "region_idx")),
        "competitor_exposure": _x(f"{_region_attr(p, 'competition', 'region_idx')} * competitor_draw"),
        "customer_id": _x("concat('C', lpad(CAST(sub_id AS STRING), 9, '0'))"),
        "account_id": _x("CASE WHEN is_b2b THEN concat('B', lpad(CAST(account_no AS STRING), 7, '0'))"
                         " ELSE concat('A', lpad(CAST(sub_id AS STRING), 9, '0')) END"),
        "first_name": _x(f"CASE WHEN is_b2b AND {_u('sk', 'named_user')} >= {B2B_NAMED_USER_SHARE!r}D"
                         f" THEN NULL ELSE {_name(FIRST_NAMES, _u('sk', 'first_name'))} END"),
        "last_name": _x(f"CASE WHEN is_b2b THEN {company} ELSE {_name(LAST_NAMES, _u('sk', 'last_name'))} END"),
        "consent_optout_day": _x("CASE WHEN is_marketing_consent THEN consent_optout_day END"),
        "uplift_type": _x(_pick(_u("sk", "uplift"), [
            ("persuadable", _sql(f"{p.uplift_mix['persuadable']!r}D * price_sensitivity")),
            ("sure_thing", p.uplift_mix["sure_thing"]),
            ("lost_cause", _sql(f"{p.uplift_mix['lost_cause']!r}D * complaint_propensity")),
            ("sleeping_dog", _sql(f"{p.uplift_mix['sleeping_dog']!r}D"
                                  f" * CASE WHEN is_b2b THEN {B2B_SLEEPING_DOG_FACTOR!r}D ELSE 1D END")),
        ])),
        "is_short_tenure": _x(f"activation_day > {-p.short_tenure_days}"),
    })  # fmt: skip
    # Non-payers stop paying from the bill of DEFAULT_MONTH; the line is suspended after its due date.
    month_start = p.start.replace(day=1).isoformat()
    default_bill = f"date_add(add_months(DATE'{month_start}', {DEFAULT_MONTH}), bill_cycle_day - 1)"
    payers = [("on_time", 1.0 - p.late_payer_share - p.non_payer_share),
              ("late", p.late_payer_share), ("non_payer", p.non_payer_share)]  # fmt: skip
    df = df.withColumns({
        "tariff": _x(_tariff(_u("sk", "tariff"))),
        "tariff_new": _x(_tariff(_u("sk", "tariff_new"))),
        "payer_type": _x(f"CASE WHEN plan_type = 'postpaid' THEN {_pick(_u('sk', 'payer'), payers)} END"),
        "suspended_from_day": _x(
            f"CASE WHEN plan_type = 'postpaid' AND {_pick(_u('sk', 'payer'), payers)} = 'non_payer'"
            f" THEN datediff({default_bill}, DATE'{p.start.isoformat()}')"
            f" + {PAYMENT_DUE_DAYS + SUSPEND_AFTER_DAYS} END"),
    })  # fmt: skip
    # Cause-specific hazards (competing risks); their sum is calibrated to monthly_churn later.
    hazards = {
        "short_tenure": f"CASE WHEN is_short_tenure THEN {SHORT_TENURE_RISK!r}D ELSE 1D END",
        "poor_network": f"CASE WHEN is_home_cell_poor THEN {POOR_CELL_RISK!r}D ELSE 1D END / region_quality",
        "complaints": "complaint_propensity",
        "price_pressure": "price_sensitivity",
        "competitor_offer": "competitor_exposure",
    }  # fmt: skip
    mix = p.churn_cause_mix
    df = df.withColumns({f"hazard_{c}": _x(f"({hazards[c]}) * {mix[c]!r}D") for c in CHURN_CAUSES})
    total = " + ".join(f"hazard_{c}" for c in CHURN_CAUSES)
    return df.withColumn("raw_hazard", _x(f"({total}) * {_case('uplift_type', UPLIFT_CHURN_RISK)}"))


def _brand(u: Sql) -> Sql:
    whens = " ".join(f"WHEN {_lit(t)} THEN {_pick(u, brands)}" for t, brands in DEVICE_BRANDS.items())
    return _sql(f"CASE device_type {whens} END")


def _tariff(u: Sql) -> Sql:
    return _sql(
        f"CASE WHEN is_b2b THEN {_pick(u, B2B_TARIFFS)}"
        f" WHEN plan_type = 'postpaid' THEN {_pick(u, POSTPAID_TARIFFS)}"
        f" WHEN age_band = '18-24' THEN {_pick(u, YOUTH_PREPAID_TARIFFS)}"
        f" ELSE {_pick(u, PREPAID_TARIFFS)} END"  # prepaid, not youth
    )


def _city(p: GenParams, u: Sql) -> Sql:
    """The main city of the region for MAIN_CITY_SHARE of the lines, else one of the others."""
    whens = []
    for i, region in enumerate(REGIONS[: p.regions]):
        main, others = region.cities[0], region.cities[1:]
        if others:
            rest = _at(others, f"CAST(floor(({u} - {MAIN_CITY_SHARE!r}D) / {1 - MAIN_CITY_SHARE!r}D"
                               f" * {len(others)}) AS INT)")  # fmt: skip
            value = f"CASE WHEN {u} < {MAIN_CITY_SHARE!r}D THEN {_lit(main)} ELSE {rest} END"
        else:
            value = _lit(main)
        whens.append(f"WHEN {i} THEN {value}")
    return _sql(f"CASE region_idx {' '.join(whens)} END")


def _name(pools: dict[str, tuple[str, ...]], u: Sql) -> Sql:
    whens = " ".join(
        f"WHEN {_lit(culture)} THEN {_at(pool, f'CAST(floor({u} * {len(pool)}) AS INT)')}"
        for culture, pool in pools.items()
    )
    return _sql(f"CASE culture {whens} END")


def _change_day(p: GenParams, salt: str) -> Sql:
    """The day an attribute changes inside the window, for attribute_change_rate of the lines."""
    return _sql(
        f"CASE WHEN {_u('sk', salt)} < {_lit(p.attribute_change_rate)}"
        f" THEN {_int_below('sk', salt + ':day', p.days)} END"
    )


def stable_mean(df: DataFrame, col: str) -> float:
    """The mean of a column, rounded so that the order of summation cannot change later draws."""
    value = df.agg(F.avg(col)).first()[0]
    return float(f"{value:.10g}") if value else 1.0


def with_base_churn(df: DataFrame, p: GenParams, mean_raw_hazard: float) -> DataFrame:
    """Adds ``base_churn_day`` (a day index; null when the line does not churn in the horizon),
    before any campaign, and its cause ``base_churn_cause``, drawn among the competing causes in
    proportion to their hazards. Needs the columns of :func:`subscriber_traits_df`.

    The horizon runs from the grace period before the window (so inactivity deactivations fall
    inside it) to the look-ahead after the days generated (so they show the fade and the NPS of
    later churners, and generating more days later changes none of them).
    """
    if p.monthly_churn <= 0:
        return df.withColumns({
            "monthly_hazard": F.lit(0.0),
            "base_churn_day": F.lit(None).cast("int"),
            "base_churn_cause": F.lit(None).cast("string"),
        })  # fmt: skip
    daily = -math.log(1.0 - p.monthly_churn) / DAYS_PER_MONTH / mean_raw_hazard
    df = df.withColumn("monthly_hazard", _x(f"raw_hazard * {daily * DAYS_PER_MONTH!r}D"))
    span_start = f"greatest({-p.prepaid_grace_days}, activation_day + {MIN_LIFE_DAYS})"
    at = f"{span_start} - ln(1D - {_u('sk', 'churn_time')}) / (raw_hazard * {daily!r}D)"
    churn_day = _sql(f"CASE WHEN {at} < {p.total_days + p.churn_lookahead_days} THEN CAST(floor({at}) AS INT) END")
    cause = _pick(_u("sk", "churn_cause"), [(c, Sql(f"hazard_{c}")) for c in CHURN_CAUSES])
    df = df.withColumn("base_churn_day", _x(churn_day))
    return df.withColumn("base_churn_cause", _x(f"CASE WHEN base_churn_day IS NOT NULL THEN {cause} END"))


def with_final_churn(
    subs_df: DataFrame, assignments_df: DataFrame, p: GenParams, list_assignments_df: DataFrame | None = None
) -> DataFrame:
    """Applies the campaigns to churn: a delivered contact keeps a persuadable churner
    (rescue_rate) and pushes a sleeping dog to churn a few days later (backlash_rate). Adds
    churn_day and churn_cause, the fade window (fade_start ≤ day < fade_stop, fading towards
    fade_anchor), deactivation_day and churn_reason.

    ``list_assignments_df`` (published lists honoured by a continuation, contacted after every
    campaign of the generator's own) then acts on that outcome, see :func:`_with_list_effects`;
    list_contact_day and list_objective say which list contact did (null without one)."""
    first_contact = assignments_df.where("is_delivered").groupBy("sub_id").agg(F.min("campaign_day").alias("treat_day"))
    df = subs_df.join(first_contact, on="sub_id", how="left")  # sub_id is unique on both sides
    lag_lo, lag_hi = BACKLASH_LAG_DAYS
    df = df.withColumn(
        "backlash_day", _x(f"treat_day + {lag_lo} + {_int_below('sk', 'backlash_lag', lag_hi - lag_lo + 1)}")
    )
    df = df.withColumns({
        "is_rescued": _x(
            f"coalesce(uplift_type = 'persuadable' AND base_churn_day > treat_day"
            f" AND {_u('sk', 'rescue')} < {_lit(p.rescue_rate)}, false)"),
        "is_backlash": _x(
            f"coalesce(uplift_type = 'sleeping_dog' AND treat_day IS NOT NULL"
            f" AND (base_churn_day IS NULL OR base_churn_day > backlash_day)"
            f" AND {_u('sk', 'backlash')} < {_lit(p.backlash_rate)}, false)"),
    })  # fmt: skip
    df = df.withColumns({
        "churn_day": _x("CASE WHEN is_rescued THEN NULL WHEN is_backlash THEN backlash_day"
                        " ELSE base_churn_day END"),
        "churn_cause": _x(f"CASE WHEN is_rescued THEN NULL WHEN is_backlash THEN {_lit(BACKLASH_CAUSE)}"
                          " ELSE base_churn_cause END"),
    })  # fmt: skip
    df = df.withColumn("fade_anchor", _x("CASE WHEN is_rescued THEN base_churn_day ELSE churn_day END"))
    df = df.withColumns({
        "fade_start": _x(f"CASE WHEN is_backlash THEN greatest(churn_day - {p.fade_days}, treat_day)"
                         f" ELSE fade_anchor - {p.fade_days} END"),
        "fade_stop": _x("CASE WHEN is_rescued THEN treat_day ELSE churn_day END"),
    })  # fmt: skip
    if list_assignments_df is None:
        df = df.withColumns({"list_contact_day": F.lit(None).cast("int"),
                             "list_objective": F.lit(None).cast("string")})  # fmt: skip
    else:
        df = _with_list_effects(df, list_assignments_df, p)
    reasons = " ".join(
        f"WHEN {_lit(cause)} THEN {_pick(_u('sk', 'churn_reason'), options)}"
        for cause, options in CHURN_REASONS_BY_CAUSE.items()
    )
    return df.withColumns({
        "deactivation_day": _x(f"CASE WHEN plan_type = 'postpaid' THEN churn_day"
                               f" ELSE churn_day + {p.prepaid_grace_days} END"),
        "churn_reason": _x(f"CASE WHEN churn_day IS NULL THEN NULL"
                           f" WHEN plan_type = 'prepaid' THEN {_lit(PREPAID_CHURN_REASON)}"
                           f" ELSE CASE churn_cause {reasons} END END"),
    })  # fmt: skip


def _with_list_effects(df: DataFrame, list_assignments_df: DataFrame, p: GenParams) -> DataFrame:
    """The first delivered contact of a published list (day ``list_contact_day``, objective
    ``list_objective``) keeps a persuadable whose churn comes after it and whose cause the
    objective addresses (:data:`OBJECTIVE_CAUSES`, rescue_rate), and pushes a sleeping dog to
    churn a few days after it (backlash_rate) unless it churns before anyway. Sure things, lost
    causes and lines not contacted keep their churn. The contacts come after every day generated
    before, so no earlier day changes: a kept line's fade stops at the contact, a pushed line
    fades from the contact (or goes on fading) towards its new churn day."""
    first = (
        list_assignments_df.where("is_delivered")
        .groupBy("sub_id")
        .agg(F.min(F.struct("campaign_day", "objective")).alias("first_list_contact"))
    )
    df = df.join(first, on="sub_id", how="left").withColumns({
        "list_contact_day": F.col("first_list_contact.campaign_day"),
        "list_objective": F.col("first_list_contact.objective"),
    }).drop("first_list_contact")  # fmt: skip
    addressed = " ".join(
        f"WHEN {_lit(objective)} THEN churn_cause IN ({', '.join(_lit(c) for c in causes)})"
        for objective, causes in OBJECTIVE_CAUSES.items()
    )
    lag_lo, lag_hi = BACKLASH_LAG_DAYS
    df = df.withColumn(
        "list_backlash_day",
        _x(f"list_contact_day + {lag_lo} + {_int_below('sk', 'list_backlash_lag', lag_hi - lag_lo + 1)}"),
    )
    df = df.withColumns({
        "is_list_rescued": _x(
            f"coalesce(uplift_type = 'persuadable' AND churn_day > list_contact_day"
            f" AND CASE list_objective {addressed} ELSE false END"
            f" AND {_u('sk', 'list_rescue')} < {_lit(p.rescue_rate)}, false)"),
        "is_list_backlash": _x(
            f"coalesce(uplift_type = 'sleeping_dog' AND list_contact_day IS NOT NULL"
            f" AND (churn_day IS NULL OR churn_day > list_backlash_day)"
            f" AND {_u('sk', 'list_backlash')} < {_lit(p.backlash_rate)}, false)"),
    })  # fmt: skip
    # every expression below reads the columns as they were before this step
    return df.withColumns({
        "churn_day": _x("CASE WHEN is_list_rescued THEN NULL WHEN is_list_backlash THEN list_backlash_day"
                        " ELSE churn_day END"),
        "churn_cause": _x(f"CASE WHEN is_list_rescued THEN NULL WHEN is_list_backlash THEN {_lit(BACKLASH_CAUSE)}"
                          " ELSE churn_cause END"),
        "fade_anchor": _x("CASE WHEN is_list_backlash THEN list_backlash_day ELSE fade_anchor END"),
        "fade_start": _x(f"CASE WHEN is_list_backlash AND NOT (churn_day IS NOT NULL AND fade_start < list_contact_day)"
                         f" THEN greatest(list_backlash_day - {p.fade_days}, list_contact_day) ELSE fade_start END"),
        "fade_stop": _x("CASE WHEN is_list_rescued THEN list_contact_day WHEN is_list_backlash THEN list_backlash_day"
                        " ELSE fade_stop END"),
        "is_rescued": _x("is_rescued OR is_list_rescued"),
        "is_backlash": _x("is_backlash OR is_list_backlash"),
    }).drop("list_backlash_day", "is_list_rescued", "is_list_backlash")  # fmt: skip


SUBSCRIBER_DAY_COLUMNS = (
    "sub_id", "day", "bk", "nat", "plan_type", "tariff_now", "device_type", "region_idx", "home_cell_id",
    "date_str", "date_compact", "is_roaming", "intensity", "complaint_propensity", "churn_day",
    "fade_progress", "is_poor_recent", "lam", "n", "n_on_time", "late_day",
)  # fmt: skip


def subscriber_days_df(subs_df: DataFrame, days_df: DataFrame, p: GenParams) -> DataFrame:
    """One row per subscriber per day the line is live (activated, not yet churned), with the
    day's expected usage ``lam``, the event count ``n`` and its late part (arriving in the file
    of ``late_day``), and the care drivers. ``bk`` is the row's random key."""
    df = subs_df.crossJoin(F.broadcast(days_df)).where(
        "activation_day <= day AND (churn_day IS NULL OR day < churn_day)"
    )
    df = df.withColumn("bk", _x(_key(p.seed, "subscriber_day", "sub_id", "day")))
    weekend = ", ".join(str(WEEKDAY_NUMBERS[d]) for d in p.weekend_days) or "0"
    today = _cell_day(p, "region_idx", "home_cell_idx", "day")["is_poor_day"]
    yesterday = _cell_day(p, "region_idx", "home_cell_idx", "day - 1")["is_poor_day"]
    df = df.withColumns({
        "date_str": _x(_date_str(p, "day")),
        "tariff_now": _x("CASE WHEN tariff_change_day <= day THEN tariff_new ELSE tariff END"),
        "fade_progress": _x("CASE WHEN day >= fade_start AND day < fade_stop"
                            " THEN least(1D, (day - fade_start) / greatest(1, fade_anchor - fade_start))"
                            " ELSE 0D END"),
        "is_poor_today": _x(today),
        "is_poor_recent": _x(f"{today} OR {yesterday}"),
        "is_suspended": _x("coalesce(suspended_from_day <= day, false)"),
        "is_roaming": _x(f"{_u('bk', 'roaming')} < {_lit(p.roaming_rate)}"),
        "is_weekend": _x(f"dayofweek({_date(p, 'day')}) IN ({weekend})"),
    })  # fmt: skip
    lam = (
        f"intensity * {p.events_per_day!r}D"
        f" * CASE WHEN is_weekend THEN {p.weekend_factor!r}D ELSE 1D END"
        f" * (1D - fade_progress * {1.0 - p.fade_floor!r}D)"
        f" * CASE WHEN is_suspended THEN {SUSPENDED_USAGE_FACTOR!r}D ELSE 1D END"
        f" * CASE WHEN is_poor_today THEN {POOR_DAY_USAGE_FACTOR!r}D ELSE 1D END"
        f" * CASE WHEN is_roaming THEN {ROAMING_USAGE_FACTOR!r}D ELSE 1D END"
        f" * {_mean_one('bk', 'daily_noise', p.daily_noise_sigma)}"
    )
    df = df.withColumn("lam", _x(lam))
    df = df.withColumn("n", _x(f"CAST(least({MAX_EVENTS_PER_DAY}, floor(lam + {_u('bk', 'n')})) AS INT)"))
    df = df.withColumns({
        "n_late": _x(f"CAST(least(n, floor(n * {p.late_rate!r}D + {_u('bk', 'n_late')})) AS INT)"),
        "late_day": _x(f"day + 1 + {_int_below('bk', 'late_lag', p.max_late_days)}"),
        "date_compact": _x("replace(date_str, '-', '')"),
    })  # fmt: skip
    df = df.withColumn("n_on_time", F.col("n") - F.col("n_late"))
    return df.select(*SUBSCRIBER_DAY_COLUMNS)  # what usage, recharges and care need: it is cached


# --- subscribers extract ----------------------------------------------------------------------------


def subscriber_extract_df(subs_df: DataFrame, days_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    """The daily full extract: every line activated on or before the day, with its status and
    attributes as of that day. The contract's fields as strings plus row bookkeeping."""
    df = subs_df.crossJoin(F.broadcast(days_df)).where("activation_day <= day")
    df = df.withColumns({
        "rk": _x(_key(p.seed, "extract", "sub_id", "day")),
        "date": _x(_date_str(p, "day")),
        "is_deactivated": _x("coalesce(deactivation_day <= day, false)"),
    })  # fmt: skip
    status = (
        "CASE WHEN is_deactivated THEN 'deactivated'"
        " WHEN coalesce(suspended_from_day <= day, false) THEN 'suspended' ELSE 'active' END"
    )
    consent = "is_marketing_consent AND NOT coalesce(consent_optout_day <= day, false)"
    return df.select(
        "sub_id", "nat", "day", "rk", "date",
        _x(_e164("nat", ident)).alias("key"),
        _x(_msisdn_as_exported("nat", _u("sk", "msisdn_form"), ident)).alias("msisdn"),
        "customer_id",
        F.col("date").alias("extract_date"),
        _x(status).alias("status"),
        "plan_type",
        _x("CASE WHEN tariff_change_day <= day THEN tariff_new ELSE tariff END").alias("tariff"),
        "customer_type", "account_id", "region", "city", "home_cell_id",
        _x(_date_str(p, "activation_day")).alias("activation_date"),
        _x(f"CASE WHEN is_deactivated THEN {_date_str(p, 'deactivation_day')} END").alias("deactivation_date"),
        _x("CASE WHEN is_deactivated THEN churn_reason END").alias("churn_reason"),
        "age_band", "gender",
        _x("CASE WHEN device_change_day <= day THEN device_brand_new ELSE device_brand END").alias("device_brand"),
        "device_type",
        _x(_bool_str(consent)).alias("is_marketing_consent"),
        _x(_bool_str("is_do_not_contact")).alias("is_do_not_contact"),
        "first_name", "last_name",
    )  # fmt: skip
