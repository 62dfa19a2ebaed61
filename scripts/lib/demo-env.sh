# Sourced by scripts/demo.sh and scripts/cluster.sh: the toolchain check, the
# build directory, and the made-up local credentials of the demo. DynamoDB Local
# keeps one database per access key and region, so the loader, the REPL and any
# cluster process use the same ones (each process reads them itself).
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
export AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN

source scripts/lib/dynamodb-local.sh
ddb_local_install
