#!/usr/bin/env bash
# The cost of the dashboard on fan-out: `reverb-bench fanout` (1,000 subscribers, 100 events/s then as
# fast as delivery allows) against a release server with the dashboard off, on with no console open,
# and on with one debug console streaming the bench's app (curl reading the page's event stream),
# alternating, BENCH_ROUNDS times (3). Prints medians and ranges; results in bench-results/dashboard-*.json.
source "$(dirname "$0")/bench-compare.sh"

for round in $(seq "$rounds"); do
    start_reverb off .build/release/reverb
    fanout "dashboard-off-$round"
    start_reverb idle .build/release/reverb REVERB_DASHBOARD_ENABLED=true
    fanout "dashboard-idle-$round"
    start_reverb console .build/release/reverb REVERB_DASHBOARD_ENABLED=true
    curl -s -o /dev/null -c "$workdir/cookies" -d "app_id=bench&secret=bench-secret" \
        "http://127.0.0.1:$server_port/dashboard/login"
    curl -s -N -b "$workdir/cookies" "http://127.0.0.1:$server_port/dashboard/api/stream?app=bench" \
        >"$workdir/stream.txt" &
    console=$!
    # The console is open (its first bytes arrived) before the subscribers connect.
    for _ in $(seq 50); do grep -q '^retry' "$workdir/stream.txt" && break; sleep 0.1; done
    fanout "dashboard-console-$round"
    wait "$console" 2>/dev/null || true  # ends with the server
    echo "console round $round: $(grep -c '^event: debug' "$workdir/stream.txt") debug batches," \
        "$(grep -o '"kind":"api_event"' "$workdir/stream.txt" | wc -l) API events," \
        "$(grep -o '"kind":"subscribed"' "$workdir/stream.txt" | wc -l) subscriptions seen," \
        "$(grep -A1 '^event: dropped' "$workdir/stream.txt" | grep -o '"total":[0-9]*' | tail -1) dropped"
done
summarize dashboard off idle console
