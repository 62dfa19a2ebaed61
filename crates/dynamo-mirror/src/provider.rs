//! A DynamoDB table answered from its mirror while the mirror is fresh
//! enough.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use dynamo_datafusion::{DynamoConfig, DynamoTableProvider};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{MirrorError, Result};
use crate::mirror::{Mirror, SyncOptions, now_ms};
use crate::schema::from_delta;

/// A [`MirrorTableProvider`] as it travels to another process (its live
/// table travels on its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MirrorTableParts {
    /// The mirror's location.
    pub path: String,
    /// The table's columns.
    pub schema: Schema,
    /// The freshness bound, in ms.
    pub max_staleness_ms: u64,
    /// Past it.
    pub on_stale: OnStale,
}

/// What a query does when the mirror is older than its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum OnStale {
    /// Bring the mirror up to date from the stream first (stream reads
    /// only, no table reads), then answer from it.
    #[default]
    Sync,
    /// Answer from DynamoDB, as a table without a mirror.
    Live,
    /// Fail with [`MirrorError::Stale`].
    Error,
}

impl std::str::FromStr for OnStale {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sync" => Ok(Self::Sync),
            "live" => Ok(Self::Live),
            "error" => Ok(Self::Error),
            other => Err(format!("'{other}': expected 'sync', 'live' or 'error'")),
        }
    }
}

/// How fresh a mirror must be to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The most the mirror may be behind the table.
    pub max_staleness: Duration,
    /// What to do when it is further behind.
    pub on_stale: OnStale,
}

impl Default for Freshness {
    fn default() -> Self {
        Self {
            max_staleness: Duration::from_secs(30),
            on_stale: OnStale::Sync,
        }
    }
}

/// A DynamoDB table whose reads are answered from its mirror (Delta files,
/// through delta-rs's provider: file and statistics pruning) when the
/// mirror is at most [`Freshness::max_staleness`] behind; otherwise as
/// [`Freshness::on_stale`] says. Answers are those of the table: the same
/// columns and types, items past their time to live hidden as DynamoDB
/// reads hide them (unless `dynamodb.include_expired`).
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use datafusion::prelude::SessionContext;
/// use dynamo_mirror::{Freshness, Mirror, MirrorTableProvider, OnStale};
///
/// let mirror = Mirror::open("/data/mirrors/orders").await?;
/// let live = mirror.live_provider(client).await?;
/// let freshness = Freshness { max_staleness: Duration::from_secs(30), on_stale: OnStale::Sync };
/// let orders = MirrorTableProvider::new(live, &mirror, freshness);
/// let ctx = SessionContext::new();
/// ctx.register_table("orders", Arc::new(orders))?;
/// ctx.sql("SELECT count(*) FROM orders").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MirrorTableProvider {
    live: Arc<DynamoTableProvider>,
    path: String,
    schema: SchemaRef,
    freshness: Freshness,
    sync: SyncOptions,
    /// One catch-up at a time per table.
    catching_up: tokio::sync::Mutex<()>,
    /// Read the mirror's Parquet files with DataFusion's own scan (which
    /// plan codecs carry to other processes) instead of delta-rs's.
    portable: bool,
}

impl MirrorTableProvider {
    /// `live` (the table, with the mirror's columns: see
    /// [`Mirror::live_provider`]) answered from `mirror` within `freshness`.
    pub fn new(live: Arc<DynamoTableProvider>, mirror: &Mirror, freshness: Freshness) -> Self {
        Self {
            live,
            path: mirror.path().to_string(),
            schema: mirror.schema(),
            freshness,
            sync: SyncOptions::default(),
            catching_up: tokio::sync::Mutex::new(()),
            portable: false,
        }
    }

    /// The provider [`Self::to_parts`] described, reading with `live`: no
    /// I/O (the mirror is opened when a query plans). Its reads are
    /// portable: DataFusion's own Parquet scan of the mirror's files, which
    /// a distributed plan carries to the processes that run it (they read
    /// the files at the same location).
    pub fn from_parts(live: Arc<DynamoTableProvider>, parts: MirrorTableParts) -> Self {
        Self {
            live,
            path: parts.path,
            schema: Arc::new(parts.schema),
            freshness: Freshness {
                max_staleness: Duration::from_millis(parts.max_staleness_ms),
                on_stale: parts.on_stale,
            },
            sync: SyncOptions::default(),
            catching_up: tokio::sync::Mutex::new(()),
            portable: true,
        }
    }

