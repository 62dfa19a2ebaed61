//! SQL over Amazon DynamoDB on Apache DataFusion.
//!
//! - [`DynamoTableProvider`]: one DynamoDB table as a DataFusion `TableProvider`,
//!   streamed page by page as Arrow record batches with exact types.
//! - [`DynamoSchemaProvider`]: every table of an account and region, by name.
//! - [`DynamoTableFactory`]: `CREATE EXTERNAL TABLE ... STORED AS DYNAMODB`.
//! - [`dynamo_session`]: a ready session over all of a client's tables.
//! - [`ConnectionOptions`]: SDK clients from the standard AWS chain.
//!
//! The modules follow a read from SQL to Arrow:
//!
//! | module | does |
//! |---|---|
//! | `value/` | exact numbers, DynamoDB JSON, JSON text columns |
//! | `schema/` | the Arrow schema: `infer` it from observed items, `widen` it on a surprise, `cache` it |
//! | `plan/` | filters → the cheapest correct read, as a serializable `ScanPlan` (pure) |
//! | `read/` | one page at a time from DynamoDB: `retry`, `capacity`, `capture` of the JSON, the schema `sample` |
//! | `decode/` | items (JSON text or SDK values) → Arrow columns |
//! | `exec/` | the `ExecutionPlan`: partitions, projections absorbed, a join's keys read by key, read statistics |
//! | `write/` | INSERT, REPLACE, UPDATE and DELETE: rows → exact items → conditional writes |
//!
//! Beside them, at the bottom: `error`, `metadata` (the table's description),
//! `key_stats` (what the schema sample showed of the keys, for cost
//! estimates) and `policy` (retries). Above them, `provider`, `catalog`, `factory`, `session`
//! and `run` wire them into DataFusion. Each layer imports only those below it
//! (checked by the workspace's `architecture` test).

mod catalog;
pub mod changes;
mod client;
mod config;
pub mod decode;
pub mod error;
pub mod exec;
mod factory;
mod functions;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod key_stats;
pub mod metadata;
mod options;
mod plan;
mod policy;
mod provider;
pub mod read;
pub mod run;
pub mod schema;
pub mod session;
pub mod statement;
mod value;
pub mod write;

pub use catalog::DynamoSchemaProvider;
pub use client::{ConnectionOptions, parse_endpoint_url};
pub use config::{DynamoConfig, JoinKeyLookups, ScanGuard, WriteMode};
pub use error::{Error, ErrorKind, Result};
pub use exec::{CapacityCeilingRule, DynamoExec, readable_plan};
pub use factory::DynamoTableFactory;
pub use functions::to_json_udf;
pub use metadata::TableMeta;
pub use options::TableOptions;
pub use plan::{IndexPolicy, ReadEstimate, ScanPlan};
pub use policy::RetryPolicy;
pub use provider::{DynamoTableProvider, DynamoTableProviderBuilder, describe_table};
pub use session::dynamo_session;
pub use value::dynamo_json;

/// The embedding guide's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/embedding.md")]
struct EmbeddingGuide;
