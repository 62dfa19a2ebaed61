#!/usr/bin/env bash
# Soak tests:  scripts/soak.sh [--minutes M] [--workers W]
#              scripts/soak.sh --ballista [--minutes M]
#
# Default: `dynamo-connector serve` (HTTP + Flight SQL), three tenants, a mixed load
# (query, scan, sql over HTTP; statements over Flight SQL) for M minutes (default 30)
# with 5 % of DynamoDB's answers throttled or failed by the fault proxy; every answer
# checked; the server's RSS and open descriptors sampled (benches/soak.rs, writes
# benches/results/soak.md). Fails on any error or wrong answer, RSS growth above 1.2x
# from minute 5, or descriptors that grow. CI runs a 20-second version (BENCH_SMOKE=1).
#
# --ballista: a real scheduler and two executors; a loop of queries for M minutes
# (default 10) while executors are killed and restarted at random; every answer exact
# (crates/dynamo-ballista/tests/cluster.rs; CI runs it for 30 seconds).
# Both start their own DynamoDB Local.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--ballista" ]; then
  shift
  minutes=10
  while [ $# -gt 0 ]; do
    case "$1" in
      --minutes) minutes="${2:?--minutes M}"; shift 2 ;;
      *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
  done
  case "$minutes" in ''|*[!0-9]*) echo "--minutes takes a whole number" >&2; exit 2 ;; esac
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
  export AWS_EC2_METADATA_DISABLED=true
  source scripts/lib/dynamodb-local.sh
  ddb_local_install
  cargo build --workspace --all-features --all-targets --locked
  trap ddb_local_stop EXIT
  ddb_local_start
  export BALLISTA_SOAK_SECONDS=$((minutes * 60))
  cargo nextest run --workspace --all-features --locked --no-capture \
    -E 'test(queries_answer_exactly_while_executors_are_killed_and_restarted)'
fi
exec scripts/bench.sh soak "$@"
