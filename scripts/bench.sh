#!/usr/bin/env bash
# Runs a benchmark against DynamoDB Local on 127.0.0.1:  scripts/bench.sh NAME [ARGS...]
# e.g. scripts/bench.sh pushdown --items 10000 --items 100000 --runs 5
# Benches: pushdown, scan_throughput, decode (criterion), vs_python (boto3 + pandas),
# replay (client-side ceiling), capacity (read-capacity budget), schema_cache (sampling per
# one-shot run, with and without the schema cache), mirror (live reads vs Delta mirrors,
# freshness lag, bootstrap items/s), bulk_load (REPLACE/INSERT from Parquet vs boto3's
# batch_writer, on DynamoDB Local and on a write sink with per-request latency), soak
# (serve under a mixed load with faults for many minutes; scripts/soak.sh).
# PROFILE=release for optimised builds (slow to compile); the default is the test profile.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: scripts/bench.sh NAME [ARGS...]}"; shift
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
export AWS_EC2_METADATA_DISABLED=true
source scripts/lib/dynamodb-local.sh
source scripts/lib/python-env.sh
ddb_local_install
case "$name" in vs_python | bulk_load) ensure_project_python ;; esac
if [ "${PROFILE:-test}" = "release" ]; then
  cargo build --locked --release --workspace --all-features --bench "$name" --bin dynamo-sql --bin dynamo-ballista --bin dynamo-connector
  runner=(cargo bench --workspace --all-features --locked --bench "$name" --)
else
  cargo build --locked --workspace --all-features --bench "$name" --bin dynamo-sql --bin dynamo-ballista --bin dynamo-connector
  runner=(cargo test --workspace --all-features --locked --bench "$name" --)
fi
trap ddb_local_stop EXIT
ddb_local_start
"${runner[@]}" "$@"
