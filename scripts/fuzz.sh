#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time; fails on any crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 10 s, every target)
#
# Environment:
#   FUZZ_JOBS=N          targets run N at a time (default: nproc; each libFuzzer process uses one core)
#   FUZZ_SANITIZER=S     address | none (default none: see FUZZING.md, "Sanitizers")
#   FUZZ_CODEGEN_UNITS=N codegen units of the fuzz build (default 16; cargo-fuzz's own default
#                        of 1 builds slower and may fuzz faster: try it for long runs)
#   FUZZ_WORK=DIR        working corpora and logs (default fuzz/target/fuzz-work)
#   FUZZ_KEEP_CORPUS=1   keep the working corpora from a previous run (default: start from seeds)
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: new inputs go to
# $FUZZ_WORK/<target>/corpus. A crash leaves its input in fuzz/artifacts/<target>/ and the
# libFuzzer log in $FUZZ_WORK/<target>/log; reproduce with
#   cd fuzz && cargo fuzz run -s none -a <target> artifacts/<target>/<file>
set -euo pipefail

secs=${1:-10}
shift || true
case $secs in '' | *[!0-9]*) echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
fuzz="$root/fuzz"
jobs=${FUZZ_JOBS:-$(nproc)}
sanitizer=${FUZZ_SANITIZER:-none}
work=${FUZZ_WORK:-$fuzz/target/fuzz-work}

# Without a sanitizer every flag cargo-fuzz passes to rustc is a stable -C option
# (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*, --cfg fuzzing), so the default
# build runs on plain stable. AddressSanitizer needs -Zsanitizer=address, which only nightly
# accepts, and only stable Rust is installed: RUSTC_BOOTSTRAP=1 lets the stable compiler take
# it. It is set for this script's cargo invocations only, and only then. They build the
# separate fuzz/ workspace into fuzz/target; the library builds are untouched. It is not set
# by default because it also changes what some dependencies' build scripts detect (nightly
# feature probes).
if [ "$sanitizer" != none ]; then
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
fi

# -a: debug assertions (integer overflow panics) in the fuzzed code; release optimisations.
build_flags=(-s "$sanitizer" -a)
# 16 codegen units instead of cargo-fuzz's 1: the clean build took 208 s instead of 342 s on 2
# cores (FUZZING.md, "Figures"), which keeps the CI smoke pass within its budget.
build_flags+=(--codegen-units "${FUZZ_CODEGEN_UNITS:-16}")
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="${CARGO_TARGET_DIR:-$fuzz/target}/$triple/release"

cd "$fuzz"
if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
cargo fuzz build "${build_flags[@]}"
built=$(date +%s)
echo "== build took $((built - start)) s"

run_target() {
    local t=$1 dir="$work/$1"
    mkdir -p "$dir" "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
    if [ "${FUZZ_KEEP_CORPUS:-0}" != 1 ]; then
        rm -rf "$dir/corpus"
    fi
    mkdir -p "$dir/corpus"
    # The working corpus first (libFuzzer writes new inputs to the first directory only).
    set +e
    "$bin_dir/$t" "$dir/corpus" "$fuzz/corpus/$t" \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$fuzz/artifacts/$t/" >"$dir/log" 2>&1
    echo $? >"$dir/rc"
    set -e
}

# Runs the targets FUZZ_JOBS at a time.
running=0
for t in "${targets[@]}"; do
    if [ ! -x "$bin_dir/$t" ]; then
        echo "unknown fuzz target: $t" >&2
        exit 2
    fi
    echo "== $t (${secs} s)"
    run_target "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=()
printf '\n%-14s %12s %10s %8s %8s %10s %s\n' target executions exec/s cov ft corpus result
for t in "${targets[@]}"; do
    dir="$work/$t"
    rc=$(cat "$dir/rc")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
    # libFuzzer's last status line: "#N DONE cov: C ft: F corp: U/Sb ..." (or the last pulse).
    status=$(grep -E '^#[0-9]+' "$dir/log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$status")
    result=ok
    if [ "$rc" != 0 ]; then
        result="FAILED (exit $rc)"
        failed+=("$t")
    fi
    printf '%-14s %12s %10s %8s %8s %10s %s\n' "$t" "${execs:--}" "${rate:--}" "${cov:--}" \
        "${ft:--}" "${corp:--}" "$result"
done
echo "== total $(($(date +%s) - start)) s (build $((built - start)) s)"

if [ ${#failed[@]} -gt 0 ]; then
    for t in "${failed[@]}"; do
        echo
        echo "== $t failed; log tail ($work/$t/log):"
        tail -40 "$work/$t/log"
        ls -1 "$fuzz/artifacts/$t" 2>/dev/null | sed 's/^/   artifact: /'
    done
    exit 1
fi
