# Shared by scripts/bench-metrics.sh and scripts/bench-dashboard.sh (sourced, not run): builds the
# release server and reverb-bench, runs one `reverb-bench fanout` per server configuration, and
# summarises the rounds. Sets `bench`; the caller defines nothing but its configurations.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-10}
swift build -c release --product reverb
swift build -c release --product reverb-bench
bench=.build/release/reverb-bench
ulimit -n "$(ulimit -Hn)"
mkdir -p bench-results
workdir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT
export REVERB_APP_ID=bench REVERB_APP_KEY=bench-key REVERB_APP_SECRET=bench-secret

# `start_reverb LABEL BINARY [VAR=value ...]`: starts a server on a free port; sets server_pid, server_port.
start_reverb() {
    local label=$1 binary=$2
    shift 2
    env "$@" "$binary" start --host 127.0.0.1 --port 0 >"$workdir/$label.log" 2>&1 &
    server_pid=$!
    server_port=""
    pids+=("$server_pid")
    for _ in $(seq 100); do
        server_port=$(sed -n 's/.*INFO  Starting server on 127\.0\.0\.1:\([0-9]*\)\..*/\1/p' "$workdir/$label.log" \
            2>/dev/null || true)
        [[ -n $server_port ]] && break
        sleep 0.1
    done
}

# `fanout RESULT`: 1,000 subscribers, 100 events/s then as fast as delivery allows, against the server
# started last; its JSON goes to bench-results/RESULT.json. Then stops that server.
fanout() {
    "$bench" fanout --url "http://127.0.0.1:$server_port" --server-pid "$server_pid" --subscribers 1000 --rate 100 \
        --rate max --duration "$duration" --json "bench-results/$1.json" >/dev/null
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
}

# `summarize PREFIX LABEL...`: medians and ranges of bench-results/PREFIX-LABEL-ROUND.json.
summarize() {
    python3 - "$rounds" "$@" <<'PY'
import glob, json, statistics, sys
rounds, prefix, labels = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
rows = {}
for path in sorted(glob.glob(f"bench-results/{prefix}-*.json")):
    label, round_ = path.rsplit("/", 1)[1][len(prefix) + 1:-len(".json")].rsplit("-", 1)
    if int(round_) > rounds:
        continue
    phases = {p["name"]: {m["name"]: m["value"] for m in p["metrics"]} for p in json.load(open(path))["phases"]}
    fixed, top = phases["100/s"], phases["max"]
    # Server CPU time per delivery in the fixed-rate phase (CPU % of one core over deliveries/s).
    per_delivery = fixed["server CPU"] / 100 * 1e6 / fixed["deliveries/s"]
    rows.setdefault(label, []).append((per_delivery, top["deliveries/s"], fixed["lost"] + top["lost"]))
for label in labels:
    runs = rows.get(label, [])
    if not runs:
        continue
    us = [r[0] for r in runs]
    top = [r[1] / 1000 for r in runs]
    print(f"{label:7} runs {len(runs)}  server CPU/delivery median {statistics.median(us):.2f} us "
          f"({min(us):.2f}-{max(us):.2f})  max deliveries/s median {statistics.median(top):.0f}k "
          f"({min(top):.0f}-{max(top):.0f}k)  lost {sum(r[2] for r in runs)}")
PY
}
