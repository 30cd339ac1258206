#!/usr/bin/env bash
# A local standalone Spark cluster from the PySpark install: one master and N workers on
# 127.0.0.1 (the wheel ships spark-daemon.sh but not start-master.sh).
#   scripts/cluster.sh start [WORKERS]   (default 2 workers, 1 core and 2 GiB each)
#   scripts/cluster.sh stop
#   scripts/cluster.sh status
# CRMLAKE_CLUSTER_DIR (default .cluster/) holds PID files, logs and worker scratch space.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYSPARK_PYTHON:-$REPO/.venv/bin/python}"
export SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
STATE="${CRMLAKE_CLUSTER_DIR:-$REPO/.cluster}"
export SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1
export SPARK_PID_DIR="$STATE/pids" SPARK_LOG_DIR="$STATE/logs" SPARK_WORKER_DIR="$STATE/work"
export SPARK_IDENT_STRING=crmlake PYSPARK_PYTHON="$PY"
MASTER_PORT="${CRMLAKE_MASTER_PORT:-7077}"
MASTER_URL="spark://127.0.0.1:$MASTER_PORT"
DAEMON="$SPARK_HOME/sbin/spark-daemon.sh"

wait_for_log() {  # file, pattern, what
  for _ in $(seq 1 60); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 1
  done
  echo "cluster: $3 did not start; see $1" >&2
  return 1
}

case "${1:-}" in
  start)
    workers="${2:-2}"
    mkdir -p "$SPARK_PID_DIR" "$SPARK_LOG_DIR" "$SPARK_WORKER_DIR"
    "$DAEMON" start org.apache.spark.deploy.master.Master 1 \
      --host 127.0.0.1 --port "$MASTER_PORT" --webui-port 0 >/dev/null
    wait_for_log "$SPARK_LOG_DIR"/*Master-1-*.out "I have been elected leader" master
    for i in $(seq 1 "$workers"); do
      "$DAEMON" start org.apache.spark.deploy.worker.Worker "$i" \
        --host 127.0.0.1 --cores 1 --memory 2g --webui-port 0 "$MASTER_URL" >/dev/null
    done
    for i in $(seq 1 "$workers"); do
      wait_for_log "$SPARK_LOG_DIR"/*Worker-"$i"-*.out "Successfully registered with master" "worker $i"
    done
    echo "$MASTER_URL"
    ;;
  stop)
    for pidfile in "$SPARK_PID_DIR"/*.pid; do
      [ -e "$pidfile" ] || continue
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$pidfile"
    done
    ;;
  status)
    for pidfile in "$SPARK_PID_DIR"/*.pid; do
      [ -e "$pidfile" ] || { echo "no daemons"; exit 0; }
      pid="$(cat "$pidfile")"
      if kill -0 "$pid" 2>/dev/null; then echo "$(basename "$pidfile"): running ($pid)"; else echo "$(basename "$pidfile"): dead"; fi
    done
    ;;
  *)
    echo "usage: scripts/cluster.sh start [WORKERS] | stop | status" >&2
    exit 2
    ;;
esac
