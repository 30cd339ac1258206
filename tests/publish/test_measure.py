"""crmlake measure: lift numbers against a hand-computed case (difference in means, Welch
interval, delta-method relative lift, CUPED), notes instead of numbers for too small groups,
the breakdowns by risk band and segment, refusals while the outcome is not known or an input is
missing, and reruns that replace a list's rows."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from decimal import Decimal

import pytest
import yaml
from crmlake.catalog import tables
from crmlake.catalog.registry import CAMPAIGN_RESULTS_SCHEMA, CAMPAIGN_TARGETS_SCHEMA, spec
from crmlake.publish.measure import UNIT_COLUMNS, results, with_breakdowns
from crmlake.publish.measure_run import CAMPAIGN_RESULTS
from crmlake_jobs.measure import main as measure_main
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

P = dt.date(2026, 3, 2)
H = 14
Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal
NUMBERS = [f.name for f in CAMPAIGN_RESULTS_SCHEMA.fields][14:27]

# ---------------------------------------------------------------------------------------------
# the hand-computed case: 10 treated, 9 controls (one without a churn label)

TREATED = {
    "retained": [1, 1, 1, 0, 1, 1, 1, 1, 0, 1],
    "active_pre": [20, 25, 18, 3, 22, 30, 15, 27, 5, 19],
    "revenue": [5000, 7000, 3000, 0, 8000, 12000, 2500, 9000, 100, 4000],
    "revenue_pre": [4500, 6000, 3500, 200, 7000, 11000, 3000, 8000, 500, 4200],
    "accepted": [1, 0, 1, 0, 1, 0, 0, 1, 0, 0],
}
CONTROLS = {
    "retained": [1, 0, 1, 0, 1, 1, 0, 1, None],
    "active_pre": [21, 4, 17, 2, 26, 14, 6, 23, 0],
    "revenue": [4800, 0, 2800, 50, 7200, 2600, 300, 7700, 0],
    "revenue_pre": [5000, 300, 3000, 100, 7500, 2900, 600, 8100, 0],
}
OFFER_CENTS = 500


def _units(spark):
    rows = []
    for group, g in (("treatment", TREATED), ("control", CONTROLS)):
        for i in range(len(g["retained"])):
            rows.append(
                (
                    "ret",
                    P,
                    "pub-1",
                    f"{group[0]}{i}",
                    group,
                    "high",
                    OFFER_CENTS,
                    g["retained"][i],
                    g["active_pre"][i],
                    g["revenue"][i],
                    g["revenue_pre"][i],
                    g["accepted"][i] if group == "treatment" else None,
                )
            )
    schema = (
        "campaign_id string, publish_date date, target_run_id string, subscriber_key string, group string, "
        "score_band string, offer_cost_cents long, is_retained int, active_days_pre long, revenue_cents long, "
        "revenue_cents_pre long, is_accepted int"
    )
    units_df = spark.createDataFrame(rows, schema).select(*UNIT_COLUMNS)
    return with_breakdowns(units_df, None, [])


def _difference(yt: list, yc: list) -> dict:
    """Welch interval, p-value and delta-method relative lift, written out from the values."""
    mt, mc = statistics.mean(yt), statistics.mean(yc)
    vt, vc = statistics.variance(yt), statistics.variance(yc)
    se = math.sqrt(vt / len(yt) + vc / len(yc))
    diff = mt - mc
    se_rel = math.sqrt((vt / len(yt)) / mc**2 + (mt**2) * (vc / len(yc)) / mc**4)
    return {
        "mean_treatment": mt,
        "mean_control": mc,
        "abs_lift": diff,
        "abs_lift_lo": diff - Z95 * se,
        "abs_lift_hi": diff + Z95 * se,
        "rel_lift": diff / mc,
        "rel_lift_lo": diff / mc - Z95 * se_rel,
        "rel_lift_hi": diff / mc + Z95 * se_rel,
        "p_value": 2 * (1 - statistics.NormalDist().cdf(abs(diff) / se)),
        "variance_reduction": None,
    }


def _cuped(yt: list, xt: list, yc: list, xc: list) -> dict:
    """θ over both groups together, each value adjusted, then the same difference."""
    x_all, y_all = xt + xc, yt + yc
    theta = statistics.covariance(x_all, y_all) / statistics.variance(x_all)
    mx = statistics.mean(x_all)
    adj_t = [y - theta * (x - mx) for y, x in zip(yt, xt, strict=True)]
    adj_c = [y - theta * (x - mx) for y, x in zip(yc, xc, strict=True)]
    out = _difference(adj_t, adj_c)
    out["variance_reduction"] = 1 - statistics.variance(adj_t + adj_c) / statistics.variance(y_all)
    return out


def _expected_row(metric: str, method: str, nt: int, nc: int, nu: int, numbers: dict, note=None) -> tuple:
    row = {
        "campaign_id": "ret",
        "publish_date": P,
        "measured_on": P + dt.timedelta(days=H),
        "run_id": "measure-1",
        "target_run_id": "pub-1",
        "horizon_days": H,
        "breakdown": "all",
        "breakdown_value": "all",
        "metric": metric,
        "method": method,
        "confidence": 0.95,
        "n_treatment": nt,
        "n_control": nc,
        "n_unknown": nu,
        **dict.fromkeys(NUMBERS),
        **{k: float(v) if v is not None and not k.endswith("_cents") else v for k, v in numbers.items()},
        "note": note,
    }
    return tuple(row[f.name] for f in CAMPAIGN_RESULTS_SCHEMA.fields)


def _known(g: dict, column: str) -> list:
    return [v for v, r in zip(g[column], g["retained"], strict=True) if r is not None]


def test_lift_matches_the_hand_computed_case(spark):
    got_df = results(_units(spark), H, P + dt.timedelta(days=H), "measure-1", 0.95, 5)
    t, c = TREATED, CONTROLS
    accepted = sum(t["accepted"])
    cost = accepted * OFFER_CENTS
    expected = []
    # retention: the control without a label is left out and counted unknown
    yc, xc = _known(c, "retained"), _known(c, "active_pre")
    for method, numbers in (
        ("difference", _difference(t["retained"], yc)),
        ("cuped", _cuped(t["retained"], t["active_pre"], yc, xc)),
    ):
        numbers.update(incremental=numbers["abs_lift"] * 10, offer_cost_total_cents=cost)
        expected.append(_expected_row("retention", method, 10, 8, 1, numbers))
    # revenue: observed for every target of both groups
    for method, numbers in (
        ("difference", _difference(t["revenue"], c["revenue"])),
        ("cuped", _cuped(t["revenue"], t["revenue_pre"], c["revenue"], c["revenue_pre"])),
    ):
        incremental = numbers["abs_lift"] * 10
        numbers.update(
            incremental=incremental,
            offer_cost_total_cents=cost,
            incremental_revenue_net_cents=round(incremental) - cost,
        )
        expected.append(_expected_row("revenue_cents", method, 10, 9, 0, numbers))
    # acceptance: the treated rate and its interval; controls were never offered
    rate = accepted / 10
    se = math.sqrt(statistics.variance(t["accepted"]) / 10)
    acceptance = {
        "mean_treatment": rate,
        "abs_lift": rate,
        "abs_lift_lo": rate - Z95 * se,
        "abs_lift_hi": rate + Z95 * se,
        "incremental": float(accepted),
        "offer_cost_total_cents": cost,
    }
    expected.append(_expected_row("acceptance", "difference", 10, 9, 0, acceptance))
    expected_df = spark.createDataFrame(expected, CAMPAIGN_RESULTS_SCHEMA)
    assertDataFrameEqual(got_df.where(F.col("breakdown") == "all"), expected_df, rtol=1e-9)
    # every target has the same band: the risk-band rows repeat the overall numbers
    assertDataFrameEqual(
        got_df.where(F.col("breakdown") == "risk_band").drop("breakdown", "breakdown_value"),
        expected_df.drop("breakdown", "breakdown_value"),
        rtol=1e-9,
    )


def test_too_few_controls_give_a_note_and_no_numbers(spark):
    got_df = results(_units(spark), H, P + dt.timedelta(days=H), "measure-1", 0.95, 9)
    retention_note = "too few controls: 8 < 9 (publish.measure.min_group_size)"
    t = TREATED
    rate, se = 0.4, math.sqrt(statistics.variance(t["accepted"]) / 10)
    expected = [
        _expected_row("retention", "difference", 10, 8, 1, {}, retention_note),
        _expected_row("retention", "cuped", 10, 8, 1, {}, retention_note),
        # nine controls are enough for revenue; acceptance needs treated lines only
        _expected_row(
            "acceptance",
            "difference",
            10,
            9,
            0,
            {
                "mean_treatment": rate,
                "abs_lift": rate,
                "abs_lift_lo": rate - Z95 * se,
                "abs_lift_hi": rate + Z95 * se,
                "incremental": 4.0,
                "offer_cost_total_cents": 4 * OFFER_CENTS,
            },
        ),
    ]
    assertDataFrameEqual(
        got_df.where((F.col("breakdown") == "all") & (F.col("metric") != "revenue_cents")),
        spark.createDataFrame(expected, CAMPAIGN_RESULTS_SCHEMA),
        rtol=1e-9,
    )
    fewer = results(_units(spark), H, P, "measure-1", 0.95, 11).where(F.col("breakdown") == "all").collect()
    assert {r["note"] for r in fewer} == {
        "too few controls: 8 < 11 (publish.measure.min_group_size); "
        "too few treated: 10 < 11 (publish.measure.min_group_size)",
        "too few controls: 9 < 11 (publish.measure.min_group_size); "
        "too few treated: 10 < 11 (publish.measure.min_group_size)",
        "too few treated: 10 < 11 (publish.measure.min_group_size)",
    }
    assert all(r[n] is None for r in fewer for n in NUMBERS)


# ---------------------------------------------------------------------------------------------
# the job on a small lake built through the catalog

N = 60


def _truth() -> list[dict]:
    out = []
    for i in range(N):
        out.append(
            {
                "key": f"k{i:02d}",
                "group": "control" if i % 3 == 0 else "treatment",
                "band": "high" if i < 30 else "low",
                "labelled": i not in (5, 6),
                "retained": i % 4 != 1,
                "rev_pre": Decimal(f"{10 + i}.25"),
                "rev_post": Decimal(f"{(i * 7) % 23}.50"),
                "bill_post": Decimal("3.00") if i % 2 else Decimal("0.00"),
                "accepted": i % 5 == 0,
                "stage": "mature" if i % 2 else "declining",
            }
        )
    return out


def _lake(spark, root: str, truth: list[dict], labels_at: dt.date = P, responses: bool = True) -> None:
    def target(t, run_id):
        return (
            "ret", P, run_id, t["key"], None, t["group"], 1, t["band"], "RET-1", 5.0, "sms", "retention",
            ["crmlake-churn/1"], P + dt.timedelta(days=7),
        )  # fmt: skip

    # an older run of the same list, written first: measure reads the newest only
    tables.create(
        spark.createDataFrame([target(t, "old-run") for t in truth[:5]], CAMPAIGN_TARGETS_SCHEMA),
        root,
        "gold.campaign_targets",
    )
    tables.append(
        spark.createDataFrame([target(t, "new-run") for t in truth], CAMPAIGN_TARGETS_SCHEMA),
        root,
        "gold.campaign_targets",
    )
    labels = [(t["key"], labels_at, H, not t["retained"]) for t in truth if t["labelled"]]
    tables.create(
        spark.createDataFrame(
            labels, "subscriber_key string, snapshot_date date, horizon_days int, is_churned boolean"
        ).withColumns({"churn_date": F.lit(None).cast("date"), "churn_type": F.lit(None).cast("string")}),
        root,
        "gold.churn_labels",
    )
    zero = Decimal("0.00")
    daily = []
    for t in truth:
        daily.append((t["key"], P - dt.timedelta(days=3), t["rev_pre"], zero, True))
        daily.append((t["key"], P + dt.timedelta(days=5), t["rev_post"], t["bill_post"], True))
        daily.append((t["key"], P + dt.timedelta(days=H + 1), Decimal("99.00"), zero, True))  # after the window
    tables.create(
        spark.createDataFrame(
            daily,
            "subscriber_key string, date date, revenue_usage decimal(18,2), bill_amount decimal(18,2), "
            "has_revenue_activity boolean",
        ),
        root,
        "gold.subscriber_daily",
    )
    if responses:
        fields = [f.name for f in spec("silver.campaign_responses").schema.fields]
        contacted = [t for t in truth if t["group"] == "treatment"]
        rows = [
            {
                "subscriber_key": t["key"],
                "campaign_id": "ret",
                "contacted_at": dt.datetime.combine(P + dt.timedelta(days=1), dt.time(10)),
                "channel": "sms",
                "is_delivered": True,
                "has_responded": t["accepted"],
                "has_accepted_offer": t["accepted"],
                "event_date": P + dt.timedelta(days=1),
            }
            for t in contacted
        ]
        tables.create(
            spark.createDataFrame(
                [tuple(r.get(f) for f in fields) for r in rows], spec("silver.campaign_responses").schema
            ),
            root,
            "silver.campaign_responses",
        )
    segments = [(t["key"], P - dt.timedelta(days=1), t["stage"]) for t in truth]
    # a snapshot after the publish date, which must not be read
    segments += [(t["key"], P + dt.timedelta(days=1), "new") for t in truth]
    tables.create(
        spark.createDataFrame(segments, "subscriber_key string, snapshot_date date, lifecycle_stage string"),
        root,
        "gold.segments",
    )


def _conf(tmp_path) -> str:
    conf = tmp_path / "measure.yaml"
    conf.write_text(
        yaml.safe_dump(
            {"labels": {"horizon_days": H, "campaign_horizon_days": H}, "publish": {"measure": {"min_group_size": 3}}}
        ),
        encoding="utf-8",
    )
    return str(conf)


def run(root: str, conf: str, *args) -> int:
    from pyspark.sql import SparkSession

    argv = ["--root", root, "--conf", conf, "--log-format", "text", "--campaign", "ret", *[str(a) for a in args]]
    return measure_main(argv, spark=SparkSession.getActiveSession())


@pytest.fixture
def lake(spark, tmp_path):
    root = str(tmp_path / "root")
    truth = _truth()
    _lake(spark, root, truth)
    return {"root": root, "truth": truth, "conf": _conf(tmp_path), "tmp": tmp_path}


def _cents(t) -> int:
    return int((t["rev_post"] + t["bill_post"]) * 100)


def test_the_breakdowns_by_risk_band_and_segment(spark, lake):
    assert run(lake["root"], lake["conf"], "--date", P + dt.timedelta(days=H)) == 0
    got_df = tables.read(spark, lake["root"], CAMPAIGN_RESULTS)
    truth = lake["truth"]
    cells = {("all", "all"): truth}
    for band in ("high", "low"):
        cells[("risk_band", band)] = [t for t in truth if t["band"] == band]
    for stage in ("mature", "declining"):  # the snapshot of the day before publishing
        cells[("segment:lifecycle_stage", stage)] = [t for t in truth if t["stage"] == stage]
    expected = []
    for (breakdown, value), members in cells.items():
        treated = [t for t in members if t["group"] == "treatment"]
        controls = [t for t in members if t["group"] == "control"]
        unknown = sum(not t["labelled"] for t in members)
        kt = [t for t in treated if t["labelled"]]
        kc = [t for t in controls if t["labelled"]]
        expected += [
            (breakdown, value, "retention", len(kt), len(kc), unknown,
             sum(t["retained"] for t in kt) / len(kt), sum(t["retained"] for t in kc) / len(kc)),
            (breakdown, value, "revenue_cents", len(treated), len(controls), 0,
             sum(_cents(t) for t in treated) / len(treated), sum(_cents(t) for t in controls) / len(controls)),
            (breakdown, value, "acceptance", len(treated), len(controls), 0,
             sum(t["accepted"] for t in treated) / len(treated), None),
        ]  # fmt: skip
    columns = ["breakdown", "breakdown_value", "metric", "n_treatment", "n_control", "n_unknown"]
    expected_df = spark.createDataFrame(
        expected,
        "breakdown string, breakdown_value string, metric string, n_treatment long, n_control long, "
        "n_unknown long, mean_treatment double, mean_control double",
    )
    assertDataFrameEqual(
        got_df.where(F.col("method") == "difference").select(*columns, "mean_treatment", "mean_control"),
        expected_df,
        rtol=1e-9,
    )
    # the newest publish run only, the measurement date and run recorded
    meta = got_df.select("target_run_id", "measured_on", "horizon_days", "run_id").distinct().collect()
    assert len(meta) == 1 and meta[0]["target_run_id"] == "new-run"
    assert meta[0]["measured_on"] == P + dt.timedelta(days=H) and meta[0]["horizon_days"] == H
    log = tables.read(spark, lake["root"], "gold.run_log").where(F.col("job") == "measure").collect()
    assert [r["run_id"] for r in log] == [meta[0]["run_id"]] and log[0]["status"] == "succeeded"


def test_a_rerun_replaces_the_lists_rows(spark, lake):
    root = lake["root"]
    assert run(root, lake["conf"], "--date", P + dt.timedelta(days=H)) == 0
    first = tables.read(spark, root, CAMPAIGN_RESULTS).drop("run_id").collect()
    assert run(root, lake["conf"], "--date", P + dt.timedelta(days=H)) == 0
    second_df = tables.read(spark, root, CAMPAIGN_RESULTS)
    assertDataFrameEqual(second_df.drop("run_id"), spark.createDataFrame(first, second_df.drop("run_id").schema))
    key = list(spec(CAMPAIGN_RESULTS).key)
    assert second_df.groupBy(*key).count().where(F.col("count") > 1).isEmpty()
    assert second_df.select("run_id").distinct().count() == 1


def test_an_outcome_not_known_yet_is_said_and_nothing_written(spark, tmp_path, capsys):
    root = str(tmp_path / "root")
    _lake(spark, root, _truth(), labels_at=P - dt.timedelta(days=7))
    conf = _conf(tmp_path)
    # the window has not closed
    assert run(root, conf, "--date", P + dt.timedelta(days=H - 1)) == 5
    err = capsys.readouterr().err
    assert "OutcomeNotKnownError" in err and "ret of 2026-03-02: outcome known on 2026-03-16" in err
    # closed, but the labels of the publish date are not written
    assert run(root, conf, "--date", P + dt.timedelta(days=H)) == 5
    err = capsys.readouterr().err
    assert "gold.churn_labels has no labels at snapshot(s) ['2026-03-02']" in err
    assert "crmlake features --date 2026-03-16" in err
    assert not tables.exists(spark, root, CAMPAIGN_RESULTS)


def test_a_missing_input_table_is_named(spark, tmp_path, capsys):
    root = str(tmp_path / "root")
    _lake(spark, root, _truth(), responses=False)
    assert run(root, _conf(tmp_path), "--date", P + dt.timedelta(days=H)) == 5
    err = capsys.readouterr().err
    assert "TableNotFoundError" in err and "silver.campaign_responses (written by `crmlake ingest" in err
    assert not tables.exists(spark, root, CAMPAIGN_RESULTS)
