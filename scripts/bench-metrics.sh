#!/usr/bin/env bash
# The cost of /metrics on fan-out: `reverb-bench fanout` (1,000 subscribers, 100 events/s then as fast
# as delivery allows) against a release server with metrics off and on (scraped every second, as a
# Prometheus would, only faster), alternating, BENCH_ROUNDS times (3). BENCH_REVERB_BASE=path/to/reverb
# adds a third server build to each round (e.g. the commit before the counters existed). Prints each
# build's medians and ranges; results in bench-results/metrics-*.json.
source "$(dirname "$0")/bench-compare.sh"

for round in $(seq "$rounds"); do
    start_reverb off .build/release/reverb
    fanout "metrics-off-$round"
    start_reverb on .build/release/reverb REVERB_METRICS_ENABLED=true
    (while sleep 1; do curl -s -o /dev/null "http://127.0.0.1:$server_port/metrics"; done) &
    scraper=$!
    fanout "metrics-on-$round"
    kill "$scraper"
    if [[ -n ${BENCH_REVERB_BASE:-} ]]; then
        start_reverb base "$BENCH_REVERB_BASE"
        fanout "metrics-base-$round"
    fi
done
summarize metrics off on base
