//! Creating a mirror (a Scan into a new Delta table), and keeping it up to
//! date from the table's stream.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{Column, ScalarValue};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{Expr, cast, lit, not};
use datafusion::prelude::{SessionConfig, SessionContext};
use deltalake::DeltaTable;
use deltalake::delta_datafusion::planner::DeltaPlanner;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{StructType, Transaction};
use deltalake::operations::merge::{DeleteBuilder, InsertBuilder, UpdateBuilder};
use deltalake::protocol::{DeltaOperation, OutputMode, SaveMode};
use dynamo_datafusion::{DynamoConfig, DynamoTableProvider};
use url::Url;

use crate::apply::{DELETE_COLUMN, change_schema, last_changes};
use crate::error::{MirrorError, Result, delta};
use crate::location::{directory, table_url};
use crate::schema::{delta_schema, to_delta};
use crate::state::{APP_ID, MirrorPosition, Source, position};

/// What a follower does when the mirror's checkpoint is no longer in the
/// table's stream (older than its 24-hour retention, or the stream was
/// replaced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnExpired {
    /// Stop with an error that says so ([`MirrorError::Expired`]).
    #[default]
    Error,
    /// Rebuild the mirror from a new Scan, in one commit that replaces
    /// its data (readers see the old data or the new, never a part).
    Rebootstrap,
}

impl std::str::FromStr for OnExpired {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(Self::Error),
            "rebootstrap" => Ok(Self::Rebootstrap),
            other => Err(format!("'{other}': expected 'error' or 'rebootstrap'")),
        }
    }
}

/// How changes are applied.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Change records applied per commit at most (a long backlog is
    /// applied in several commits, each with its checkpoint).
    pub batch_records: usize,
    /// A sync that finds no change still commits its position when the
    /// last one is older than this, so readers see the mirror is fresh.
    pub heartbeat: Duration,
    /// What to do when the checkpoint has left the stream.
    pub on_expired: OnExpired,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            batch_records: 10_000,
            heartbeat: Duration::from_secs(10),
            on_expired: OnExpired::Error,
        }
    }
}

impl SyncOptions {
    /// These options with `on_expired`.
    pub fn on_expired(mut self, on_expired: OnExpired) -> Self {
        self.on_expired = on_expired;
        self
    }

    /// These options with `heartbeat`.
    pub fn heartbeat(mut self, heartbeat: Duration) -> Self {
        self.heartbeat = heartbeat;
        self
    }

    /// These options with `batch_records`.
    pub fn batch_records(mut self, n: usize) -> Self {
        self.batch_records = n.max(1);
        self
    }
}

/// What a sync (or a bootstrap) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyncReport {
    /// Change records read from the stream.
    pub records: u64,
    /// Commits made.
    pub commits: u32,
    /// The mirror was rebuilt from a Scan.
    pub rebootstrapped: bool,
    /// The Delta version after it.
    pub version: i64,
}

/// A Delta Lake copy of a DynamoDB table, kept up to date from the
/// table's stream. See the crate documentation.
#[derive(Debug)]
pub struct Mirror {
    path: String,
    table: DeltaTable,
    source: Source,
}

