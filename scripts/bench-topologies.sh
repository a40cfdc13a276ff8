#!/usr/bin/env bash
# `reverb-bench cluster` over the three Redis topologies in one run (docs.md "Scaling"): one
# redis-server, a Sentinel deployment (primary, replica, three sentinels) and a Redis Cluster (three
# primaries with a replica each), each started on free loopback ports by this script. Two release nodes
# per topology (triggers on A, subscribers on B), the same sizes for all; prints deliveries/s and
# latency side by side. TOPOLOGY_SUBSCRIBERS (1000), TOPOLOGY_DURATION (10 s per phase),
# TOPOLOGY_RATE (100), TOPOLOGY_ROUTING (broadcast), TOPOLOGIES ("server sentinel cluster").
set -euo pipefail
cd "$(dirname "$0")/.."

subscribers=${TOPOLOGY_SUBSCRIBERS:-1000}
duration=${TOPOLOGY_DURATION:-10}
rate=${TOPOLOGY_RATE:-100}
routing=${TOPOLOGY_ROUTING:-broadcast}
topologies=${TOPOLOGIES:-server sentinel cluster}

swift build -c release --product reverb >/dev/null
swift build -c release --product reverb-bench >/dev/null
bench=.build/release/reverb-bench
reverb=.build/release/reverb
ulimit -n "$(ulimit -Hn)"

results=bench-results
mkdir -p "$results"
workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -d $workdir/sentinel ]] && scripts/start-redis-sentinel.sh stop "$workdir/sentinel" || true
    [[ -d $workdir/cluster ]] && scripts/start-redis-cluster.sh stop "$workdir/cluster" || true
    [[ -f $workdir/redis.pid ]] && kill "$(cat "$workdir/redis.pid")" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

export REVERB_APP_ID=bench REVERB_APP_KEY=bench-key REVERB_APP_SECRET=bench-secret

# free_port, start_server
source scripts/bench-nodes.sh

# The REDIS_* lines a start script printed, as env arguments.
redis_env() { grep -E '^REDIS_[A-Z_]+=' || true; }

for topology in $topologies; do
    case $topology in
        server)
            port=$(free_port)
            redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$workdir" \
                --daemonize yes --pidfile "$workdir/redis.pid" --logfile "$workdir/redis.log"
            for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
            mapfile -t settings < <(echo "REDIS_URL=redis://127.0.0.1:$port")
            ;;
        sentinel) mapfile -t settings < <(scripts/start-redis-sentinel.sh "$workdir/sentinel" | redis_env) ;;
        cluster) mapfile -t settings < <(scripts/start-redis-cluster.sh start "$workdir/cluster" | redis_env) ;;
        *) echo "unknown topology $topology (server, sentinel or cluster)" >&2; exit 64 ;;
    esac
    common=(REVERB_SCALING_ENABLED=true REVERB_SCALING_CHANNEL="bench-$topology" REVERB_SCALING_ROUTING="$routing"
        "${settings[@]}")
    start_server "$topology-b" "${common[@]}"
    b_pid=$server_pid b_url=$server_url
    start_server "$topology-a" "${common[@]}"
    a_pid=$server_pid a_url=$server_url
    echo "== $topology: ${settings[*]}"
    "$bench" cluster --trigger-url "$a_url" --subscriber-url "$b_url" --server-pid "$a_pid" --server-pid "$b_pid" \
        --subscribers "$subscribers" --rate "$rate" --rate max --duration "$duration" \
        --json "$results/topology-$topology.json"
    kill "$a_pid" "$b_pid"
    wait "$a_pid" "$b_pid" 2>/dev/null || true
done

python3 - "$results" $topologies <<'PY'
import json, sys
results, topologies = sys.argv[1], sys.argv[2:]
def metric(report, phase, name):
    for p in report["phases"]:
        if p["name"] == phase:
            for m in p["metrics"]:
                if m["name"] == name:
                    return m["value"]
    return None
print()
print(f"{'topology':10} {'phase':10} {'deliveries/s':>14} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'lost':>6}")
for topology in topologies:
    report = json.load(open(f"{results}/topology-{topology}.json"))
    for phase in [p["name"] for p in report["phases"]]:
        values = [metric(report, phase, name) for name in ("deliveries/s", "latency p50", "latency p99", "latency max", "lost")]
        print(f"{topology:10} {phase:10} " + " ".join(
            f"{v:>14.0f}" if i == 0 else (f"{v:>8.2f}" if i < 4 else f"{v:>6.0f}") if v is not None else "       -"
            for i, v in enumerate(values)))
PY
