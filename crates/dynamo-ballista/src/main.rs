//! `dynamo-ballista`: a Ballista scheduler or executor that reads DynamoDB.
//!
//! ```text
//! dynamo-ballista scheduler --bind 127.0.0.1:50050
//! dynamo-ballista executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50051 \
//!     [--concurrent-tasks N] [--endpoint-url URL] [--region R] [--profile P]
//! ```
//!
//! Each process reads DynamoDB with its own credential chain (environment,
//! shared files, `--profile`, instance role); plans never carry credentials.
//! Logs go to standard error at `RUST_LOG` (default `info`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dynamo_ballista::{ExecutorArgs, SchedulerArgs, run_executor, run_scheduler};
use dynamo_datafusion::ConnectionOptions;

#[derive(Debug, Parser)]
#[command(
    name = "dynamo-ballista",
    version,
    about = "A Ballista scheduler or executor that reads DynamoDB"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// Plans queries and hands their tasks to executors.
    Scheduler {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50050")]
        bind: SocketAddr,
        /// Seconds without a heartbeat after which an executor is lost and
        /// its running tasks run again on another.
        #[arg(long, default_value_t = 30)]
        executor_timeout: u64,
        /// Directory for Ballista's per-job event logs (job and task
        /// history, as its REST API reports it); none when unset.
        #[arg(long)]
        event_log_dir: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Runs tasks: reads DynamoDB, computes, serves results.
    Executor {
        /// The scheduler's address.
        #[arg(long, default_value = "127.0.0.1:50050")]
        scheduler: SocketAddr,
        /// Address of its Arrow Flight service (gRPC on the next port).
        #[arg(long, default_value = "127.0.0.1:50051")]
        bind: SocketAddr,
        /// Tasks it runs at once (default: the machine's cores).
        #[arg(long)]
        concurrent_tasks: Option<usize>,
        /// Directory for shuffle files (default: a temporary one).
        #[arg(long)]
        work_dir: Option<String>,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 5)]
        heartbeat: u64,
        #[command(flatten)]
        connection: Connection,
    },
}

/// Where this process reads DynamoDB; unset: what the plan names, then the
/// standard AWS chain.
#[derive(Debug, Args)]
struct Connection {
    /// DynamoDB endpoint URL (e.g. a local server).
    #[arg(long, env = "DYNAMODB_ENDPOINT", value_parser = dynamo_datafusion::parse_endpoint_url)]
    endpoint_url: Option<String>,
    /// AWS region.
    #[arg(long)]
    region: Option<String>,
    /// Named profile of this process's own credentials.
    #[arg(long)]
    profile: Option<String>,
}

impl From<Connection> for ConnectionOptions {
    fn from(c: Connection) -> Self {
        ConnectionOptions::default()
            .with_endpoint_url(c.endpoint_url)
            .with_region(c.region)
            .with_profile(c.profile)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let outcome = match cli.role {
        Role::Scheduler {
            bind,
            executor_timeout,
            event_log_dir,
            connection,
        } => {
            eprintln!("dynamo-ballista scheduler on {bind}");
            run_scheduler(SchedulerArgs {
                bind,
                executor_timeout_secs: executor_timeout,
                event_log_dir,
                connection: connection.into(),
            })
            .await
        }
        Role::Executor {
            scheduler,
            bind,
            concurrent_tasks,
            work_dir,
            heartbeat,
            connection,
        } => {
            eprintln!("dynamo-ballista executor on {bind}, scheduler {scheduler}");
            run_executor(ExecutorArgs {
                scheduler,
                bind,
                concurrent_tasks,
                work_dir,
                heartbeat_secs: heartbeat,
                connection: connection.into(),
            })
            .await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dynamo-ballista: {e}");
            ExitCode::FAILURE
        }
    }
}
