#!/usr/bin/env bash
# Compile crmlake's own JVM classes (lib/jvm: a local file system that does not fork a process per
# file) into the jar the session looks for, named after a hash of their sources so that a jar built
# from other sources is never taken for it. Needs javac (a JDK 17 or newer).
#   scripts/build-jvm.sh [DIR]      (default: .jars in the repository)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/.jars}"
PY="${PYSPARK_PYTHON:-$REPO/.venv/bin/python}"
command -v javac >/dev/null 2>&1 || { echo "build-jvm: javac (a JDK 17 or newer) is required: apt-get install openjdk-17-jdk-headless" >&2; exit 1; }
JAR="$("$PY" -c 'from crmlake.core.session import local_fs_jar_name; print(local_fs_jar_name())')"
# Compiled against the Hadoop client that the installed pyspark ships, the one it will run with.
SPARK_JARS="$("$PY" -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
HADOOP_API="$(ls "$SPARK_JARS"/hadoop-client-api-*.jar | head -1)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mapfile -t SOURCES < <(find "$REPO/lib/jvm" -name '*.java' | sort)
javac --release 17 -Xlint:all,-path -cp "$HADOOP_API" -d "$WORK/classes" "${SOURCES[@]}"
mkdir -p "$DEST"
rm -f "$DEST"/crmlake-*.jar
(cd "$WORK/classes" && jar cf "$WORK/$JAR" .)
mv "$WORK/$JAR" "$DEST/$JAR"
echo "build-jvm: ${#SOURCES[@]} sources -> $DEST/$JAR" >&2
