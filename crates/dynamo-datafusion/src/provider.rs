//! `DynamoTableProvider`: a DynamoDB table as a DataFusion table.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_expr::create_physical_expr;
use datafusion::physical_plan::ExecutionPlan;

use aws_credential_types::provider::SharedCredentialsProvider;

use crate::changes::identity::CallerIdentity;
use crate::client::ConnectionOptions;
use crate::config::{DynamoConfig, ScanGuard};
use crate::decode::ItemDecoder;
use crate::error::{Error, Result};
use crate::exec::{DynamoExec, QueryFilters};
use crate::metadata::TableMeta;
use crate::options::TableOptions;
use crate::plan::predicate::{Cond, Translator};
use crate::plan::{
    AccessPlan, Decisions, Expiry, Operation, PlanOptions, ReadOptions, ScanRequest, expr_columns,
};
use crate::policy::RetryPolicy;
use crate::read::request_error;
use crate::read::retry::{Retrier, metadata_call, without_sdk_retries};
use crate::read::sample::sample_table;
use crate::schema::cache::{CacheSlot, SchemaCache, SchemaKey, SigningKey};
use crate::schema::infer::is_extra_field;
use crate::schema::time::with_time_formats;
use crate::schema::widen::SchemaState;
use crate::schema::{ColumnType, TimeFormat};
use crate::schema::{SchemaHistory, SchemaOrigin};
use crate::write::encode::ItemEncoder;
use crate::write::{Assignment, DynamoWriteExec, Statement, WriteJob, WriteSettings};

/// Bytes of table per parallel-scan segment when the count is chosen
/// automatically: DynamoDB's page size, so a segment is about one request.
const BYTES_PER_SEGMENT: u64 = 1024 * 1024;
/// Most segments chosen automatically.
const MAX_AUTO_SEGMENTS: u64 = 1_000;
/// Segments when DynamoDB reports neither size nor item count (its
/// statistics are refreshed about every six hours; a new table reports 0).
const UNKNOWN_SIZE_SEGMENTS: u32 = 16;

/// A DynamoDB table that DataFusion can query.
///
/// Built from an SDK client and a table name: DescribeTable gives the keys and
/// indexes, and the schema is either given or inferred by sampling.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use datafusion::prelude::SessionContext;
/// use dynamo_datafusion::DynamoTableProvider;
///
/// let provider = DynamoTableProvider::try_new(client, "UserEngagement").await?;
/// let ctx = SessionContext::new();
/// ctx.register_table("engagement", Arc::new(provider))?;
/// ctx.sql("SELECT count(*) FROM engagement").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoTableProvider {
    /// The caller's client, as given (for describing and sampling again).
    client: Client,
    /// The caller's client with the SDK's retries off: reads retry by `options.retry`.
    read_client: Client,
    meta: Arc<TableMeta>,
    /// The live schema: widens when a read meets a value it cannot hold.
    state: Arc<SchemaState>,
    options: Arc<TableOptions>,
    /// Where the client connects (region and endpoint, as observed): what
    /// another process needs to read the same table with its own credentials.
    connection: Arc<ConnectionOptions>,
    /// Which filters a read enforces, decided once per filter set: the
    /// early answer to DataFusion and the scan share it.
    decisions: Arc<Decisions>,
    /// The identity the client signed the table's description with, for
    /// the DynamoDB Streams client of its change records.
    streams_credentials: Option<SharedCredentialsProvider>,
}

/// Builds a [`DynamoTableProvider`] with non-default options.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> dynamo_datafusion::Result<()> {
/// use datafusion::arrow::datatypes::DataType;
/// use dynamo_datafusion::DynamoTableProvider;
///
/// let provider = DynamoTableProvider::builder(client, "Inventory")
///     .sample_size(10_000)
///     .column_type("price", DataType::Decimal128(38, 4))
///     .consistent_read(true)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DynamoTableProviderBuilder {
    client: Client,
    table: String,
    schema: Option<SchemaRef>,
    options: TableOptions,
    cache: Option<Arc<dyn SchemaCache>>,
    resample: bool,
}

impl DynamoTableProviderBuilder {
    /// Uses this schema instead of sampling. Columns are attribute names.
    pub fn schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Number of items sampled to infer the schema.
    pub fn sample_size(mut self, n: usize) -> Self {
        self.options.sample_size = n.max(1);
        self
    }

    /// Forces the Arrow type of one attribute (adds it if sampling missed it).
    pub fn column_type(mut self, attribute: impl Into<String>, data_type: DataType) -> Self {
        self.options
            .column_types
            .push((attribute.into(), ColumnType::Arrow(data_type)));
        self
    }

