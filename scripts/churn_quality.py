"""The churn model's holdout metrics next to the ceiling, on a generated operator: the champion's
test-snapshot ROC AUC, PR AUC and top-decile lift (from gold.model_metrics), the same metrics for
the generator's true latent churn hazard on the same labelled lines (from truth/, which only
this evaluation reads), the same two on the lines active in the week before the snapshot (where
churn has to be foreseen, not recognized), and which true churn causes land in the model's top
decile.

    python scripts/churn_quality.py ROOT [--conf FILE]...

Prints Markdown (the README's table comes from this command on the demo's root).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from pyspark.sql import functions as F

ACTIVITY, ACTIVE_DAYS = "days_since_last_activity", 7


def _metrics(df, score_col: str) -> dict:
    from crmlake.models import evaluation

    out = evaluation.binary_metrics(df, "label", score_col)
    out["top_decile_lift"] = evaluation.top_decile_lift(evaluation.gains_table(df, "label", score_col))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--conf", action="append", default=[])
    args = parser.parse_args(argv)

    from crmlake.catalog import tables
    from crmlake.core import tracking
    from crmlake.core.config import load_config
    from crmlake.core.session import build_session
    from crmlake.models import churn_run, churn_score, evaluation, registry
    from crmlake.silver.identity import load_hmac_key
    from crmlake.synth.churn_truth import caught_by_cause, hazard_scores, truth_subscribers

    cfg = load_config(args.conf, overrides={"root": args.root, "spark.log_level": "ERROR"})
    settings = cfg.settings
    spark = build_session(cfg)
    try:
        root, params, horizon = cfg.root, settings.churn, settings.labels.horizon_days
        tracking.use(root, settings.mlflow, churn_score.SCORE_JOB)
        champion = registry.current(params.model_name, params.champion_alias)
        if champion is None:
            print(f"no {params.model_name}@{params.champion_alias}: run train-churn first", file=sys.stderr)
            return 1
        test_dates = [dt.date.fromisoformat(s) for s in champion.inputs["snapshots"]["test"]]
        metrics = (
            tables.read(spark, root, registry.MODEL_METRICS)
            .where(
                (F.col("model_name") == params.model_name)
                & (F.col("model_version") == champion.version)
                & F.col("is_registered")
                & (F.col("split") == "test")
            )
            .collect()
        )
        model = {r["metric"]: r["value"] for r in metrics}
        labels_df = tables.read(spark, root, "gold.churn_labels")
        truth_df = truth_subscribers(spark, root, load_hmac_key(settings.identity, root))
        ceiling_df = hazard_scores(labels_df, truth_df, test_dates, horizon).persist()
        ceiling = _metrics(ceiling_df, "score")

        features_df = tables.read(spark, root, "gold.features").where(
            F.col("snapshot_date").isin([F.lit(d).cast("date") for d in test_dates])
        )
        scored_df = (
            churn_run.scored_by(champion.model, features_df)
            .select("subscriber_key", "snapshot_date", F.col("score").alias("model_score"), f"`{ACTIVITY}`")
            .join(ceiling_df.withColumnRenamed("score", "hazard_score"), on=["subscriber_key", "snapshot_date"])
            .withColumnRenamed("model_score", "score")
            .persist()
        )
        # A prepaid line silent for weeks is close to churned by definition (the inactivity rule)
        # and is easy to rank; the hazard knows nothing of it. Lines active in the last week are
        # where a model must foresee churn rather than recognize it.
        active_df = scored_df.where(F.col(ACTIVITY) < ACTIVE_DAYS)
        active = {"model": _metrics(active_df, "score"), "ceiling": _metrics(active_df, "hazard_score")}
        cut = evaluation.decile_cuts(scored_df, "score")[0]
        caught = caught_by_cause(scored_df, cut).collect()
        rows, churners = ceiling["rows"], ceiling["positives"]

        dates = ", ".join(map(str, test_dates))
        print(f"Holdout: {len(test_dates)} test snapshot(s) {dates}, {rows:,} labelled lines, "
              f"{churners:,} churned within {horizon} days ({churners / rows:.1%}); model {params.model_name} "
              f"version {champion.version} ({champion.inputs['candidate']}).\n")  # fmt: skip
        print("| scored by | ROC AUC | PR AUC | top-decile lift |")
        print("|---|---|---|---|")
        print(
            f"| the model (holdout) | {model['roc_auc']:.3f} | {model['pr_auc']:.3f} | {model['top_decile_lift']:.2f} |"
        )
        print(f"| the true latent hazard (ceiling) | {ceiling['roc_auc']:.3f} | {ceiling['pr_auc']:.3f} "
              f"| {ceiling['top_decile_lift']:.2f} |")  # fmt: skip
        print(f"| chance | 0.500 | {churners / rows:.3f} | 1.00 |\n")
        a_rows, a_churners = active["ceiling"]["rows"], active["ceiling"]["positives"]
        print(f"Lines active in the {ACTIVE_DAYS} days before the snapshot ({ACTIVITY} < {ACTIVE_DAYS}): "
              f"{a_rows:,} lines, {a_churners:,} churned ({a_churners / max(a_rows, 1):.1%}).\n")  # fmt: skip
        print("| scored by | ROC AUC | PR AUC | top-decile lift |")
        print("|---|---|---|---|")
        for name, m in (("the model", active["model"]), ("the true latent hazard", active["ceiling"])):
            print(f"| {name} | {m['roc_auc']:.3f} | {m['pr_auc']:.3f} | {m['top_decile_lift']:.2f} |")
        print()
        print("| true churn cause | churners | in the model's top decile |")
        print("|---|---|---|")
        for r in caught:
            print(f"| {r['cause']} | {r['churners']} | {r['in_top_decile']} ({r['share_caught']:.0%}) |")
        print(json.dumps({"model": model, "ceiling": ceiling, "active": active}, default=float), file=sys.stderr)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
