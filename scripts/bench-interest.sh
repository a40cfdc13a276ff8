#!/usr/bin/env bash
# Bus traffic per node, broadcast vs interest routing (docs.md "Scaling"): four release-build nodes
# over a throw-away redis-server, INTEREST_CHANNELS channels with one subscriber each, INTEREST_EVENTS
# events; once per INTEREST_BUCKETS value. The measuring code is Tests/EndToEnd/test_interest_traffic.py.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product reverb >/dev/null
export REVERB_BIN="$PWD/.build/release/reverb"
export INTEREST_CHANNELS="${INTEREST_CHANNELS:-10000}" INTEREST_EVENTS="${INTEREST_EVENTS:-10000}"
for buckets in ${INTEREST_BUCKETS_LIST:-4096 65536}; do
    INTEREST_BUCKETS=$buckets .venv/bin/python -m pytest -q -s -p no:cacheprovider \
        Tests/EndToEnd/test_interest_traffic.py 2>&1 | grep -E "^(broadcast|interest|  )"
done
