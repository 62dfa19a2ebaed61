//! Arrow Flight SQL: the connector's `sql` operation for Arrow-native
//! clients (ADBC, JDBC/ODBC Flight SQL drivers, BI tools).
//!
//! Every call authenticates with `authorization: Bearer <session token>`,
//! resolved exactly as the HTTP path resolves it (session → client →
//! service → decrypted credentials), so a session sees only its client's
//! tables. A handshake may instead send a user name and password (HTTP
//! Basic authentication, as the Flight SQL JDBC driver, DBeaver and Tableau
//! do): checked against the user's stored Argon2id hash, it is answered with
//! a new session token (`authorization: Bearer …`) that the client sends
//! from then on. Results stream batch by batch from
//! DataFusion to the wire, never through JSON and never whole in memory.
//!
//! - `CommandStatementQuery`: `GetFlightInfo` plans the SQL (its schema) and
//!   returns one ticket; `DoGet` with that ticket plans it again for the
//!   caller's session and streams the batches. Tickets and prepared
//!   statement handles carry the SQL text only, never a credential or a
//!   session: whoever presents one runs it as themselves.
//! - Metadata: `GetSqlInfo`, `GetCatalogs`, `GetDbSchemas`, `GetTables`
//!   (with table schemas on request), `GetTableTypes`.
//! - Prepared statements without parameters (create, execute, close).
//! - Writes, for clients an administrator allows (`admin client writes C
//!   on`; others get `write_not_allowed` → `PERMISSION_DENIED`):
//!   `CommandStatementUpdate` (ExecuteUpdate) runs INSERT, REPLACE, UPDATE or
//!   DELETE and answers the items written; a statement query may be a write
//!   too (its one row is the count); `CommandStatementIngest` (ADBC bulk
//!   ingest) INSERTs a stream of batches into an existing table.
//!
//! Errors carry the connector's code and message (never a secret) in the
//! gRPC status: `unauthenticated` → `UNAUTHENTICATED`, `table_not_found` →
//! `NOT_FOUND`, `access_denied` → `PERMISSION_DENIED`, `throttled` →
//! `RESOURCE_EXHAUSTED`, `invalid_request` → `INVALID_ARGUMENT`.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use futures::{Stream, StreamExt, TryStreamExt, stream};
use prost::Message as _;
use tonic::codegen::http;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::attempts::AuthAttempts;
use crate::connector::{Connector, SQL_TABLE, SqlSession, plan_usage};
use crate::error::{ConnectorError, ErrorCode, sql_error};
use crate::planned::PlannedStatements;
use crate::secret::Secret;
use base64::Engine as _;

/// The first bytes of every ticket and prepared-statement handle this
/// service issues; the SQL text follows.
const HANDLE_PREFIX: &[u8] = b"dynamo-connector/sql/1\n";

/// Table type of the client's DynamoDB tables.
const TABLE: &str = "TABLE";
/// Table type of `information_schema`'s tables.
const VIEW: &str = "VIEW";

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "dynamo-connector");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow columnar format version (Schema.fbs).
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    // Clients the administrator allows may write.
    b.append(SqlInfo::FlightSqlServerReadOnly, false);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    // `SqlInfoData` fails only for a value of the wrong type: none above.
    b.build().expect("static SQL info")
});

/// The Flight SQL service of a [`Connector`].
///
/// ```no_run
/// # async fn demo(connector: dynamo_connector::Connector) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:50060").await?;
/// dynamo_connector::flight::serve(Arc::new(connector), listener, std::future::pending()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DynamoFlightSql {
    connector: Arc<Connector>,
    /// Statements planned by GetFlightInfo, for the DoGet that runs them.
    planned: Arc<PlannedStatements>,
}

impl std::fmt::Debug for DynamoFlightSql {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoFlightSql").finish_non_exhaustive()
    }
}

/// Serves Flight SQL on `listener` until `shutdown` completes.
pub async fn serve(
    connector: Arc<Connector>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .layer(AddressGate(connector.auth_attempts().cloned()))
        .add_service(DynamoFlightSql::new(connector).into_server())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}

