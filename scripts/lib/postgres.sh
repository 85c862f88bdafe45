# shellcheck shell=bash
# A throw-away PostgreSQL server for shell tests (source it, do not run it), the counterpart of
# mef/tests/common/postgres.rs: Debian's postgresql package (binaries from `pg_config --bindir`,
# else /usr/lib/postgresql/*/bin), a cluster initdb-ed in a folder, listening on 127.0.0.1 on a
# free port and on a socket in that folder, trust authentication for the `postgres` user. As
# root the server runs as the unprivileged `postgres` user. Fails (returns non-zero) when
# PostgreSQL is missing: callers run under `set -e`.
#
#   source scripts/lib/postgres.sh
#   pg_fixture_start DIR         # cluster in DIR (created); exports PG_DIR, PG_PORT, PG_BIN
#   url=$(pg_fixture_createdb mef)   # postgres://postgres@127.0.0.1:PORT/mef
#   pg_fixture_stop              # pg_ctl stop -m fast: an outage (the cluster is kept)
#   pg_fixture_resume            # the same cluster on the same port
#   pg_fixture_destroy           # stop at once and remove DIR (call it from the EXIT trap)

pg_fixture_bindir() {
  local d
  d=$(pg_config --bindir 2>/dev/null || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return; fi
  echo "PostgreSQL is not installed (no initdb): install Debian's postgresql package" >&2
  return 1
}

# Runs a PostgreSQL server binary, as `postgres` when we are root.
pg_fixture_run() {
  local prog=$1; shift
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$PG_BIN/$prog" "$@"
  else
    "$PG_BIN/$prog" "$@"
  fi
}

pg_fixture_try_start() {
  pg_fixture_run pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
}

pg_fixture_start() {
  PG_DIR=$1
  PG_BIN=$(pg_fixture_bindir)
  export PG_DIR PG_BIN
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR"; fi
  pg_fixture_run initdb -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
  local attempt
  for attempt in 1 2 3; do
    # A port picked by the OS and released; retried if another process takes it meanwhile.
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    export PG_PORT
    if pg_fixture_try_start; then return 0; fi
  done
  echo "PostgreSQL did not start:" >&2
  cat "$PG_DIR/log" >&2
  return 1
}

pg_fixture_createdb() {
  pg_fixture_run createdb -h 127.0.0.1 -p "$PG_PORT" -U postgres "$1"
  echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_fixture_stop() {
  pg_fixture_run pg_ctl -D "$PG_DIR/data" -w -m fast stop >/dev/null
}

pg_fixture_resume() {
  local i
  for i in $(seq 1 50); do
    if pg_fixture_try_start; then return 0; fi
    sleep 0.2
  done
  cat "$PG_DIR/log" >&2
  return 1
}

pg_fixture_destroy() {
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
    pg_fixture_run pg_ctl -D "$PG_DIR/data" -w -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
