#!/usr/bin/env bash
# Shared set-up for demo.sh and test.sh (source it): a JDK 17+, a Python >= 3.11, the project's
# .venv with pinned dependencies, Delta's JVM jars (from Maven Central through Spark's own
# resolver, or resolved with Maven into .jars/ where Spark's resolver cannot reach it), with
# PostgreSQL's JDBC driver, and crmlake's own JVM classes (lib/jvm, compiled with javac) beside
# them; and a PostgreSQL server's programs, which the JDBC hand-off's tests start.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"

say() { printf '[crmlake setup] %s\n' "$*" >&2; }
die() { printf '[crmlake setup] ERROR: %s\n' "$*" >&2; exit 1; }

java_major() {
  command -v java >/dev/null 2>&1 || { echo 0; return; }
  java -version 2>&1 | awk -F'"' '/version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

ensure_java() {
  if [ "$(java_major)" -ge 17 ] 2>/dev/null; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Java 17+ not found: installing openjdk-17-jdk-headless with apt-get"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null \
      || die "could not install Java 17; install a JDK 17 or newer and put 'java' and 'javac' on PATH"
  fi
  [ "$(java_major)" -ge 17 ] 2>/dev/null || die "Spark 4 needs Java 17 or newer on PATH (found: $(java -version 2>&1 | head -1 || echo none)). Install e.g. 'openjdk-17-jdk-headless'."
}

find_python() {
  for candidate in "${CRMLAKE_PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  die "Python 3.11 or newer is required (set CRMLAKE_PYTHON to its path)"
}

ensure_venv() {
  local stamp="$VENV/.crmlake-installed" want
  want="$(cat "$REPO/pyproject.toml" | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$(find_python)" -m venv "$VENV"
  fi
  say "installing crmlake and its pinned dependencies into .venv (first time takes a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$REPO[dev]"
  echo "$want" > "$stamp"
}

ensure_delta_jars() {
  # Delta's JVM jars for exactly the installed pyspark + delta-spark (crmlake.core.session derives the
  # coordinate), resolved with Maven into .jars/. Spark's own resolver is not used here: it pulls
  # Delta's transitive jars that Spark already ships, and fails where one of them is not served.
  local jar driver
  jar="$("$VENV/bin/python" -c 'from crmlake.core.session import DeltaPin; print(DeltaPin.installed().jar_name)')"
  # and PostgreSQL's JDBC driver (org.postgresql:postgresql:<v> -> postgresql-<v>.jar) beside them
  driver="$("$VENV/bin/python" -c 'from crmlake.core.session import JDBC_DRIVER; a = JDBC_DRIVER.split(":"); print(f"{a[1]}-{a[2]}.jar")')"
  if [ -f "$REPO/.jars/$jar" ] && [ -f "$REPO/.jars/$driver" ]; then return; fi
  if ! command -v mvn >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "Maven not found: installing maven with apt-get (it resolves Delta's jars)"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null \
        || die "could not install Maven; install it, or run scripts/fetch-jars.sh on a machine that has it"
    else
      die "Maven (mvn) is needed to resolve Delta's jars: install it (e.g. apt-get install maven)"
    fi
  fi
  say "resolving Delta's jars ($jar) with Maven into .jars/"
  PYSPARK_PYTHON="$VENV/bin/python" bash "$REPO/scripts/fetch-jars.sh" "$REPO/.jars"
}

ensure_jvm_jar() {
  # crmlake's own JVM classes (lib/jvm), in a jar named after their sources' hash: built again when
  # the sources change. Without javac the jobs still run, on Hadoop's own local file system.
  local jar
  jar="$("$VENV/bin/python" -c 'from crmlake.core.session import local_fs_jar_name; print(local_fs_jar_name())')"
  if [ -f "$REPO/.jars/$jar" ]; then return; fi
  if ! command -v javac >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "javac not found: installing openjdk-17-jdk-headless with apt-get (it compiles lib/jvm)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null || true
  fi
  if ! command -v javac >/dev/null 2>&1; then
    say "WARNING: javac not found: crmlake's local file system (lib/jvm) is not built, and Hadoop's forks a process per file written; install a JDK 17+ (openjdk-17-jdk-headless)"
    return
  fi
  say "compiling crmlake's JVM classes into .jars/$jar"
  PYSPARK_PYTHON="$VENV/bin/python" bash "$REPO/scripts/build-jvm.sh" "$REPO/.jars"
}

postgres_bindir() {
  # Debian keeps the server's programs (initdb, pg_ctl, postgres) off PATH, per major version.
  local dir
  for dir in "$(pg_config --bindir 2>/dev/null || true)" /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
  dir="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
  [ -x "$dir/initdb" ] && echo "$dir"
  return 0
}

ensure_postgres() {
  # The JDBC hand-off's tests (tests/publish/test_jdbc.py) start a throw-away PostgreSQL server.
  if [ -n "$(postgres_bindir)" ]; then return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL (initdb) not found: installing postgresql with apt-get (the JDBC hand-off's tests start one)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || die "could not install PostgreSQL; install Debian's 'postgresql' package (initdb, pg_ctl)"
  else
    say "WARNING: PostgreSQL's initdb/pg_ctl not found: tests/publish/test_jdbc.py will fail; install 'postgresql'"
  fi
}

ensure_java
ensure_venv
ensure_delta_jars
ensure_jvm_jar
ensure_postgres
export PATH="$VENV/bin:$PATH"
export PYSPARK_PYTHON="$VENV/bin/python"
export PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
export PYARROW_IGNORE_TIMEZONE=1
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