    /// Reads one attribute as a timestamp or date kept in `format` (a
    /// string or number attribute; see [`TimeFormat`] for the formats).
    ///
    /// ```no_run
    /// # async fn demo(client: aws_sdk_dynamodb::Client) -> dynamo_datafusion::Result<()> {
    /// use dynamo_datafusion::DynamoTableProvider;
    ///
    /// let provider = DynamoTableProvider::builder(client, "UserEngagement")
    ///     .time_format("eventTime", "epoch_seconds".parse().expect("a format"))
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn time_format(mut self, attribute: impl Into<String>, format: TimeFormat) -> Self {
        self.options
            .column_types
            .push((attribute.into(), ColumnType::Time(Some(format))));
        self
    }

    /// Reads one attribute as lossless JSON text.
    pub fn json_column(mut self, attribute: impl Into<String>) -> Self {
        self.options
            .column_types
            .push((attribute.into(), ColumnType::Json));
        self
    }

    /// Strongly consistent reads.
    pub fn consistent_read(mut self, yes: bool) -> Self {
        self.options.consistent_read = yes;
        self
    }

    /// Items per request (`Limit`).
    pub fn page_size(mut self, n: i32) -> Self {
        self.options.page_size = Some(n.max(1));
        self
    }

    /// Parallel-scan segments of a full scan (units of I/O, spread over
    /// DataFusion's partitions and read concurrently).
    pub fn segments(mut self, n: u32) -> Self {
        self.options.segments = Some(n.max(1));
        self
    }

    /// Most requests one scan keeps in flight (default 64).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.options.max_concurrency = n.max(1);
        self
    }

    /// Requests one scan starts with in flight, instead of the automatic
    /// start (every unit of the read for an on-demand table, what one
    /// second of a provisioned table's capacity pays for); at most
    /// `max_concurrency`.
    pub fn initial_concurrency(mut self, n: usize) -> Self {
        self.options.initial_concurrency = Some(n.max(1));
        self
    }

    /// Limits each query's reads to `rcu_per_second` read capacity units per
    /// second, shared by its segments.
    pub fn read_capacity(mut self, rcu_per_second: f64) -> Self {
        self.options.read_capacity = Some(rcu_per_second);
        self
    }

    /// How throttled and failed requests are retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = policy;
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: TableOptions) -> Self {
        self.options = options;
        self
    }

    /// Keeps the inferred schema in `cache`: a later build of the same table
    /// (same endpoint, region, account, name and creation time) within the
    /// option `schema_ttl` reads it from there and samples nothing; columns
    /// that widen are saved there too.
    ///
    /// ```no_run
    /// # async fn demo(client: aws_sdk_dynamodb::Client) -> dynamo_datafusion::Result<()> {
    /// use std::sync::Arc;
    /// use dynamo_datafusion::schema::FileSchemaCache;
    /// use dynamo_datafusion::DynamoTableProvider;
    ///
    /// let cache = Arc::new(FileSchemaCache::new("/var/cache/my-app/schemas"));
    /// let provider = DynamoTableProvider::builder(client, "Movies")
    ///     .schema_cache(cache)
    ///     .build()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn schema_cache(mut self, cache: Arc<dyn SchemaCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Samples the table even when a cached schema is fresh (and replaces it).
    pub fn resample(mut self, yes: bool) -> Self {
        self.resample = yes;
        self
    }

    /// Describes the table, infers the schema if none was given (or reads it
    /// from the schema cache), and builds the provider.
    pub async fn build(self) -> Result<DynamoTableProvider> {
        let signing = SigningKey::default();
        let identity = CallerIdentity::default();
        let read_client = without_sdk_retries(&self.client);
        let meta = describe(
            &read_client,
            &self.table,
            Some((&signing, &identity)),
            &self.options.retry,
        )
        .await?;
        if self.options.read_capacity.is_none()
            && self.options.read_capacity_percent.is_some()
            && meta.provisioned_read_capacity.is_none()
        {
            return Err(Error::InvalidOption {
                key: "read_capacity_percent".into(),
                reason: format!(
                    "table '{}' is on-demand and has no provisioned read capacity; \
                     set read_capacity (RCU per second) instead",
                    meta.name
                ),
            });
        }
        let meta = Arc::new(meta);
        let slot = self.cache.map(|cache| CacheSlot {
            key: SchemaKey::new(
                signing.endpoint().as_deref(),
                self.client.config().region().map(|r| r.as_ref()),
                signing.get().as_deref(),
                &meta,
            ),
            cache,
        });
        let state = match self.schema {
            Some(schema) => SchemaState::given(
                Arc::clone(&meta),
                with_time_formats(
                    schema,
                    &meta,
                    &self.options.column_types,
                    self.options.on_bad_time,
                )?,
            ),
            None => {
                let rules = self.options.rules();
                let cached = slot
                    .as_ref()
                    .filter(|_| !self.resample)
                    .and_then(|slot| slot.load(self.options.schema_ttl));
                let sampled = cached.is_none();
                let state = match cached {
                    Some(entry) => {
                        let history = entry.history();
                        SchemaState::with_history(Arc::clone(&meta), entry.observed, rules, history)
                            .with_key_stats(entry.keys)
                    }
                    None => {
                        let at = SystemTime::now();
                        let sample = sample_table(
                            &read_client,
                            &meta,
                            self.options.sample_size,
                            self.options.consistent_read,
                            Arc::new(Retrier::new(self.options.retry.clone())),
                        )
                        .await?;
                        let origin = SchemaOrigin::Sampled {
                            items: sample.items,
                            at,
                        };
                        SchemaState::inferred(Arc::clone(&meta), sample.observed, rules, origin)
                            .with_key_stats(Some(sample.keys))
                    }
                };
                match slot {
                    // A new sample is stored now; a cached one is already there.
                    Some(slot) => state.cached_in(slot, sampled),
                    None => state,
                }
            }
        };
        let state = state.with_extra_column(self.options.extra_attributes)?;
        // Fail now, not at the first query, if a column type cannot be decoded.
        ItemDecoder::try_new(&meta.name, state.schema())?;
        let connection = ConnectionOptions {
            endpoint_url: signing.endpoint(),
            region: self.client.config().region().map(|r| r.to_string()),
            profile: None,
        };
        Ok(DynamoTableProvider {
            client: self.client,
            read_client,
            meta,
            state: Arc::new(state),
            options: Arc::new(self.options),
            connection: Arc::new(connection),
            decisions: Arc::default(),
            streams_credentials: identity.credentials(),
        })
    }
}

