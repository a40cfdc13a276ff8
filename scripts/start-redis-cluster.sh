#!/usr/bin/env bash
# Starts or stops a throw-away Redis Cluster: three primaries and one replica each, on free loopback
# ports, each node with its own directory under DIR (no persistence, cluster-node-timeout 1000 ms, a
# replica fails over however long it was cut off: cluster-replica-validity-factor 0).
#
#   scripts/start-redis-cluster.sh start DIR   # prints REDIS_CLUSTER=127.0.0.1:p1,... once the cluster is ok
#   scripts/start-redis-cluster.sh stop DIR    # kills every node started in DIR and removes DIR
#
# `start` also writes DIR/env (the same line) and DIR/ports (one port a line, primaries first).
# PRIMARIES and REPLICAS (default 3 and 1) change the shape.
set -euo pipefail

mode=${1:-}
dir=${2:-}
if [[ -z $mode || -z $dir ]]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 64
fi

stop_cluster() {
    for pidfile in "$dir"/*/redis.pid; do
        [[ -f $pidfile ]] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$dir"
}

if [[ $mode == stop ]]; then
    stop_cluster
    exit 0
fi
[[ $mode == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 64; }

primaries=${PRIMARIES:-3}
replicas=${REPLICAS:-1}
count=$((primaries * (1 + replicas)))
mkdir -p "$dir"
# Ports picked together, so none repeats (a client port and a cluster bus port per node, the bus port
# given explicitly: the default, port + 10000, may be taken or out of range); a port taken meanwhile
# shows up as a node that never starts.
read -r -a picked <<<"$(python3 -c "
import socket
sockets = [socket.socket() for _ in range(2 * $count)]
for s in sockets: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in sockets))")"
ports=("${picked[@]:0:$count}")
bus_ports=("${picked[@]:$count}")

for index in "${!ports[@]}"; do
    port=${ports[$index]}
    node="$dir/$port"
    mkdir -p "$node"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$node" \
        --cluster-enabled yes --cluster-config-file "$node/nodes.conf" --cluster-node-timeout 1000 \
        --cluster-port "${bus_ports[$index]}" --cluster-replica-validity-factor 0 \
        --daemonize yes --pidfile "$node/redis.pid" --logfile "$node/redis.log"
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
        sleep 0.05
    done
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG || {
        echo "redis-server on port $port did not start: $(tail -3 "$dir/$port/redis.log")" >&2
        stop_cluster
        exit 1
    }
done

addresses=()
for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
redis-cli --cluster create "${addresses[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 || {
    echo "redis-cli --cluster create failed: $(tail -5 "$dir/create.log")" >&2
    stop_cluster
    exit 1
}
# Every node must agree before clients use it: state ok and every slot assigned, as each node sees it.
for port in "${ports[@]}"; do
    for _ in $(seq 200); do
        info=$(redis-cli -p "$port" cluster info 2>/dev/null | tr -d '\r')
        grep -qx 'cluster_state:ok' <<<"$info" && grep -qx 'cluster_slots_ok:16384' <<<"$info" && break
        sleep 0.05
    done
    grep -qx 'cluster_state:ok' <<<"$info" || {
        echo "cluster not ok on port $port" >&2
        stop_cluster
        exit 1
    }
done

# A replica takes over only once it has synchronised with its primary.
for port in "${ports[@]}"; do
    for _ in $(seq 200); do
        info=$(redis-cli -p "$port" info replication 2>/dev/null | tr -d '\r')
        grep -qx 'role:master' <<<"$info" && break
        grep -qx 'master_link_status:up' <<<"$info" && break
        sleep 0.05
    done
done

printf '%s\n' "${ports[@]}" >"$dir/ports"
seeds=$(IFS=,; echo "${addresses[*]:0:$primaries}")
echo "REDIS_CLUSTER=$seeds" | tee "$dir/env"