impl Mirror {
    /// Creates a mirror of `live`'s table at `path` (a directory that holds
    /// no Delta table yet): records where the table's stream stands, Scans
    /// the table (in parallel, as `live` reads) into the first commit, then
    /// applies what changed during the Scan. The table's stream must be
    /// enabled with new images (`NEW_IMAGE` or `NEW_AND_OLD_IMAGES`).
    pub async fn create(live: &Arc<DynamoTableProvider>, path: &str) -> Result<(Self, SyncReport)> {
        let url = table_url(path)?;
        let meta = live.meta();
        let unmirrorable = |reason: String| MirrorError::Unmirrorable {
            table: meta.name.clone(),
            reason,
        };
        match meta.stream_view_type.as_deref() {
            None => {
                return Err(unmirrorable(
                    "its stream is not enabled: enable a stream with view type \
                     NEW_AND_OLD_IMAGES (or NEW_IMAGE)"
                        .to_string(),
                ));
            }
            Some("NEW_IMAGE" | "NEW_AND_OLD_IMAGES") => {}
            Some(other) => {
                return Err(unmirrorable(format!(
                    "its stream records {other}: a mirror needs each change's new image \
                     (view type NEW_AND_OLD_IMAGES or NEW_IMAGE)"
                )));
            }
        }
        let source = Source {
            table: meta.name.clone(),
            schema: live.schema(),
        };
        delta_schema(&source.schema).map_err(unmirrorable)?;
        let table = match directory(&url) {
            Some(dir) if dir.join("_delta_log").exists() => {
                resume_creation(path, url, &source).await?
            }
            _ => {
                if let Some(dir) = directory(&url) {
                    std::fs::create_dir_all(&dir).map_err(|e| MirrorError::Location {
                        path: path.to_string(),
                        reason: e.to_string(),
                    })?;
                }
                create_table(path, url, &source).await?
            }
        };
        let (table, items) = bootstrap(live, path, table, &source, 0).await?;
        let mut mirror = Self {
            path: path.to_string(),
            table,
            source,
        };
        let mut report = mirror.sync(live, &SyncOptions::default()).await?;
        report.records += items;
        report.commits += 1;
        Ok((mirror, report))
    }

    /// The mirror at `path`, at its newest version.
    pub async fn open(path: &str) -> Result<Self> {
        let url = table_url(path)?;
        Self::open_url(path, url).await
    }

    /// The mirror at `path`, which must be a mirror of DynamoDB table
    /// `table` (a mirror of another table is [`MirrorError::NotAMirror`]).
    pub async fn open_for(path: &str, table: &str) -> Result<Self> {
        let mirror = Self::open(path).await?;
        mirror.check_table(table)?;
        Ok(mirror)
    }

    /// An error unless this mirrors DynamoDB table `table`.
    fn check_table(&self, table: &str) -> Result<()> {
        if self.source.table == table {
            return Ok(());
        }
        Err(MirrorError::NotAMirror {
            path: self.path.clone(),
            reason: format!("it mirrors table '{}', not '{table}'", self.source.table),
        })
    }

    async fn open_url(path: &str, url: Url) -> Result<Self> {
        let table = deltalake::open_table(url)
            .await
            .map_err(|e| MirrorError::NotAMirror {
                path: path.to_string(),
                reason: e.to_string(),
            })?;
        let source = Source::of(path, &table)?;
        Ok(Self {
            path: path.to_string(),
            table,
            source,
        })
    }

    /// The mirror's location, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The DynamoDB table it mirrors.
    pub fn table_name(&self) -> &str {
        &self.source.table
    }