/// Calls DescribeTable and turns the answer into [`TableMeta`].
pub async fn describe_table(client: &Client, table: &str) -> Result<TableMeta> {
    describe(
        &without_sdk_retries(client),
        table,
        None,
        &RetryPolicy::default(),
    )
    .await
}

/// DescribeTable (and DescribeTimeToLive), retried under `retry`, noting the
/// endpoint and signing key it used in `signing`. `client` has the SDK's own
/// retries off.
async fn describe(
    client: &Client,
    table: &str,
    observers: Option<(&SigningKey, &CallerIdentity)>,
    retry: &RetryPolicy,
) -> Result<TableMeta> {
    let out = metadata_call(retry, || {
        let request = client.describe_table().table_name(table).customize();
        let request = match observers {
            Some((signing, identity)) => request
                .interceptor(signing.clone())
                .interceptor(identity.clone()),
            None => request,
        };
        request.send()
    })
    .await
    .map_err(|(e, attempts)| request_error(table, "DescribeTable", &e, attempts))?;
    let desc = out.table().ok_or_else(|| Error::Metadata {
        table: table.to_string(),
        reason: "DescribeTable returned no table description".to_string(),
    })?;
    let mut meta = TableMeta::from_description(desc)?;
    meta.ttl_attribute = ttl_attribute(client, table, retry).await;
    Ok(meta)
}

/// The attribute the table's time to live reads, when TTL is enabled (or
/// being enabled). A caller not allowed DescribeTimeToLive reads the table
/// as if it had none: expired items are then shown, which the log says.
async fn ttl_attribute(client: &Client, table: &str, retry: &RetryPolicy) -> Option<String> {
    use aws_sdk_dynamodb::types::TimeToLiveStatus;
    match metadata_call(retry, || {
        client.describe_time_to_live().table_name(table).send()
    })
    .await
    {
        Ok(out) => out
            .time_to_live_description()
            .filter(|d| {
                matches!(
                    d.time_to_live_status(),
                    Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
                )
            })
            .and_then(|d| d.attribute_name())
            .map(str::to_string),
        Err((e, _)) => {
            log::warn!(
                "table '{table}': DescribeTimeToLive failed ({}); expired items are not hidden",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            );
            None
        }
    }
}

impl DynamoTableProvider {
    /// Describes `table` and infers its schema with default options.
    pub async fn try_new(client: Client, table: impl Into<String>) -> Result<Self> {
        Self::builder(client, table).build().await
    }

    /// Starts a builder for `table`.
    pub fn builder(client: Client, table: impl Into<String>) -> DynamoTableProviderBuilder {
        DynamoTableProviderBuilder {
            client,
            table: table.into(),
            schema: None,
            options: TableOptions::default(),
            cache: None,
            resample: false,
        }
    }

