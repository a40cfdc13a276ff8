#!/usr/bin/env bash
# Runs reverb-bench against a release swift-reverb and a redis-server it starts on free loopback
# ports, prints each scenario's table, the fan-out ratios against redis-server and the targets of
# issue #7, then stops everything it started. Results land in bench-results/ (JSON).
#
# Sizes fit a 2-core machine in under 10 minutes; override with BENCH_* variables:
#   BENCH_CONNECTIONS (10000), BENCH_DURATION (10 s per phase), BENCH_SUBSCRIBERS (1000),
#   BENCH_BIG_SUBSCRIBERS (10000), BENCH_HTTP_CONNECTIONS (32), BENCH_RATE (100),
#   BENCH_CLUSTER=0 to skip the cluster scenarios (two scaling nodes sharing the redis-server, once
#   over pub/sub and once over a Redis Stream, REVERB_SCALING_TRANSPORT=streams),
#   BENCH_REVERB=path/to/reverb to measure another server build with the same client (before/after),
#   BENCH_ONLY="fanout-small redis-small ..." to run only the named scenarios.
#
# Two long scenarios run only when BENCH_ONLY names them (never by default):
#   soak          one fresh server, SOAK_CONNECTIONS (10000) connections under churn for SOAK_MINUTES (30),
#                 with events, presence, whispers and slow clients; RSS and descriptors sampled.
#   redis-outage  two scaling nodes on a redis-server of their own, OUTAGE_RATE (50) events/s on node A
#                 for OUTAGE_DURATION (150) s, Redis stopped OUTAGE_START (30) s in for OUTAGE_SECONDS (60)
#                 with signal REDIS_OUTAGE_SIGNAL (TERM), started again with the same arguments; once over
#                 pub/sub and once over streams (that Redis with --appendonly yes --appendfsync everysec, so
#                 the stream survives the restart). OUTAGE_SUBSCRIBERS (100) per node.
#   e.g. BENCH_ONLY=soak SOAK_MINUTES=3 ./scripts/bench.sh;  BENCH_ONLY=redis-outage ./scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

connections=${BENCH_CONNECTIONS:-10000}
duration=${BENCH_DURATION:-10}
subscribers=${BENCH_SUBSCRIBERS:-1000}
big_subscribers=${BENCH_BIG_SUBSCRIBERS:-10000}
http_connections=${BENCH_HTTP_CONNECTIONS:-32}
rate=${BENCH_RATE:-100}

swift build -c release --product reverb
swift build -c release --product reverb-bench
bench=.build/release/reverb-bench
reverb=${BENCH_REVERB:-.build/release/reverb}

# One process holds one descriptor per socket: client and server each need the hard limit.
ulimit -n "$(ulimit -Hn)"

