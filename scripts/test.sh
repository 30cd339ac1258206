#!/usr/bin/env bash
# Set up exactly as demo.sh does, then run the whole test suite (fast, slow and cluster tests) in
# two processes (pytest-xdist).
#   scripts/test.sh [pytest args...]
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$REPO/scripts/setup.sh"
cd "$REPO"
ruff check lib jobs tests scripts
status=0
# Two worker processes, each test file whole on one (module fixtures are built once).
python -m pytest -q --durations=15 -n 2 --dist loadfile "$@" || status=$?
# pytest exits 5 when it collected no test: that is a failure here, not a silent pass.
exit "$status"
