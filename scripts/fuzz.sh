#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer and AddressSanitizer, then fuzzes each for FUZZ_SECONDS
# (default 60) from its committed seed corpus (Fuzz/README.md).
#   FUZZ_TARGETS="FuzzClientMessage FuzzDotEnv"  only these targets
#   FUZZ_SECONDS=120                             time per target
#   FUZZ_ARGS="-max_len=8192"                    extra libFuzzer flags
#   FUZZ_KEEP_GOING=1                            go on past crashes (libFuzzer -fork=1
#                                                -ignore_crashes=1) and count them
# The working corpus grows under .build/fuzz-corpus/<target>; crash inputs land in
# .build/fuzz-artifacts/<target>/. Exits non-zero when any target crashed, tripped a sanitizer or
# an invariant, or failed to build.
set -uo pipefail
cd "$(dirname "$0")/.."

# Every directory under Fuzz/ with a seed corpus is a target.
all_targets=$(for corpus in Fuzz/*/corpus; do basename "$(dirname "$corpus")"; done | xargs)
targets=${FUZZ_TARGETS:-$all_targets}
seconds=${FUZZ_SECONDS:-60}
scratch=.build/fuzz
build_flags=(-c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
    -Xswiftc -enable-testing)

for target in $targets; do
    if [[ " $all_targets " != *" $target "* ]]; then
        echo "fuzz: unknown target $target (known: $all_targets)" >&2
        exit 2
    fi
done

bin=$(swift build "${build_flags[@]}" --show-bin-path) || exit 1
for target in $targets; do
    echo "== building $target"
    if ! swift build "${build_flags[@]}" --product "$target"; then
        echo "fuzz: $target does not build" >&2
        exit 1
    fi
done

# Crashes are reported by libFuzzer and ASan; the Swift runtime's own backtracer would only add a
# slower second report.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:handle_abort=1:symbolize=1}

failed=()
summary=()
for target in $targets; do
    corpus=.build/fuzz-corpus/$target
    artifacts=.build/fuzz-artifacts/$target
    log=.build/fuzz-logs/$target.log
    mkdir -p "$corpus" "$artifacts" .build/fuzz-logs
    cp -n Fuzz/"$target"/corpus/* "$corpus"/ 2>/dev/null || true
    dict=()
    [[ -f Fuzz/dictionaries/$target.dict ]] && dict=(-dict="Fuzz/dictionaries/$target.dict")
    mode=()
    [[ -n ${FUZZ_KEEP_GOING:-} ]] && mode=(-fork=1 -ignore_crashes=1)
    before=$(find "$artifacts" -type f | wc -l)
    echo "== fuzzing $target for ${seconds}s (log $log)"
    # shellcheck disable=SC2086
    "$bin/$target" "$corpus" "${dict[@]}" "${mode[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" -timeout=10 -rss_limit_mb=4096 ${FUZZ_ARGS:-} >"$log" 2>&1
    status=$?
    found=$(($(find "$artifacts" -type f | wc -l) - before))
    # The last status line: `#N DONE cov: C ft: F corp: K/B ...`, or in fork mode
    # `#N: cov: C ft: F corp: K exec/s: R oom/timeout/crash: a/b/c time: Ts ...`.
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [[ -z $runs ]] && runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [[ -z $rate && -n $runs ]]; then
        elapsed=$(sed -n 's/.* time: \([0-9]*\)s.*/\1/p' <<<"$last")
        [[ -n $elapsed && $elapsed -gt 0 ]] && rate=$((runs / elapsed))
    fi
    cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.*corp: \([0-9]*\(\/[0-9a-zA-Z]*\)\{0,1\}\).*/\1/p' <<<"$last")
    line="$target: ${runs:-?} runs, ${rate:-?} exec/s, cov ${cov:-?} edges, corpus ${corp:-?}, $found new crash inputs"
    if [[ $status -ne 0 || $found -gt 0 ]]; then
        line+=" -- FAILED (exit $status); see $log and $artifacts/"
        failed+=("$target")
        grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer)|Fatal error|invariant violated' "$log" | sed 's/^/    /'
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "== fuzz summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failures in ${failed[*]}" >&2
    exit 1
fi
