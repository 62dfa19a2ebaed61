//! The scheduler and executor processes, with this crate's codecs and the
//! `dynamodb.*` session settings installed.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::ConfigProducer;
use ballista_core::error::Result;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use dynamo_datafusion::{CapacityCeilingRule, ConnectionOptions, DynamoConfig};

use crate::codec::{Connector, DynamoLogicalCodec, DynamoPhysicalCodec};
use crate::jobs::{JobWatch, scheduler_url};
use dynamo_datafusion::read::CancellationProbe;

/// How to run a scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerArgs {
    /// Where it listens for clients and executors.
    pub bind: SocketAddr,
    /// Seconds without a heartbeat after which an executor is lost and its
    /// running tasks are scheduled again elsewhere.
    pub executor_timeout_secs: u64,
    /// Where Ballista writes its per-job event logs (none when unset).
    pub event_log_dir: Option<String>,
    /// Region, endpoint and profile this process reads DynamoDB with when
    /// it plans (it describes no table itself: the plans carry metadata).
    pub connection: ConnectionOptions,
}

/// How to run an executor.
#[derive(Debug, Clone)]
pub struct ExecutorArgs {
    /// The scheduler's address.
    pub scheduler: SocketAddr,
    /// Where it serves its results (Arrow Flight); its gRPC port is the next one.
    pub bind: SocketAddr,
    /// Tasks it runs at once (default: the machine's cores).
    pub concurrent_tasks: Option<usize>,
    /// Where it keeps shuffle files (default: a temporary directory).
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    pub heartbeat_secs: u64,
    /// Region and endpoint it reads DynamoDB at, overriding what plans name;
    /// profile of its own credential chain. Credentials never come with a plan.
    pub connection: ConnectionOptions,
}

/// The session settings every process starts from: Ballista's, with the
/// `dynamodb.*` settings known and scans planned for a cluster
/// (`dynamodb.distributed`): a scan's partitions are named by an in-memory
/// input, which Ballista's scheduler divides among tasks like any memory
/// scan, so each task reads only its partitions (segments, Queries, key
/// batches) and at its share of the read-capacity budget.
pub fn session_config() -> SessionConfig {
    let mut dynamo = DynamoConfig::default();
    dynamo.distributed = true;
    SessionConfig::new_with_ballista().with_option_extension(dynamo)
}

/// The codecs of a process that reads DynamoDB as `connection` says, with
/// its own credential chain.
pub async fn codecs(
    connection: &ConnectionOptions,
) -> (
    Arc<dyn LogicalExtensionCodec>,
    Arc<dyn PhysicalExtensionCodec>,
) {
    let base = connection.sdk_config().await;
    let connector = Connector::new(base, connection.clone().with_profile(None));
    (
        Arc::new(DynamoLogicalCodec::new(
            Arc::new(BallistaLogicalExtensionCodec::default()),
            connector.clone(),
        )),
        Arc::new(DynamoPhysicalCodec::new(
            Arc::new(BallistaPhysicalExtensionCodec::default()),
            connector,
        )),
    )
}

fn config_producer() -> ConfigProducer {
    Arc::new(session_config)
}

/// An executor's task sessions: [`session_config`], with reads that stop
/// once their job is cancelled ([`JobWatch`] asks `scheduler`).
fn executor_config_producer(scheduler: SocketAddr) -> ConfigProducer {
    let probe = Arc::new(CancellationProbe(Arc::new(JobWatch::new(
        &scheduler.to_string(),
    ))));
    Arc::new(move || session_config().with_extension(Arc::clone(&probe)))
}

/// The scheduler's session for a job: Ballista's, with the rule a
/// `dynamo_session` plans with, so a plan made on the cluster holds the
/// query's reads to one ceiling (`CapacityCeilingRule`), as a plan made in
/// one process does.
fn scheduler_session(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let state = ballista_core::utils::default_session_builder(config)?;
    Ok(SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rule(Arc::new(CapacityCeilingRule))
        .build())
}

/// Runs a scheduler until it fails.
pub async fn run_scheduler(args: SchedulerArgs) -> Result<()> {
    let (logical, physical) = codecs(&args.connection).await;
    let config = SchedulerConfig {
        bind_host: args.bind.ip().to_string(),
        bind_port: args.bind.port(),
        external_host: args.bind.ip().to_string(),
        override_logical_codec: Some(logical),
        override_physical_codec: Some(physical),
        override_config_producer: Some(config_producer()),
        override_session_builder: Some(Arc::new(scheduler_session)),
        executor_timeout_seconds: args.executor_timeout_secs,
        expire_dead_executor_interval_seconds: (args.executor_timeout_secs / 3).max(1),
        no_executors_grace_period_seconds: args.executor_timeout_secs,
        event_log_dir: args.event_log_dir,
        ..SchedulerConfig::default()
    };
    let cluster = BallistaCluster::new_from_config(&config).await?;
    start_server(cluster, args.bind, Arc::new(config)).await
}

