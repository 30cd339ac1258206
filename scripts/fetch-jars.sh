#!/usr/bin/env bash
# Resolve Delta's JVM artifact with Maven and keep only the jars Spark does not already ship, for
# machines where Spark's own resolver cannot reach the repository (and for spark-submit --jars).
# The coordinate is derived from the installed pyspark and delta-spark (crmlake.core.session), the
# same way the session derives it, so the two cannot disagree. PostgreSQL's JDBC driver (for the
# optional push of published lists) comes along: its coordinate is crmlake.core.session.JDBC_DRIVER.
# crmlake's own JVM classes are compiled beside them (scripts/build-jvm.sh).
#   scripts/fetch-jars.sh [DIR]      (default: .jars in the repository; its old jars are replaced)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/.jars}"
PY="${PYSPARK_PYTHON:-$REPO/.venv/bin/python}"
command -v mvn >/dev/null 2>&1 || { echo "fetch-jars: Maven (mvn) is required: apt-get install maven" >&2; exit 1; }
PACKAGE="$("$PY" -m crmlake.core.session)"
IFS=: read -r GROUP ARTIFACT VERSION <<<"$PACKAGE"
DRIVER="$("$PY" -c 'from crmlake.core.session import JDBC_DRIVER; print(JDBC_DRIVER)')"
IFS=: read -r DGROUP DARTIFACT DVERSION <<<"$DRIVER"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>crmlake</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>$GROUP</groupId><artifactId>$ARTIFACT</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>$DGROUP</groupId><artifactId>$DARTIFACT</artifactId><version>$DVERSION</version></dependency>
  </dependencies>
</project>
POM
# Delta's runtime dependencies include Hadoop, Jackson, Parquet, log4j, slf4j, snappy and Scala
# jars that Spark ships in other versions: two versions of a class on the classpath is a bug
# waiting. Only Delta's own jars, Unity Catalog's client (which Delta's catalog code loads, and
# Spark does not ship) and the PostgreSQL driver (whose only dependency, checker-qual, holds
# compile-time annotations) are kept.
mvn -q -f "$WORK/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
  -DincludeGroupIds=io.delta,io.unitycatalog,"$DGROUP" -DoutputDirectory="$WORK/delta" >/dev/null
mkdir -p "$DEST"
rm -f "$DEST"/*.jar
cp "$WORK"/delta/*.jar "$DEST/"
# crmlake's own classes (lib/jvm) beside them; without a JDK the jobs run on Hadoop's own local
# file system, which forks a process per file written.
if command -v javac >/dev/null 2>&1; then
  PYSPARK_PYTHON="$PY" bash "$REPO/scripts/build-jvm.sh" "$DEST"
else
  echo "fetch-jars: WARNING: no javac, so crmlake's local file system (lib/jvm) is not built: install a JDK 17+ and run scripts/build-jvm.sh" >&2
fi
echo "fetch-jars: $PACKAGE, $DRIVER -> $(ls "$DEST"/*.jar | wc -l) jars in $DEST" >&2
