#!/usr/bin/env bash
# Runs the whole Swift test suite under a sanitizer (thread or address), in its own build directory
# (.build/<sanitizer>), against a throw-away redis-server, and fails on any sanitizer report.
#   ./scripts/test-sanitizer.sh thread     (make test-tsan)
#   ./scripts/test-sanitizer.sh address    (make test-asan)
# Extra arguments go to `swift test` (e.g. --filter FanoutTests).
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer=${1:?usage: test-sanitizer.sh thread|address [swift test arguments]}
shift

source scripts/throwaway-redis.sh

case $sanitizer in
    thread) export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}" ;;
    address) export ASAN_OPTIONS="halt_on_error=1 detect_leaks=0 ${ASAN_OPTIONS:-}" ;;
    *) echo "unknown sanitizer $sanitizer (thread or address)" >&2; exit 64 ;;
esac
log="$redis_workdir/test.log"
# Serially: the sanitizers slow the suite 5-15x, and with every suite at once the Redis tests' 5 s
# connection set-up timeouts fired on a 2-core machine.
set +e
swift test --sanitize="$sanitizer" --scratch-path ".build/$sanitizer" --no-parallel "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -q -E "WARNING: ThreadSanitizer|ERROR: AddressSanitizer" "$log"; then
    echo "sanitizer reports found" >&2
    exit 1
fi
exit "$status"
