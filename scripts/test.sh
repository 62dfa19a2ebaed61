#!/usr/bin/env bash
# Runs every test: installs what is missing (Java 17, Node/npm, DynamoDB Local),
# starts DynamoDB Local on 127.0.0.1, runs unit, integration and CLI tests,
# checks that the benches and examples compile, and stops the server even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
# Keep the SDK's credential chain off the network: no instance metadata lookups.
export AWS_EC2_METADATA_DISABLED=true

source scripts/lib/dynamodb-local.sh
source scripts/lib/python-env.sh
ddb_local_install
ensure_project_python

# Build before starting the server so it does not sit idle through compilation.
cargo build --workspace --all-features --all-targets --locked

trap ddb_local_stop EXIT
ddb_local_start

# Doc tests first, so the run ends with the main suite's summary.
cargo test --workspace --all-features --doc --locked

# Benchmarks measure, tests assert: CI only checks each bench still runs, in seconds
# (test profile; BENCH_SMOKE=1 selects each bench's smallest configuration).
# Every cargo call names the whole workspace with all its features (the fuzz
# checks' corpus replay needs `fuzzing`), so features unify the same way and
# dependencies compile once.
BENCH_SMOKE=1 cargo test --workspace --all-features --locked --benches

# The Python package (python/), installed as docs/python.md says (from the
# build above: nothing compiles again), then its tests.
scripts/python-install.sh "$PROJECT_PYTHON"
"$PROJECT_PYTHON" -m pytest -q python/tests

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --locked --no-fail-fast
else
  cargo test --workspace --all-features --locked --no-fail-fast
fi
