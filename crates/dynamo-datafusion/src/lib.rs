//! SQL over Amazon DynamoDB on Apache DataFusion.
//!
//! - [`DynamoTableProvider`]: one DynamoDB table as a DataFusion `TableProvider`,
//!   streamed page by page as Arrow record batches with exact types.
//! - [`DynamoSchemaProvider`]: every table of an account and region, by name.
//! - [`DynamoTableFactory`]: `CREATE EXTERNAL TABLE ... STORED AS DYNAMODB`.
//! - [`dynamo_session`]: a ready session over all of a client's tables.
//! - [`ConnectionOptions`]: SDK clients from the standard AWS chain.
//!
//! Where SQL meets DynamoDB: `plan` turns filters into the cheapest correct read
//! (pure, unit-tested), `provider` wires it into DataFusion, `exec` streams it,
//! `read` talks to DynamoDB, `capture` takes Scan and Query items out of the
//! SDK's hands as DynamoDB's JSON, `decode` turns items into Arrow, `infer` and
//! `schema` choose the Arrow types, `widen` widens them when a read meets a
//! value the sample did not show and `run` re-plans the statement then,
//! `number` keeps numbers exact, `retry` and `capacity` keep reads going
//! through faults without overrunning a table.

mod capacity;
mod capture;
mod catalog;
mod client;
mod config;
mod decode;
pub mod dynamo_json;
mod error;
mod exec;
mod factory;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod infer;
mod json;
mod metadata;
mod nested;
mod number;
mod options;
mod plan;
mod provider;
mod read;
pub mod retry;
mod run;
mod sample;
mod schema;
mod schema_cache;
mod session;
mod stats;
mod widen;

pub use capacity::CapacityLimiter;
pub use catalog::{DynamoSchemaProvider, list_tables};
pub use client::{ConnectionOptions, LOCAL_DEFAULT_REGION};
pub use config::DynamoConfig;
pub use decode::{Item, ItemDecoder};
pub use error::{Error, ErrorKind, Result, describe_sdk_error};
pub use exec::DynamoExec;
pub use factory::{DYNAMODB_FILE_TYPE, DynamoTableFactory};
pub use infer::{ENCODING_METADATA_KEY, JSON_ENCODING, is_json_field, json_field};
pub use json::to_json_text;
pub use metadata::{
    IndexKind, IndexMeta, IndexProjection, KeyAttribute, KeySchema, KeyType, TableMeta,
};
pub use options::{ColumnType, DEFAULT_SAMPLE_SIZE, OPTION_KEYS, TableOptions};
pub use plan::{AccessPlan, IndexPolicy, Key, Operation, PlanOptions, SortCondition, plan_access};
pub use provider::{DynamoTableProvider, DynamoTableProviderBuilder, describe_table};
pub use retry::{Retrier, RetryPolicy};
pub use run::{CollectSink, ResultSink, RunOptions, RunOutcome, run_statement};
pub use schema_cache::{DEFAULT_SCHEMA_TTL, FileSchemaCache, SchemaCache, SchemaKey};
pub use session::{DEFAULT_CATALOG, DEFAULT_SCHEMA, dynamo_session, dynamo_session_with_cache};
pub use stats::ReadStats;
pub use widen::{SchemaHistory, SchemaOrigin, Widening};
