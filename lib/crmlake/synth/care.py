"""Customer care: contacts (rising with complaint propensity, after poor network days and as
churn approaches) and the surveys that follow them (CSAT) or sample the base (NPS)."""

from __future__ import annotations

import math

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from crmlake.core.settings import IdentityConfig
from crmlake.synth.draws import (
    _at,
    _case,
    _date_str,
    _hour_sec,
    _int_below,
    _key,
    _lit,
    _lognormal,
    _normal,
    _pick,
    _ts_str,
    _u,
    _x,
)
from crmlake.synth.msisdn import _msisdn_as_exported
from crmlake.synth.params import (
    CANCELLATION_SHARE_MAX,
    CARE_CHANNEL_MIX,
    CARE_REASON_MIX,
    CHURN_CARE_BOOST,
    COMMENT_RATE,
    COMMENTS,
    COMPLAINT_REASONS,
    COMPLAINT_SHARE,
    CSAT_DELAY_S,
    CSAT_ESCALATION_PENALTY,
    CSAT_MEAN,
    CSAT_SD,
    DAYS_PER_MONTH,
    ESCALATION_HANDLE_FACTOR,
    ESCALATION_RESOLVED,
    ESCALATION_UNRESOLVED,
    FCR_RATE,
    HANDLE_MEDIAN_S,
    HANDLE_SIGMA,
    HOUR_WEIGHTS_OFFICE,
    MAX_RESOLVE,
    MIN_AGENTS,
    NETWORK_REASON_SHARE,
    NETWORK_REASONS,
    NOTE_LANGUAGES,
    NOTES,
    NPS_BASE,
    NPS_CHURN_HORIZON_DAYS,
    NPS_CHURN_PENALTY,
    NPS_COMPLAINT_PENALTY,
    NPS_POOR_NETWORK_PENALTY,
    NPS_SD,
    OTHER_COMPLAINT_SHARE,
    OTHER_LANGUAGE_NOTES,
    POOR_NETWORK_CARE_BOOST,
    POOR_NETWORK_RESOLVE_FACTOR,
    RESOLVE_BASE,
    SECONDS_PER_DAY,
    SELF_SERVICE_CHANNELS,
    SUBSCRIBERS_PER_AGENT,
    GenParams,
)


