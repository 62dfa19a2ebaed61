//! `dynamo.connector`: authenticate the session, resolve the client's DynamoDB
//! client, validate the request, run it, answer with items or a precise error.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::config::Dialect;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};
use dynamo_datafusion::{
    DynamoConfig, ReadStats, ResultSink, RunOptions, SchemaCache, TableOptions,
    dynamo_session_with_cache, run_statement,
};
use serde_json::{Map, Value, json};

use crate::error::{ConnectorError, Result, sql_error};
use crate::request::{ConnectorRequest, Inputs, Limits, ReadOperation, parse_request};
use crate::tenant::{ClientResolver, ResolvedClient, SchemaStore};

/// Runs connector requests for authenticated sessions.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dynamo_connector::SqliteStore>, key: dynamo_connector::MasterKey) {
/// use std::sync::Arc;
/// use dynamo_connector::{Connector, MasterKeyCipher, TenantResolver};
///
/// let resolver = TenantResolver::new(store.clone(), store.clone(), store, Arc::new(MasterKeyCipher(key)));
/// let connector = Connector::new(Arc::new(resolver));
/// let body = br#"{"inputs": {"tableName": "UserEngagement", "operation": "scan"}, "config": {}}"#;
/// match connector.handle(Some("session-token"), body).await {
///     Ok(response) => println!("{response}"),
///     Err(e) => println!("{}", e.to_json()),
/// }
/// # }
/// ```
pub struct Connector {
    resolver: Arc<dyn ClientResolver>,
    schemas: Option<Arc<dyn SchemaStore>>,
}

impl Connector {
    /// A connector resolving clients with `resolver`; `sql` requests sample
    /// every table they read (see [`Connector::with_schema_store`]).
    pub fn new(resolver: Arc<dyn ClientResolver>) -> Self {
        Self {
            resolver,
            schemas: None,
        }
    }

    /// Keeps each client's inferred table schemas in `schemas`: a later
    /// `sql` request over the same table samples nothing, and a column that
    /// widened stays widened.
    pub fn with_schema_store(mut self, schemas: Arc<dyn SchemaStore>) -> Self {
        self.schemas = Some(schemas);
        self
    }

    /// Resolves `session_token` as every request does — session, client,
    /// service, decrypted credentials — without calling DynamoDB: for front
    /// ends that need to know who calls before (or instead of) a read.
    pub async fn authenticate(&self, session_token: Option<&str>) -> Result<ResolvedClient> {
        self.resolver.resolve(session_token).await
    }

    /// The SQL session of an authenticated session token: its client's
    /// tables, read-only, with the client's stored schemas — what the `sql`
    /// operation runs in, for other front ends (Arrow Flight SQL).
    ///
    /// ```no_run
    /// # async fn demo(connector: dynamo_connector::Connector) -> dynamo_connector::Result<()> {
    /// let session = connector.sql_session(Some("session-token")).await?;
    /// let frame = session.plan("SELECT count(*) FROM UserEngagement").await?;
    /// println!("{}", frame.schema());
    /// # Ok(()) }
    /// ```
    pub async fn sql_session(&self, session_token: Option<&str>) -> Result<SqlSession> {
        let resolved = self.authenticate(session_token).await?;
        let cache = self
            .schemas
            .as_ref()
            .map(|s| s.schema_cache(&resolved.client_id));
        let ctx = sql_context(&resolved.client, cache, None).await?;
        Ok(SqlSession {
            client_id: resolved.client_id,
            user: resolved.user,
            ctx,
        })
    }

    /// Handles one request: session first, then validation, then DynamoDB.
    pub async fn handle(&self, session_token: Option<&str>, body: &[u8]) -> Result<Value> {
        let resolved = self.resolver.resolve(session_token).await?;
        let request = parse_request(body)?;
        log::info!(
            "client '{}'{}: {}",
            resolved.client_id,
            resolved
                .user
                .as_deref()
                .map(|u| format!(" user '{u}'"))
                .unwrap_or_default(),
            match &request.inputs {
                Inputs::Read(r) => format!(
                    "{} on table '{}'{}",
                    match r.operation {
                        ReadOperation::Scan => "scan",
                        ReadOperation::Query => "query",
                    },
                    r.table_name,
                    r.index_name
                        .as_deref()
                        .map(|i| format!(" index '{i}'"))
                        .unwrap_or_default()
                ),
                Inputs::Sql(_) => "sql".to_string(),
            }
        );
        let cache = self
            .schemas
            .as_ref()
            .map(|s| s.schema_cache(&resolved.client_id));
        let result = run(&resolved, request, cache).await;
        if let Err(e) = &result {
            log::warn!("client '{}': {}", resolved.client_id, e);
        }
        result
    }
}

