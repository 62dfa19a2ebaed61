//! DynamoDB scans on an Apache Ballista cluster.
//!
//! - [`codec`]: plan codecs wrapping Ballista's own, which carry DynamoDB
//!   tables and scans between the client, the scheduler and the executors —
//!   table name, metadata, options, region, endpoint and scan plan, never a
//!   credential: each process reads with its own credential chain.
//! - [`jobs`]: the scheduler's address, and cancelling a job so that its
//!   DynamoDB reads stop, on the client and on the executors.
//! - [`process`]: the scheduler and executor processes with those codecs
//!   installed (the `dynamo-ballista` binary runs them).

pub mod codec;
pub mod jobs;
pub mod process;

pub use codec::{Connector, DynamoLogicalCodec, DynamoPhysicalCodec};
pub use jobs::{JobWatch, cancel_jobs, scheduler_url};
pub use process::{ExecutorArgs, SchedulerArgs, cluster_session, run_executor, run_scheduler};
