#!/usr/bin/env bash
# Runs every suite: Swift unit, Redis and integration tests, then the Python end-to-end clients,
# against a throw-away redis-server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."

workdir=$(mktemp -d)
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$workdir" \
    --daemonize yes --pidfile "$workdir/redis.pid" --logfile "$workdir/redis.log"
cleanup() {
    [[ -f "$workdir/redis.pid" ]] && kill "$(cat "$workdir/redis.pid")" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export REVERB_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"

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
