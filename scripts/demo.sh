#!/usr/bin/env bash
# The main job: installs what is missing, starts DynamoDB Local on 127.0.0.1,
# loads the demo tables (UserEngagement, Inventory) and opens the dynamo-sql REPL.
# Arguments go to dynamo-sql, e.g.  scripts/demo.sh -c 'SELECT count(*) FROM Inventory'
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
export AWS_EC2_METADATA_DISABLED=true
# DynamoDB Local keeps one database per access key and region: the loader and the
# REPL use the same made-up local credentials.
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

source scripts/lib/dynamodb-local.sh
ddb_local_install
cargo build --locked --workspace --all-features --bin dynamo-sql --example load_demo

trap ddb_local_stop EXIT
ddb_local_start
"$CARGO_TARGET_DIR/debug/examples/load_demo"
"$CARGO_TARGET_DIR/debug/dynamo-sql" --endpoint-url "$DYNAMODB_ENDPOINT" "$@"
