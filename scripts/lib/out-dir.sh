# shellcheck shell=bash
# The argument of the scripts that take one folder to write to (scripts/install.sh PREFIX,
# scripts/python-wheel.sh OUT_DIR), sourced by them.
#
#   dir=$(out_dir NAME "$@")   # the folder, created, as an absolute path; exits 2 with
#                              # "usage: SCRIPT NAME" unless there is exactly one non-empty one

out_dir() {
  local name=$1
  shift
  if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 $name" >&2
    exit 2
  fi
  mkdir -p "$1"
  (cd "$1" && pwd)
}