    /// What another process needs to make the same table (with the live
    /// table's own parts).
    pub fn to_parts(&self) -> MirrorTableParts {
        MirrorTableParts {
            path: self.path.clone(),
            schema: self.schema.as_ref().clone(),
            max_staleness_ms: self.freshness.max_staleness.as_millis() as u64,
            on_stale: self.freshness.on_stale,
        }
    }

    /// The live table.
    pub fn live(&self) -> &Arc<DynamoTableProvider> {
        &self.live
    }

    /// The freshness bound.
    pub fn freshness(&self) -> Freshness {
        self.freshness
    }

    /// The mirror, at its newest version, brought up to date when it is
    /// too old and the policy says so; `None` when the table answers live.
    async fn fresh_mirror(&self) -> Result<Option<(Mirror, Answer)>> {
        let mut mirror = Mirror::open(&self.path).await?;
        let lag = mirror.position().await?.lag_now_ms();
        let max = self.freshness.max_staleness.as_millis() as i64;
        if lag <= max {
            return Ok(Some(answered(mirror, lag, false)));
        }
        match self.freshness.on_stale {
            OnStale::Live => Ok(None),
            OnStale::Error => Err(MirrorError::Stale {
                path: self.path.clone(),
                table: mirror.table_name().to_string(),
                lag_ms: lag,
                max_ms: max,
            }),
            OnStale::Sync => {
                let _one = self.catching_up.lock().await;
                // Another query (or a follower) may have caught up meanwhile.
                mirror.refresh().await?;
                let lag = mirror.position().await?.lag_now_ms();
                if lag <= max {
                    return Ok(Some(answered(mirror, lag, false)));
                }
                match mirror.sync(&self.live, &self.sync).await {
                    Ok(_) => {}
                    // A follower committed first: what it committed is as fresh.
                    Err(MirrorError::Concurrent { .. }) => mirror.refresh().await?,
                    Err(e) => return Err(e),
                }
                let lag = mirror.position().await?.lag_now_ms();
                Ok(Some(answered(mirror, lag, true)))
            }
        }
    }
}

/// The mirror, and how it answers.
fn answered(mirror: Mirror, lag_ms: i64, synced: bool) -> (Mirror, Answer) {
    let version = mirror.version();
    (
        mirror,
        Answer {
            lag_ms,
            synced,
            version,
        },
    )
}

/// How a scan was answered from the mirror.
#[derive(Debug, Clone, Copy)]
struct Answer {
    lag_ms: i64,
    synced: bool,
    version: i64,
}

#[async_trait]
impl TableProvider for MirrorTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter is re-checked above: the mirror's pruning and the live
    /// read both return a superset.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some((mirror, answer)) = self.fresh_mirror().await? else {
            return self.live.scan(state, projection, filters, limit).await;
        };
        let columns: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let include_expired = state
            .config_options()
            .extensions
            .get::<DynamoConfig>()
            .and_then(|c| c.include_expired)
            .unwrap_or(self.live.options().include_expired);
        let expiry = match (&self.live.meta().ttl_attribute, include_expired) {
            (Some(ttl), false) => self.schema.index_of(ttl).ok(),
            _ => None,
        };
        let mut read = columns.clone();
        if let Some(ttl) = expiry.filter(|ttl| !read.contains(ttl)) {
            read.push(ttl);
        }
        if self.portable {
            let input = portable_scan(&mirror, &read, state.config().target_partitions())?;
            return self.mirror_exec(&mirror, answer, input, read, columns, expiry);
        }
        let delta = mirror.delta_provider().await?;
        let delta_schema = delta.schema();
        // Filters on columns kept in their own type prune files; the rest
        // are only checked above.
        let prunable: Vec<Expr> = filters
            .iter()
            .filter(|f| {
                f.column_refs().iter().all(|c| {
                    match (
                        self.schema.field_with_name(&c.name),
                        delta_schema.field_with_name(&c.name),
                    ) {
                        (Ok(a), Ok(b)) => a.data_type() == b.data_type(),
                        _ => false,
                    }
                })
            })
            .cloned()
            .collect();
        let limit = (filters.is_empty() && expiry.is_none())
            .then_some(limit)
            .flatten();
        let input = delta.scan(state, Some(&read), &prunable, limit).await?;
        self.mirror_exec(&mirror, answer, input, read, columns, expiry)
    }
}

