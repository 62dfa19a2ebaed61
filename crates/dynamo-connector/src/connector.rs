//! `dynamo.connector`: authenticate the session, resolve the client's DynamoDB
//! client, validate the request, run it, answer with items or a precise error.

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::writer::{JsonArray, WriterBuilder};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::run::{ResultSink, RunOptions, run_statement};
use dynamo_datafusion::schema::SchemaCache;
use dynamo_datafusion::statement::parse_statement;
use dynamo_datafusion::write::WriteStats;
use serde_json::{Map, Value, json};

use crate::attempts::AuthAttempts;
use crate::error::{ConnectorError, ErrorCode, Result, sql_error};
use crate::metrics::Metrics;
use crate::request::{ConnectorRequest, Inputs, Limits, ReadOperation, parse_request};
use crate::secret::Secret;
use crate::sessions::{DEFAULT_SESSION_TTL, SessionPool};
use crate::tenant::{
    ClientResolver, MirrorConfig, MirrorStore, PasswordLogin, ResolvedClient, SchemaStore,
    WriteAccess,
};
use crate::usage::{TableUsage, UsageRecorder};

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
    logins: Option<Arc<dyn PasswordLogin>>,
    schemas: Option<Arc<dyn SchemaStore>>,
    mirrors: Option<Arc<dyn MirrorStore>>,
    writes: Option<Arc<dyn WriteAccess>>,
    usage: Option<Arc<UsageRecorder>>,
    metrics: Option<Arc<Metrics>>,
    attempts: Option<Arc<AuthAttempts>>,
    sessions: SessionPool,
}

impl Connector {
    /// A connector resolving clients with `resolver`; `sql` requests sample
    /// every table they read (see [`Connector::with_schema_store`]).
    pub fn new(resolver: Arc<dyn ClientResolver>) -> Self {
        Self {
            resolver,
            logins: None,
            schemas: None,
            mirrors: None,
            writes: None,
            usage: None,
            metrics: None,
            attempts: None,
            sessions: SessionPool::new(DEFAULT_SESSION_TTL),
        }
    }

    /// Refuses callers (by address, over HTTP and Flight SQL) that failed
    /// to authenticate too often (see [`AuthAttempts`]); `serve` always
    /// sets it.
    pub fn with_auth_attempts(mut self, attempts: Arc<AuthAttempts>) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// The failed authentications counted per address, when limited.
    pub fn auth_attempts(&self) -> Option<&Arc<AuthAttempts>> {
        self.attempts.as_ref()
    }

    /// Answers the `sql` of each client from the mirrors `mirrors` lists
    /// for it (read with the client's own credentials when they catch up
    /// or read live); other tables are read live.
    pub fn with_mirror_store(mut self, mirrors: Arc<dyn MirrorStore>) -> Self {
        self.mirrors = Some(mirrors);
        self
    }

    /// Lets the clients `writes` allows write through `sql` and Flight SQL
    /// (INSERT, REPLACE, UPDATE, DELETE); without it every client is read-only.
    pub fn with_write_access(mut self, writes: Arc<dyn WriteAccess>) -> Self {
        self.writes = Some(writes);
        self
    }

    /// True when `client_id` may write.
    fn may_write(&self, client_id: &str) -> Result<bool> {
        match &self.writes {
            Some(store) => store.may_write(client_id),
            None => Ok(false),
        }
    }

    /// The mirrors of `client_id`.
    fn mirrors_of(&self, client_id: &str) -> Result<Vec<MirrorConfig>> {
        match &self.mirrors {
            Some(store) => store.mirrors(client_id),
            None => Ok(Vec::new()),
        }
    }

