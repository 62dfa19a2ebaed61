#!/usr/bin/env bash
# The demo on a local Ballista cluster: installs what is missing, starts DynamoDB
# Local on 127.0.0.1, loads the demo tables, starts a dynamo-ballista scheduler and
# two executors on free loopback ports, and opens dynamo-sql on the cluster.
# Arguments go to dynamo-sql, e.g.  scripts/cluster.sh -c 'SELECT count(*) FROM Inventory'
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/demo-env.sh
cargo build --locked --workspace --all-features --bin dynamo-sql --bin dynamo-ballista --example load_demo
bin="$CARGO_TARGET_DIR/debug"

# A free loopback port whose next port is free too (executors bind two).
free_port() {
  python3 - <<'PY'
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", port + 1)); t.close(); s.close(); print(port); break
    except OSError:
        s.close(); t.close()
PY
}

wait_port() {
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

pids=()
work="$(mktemp -d)"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
  ddb_local_stop
}
trap cleanup EXIT
ddb_local_start
"$bin/examples/load_demo"

scheduler_port="$(free_port)"
# Each process in a session of its own: Ctrl-C at the REPL reaches only the
# REPL (which cancels its job on the cluster), never the cluster's processes.
setsid "$bin/dynamo-ballista" scheduler --bind "127.0.0.1:$scheduler_port" 2>"$work/scheduler.log" &
pids+=($!)
wait_port "$scheduler_port"
for i in 1 2; do
  port="$(free_port)"
  mkdir -p "$work/executor$i"
  setsid "$bin/dynamo-ballista" executor --scheduler "127.0.0.1:$scheduler_port" \
    --bind "127.0.0.1:$port" --work-dir "$work/executor$i" \
    --endpoint-url "$DYNAMODB_ENDPOINT" 2>"$work/executor$i.log" &
  pids+=($!)
  wait_port "$port"
done
sleep 1 # executors register by heartbeat
echo "cluster: scheduler df://127.0.0.1:$scheduler_port, two executors" >&2
"$bin/dynamo-sql" --endpoint-url "$DYNAMODB_ENDPOINT" --cluster "df://127.0.0.1:$scheduler_port" "$@"