async fn run(
    resolved: &ResolvedClient,
    request: ConnectorRequest,
    cache: Option<Arc<dyn SchemaCache>>,
) -> Result<Value> {
    match request.inputs {
        Inputs::Read(read) => crate::read::run_read(&resolved.client, &read, request.limits).await,
        Inputs::Sql(sql) => run_sql(&resolved.client, &sql, request.limits, cache).await,
    }
}

/// An authenticated session's SQL: its client's tables, read-only (see
/// [`Connector::sql_session`]).
pub struct SqlSession {
    /// The session's client (tenant).
    pub client_id: String,
    /// The session's user, if the session names one.
    pub user: Option<String>,
    ctx: SessionContext,
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("client_id", &self.client_id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl SqlSession {
    /// The DataFusion session (the client's tables in `dynamodb.public`).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// `sql` planned as a read: DDL, DML and `SET` are refused, as the
    /// `sql` operation refuses them.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        self.ctx
            .sql_with_options(sql, read_only())
            .await
            .map_err(sql_error)
    }
}

/// Reads only: no DDL, no DML, no SET.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A session over `client`'s tables, with its stored schemas, and a
/// read-capacity ceiling per statement when `max_rcu` is set.
async fn sql_context(
    client: &Client,
    cache: Option<Arc<dyn SchemaCache>>,
    max_rcu: Option<f64>,
) -> Result<SessionContext> {
    let mut settings = DynamoConfig::default();
    settings.max_rcu = max_rcu;
    dynamo_session_with_cache(
        client.clone(),
        SessionConfig::new().with_option_extension(settings),
        TableOptions::default(),
        cache,
    )
    .await
    .map_err(sql_error)
}

async fn run_sql(
    client: &Client,
    sql: &str,
    limits: Limits,
    cache: Option<Arc<dyn SchemaCache>>,
) -> Result<Value> {
    let ctx = sql_context(client, cache, limits.max_capacity).await?;
    let statement = ctx
        .state()
        .sql_to_statement(sql, &Dialect::Generic)
        .map_err(sql_error)?;
    let options = RunOptions {
        sql_options: Some(read_only()),
        ..RunOptions::default()
    };
    let mut sink = JsonSink {
        max_items: limits.max_items,
        columns: Vec::new(),
        out: Vec::new(),
        rows: 0,
        truncated: false,
    };
    let outcome = run_statement(&ctx, &statement, &options, &mut sink)
        .await
        .map_err(sql_error)?;
    // arbitrary_precision keeps every digit of decimals.
    let items: Value = if sink.out.is_empty() {
        json!([])
    } else {
        let mut text = sink.out;
        text.push(b']');
        serde_json::from_slice(&text).map_err(|e| ConnectorError::internal(e.to_string()))?
    };
    let stats = ReadStats::of_plan(&outcome.plan);
    let mut response = Map::new();
    response.insert("columns".into(), Value::Array(sink.columns));
    response.insert("items".into(), items);
    response.insert("count".into(), json!(sink.rows));
    response.insert("scannedCount".into(), json!(stats.items_scanned));
    response.insert("consumedCapacity".into(), json!(stats.consumed_rcu));
    response.insert("estimatedCapacity".into(), json!(stats.estimated_rcu));
    response.insert("truncated".into(), json!(sink.truncated));
    if !outcome.notices.is_empty() {
        response.insert("notices".into(), json!(outcome.notices));
    }
    Ok(Value::Object(response))
}

/// Collects an `sql` result as a JSON array of row objects, at most
/// `max_items` rows; `truncated` when the result had more.
struct JsonSink {
    max_items: usize,
    columns: Vec<Value>,
    /// `[` and the rows so far, comma-separated (the closing `]` comes last).
    out: Vec<u8>,
    rows: usize,
    truncated: bool,
}

impl ResultSink for JsonSink {
    fn start(&mut self, schema: SchemaRef) -> DfResult<()> {
        self.columns = schema
            .fields()
            .iter()
            .map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}))
            .collect();
        Ok(())
    }

    fn batch(&mut self, batch: RecordBatch) -> DfResult<bool> {
        if batch.num_rows() == 0 {
            return Ok(true);
        }
        if self.rows >= self.max_items {
            // One more row exists than the answer may hold.
            self.truncated = true;
            return Ok(false);
        }
        let take = batch.num_rows().min(self.max_items - self.rows);
        let mut array = Vec::new();
        {
            let mut writer = WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(&mut array);
            writer.write(&batch.slice(0, take))?;
            writer.finish()?;
        }
        // `[{...},{...}]` → `{...},{...}` appended after `[` or `,`.
        let body = array
            .get(1..array.len().saturating_sub(1))
            .unwrap_or_default();
        self.out.push(if self.out.is_empty() { b'[' } else { b',' });
        self.out.extend_from_slice(body);
        self.rows += take;
        if take < batch.num_rows() {
            self.truncated = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn row_bound(&self) -> Option<usize> {
        Some(self.max_items)
    }
}
