//! Support for tests, examples, benchmarks and the demo: SDK clients for a
//! local DynamoDB-API server (loopback only), table fixtures, bulk loading,
//! the demo tables, a table whose rare items defeat a schema sample, a
//! local Ballista cluster of `dynamo-ballista` processes, and a checker of
//! DynamoDB's expression grammar.

mod cluster;
mod demo;
pub mod expression;
mod fault;
mod fixtures;
mod local;
mod seeded;
mod split;
mod traps;

pub use cluster::{ClusterError, ClusterSpec, LocalCluster};
pub use demo::{DEMO_TABLES, load_demo};
pub use fault::{Fault, FaultConfig, FaultCounts, FaultProxy, ProxyError};
pub use fixtures::{
    IndexSpec, TableSpec, create_table, delete_table, enable_time_to_live, put_items, table_exists,
    unique_name,
};
pub use local::{
    ENDPOINT_ENV, LOCAL_SECRET, LocalError, local_client, local_client_as, local_endpoint,
};
pub use seeded::Xorshift;
pub use traps::{TRAP_TABLE_ITEMS, TrapTable, Traps, trap_table};
