"""gold.subscriber_daily: hand-computed aggregates, and the missing/stale bookkeeping."""

from __future__ import annotations

import shutil

import pytest
from builders import at, daily_rows, day, silver_rows
from crmlake.catalog import tables
from crmlake.gold import daily
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

A, B = "sub-a", "sub-b"


def sources(spark):
    usage = silver_rows(
        spark,
        "usage",
        [
            dict(subscriber_key=A, event_time=at(0, 8), service_type="voice", duration_s=120,
                 destination_type="on_net", charge_amount=10.25, cell_id="C1"),
            dict(subscriber_key=A, event_time=at(0, 9), service_type="voice", direction="in", duration_s=60,
                 cell_id="C1"),
            dict(subscriber_key=A, event_time=at(0, 10), service_type="sms", destination_type="off_net",
                 charge_amount=1.1, cell_id="C2"),
            dict(subscriber_key=A, event_time=at(0, 11), service_type="data", bytes_up=3_000_000,
                 bytes_down=7_000_000, charge_amount=5, cell_id="C2"),
            dict(subscriber_key=A, event_time=at(0, 12), service_type="vas", charge_amount=2, is_roaming=True,
                 cell_id=None),
            dict(subscriber_key=A, event_time=at(0, 13), service_type="voice", duration_s=30,
                 destination_type="international", charge_amount=20.05, cell_id="C1"),
            dict(subscriber_key=B, event_time=at(1, 7), service_type="sms", direction="in", cell_id="C3"),
        ],
    )  # fmt: skip
    recharges = silver_rows(
        spark,
        "recharges",
        [
            dict(subscriber_key=A, txn_time=at(0, 14), txn_type="topup", amount=50),
            dict(subscriber_key=B, txn_time=at(0, 1), txn_type="bill", amount=100, channel="billing"),
            dict(subscriber_key=B, txn_time=at(0, 20), txn_type="payment", amount=100, channel="bank"),
        ],
    )
    care = silver_rows(
        spark,
        "care_interactions",
        [
            dict(subscriber_key=A, started_at=at(0, 15), is_complaint=True, is_resolved=False,
                 is_first_contact_resolution=False, escalation_level=2, handle_time_s=300),
        ],
    )  # fmt: skip
    surveys = silver_rows(
        spark,
        "surveys",
        [
            dict(subscriber_key=A, answered_at=at(0, 10), survey_type="csat", score=5),
            dict(subscriber_key=A, answered_at=at(0, 11), survey_type="csat", score=3),
            dict(subscriber_key=A, answered_at=at(0, 9), survey_type="nps", score=9),
        ],
    )
    return usage, recharges, care, surveys


def test_subscriber_daily_by_hand(spark):
    result = daily.subscriber_daily(*sources(spark))
    expected = daily_rows(
        spark,
        [
            dict(subscriber_key=A, date=day(0), events=6, out_events=5, voice_out_calls=2, voice_in_calls=1,
                 sms_out=1, data_sessions=1, vas_events=1, on_net_out=1, off_net_out=1, intl_out=1,
                 roaming_events=1, distinct_cells=2, topup_count=1, care_contacts=1, complaints=1,
                 unresolved_contacts=1, escalated_contacts=1, fcr_contacts=0, handle_time_s=300,
                 csat_answers=2, csat_satisfied=1, csat_score_sum=8, nps_answers=1, nps_promoters=1,
                 revenue_voice=30.30, revenue_sms=1.10, revenue_data=5, revenue_vas=2, revenue_usage=38.40,
                 topup_amount=50, voice_out_min=2.5, voice_in_min=1.0, data_mb_up=3.0, data_mb_down=7.0,
                 on_net_share=1 / 3, off_net_share=1 / 3, intl_share=1 / 3, roaming_share=1 / 6,
                 csat_last=3, nps_last=9, has_revenue_activity=True),
            dict(subscriber_key=B, date=day(0), bill_count=1, payment_count=1, bill_amount=100,
                 payment_amount=100, has_revenue_activity=True),
            dict(subscriber_key=B, date=day(1), events=1, sms_in=1, distinct_cells=1, roaming_share=0.0,
                 has_revenue_activity=False),
        ],
    )  # fmt: skip
    assertDataFrameEqual(result, expected, rtol=1e-9)


def write_sources(spark, root, usage, recharges, care, surveys):
    for name, df in zip(daily.DAILY_SOURCES, (usage, recharges, care, surveys), strict=True):
        tables.create(df, root, name)