results=bench-results
mkdir -p "$results"
workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for pidfile in "$workdir"/*/redis.pid; do
        [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$workdir"
}
trap cleanup EXIT

# free_port, start_server
source scripts/bench-nodes.sh

export REVERB_APP_ID=bench REVERB_APP_KEY=bench-key REVERB_APP_SECRET=bench-secret

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$workdir" \
    --maxclients 20000 --logfile "$workdir/redis.log" &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_url="redis://127.0.0.1:$redis_port"

start_server node-a
node_a_pid=$server_pid
node_a_url=$server_url
echo "reverb $node_a_url (pid $node_a_pid), redis-server $redis_url (pid $redis_pid), client $(nproc) cores"
echo

run() {
    local name=$1
    shift
    if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $name "* ]]; then return; fi
    "$bench" "$@" --json "$results/$name.json"
}

run connections connections --url "$node_a_url" --server-pid "$node_a_pid" --connections "$connections" \
    --source-addresses 2
run fanout-small fanout --url "$node_a_url" --server-pid "$node_a_pid" --subscribers "$subscribers" \
    --rate "$rate" --rate max --duration "$duration"
run redis-small redis-baseline --redis-url "$redis_url" --server-pid "$redis_pid" --subscribers "$subscribers" \
    --rate "$rate" --rate max --duration "$duration"
run fanout-big fanout --url "$node_a_url" --server-pid "$node_a_pid" --subscribers "$big_subscribers" \
    --rate 10 --rate max --duration "$duration"
run redis-big redis-baseline --redis-url "$redis_url" --server-pid "$redis_pid" --subscribers "$big_subscribers" \
    --rate 10 --rate max --duration "$duration"
run http-none http --url "$node_a_url" --server-pid "$node_a_pid" --connections "$http_connections" \
    --duration "$duration"
run http-subscribed http --url "$node_a_url" --server-pid "$node_a_pid" --connections "$http_connections" \
    --subscribers 1000 --duration "$duration"

# Two scaling nodes on the redis-server: triggers on A, subscribers on B; servers 1, 2 = A, B and
# server 3 = redis-server (its CPU and memory). Run once per transport, the nodes stopped in between.
cluster_run() {
    local name=$1 transport=$2
    if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $name "* ]]; then return; fi
    start_server "$name-b" REVERB_SCALING_ENABLED=true REDIS_URL="$redis_url" REVERB_SCALING_CHANNEL="$name" \
        REVERB_SCALING_TRANSPORT="$transport"
    local b_pid=$server_pid b_url=$server_url
    start_server "$name-a" REVERB_SCALING_ENABLED=true REDIS_URL="$redis_url" REVERB_SCALING_CHANNEL="$name" \
        REVERB_SCALING_TRANSPORT="$transport"
    local a_pid=$server_pid a_url=$server_url
    run "$name" cluster --trigger-url "$a_url" --subscriber-url "$b_url" --server-pid "$a_pid" \
        --server-pid "$b_pid" --server-pid "$redis_pid" --subscribers "$subscribers" --rate "$rate" --rate max \
        --duration "$duration"
    echo "redis-server memory after $name: $(redis-cli -p "$redis_port" info memory | sed -n 's/^used_memory_human:\(.*\)\r$/\1/p')"
    kill "$a_pid" "$b_pid"
    wait "$a_pid" "$b_pid" 2>/dev/null || true
}

if [[ ${BENCH_CLUSTER:-1} == 1 ]]; then
    kill "$node_a_pid"
    wait "$node_a_pid" 2>/dev/null || true
    cluster_run cluster pubsub
    cluster_run cluster-streams streams
else
    echo "cluster: skipped (BENCH_CLUSTER=0)"
    echo
fi

# The long scenarios, only when named.
named() { [[ " ${BENCH_ONLY:-} " == *" $1 "* ]]; }

if named soak; then
    start_server soak
    soak_pid=$server_pid
    echo "soak: reverb $server_url (pid $soak_pid), ${SOAK_MINUTES:-30} min"
    "$bench" soak --url "$server_url" --server-pid "$soak_pid" --minutes "${SOAK_MINUTES:-30}" \
        --connections "${SOAK_CONNECTIONS:-10000}" --json "$results/soak.json"
    kill "$soak_pid"
    wait "$soak_pid" 2>/dev/null || true
    cp "$workdir/soak.log" "$results/soak-server.log"
fi

# Two scaling nodes on a redis-server of their own, which the bench stops and starts again (same port,
# same arguments) through the two commands; the nodes' logs are kept in bench-results/.
outage_run() {
    local name=$1 transport=$2
    local dir="$workdir/$name"
    mkdir -p "$dir"
    local port
    port=$(free_port)
    local args=(--port "$port" --bind 127.0.0.1 --save '' --dir "$dir" --maxclients 20000
        --logfile "$dir/redis.log" --daemonize yes --pidfile "$dir/redis.pid")
    if [[ $transport == streams ]]; then
        args+=(--appendonly yes --appendfsync everysec)
    else
        args+=(--appendonly no)
    fi
    local start_redis stop_redis
    start_redis="redis-server $(printf '%q ' "${args[@]}") && for i in \$(seq 100); do"
    start_redis+=" redis-cli -p $port ping >/dev/null 2>&1 && exit 0; sleep 0.1; done; exit 1"
    # The daemon is nobody's child here: wait until its /proc entry is gone or a zombie.
    stop_redis="pid=\$(cat $dir/redis.pid) && kill -${REDIS_OUTAGE_SIGNAL:-TERM} \$pid && while [ -d /proc/\$pid ]"
    stop_redis+=" && [ \"\$(cut -d' ' -f3 /proc/\$pid/stat 2>/dev/null)\" != Z ]; do sleep 0.1; done"
    sh -c "$start_redis"
    local env=(REVERB_SCALING_ENABLED=true REDIS_URL="redis://127.0.0.1:$port" REVERB_SCALING_CHANNEL="$name"
        REVERB_SCALING_TRANSPORT="$transport")
    start_server "$name-a" "${env[@]}"
    local a_pid=$server_pid a_url=$server_url
    start_server "$name-b" "${env[@]}"
    local b_pid=$server_pid b_url=$server_url
    echo "$name: nodes $a_url (pid $a_pid), $b_url (pid $b_pid), redis-server port $port ($transport)"
    "$bench" redis-outage --node-a-url "$a_url" --node-b-url "$b_url" --server-pid "$a_pid" --server-pid "$b_pid" \
        --subscribers "${OUTAGE_SUBSCRIBERS:-100}" --rate "${OUTAGE_RATE:-50}" --duration "${OUTAGE_DURATION:-150}" \
        --outage-start "${OUTAGE_START:-30}" --outage-seconds "${OUTAGE_SECONDS:-60}" \
        --outage-begin-command "$stop_redis" --outage-end-command "$start_redis" --json "$results/$name.json"
    for pid in "$a_pid" "$b_pid"; do
        if [[ ! -d /proc/$pid || $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
            echo "$name: node pid $pid had exited" >&2
        fi
    done
    kill "$a_pid" "$b_pid" 2>/dev/null || true
    wait "$a_pid" "$b_pid" 2>/dev/null || true
    sh -c "$stop_redis" || true
    cp "$workdir/$name-a.log" "$results/$name-a.log"
    cp "$workdir/$name-b.log" "$results/$name-b.log"
    cp "$dir/redis.log" "$results/$name-redis.log"
}

if named redis-outage; then
    outage_run redis-outage-pubsub pubsub
    outage_run redis-outage-streams streams
fi

# The summary needs every scenario.
[[ -z ${BENCH_ONLY:-} ]] || exit 0
python3 - "$results" <<'PY'
import json, sys
results = sys.argv[1]
def load(name):
    with open(f"{results}/{name}.json") as f:
        return json.load(f)
def metric(report, phase, name):
    for p in report["phases"]:
        if p["name"] == phase:
            for m in p["metrics"]:
                if m["name"] == name:
                    return m["value"]
    return None
conn = load("connections")
fs, rs, fb, rb = load("fanout-small"), load("redis-small"), load("fanout-big"), load("redis-big")
hn = load("http-none")
small = fs["parameters"]["subscribers"]
big = fb["parameters"]["subscribers"]
rate_phase = fs["phases"][0]["name"]
print("== fan-out ratio (reverb deliveries/s / redis-server deliveries/s, same client)")
for label, ours, theirs in [(f"{small} subscribers, {rate_phase}", fs, rs), (f"{small} subscribers, max", fs, rs),
                            (f"{big} subscribers, max", fb, rb)]:
    phase = "max" if label.endswith("max") else rate_phase
    a, b = metric(ours, phase, "deliveries/s"), metric(theirs, phase, "deliveries/s")
    print(f"{label:32} {a:12.0f} / {b:12.0f} = {a / b:5.2f}")
print()
kib = metric(conn, conn["phases"][0]["name"], "KiB per connection")
ratio_small = metric(fs, "max", "deliveries/s") / metric(rs, "max", "deliveries/s")
ratio_big = metric(fb, "max", "deliveries/s") / metric(rb, "max", "deliveries/s")
p99, redis_p99 = metric(fs, rate_phase, "latency p99"), metric(rs, rate_phase, "latency p99")
lost = metric(fs, rate_phase, "lost")
def connect_rate(report):
    phase = report["phases"][0]["name"]
    return metric(report, phase, "subscribers") / metric(report, phase, "subscribe time")
connect_ratio = connect_rate(fb) / connect_rate(rb)
http = metric(hn, hn["phases"][0]["name"], "events/s")
rows = [
    (f"KiB per idle connection ({conn['parameters']['connections']})", "<= 5", kib, kib is not None and kib <= 5),
    (f"fan-out ratio at {small} subscribers, max", ">= 1.0", ratio_small, ratio_small >= 1.0),
    (f"fan-out ratio at {big} subscribers, max", ">= 1.0", ratio_big, ratio_big >= 1.0),
    (f"p99 / redis p99 at {small} subscribers, {rate_phase}", "<= 1.0", p99 / redis_p99, p99 <= redis_p99),
    (f"lost at {small} subscribers, {rate_phase}", "0", lost, lost == 0),
    (f"connect rate / redis subscribe rate ({big})", ">= 1.0", connect_ratio, connect_ratio >= 1.0),
    ("signed POST /events per s, 32 conns, no subscribers", ">= 40000", http, http >= 40000),
]
for name, ours, theirs in [(f"{small}", fs, rs), (f"{big}", fb, rb)]:
    for kind in ["latency p99", "latency max"]:
        a, b = metric(ours, "max", kind), metric(theirs, "max", kind)
        rows.append((f"{kind} at {name} subscribers, max (ms): ours / redis", "<= 1.0", a / b, a <= b))
try:
    cl = load("cluster")
    cluster = metric(cl, "max", "deliveries/s")
    cluster_lost = sum(metric(cl, p["name"], "lost") or 0 for p in cl["phases"])
    rows.append(("cluster deliveries/s at node B, max", ">= 1.5M", cluster, cluster >= 1_500_000))
    rows.append(("cluster lost", "0", cluster_lost, cluster_lost == 0))
    cs = load("cluster-streams")
    streams = metric(cs, "max", "deliveries/s")
    rows.append(("streams / pubsub cluster deliveries/s, max", ">= 0.8", streams / cluster, streams >= 0.8 * cluster))
    p50_added = metric(cs, rate_phase, "latency p50") - metric(cl, rate_phase, "latency p50")
    rows.append((f"streams p50 A->B minus pubsub p50, {rate_phase} (ms)", "<= 1", p50_added, p50_added <= 1))
    rows.append(("streams lost", "0", sum(metric(cs, p["name"], "lost") or 0 for p in cs["phases"]),
                 all((metric(cs, p["name"], "lost") or 0) == 0 for p in cs["phases"])))
except FileNotFoundError:
    pass
print("== targets (issue #10)")
for name, target, value, ok in rows:
    shown = "n/a" if value is None else (f"{value:.2f}" if value < 100 else f"{value:.0f}")
    print(f"{name:56} {target:>9} {shown:>10}  {'met' if ok else 'MISSED'}")
PY
