//! `dynamo-sql mirror create|sync|follow|status`: Delta Lake mirrors of
//! DynamoDB tables, kept up to date from their streams.

use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;
use dynamo_datafusion::{ConnectionOptions, DynamoTableProvider};
use dynamo_mirror::{Mirror, OnExpired, SyncOptions, SyncReport, parse_duration};

use crate::error::CliError;

/// What `dynamo-sql mirror` does.
#[derive(Debug, Subcommand)]
pub enum MirrorCommand {
    /// Creates a mirror of TABLE at PATH: records the stream's position,
    /// Scans the table into a new Delta table, applies what changed during
    /// the Scan. The table's stream must show new images.
    Create {
        /// The DynamoDB table.
        table: String,
        /// Where the mirror is kept: a directory (or file:// URL) holding
        /// no Delta table yet.
        #[arg(long = "to", value_name = "PATH")]
        to: String,
        /// Go on following the stream after creating (as `mirror follow`).
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        sync: SyncArgs,
    },
    /// Applies what the table's stream holds now, then exits.
    Sync {
        /// The mirror's location.
        path: String,
        #[command(flatten)]
        sync: SyncArgs,
    },
    /// Applies the table's changes as they come, until interrupted
    /// (Ctrl-C or SIGTERM); killed at any point, it goes on from its last
    /// commit when started again.
    Follow {
        /// The mirror's location.
        path: String,
        #[command(flatten)]
        sync: SyncArgs,
    },
    /// Shows the mirror's table, Delta version, stream checkpoint and lag.
    Status {
        /// The mirror's location.
        path: String,
    },
}

/// How changes are applied.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// When the mirror's checkpoint has left the stream (24-hour
    /// retention): `error`, or `rebootstrap` (a new Scan).
    #[arg(long, value_name = "POLICY", default_value = "error")]
    on_expired: String,
    /// Time between reads of the stream when following.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    interval: String,
    /// An idle follower commits its position this often, so readers see
    /// the mirror is fresh.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    heartbeat: String,
    /// Change records applied per commit at most.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    batch_records: usize,
}

impl SyncArgs {
    fn options(&self) -> Result<(SyncOptions, Duration), CliError> {
        let bad = |flag: &str, e: String| CliError::Command(format!("--{flag} {e}"));
        let on_expired: OnExpired = self.on_expired.parse().map_err(|e| bad("on-expired", e))?;
        let heartbeat = parse_duration(&self.heartbeat).map_err(|e| bad("heartbeat", e))?;
        let interval = parse_duration(&self.interval).map_err(|e| bad("interval", e))?;
        let options = SyncOptions::default()
            .on_expired(on_expired)
            .heartbeat(heartbeat)
            .batch_records(self.batch_records);
        Ok((options, interval))
    }
}

/// Runs `command` against the DynamoDB `connection` names.
pub async fn run(command: MirrorCommand, connection: &ConnectionOptions) -> Result<(), CliError> {
    let client = connection.client().await;
    match command {
        MirrorCommand::Create {
            table,
            to,
            follow,
            sync,
        } => {
            let (options, interval) = sync.options()?;
            let live = Arc::new(DynamoTableProvider::try_new(client, table).await?);
            let started = std::time::Instant::now();
            let (mut mirror, report) = Mirror::create(&live, &to).await.map_err(mirror_error)?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "mirror of {} created at {}: {} items and changes in {:.1} s ({:.0} items/s), version {}",
                mirror.table_name(),
                mirror.path(),
                report.records,
                secs,
                report.records as f64 / secs.max(1e-9),
                report.version
            );
            if follow {
                follow_until_stopped(&mut mirror, &live, &options, interval).await?;
            }
            Ok(())
        }
        MirrorCommand::Sync { path, sync } => {
            let (options, _) = sync.options()?;
            let mut mirror = Mirror::open(&path).await.map_err(mirror_error)?;
            let live = mirror.live_provider(client).await.map_err(mirror_error)?;
            let report = mirror.sync(&live, &options).await.map_err(mirror_error)?;
            report_sync(mirror.path(), &report);
            Ok(())
        }
        MirrorCommand::Follow { path, sync } => {
            let (options, interval) = sync.options()?;
            let mut mirror = Mirror::open(&path).await.map_err(mirror_error)?;
            let live = mirror.live_provider(client).await.map_err(mirror_error)?;
            follow_until_stopped(&mut mirror, &live, &options, interval).await
        }
        MirrorCommand::Status { path } => {
            let mirror = Mirror::open(&path).await.map_err(mirror_error)?;
            let position = mirror.position().await.map_err(mirror_error)?;
            let lag = position.lag_now_ms();
            println!("table:      {}", mirror.table_name());
            println!("mirror:     {}", mirror.path());
            println!(
                "version:    {} (batch {})",
                mirror.version(),
                position.batch
            );
            println!("lag:        {:.1} s", lag as f64 / 1000.0);
            println!("stream:     {}", position.checkpoint.stream_arn);
            println!(
                "checkpoint: {} shard(s) read into, {} finished",
                position.checkpoint.positions.len(),
                position.checkpoint.finished.len()
            );
            Ok(())
        }
    }
}

async fn follow_until_stopped(
    mirror: &mut Mirror,
    live: &Arc<DynamoTableProvider>,
    options: &SyncOptions,
    interval: Duration,
) -> Result<(), CliError> {
    let stop = async {
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    eprintln!(
        "following {} into {} (Ctrl-C stops)",
        mirror.table_name(),
        mirror.path()
    );
    let path = mirror.path().to_string();
    mirror
        .follow(live, options, interval, stop, |report| {
            if report.records > 0 || report.rebootstrapped {
                report_sync(&path, report);
            }
        })
        .await
        .map_err(mirror_error)
}

/// One line on stderr: what a sync of the mirror at `path` applied.
fn report_sync(path: &str, report: &SyncReport) {
    eprintln!(
        "{path}: {} change(s) applied in {} commit(s), version {}{}",
        report.records,
        report.commits,
        report.version,
        if report.rebootstrapped {
            " (rebuilt from a Scan)"
        } else {
            ""
        }
    );
}

fn mirror_error(e: dynamo_mirror::MirrorError) -> CliError {
    match e {
        dynamo_mirror::MirrorError::Dynamo(e) => CliError::Dynamo(e),
        other => CliError::Command(other.to_string()),
    }
}
