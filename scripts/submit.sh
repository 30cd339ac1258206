#!/usr/bin/env bash
# spark-submit a crmlake job to a cluster, with Delta's jars and the project's Python.
#   scripts/submit.sh [--master URL] <job> [job options...]
#   e.g. scripts/submit.sh --master spark://127.0.0.1:7077 ingest --root /data/crm --date 2026-01-05
# Delta's jars come from .jars/ (scripts/fetch-jars.sh) when present, else --packages.
# Extra spark-submit options can be given in SPARK_SUBMIT_OPTS_EXTRA.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYSPARK_PYTHON:-$REPO/.venv/bin/python}"
SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
MASTER="${CRMLAKE_MASTER:-spark://127.0.0.1:7077}"
if [ "${1:-}" = "--master" ]; then MASTER="$2"; shift 2; fi
JOB="${1:?usage: scripts/submit.sh [--master URL] <job> [options]}"; shift
[ -f "$REPO/jobs/$JOB.py" ] || { echo "submit: no job named '$JOB' (see jobs/)" >&2; exit 2; }
PACKAGE="$("$PY" -m crmlake.core.session)"  # derived from the installed pyspark and delta-spark
JARS_DIR="${CRMLAKE_JARS_DIR:-$REPO/.jars}"
# crmlake's own jar (crmlake-jvm-*) is left out: its local file system is used only where crmlake
# starts a local JVM itself (crmlake.core.session.no_fork_local_fs_settings).
if ls "$JARS_DIR"/*.jar >/dev/null 2>&1; then
  DEPS=(--jars "$(ls "$JARS_DIR"/*.jar | grep -v '/crmlake-[^/]*$' | paste -sd, -)")
else
  DEPS=(--packages "$PACKAGE")
fi
export PYSPARK_PYTHON="$PY" CRMLAKE_ENV="${CRMLAKE_ENV:-cluster}"
# shellcheck disable=SC2086
exec "$SPARK_HOME/bin/spark-submit" --master "$MASTER" "${DEPS[@]}" \
  --conf spark.pyspark.python="$PY" --conf spark.pyspark.driver.python="$PY" \
  --conf spark.ui.enabled=false ${SPARK_SUBMIT_OPTS_EXTRA:-} \
  "$REPO/jobs/$JOB.py" "$@"
