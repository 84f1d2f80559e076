#!/usr/bin/env bash
# Runs Huren's fuzz targets (fuzz/, cargo-fuzz + libFuzzer) one after another, each for a
# time budget, and prints a table: target, seconds, executions, executions per second,
# corpus size, crashes.
#
#   scripts/fuzz.sh                      # every target, 600 s each
#   scripts/fuzz.sh --seconds 60         # a quick pass
#   scripts/fuzz.sh --target gossip --target block
#   nice -n 10 scripts/fuzz.sh           # on a shared machine
#
# Needs the nightly toolchain (rustup toolchain install nightly); installs the pinned
# cargo-fuzz when it is missing. Each target reads its committed seeds (fuzz/seeds/<t>) and
# grows its own corpus in fuzz/corpus/<t> (not committed). libFuzzer stops a target at its
# first crash, writing the input to fuzz/artifacts/<t>/; fix it and keep the input in
# fuzz/regressions/<t>/, which `cargo test --workspace` replays (tests/tests/fuzz_corpus.rs).
# Logs: fuzz/logs/<t>.log. Exit status 1 if any target crashed.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.1
seconds=600
# An input that takes longer than this is reported as a crash (a hang is a defect too:
# every decoder here must be bounded in time).
timeout_secs=30
targets=()

while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --target) targets+=("$2"); shift 2 ;;
        --timeout) timeout_secs="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "fuzz.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/fuzz"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 69
fi
if [[ "$(cargo fuzz --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

if [[ ${#targets[@]} -eq 0 ]]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "fuzz.sh: building ${#targets[@]} target(s)"
cargo +nightly fuzz build

mkdir -p logs
rows=()
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    log="logs/$t.log"
    echo "fuzz.sh: $t for ${seconds}s (log $log)"
    start=$(date +%s)
    set +e
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout_secs" -print_final_stats=1 \
        >"$log" 2>&1
    rc=$?
    set -e
    took=$(( $(date +%s) - start ))
    after=$(find "artifacts/$t" -type f | wc -l)
    crashes=$(( after - before ))
    if [[ $rc -ne 0 && $crashes -eq 0 ]]; then
        # Not a crash libFuzzer recorded: a build or setup failure. Say so.
        echo "fuzz.sh: $t failed (exit $rc) without an artifact; see $log" >&2
        crashes="error"
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(find "corpus/$t" -type f | wc -l)
    [[ "$crashes" != 0 ]] && status=1
    rows+=("$t|$took|${execs:-?}|${rate:-?}|$corpus|$crashes")
done

echo
printf '%-18s %8s %14s %9s %8s %8s\n' target seconds executions exec/s corpus crashes
for r in "${rows[@]}"; do
    IFS='|' read -r t took execs rate corpus crashes <<<"$r"
    printf '%-18s %8s %14s %9s %8s %8s\n' "$t" "$took" "$execs" "$rate" "$corpus" "$crashes"
done
if [[ $status -ne 0 ]]; then
    echo
    echo "crash inputs are in fuzz/artifacts/<target>/; reproduce with:"
    echo "  cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>"
fi
exit $status
