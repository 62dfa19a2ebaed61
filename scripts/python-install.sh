#!/usr/bin/env bash
# Installs the Python package (dynamo_datafusion, for datafusion-python 55) into
# a Python environment. The extension is built by the same cargo command as the
# other scripts, so after scripts/test.sh or scripts/demo.sh only this
# workspace's own crates compile, and on a fresh machine each dependency
# compiles once whatever runs first.
# Usage: scripts/python-install.sh [PYTHON]   (default: python3; a virtual
# environment's python installs into that environment)
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dynamo-connector/target}"
python="${1:-python3}"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  { echo "$python: Python 3.10 or later is needed" >&2; exit 1; }

# The package set and features of scripts/test.sh and scripts/demo.sh.
cargo build --locked --workspace --all-features --lib --bin dynamo-sql --example load_demo

source scripts/lib/python-env.sh
stage="$(stage_python_package)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
wheel="$("$python" scripts/lib/make_wheel.py "$stage" "$CARGO_TARGET_DIR/python-wheel" "$version")"
# datafusion-python pinned to the DataFusion line the extension is built against.
"$python" -m pip install --quiet --disable-pip-version-check "datafusion==55.0.0"
"$python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
"$python" -c 'import dynamo_datafusion; print("installed dynamo_datafusion from", dynamo_datafusion.__file__)'
