#!/usr/bin/env bash
# The first command to run: set up, generate a small operator, run every job, show where the
# results are.  Tables go to ./data unless CRMLAKE_DEMO_ROOT says otherwise.
#   scripts/demo.sh
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup.sh"
cd "$REPO"
ROOT="${CRMLAKE_DEMO_ROOT:-$REPO/data}"
SUBSCRIBERS="${CRMLAKE_DEMO_SUBSCRIBERS:-2000}"
# From 1 November to 14 January: the month to date reported at the end (1-14 January) opens on
# a base the first extracts observed, and 75 days hold weekly feature snapshots whose 14-day
# churn labels have closed (conf/examples/demo.yaml) for training, validation and test.
DAYS="${CRMLAKE_DEMO_DAYS:-75}"
START="${CRMLAKE_DEMO_START:-2025-11-01}"
CONF=(--conf "$REPO/conf/examples/demo.yaml")

echo "== generate: $SUBSCRIBERS subscribers, $DAYS days from $START, 1% bad records -> $ROOT/landing"
crmlake generate "${CONF[@]}" --root "$ROOT" --subscribers "$SUBSCRIBERS" --start "$START" --days "$DAYS" --seed 42 \
  --bad-rate 0.01 --log-format text

echo "== ingest: every file date in landing -> bronze, silver, quarantine"
crmlake ingest "${CONF[@]}" --root "$ROOT" --all --log-format text

END="$(python -c "import datetime as d; print(d.date.fromisoformat('$START') + d.timedelta(days=$DAYS - 1))")"
FIRST="$(python -c "import datetime as d; print(d.date.fromisoformat('$END') - d.timedelta(days=63))")"
echo "== features: subscriber-days, weekly feature snapshots $FIRST..$END and the churn labels that closed"
crmlake features "${CONF[@]}" --root "$ROOT" --from "$FIRST" --to "$END" --every 7 --log-format text

echo "== segment: rule-based segments, named clusters (fitted and registered in MLflow) and migration at $END"
crmlake segment "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== kpis: the day $END and its month to date (also by lifecycle stage), cohort retention"
crmlake kpis "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== clv: BG/NBD + Gamma-Gamma for prepaid top-ups, sBG per cohort and tariff for postpaid lines, at $END"
crmlake clv "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== train-churn: three candidates on time-split snapshots, the best registered and promoted in MLflow"
crmlake train-churn "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== score-churn: every subscriber at $END with @champion: probability, decile, band, reasons; monitoring"
crmlake score-churn "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== churn model against the ceiling (the generator's true hazard, read from truth/ by this evaluation only)"
python "$REPO/scripts/churn_quality.py" "$ROOT" "${CONF[@]}"

# The campaign loop: publish a retention list on the last day, let the synthetic operator live on
# and answer it, then measure what the list changed once its outcome window has closed (the
# campaigns' horizon: the 14-day churn horizon plus the 30-day prepaid inactivity rule, since a
# kept or lost prepaid line shows only after 30 silent days), and learn whom to contact next.
WINDOW="$(python -c "
from crmlake.core.config import load_config
print(load_config(['$REPO/conf/examples/demo.yaml']).settings.labels.campaign_horizon)")"
CLOSED="$(python -c "import datetime as d; print(d.date.fromisoformat('$END') + d.timedelta(days=$WINDOW))")"
NEXT="$(python -c "import datetime as d; print(d.date.fromisoformat('$END') + d.timedelta(days=1))")"
BEFORE="$(python -c "import datetime as d; print(d.date.fromisoformat('$CLOSED') - d.timedelta(days=1))")"

echo "== publish: the demo retention list at $END (suppression, contact policy, half held out as controls), as files"
crmlake publish "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== generate --continue: the operator lives $WINDOW more days and answers the list (contacts, offers, churn)"
crmlake generate "${CONF[@]}" --root "$ROOT" --continue --days "$WINDOW" --log-format text

if [ "$WINDOW" -gt 1 ]; then
  echo "== ingest the new days $NEXT..$BEFORE"
  crmlake ingest "${CONF[@]}" --root "$ROOT" --from "$NEXT" --to "$BEFORE" --log-format text
fi

echo "== daily at $CLOSED (ingest, features, kpis in one session): the labels of $END at the campaigns' $WINDOW-day horizon close today"
crmlake daily "${CONF[@]}" --root "$ROOT" --date "$CLOSED" --log-format text

echo "== measure: the list's lift against its control group, with intervals, plain and CUPED"
crmlake measure "${CONF[@]}" --root "$ROOT" --campaign demo-retention --date "$CLOSED" --log-format text

echo "== train-uplift on the answered list, score-uplift at $END"
crmlake train-uplift "${CONF[@]}" --root "$ROOT" --date "$CLOSED" --log-format text
crmlake score-uplift "${CONF[@]}" --root "$ROOT" --date "$END" --log-format text

echo "== results"
python "$REPO/scripts/summary.py" "$ROOT"

echo "== rankings through the loop: retained lines per 1,000 contacts (truth read from truth/ by this evaluation only)"
python "$REPO/scripts/campaign_quality.py" "$ROOT" "${CONF[@]}" --campaign demo-retention --date "$END"
