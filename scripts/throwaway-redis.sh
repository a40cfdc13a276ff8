# Sourced by test.sh and test-sanitizer.sh: starts a throw-away redis-server on a free loopback port
# (no persistence, its own directory), exports REVERB_TEST_REDIS_URL, and stops it on exit.
# redis-server cannot listen on port 0 and report the port, so the port is picked first and the start
# counts only when the server answering there is ours (its process_id is the pidfile's); otherwise
# another port is tried.
redis_workdir=$(mktemp -d)
stop_throwaway_redis() {
    [[ -f "$redis_workdir/redis.pid" ]] && kill "$(cat "$redis_workdir/redis.pid")" 2>/dev/null || true
    rm -rf "$redis_workdir"
}
trap stop_throwaway_redis EXIT
redis_ours() {
    local pid
    pid=$(cat "$redis_workdir/redis.pid" 2>/dev/null) || return 1
    [[ -n $pid ]] && redis-cli -p "$redis_port" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"
}
for _attempt in 1 2 3 4 5; do
    redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -f "$redis_workdir/redis.pid"
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_workdir" \
        --daemonize yes --pidfile "$redis_workdir/redis.pid" --logfile "$redis_workdir/redis.log"
    for _ in $(seq 50); do redis_ours && break; sleep 0.1; done
    redis_ours && break
    stop_throwaway_redis_attempt=$(cat "$redis_workdir/redis.pid" 2>/dev/null) && kill "$stop_throwaway_redis_attempt" 2>/dev/null
    echo "throw-away redis-server did not come up on port $redis_port; trying another port" >&2
done
redis_ours || { echo "throw-away redis-server did not start: $(tail -5 "$redis_workdir/redis.log")" >&2; exit 1; }
export REVERB_TEST_REDIS_URL="redis://127.0.0.1:$redis_port"
