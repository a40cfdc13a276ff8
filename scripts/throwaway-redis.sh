# Sourced by test.sh and test-sanitizer.sh: starts a throw-away redis-server on a free loopback port
# (no persistence, its own directory), exports REVERB_TEST_REDIS_URL, and stops it on exit.
redis_workdir=$(mktemp -d)
redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_workdir" \
    --daemonize yes --pidfile "$redis_workdir/redis.pid" --logfile "$redis_workdir/redis.log"
stop_throwaway_redis() {
    [[ -f "$redis_workdir/redis.pid" ]] && kill "$(cat "$redis_workdir/redis.pid")" 2>/dev/null || true
    rm -rf "$redis_workdir"
}
trap stop_throwaway_redis EXIT
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
export REVERB_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