    /// Records every request's usage in `usage` and refuses requests of a
    /// client that has used up its daily quota (`quota_exceeded`).
    pub fn with_usage(mut self, usage: Arc<UsageRecorder>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Counts requests, latency, capacity and schema lookups in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Lets users log in with a password ([`Connector::log_in`]: Flight
    /// SQL's Basic authentication) through `logins`.
    pub fn with_password_login(mut self, logins: Arc<dyn PasswordLogin>) -> Self {
        self.logins = Some(logins);
        self
    }

    /// A new session token for `user`, whose password is `password`
    /// ([`LOGIN_SESSION_SECS`] long); `unauthenticated` when the password is
    /// wrong, the user unknown, or no password login is configured.
    pub async fn log_in(&self, user: &str, password: &Secret) -> Result<Secret> {
        match &self.logins {
            Some(logins) => logins.log_in(user, password, LOGIN_SESSION_SECS).await,
            None => Err(ConnectorError::new(
                ErrorCode::Unauthenticated,
                "password login is not enabled here: send a session token \
                 ('authorization: Bearer <token>')",
            )),
        }
    }

    /// The usage recorder, if any.
    pub fn usage(&self) -> Option<&Arc<UsageRecorder>> {
        self.usage.as_ref()
    }

    /// The metrics, if any.
    pub fn metrics(&self) -> Option<&Arc<Metrics>> {
        self.metrics.as_ref()
    }

    /// `quota_exceeded` when `client_id` has used up its daily quota.
    pub fn check_quota(&self, client_id: &str) -> Result<()> {
        match &self.usage {
            Some(usage) => usage.check_quota(client_id),
            None => Ok(()),
        }
    }

    /// Counts one served request of `operation`: its reads by table, the
    /// error it ended with (and the table that error is counted under),
    /// its time since `start`.
    pub fn observe(
        &self,
        operation: &str,
        client_id: Option<&str>,
        tables: &[TableUsage],
        error: Option<(&str, &ConnectorError)>,
        start: Instant,
    ) {
        if let Some(metrics) = &self.metrics {
            let code = error.map_or("ok", |(_, e)| e.code.as_str());
            metrics.request(operation, code, start.elapsed().as_secs_f64());
            if let Some(client) = client_id {
                let (rcu, read, returned) = tables.iter().fold((0.0, 0, 0), |(r, i, o), t| {
                    (r + t.rcu, i + t.items_read, o + t.items_returned)
                });
                metrics.reads(client, rcu, read, returned);
            }
        }
        if let (Some(usage), Some(client)) = (&self.usage, client_id) {
            usage.record(client, tables, error.map(|(table, e)| (table, e.code)));
        }
    }

    /// The client's stored schemas, counted in the metrics.
    fn schema_cache(&self, client_id: &str) -> Option<Arc<dyn SchemaCache>> {
        let cache = self.schemas.as_ref()?.schema_cache(client_id);
        Some(match &self.metrics {
            Some(metrics) => Arc::new(CountedCache {
                inner: cache,
                metrics: Arc::clone(metrics),
            }),
            None => cache,
        })
    }

    /// Keeps each client's SQL session for `ttl` between requests (60 s by
    /// default; zero builds one per request): its tables are listed and
    /// described once, so a `sql` request or a Flight SQL call pays for its
    /// reads only. A session is built again when the client's credentials,
    /// service or mirrors change, after a statement of the client fails, and
    /// after `ttl` — the longest a table created, deleted or altered (an
    /// index, its TTL) may go unseen.
    ///
    /// ```no_run
    /// # fn demo(connector: dynamo_connector::Connector) -> dynamo_connector::Connector {
    /// use std::time::Duration;
    /// // Tables change often here: see them within 10 s.
    /// connector.with_session_ttl(Duration::from_secs(10))
    /// # }
    /// ```
    pub fn with_session_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.sessions = SessionPool::new(ttl);
        self
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
    /// tables (written only when the client may write), with the client's
    /// stored schemas — what the `sql` operation runs in, for other front
    /// ends (Arrow Flight SQL).
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
        let ctx = self.session_of(&resolved, None).await?;
        let may_write = self.may_write(&resolved.client_id)?;
        Ok(SqlSession {
            client_id: resolved.client_id,
            user: resolved.user,
            may_write,
            generation: resolved.generation,
            ctx,
        })
    }

    /// Handles one request: session first, then validation, then the
    /// client's quota, then DynamoDB; counts it in usage and metrics.
    pub async fn handle(&self, session_token: Option<&str>, body: &[u8]) -> Result<Value> {
        let start = Instant::now();
        let resolved = match self.resolver.resolve(session_token).await {
            Ok(r) => r,
            Err(e) => {
                self.observe("none", None, &[], Some(("(request)", &e)), start);
                return Err(e);
            }
        };
        let client = resolved.client_id.as_str();
        let request = match parse_request(body) {
            Ok(r) => r,
            Err(e) => {
                self.observe("none", Some(client), &[], Some(("(request)", &e)), start);
                return Err(e);
            }
        };
        let (operation, table) = match &request.inputs {
            Inputs::Read(r) => (
                match r.operation {
                    ReadOperation::Scan => "scan",
                    ReadOperation::Query => "query",
                },
                r.table_name.clone(),
            ),
            Inputs::Sql(_) => ("sql", SQL_TABLE.to_string()),
        };
        log::info!(
            "client '{client}'{}: {operation}{}",
            resolved
                .user
                .as_deref()
                .map(|u| format!(" user '{u}'"))
                .unwrap_or_default(),
            match &request.inputs {
                Inputs::Read(r) => format!(
                    " on table '{}'{}",
                    r.table_name,
                    r.index_name
                        .as_deref()
                        .map(|i| format!(" index '{i}'"))
                        .unwrap_or_default()
                ),
                Inputs::Sql(_) => String::new(),
            }
        );
        if let Err(e) = self.check_quota(client) {
            log::warn!("client '{client}': {e}");
            self.observe(operation, Some(client), &[], Some((&table, &e)), start);
            return Err(e);
        }
        match self.run(&resolved, request).await {
            Ok((response, tables)) => {
                self.observe(operation, Some(client), &tables, None, start);
                Ok(response)
            }
            Err((e, tables)) => {
                log::warn!("client '{client}': {e}");
                // What a failed statement read is billed too: the error is
                // counted under the first table it read, if it read one.
                let counted = tables.first().map_or(table.as_str(), |t| t.table.as_str());
                self.observe(operation, Some(client), &tables, Some((counted, &e)), start);
                Err(e)
            }
        }
    }
}

/// The table a failed `sql` request is counted under (it may have named none).
pub const SQL_TABLE: &str = "(sql)";

/// Seconds a session made by a password login lasts: an hour, after which
/// the client logs in again.
pub const LOGIN_SESSION_SECS: i64 = 3_600;

/// A client's schema store, counting its lookups.
#[derive(Debug)]
struct CountedCache {
    inner: Arc<dyn SchemaCache>,
    metrics: Arc<Metrics>,
}

impl SchemaCache for CountedCache {
    fn load(&self, id: &str) -> std::result::Result<Option<String>, String> {
        let found = self.inner.load(id);
        self.metrics.schema_lookup(matches!(&found, Ok(Some(_))));
        found
    }