    /// A provider from the parts another process sent ([`Self::meta`],
    /// its schema, [`Self::options`], [`Self::connection`]) reading with
    /// `client`: no DescribeTable, no sampling, no I/O. The schema is taken
    /// as given (it never widens here).
    ///
    /// ```no_run
    /// # fn demo(p: &dynamo_datafusion::DynamoTableProvider, client: aws_sdk_dynamodb::Client)
    /// #     -> dynamo_datafusion::Result<()> {
    /// use datafusion::catalog::TableProvider;
    /// use dynamo_datafusion::DynamoTableProvider;
    /// let copy = DynamoTableProvider::from_parts(
    ///     client,
    ///     p.meta().clone(),
    ///     p.schema(),
    ///     p.options().clone(),
    ///     p.connection().clone(),
    /// )?;
    /// assert_eq!(copy.schema(), p.schema());
    /// # Ok(()) }
    /// ```
    pub fn from_parts(
        client: Client,
        meta: TableMeta,
        schema: SchemaRef,
        options: TableOptions,
        connection: ConnectionOptions,
    ) -> Result<Self> {
        let meta = Arc::new(meta);
        ItemDecoder::try_new(&meta.name, Arc::clone(&schema))?;
        Ok(Self {
            read_client: without_sdk_retries(&client),
            client,
            state: Arc::new(SchemaState::given(Arc::clone(&meta), schema)),
            meta,
            options: Arc::new(options),
            connection: Arc::new(connection),
            decisions: Arc::default(),
            streams_credentials: None,
        })
    }

    /// The table's change records (its DynamoDB stream) as a table: see
    /// [`crate::changes`]. An error when the table has no stream.
    pub fn changes(&self) -> Result<Arc<dyn TableProvider>> {
        let table = crate::changes::changes_table(
            &self.client,
            Some(self.streams_credentials()?),
            &self.connection,
            &self.meta,
            &self.state.schema(),
        )?;
        Ok(Arc::new(table))
    }

    /// The table's change records after `since` (all the stream holds,
    /// when `None`) and the checkpoint after them: reading again from that
    /// checkpoint returns exactly the records written since — nothing read
    /// twice, nothing skipped. A checkpoint inside a shard the stream has
    /// trimmed (older than its 24 hours) is an error, never a partial read.
    ///
    /// ```no_run
    /// # async fn demo(orders: dynamo_datafusion::DynamoTableProvider) -> dynamo_datafusion::Result<()> {
    /// let first = orders.changes_since(None).await?;
    /// // ... later: only what changed since.
    /// let next = orders.changes_since(Some(first.checkpoint)).await?;
    /// println!("{} new batches", next.batches.len());
    /// # Ok(()) }
    /// ```
    pub async fn changes_since(
        &self,
        since: Option<crate::changes::ChangeCheckpoint>,
    ) -> Result<crate::changes::ChangesRead> {
        crate::changes::read_changes(self.change_reader(since)?).await
    }

    /// A read of the table's change records after `since` (all the stream
    /// holds, when `None`), batch by batch, with the checkpoint after each:
    /// see [`crate::changes::ChangeReader`].
    pub fn change_reader(
        &self,
        since: Option<crate::changes::ChangeCheckpoint>,
    ) -> Result<crate::changes::ChangeReader> {
        crate::changes::change_reader(
            &self.client,
            Some(self.streams_credentials()?),
            &self.connection,
            &self.meta,
            &self.state.schema(),
            since,
        )
    }

    /// The identity the table was described with, for its Streams client.
    fn streams_credentials(&self) -> Result<SharedCredentialsProvider> {
        self.streams_credentials
            .clone()
            .ok_or_else(|| Error::InvalidOption {
                key: "changes".into(),
                reason: format!(
                    "table '{}' came from another process: its change records are read where \
                     the table was described",
                    self.meta.name
                ),
            })
    }

    /// Where this provider's client connects: region and endpoint (no
    /// credentials), as observed when the table was described.
    pub fn connection(&self) -> &ConnectionOptions {
        &self.connection
    }

    /// Keys, indexes and size of the table.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// The options the provider reads with.
    pub fn options(&self) -> &TableOptions {
        &self.options
    }

    /// Where the schema came from (given, or sampled: how many items, when;
    /// read from a schema cache) and every column that has widened since.
    pub fn schema_history(&self) -> SchemaHistory {
        self.state.history()
    }

    /// The same table described and sampled again (`ANALYZE TABLE`): a new
    /// schema, which replaces the cached one. A schema that was given (a
    /// column list) has nothing to sample: an error says so.
    pub async fn resampled(&self) -> Result<Self> {
        if self.state.history().origin == SchemaOrigin::Given {
            return Err(Error::InvalidOption {
                key: "schema".into(),
                reason: format!(
                    "the schema of table '{}' was given (a column list), so there is nothing to sample",
                    self.meta.name
                ),
            });
        }
        let mut builder = DynamoTableProvider::builder(self.client.clone(), self.meta.name.clone())
            .options((*self.options).clone())
            .resample(true);
        if let Some(cache) = self.state.cache() {
            builder = builder.schema_cache(Arc::clone(cache));
        }
        builder.build().await
    }

