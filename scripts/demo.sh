#!/usr/bin/env bash
# The main job: installs what is missing, starts DynamoDB Local on 127.0.0.1,
# loads the demo tables (UserEngagement, Inventory) and opens the dynamo-sql REPL.
# Arguments go to dynamo-sql, e.g.  scripts/demo.sh -c 'SELECT count(*) FROM Inventory'
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/demo-env.sh
cargo build --locked --workspace --all-features --bin dynamo-sql --example load_demo

trap ddb_local_stop EXIT
ddb_local_start
"$CARGO_TARGET_DIR/debug/examples/load_demo"
"$CARGO_TARGET_DIR/debug/dynamo-sql" --endpoint-url "$DYNAMODB_ENDPOINT" --rc scripts/demo.sql "$@"
