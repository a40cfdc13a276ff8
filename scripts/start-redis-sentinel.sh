#!/usr/bin/env bash
# Starts a throw-away Sentinel deployment in DIR: one primary, one replica (--replicaof) and three
# sentinels (`redis-server --sentinel`, quorum 2), each on a free loopback port, without persistence.
# Waits until every sentinel knows the primary, the replica and the two other sentinels (only then can
# they fail over), and prints the environment for a swift-reverb node plus the processes' ports:
#
#   scripts/start-redis-sentinel.sh DIR        start; prints REDIS_SENTINELS=..., REDIS_SENTINEL_MASTER=...
#   scripts/start-redis-sentinel.sh stop DIR   kill every process started in DIR (SIGKILL) and remove DIR
#
# DIR/<name>.pid holds each process id (primary, replica, sentinel1..3); kill the primary's to see a
# failover. Knobs: SENTINEL_MASTER (default mymaster), SENTINEL_DOWN_AFTER_MS (1000),
# SENTINEL_FAILOVER_TIMEOUT_MS (3000).
set -euo pipefail

usage() { echo "usage: $0 DIR | $0 stop DIR" >&2; exit 64; }

stop_all() {
    local dir=$1 pid
    for file in "$dir"/*.pid; do
        [[ -f $file ]] || continue
        pid=$(cat "$file" 2>/dev/null) || continue
        [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}

if [[ ${1:-} == stop ]]; then
    [[ -n ${2:-} ]] || usage
    stop_all "$2"
    exit 0
fi
[[ -n ${1:-} ]] || usage
dir=$1
master=${SENTINEL_MASTER:-mymaster}
down_after=${SENTINEL_DOWN_AFTER_MS:-1000}
failover_timeout=${SENTINEL_FAILOVER_TIMEOUT_MS:-3000}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
trap 'status=$?; if ((status != 0)); then echo "start-redis-sentinel: failed; logs in $dir" >&2; for f in "$dir"/*.pid; do [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null; done; fi' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The server answering on $2 is the one whose pidfile is $1 (a port picked free may be taken meanwhile).
ours() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ -n $pid ]] && redis-cli -p "$2" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"
}

# start NAME ARGS... : starts redis-server on a free port (tries five), sets $port.
start() {
    local name=$1 attempt
    shift
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        rm -f "$dir/$name.pid"
        "$@" "$port" >/dev/null
        for _ in $(seq 100); do ours "$dir/$name.pid" "$port" && return 0; sleep 0.05; done
        [[ -f $dir/$name.pid ]] && kill -KILL "$(cat "$dir/$name.pid")" 2>/dev/null || true
        echo "start-redis-sentinel: $name did not come up on port $port (attempt $attempt)" >&2
    done
    return 1
}

data_node() {  # name, extra arguments..., port (last)
    local name=$1 port=${*: -1}
    local extra=("${@:2:$#-2}")
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize yes --pidfile "$dir/$name.pid" --logfile "$dir/$name.log" "${extra[@]}"
}

sentinel_node() {  # name, port
    local name=$1 port=$2
    cat >"$dir/$name.conf" <<EOF
port $port
bind 127.0.0.1
daemonize yes
pidfile $dir/$name.pid
logfile $dir/$name.log
dir $dir
sentinel monitor $master 127.0.0.1 $primary_port 2
sentinel down-after-milliseconds $master $down_after
sentinel failover-timeout $master $failover_timeout
sentinel parallel-syncs $master 1
EOF
    redis-server "$dir/$name.conf" --sentinel
}

start primary data_node primary
primary_port=$port
start replica data_node replica --replicaof 127.0.0.1 "$primary_port"
replica_port=$port
sentinel_ports=()
for n in 1 2 3; do
    start "sentinel$n" sentinel_node "sentinel$n"
    sentinel_ports+=("$port")
done

# A sentinel's view: `SENTINEL MASTER` answers field, value, field, value...
field() { redis-cli -p "$1" sentinel master "$master" 2>/dev/null | tr -d '\r' | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'; }
ready() {
    local p
    redis-cli -p "$replica_port" info replication | tr -d '\r' | grep -qx 'master_link_status:up' || return 1
    for p in "${sentinel_ports[@]}"; do
        [[ $(field "$p" num-slaves) == 1 && $(field "$p" num-other-sentinels) == 2 ]] || return 1
    done
}
for _ in $(seq 300); do ready && break; sleep 0.1; done
ready || { echo "start-redis-sentinel: the sentinels did not discover each other and the replica within 30 s" >&2; exit 1; }

sentinels=$(printf '127.0.0.1:%s,' "${sentinel_ports[@]}")
cat <<EOF
REDIS_SENTINELS=${sentinels%,}
REDIS_SENTINEL_MASTER=$master
PRIMARY_PORT=$primary_port
REPLICA_PORT=$replica_port
EOF