/// Refuses an address that failed to authenticate too often (every Flight
/// call, before its token is read) and counts each call answered with
/// `UNAUTHENTICATED` against the caller's address (see [`AuthAttempts`]).
#[derive(Clone)]
struct AddressGate(Option<Arc<AuthAttempts>>);

impl<S> tower::Layer<S> for AddressGate {
    type Service = GatedService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GatedService {
            inner,
            attempts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct GatedService<S> {
    inner: S,
    attempts: Option<Arc<AuthAttempts>>,
}

type GateFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for GatedService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = GateFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let ip = request
            .extensions()
            .get::<tonic::transport::server::TcpConnectInfo>()
            .and_then(|info| info.remote_addr())
            .map(|addr| addr.ip());
        let (Some(attempts), Some(ip)) = (self.attempts.clone(), ip) else {
            return Box::pin(self.inner.call(request));
        };
        if let Err(e) = attempts.admit(ip) {
            let refused = status(e).into_http();
            return Box::pin(async move { Ok(refused) });
        }
        // The service made ready is this one; a clone takes its place.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = ready.call(request).await?;
            // A refused call ends at once: its status is in the headers.
            let unauthenticated = response
                .headers()
                .get("grpc-status")
                .is_some_and(|code| code.as_bytes() == b"16");
            if unauthenticated {
                attempts.failed(ip);
            }
            Ok(response)
        })
    }
}

/// The gRPC status of a connector error: its code and message.
pub fn status_of(e: &ConnectorError) -> Status {
    let message = e.to_string();
    match e.code {
        ErrorCode::Unauthenticated => Status::unauthenticated(message),
        ErrorCode::TableNotFound => Status::not_found(message),
        ErrorCode::AccessDenied | ErrorCode::WriteNotAllowed => Status::permission_denied(message),
        ErrorCode::Throttled
        | ErrorCode::CapacityExceeded
        | ErrorCode::QuotaExceeded
        | ErrorCode::TooManyAttempts => Status::resource_exhausted(message),
        ErrorCode::InvalidRequest => Status::invalid_argument(message),
        ErrorCode::ServiceNotConfigured | ErrorCode::CredentialsNotFound => {
            Status::failed_precondition(message)
        }
        ErrorCode::DynamodbError | ErrorCode::MirrorUnavailable => Status::unavailable(message),
        ErrorCode::CredentialsUnreadable | ErrorCode::Internal => Status::internal(message),
    }
}

fn status(e: ConnectorError) -> Status {
    status_of(&e)
}

/// The session token of `authorization: Bearer <token>`.
fn bearer(metadata: &MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A handle carrying `sql`.
/// What a handshake authenticates with.
enum Login {
    /// A session token.
    Bearer(String),
    /// A user name and password (HTTP Basic authentication).
    Basic { user: String, password: Secret },
}

/// The handshake's `authorization` header, if any.
fn credentials(metadata: &MetadataMap) -> Result<Option<Login>, ConnectorError> {
    if let Some(token) = bearer(metadata) {
        return Ok(Some(Login::Bearer(token.to_string())));
    }
    let Some(value) = metadata.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let bad = || {
        ConnectorError::new(
            ErrorCode::Unauthenticated,
            "the Basic authorization header is not base64 of 'user:password'",
        )
    };
    // Padded or not: clients differ (RFC 7617 pads; some drivers do not).
    let lenient = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = zeroize::Zeroizing::new(lenient.decode(encoded.trim()).map_err(|_| bad())?);
    let text = std::str::from_utf8(&decoded).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some(Login::Basic {
        user: user.to_string(),
        password: Secret::new(password),
    }))
}

fn handle_of(sql: &str) -> Vec<u8> {
    [HANDLE_PREFIX, sql.as_bytes()].concat()
}