    /// The read-capacity limit of one query in RCU/s, if any.
    pub fn read_capacity_limit(&self) -> Option<f64> {
        self.options.read_capacity.or_else(|| {
            let percent = self.options.read_capacity_percent?;
            let provisioned = self.meta.provisioned_read_capacity?;
            Some(provisioned as f64 * percent / 100.0)
        })
    }

    /// Segments for a full scan: set by option, else one per 1 MB page of
    /// the table (DynamoDB's page size: never more segments than pages), at
    /// most [`MAX_AUTO_SEGMENTS`]. They are units of I/O, not partitions:
    /// a partition reads its segments concurrently.
    /// Pages one second of the table's provisioned read capacity pays for
    /// (`None` for an on-demand table), pages of the size its `segments`
    /// read.
    fn capacity_pages(&self, segments: u32) -> Option<usize> {
        let rcu = self.meta.provisioned_read_capacity?;
        let page_bytes =
            (self.meta.size_bytes / u64::from(segments).max(1)).clamp(4_096, BYTES_PER_SEGMENT);
        Some(crate::read::concurrency::capacity_pages(
            rcu,
            page_bytes,
            self.options.consistent_read,
        ))
    }

    fn scan_segments(&self) -> u32 {
        if let Some(n) = self.options.segments {
            return n;
        }
        if self.meta.size_bytes == 0 && self.meta.item_count == 0 {
            return UNKNOWN_SIZE_SEGMENTS;
        }
        let pages = self.meta.size_bytes.div_ceil(BYTES_PER_SEGMENT).max(1);
        pages.min(MAX_AUTO_SEGMENTS) as u32
    }
}

impl DynamoTableProvider {
    /// Hiding expired items, unless the session or the table shows them
    /// (or the table has no time to live): the query's start time is "now".
    fn expiry(&self, session: &DynamoConfig, state: &dyn Session) -> Option<Expiry> {
        let include = session
            .include_expired
            .unwrap_or(self.options.include_expired);
        let attribute = self.meta.ttl_attribute.clone().filter(|_| !include)?;
        Some(Expiry {
            attribute,
            now: state
                .execution_props()
                .query_execution_start_time
                .unwrap_or_else(chrono::Utc::now)
                .timestamp(),
        })
    }

    fn plan_options(&self, session_pushdown: bool) -> PlanOptions {
        PlanOptions {
            pushdown: self.options.pushdown && session_pushdown,
            index: self.options.index.clone(),
            consistent_read: self.options.consistent_read,
        }
    }
}

#[async_trait]
impl TableProvider for DynamoTableProvider {
    fn schema(&self) -> SchemaRef {
        self.state.schema()
    }