/// Says on the log when this process has no AWS credentials: it starts
/// (the cluster may only plan), but every DynamoDB read it runs will fail.
async fn warn_without_credentials(connection: &ConnectionOptions) {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    let sdk = connection.sdk_config().await;
    let missing = match sdk.credentials_provider() {
        None => Some("no credential provider is configured".to_string()),
        Some(provider) => provider
            .provide_credentials()
            .await
            .err()
            .map(|e| e.to_string()),
    };
    if let Some(why) = missing {
        log::warn!(
            "no AWS credentials for this executor ({why}): every DynamoDB read it runs will \
             fail. Give it credentials through the environment (AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY), a profile (--profile) or the machine's role"
        );
    }
}

/// Runs an executor until it fails.
pub async fn run_executor(args: ExecutorArgs) -> Result<()> {
    warn_without_credentials(&args.connection).await;
    let (logical, physical) = codecs(&args.connection).await;
    let defaults = ExecutorProcessConfig::default();
    let config = ExecutorProcessConfig {
        bind_host: args.bind.ip().to_string(),
        external_host: Some(args.bind.ip().to_string()),
        port: args.bind.port(),
        grpc_port: args.bind.port().saturating_add(1),
        scheduler_host: args.scheduler.ip().to_string(),
        scheduler_port: args.scheduler.port(),
        vcores: args.concurrent_tasks.unwrap_or(defaults.vcores),
        work_dir: args.work_dir,
        override_logical_codec: Some(logical),
        override_physical_codec: Some(physical),
        override_config_producer: Some(executor_config_producer(args.scheduler)),
        executor_heartbeat_interval_seconds: args.heartbeat_secs.max(1),
        ..defaults
    };
    start_executor_process(Arc::new(config)).await
}

/// `state` turned into a client session of the cluster at `cluster`
/// (`df://HOST:PORT`): every statement runs there, tables and scans
/// travel through this crate's codecs (`connection`: how this client would
/// read DynamoDB; the cluster's processes read with their own credentials).
pub async fn cluster_session(
    cluster: &str,
    state: datafusion::execution::SessionState,
    connection: &ConnectionOptions,
) -> datafusion::error::Result<datafusion::prelude::SessionContext> {
    use ballista_core::extension::SessionStateExt;
    use datafusion::execution::SessionStateBuilder;
    let url = scheduler_url(cluster).map_err(datafusion::error::DataFusionError::Configuration)?;
    reach_scheduler(cluster, &url).await?;
    let (logical, physical) = codecs(connection).await;
    let mut config = state
        .config()
        .clone()
        .with_ballista_logical_extension_codec(logical)
        .with_ballista_physical_extension_codec(physical);
    // The client learns its job's id as soon as the job is accepted (in
    // push mode only with the job's first status change, which may be its
    // end), so an interrupted statement can cancel it ([`cancel_jobs`]).
    config
        .options_mut()
        .set(ballista_core::config::BALLISTA_CLIENT_PULL, "true")?;
    // Rebuilding the state registers a fresh default catalog (in the same
    // catalog list): keep the caller's catalogs themselves.
    let list = state.catalog_list();
    let catalogs: Vec<_> = list
        .catalog_names()
        .into_iter()
        .filter_map(|name| list.catalog(&name).map(|c| (name, c)))
        .collect();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build()
        .upgrade_for_ballista(url)?;
    let ctx = datafusion::prelude::SessionContext::new_with_state(state);
    for (name, catalog) in catalogs {
        ctx.register_catalog(&name, catalog);
    }
    Ok(ctx)
}

/// One clear line when nothing answers at the scheduler's address, instead
/// of the gRPC client's error at the first query.
async fn reach_scheduler(cluster: &str, url: &str) -> datafusion::error::Result<()> {
    let address = url.trim_start_matches("http://");
    let connect = tokio::net::TcpStream::connect(address);
    let why = match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 5 s".to_string(),
    };
    Err(datafusion::error::DataFusionError::Configuration(format!(
        "no scheduler at {cluster} ({why}): start one with `dynamo-ballista scheduler --bind \
         {address}`, or check the address"
    )))
}