    fn store(&self, id: &str, entry: &str) -> std::result::Result<(), String> {
        self.inner.store(id, entry)
    }
}

/// What a read answer says it read: one table's usage.
fn read_usage(table: &str, response: &Value) -> TableUsage {
    let number = |k: &str| response.get(k).and_then(Value::as_u64).unwrap_or(0);
    TableUsage {
        table: table.to_string(),
        items_read: number("scannedCount"),
        items_returned: number("count"),
        rcu: response
            .get("consumedCapacity")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        items_written: 0,
        wcu: 0.0,
    }
}

/// Each table's usage in an executed plan.
pub(crate) fn plan_usage(
    plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
) -> Vec<TableUsage> {
    let mut usage: Vec<TableUsage> = ReadStats::by_table(plan)
        .into_iter()
        .map(|(table, st)| TableUsage {
            table,
            items_read: st.items_scanned as u64,
            items_returned: st.items_returned as u64,
            rcu: st.consumed_rcu,
            items_written: 0,
            wcu: 0.0,
        })
        .collect();
    for (table, st) in WriteStats::by_table(plan) {
        let row = match usage.iter_mut().position(|u| u.table == table) {
            Some(i) => &mut usage[i],
            None => {
                usage.push(TableUsage {
                    table,
                    items_read: 0,
                    items_returned: 0,
                    rcu: 0.0,
                    items_written: 0,
                    wcu: 0.0,
                });
                let last = usage.len() - 1;
                &mut usage[last]
            }
        };
        row.items_written += st.items_written as u64;
        row.wcu += st.consumed_wcu;
    }
    usage
}

/// A served request: the answer and what it read, or the error and what
/// it read before failing.
type Served = std::result::Result<(Value, Vec<TableUsage>), (ConnectorError, Vec<TableUsage>)>;

impl Connector {
    /// Runs a validated request of `resolved`'s client.
    async fn run(&self, resolved: &ResolvedClient, request: ConnectorRequest) -> Served {
        let nothing = |e: ConnectorError| (e, Vec::new());
        let client_id = resolved.client_id.as_str();
        match request.inputs {
            Inputs::Read(read) => {
                let response = crate::read::run_read(&resolved.client, &read, request.limits)
                    .await
                    .map_err(nothing)?;
                let usage = read_usage(&read.table_name, &response);
                Ok((response, vec![usage]))
            }
            Inputs::Sql(sql) => {
                let access = Access {
                    client_id,
                    may_write: self.may_write(client_id).map_err(nothing)?,
                };
                let ctx = self
                    .session_of(resolved, request.limits.max_capacity)
                    .await
                    .map_err(nothing)?;
                let served = run_sql(&ctx, &sql, request.limits, access).await;
                if served.is_err() {
                    // A kept description may be what failed (a table
                    // deleted or altered): the next request describes again.
                    self.forget_session(client_id);
                }
                served
            }
        }
    }

