#!/usr/bin/env bash
# Runs a benchmark against DynamoDB Local on 127.0.0.1:  scripts/bench.sh NAME [ARGS...]
# e.g. scripts/bench.sh scan_throughput --items 20000 --runs 3
# PROFILE=release for optimised builds (slow to compile); the default is the test profile.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: scripts/bench.sh NAME [ARGS...]}"; shift
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
export AWS_EC2_METADATA_DISABLED=true
source scripts/lib/dynamodb-local.sh
ddb_local_install
if [ "${PROFILE:-test}" = "release" ]; then
  cargo build --locked --release --bench "$name"
  runner=(cargo bench --locked --bench "$name" --)
else
  cargo build --locked --tests --bench "$name"
  runner=(cargo test --locked --bench "$name" --)
fi
trap ddb_local_stop EXIT
ddb_local_start
"${runner[@]}" "$@"