impl MirrorTableProvider {
    /// The read of `input` (the mirror's `read` columns, in Delta types)
    /// handing on the table's `columns`, expired items hidden when the
    /// table's TTL column is `expiry`.
    fn mirror_exec(
        &self,
        mirror: &Mirror,
        answer: Answer,
        input: Arc<dyn ExecutionPlan>,
        read: Vec<usize>,
        columns: Vec<usize>,
        expiry: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let read_schema = Arc::new(self.schema.project(&read)?);
        let out_schema = Arc::new(self.schema.project(&columns)?);
        let expiry = expiry
            .and_then(|ttl| read.iter().position(|&c| c == ttl))
            .map(|column| Expiry {
                column,
                now_secs: now_ms() / 1000,
            });
        Ok(Arc::new(MirrorScanExec::new(
            input,
            read_schema,
            out_schema,
            expiry,
            MirrorInfo {
                table: mirror.table_name().to_string(),
                path: self.path.clone(),
                version: answer.version,
                lag_ms: answer.lag_ms,
                max_staleness_ms: self.freshness.max_staleness.as_millis() as u64,
                synced: answer.synced,
            },
        )))
    }
}

/// DataFusion's Parquet scan of the mirror's files at its loaded version
/// (`read`: the columns, in the mirror's Delta types), over at most
/// `partitions` partitions. Refused for a Delta table with reader features
/// (deletion vectors, column mapping): only delta-rs reads those.
fn portable_scan(
    mirror: &Mirror,
    read: &[usize],
    partitions: usize,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let path = mirror.path().to_string();
    let failed = |e: &dyn std::fmt::Display| DataFusionError::from(crate::error::delta(&path, e));
    let snapshot = mirror.delta_table().snapshot().map_err(|e| failed(&e))?;
    let reader_version = snapshot.protocol().min_reader_version();
    if reader_version > 1 {
        return Err(failed(&format!(
            "its Delta protocol needs reader version {reader_version}: a distributed read \
             takes a table without reader features"
        )));
    }
    let root = crate::location::table_url(&path)
        .ok()
        .and_then(|url| crate::location::directory(&url))
        .ok_or_else(|| failed(&"not a local directory"))?;
    let root = root
        .to_string_lossy()
        .trim_end_matches('/')
        .trim_start_matches('/')
        .to_string();
    let file_schema = snapshot.snapshot().arrow_schema();
    let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions.max(1)];
    let n = groups.len();
    for (i, file) in snapshot.log_data().iter().enumerate() {
        groups[i % n].push(PartitionedFile::new(
            format!("{root}/{}", file.path()),
            file.size().max(0) as u64,
        ));
    }
    groups.retain(|g| !g.is_empty());
    let source = Arc::new(ParquetSource::new(file_schema));
    let config = FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), source)
        .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
        .with_projection_indices(Some(read.to_vec()))?
        .build();
    Ok(DataSourceExec::from_data_source(config))
}

/// What EXPLAIN says of a read from a mirror.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MirrorInfo {
    table: String,
    path: String,
    version: i64,
    lag_ms: i64,
    max_staleness_ms: u64,
    synced: bool,
}

/// Hides items past their time to live: the TTL column's index and the
/// query's time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Expiry {
    column: usize,
    now_secs: i64,
}

