"""gold.churn_labels: the config-defined churn rules on hand-built lines."""

from __future__ import annotations

from builders import daily_rows, day, history_rows
from crmlake.gold.labels import LabelParams, churn_labels
from pyspark.testing import assertDataFrameEqual

S = 20
PARAMS = LabelParams(horizon_days=10, prepaid_inactivity_days=5)  # horizon (day 20, day 30]


def line(key, plan="prepaid", deactivated_on=None, reason=None):
    rows = [dict(subscriber_key=key, valid_from=day(0), valid_to=deactivated_on and day(deactivated_on),
                 plan_type=plan)]  # fmt: skip
    if deactivated_on is not None:
        rows.append(dict(subscriber_key=key, valid_from=day(deactivated_on), plan_type=plan, status="deactivated",
                         deactivation_date=day(deactivated_on), churn_reason=reason))  # fmt: skip
    return rows


def active_on(key, *days):
    return [dict(subscriber_key=key, date=day(d), events=1, out_events=1, has_revenue_activity=True) for d in days]


def test_churn_labels_by_hand(spark):
    history = history_rows(
        spark,
        [
            *line("P1"),  # silent after day 23: 5 silent days end on day 28
            *line("P2"),  # gaps of 4 days only: never churns
            *line("P3"),  # last active day 15, before (day 15, day 20]: already churned, no label
            *line("P4", "postpaid", deactivated_on=24, reason="port_out"),
            *line("P5", "postpaid", deactivated_on=31, reason="price"),  # after the horizon
            *line("P6", deactivated_on=22, reason="non_payment"),  # deactivated before inactivity shows
            *line("P7", "postpaid"),  # postpaid silence is not churn
            *line("P9", deactivated_on=25, reason="price"),  # inactivity and deactivation on day 25: deactivation
        ],
    )
    activity = daily_rows(
        spark,
        [
            *active_on("P1", 18, 23),
            *active_on("P2", 19, 24, 29),
            *active_on("P3", 15),
            *active_on("P6", 20),
            *active_on("P9", 20),
            # incoming-only days are no revenue activity
            dict(subscriber_key="P1", date=day(26), events=3),
        ],
    )
    result = churn_labels(history, activity, day(S), PARAMS)
    expected = spark.createDataFrame(
        [
            ("P1", day(S), 10, True, day(28), "inactivity"),
            ("P2", day(S), 10, False, None, None),
            ("P4", day(S), 10, True, day(24), "port_out"),
            ("P5", day(S), 10, False, None, None),
            ("P6", day(S), 10, True, day(22), "involuntary"),
            ("P7", day(S), 10, False, None, None),
            ("P9", day(S), 10, True, day(25), "voluntary"),
        ],
        result.schema,
    )
    assertDataFrameEqual(result, expected)


def test_label_reads_the_horizon_only():
    assert PARAMS.daily_range(day(S)) == (day(16), day(30))
