#!/usr/bin/env bash
# The onem2m-est benchmark suite (BENCHMARKS.md says what each figure means).
#
#   benches/run.sh [--quick] [--no-psk]
#
# --quick   a few seconds after the build: few iterations, short loads (CI keeps it working;
#           its figures are not for comparison)
# --no-psk  skip TLS-PSK provisioning (otherwise built with the `psk` feature when pkg-config
#           finds OpenSSL)
#
# BENCH_SECTIONS=rcslm runs a subset: r in-process Rust API, c C ABI, s CLI process,
# l shared library, m MEF load (default: all).
#
# Everything runs on 127.0.0.1, every loop is bounded, and the MEF processes this script starts
# are stopped by their PID when it ends. Scratch files live under /dev/shm (tmpfs) when present,
# so fsync costs nothing there; durability (fsync) is measured separately by the in-process
# bench (MEF database and FileStore on disk).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
psk=1
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --no-psk) psk=0 ;;
    *) echo "usage: $0 [--quick] [--no-psk]" >&2; exit 2 ;;
  esac
done
if [ "$quick" = 1 ]; then
  iters=20; c_iters=20; cli_runs=5; load_secs=1; conns=10; bench_flags=--quick
else
  iters=300; c_iters=300; cli_runs=50; load_secs=5; conns=50; bench_flags=
fi
features=()
if [ "$psk" = 1 ] && pkg-config --exists openssl 2>/dev/null; then
  features=(--features psk)
fi
target=${CARGO_TARGET_DIR:-target}
sections=${BENCH_SECTIONS:-rcslm}
want() { [[ $sections == *$1* ]]; }
ncpu=$(nproc)
two=0
[ "$ncpu" -ge 2 ] && two=0,1

work=$(mktemp -d /dev/shm/onem2m-bench.XXXXXX 2>/dev/null || mktemp -d)
mef_pid=
disk=
cleanup() {
  [ -n "$disk" ] && rm -rf "$disk"
  if [ -n "$mef_pid" ]; then
    kill "$mef_pid" 2>/dev/null || true
    wait "$mef_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- build -----------------------------------------------------------------------------------
echo "# building (release profile: lto, codegen-units = 1)" >&2
# Target directories of their own: cdylibs of every feature set share one file name in a target
# directory, so a psk-enabled build (this bench's, or anyone's sharing target/) would replace
# the default (ring-only) library measured below.
lib_target=$target/bench-default
bench_target=$lib_target
[ ${#features[@]} -gt 0 ] && bench_target=$target/bench-psk
bench=$(CARGO_TARGET_DIR=$bench_target cargo bench --bench provision "${features[@]}" --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*provision-[^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bench" ] || { echo "$0: the bench did not build" >&2; exit 1; }
CARGO_TARGET_DIR=$lib_target cargo build --release -p onem2m-est-ffi -p onem2m-mef -p onem2m-est-cli \
  2>&1 | tail -n 1 >&2
mef="$lib_target/release/onem2m-mef"
cli="$lib_target/release/onem2m-est"
lib="$lib_target/release/libonem2m_est.so"

echo "# onem2m-est benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $ncpu CPU(s): $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- (1), (2): the procedures in-process, Rust API -------------------------------------------
want r && {
echo
echo "## 1-2. In-process procedures, Rust API (client and MEF in one process, loopback)"
cpusets=("$two")
[ "$quick" = 0 ] && cpusets=("$two" 0)
for cpus in "${cpusets[@]}"; do
  echo
  echo "### taskset -c $cpus"
  taskset -c "$cpus" "$bench" $bench_flags inproc --iters "$iters"
done
}

# --- an external MEF for the C ABI, the CLI and the load ---------------------------------------
"$bench" setup "$work/pki" >/dev/null
start_mef() { # CPUS DATA_DIR
  taskset -c "$1" "$mef" --listen 127.0.0.1:0 --data-dir "$2" \
    --client-trust "$work/pki/manufacturer-ca.pem" >"$work/mef.out" 2>"$work/mef.err" &
  mef_pid=$!
  local i
  for i in $(seq 1 300); do
    grep -q '^CA certificate: .*pem$' "$work/mef.out" && break
    sleep 0.1
  done
  addr=$(sed -n 's/^listening on //p' "$work/mef.out")
  [ -n "$addr" ] || { echo "$0: the MEF did not start:" >&2; cat "$work/mef.out" >&2; exit 1; }
  mef_ca="$2/mef-ca.pem"
  [ -s "$mef_ca" ] || { echo "$0: no MEF CA certificate at $mef_ca" >&2; exit 1; }
  uri="https://localhost:${addr##*:}/.well-known/est"
  "$mef" identity add --data-dir "$2" --client-cert "$work/pki/device.pem" \
    --subject-type cse --subject-id cse01.sp.example.com >/dev/null
}
stop_mef() {
  kill "$mef_pid" 2>/dev/null || true
  wait "$mef_pid" 2>/dev/null || true
  mef_pid=
}

start_mef "$two" "$work/mef"
want c && {
# --- (1), (2) through the C ABI ---------------------------------------------------------------
echo
echo "## 1-2. Procedures through the C ABI (C program -> libonem2m_est.so; MEF process on loopback)"
# The library laid out as scripts/install.sh installs it (the .so under its soname, the header);
# install.sh itself copies from target/release, which other builds may have replaced.
mkdir -p "$work/prefix/lib"
cp "$lib" "$work/prefix/lib/libonem2m_est.so.0"
ln -sfn libonem2m_est.so.0 "$work/prefix/lib/libonem2m_est.so"
cbench="$work/bench_provision"
cc -O2 -Wall benches/c/bench_provision.c -I include -L "$work/prefix/lib" \
  -lonem2m_est -Wl,-rpath,"$work/prefix/lib" -o "$cbench"
taskset -c "$two" "$cbench" "$uri" "$mef_ca" "$work/pki/device.pem" "$work/pki/device.key" \
  "$work/c-out" "$c_iters"
/usr/bin/time -v "$cbench" "$uri" "$mef_ca" "$work/pki/device.pem" "$work/pki/device.key" \
  "$work/c-out1" 1 >/dev/null 2>"$work/c.time"
echo "  peak RSS of the C program (one provision + one re-provision): $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/c.time") KiB"

}

want s && {
# --- (3) the CLI as a process -----------------------------------------------------------------
echo
echo "## 3. The CLI as a whole process: onem2m-est provision ($cli_runs runs)"
cli_cmd=("$cli" provision --server "$uri" --trust-anchors "$mef_ca" --tls-cert "$work/pki/device.pem"
  --tls-key "$work/pki/device.key" --subject-type cse --subject-id cse01.sp.example.com
  --out "$work/cli-out")
"${cli_cmd[@]}" >/dev/null
if command -v hyperfine >/dev/null; then
  hyperfine -N --style basic --warmup 3 --runs "$cli_runs" --export-json "$work/cli.json" \
    "$(printf '%q ' "${cli_cmd[@]}")" 2>&1 | sed -n '/Time\|Range/p'
  python3 - "$work/cli.json" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))["results"][0]
t = sorted(x * 1e3 for x in r["times"])
cpu = sorted((u + s) * 1e3 for u, s in zip(r["user"] if isinstance(r["user"], list) else [r["user"]] * len(t),
                                          r["system"] if isinstance(r["system"], list) else [r["system"]] * len(t)))
q = lambda v, p: v[round((len(v) - 1) * p)]
print(f"  wall ms: median {q(t,.5):.2f}  p10 {q(t,.1):.2f}  p90 {q(t,.9):.2f}  min {t[0]:.2f}  max {t[-1]:.2f}  (n={len(t)})")
print(f"  CPU (user+sys) ms: mean {r['user']*1e3 + r['system']*1e3:.2f}" if not isinstance(r["user"], list) else
      f"  CPU (user+sys) ms: median {q(cpu,.5):.2f}")
PY
else
  echo "  (hyperfine not installed: timing with date)"
  for _ in $(seq 1 "$cli_runs"); do
    s=$(date +%s%N); "${cli_cmd[@]}" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000))
  done | sort -n | awk '{v[NR]=$1} END {printf "  wall ms: median %.2f  min %.2f  max %.2f  (n=%d)\n", v[int((NR+1)/2)]/1000, v[1]/1000, v[NR]/1000, NR}'
fi
/usr/bin/time -v "${cli_cmd[@]}" >/dev/null 2>"$work/cli.time"
echo "  one run, /usr/bin/time -v: wall $(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/cli.time"), user $(sed -n 's/.*User time (seconds): //p' "$work/cli.time") s, sys $(sed -n 's/.*System time (seconds): //p' "$work/cli.time") s, peak RSS $(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/cli.time") KiB"
echo "  binary: $(stat -c %s "$cli") bytes; dynamic dependencies: $(ldd "$cli" | awk '{print $1}' | tr '\n' ' ')"

}