@pytest.mark.slow  # four builds of the same days
def test_refresh_builds_missing_then_only_stale_days(spark, cfg):
    root = cfg.root
    write_sources(spark, root, *sources(spark))
    days = [day(0), day(1), day(2)]

    first, fingerprints = daily.refresh(spark, root, days, "run-1")
    assert (first["days_built"], first["days_missing"], first["days_stale"]) == (3, 3, 0)
    assert sorted(fingerprints) == days
    version = tables.version(spark, root, daily.SUBSCRIBER_DAILY)
    builds_version = tables.version(spark, root, daily.DAILY_BUILDS)

    # Nothing moved in silver: no day is checked again (no file listed) and nothing is written.
    again, again_fingerprints = daily.refresh(spark, root, days, "run-2")
    assert (again["days_built"], again["days_checked"]) == (0, 0)
    assert again_fingerprints == fingerprints
    assert tables.version(spark, root, daily.SUBSCRIBER_DAILY) == version  # nothing rewritten
    assert tables.version(spark, root, daily.DAILY_BUILDS) == builds_version

    # A late record for day 1 arrives: only day 1 is stale and rebuilt; the other two are checked
    # once (their files listed) and found current.
    late = silver_rows(spark, "usage", [dict(record_id="late-1", subscriber_key=A, event_time=at(1, 23),
                                             service_type="voice", duration_s=600, charge_amount=7)])  # fmt: skip
    tables.append(late, root, "silver.usage")
    third, third_fingerprints = daily.refresh(spark, root, days, "run-3")
    assert (third["days_built"], third["days_stale"], third["built"]) == (1, 1, [day(1).isoformat()])
    assert third["days_checked"] == 3
    assert {d for d in days if third_fingerprints[d] != fingerprints[d]} == {day(1)}
    builds = tables.read(spark, root, daily.DAILY_BUILDS).orderBy("date").collect()
    assert [(b["date"], b["run_id"]) for b in builds] == [(day(0), "run-1"), (day(1), "run-3"), (day(2), "run-1")]
    assert len({b["sources_checked"] for b in builds}) == 1  # all three checked at the same identity
    fourth, _ = daily.refresh(spark, root, days, "run-4")
    assert (fourth["days_built"], fourth["days_checked"]) == (0, 0)

    # The incremental table equals a rebuild from scratch of every day.
    src = daily.read_sources_for(spark, root, days)
    rebuilt = daily.subscriber_daily(*src.values())
    assertDataFrameEqual(tables.read(spark, root, daily.SUBSCRIBER_DAILY), rebuilt, rtol=1e-9)
    late_row = tables.read(spark, root, daily.SUBSCRIBER_DAILY).where((F.col("subscriber_key") == A)
                                                                       & (F.col("date") == day(1)))  # fmt: skip
    assert late_row.select("voice_out_min", "revenue_usage").first() == (10.0, 7)


@pytest.mark.slow  # four builds of the same days
def test_builds_of_an_earlier_crmlake_and_a_recreated_source_are_checked_again(spark, tmp_path):
    root = str(tmp_path)
    usage, recharges, care, surveys = sources(spark)
    write_sources(spark, root, usage, recharges, care, surveys)
    days = [day(0), day(1), day(2)]
    daily.refresh(spark, root, days, "run-1")

    # gold.subscriber_daily_builds as an earlier crmlake wrote it: no sources_checked column.
    old_df = tables.read(spark, root, daily.DAILY_BUILDS).drop("sources_checked")
    old_df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        tables.table_path(root, daily.DAILY_BUILDS)
    )
    upgraded, _ = daily.refresh(spark, root, days, "run-2")
    assert (upgraded["days_built"], upgraded["days_checked"]) == (0, 3)  # listed once, found current
    assert "sources_checked" in tables.read(spark, root, daily.DAILY_BUILDS).columns
    assert daily.refresh(spark, root, days, "run-3")[0]["days_checked"] == 0

    # silver.surveys dropped and written again with the same rows, up to the same version: another
    # table, so every day is checked again (its files are new: the days holding answers are rebuilt).
    surveys_version = tables.version(spark, root, "silver.surveys")
    same_df = tables.read(spark, root, "silver.surveys").localCheckpoint()
    shutil.rmtree(tables.table_path(root, "silver.surveys"))
    tables.create(same_df, root, "silver.surveys")
    assert tables.version(spark, root, "silver.surveys") == surveys_version
    recreated, _ = daily.refresh(spark, root, days, "run-4")
    assert recreated["days_checked"] == 3
