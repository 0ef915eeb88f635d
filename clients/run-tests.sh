#!/usr/bin/env bash
# Builds and tests the Android (plain Java) SDK with javac/java and Debian-packaged jars.
# No Maven/Gradle downloads. The iOS (Swift) tests need macOS / a Swift toolchain: see ios/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PKGS=(junit4 libhamcrest-java libandroid-json-org-java libokhttp-java)
command -v javac >/dev/null 2>&1 || PKGS+=(default-jdk-headless)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "run-tests: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jar_of() { # package, jar file-name regex
  dpkg -L "$1" | grep -E "/$2\$" | head -n 1
}
JSON_JAR=$(jar_of libandroid-json-org-java 'json-android\.jar')
JUNIT_JAR=$(jar_of junit4 'junit4\.jar')
HAMCREST_JAR=$(jar_of libhamcrest-java 'hamcrest-core\.jar')
[ -n "$HAMCREST_JAR" ] || HAMCREST_JAR=$(jar_of libhamcrest-java 'hamcrest[^/]*\.jar')
for j in "$JSON_JAR" "$JUNIT_JAR" "$HAMCREST_JAR"; do
  [ -f "$j" ] || { echo "run-tests: missing jar ($j)" >&2; exit 1; }
done

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
CP="$JSON_JAR:$JUNIT_JAR:$HAMCREST_JAR"

echo "run-tests: compiling android core (--release 8)"
javac --release 8 -Xlint:all,-options -cp "$JSON_JAR" -d "$OUT/main" $(find android/src/main/java -name '*.java')
javac --release 8 -nowarn -cp "$CP:$OUT/main" -d "$OUT/test" $(find android/src/test/java -name '*.java')

# The OkHttp adapter is written against the API common to OkHttp 3.13 and 4.x (okhttp3.Dns,
# EventListener); build.gradle declares 4.x, here it is compiled and tested against Debian's 3.13.
OKHTTP_JAR=$(jar_of libokhttp-java 'okhttp\.jar')
OKIO_JAR=$(jar_of libokio-java 'okio\.jar')
for j in "$OKHTTP_JAR" "$OKIO_JAR"; do
  [ -f "$j" ] || { echo "run-tests: missing jar ($j)" >&2; exit 1; }
done
echo "run-tests: compiling the OkHttp adapter against $OKHTTP_JAR"
javac --release 8 -Xlint:all,-options -cp "$JSON_JAR:$OUT/main:$OKHTTP_JAR:$OKIO_JAR" -d "$OUT/okhttp" \
  $(find android/okhttp/src/main/java -name '*.java')
javac --release 8 -nowarn -cp "$CP:$OUT/main:$OUT/test:$OUT/okhttp:$OKHTTP_JAR:$OKIO_JAR" -d "$OUT/okhttp-test" \
  $(find android/okhttp/src/test/java -name '*.java')

test_classes() { (cd "$1" && find . -name '*Test.java' | sed 's|^\./||; s|\.java$||; s|/|.|g' | sort); }
CLASSES="$(test_classes android/src/test/java) $(test_classes android/okhttp/src/test/java)"
echo "run-tests: running JUnit ($(echo $CLASSES | wc -w) classes)"
[ -n "${HTTPDNS_URL:-}" ] && echo "run-tests: HTTPDNS_URL=$HTTPDNS_URL, LiveServerTest will hit it" \
  || echo "run-tests: HTTPDNS_URL not set, LiveServerTest is skipped"
java -Dhttpdns.testdata="$PWD/testdata" \
  -cp "$CP:$OUT/main:$OUT/test:$OUT/okhttp:$OUT/okhttp-test:$OKHTTP_JAR:$OKIO_JAR" org.junit.runner.JUnitCore $CLASSES

echo "run-tests: Android SDK tests passed."
echo "run-tests: NOTE: iOS (Swift) tests were not run; they need macOS with Xcode or a Swift toolchain:"
echo "run-tests:       cd clients/ios && swift test"