/// The SQL of a handle this service issued.
fn sql_of(handle: &[u8]) -> Result<&str, Status> {
    handle
        .strip_prefix(HANDLE_PREFIX)
        .and_then(|sql| std::str::from_utf8(sql).ok())
        .ok_or_else(|| {
            status(ConnectorError::invalid(
                "not a statement handle of this service: run the statement again",
            ))
        })
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>;

/// Encodes `batches` (all of `schema`) as a Flight data stream.
fn flight_stream(
    schema: Arc<Schema>,
    batches: impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
) -> Response<DoGetStream> {
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Response::new(Box::pin(stream))
}

/// The operation label of Flight SQL statements in metrics.
const OPERATION: &str = "flight_sql";

/// A statement's stream: when it is dropped (ended, failed or cancelled),
/// what its reads did is counted in the connector's usage and metrics.
struct ObservedStream {
    connector: Arc<Connector>,
    client: String,
    plan: Arc<dyn ExecutionPlan>,
    start: Instant,
    error: std::sync::Mutex<Option<ConnectorError>>,
}

impl Drop for ObservedStream {
    fn drop(&mut self) {
        let error = self
            .error
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if error.is_some() {
            self.connector.forget_session(&self.client);
        }
        self.connector.observe(
            OPERATION,
            Some(&self.client),
            &plan_usage(&self.plan),
            error.as_ref().map(|e| (SQL_TABLE, e)),
            self.start,
        );
    }
}

/// One batch as a Flight data stream.
fn one_batch(batch: Result<RecordBatch, FlightError>) -> Response<DoGetStream> {
    let schema = match &batch {
        Ok(b) => b.schema(),
        Err(_) => Arc::new(Schema::empty()),
    };
    flight_stream(schema, stream::once(async { batch }))
}

/// A FlightInfo of `schema` with one endpoint whose ticket is `ticket`.
fn flight_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("encoding a schema: {e}")))?
        .with_endpoint(endpoint)
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// One line per call: who called (never the token).
fn log_call(client_id: &str, user: Option<&str>) {
    log::info!(
        "client '{client_id}'{}: flight sql",
        user.map(|u| format!(" user '{u}'")).unwrap_or_default()
    );
}

impl DynamoFlightSql {
    /// The service of `connector`.
    pub fn new(connector: Arc<Connector>) -> Self {
        Self {
            connector,
            planned: Arc::default(),
        }
    }

    /// The gRPC service, to add to a tonic server.
    pub fn into_server(self) -> FlightServiceServer<Self> {
        FlightServiceServer::new(self)
    }

    /// Checks the caller's session token (no DynamoDB call): for calls
    /// that read nothing of the caller's tables.
    async fn authenticate(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let resolved = self
            .connector
            .authenticate(bearer(metadata))
            .await
            .map_err(status)?;
        log_call(&resolved.client_id, resolved.user.as_deref());
        Ok(())
    }

    /// The caller's SQL session (its tables listed).
    async fn session(&self, metadata: &MetadataMap) -> Result<SqlSession, Status> {
        let session = self
            .connector
            .sql_session(bearer(metadata))
            .await
            .map_err(status)?;
        log_call(&session.client_id, session.user.as_deref());
        Ok(session)
    }

