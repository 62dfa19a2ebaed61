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
//!
//! Beside them, at the bottom: `error`, `metadata` (the table's description),
//! `key_stats` (what the schema sample showed of the keys, for cost
//! estimates) and `policy` (retries). Above them, `provider`, `catalog`, `factory`, `session`
//! and `run` wire them into DataFusion. Each layer imports only those below it
//! (checked by the workspace's `architecture` test).

mod catalog;
mod client;
mod config;
mod decode;
mod error;
mod exec;
mod factory;
mod functions;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod key_stats;
mod metadata;
mod options;
mod plan;
mod policy;
mod provider;
pub mod read;
mod run;
mod schema;
mod session;
mod value;

pub use catalog::DynamoSchemaProvider;
pub use client::{ConnectionOptions, parse_endpoint_url};
pub use config::{DynamoConfig, JoinKeyLookups, ScanGuard};
pub use decode::{Item, ItemDecoder};
pub use error::{Error, ErrorKind, Result, Widening, describe_sdk_error};
pub use exec::ceiling_rule::CapacityCeilingRule;
pub use exec::readable::readable_plan;
pub use exec::stats::ReadStats;
pub use exec::{DynamoExec, ExecLayout, ExecParts};
pub use factory::{DYNAMODB_FILE_TYPE, DynamoTableFactory};
pub use functions::to_json_udf;
pub use metadata::{
    IndexKind, IndexMeta, IndexProjection, KeyAttribute, KeySchema, KeyType, TableMeta,
};
pub use options::TableOptions;
pub use plan::{
    DEFAULT_PRICE_PER_MILLION_RRU, IndexPolicy, ReadEstimate, ScanPlan, resolve_placeholders,
};
pub use policy::RetryPolicy;
pub use provider::{DynamoTableProvider, DynamoTableProviderBuilder, describe_table};
pub use read::retry::{Retrier, without_sdk_retries};
pub use read::{Page, PageRequest, read_page};
pub use run::{CollectSink, ResultSink, RunOptions, RunOutcome, plan_here, run_statement};
pub use schema::cache::{DEFAULT_SCHEMA_TTL, FileSchemaCache, SchemaCache, SchemaKey};
pub use schema::infer::{is_json_field, json_field};
pub use schema::{ColumnType, SchemaHistory, SchemaOrigin};
pub use session::{DEFAULT_CATALOG, DEFAULT_SCHEMA, dynamo_session, dynamo_session_with_cache};
pub use value::dynamo_json;
