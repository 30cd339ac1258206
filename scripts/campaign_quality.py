"""Which ranking keeps the most lines per contact, measured through the closed loop on a generated
operator: a published retention list with its hash-drawn control group, answered by the
synthetic operator (`crmlake generate --continue`), its outcome from gold.churn_labels at the
campaigns' horizon. For each ranking — churn probability, CLV at risk, the uplift model, the
truth's best (what the generator knows a contact does to each line; read from truth/ by this
evaluation only) and random — the lines it would contact first are taken from the list, and the
retention of their treated lines is set against the retention of their controls:

    retained per 1,000 contacts = 1000 × (retained share of treated − retained share of controls)

among the top 20%, 50% and 100% of the list by that ranking, with Poisson-bootstrap intervals.
When the uplift model was trained on this very list, every ranking is judged on the subscribers
of its test split only (the model never saw them).

    python scripts/campaign_quality.py ROOT [--conf FILE]... [--campaign ID] [--date P]

Prints Markdown (the README's table comes from this command on the demo's root).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

import numpy as np
from pyspark.sql import Window
from pyspark.sql import functions as F

SHARES = (0.2, 0.5, 1.0)
RESAMPLES, SEED = 1000, 7


def _per_1000(cells: np.ndarray) -> np.ndarray:
    """cells [..., 4]: treated retained, treated lost, control retained, control lost."""
    with np.errstate(invalid="ignore", divide="ignore"):
        t = cells[..., 0] / (cells[..., 0] + cells[..., 1])
        c = cells[..., 2] / (cells[..., 2] + cells[..., 3])
    return 1000.0 * (t - c)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--conf", action="append", default=[])
    parser.add_argument("--campaign", help="campaign id (default: the newest retention list whose outcome is known)")
    parser.add_argument("--date", type=dt.date.fromisoformat, help="its publish date (default: the newest)")
    args = parser.parse_args(argv)

    from crmlake.catalog import tables
    from crmlake.core import tracking
    from crmlake.core.config import load_config
    from crmlake.core.session import build_session
    from crmlake.models import registry, uplift_run
    from crmlake.models.uplift import with_subscriber_split
    from crmlake.publish.targets import control_draw
    from crmlake.silver.identity import load_hmac_key
    from crmlake.synth.campaign_truth import truth_uplift, with_true_effect

    cfg = load_config(args.conf, overrides={"root": args.root, "spark.log_level": "ERROR"})
    settings = cfg.settings
    spark = build_session(cfg)
    try:
        root, horizon = cfg.root, settings.labels.campaign_horizon
        labels_df = tables.read(spark, root, "gold.churn_labels").where(F.col("horizon_days") == horizon)
        targets_df = tables.read(spark, root, "gold.campaign_targets").where(F.col("objective") == "retention")
        if args.campaign:
            targets_df = targets_df.where(F.col("campaign_id") == args.campaign)
        labelled = {r[0] for r in labels_df.select("snapshot_date").distinct().collect()}
        lists = sorted(
            (r["publish_date"], r["campaign_id"])
            for r in targets_df.select("campaign_id", "publish_date").distinct().collect()
            if r["publish_date"] in labelled and (args.date is None or r["publish_date"] == args.date)
        )
        if not lists:
            print(f"no retention list with labels of the {horizon}-day campaign horizon yet", file=sys.stderr)
            return 1
        p, campaign = lists[-1]
        list_df = targets_df.where((F.col("campaign_id") == campaign) & (F.col("publish_date") == F.lit(p)))
        day = F.lit(p).cast("date")

        # the scores each ranking reads, as of the publish date
        churn_df = tables.read(spark, root, "gold.churn_scores").where(
            (F.col("score_date") == day) & (F.col("source") == "operator")
        )
        scored_df = list_df.join(
            churn_df.select("subscriber_key", F.col("probability").alias("churn_probability")),
            on="subscriber_key",
            how="left",
        )
        if tables.exists(spark, root, "gold.clv"):
            clv_df = tables.read(spark, root, "gold.clv").where(
                (F.col("as_of_date") <= day) & (F.col("source") == "operator")
            )
            newest = clv_df.agg(F.max("as_of_date")).first()[0]
            scored_df = scored_df.join(
                clv_df.where(F.col("as_of_date") == F.lit(newest)).select("subscriber_key", "clv_12m"),
                on="subscriber_key",
                how="left",
            )
        else:
            scored_df = scored_df.withColumn("clv_12m", F.lit(None).cast("double"))
        scored_df = scored_df.withColumn("clv_at_risk", F.col("churn_probability") * F.col("clv_12m"))
        rankings = {"churn probability": "churn_probability", "CLV at risk": "clv_at_risk"}
        held_out, uplift_model = False, None
        if tables.exists(spark, root, uplift_run.UPLIFT_SCORES):
            uplift_df = tables.read(spark, root, uplift_run.UPLIFT_SCORES).where(F.col("score_date") == day)
            if not uplift_df.isEmpty():
                scored_df = scored_df.join(
                    uplift_df.select("subscriber_key", "uplift"), on="subscriber_key", how="left"
                )
                rankings["uplift model"] = "uplift"
                tracking.use(root, settings.mlflow, uplift_run.TRAIN_JOB)
                champion = registry.current(settings.uplift.model_name, settings.uplift.champion_alias)
                if champion is not None:
                    uplift_model = f"{settings.uplift.model_name} v{champion.version}"
                    trained_on = {tuple(x) for x in champion.inputs.get("lists", [])}
                    held_out = (campaign, str(p)) in trained_on
        truth_df = truth_uplift(spark, root, load_hmac_key(settings.identity, root))
        scored_df = scored_df.join(truth_df, on="subscriber_key", how="left").transform(
            with_true_effect, p, horizon, "retention", settings.generate.rescue_rate, settings.generate.backlash_rate
        )
        rankings["truth's best"] = "true_effect"
        # what the truth expects of the whole list: the mean effect of a contact on its treated
        # lines, times the share of them the channel reached
        expected = scored_df.where(F.col("group") == "treatment").agg(F.avg("true_effect")).first()[0] or 0.0
        delivered = (
            spark.read.parquet(f"{root}/truth/campaign_assignments")
            .where(
                (F.col("campaign_id") == campaign) & (F.col("publish_date") == day) & (F.col("group") == "treatment")
            )
            .agg(F.avg(F.col("is_delivered").cast("double")))
            .first()[0]
        )
        scored_df = scored_df.withColumn("random", control_draw("quality-random"))
        rankings["random"] = "random"
        if held_out:
            u = settings.uplift
            scored_df = with_subscriber_split(scored_df, u.validation_share, u.test_share, u.seed).where(
                F.col("split") == "test"
            )
        outcome_df = scored_df.join(
            labels_df.where(F.col("snapshot_date") == day).select("subscriber_key", "is_churned"),
            on="subscriber_key",
            how="inner",
        ).persist()
        n_rows = outcome_df.count()
        tie = control_draw("quality-tie")  # a fixed, rank-blind order among equal scores

        rng = np.random.default_rng(SEED)
        table: dict[str, list[tuple[float, float, float, int]]] = {}
        for name, column in rankings.items():
            ranked_df = outcome_df.withColumn(
                "_rank",
                F.row_number().over(Window.orderBy(F.col(column).desc_nulls_last(), tie)),
            )
            row = []
            for share in SHARES:
                top_df = ranked_df.where(F.col("_rank") <= F.lit(max(1, round(share * n_rows))))
                counts = top_df.agg(
                    F.count(F.when((F.col("group") == "treatment") & ~F.col("is_churned"), 1)),
                    F.count(F.when((F.col("group") == "treatment") & F.col("is_churned"), 1)),
                    F.count(F.when((F.col("group") == "control") & ~F.col("is_churned"), 1)),
                    F.count(F.when((F.col("group") == "control") & F.col("is_churned"), 1)),
                ).first()
                cells = np.array(counts, dtype=float)
                draws = rng.poisson(cells, size=(RESAMPLES, 4)).astype(float)
                boot = _per_1000(draws)
                boot = boot[np.isfinite(boot)]
                lo, hi = np.percentile(boot, [2.5, 97.5]) if len(boot) else (np.nan, np.nan)
                row.append((float(_per_1000(cells)), float(lo), float(hi), int(cells[0] + cells[1])))
            table[name] = row

        scope = "the uplift model's test split (it was trained on this list)" if held_out else "the whole list"
        treated = outcome_df.where(F.col("group") == "treatment").count()
        print(f"List {campaign} of {p}: {n_rows:,} labelled lines of {scope}, {treated:,} treated, "
              f"{n_rows - treated:,} controls; outcome: not churned within {horizon} days "
              f"(labels.campaign_horizon_days); uplift model: {uplift_model or 'none scored'}.\n")  # fmt: skip
        print(f"The truth's expectation for the whole list: {1000 * expected * (delivered or 0):+.0f} retained per "
              f"1,000 contacts (mean true effect {1000 * expected:+.0f}, delivered {delivered or 0:.0%}); "
              f"measured over the whole list by `crmlake measure` in gold.campaign_results.\n")  # fmt: skip
        heads = " | ".join(f"top {share:.0%} of the list" for share in SHARES)
        print(f"| ranking | {heads} |")
        print("|---|" + "---|" * len(SHARES))
        for name, row in table.items():
            cells = " | ".join(f"{v:+.0f} [{lo:+.0f}, {hi:+.0f}] ({n:,} treated)" for v, lo, hi, n in row)
            print(f"| {name} | {cells} |")
        print("\nRetained lines per 1,000 contacts (treated minus control retention), 95% Poisson-bootstrap "
              "interval in brackets; the full list is the same set for every ranking.")  # fmt: skip
        print(json.dumps({"list": [campaign, str(p)], "held_out": held_out, "rows": n_rows, "table": table}),
              file=sys.stderr)  # fmt: skip
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
