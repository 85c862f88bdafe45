#!/usr/bin/env bash
# Figures of the cross-built packages (BENCHMARKS.md, "Cross targets"): library size as
# shipped (stripped) and as built, what it links against, and wall times under the emulator:
#   start-up   examples/c/provision.c with no arguments: process start with the library
#              loaded, no call into it (median of 20);
#   null_args  ffi/tests/c/null_args.c, 174 checks, no network (median of 5);
#   provision  provision.c against the native reference MEF on 127.0.0.1: Initial Certificate
#              Provisioning + a rekeying re-provisioning (median of 5).
# Under Wine and QEMU these are emulation times, not performance figures of the library.
#
# usage: benches/cross.sh [TARGET...]   (default: the three cross targets, then native x86_64)
# Needs the packages of scripts/cross.sh (run it or scripts/cross-test.sh first) and, for the
# native row, scripts/install.sh's build (release, in ${CARGO_TARGET_DIR:-target}).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
# Cargo's output folder (CARGO_TARGET_DIR, relative to the repository root, as install.sh has it).
native_target=${CARGO_TARGET_DIR:-target}
case $native_target in /*) ;; *) native_target=$repo/$native_target ;; esac
cargo build --locked -p onem2m-mef
# shellcheck source=../scripts/lib/cross-env.sh
source scripts/lib/cross-env.sh
# shellcheck source=../scripts/lib/mef-fixture.sh
source scripts/lib/mef-fixture.sh
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-pc-windows-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf native)

fixture_init
mef_fixture_start 2>/dev/null
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# Wall time of a command in ms (its output discarded); ms_ok: the command must succeed.
ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || true
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
ms_ok() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "benches/cross.sh: failed: $*" >&2; echo FAILED; return; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

printf '| target | library | stripped | as built | links against | start-up | null_args | provision |\n'
printf '|---|---|---|---|---|---|---|---|\n'
for target in "${targets[@]}"; do
  work=$FIXTURE_DIR/$target
  mkdir -p "$work"
  exe=
  runner=()
  if [ "$target" = native ]; then
    pkg=$FIXTURE_DIR/native-prefix
    scripts/install.sh "$pkg" >/dev/null 2>&1
    lib=$pkg/lib/libonem2m_est.so.0
    built=$native_target/release/libonem2m_est.so
    cc=cc
    deps=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    name="x86_64 Linux (native, psk)"
  else
    unset CROSS_TARGET_DIR # each target its own folder (cross_env keeps a set one)
    cross_env "$target"
    pkg=$CROSS_TARGET_DIR/../pkg/$target
    cc=$CROSS_GCC
    runner=("${CROSS_RUNNER[@]}")
    case $target in
      *-windows-*)
        exe=.exe
        lib=$pkg/bin/onem2m_est.dll
        built=$CROSS_TARGET_DIR/$target/release/onem2m_est.dll
        cp "$lib" "$work/"
        deps=$("${CROSS_TOOL_PREFIX}objdump" -p "$lib" | sed -n 's/^\tDLL Name: //p' | tr '\n' ' ')
        ;;
      *)
        lib=$pkg/lib/libonem2m_est.so.0
        built=$CROSS_TARGET_DIR/$target/release/libonem2m_est.so
        deps=$("${CROSS_TOOL_PREFIX}readelf" -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
        ;;
    esac
    name=$target
  fi
  [ -e "$lib" ] || { echo "benches/cross.sh: no package for $target (scripts/cross.sh $target)" >&2; exit 1; }
  link=(-I"$pkg/include" -L"$pkg/lib" -lonem2m_est)
  [ -n "$exe" ] || link+=("-Wl,-rpath,$pkg/lib")
  "$cc" -std=c11 -O2 examples/c/provision.c "${link[@]}" -o "$work/provision$exe"
  "$cc" -std=c11 -O2 ffi/tests/c/null_args.c "${link[@]}" -o "$work/null_args$exe"
  run=("${runner[@]}")
  start=$(for _ in $(seq 20); do ms "${run[@]}" "$work/provision$exe"; done | median)
  checks=$(for _ in $(seq 5); do
    ms_ok "${run[@]}" "$work/null_args$exe" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$work/na-store"
  done | median)
  prov=$(for i in $(seq 5); do
    ms_ok "${run[@]}" "$work/provision$exe" "$MEF_URL" "$MEF_CA" "$DEVICE_CERT" "$DEVICE_KEY" "$work/out-$i" "$MEF_SUBJECT_ID"
  done | median)
  case "$checks $prov" in *FAILED*) echo "benches/cross.sh: a run failed on $target" >&2; exit 1 ;; esac
  for i in $(seq 5); do
    [ -s "$work/out-$i/cert.pem" ] || { echo "benches/cross.sh: provision run $i failed on $target" >&2; exit 1; }
  done
  printf '| %s | %s | %s B | %s B | %s | %s ms | %s ms | %s ms |\n' "$name" "$(basename "$lib")" \
    "$(stat -L -c %s "$lib")" "$(stat -L -c %s "$built")" "${deps% }" "$start" "$checks" "$prov"
done
