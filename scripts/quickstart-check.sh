#!/usr/bin/env bash
# The README's main command, run as a newcomer would: `cargo run --example quickstart -- DIR`,
# then the command-line steps it prints (start the MEF on the kept data, provision with the CLI,
# status, rekey, openssl), exactly as printed except that the debug binaries of this checkout
# replace `target/release/` (scripts/test.sh has built them by then). Fails if the quick start
# fails, prints no commands, or any printed command fails.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/onem2m-est-quickstart.XXXXXX")
mef_pid=
cleanup() {
  # (Under set -e a failing `wait` here, the MEF's 143, would become the script's status.)
  if [ -n "$mef_pid" ]; then
    kill "$mef_pid" 2>/dev/null || true
    wait "$mef_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cargo build --locked -q -p onem2m-est-cli -p onem2m-mef
cargo run --locked -q --example quickstart -- "$work/qs" | tee "$work/quickstart.out"

# The printed commands: lines starting with "  target/release/" or "  openssl", with their
# backslash continuations joined.
# The quick start's example port 8443 becomes a free one (others may run this concurrently).
python3 - "$work/quickstart.out" "$target/debug/" >"$work/commands" <<'PY'
import socket, sys
text = open(sys.argv[1]).read().replace("\\\n", " ")
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
for line in text.splitlines():
    s = line.strip()
    if s.startswith("target/release/") or s.startswith("openssl "):
        s = s.split("  #")[0].strip()          # the trailing comment
        s = s.replace("127.0.0.1:8443", f"127.0.0.1:{port}").replace("localhost:8443", f"localhost:{port}")
        print(s.replace("target/release/", sys.argv[2]))
PY
[ "$(wc -l <"$work/commands")" -ge 4 ] || { echo "quickstart-check: no commands printed" >&2; exit 1; }

while IFS= read -r cmd; do
  echo "+ $cmd"
  case $cmd in
    *"onem2m-mef "*)
      # The MEF line ends with `&`: start it, wait until it listens.
      eval "${cmd%&} >\"$work/mef.out\" 2>\"$work/mef.err\" &"
      mef_pid=$!
      for _ in $(seq 1 100); do
        grep -q '^listening on ' "$work/mef.out" 2>/dev/null && break
        kill -0 "$mef_pid" 2>/dev/null || { cat "$work/mef.err" >&2; exit 1; }
        sleep 0.1
      done
      grep -q '^listening on ' "$work/mef.out" || { echo "quickstart-check: MEF not listening" >&2; exit 1; }
      ;;
    *) eval "$cmd" >"$work/step.out" 2>&1 || { cat "$work/step.out" >&2; exit 1; }
       head -5 "$work/step.out" ;;
  esac
done <"$work/commands"
echo "quickstart-check: the quick start and the $(wc -l <"$work/commands") commands it prints all ran"
