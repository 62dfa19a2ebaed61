# shellcheck shell=bash
# A virtual environment with the pinned Python packages of benches/python (boto3,
# pandas), for the comparison bench. Source this, then: ensure_bench_python
# (exports BENCH_PYTHON).

ensure_bench_python() {
  local root venv req stamp
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  venv="$root/.bench-venv"
  req="$root/benches/python/requirements.txt"
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
  export BENCH_PYTHON="$venv/bin/python"
}
