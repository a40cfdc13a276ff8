#!/usr/bin/env bash
# Runs every suite: Swift unit, Redis and integration tests, then the Python end-to-end clients,
# against a throw-away redis-server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/throwaway-redis.sh

swift format lint --strict --recursive Sources Tests
swift build --build-tests
set +e
swift test --skip-build
swift_status=$?

export REVERB_BIN="$PWD/.build/debug/reverb"
.venv/bin/python -m pytest -q Tests/EndToEnd
pytest_status=$?
set -e
if [[ $swift_status -ne 0 || $pytest_status -ne 0 ]]; then
    echo "Swift tests exit $swift_status, end-to-end tests exit $pytest_status"
    exit 1
fi