    /// The table's columns as queries see them (the mirror's Delta
    /// columns cast back).
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.source.schema)
    }

    /// The Delta version loaded.
    pub fn version(&self) -> i64 {
        self.table
            .version()
            .and_then(|v| i64::try_from(v).ok())
            .unwrap_or(-1)
    }

    /// The Delta table.
    pub fn delta_table(&self) -> &DeltaTable {
        &self.table
    }

    /// Loads the newest version.
    pub async fn refresh(&mut self) -> Result<()> {
        self.table
            .update_state()
            .await
            .map_err(|e| delta(&self.path, e))
    }

    /// Where the loaded version stands.
    pub async fn position(&self) -> Result<MirrorPosition> {
        position(&self.path, &self.table).await
    }

    /// A provider of the mirror's Delta files, in Delta types, for the
    /// loaded version (delta-rs's, with file and statistics pruning).
    pub async fn delta_provider(&self) -> Result<Arc<dyn TableProvider>> {
        let scan = self
            .table
            .table_provider()
            .build()
            .await
            .map_err(|e| delta(&self.path, e))?;
        Ok(Arc::new(scan))
    }

    /// Applies what the table's stream holds after the mirror's checkpoint,
    /// in commits of at most `options.batch_records` records, each with the
    /// checkpoint it reaches: killed at any point, the next sync goes on
    /// from the last commit, nothing lost and nothing applied twice. `live`
    /// reads the table (its stream, with its credentials), with the mirror's
    /// columns ([`Self::live_provider`]).
    pub async fn sync(
        &mut self,
        live: &Arc<DynamoTableProvider>,
        options: &SyncOptions,
    ) -> Result<SyncReport> {
        self.refresh().await?;
        self.check_table(&live.meta().name)?;
        let mut at = self.position().await?;
        let started = now_ms();
        let keys: Vec<String> = live
            .meta()
            .keys
            .attribute_names()
            .map(str::to_string)
            .collect();
        let mut report = SyncReport::default();
        let mut reader = match live.change_reader(Some(at.checkpoint.clone())) {
            Ok(reader) => reader,
            Err(e) => return self.expired(live, e, options, at.batch).await,
        };
        let mut pending: Vec<RecordBatch> = Vec::new();
        let mut pending_records = 0usize;
        loop {
            let next = match reader.next_batch().await {
                Ok(next) => next,
                Err(e) => return self.expired(live, e, options, at.batch).await,
            };
            let Some(batch) = next else { break };
            pending_records += batch.num_rows();
            report.records += batch.num_rows() as u64;
            pending.push(batch);
            if pending_records >= options.batch_records {
                // Not yet at the stream's end: the mirror is no fresher.
                let next = MirrorPosition {
                    batch: at.batch + 1,
                    checkpoint: reader.checkpoint().clone(),
                    caught_up_at_ms: at.caught_up_at_ms,
                    records: pending_records as u64,
                };
                self.commit(std::mem::take(&mut pending), &keys, &next)
                    .await?;
                report.commits += 1;
                pending_records = 0;
                at = next;
            }
        }
        let end = MirrorPosition {
            batch: at.batch + 1,
            checkpoint: reader.checkpoint().clone(),
            caught_up_at_ms: started,
            records: pending_records as u64,
        };
        let heartbeat_due = started - at.caught_up_at_ms >= options.heartbeat.as_millis() as i64;
        if pending_records > 0 || end.checkpoint != at.checkpoint || heartbeat_due {
            self.commit(pending, &keys, &end).await?;
            report.commits += 1;
        }
        report.version = self.version();
        Ok(report)
    }

    /// Syncs every `interval` until `stop` completes, calling `progress`
    /// after each sync.
    pub async fn follow(
        &mut self,
        live: &Arc<DynamoTableProvider>,
        options: &SyncOptions,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
        mut progress: impl FnMut(&SyncReport),
    ) -> Result<()> {
        tokio::pin!(stop);
        loop {
            let report = self.sync(live, options).await?;
            progress(&report);
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// A provider of the mirrored table with the mirror's columns, reading
    /// with `client`: what [`Self::sync`] takes.
    pub async fn live_provider(
        &self,
        client: aws_sdk_dynamodb::Client,
    ) -> Result<Arc<DynamoTableProvider>> {
        let provider = DynamoTableProvider::builder(client, self.source.table.clone())
            .schema(Arc::clone(&self.source.schema))
            .build()
            .await?;
        Ok(Arc::new(provider))
    }

    /// The stream no longer holds what follows the checkpoint: rebuild or
    /// say so, as `options` choose. Other errors pass.
    async fn expired(
        &mut self,
        live: &Arc<DynamoTableProvider>,
        e: dynamo_datafusion::Error,
        options: &SyncOptions,
        batch: i64,
    ) -> Result<SyncReport> {
        let expiry = matches!(
            e,
            dynamo_datafusion::Error::ChangesTrimmed { .. }
                | dynamo_datafusion::Error::ChangesCheckpoint { .. }
                | dynamo_datafusion::Error::NoStream { .. }
        );
        if !expiry {
            return Err(e.into());
        }
        if options.on_expired == OnExpired::Error {
            return Err(MirrorError::Expired {
                path: self.path.clone(),
                table: self.source.table.clone(),
                reason: e.to_string(),
            });
        }
        log::warn!("mirror at '{}': {e}; rebuilding it from a Scan", self.path);
        let table = self.table.clone();
        let (table, items) = bootstrap(live, &self.path, table, &self.source, batch + 1).await?;
        self.table = table;
        let mut report = Box::pin(self.sync(live, options)).await?;
        report.records += items;
        report.commits += 1;
        report.rebootstrapped = true;
        Ok(report)
    }

    /// Commits the last change of each item in `batches` with `position`,
    /// in one Delta commit (a MERGE by key; only the position when nothing
    /// changed).
    async fn commit(
        &mut self,
        batches: Vec<RecordBatch>,
        keys: &[String],
        position: &MirrorPosition,
    ) -> Result<()> {
        let path = self.path.clone();
        let properties = CommitProperties::default()
            .with_metadata(position.commit_metadata()?)
            .with_application_transaction(Transaction::new(APP_ID, position.batch));
        let changes =
            last_changes(&batches, &self.source.schema, keys).map_err(|e| delta(&path, e))?;
        if changes.num_rows() == 0 {
            let snapshot = self.table.snapshot().map_err(|e| delta(&path, e))?;
            let operation = DeltaOperation::StreamingUpdate {
                output_mode: OutputMode::Append,
                query_id: APP_ID.to_string(),
                epoch_id: position.batch,
            };
            CommitBuilder::from(properties)
                .build(Some(snapshot), self.table.log_store(), operation)
                .await
                .map_err(|e| self.commit_error(e, position.batch))?;
            return self.refresh().await;
        }
        // The change rows' columns in Delta types (the removal flag stays Boolean).
        let with_flag =
            delta_schema(&change_schema(&self.source.schema)).map_err(|e| delta(&path, e))?;
        let changes = to_delta(&changes, &with_flag).map_err(|e| delta(&path, e))?;
        let ctx = SessionContext::new();
        let source = ctx.read_batch(changes)?;
        let on = keys
            .iter()
            .map(|k| target(k).eq(from_source(k)))
            .reduce(Expr::and)
            .ok_or_else(|| delta(&path, "the table has no key"))?;
        let names: Vec<String> = self
            .source
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let merged = self
            .table
            .clone()
            .merge(source, on)
            .with_source_alias("s")
            .with_target_alias("t")
            .with_commit_properties(properties)
            .when_matched_delete(|d: DeleteBuilder| d.predicate(from_source(DELETE_COLUMN)))
            .and_then(|m| {
                m.when_matched_update(|mut u: UpdateBuilder| {
                    u = u.predicate(not(from_source(DELETE_COLUMN)));
                    for name in &names {
                        u = u.update(Column::new_unqualified(name), from_source(name));
                    }
                    u
                })
            })
            .and_then(|m| {
                m.when_not_matched_insert(|mut i: InsertBuilder| {
                    i = i.predicate(not(from_source(DELETE_COLUMN)));
                    for name in &names {
                        i = i.set(Column::new_unqualified(name), from_source(name));
                    }
                    i
                })
            })
            .map_err(|e| delta(&path, e))?
            .await;
        match merged {
            Ok((table, _metrics)) => {
                self.table = table;
                Ok(())
            }
            Err(e) => Err(self.commit_error(e, position.batch)),
        }
    }

    fn commit_error(&self, e: deltalake::DeltaTableError, batch: i64) -> MirrorError {
        let text = e.to_string();
        if text.contains("oncurrent") || text.contains("already exists") {
            MirrorError::Concurrent {
                path: self.path.clone(),
                batch,
            }
        } else {
            delta(&self.path, text)
        }
    }
}

/// A new, empty Delta table at `url` with the mirror's columns and the
/// table properties that name its source (version 0, no position yet).
async fn create_table(path: &str, url: Url, source: &Source) -> Result<DeltaTable> {
    let delta_columns =
        delta_schema(&source.schema).map_err(|reason| MirrorError::Unmirrorable {
            table: source.table.clone(),
            reason,
        })?;
    let columns: StructType = delta_columns
        .as_ref()
        .try_into_kernel()
        .map_err(|e| delta(path, e))?;
    let table = DeltaTable::try_from_url(url)
        .await
        .map_err(|e| delta(path, e))?;
    table
        .create()
        .with_columns(columns.fields().cloned())
        .with_configuration(source.properties()?)
        .with_raise_if_key_not_exists(false)
        .with_table_name(source.table.clone())
        .await
        .map_err(|e| delta(path, e))
}

/// The Delta table at `url`, when it is a mirror of the same table whose
/// creation stopped before its first Scan was committed: the creation goes
/// on. Any other Delta table is left alone.
async fn resume_creation(path: &str, url: Url, source: &Source) -> Result<DeltaTable> {
    let exists = || MirrorError::Exists {
        path: path.to_string(),
    };
    let table = deltalake::open_table(url).await.map_err(|_| exists())?;
    let found = Source::of(path, &table).map_err(|_| exists())?;
    let unfinished = found.table == source.table
        && found.schema == source.schema
        && matches!(
            position(path, &table).await,
            Err(MirrorError::NotAMirror { .. })
        )
        && table
            .snapshot()
            .map(|s| s.log_data().num_files() == 0)
            .unwrap_or(false);
    if unfinished { Ok(table) } else { Err(exists()) }
}

/// Records where `live`'s stream stands, then Scans the table into
/// `table` as batch `batch`, replacing its data in one commit with that
/// position. Returns the table and the items written.
async fn bootstrap(
    live: &Arc<DynamoTableProvider>,
    path: &str,
    table: DeltaTable,
    source: &Source,
    batch: i64,
) -> Result<(DeltaTable, u64)> {
    // Every change after this point is in the stream after the checkpoint.
    let mut reader = live.change_reader(None)?;
    while reader.next_batch().await?.is_some() {}
    let checkpoint = reader.checkpoint().clone();
    let started = now_ms();
    let delta_columns =
        delta_schema(&source.schema).map_err(|reason| MirrorError::Unmirrorable {
            table: source.table.clone(),
            reason,
        })?;
    // Expired items the table still holds are mirrored: DynamoDB deletes
    // them later, through the stream; reads of the mirror hide them.
    let mut settings = DynamoConfig::default();
    settings.include_expired = Some(true);
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(SessionConfig::new().with_option_extension(settings))
        .with_query_planner(DeltaPlanner::new())
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_table("source", Arc::clone(live) as Arc<dyn TableProvider>)?;
    let frame = ctx.table("source").await?;
    let columns = source
        .schema
        .fields()
        .iter()
        .zip(delta_columns.fields())
        .map(|(from, to)| {
            let column = Expr::Column(Column::new_unqualified(from.name()));
            let value = if from.data_type() == to.data_type() {
                column
            } else if from.data_type() == &DataType::Null {
                lit(ScalarValue::Utf8(None))
            } else {
                cast(column, to.data_type().clone())
            };
            value.alias(from.name())
        })
        .collect::<Vec<_>>();
    let frame = frame.select(columns)?;
    let plan = frame.logical_plan().clone();
    let position = MirrorPosition {
        batch,
        checkpoint,
        caught_up_at_ms: started,
        records: 0,
    };
    let properties = CommitProperties::default()
        .with_metadata(position.commit_metadata()?)
        .with_application_transaction(Transaction::new(APP_ID, batch));
    let table = table
        .write(Vec::new())
        .with_input_plan(plan)
        .with_session_state(Arc::new(ctx.state()))
        .with_save_mode(SaveMode::Overwrite)
        .with_commit_properties(properties)
        .await
        .map_err(|e| delta(path, e))?;
    let items = count_rows(path, &table).await?;
    Ok((table, items))
}

/// Rows in the Delta table's newest version (from its statistics).
async fn count_rows(path: &str, table: &DeltaTable) -> Result<u64> {
    let ctx = SessionContext::new();
    let provider = table
        .table_provider()
        .build()
        .await
        .map_err(|e| delta(path, e))?;
    let frame = ctx.read_table(Arc::new(provider))?;
    Ok(frame.count().await? as u64)
}

fn target(name: &str) -> Expr {
    Expr::Column(Column::new(Some("t"), name))
}

fn from_source(name: &str) -> Expr {
    Expr::Column(Column::new(Some("s"), name))
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