def care_df(sub_days_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    """Customer-care contacts (good rows, typed for JSON). Contacts rise with complaint
    propensity, after a poor network day in the home cell and as churn approaches."""
    rate = (
        f"complaint_propensity * {p.care_contact_rate!r}D"
        f" * (1D + CASE WHEN is_poor_recent THEN {POOR_NETWORK_CARE_BOOST!r}D ELSE 0D END)"
        f" * (1D + fade_progress * {CHURN_CARE_BOOST!r}D)"
    )
    df = sub_days_df.where(_x(f"{_u('bk', 'care')} < {rate}"))
    df = df.withColumn("rk", _x(_key(p.seed, "care", "sub_id", "day")))
    reason = (
        f"CASE WHEN fade_progress > 0 AND {_u('rk', 'cancel')} < fade_progress * {CANCELLATION_SHARE_MAX!r}D"
        " THEN 'cancellation'"
        f" WHEN is_poor_recent AND {_u('rk', 'network_reason')} < {NETWORK_REASON_SHARE!r}D"
        f" THEN {_pick(_u('rk', 'reason'), NETWORK_REASONS)}"
        f" WHEN plan_type = 'prepaid' THEN {_pick(_u('rk', 'reason'), CARE_REASON_MIX['prepaid'])}"
        f" ELSE {_pick(_u('rk', 'reason'), CARE_REASON_MIX['postpaid'])} END"  # postpaid
    )
    df = df.withColumns({"reason": _x(reason), "channel": _x(_pick(_u("rk", "channel"), CARE_CHANNEL_MIX))})
    complaint = (
        f"{_u('rk', 'complaint')} < CASE WHEN reason IN ({', '.join(_lit(r) for r in COMPLAINT_REASONS)})"
        f" THEN {COMPLAINT_SHARE!r}D ELSE {OTHER_COMPLAINT_SHARE!r}D END"
    )
    resolve = (
        f"least({MAX_RESOLVE!r}D, {RESOLVE_BASE!r}D / sqrt(complaint_propensity))"
        " * CASE WHEN is_poor_recent AND reason IN ('network_coverage', 'data_speed')"
        f" THEN {POOR_NETWORK_RESOLVE_FACTOR!r}D ELSE 1D END"
    )
    df = df.withColumns({
        "is_complaint": _x(complaint),
        "is_resolved": _x(f"{_u('rk', 'resolved')} < {resolve}"),
        "sec": _x(_hour_sec("rk", "care_time", HOUR_WEIGHTS_OFFICE)),
        "language": _x(_pick(_u("rk", "language"), NOTE_LANGUAGES)),
    })  # fmt: skip
    df = df.withColumn("escalation_level", _x(
        f"CAST(CASE WHEN is_resolved THEN {_pick(_u('rk', 'escalation'), ESCALATION_RESOLVED)}"
        f" ELSE {_pick(_u('rk', 'escalation'), ESCALATION_UNRESOLVED)} END AS INT)"))  # fmt: skip
    handle = (
        f"{_lognormal('rk', 'handle', _case('channel', HANDLE_MEDIAN_S), HANDLE_SIGMA)}"
        f" * (1D + escalation_level * {ESCALATION_HANDLE_FACTOR!r}D)"
    )
    n_agents = max(MIN_AGENTS, p.subscribers // SUBSCRIBERS_PER_AGENT)
    self_service = ", ".join(_lit(c) for c in SELF_SERVICE_CHANNELS)
    notes = (
        f"CASE language WHEN 'en' THEN {_case('reason', {r: n[0] for r, n in NOTES.items()})}"
        f" WHEN 'fa' THEN {_case('reason', {r: n[1] for r, n in NOTES.items()})}"
        f" ELSE {_case('language', OTHER_LANGUAGE_NOTES)} END"  # tr, ja
    )
    return df.select(
        "sub_id", "nat", "day", "rk", "sec", "churn_day", F.col("date_str").alias("date"),
        _x("concat('I', date_compact, '-', sub_id)").alias("interaction_id"),
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date_str", "sec")).alias("started_at"),
        "channel", "reason", "is_complaint", "is_resolved",
        _x(f"is_resolved AND escalation_level = 0 AND {_u('rk', 'fcr')} < {FCR_RATE!r}D")
        .alias("is_first_contact_resolution"),
        "escalation_level",
        _x(f"CAST(least({SECONDS_PER_DAY}, floor({handle})) AS BIGINT)").alias("handle_time_s"),
        _x(f"CASE WHEN channel IN ({self_service}) THEN NULL"
           f" ELSE concat('AG', lpad(CAST({_int_below('rk', 'agent', n_agents)} AS STRING), 5, '0')) END")
        .alias("agent_id"),
        _x(notes).alias("notes"),
    ).withColumn("key", F.col("interaction_id"))  # fmt: skip


def surveys_df(care_good_df: DataFrame, subs_df: DataFrame, p: GenParams, ident: IdentityConfig) -> DataFrame:
    """CSAT (1-5) after some contacts, higher when resolved; relational NPS (0-10) for a sample
    of lines, lower for a poor home cell, complaint-prone lines and lines about to churn."""
    delay = f"{CSAT_DELAY_S[0]} + {_int_below('rk', 'csat_delay', CSAT_DELAY_S[1] - CSAT_DELAY_S[0])}"
    csat = care_good_df.where(_x(f"{_u('rk', 'csat')} < {_lit(p.csat_response_rate)}"))
    csat = csat.withColumns({
        "answered": _x(f"day * {SECONDS_PER_DAY}L + sec + handle_time_s + {delay}"),
        "srk": _x("xxhash64('csat', rk)"),
    })  # fmt: skip
    score = (
        f"CASE WHEN is_resolved THEN {CSAT_MEAN['resolved']!r}D ELSE {CSAT_MEAN['unresolved']!r}D END"
        f" - escalation_level * {CSAT_ESCALATION_PENALTY!r}D + {_normal('srk', 'csat_score')} * {CSAT_SD!r}D"
    )
    csat = csat.select(
        "sub_id", "nat", "churn_day", F.col("srk").alias("rk"),
        _x(f"CAST(answered div {SECONDS_PER_DAY} AS INT)").alias("answer_day"),
        _x(f"CAST(answered % {SECONDS_PER_DAY} AS INT)").alias("answer_sec"),
        _x("concat('S-', interaction_id)").alias("survey_id"),
        F.lit("csat").alias("survey_type"), "interaction_id",
        _x(f"CAST(least(5, greatest(1, round({score}))) AS INT)").alias("score"),
    )  # fmt: skip

    nps = _nps_sample(subs_df, p, 0)
    for block in range(1, math.ceil(p.total_days / p.days)):  # the days of continuations
        nps = nps.unionByName(_nps_sample(subs_df, p, block))
    nps = nps.where("activation_day <= answer_day")
    score = (
        f"{NPS_BASE!r}D"
        f" - CASE WHEN is_home_cell_poor THEN {NPS_POOR_NETWORK_PENALTY!r}D ELSE 0D END"
        f" - greatest(0D, complaint_propensity - 1D) * {NPS_COMPLAINT_PENALTY!r}D"
        f" - CASE WHEN churn_day - answer_day <= {NPS_CHURN_HORIZON_DAYS} THEN {NPS_CHURN_PENALTY!r}D ELSE 0D END"
        f" + {_normal('rk', 'nps_score')} * {NPS_SD!r}D"
    )
    nps = nps.select(
        "sub_id", "nat", "churn_day", "rk", "answer_day",
        _x(_hour_sec("rk", "nps_time", HOUR_WEIGHTS_OFFICE)).alias("answer_sec"),
        _x(f"concat('S-N', replace({_date_str(p, 'answer_day')}, '-', ''), '-', sub_id)").alias("survey_id"),
        F.lit("nps").alias("survey_type"), F.lit(None).cast("string").alias("interaction_id"),
        _x(f"CAST(least(10, greatest(0, round({score}))) AS INT)").alias("score"),
    )  # fmt: skip

    rows = csat.unionByName(nps).where(f"answer_day < {p.total_days} AND (churn_day IS NULL OR answer_day < churn_day)")
    band = (
        "CASE WHEN survey_type = 'csat'"
        " THEN CASE WHEN score <= 2 THEN 'low' WHEN score = 3 THEN 'mid' ELSE 'high' END"
        " ELSE CASE WHEN score <= 6 THEN 'low' WHEN score <= 8 THEN 'mid' ELSE 'high' END END"  # nps
    )
    comments = " ".join(
        f"WHEN {_lit(b)} THEN {_at(texts, _int_below('rk', 'comment_text', len(texts)))}"
        for b, texts in COMMENTS.items()
    )
    rows = rows.withColumn("date", _x(_date_str(p, "answer_day")))
    return rows.select(
        "sub_id", "nat", F.col("answer_day").alias("day"), "rk", "date",
        "survey_id",
        _x(_msisdn_as_exported("nat", _u("rk", "msisdn_form"), ident)).alias("msisdn"),
        _x(_ts_str("date", "answer_sec")).alias("answered_at"),
        "survey_type", "interaction_id", "score",
        _x(f"CASE WHEN {_u('rk', 'has_comment')} < {COMMENT_RATE!r}D THEN CASE {band} {comments} END END")
        .alias("comment"),
    ).withColumn("key", F.col("survey_id"))  # fmt: skip


def _nps_sample(subs_df: DataFrame, p: GenParams, block: int) -> DataFrame:
    """The lines asked for an NPS in the ``block``-th stretch of ``p.days`` days (block 0 is the
    original window; each continuation's stretch has draws of its own, so it does not move the
    answers of days already generated)."""
    suffix = f":{block}" if block else ""
    nps_share = min(1.0, p.nps_monthly_share * p.days / DAYS_PER_MONTH)
    return subs_df.where(_x(f"{_u('sk', 'nps' + suffix)} < {nps_share!r}D")).withColumns({
        "answer_day": _x(f"{block * p.days} + {_int_below('sk', 'nps_day' + suffix, p.days)}"),
        "rk": _x(f"xxhash64({_lit('nps' + suffix)}, sk)"),
    })  # fmt: skip
