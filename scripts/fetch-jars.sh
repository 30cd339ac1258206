#!/usr/bin/env bash
# Resolve Delta's JVM artifacts (and their runtime dependencies; Scala itself ships with Spark) with Maven into a folder, for
# machines where Spark's own resolver cannot reach the repository. The session builder uses
# the jars in .jars/ (or in CRMLAKE_JARS_DIR / spark.jars_dir) through spark.jars.
#   scripts/fetch-jars.sh [DIR]      (default: .jars in the repository)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/.jars}"
command -v mvn >/dev/null 2>&1 || { echo "fetch-jars: Maven (mvn) is required: apt-get install maven" >&2; exit 1; }
# The coordinates the session would ask Spark for, from the committed config.
PACKAGE="$(grep -E '^\s*delta_package:' "$REPO/conf/base/platform.yaml" | sed -E 's/.*"(.*)".*/\1/')"
IFS=: read -r GROUP ARTIFACT VERSION <<<"$PACKAGE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>crmlake</groupId><artifactId>delta-jars</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>$GROUP</groupId><artifactId>$ARTIFACT</artifactId><version>$VERSION</version></dependency>
  </dependencies>
</project>
POM
mkdir -p "$DEST"
mvn -q -f "$WORK/pom.xml" dependency:copy-dependencies -DincludeScope=runtime -DexcludeGroupIds=org.scala-lang -DoutputDirectory="$DEST"
echo "fetch-jars: $(ls "$DEST"/*.jar | wc -l) jars for $PACKAGE in $DEST" >&2