    /// The FlightInfo of a metadata command of `schema`, for an
    /// authenticated caller: its ticket is the command itself.
    async fn command_info(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: impl ProstMessageExt,
    ) -> Result<Response<FlightInfo>, Status> {
        self.authenticate(request.metadata()).await?;
        flight_info(
            schema,
            command.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    /// Counts a statement that failed before it streamed anything — in the
    /// usage ledger, the metrics and the log, as the HTTP path does — and
    /// turns its error into a status. `client` is `None` when the session
    /// itself was refused.
    fn failed(&self, client: Option<&str>, e: ConnectorError, start: Instant) -> Status {
        match client {
            Some(client) => {
                log::warn!("client '{client}': {e}");
                self.connector.forget_session(client);
            }
            None => log::warn!("flight sql: {e}"),
        }
        self.connector
            .observe(OPERATION, client, &[], Some((SQL_TABLE, &e)), start);
        status(e)
    }

    /// The caller's SQL session for a statement; a refusal is counted.
    async fn statement_session(
        &self,
        metadata: &MetadataMap,
        start: Instant,
    ) -> Result<SqlSession, Status> {
        let session = self
            .connector
            .sql_session(bearer(metadata))
            .await
            .map_err(|e| self.failed(None, e, start))?;
        log_call(&session.client_id, session.user.as_deref());
        Ok(session)
    }

    /// The output schema of `sql` in the caller's session (a statement
    /// prepared or described before it runs). A statement that fails here is
    /// never run, so it is counted here; one that plans is counted when it
    /// runs.
    async fn schema_of(&self, metadata: &MetadataMap, sql: &str) -> Result<Schema, Status> {
        let start = Instant::now();
        let session = self.statement_session(metadata, start).await?;
        let frame = session
            .plan(sql)
            .await
            .map_err(|e| self.failed(Some(&session.client_id), e, start))?;
        let schema = frame.schema().as_arrow().clone();
        if let Some(key) = session.plan_key(sql) {
            self.planned.keep(key, frame);
        }
        Ok(schema)
    }

    /// Runs `sql` in the caller's session, streaming its batches; the
    /// client's quota is checked first, and its usage counted when the
    /// stream ends (or is dropped).
    async fn run(
        &self,
        metadata: &MetadataMap,
        sql: &str,
    ) -> Result<Response<DoGetStream>, Status> {
        let start = Instant::now();
        let connector = &self.connector;
        let session = self.statement_session(metadata, start).await?;
        let client = session.client_id.clone();
        let failed = |e: ConnectorError| self.failed(Some(&client), e, start);
        connector.check_quota(&client).map_err(failed)?;
        // Planned already when the client asked for the statement's info.
        let kept = session.plan_key(sql).and_then(|k| self.planned.take(&k));
        let frame = match kept {
            Some(frame) => frame,
            None => session.plan(sql).await.map_err(failed)?,
        };
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let task = Arc::new(frame.task_ctx());
        let plan = frame
            .create_physical_plan()
            .await
            .map_err(|e| failed(sql_error(e)))?;
        let batches = execute_stream(Arc::clone(&plan), task).map_err(|e| failed(sql_error(e)))?;
        let observed = Arc::new(ObservedStream {
            connector: Arc::clone(connector),
            client: client.clone(),
            plan,
            start,
            error: std::sync::Mutex::new(None),
        });
        let on_error = Arc::clone(&observed);
        let batches = batches
            .map_err(move |e| {
                let e = sql_error(e);
                log::warn!("client '{}': {e}", on_error.client);
                *on_error.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.clone());
                FlightError::Tonic(Box::new(status(e)))
            })
            // The stream holds the observer: it counts when the stream goes.
            .inspect(move |_| {
                let _ = &observed;
            });
        Ok(flight_stream(schema, batches))
    }

    /// Runs a write in the caller's session (`write` answers the items
    /// written and the plan that ran): the client's quota is checked first,
    /// and what the plan read and wrote is counted.
    async fn update<F, Fut>(&self, metadata: &MetadataMap, write: F) -> Result<i64, Status>
    where
        F: FnOnce(SqlSession) -> Fut,
        Fut: Future<Output = Result<(u64, Arc<dyn ExecutionPlan>), ConnectorError>>,
    {
        let start = Instant::now();
        let session = self.statement_session(metadata, start).await?;
        let client = session.client_id.clone();
        self.connector
            .check_quota(&client)
            .map_err(|e| self.failed(Some(&client), e, start))?;
        match write(session).await {
            Ok((count, plan)) => {
                self.connector
                    .observe(OPERATION, Some(&client), &plan_usage(&plan), None, start);
                Ok(i64::try_from(count).unwrap_or(i64::MAX))
            }
            Err(e) => Err(self.failed(Some(&client), e, start)),
        }
    }

    /// Every (catalog, schema, table, type) of the caller's session, with
    /// the table's schema when `with_schema` (the command's filters are
    /// applied by its builder).
    async fn tables(
        &self,
        session: &SqlSession,
        with_schema: bool,
    ) -> Result<Vec<(String, String, String, &'static str, Schema)>, Status> {
        let ctx = session.context();
        let mut out = Vec::new();
        for catalog_name in ctx.catalog_names() {
            let Some(catalog) = ctx.catalog(&catalog_name) else {
                continue;
            };
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                let kind = if schema_name == "information_schema" {
                    VIEW
                } else {
                    TABLE
                };
                for table in schema.table_names() {
                    let table_schema = if with_schema {
                        match schema.table(&table).await {
                            Ok(Some(provider)) => provider.schema().as_ref().clone(),
                            Ok(None) => continue,
                            Err(e) => return Err(status(sql_error(e))),
                        }
                    } else {
                        Schema::empty()
                    };
                    out.push((
                        catalog_name.clone(),
                        schema_name.clone(),
                        table,
                        kind,
                        table_schema,
                    ));
                }
            }
        }
        Ok(out)
    }
}

