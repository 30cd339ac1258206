#!/usr/bin/env bash
# Set up exactly as demo.sh does, then run the whole test suite (fast, slow and cluster tests).
#   scripts/test.sh [pytest args...]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup.sh"
cd "$REPO"
ruff check lib jobs tests scripts
status=0
python -m pytest -q --durations=15 "$@" || status=$?
# pytest exits 5 when it collected no test: that is a failure here, not a silent pass.
exit "$status"