want l && {
# --- (4) the shared library -------------------------------------------------------------------
echo
echo "## 4. The shared library ($lib, default features: rustls + ring)"
strip -o "$work/lib.so" "$lib"
echo "  size: $(stat -c %s "$lib") bytes as built, $(stat -c %s "$work/lib.so") bytes stripped"
echo "  exported functions: $(nm -D --defined-only "$work/lib.so" | awk '$2 == "T"' | wc -l) ($(nm -D --defined-only "$work/lib.so" | awk '$2 == "T" && $3 ~ /^mef_/' | wc -l) mef_*), other exported symbols: $(nm -D --defined-only "$work/lib.so" | awk '$2 != "T"' | wc -l)"
echo "  dynamic dependencies (ldd):"
ldd "$lib" | sed 's/^/    /'

}

stop_mef
want m && {
# --- (5) the MEF under load ---------------------------------------------------------------------
echo
echo "## 5. The reference MEF under a bounded loopback load (new mutual-TLS connection per enrolment, 4 client threads for ${load_secs}s; load generator on CPUs $two)"
for cpus in 0 "$two"; do
  start_mef "$cpus" "$work/mef-load-$cpus"
  taskset -c "$two" "$bench" load --uri "$uri" --ta "$mef_ca" --dir "$work/pki" --threads 4 \
    --seconds "$load_secs" --mef-pid "$mef_pid" --label "MEF on CPU(s) $cpus" \
    $([ "$cpus" = "$two" ] && echo --conns "$conns")
  stop_mef
done
if [ "$quick" = 0 ]; then
  # Durability: the same load with the MEF database on disk (fsync per issued certificate).
  disk=$(mktemp -d "$(cd "$target" && pwd)/mef-disk.XXXXXX")
  start_mef "$two" "$disk"
  taskset -c "$two" "$bench" load --uri "$uri" --ta "$mef_ca" --dir "$work/pki" --threads 4 \
    --seconds "$load_secs" --mef-pid "$mef_pid" --label "MEF database on disk"
  stop_mef
  rm -rf "$disk"
fi
}
echo
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
