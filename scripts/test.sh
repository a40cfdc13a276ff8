#!/usr/bin/env bash
# Runs every suite: Swift unit, Redis and integration tests, then the Python end-to-end clients,
# against a throw-away redis-server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/throwaway-redis.sh

swift format lint --strict --recursive Sources Tests Fuzz
# A crash's backtrace: the crashed thread only, fast symbolication. With the defaults, symbolicating
# every thread of the test runner (hundreds of event-loop threads) took more than 6 minutes of one
# core before the crash was even reported.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=yes,threads=crashed,symbolicate=fast}
swift build --build-tests
set +e
# Each fuzz target, built as a corpus-replay tool, runs its seeds and regression inputs once.
fuzz_status=0
for corpus in Fuzz/*/corpus; do
    target=$(basename "$(dirname "$corpus")")
    ".build/debug/$target" || { echo "fuzz replay $target failed"; fuzz_status=1; }
done
swift_log=$(mktemp)
swift test --skip-build 2>&1 | tee "$swift_log"
swift_status=${PIPESTATUS[0]}
# This script installs and starts everything a test needs (redis-server, chromium, openssl …), so a
# skipped test here is a broken set-up hiding its tests: it fails the run, in both suites.
if grep -E '^➜ (Suite|Test) .* skipped' "$swift_log"; then
    echo "Swift tests were skipped (above): the set-up is incomplete"
    swift_status=1
fi
rm -f "$swift_log"
export REVERB_TEST_NO_SKIPS=1

export REVERB_BIN="$PWD/.build/debug/reverb"
.venv/bin/python -m pytest -q Tests/EndToEnd
pytest_status=$?
set -e
if [[ $fuzz_status -ne 0 || $swift_status -ne 0 || $pytest_status -ne 0 ]]; then
    echo "Fuzz corpus replay exit $fuzz_status, Swift tests exit $swift_status, end-to-end tests exit $pytest_status"
    exit 1
fi