#[tonic::async_trait]
impl FlightSqlService for DynamoFlightSql {
    type FlightService = DynamoFlightSql;

    /// Checks the bearer token and hands it back: clients that handshake
    /// first then send it on every call.
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let token = match credentials(request.metadata()).map_err(status)? {
            Some(Login::Bearer(token)) => {
                self.connector
                    .authenticate(Some(&token))
                    .await
                    .map_err(status)?;
                token
            }
            // A BI tool's user name and password: a new session for it.
            Some(Login::Basic { user, password }) => {
                let token = self.connector.log_in(&user, &password).await.map_err(|e| {
                    log::warn!("flight sql: login of user '{user}' refused: {e}");
                    status(e)
                })?;
                log::info!("flight sql: user '{user}' logged in");
                token.expose().to_string()
            }
            None => {
                return Err(status(ConnectorError::new(
                    ErrorCode::Unauthenticated,
                    "no session: send 'authorization: Bearer <session token>', or a user name \
                     and password (HTTP Basic authentication)",
                )));
            }
        };
        let answer = HandshakeResponse {
            protocol_version: 0,
            payload: Default::default(),
        };
        let mut response: Response<
            Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
        > = Response::new(Box::pin(stream::once(async { Ok(answer) })));
        if let Ok(value) = format!("Bearer {token}").parse() {
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = self.schema_of(request.metadata(), &query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: handle_of(&query.query).into(),
        };
        flight_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = sql_of(&ticket.statement_handle)?;
        self.run(request.metadata(), sql).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let sql = sql_of(&query.prepared_statement_handle)?;
        let schema = self.schema_of(request.metadata(), sql).await?;
        flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let sql = sql_of(&query.prepared_statement_handle)?;
        self.run(request.metadata(), sql).await
    }