impl Expiry {
    /// Rows to keep: no TTL, a TTL after now, or a TTL that is not a
    /// number (DynamoDB's time to live ignores those).
    fn keep(&self, batch: &RecordBatch) -> DfResult<BooleanArray> {
        let ttl: &ArrayRef = batch.column(self.column);
        let now = self.now_secs;
        let keep = match ttl.data_type() {
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
                let secs = cast(ttl, &DataType::Timestamp(TimeUnit::Second, None))?;
                let secs = cast(&secs, &DataType::Int64)?;
                let secs = secs
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::PrimitiveArray<Int64Type>>();
                secs.map(|s| s.iter().map(|v| Some(v.is_none_or(|v| v > now))).collect())
            }
            t if t.is_numeric() => {
                let n = cast(ttl, &DataType::Float64)?;
                let n = n
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::PrimitiveArray<Float64Type>>();
                n.map(|n| {
                    n.iter()
                        .map(|v| Some(v.is_none_or(|v| v > now as f64)))
                        .collect()
                })
            }
            _ => Some(BooleanArray::from(vec![true; ttl.len()])),
        };
        keep.ok_or_else(|| DataFusionError::Internal("TTL column did not cast".to_string()))
    }
}

/// A [`MirrorScanExec`] as it travels to another process (its input
/// travels on its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MirrorScanParts {
    read_schema: Schema,
    schema: Schema,
    expiry: Option<Expiry>,
    info: MirrorInfo,
}

/// Reads a mirror's Delta files and hands on the table's rows: Delta
/// types cast back, expired items hidden.
#[derive(Debug)]
pub struct MirrorScanExec {
    input: Arc<dyn ExecutionPlan>,
    read_schema: SchemaRef,
    schema: SchemaRef,
    expiry: Option<Expiry>,
    info: MirrorInfo,
    properties: Arc<PlanProperties>,
}

impl MirrorScanExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        read_schema: SchemaRef,
        schema: SchemaRef,
        expiry: Option<Expiry>,
        info: MirrorInfo,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        ));
        Self {
            input,
            read_schema,
            schema,
            expiry,
            info,
            properties,
        }
    }

    /// What another process needs to run the same read over its input.
    pub fn to_parts(&self) -> MirrorScanParts {
        MirrorScanParts {
            read_schema: self.read_schema.as_ref().clone(),
            schema: self.schema.as_ref().clone(),
            expiry: self.expiry,
            info: self.info.clone(),
        }
    }

    /// The read [`Self::to_parts`] described, over `input` (the mirror's
    /// files, as another process decoded them).
    pub fn from_parts(input: Arc<dyn ExecutionPlan>, parts: MirrorScanParts) -> Self {
        Self::new(
            input,
            Arc::new(parts.read_schema),
            Arc::new(parts.schema),
            parts.expiry,
            parts.info,
        )
    }

    /// The Delta version read.
    pub fn version(&self) -> i64 {
        self.info.version
    }

    /// How far the mirror was behind its table when the query planned.
    pub fn lag(&self) -> Duration {
        Duration::from_millis(self.info.lag_ms.max(0) as u64)
    }
}

impl DisplayAs for MirrorScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let i = &self.info;
        write!(
            f,
            "MirrorScanExec: table={}, mirror={}, version={}, lag={:.1}s, max_staleness={}s",
            i.table,
            i.path,
            i.version,
            i.lag_ms as f64 / 1000.0,
            i.max_staleness_ms as f64 / 1000.0
        )?;
        if i.synced {
            write!(f, ", caught up from the stream")?;
        }
        if self.expiry.is_some() {
            write!(f, ", expired items hidden")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for MirrorScanExec {
    fn name(&self) -> &str {
        "MirrorScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    /// It holds no expressions (the casts and the TTL check are fixed).
    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[Arc<dyn ExecutionPlan>; 1]>::try_from(children).map_err(|c| {
            DataFusionError::Internal(format!("MirrorScanExec takes one child, not {}", c.len()))
        })?;
        Ok(Arc::new(Self::new(
            input,
            Arc::clone(&self.read_schema),
            Arc::clone(&self.schema),
            self.expiry,
            self.info.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let read_schema = Arc::clone(&self.read_schema);
        let schema = Arc::clone(&self.schema);
        let expiry = self.expiry;
        let width = schema.fields().len();
        let rows = input.map(move |batch| {
            let batch = from_delta(&batch?, &read_schema)?;
            let batch = match expiry {
                Some(e) => filter_record_batch(&batch, &e.keep(&batch)?)?,
                None => batch,
            };
            Ok(batch.project(&(0..width).collect::<Vec<_>>())?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            rows,
        )))
    }
}
