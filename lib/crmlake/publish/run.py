"""``crmlake publish``: the target lists of the campaigns active on a date, into
gold.campaign_targets.

What every campaign reads is one row per subscriber in the day's base: gold.features at the date,
with the churn score (probability, band, decile) of that date, the newest 12-month CLV and CLV at
risk, and the segment labels. Campaigns are served in priority order: a subscriber goes to the
first campaign that wants them on a day. Suppression and the contact policy apply before the cap
and the control draw, to treatment and control alike.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from crmlake.catalog import tables
from crmlake.catalog.registry import CAMPAIGN_TARGETS_SCHEMA
from crmlake.core.config import default_conf_dir
from crmlake.core.errors import ConfigError, StaleInputError, TableNotFoundError
from crmlake.core.log import log, stage
from crmlake.core.outcome import JobOutcome
from crmlake.core.settings import IdentityConfig, PublishConfig
from crmlake.gold.features import FEATURES, filter_in_base, lit_date
from crmlake.gold.segments import SCHEMES, SEGMENTS
from crmlake.publish.campaigns import Campaign, Definition, LakeView, check_against_lake, load_campaigns
from crmlake.publish.handoff import export_list
from crmlake.publish.jdbc import credentials, push, redacted
from crmlake.publish.targets import (
    TREATMENT,
    assign_groups,
    held_by_contact_policy,
    suppressed,
    take_ranked,
)
from crmlake.silver.erasure_register import erased_keys
from crmlake.silver.identity import keys_of_listed_numbers

CAMPAIGN_TARGETS = "gold.campaign_targets"
CHURN_SCORES = "gold.churn_scores"
CLV = "gold.clv"
UPLIFT_SCORES = "gold.uplift_scores"
# The column whose presence on the day says a model kind's scores were joined.
MODEL_COLUMNS = {"churn": "churn_probability", "uplift": "uplift"}
SUBSCRIBERS = "silver.subscribers"
CONTACTS = "silver.subscriber_contacts"
OPERATOR = "operator"


def campaigns_folder(params: PublishConfig) -> Path:
    folder = Path(params.campaigns_dir)
    return folder if folder.is_absolute() else default_conf_dir().parent / folder


def active(definitions: dict[str, Definition], d: dt.date, wanted: list[str] | None) -> list[Definition]:
    """The campaigns to publish on ``d``, in priority order (then id). Named ones must exist and
    be active."""
    if wanted:
        unknown = sorted(set(wanted) - set(definitions))
        if unknown:
            raise ConfigError(f"--campaign {unknown}: no such campaign (defined: {sorted(definitions)})")
        chosen = [definitions[w] for w in wanted]
        idle = [x.campaign.id for x in chosen if not _in_window(x.campaign, d)]
        if idle:
            raise ConfigError(f"campaign(s) {idle} are not active on {d} (see their start and end)")
    else:
        chosen = [x for x in definitions.values() if _in_window(x.campaign, d)]
    return sorted(chosen, key=lambda x: (x.campaign.priority, x.campaign.id))


def _in_window(c: Campaign, d: dt.date) -> bool:
    return (c.start is None or c.start <= d) and (c.end is None or d <= c.end)


def candidates_at(spark: SparkSession, root: str, d: dt.date) -> tuple[DataFrame, list[str]]:
    """One row per subscriber in the base at ``d`` with everything a campaign may read, and the
    models whose scores it holds (``name/version``)."""
    if not tables.exists(spark, root, FEATURES):
        raise TableNotFoundError(f"{FEATURES} does not exist under {root}: run `crmlake features --date {d}` first")
    day = lit_date(d)
    base_df = tables.read(spark, root, FEATURES).where(F.col("snapshot_date") == day)
    models: list[str] = []
    if tables.exists(spark, root, CHURN_SCORES):
        scores_df = tables.read(spark, root, CHURN_SCORES).where(
            (F.col("score_date") == day) & (F.col("source") == OPERATOR)
        )
        models = sorted(
            {f"{r[0]}/{r[1]}" for r in scores_df.select("model_name", "model_version").distinct().collect()}
        )
        if models:
            base_df = base_df.join(
                scores_df.select(
                    "subscriber_key",
                    F.col("probability").alias("churn_probability"),
                    "risk_band",
                    F.col("decile").alias("churn_decile"),
                ),
                on="subscriber_key",
                how="left",
            )
    if tables.exists(spark, root, UPLIFT_SCORES):
        uplift_df = tables.read(spark, root, UPLIFT_SCORES).where(F.col("score_date") == day)
        found = {f"{r[0]}/{r[1]}" for r in uplift_df.select("model_name", "model_version").distinct().collect()}
        if found:
            models = sorted({*models, *found})
            base_df = base_df.join(
                uplift_df.select("subscriber_key", "uplift", "uplift_decile"), on="subscriber_key", how="left"
            )
    if tables.exists(spark, root, CLV):
        clv_df = tables.read(spark, root, CLV).where((F.col("as_of_date") <= day) & (F.col("source") == OPERATOR))
        newest = clv_df.agg(F.max("as_of_date")).first()[0]
        if newest is not None and "clv_12m" in clv_df.columns:
            base_df = base_df.join(
                clv_df.where(F.col("as_of_date") == F.lit(newest)).select("subscriber_key", "clv_12m"),
                on="subscriber_key",
                how="left",
            )
    if "clv_12m" in base_df.columns and "churn_probability" in base_df.columns:
        base_df = base_df.withColumn("clv_at_risk", F.col("churn_probability") * F.col("clv_12m"))
    if tables.exists(spark, root, SEGMENTS):
        segments_df = tables.read(spark, root, SEGMENTS).where(F.col("snapshot_date") == day)
        extra = [s for s in SCHEMES if s in segments_df.columns and s not in base_df.columns]
        base_df = base_df.join(segments_df.select("subscriber_key", *extra), on="subscriber_key", how="left")
    return base_df, models


def lake_view(candidates_df: DataFrame, models: list[str]) -> LakeView:
    """What definitions may reference, read from the candidates' schema and the segment labels
    present on the day."""
    schemes = [s for s in SCHEMES if s in candidates_df.columns]
    labels: dict[str, set[str]] = {s: set() for s in schemes}
    if schemes:
        pairs = candidates_df.select(
            F.explode(F.array(*[F.struct(F.lit(s).alias("s"), F.col(s).alias("v")) for s in schemes])).alias("p")
        )
        for r in pairs.select("p.s", "p.v").distinct().collect():
            if r["v"] is not None:
                labels[r["s"]].add(r["v"])
    # a model kind is there when its scores were joined (models lists every joined name/version)
    kinds = {kind for kind, column in MODEL_COLUMNS.items() if column in candidates_df.columns} if models else set()
    return LakeView(columns=set(candidates_df.columns), segments=labels, models=kinds)


def eligible(candidates_df: DataFrame, c: Campaign) -> DataFrame:
    e = c.eligibility
    df = candidates_df
    for scheme, labels in e.segments.items():
        df = df.where(F.col(scheme).isin(list(labels)))
    if e.plan_types:
        df = df.where(F.col("plan_type").isin(list(e.plan_types)))
    for column, bounds in (("tenure_days", e.tenure_days), ("clv_12m", e.clv)):
        if bounds is not None:
            if bounds.min is not None:
                df = df.where(F.col(column) >= F.lit(bounds.min))
            if bounds.max is not None:
                df = df.where(F.col(column) <= F.lit(bounds.max))
    if e.risk_bands:
        df = df.where(F.col("risk_band").isin(list(e.risk_bands)))
    if e.where.strip():
        df = df.where(F.expr(e.where))  # a null predicate is not eligible
    return df


def rank_score(c: Campaign) -> F.Column:
    r = c.ranking
    if r.by == "expression":
        return F.expr(r.expression).cast("double")
    if r.by == "uplift":
        return F.col("uplift").cast("double")
    return F.col(r.by).cast("double")


def newest_master(spark: SparkSession, root: str, d: dt.date, max_age_days: int) -> tuple[DataFrame, dt.date]:
    """The subscriber master's current rows, refused when its newest extract is more than
    ``max_age_days`` older than ``d`` (consent read from a stale master could be wrong)."""
    if not tables.exists(spark, root, SUBSCRIBERS):
        raise TableNotFoundError(f"{SUBSCRIBERS} does not exist under {root}: consent cannot be checked")
    master_df = tables.read(spark, root, SUBSCRIBERS).where(F.col("is_current"))
    newest = master_df.agg(F.max("extract_date")).first()[0]
    if newest is None or (d - newest).days > max_age_days:
        raise StaleInputError(
            f"{SUBSCRIBERS}: the newest subscriber extract is {newest}, more than publish.max_master_age_days "
            f"({max_age_days}) before {d}; ingest the newest master first"
        )
    return master_df, newest


def past_contacts(spark: SparkSession, root: str, d: dt.date) -> DataFrame | None:
    if not tables.exists(spark, root, CAMPAIGN_TARGETS):
        return None
    return (
        tables.read(spark, root, CAMPAIGN_TARGETS)
        .where((F.col("group") == TREATMENT) & (F.col("publish_date") < lit_date(d)))
        .select("subscriber_key", F.col("publish_date").alias("contact_date"))
    )


def build_list(
    candidates_df: DataFrame,
    c: Campaign,
    d: dt.date,
    blocked_df: DataFrame,
    taken_df: DataFrame | None,
    models: list[str],
    run_id: str,
) -> DataFrame:
    """One campaign's list: eligible, not blocked (suppression, contact policy), not taken by a
    campaign before it today, the best ``size_cap`` by rank, grouped, in the table's columns
    (msisdn added by the caller)."""
    df = eligible(candidates_df, c).join(blocked_df, on="subscriber_key", how="left_anti")
    if taken_df is not None:
        df = df.join(taken_df, on="subscriber_key", how="left_anti")
    ranked = take_ranked(df.withColumn("rank_score", rank_score(c)), c.size_cap)
    grouped = assign_groups(ranked, c.id, c.control_fraction)
    band = F.col("risk_band") if "risk_band" in grouped.columns else F.lit(None).cast("string")
    return grouped.select(
        F.lit(c.id).alias("campaign_id"),
        lit_date(d).alias("publish_date"),
        F.lit(run_id).alias("run_id"),
        "subscriber_key",
        "group",
        F.col("rank").cast("int").alias("rank"),
        band.alias("score_band"),
        F.lit(c.offer.code).alias("offer_code"),
        F.lit(float(c.offer.cost)).alias("offer_cost"),
        F.lit(c.channel).alias("channel"),
        F.lit(c.objective).alias("objective"),
        F.array(*[F.lit(m) for m in models]).cast("array<string>").alias("models"),
        lit_date(d + dt.timedelta(days=c.valid_days)).alias("valid_until"),
    )


def publish(
    spark: SparkSession,
    root: str,
    d: dt.date,
    params: PublishConfig,
    identity: IdentityConfig,
    hmac_key: bytes,
    risk_bands: list[str],
    run_id: str,
    wanted: list[str] | None = None,
) -> JobOutcome:
    out = JobOutcome(message="")  # gold.run_log has said "" (not null) for a publish with nothing to add
    # Definitions are read and checked by themselves before any table is read.
    definitions = active(load_campaigns(campaigns_folder(params), risk_bands), d, wanted)
    if not definitions:
        out.message = f"no campaign is active on {d}"
        log(out.message)
        return out
    if params.jdbc.enabled:
        credentials(params.jdbc)  # a missing credential stops the run before any list is written
    candidates_df, models = candidates_at(spark, root, d)
    candidates_df = candidates_df.persist()
    try:
        check_against_lake(definitions, lake_view(candidates_df, models))
        out.rows_read = candidates_df.count()
        if out.rows_read == 0:
            raise TableNotFoundError(f"{FEATURES} has no snapshot for {d}: run `crmlake features --date {d}` first")
        master_df, newest = newest_master(spark, root, d, params.max_master_age_days)
        # lines in the base as the newest master has them: a line deactivated since the
        # features snapshot is not contacted
        in_base_df = filter_in_base(master_df, newest).select("subscriber_key")
        opted_df = None
        if params.opt_out_path:
            numbers_df = spark.read.option("header", True).csv(params.opt_out_path)
            opted_df = keys_of_listed_numbers(
                numbers_df, identity, hmac_key, f"publish.opt_out_path {params.opt_out_path}"
            )
        contacts_df = past_contacts(spark, root, d)
        if contacts_df is None:
            contacts_df = spark.createDataFrame([], "subscriber_key string, contact_date date")
        policy = params.contact_policy
        blocked_df = (
            suppressed(candidates_df, master_df, in_base_df, opted_df, erased_keys(spark, root))
            .unionByName(
                held_by_contact_policy(
                    candidates_df, contacts_df, d, policy.max_contacts, policy.window_days, policy.quiet_days
                )
            )
            .persist()
        )
        out.details["blocked"] = {r["reason"]: r["count"] for r in blocked_df.groupBy("reason").count().collect()}
        numbers_df = tables.read(spark, root, CONTACTS).select("subscriber_key", "msisdn")
        blocked_ids = blocked_df.select("subscriber_key").distinct()
        taken_df = None
        counts = {}
        for definition in definitions:
            c = definition.campaign
            with stage("campaign list", campaign=c.id, date=d) as info:
                list_df = build_list(
                    candidates_df,
                    c,
                    d,
                    blocked_ids,
                    taken_df,
                    models if c.models_needed() else [],
                    run_id,
                )
                with_numbers = list_df.join(numbers_df, on="subscriber_key", how="left").withColumn(
                    "msisdn", F.when(F.col("group") == TREATMENT, F.col("msisdn"))
                )
                final_df = with_numbers.select(*[f.name for f in CAMPAIGN_TARGETS_SCHEMA.fields]).localCheckpoint()
                written = write_list(root, final_df, c.id, d)
                # the list as the table holds it (a rerun that changed nothing keeps the first run's id)
                stored_df = tables.read(spark, root, CAMPAIGN_TARGETS).where(
                    F.expr(tables.days_scope(CAMPAIGN_TARGETS, [d], campaign_id=c.id))
                )
                list_run = stored_df.select("run_id").first()
                if list_run is not None:
                    exports = params.exports_dir or str(Path(root) / "exports")
                    manifest = export_list(
                        stored_df, exports, c.id, d, list_run[0], models if c.models_needed() else []
                    )
                    info["exported"] = manifest["rows"]
                    if params.jdbc.enabled:
                        # after the files: a failed push leaves the lake and the files written, and
                        # a rerun (same list, no new version) pushes again, adding no duplicate
                        info["upserted"] = push(spark, stored_df, params.jdbc, run_id)
                group_counts = {r["group"]: r["count"] for r in final_df.groupBy("group").count().collect()}
                counts[c.id] = {**group_counts, "written": written}
                if "upserted" in info:
                    counts[c.id]["upserted"] = info["upserted"]
                info.update(group_counts)
                out.rows_written += written
                taken = final_df.select("subscriber_key")
                taken_df = taken if taken_df is None else taken_df.unionByName(taken)
        out.details["campaigns"] = counts
        if params.jdbc.enabled:
            out.details["jdbc"] = {"url": redacted(params.jdbc.url), "table": params.jdbc.table}
        blocked_df.unpersist()
        out.tables.add(CAMPAIGN_TARGETS)
    finally:
        candidates_df.unpersist()
    return out


def write_list(root: str, list_df: DataFrame, campaign_id: str, d: dt.date) -> int:
    """Replace the campaign's list of ``d`` unless the same list is there already (run id aside):
    a rerun then writes nothing and makes no new table version. Returns the rows written."""
    scope = tables.days_scope(CAMPAIGN_TARGETS, [d], campaign_id=campaign_id)
    return tables.replace_where_changed(list_df, root, CAMPAIGN_TARGETS, scope, ignore=("run_id",))
