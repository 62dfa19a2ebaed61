#!/usr/bin/env bash
# Fuzzes one target with libFuzzer:  scripts/fuzz.sh TARGET [SECONDS]
# Targets: request (connector request parser), render (SQL filters -> DynamoDB
# expressions, checked against DynamoDB's grammar), decode (DynamoDB-JSON -> Arrow).
# Installs cargo-fuzz when missing. Builds without a sanitizer (safe Rust; the
# checks look for panics and broken invariants) and with debug assertions, on the
# stable toolchain. New inputs go to fuzz/corpus/TARGET, crashes to fuzz/artifacts/.
# Not run by CI: CI replays the corpus (crates/dynamo-connector/tests/fuzz_smoke.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:?usage: scripts/fuzz.sh request|render|decode [SECONDS]}"
seconds="${2:-60}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/dynamo-connector/fuzz-target}"
cd fuzz
# Without a sanitizer cargo-fuzz passes no nightly-only flag: the stable toolchain builds it.
cargo fuzz run --dev -s none "$target" "corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=4096