    /// `INSERT INTO` (new items only) and `REPLACE INTO` / `INSERT OR
    /// REPLACE INTO` (whole items, new or replacing): see [`crate::write`].
    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let statement = match insert_op {
            InsertOp::Append => Statement::Insert,
            InsertOp::Replace => Statement::Replace,
            InsertOp::Overwrite => {
                return Err(self
                    .refuse(
                        Statement::Insert,
                        "INSERT OVERWRITE would first delete every item of the table, which \
                         DynamoDB cannot do in one step; DELETE the items you mean (SET \
                         dynamodb.allow_full_table_writes = true to delete them all), then INSERT",
                    )
                    .into());
            }
        };
        self.check_writable(state, statement)?;
        let schema = self.state.schema();
        let job = self.write_job(state, statement, schema);
        Ok(Arc::new(DynamoWriteExec::new(input, job)))
    }

    /// `DELETE FROM t WHERE …`: the WHERE's read finds the items, each is
    /// deleted if it still matches.
    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let statement = Statement::Delete;
        self.check_writable(state, statement)?;
        self.check_where(state, statement, &filters)?;
        let schema = self.state.schema();
        let keys = self.key_columns(&schema)?;
        let read = self.read_exec(state, Some(&keys), &filters, None, true)?;
        let mut job = self.write_job(state, statement, read.schema());
        job.recheck = self.recheck_of(&schema, &filters).map(Arc::new);
        Ok(Arc::new(DynamoWriteExec::new(read, job)))
    }

    /// `UPDATE t SET … WHERE …`: the WHERE's read finds the items, each is
    /// updated if it still matches and the columns its new values come from
    /// are unchanged.
    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let statement = Statement::Update;
        self.check_writable(state, statement)?;
        self.check_where(state, statement, &filters)?;
        let schema = self.state.schema();
        let mut read_columns = self.key_columns(&schema)?;
        let mut targets = Vec::with_capacity(assignments.len());
        for (column, expr) in &assignments {
            let index = schema.index_of(column).map_err(|_| {
                self.refuse(statement, &format!("table has no column '{column}' to SET"))
            })?;
            if self.meta.keys.attribute_names().any(|k| k == column) {
                return Err(self
                    .refuse(
                        statement,
                        &format!(
                            "'{column}' is a key: an item's key cannot change (DELETE it and \
                             INSERT the item with its new key)"
                        ),
                    )
                    .into());
            }
            if is_extra_field(schema.field(index)) {
                return Err(self
                    .refuse(
                        statement,
                        &format!(
                            "'{column}' holds the attributes without a column: SET them by name"
                        ),
                    )
                    .into());
            }
            let mut used = Vec::new();
            expr_columns(expr, &mut used);
            for name in used {
                let i = schema.index_of(&name).map_err(|_| {
                    self.refuse(
                        statement,
                        &format!("SET reads '{name}', which is not a column"),
                    )
                })?;
                if !read_columns.contains(&i) {
                    read_columns.push(i);
                }
            }
            targets.push((column.clone(), index, expr.clone()));
        }
        let read = self.read_exec(state, Some(&read_columns), &filters, None, true)?;
        let read_schema = read.schema();
        let df_schema = datafusion::common::DFSchema::try_from(Arc::clone(&read_schema))?;
        let mut job = self.write_job(state, statement, Arc::clone(&read_schema));
        job.assignments = targets
            .into_iter()
            .map(|(column, table_index, expr)| {
                let expr = create_physical_expr(
                    &expr,
                    &df_schema,
                    state.execution_props(),
                    &PhysicalPlanningContext::default(),
                )?;
                Ok(Assignment {
                    column,
                    table_index,
                    expr,
                })
            })
            .collect::<DfResult<_>>()?;
        // The columns new values are computed from must not have changed
        // since the read (when their values compare exactly).
        job.guards = read_schema
            .fields()
            .iter()
            .filter(|f| self.meta.keys.attribute_names().all(|k| k != f.name()))
            .filter(|f| guardable(f))
            .map(|f| f.name().clone())
            .collect();
        job.recheck = self.recheck_of(&schema, &filters).map(Arc::new);
        Ok(Arc::new(DynamoWriteExec::new(read, job)))
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Exact for what a key enforces (GetItem, BatchGetItem keys, a Query's key
    /// condition); Inexact for everything else — the read re-checks it, and
    /// tells DataFusion's filter above so. Never Unsupported: `scan` then
    /// sees every filter and plans with all of them. The answer is the
    /// decision `scan` reads with ([`Decisions`]).
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let owned: Vec<Expr> = filters.iter().map(|f| (*f).clone()).collect();
        let exact = self.decisions.for_filters(
            &self.meta,
            &self.state.schema(),
            &owned,
            &self.plan_options(true),
        );
        Ok(exact
            .iter()
            .map(|exact| {
                if *exact {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.read_exec(state, projection, filters, limit, false)
    }
}

/// True when a column's values compare exactly in DynamoDB as read: an
/// UPDATE then requires them unchanged (scalars; not JSON or text columns,
/// floats, or time kept as text, whose text may differ from what was read).
fn guardable(field: &datafusion::arrow::datatypes::Field) -> bool {
    use crate::schema::infer::{is_json_field, is_text_field};
    if let Some(format) = crate::schema::time_format_of(field) {
        return format.is_number();
    }
    !is_json_field(field)
        && !is_text_field(field)
        && matches!(
            field.data_type(),
            DataType::Utf8
                | DataType::Int64
                | DataType::Int32
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
                | DataType::Boolean
                | DataType::Binary
        )
}

/// The lower of two optional ceilings.
fn lower(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl DynamoTableProvider {
    /// The read of `filters`' rows (`projection`'s columns, at most
    /// `limit`): a query's scan, or — `for_write` — an UPDATE's or DELETE's
    /// read of the items to change, strongly consistent (never through a
    /// GSI), so it sees every write made before it.
    fn read_exec(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
        for_write: bool,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let session = DynamoConfig::of(state);
        let target_partitions = state.config().target_partitions();
        // One snapshot for the whole plan: the schema may widen meanwhile.
        let schema = self.state.schema();
        let segments = self.scan_segments();
        let options = ReadOptions {
            plan: PlanOptions {
                // A write's read sees every write before it (no GSI).
                consistent_read: self.options.consistent_read || for_write,
                ..self.plan_options(session.pushdown)
            },
            segments,
            max_partitions: session
                .max_partitions
                .map_or(target_partitions, |m| m.clamp(1, target_partitions.max(1))),
            page_size: self.options.page_size,
            retry: self.options.retry.clone(),
            read_capacity: self.read_capacity_limit(),
            max_concurrency: session
                .max_concurrency
                .unwrap_or(self.options.max_concurrency),
            initial_concurrency: self.options.initial_concurrency,
            capacity_pages: self.capacity_pages(segments),
            max_rcu: lower(session.max_rcu, self.options.max_rcu),
            max_rcu_by_table: self
                .options
                .max_rcu
                .is_some_and(|table| session.max_rcu.is_none_or(|s| table < s)),
            price_per_million_rru: session.price_per_million_rru,
            hide_expired: self.expiry(&session, state),
        };
        let request = ScanRequest {
            meta: Arc::clone(&self.meta),
            schema: Arc::clone(&schema),
            filters: filters.to_vec(),
            projection: projection.cloned(),
            limit,
            options,
            key_stats: self.state.key_stats().cloned(),
            decisions: Arc::clone(&self.decisions),
        };
        let plan = request.plan()?;
        self.check_scan_guard(&plan.access, &session)?;
        // The filters made physical once, with this session's functions and
        // time: the read re-checks those its plan does not enforce.
        // (Built here, not by `state`: a session across an FFI boundary
        // hands back expressions whose columns cannot be renumbered.)
        let query = QueryFilters::new(&schema, filters, |f, s| {
            create_physical_expr(
                &f,
                s,
                state.execution_props(),
                &PhysicalPlanningContext::default(),
            )
        })?;
        let output_schema = plan.output_schema(&schema)?;
        let decoder = ItemDecoder::try_new(&self.meta.name, output_schema)?
            .closing_maps(|column| self.state.can_widen(column))
            .knowing_columns(&schema)
            .naming_keys(self.meta.keys.attribute_names());
        let exec = DynamoExec::new(
            self.read_client.clone(),
            plan,
            decoder,
            Some(Arc::clone(&self.state)),
        )
        .checking(Arc::new(query))?
        .connecting_to(Arc::clone(&self.connection))
        .replanning(request);
        Ok(if session.distributed && !for_write {
            Arc::new(exec.with_partitions_input()?)
        } else {
            Arc::new(exec)
        })
    }

    /// A write statement refused before it wrote anything.
    fn refuse(&self, statement: Statement, reason: &str) -> Error {
        Error::WriteRefused {
            statement: statement.name(),
            table: self.meta.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Writes run in this process, in a session that can plan them safely.
    fn check_writable(&self, state: &dyn Session, statement: Statement) -> DfResult<()> {
        if DynamoConfig::of(state).distributed {
            return Err(self
                .refuse(
                    statement,
                    "writes run in one process, not through a cluster: run the statement in a \
                     session without dynamodb.distributed",
                )
                .into());
        }
        let guarded = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
            .is_some_and(crate::write::uses_dml_guard);
        if matches!(statement, Statement::Update | Statement::Delete) && !guarded {
            return Err(self
                .refuse(
                    statement,
                    "this session does not run dynamo_datafusion::write::DmlGuard, which \
                     refuses a WHERE DataFusion cannot hand the table whole; add it to the \
                     session (SessionStateBuilder::with_analyzer_rule), or use \
                     dynamo_datafusion::dynamo_session",
                )
                .into());
        }
        Ok(())
    }

    /// An UPDATE or DELETE without a condition changes every item: only
    /// when the session allows it.
    fn check_where(
        &self,
        state: &dyn Session,
        statement: Statement,
        filters: &[Expr],
    ) -> DfResult<()> {
        if filters.is_empty() && !DynamoConfig::of(state).allow_full_table_writes {
            return Err(self
                .refuse(
                    statement,
                    &format!(
                        "it has no WHERE the table is handed, so it would change every item \
                         (~{} items); add a WHERE, or SET dynamodb.allow_full_table_writes = true",
                        self.meta.item_count
                    ),
                )
                .into());
        }
        Ok(())
    }

    /// The schema positions of the table's key columns.
    fn key_columns(&self, schema: &SchemaRef) -> DfResult<Vec<usize>> {
        self.meta
            .keys
            .attribute_names()
            .map(|k| {
                schema.index_of(k).map_err(|_| {
                    Error::Metadata {
                        table: self.meta.name.clone(),
                        reason: format!("the schema has no column for key '{k}'"),
                    }
                    .into()
                })
            })
            .collect()
    }

    /// What DynamoDB re-checks when an UPDATE or DELETE writes an item: the
    /// part of the WHERE it can evaluate.
    fn recheck_of(&self, schema: &SchemaRef, filters: &[Expr]) -> Option<Cond> {
        let translator = Translator { schema };
        let parts: Vec<Cond> = filters
            .iter()
            .filter_map(|f| translator.translate(f))
            .map(|t| t.cond)
            .collect();
        match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => Some(Cond::And(parts)),
        }
    }

    /// A write statement's job, by the session's and the table's settings.
    fn write_job(
        &self,
        state: &dyn Session,
        statement: Statement,
        input_schema: SchemaRef,
    ) -> WriteJob {
        let session = DynamoConfig::of(state);
        let encoder = |schema| {
            ItemEncoder::new(&self.meta, schema).writing_null_type(self.options.write_null_type)
        };
        let input_encoder = encoder(input_schema);
        let keys = input_encoder.keys().to_vec();
        WriteJob {
            statement,
            table: self.meta.name.clone(),
            client: self.read_client.clone(),
            keys,
            table_encoder: encoder(self.state.schema()),
            input_encoder,
            assignments: Vec::new(),
            guards: Vec::new(),
            recheck: None,
            settings: WriteSettings {
                mode: session.write_mode,
                max_concurrency: session
                    .max_concurrency
                    .unwrap_or(self.options.max_concurrency),
                retry: self.options.retry.clone(),
                write_capacity: self.options.write_capacity,
                max_wcu: session.max_wcu,
                price_per_million_wru: session.price_per_million_wru,
            },
            item_bytes: if self.meta.item_count > 0 {
                self.meta.size_bytes as f64 / self.meta.item_count as f64
            } else {
                0.0
            },
        }
    }

    /// Refuses or warns about a full Scan of a large table, as the session asks.
    fn check_scan_guard(&self, plan: &AccessPlan, session: &DynamoConfig) -> DfResult<()> {
        if plan.operation != Operation::Scan || self.meta.size_bytes <= session.scan_guard_bytes {
            return Ok(());
        }
        let message = format!(
            "query would Scan all of table '{}' (~{} bytes, ~{} items): add a condition on its \
             partition key '{}' (or an index key), or SET dynamodb.scan_guard = 'off' \
             (threshold: dynamodb.scan_guard_bytes = {})",
            self.meta.name,
            self.meta.size_bytes,
            self.meta.item_count,
            self.meta.keys.partition_key.name,
            session.scan_guard_bytes
        );
        match session.scan_guard {
            ScanGuard::Off => Ok(()),
            ScanGuard::Warn => {
                log::warn!("{message}");
                Ok(())
            }
            ScanGuard::Error => Err(DataFusionError::Plan(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    use super::*;
    use crate::plan::fixture::{orders_meta, orders_schema};

    /// Orders, planned without I/O (the client is never called).
    fn orders() -> Arc<DynamoTableProvider> {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build();
        Arc::new(
            DynamoTableProvider::from_parts(
                Client::from_conf(config),
                orders_meta(),
                orders_schema(),
                TableOptions::default(),
                ConnectionOptions::default(),
            )
            .expect("provider"),
        )
    }

    /// The physical plan of `sql` over `orders`, one line per node.
    async fn physical(orders: &Arc<DynamoTableProvider>, sql: &str) -> String {
        let ctx = SessionContext::new();
        ctx.register_table("orders", Arc::clone(orders) as Arc<dyn TableProvider>)
            .expect("registered");
        let plan = ctx
            .sql(sql)
            .await
            .expect("planned")
            .create_physical_plan()
            .await
            .expect("physical");
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn a_filter_is_decided_once_and_checked_once() {
        let orders = orders();
        let plan = physical(
            &orders,
            "SELECT \"orderId\" FROM orders WHERE customer = 'c1' AND note = 'x'",
        )
        .await;
        assert_eq!(orders.decisions.planned(), 1, "one decision: {plan}");
        // `customer` is the Query's key; `note` is sent as a FilterExpression
        // and re-checked by the read alone: no FilterExec above it.
        assert!(!plan.contains("FilterExec"), "{plan}");
        assert!(plan.contains("operation=Query"), "{plan}");
        assert!(plan.contains("recheck=[note@1 = x]"), "{plan}");
    }

    #[tokio::test]
    async fn a_filter_answered_exact_that_the_scan_cannot_enforce_is_rechecked() {
        // Early, `region = 'eu'` is a key of the KEYS_ONLY index byRegion:
        // Exact. The query needs `price`, which the index lacks: the scan
        // decides again (a Scan) and the read checks `region` itself.
        let orders = orders();
        let plan = physical(&orders, "SELECT price FROM orders WHERE region = 'eu'").await;
        assert_eq!(orders.decisions.planned(), 2, "{plan}");
        assert!(!plan.contains("FilterExec"), "{plan}");
        assert!(plan.contains("operation=Scan"), "{plan}");
        assert!(plan.contains("recheck=[region@1 = eu]"), "{plan}");
    }
}
