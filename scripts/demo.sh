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
# From 29 December to 14 January: the month to date reported at the end (1-14 January) opens
# on a base the first extracts observed (a month that starts with the first extract has none).
DAYS="${CRMLAKE_DEMO_DAYS:-17}"
START="${CRMLAKE_DEMO_START:-2025-12-29}"

echo "== generate: $SUBSCRIBERS subscribers, $DAYS days from $START, 1% bad records -> $ROOT/landing"
crmlake generate --root "$ROOT" --subscribers "$SUBSCRIBERS" --start "$START" --days "$DAYS" --seed 42 \
  --bad-rate 0.01 --log-format text

echo "== ingest: every file date in landing -> bronze, silver, quarantine"
crmlake ingest --root "$ROOT" --all --log-format text

END="$(python -c "import datetime as d; print(d.date.fromisoformat('$START') + d.timedelta(days=$DAYS - 1))")"
echo "== features: subscriber-days, the feature snapshot and due churn labels at $END"
crmlake features --root "$ROOT" --date "$END" --log-format text

echo "== segment: rule-based segments, named clusters (fitted and registered in MLflow) and migration at $END"
crmlake segment --root "$ROOT" --date "$END" --log-format text

echo "== kpis: the day $END and its month to date (also by lifecycle stage), cohort retention"
crmlake kpis --root "$ROOT" --date "$END" --log-format text

echo "== clv: BG/NBD + Gamma-Gamma for prepaid top-ups, sBG per cohort and tariff for postpaid lines, at $END"
crmlake clv --root "$ROOT" --date "$END" --log-format text

echo "== results"
python "$REPO/scripts/summary.py" "$ROOT"
