//! Integration tests against DynamoDB Local on 127.0.0.1 (started by `scripts/test.sh`).
//! One binary, many modules: linking DataFusion once keeps the suite fast.

mod catalogue;
mod changes;
mod common;
mod cost;
mod equivalence;
mod errors;
mod faults;
mod joins;
mod mirror;
mod oracle;
mod pushdown;
mod scan;
mod sql;
mod time;
mod types;
mod widening;
mod writes;