    /// `ExecuteUpdate`: INSERT, REPLACE, UPDATE or DELETE, for a client
    /// allowed to write; answers the items written.
    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.update(request.metadata(), |session| {
            let sql = command.query.clone();
            async move { session.execute_update(&sql).await }
        })
        .await
    }

    /// Bulk ingest (ADBC `adbc_ingest`) into an existing table: the rows
    /// are INSERTed (an existing key stops the ingest, naming it), for a
    /// client allowed to write. Creating or replacing tables is refused.
    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let metadata = request.metadata().clone();
        // The first message (the command and the schema) was peeked: keep it.
        let data = request.into_inner().into_peekable();
        self.update(&metadata, move |session| async move {
            crate::ingest::ingest(&session, &command, data).await
        })
        .await
    }

    async fn do_put_prepared_statement_query(
        &self,
        _query: CommandPreparedStatementQuery,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        Err(status(ConnectorError::invalid(
            "statement parameters are not supported: write the values into the SQL",
        )))
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let schema = self.schema_of(request.metadata(), &query.query).await?;
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: datafusion::arrow::error::ArrowError| {
                Status::internal(format!("encoding a schema: {e}"))
            })?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle_of(&query.query).into(),
            dataset_schema,
            parameter_schema: Default::default(),
        })
    }

    /// Handles hold no server state: nothing to release.
    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        sql_of(&query.prepared_statement_handle).map(|_| ())
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        self.command_info(request, &schema, query).await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(request.metadata()).await?;
        Ok(one_batch(query.into_builder(&SQL_INFO).build()))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(request, &schema, query).await
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata()).await?;
        let mut builder = query.into_builder();
        for name in session.context().catalog_names() {
            builder.append(name);
        }
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(request, &schema, query).await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata()).await?;
        let ctx = session.context();
        let mut builder = query.into_builder();
        for catalog_name in ctx.catalog_names() {
            if let Some(catalog) = ctx.catalog(&catalog_name) {
                for schema_name in catalog.schema_names() {
                    builder.append(&catalog_name, schema_name);
                }
            }
        }
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.command_info(request, &schema, query).await
    }

    /// Table schemas, when asked for, are the tables' schemas as queries
    /// see them (inferred from a sample, or the stored ones).
    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata()).await?;
        let with_schema = query.include_schema;
        let mut builder = query.into_builder();
        for (catalog, schema, table, kind, table_schema) in
            self.tables(&session, with_schema).await?
        {
            builder
                .append(catalog, schema, table, kind, &table_schema)
                .map_err(|e| Status::internal(format!("listing tables: {e}")))?;
        }
        Ok(one_batch(builder.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.command_info(request, &schema, query).await
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.authenticate(request.metadata()).await?;
        let mut builder = query.into_builder();
        builder.append(TABLE);
        builder.append(VIEW);
        Ok(one_batch(builder.build()))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_carry_the_sql_and_nothing_else() {
        let sql = "SELECT * FROM \"Orders\" WHERE pk = 'é'";
        let handle = handle_of(sql);
        assert_eq!(sql_of(&handle).expect("ours"), sql);
        let err = sql_of(b"SELECT 1").expect_err("not ours");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn connector_errors_keep_their_code_and_message() {
        for (code, grpc) in [
            (ErrorCode::Unauthenticated, tonic::Code::Unauthenticated),
            (ErrorCode::TableNotFound, tonic::Code::NotFound),
            (ErrorCode::AccessDenied, tonic::Code::PermissionDenied),
            (ErrorCode::Throttled, tonic::Code::ResourceExhausted),
            (ErrorCode::InvalidRequest, tonic::Code::InvalidArgument),
        ] {
            let s = status_of(&ConnectorError::new(code, "what happened"));
            assert_eq!(s.code(), grpc);
            assert_eq!(s.message(), format!("{}: what happened", code.as_str()));
        }
    }

    #[test]
    fn basic_credentials_are_read_padded_or_not() {
        for header in [
            "Basic bm9ib2R5OmEgbG9uZyBlbm91Z2ggcGFzc3dvcmQ=",
            "Basic bm9ib2R5OmEgbG9uZyBlbm91Z2ggcGFzc3dvcmQ",
        ] {
            let mut metadata = MetadataMap::new();
            metadata.insert("authorization", header.parse().expect("header"));
            match credentials(&metadata) {
                Ok(Some(Login::Basic { user, password })) => {
                    assert_eq!(user, "nobody");
                    assert_eq!(password.expose(), "a long enough password");
                }
                _ => panic!("{header}: not read as Basic"),
            }
        }
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", "Basic !!!".parse().expect("header"));
        assert!(credentials(&metadata).is_err());
    }

    #[test]
    fn the_bearer_token_is_read_from_the_authorization_header() {
        let mut m = MetadataMap::new();
        assert_eq!(bearer(&m), None);
        m.insert("authorization", "Bearer abc".parse().expect("value"));
        assert_eq!(bearer(&m), Some("abc"));
        m.insert("authorization", "Basic abc".parse().expect("value"));
        assert_eq!(bearer(&m), None);
    }
}
