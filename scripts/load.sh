#!/usr/bin/env bash
# Load test of `dynamo-connector serve`:
#   scripts/load.sh [--seconds S] [--workers W] [--only OP]... [--session-ttl-secs N]
#
# The soak's server, tenants and checked operations (benches/soak.rs --load) without
# faults: W clients (default 10) for S seconds (default 60) sending `query`, filtered
# `scan` and `sql` over HTTP and a GROUP BY over Flight SQL (--only http-query|http-scan|
# http-sql|flight-sql, repeatable, picks some). Prints req/s, p50 and p99 per operation
# and the `sql` p50 ÷ `query` p50 ratio (the same one-partition read both ways); writes
# benches/results/load.md. --session-ttl-secs is passed to serve (0: a SQL session per
# request, the baseline). Starts its own DynamoDB Local. PROFILE=release for an
# optimised build (slow to compile); the default is the test profile.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/bench.sh soak --load "$@"
