# shellcheck shell=bash
# The project's Python environment: a virtual environment with the pinned
# packages of python/requirements.txt — boto3 and pandas for the comparison
# bench, pyarrow and the ADBC Flight SQL driver for the Flight SQL tests.
# Source this, then: ensure_project_python (exports PROJECT_PYTHON, and
# BENCH_PYTHON for the benches).

ensure_project_python() {
  local root venv req stamp
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  venv="$root/.venv"
  req="$root/python/requirements.txt"
  stamp="$venv/.requirements"
  if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 not found" >&2; return 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" || { echo "python3 -m venv failed (apt-get install python3-venv)" >&2; return 1; }
  fi
  if ! cmp -s "$req" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" && cp "$req" "$stamp"
  fi
  export PROJECT_PYTHON="$venv/bin/python"
  export BENCH_PYTHON="$PROJECT_PYTHON"
}

# The Python package as this checkout's debug build makes it, without a second
# compile (maturin would build the one crate alone, and so DataFusion again):
# python/dynamo_datafusion with the extension module the workspace build left
# in $CARGO_TARGET_DIR/debug. Prints the directory to put on PYTHONPATH.
stage_python_package() {
  local root target stage
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  target="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
  stage="$target/python-package"
  rm -rf "$stage" && mkdir -p "$stage"
  cp -r "$root/python/dynamo_datafusion" "$stage/"
  cp "$target/debug/libdynamo_python.so" "$stage/dynamo_datafusion/_internal.abi3.so"
  echo "$stage"
}
