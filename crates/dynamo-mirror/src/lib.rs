//! Mirrors: a Delta Lake copy of a DynamoDB table, kept up to date from
//! the table's stream, so repeated analytics read files instead of paying
//! for table reads.
//!
//! - [`Mirror::create`] records where the table's stream stands, Scans
//!   the table (in parallel) into a new Delta table, and applies what
//!   changed during the Scan.
//! - [`Mirror::sync`] applies what the stream holds after the mirror's
//!   checkpoint: per item the last change (upsert of its new image, or
//!   removal of its key), by a Delta MERGE whose commit carries the
//!   checkpoint it reaches — data and position in one atomic commit, so a
//!   follower killed at any point goes on from the last commit, nothing
//!   lost and nothing applied twice. [`Mirror::follow`] syncs in a loop.
//!   A checkpoint the stream no longer holds (24-hour retention) is an
//!   error or a rebuild ([`OnExpired`]), never a partial mirror.
//! - [`MirrorTableProvider`] answers a table's queries from the mirror
//!   while it is at most `max_staleness` behind (otherwise it catches up
//!   from the stream, reads live, or fails: [`OnStale`]);
//!   [`MirrorTableFactory`] makes one from `CREATE EXTERNAL TABLE ...
//!   OPTIONS (mirror 'PATH')`.
//!
//! A mirror is an ordinary Delta table: any Delta reader (delta-rs,
//! DuckDB, Spark) reads it. Its columns are the table's, in the types
//! below.
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_dynamodb::Client) -> Result<(), dynamo_mirror::MirrorError> {
//! use std::sync::Arc;
//! use dynamo_datafusion::DynamoTableProvider;
//! use dynamo_mirror::{Mirror, SyncOptions};
//!
//! let orders = Arc::new(DynamoTableProvider::try_new(client, "Orders").await?);
//! let (mut mirror, created) = Mirror::create(&orders, "/data/mirrors/orders").await?;
//! println!("{} items mirrored", created.records);
//! // Later, or in a loop (`Mirror::follow`):
//! let applied = mirror.sync(&orders, &SyncOptions::default()).await?;
//! println!("{} changes applied, version {}", applied.records, applied.version);
//! # Ok(()) }
//! ```
//!
//! # Types
//!
//! Columns whose Arrow type a Delta reader would not know are kept
//! losslessly in one it does, and cast back on reads: timestamps of
//! seconds, milliseconds and `Date64` as microsecond timestamps,
//! nanosecond timestamps as `long` nanoseconds, `Decimal256` as its exact
//! text, never-seen (`Null`) columns as strings.

mod apply;
mod error;
mod factory;
mod location;
mod mirror;
mod provider;
mod schema;
mod state;

pub use error::{MirrorError, Result};
pub use factory::{MirrorTableFactory, parse_duration};
pub use mirror::{Mirror, OnExpired, SyncOptions, SyncReport};
pub use provider::{
    Freshness, MirrorScanExec, MirrorScanParts, MirrorTableParts, MirrorTableProvider, OnStale,
};
pub use state::{APP_ID, MirrorPosition};
