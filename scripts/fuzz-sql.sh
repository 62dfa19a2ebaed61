#!/usr/bin/env bash
# Differential SQL fuzzing against DuckDB:  scripts/fuzz-sql.sh [--minutes N] [--seed S]
#
# Random DynamoDB tables and random SQL over them, each statement answered by
# the project (reading DynamoDB Local) and by DuckDB over the same rows
# (tests/integration/oracle, docs/testing.md). Installs what it needs (Java 17,
# DynamoDB Local, the pinned Python packages with DuckDB), starts its own
# DynamoDB Local, runs for N minutes (default 10) from seed S (default: a random
# one, printed), prints statements/s and divergences, and writes every divergence
# to $CARGO_TARGET_DIR/fuzz-sql-report.txt. Exits non-zero when any was found.
# Replay a divergence with the seed and statement number it names.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=10
seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes="${2:?--minutes N}"; shift 2 ;;
    --seed) seed="${2:?--seed S}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (try --help)" >&2; exit 2 ;;
  esac
done
case "$minutes" in ''|*[!0-9]*) echo "--minutes takes a whole number" >&2; exit 2 ;; esac
seed="${seed:-$(( (RANDOM << 15) | RANDOM ))}"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
export AWS_EC2_METADATA_DISABLED=true
source scripts/lib/dynamodb-local.sh
source scripts/lib/python-env.sh
ddb_local_install
ensure_project_python

# The test command's package set: nothing compiles twice.
cargo build --workspace --all-features --all-targets --locked
trap ddb_local_stop EXIT
ddb_local_start

report="$CARGO_TARGET_DIR/fuzz-sql-report.txt"
echo "fuzzing for $minutes minutes from seed $seed; divergences go to $report" >&2
export ORACLE_SECONDS=$((minutes * 60)) ORACLE_SEED="$seed" ORACLE_REPORT="$report"
filter='test(oracle::random_sql_answers_what_duckdb_answers)'
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-capture -E "$filter"
else
  cargo test --workspace --all-features --locked --test integration -- --nocapture oracle::random_sql
fi