    /// `resolved`'s SQL session (kept between requests), its statements
    /// bounded by `max_rcu` when set.
    async fn session_of(
        &self,
        resolved: &ResolvedClient,
        max_rcu: Option<f64>,
    ) -> Result<SessionContext> {
        let cache = self.schema_cache(&resolved.client_id);
        let mirrors = self.mirrors_of(&resolved.client_id)?;
        self.sessions
            .session(resolved, cache, &mirrors, max_rcu)
            .await
    }

    /// Drops `client_id`'s kept SQL session after a statement of it failed
    /// (see [`Connector::with_session_ttl`]).
    pub(crate) fn forget_session(&self, client_id: &str) {
        self.sessions.forget(client_id);
    }
}

/// An authenticated session's SQL: its client's tables, written only when
/// the client may write (see [`Connector::sql_session`]).
pub struct SqlSession {
    /// The session's client (tenant).
    pub client_id: String,
    /// The session's user, if the session names one.
    pub user: Option<String>,
    /// The client may write (INSERT, REPLACE, UPDATE, DELETE).
    pub may_write: bool,
    generation: Option<u64>,
    ctx: SessionContext,
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("client_id", &self.client_id)
            .field("user", &self.user)
            .field("may_write", &self.may_write)
            .finish_non_exhaustive()
    }
}

impl SqlSession {
    /// The DataFusion session (the client's tables in `dynamodb.public`).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// `sql` planned: a query, or — when the client may write — INSERT,
    /// REPLACE, UPDATE or DELETE (which write when the plan runs); DDL and
    /// `SET` are refused, as the `sql` operation refuses them.
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        let state = self.ctx.state();
        let statement = parse_statement(&state, sql).map_err(sql_error)?;
        let options = self.access().options_for(&statement)?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(sql_error)?;
        options.verify_plan(&plan).map_err(sql_error)?;
        self.ctx.execute_logical_plan(plan).await.map_err(sql_error)
    }

    /// What a plan of `sql` in this session is kept under between the
    /// call that describes it and the call that runs it; `None` when the
    /// client cannot say which build of it this is.
    pub(crate) fn plan_key(&self, sql: &str) -> Option<crate::planned::PlanKey> {
        Some(crate::planned::PlanKey {
            client_id: self.client_id.clone(),
            generation: self.generation?,
            may_write: self.may_write,
            sql: sql.to_string(),
        })
    }

    fn access(&self) -> Access<'_> {
        Access {
            client_id: &self.client_id,
            may_write: self.may_write,
        }
    }
}

