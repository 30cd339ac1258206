#!/usr/bin/env bash
# Benchmark generate + ingest at a chosen scale (default small), DuckDB side by side: DuckDB SQL
# doing what ingest does to usage (scripts/bench/ingest_peer.py), checked row for row.
#   scripts/bench.sh [--subscribers N] [--days K] [--skip-ingest] [--no-peer] [--keep] [--root DIR] [--conf FILE]...
# Ingest files generated before (hard-linked into a fresh root), e.g. three days of the 100 M run:
#   scripts/bench.sh --landing-from DIR --root DIR2
# The 100-million-record run on a 2-core machine:
#   scripts/bench.sh --subscribers 200000 --days 30 --skip-ingest
# Lifetime value (fit + score 1M and 10M simulated customers, lifetimes on the same 1M):
#   scripts/bench.sh clv [--customers 1000000 10000000] [--lifetimes 1000000]
# Churn model (train-churn + score-churn on 1M simulated snapshots, scikit-learn on the same rows):
#   scripts/bench.sh churn [--rows 1000000] [--candidates gbt logistic_regression] [--peer-timeout 1800]
# Results are appended, with the machine and scale, to scripts/bench/RESULTS.md.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup.sh"
cd "$REPO"
if [ "${1:-}" = clv ]; then
  shift
  exec python "$REPO/scripts/bench/clv.py" "$@"
fi
if [ "${1:-}" = churn ]; then
  shift
  exec python "$REPO/scripts/bench/churn.py" "$@"
fi
exec python "$REPO/scripts/bench/run.py" "$@"