impl SqlSession {
    /// Runs a write statement (INSERT, REPLACE, UPDATE, DELETE) — Flight
    /// SQL's `ExecuteUpdate` — and returns the items it wrote and its plan
    /// (for the usage ledger). `write_not_allowed` when the client is
    /// read-only; `invalid_request` for a statement that is not a write.
    pub async fn execute_update(
        &self,
        sql: &str,
    ) -> Result<(u64, Arc<dyn datafusion::physical_plan::ExecutionPlan>)> {
        let statement = parse_statement(&self.ctx.state(), sql).map_err(sql_error)?;
        if !is_write(&statement) {
            return Err(ConnectorError::invalid(
                "an update runs INSERT, REPLACE, UPDATE or DELETE; run a query as a statement query",
            ));
        }
        let options =
            RunOptions::default().with_sql_options(self.access().options_for(&statement)?);
        let mut sink = dynamo_datafusion::run::CollectSink::default();
        let outcome = run_statement(&self.ctx, &statement, &options, &mut sink)
            .await
            .map_err(sql_error)?;
        let count = dynamo_datafusion::write::written_count(&sink.batches).ok_or_else(|| {
            ConnectorError::internal("a write statement answered no count of items written")
        })?;
        Ok((count, outcome.plan))
    }
}

/// True for INSERT, REPLACE, UPDATE and DELETE.
fn is_write(statement: &datafusion::sql::parser::Statement) -> bool {
    use datafusion::sql::sqlparser::ast::Statement as Sql;
    matches!(
        statement,
        datafusion::sql::parser::Statement::Statement(s)
            if matches!(**s, Sql::Insert(_) | Sql::Update { .. } | Sql::Delete(_))
    )
}

/// Who runs a statement, and whether it may write.
struct Access<'a> {
    client_id: &'a str,
    may_write: bool,
}

impl Access<'_> {
    /// What `statement` may do: a query reads; INSERT, REPLACE, UPDATE and
    /// DELETE write, when the client may (`write_not_allowed` otherwise);
    /// DDL, `SET` and `COPY` (which DataFusion counts as DML, and which
    /// would write the server's files) never run.
    fn options_for(&self, statement: &datafusion::sql::parser::Statement) -> Result<SQLOptions> {
        let write = is_write(statement);
        if write && !self.may_write {
            let client_id = self.client_id;
            return Err(ConnectorError::new(
                ErrorCode::WriteNotAllowed,
                format!(
                    "client '{client_id}' is read-only: INSERT, REPLACE, UPDATE and DELETE need \
                     write access (`dynamo-connector admin client writes {client_id} on`)"
                ),
            ));
        }
        Ok(SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(write)
            .with_allow_statements(false))
    }
}

async fn run_sql(ctx: &SessionContext, sql: &str, limits: Limits, access: Access<'_>) -> Served {
    let nothing = |e: ConnectorError| (e, Vec::new());
    let statement = parse_statement(&ctx.state(), sql).map_err(|e| nothing(sql_error(e)))?;
    let options =
        RunOptions::default().with_sql_options(access.options_for(&statement).map_err(nothing)?);
    let mut sink = JsonSink {
        max_items: limits.items(),
        columns: Vec::new(),
        out: Vec::new(),
        rows: 0,
        truncated: false,
        plan: None,
    };
    let outcome = match run_statement(ctx, &statement, &options, &mut sink).await {
        Ok(outcome) => outcome,
        // The reads that ran before the failure, from the plan that ran.
        Err(e) => {
            return Err((
                sql_error(e),
                sink.plan.as_ref().map(plan_usage).unwrap_or_default(),
            ));
        }
    };
    // arbitrary_precision keeps every digit of decimals.
    let items: Value = if sink.out.is_empty() {
        json!([])
    } else {
        let mut text = sink.out;
        text.push(b']');
        serde_json::from_slice(&text).map_err(|e| {
            (
                ConnectorError::internal(e.to_string()),
                plan_usage(&outcome.plan),
            )
        })?
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
    Ok((Value::Object(response), plan_usage(&outcome.plan)))
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
    /// The plan that runs, to count its reads if it fails.
    plan: Option<Arc<dyn datafusion::physical_plan::ExecutionPlan>>,
}

impl ResultSink for JsonSink {
    fn started(&mut self, plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>) {
        self.plan = Some(Arc::clone(plan));
    }

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
