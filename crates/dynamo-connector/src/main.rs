//! `dynamo-connector`: administer the credential store, run one request, or serve HTTP.
//!
//! ```text
//! dynamo-connector admin --store PATH client add CLIENT
//! dynamo-connector admin --store PATH service set CLIENT --region R [--endpoint-url URL] [--role-arn ARN]
//! dynamo-connector admin --store PATH credentials set CLIENT        < {"accessKeyId", "secretAccessKey", "sessionToken"?}
//! dynamo-connector admin master-key --out FILE
//! dynamo-connector admin --store PATH session issue CLIENT [--user U] [--ttl SECONDS]
//! dynamo-connector admin --store PATH session list [--client C] [--format table|json]
//! dynamo-connector admin --store PATH session revoke ID | --client C
//! dynamo-connector admin --store PATH user set CLIENT USER < password  |  user remove USER
//! dynamo-connector admin --store PATH rotate-key --new-key-file F
//! dynamo-connector admin --store PATH usage [--client C] [--since DAY] [--until DAY] [--format table|json|csv]
//! dynamo-connector admin --store PATH quota set CLIENT --daily-rcu N | quota clear CLIENT
//! dynamo-connector admin --store PATH mirror set CLIENT TABLE PATH [--max-staleness 30s] [--on-stale sync|live|error]
//! dynamo-connector admin --store PATH mirror remove CLIENT TABLE | mirror list CLIENT
//! dynamo-connector run --store PATH --session TOKEN [--request FILE]
//! dynamo-connector serve --store PATH [--listen 127.0.0.1:PORT] [--flight-listen 127.0.0.1:PORT] [--usage-flush-ms MS]
//! ```
//!
//! The master key comes from `DYNAMO_CONNECTOR_MASTER_KEY` (base64 of 32 bytes)
//! or `--master-key-file`. Logs go to stderr (`DYNAMO_CONNECTOR_LOG=debug|info|warn`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use dynamo_connector::{
    Connector, ConnectorError, Credentials, DynamoService, MasterKey, MasterKeyCipher, Metrics,
    MirrorConfig, MirrorStore, Secret, SessionInfo, SqliteStore, SystemClock, TenantResolver,
    UsageFilter, UsageFormat, UsageRecorder, UsageStore, format_usage, utc_time,
};

/// The dynamo.connector entry point: multi-tenant DynamoDB reads and SQL.
#[derive(Debug, Parser)]
#[command(name = "dynamo-connector", version)]
struct Cli {
    /// File holding the master key (base64 of 32 bytes); default: $DYNAMO_CONNECTOR_MASTER_KEY.
    #[arg(long, global = true, value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage clients, services, credentials, sessions and the master key.
    Admin {
        /// SQLite store file (created if missing); every action but
        /// master-key needs it.
        #[arg(long, value_name = "PATH")]
        store: Option<PathBuf>,
        #[command(subcommand)]
        action: Admin,
    },
    /// Run one request (from --request FILE or standard input) and print the JSON response.
    Run {
        /// SQLite store file.
        #[arg(long, value_name = "PATH")]
        store: PathBuf,
        /// Session token.
        #[arg(long, value_name = "TOKEN")]
        session: String,
        /// Request file; standard input when absent.
        #[arg(long, value_name = "FILE")]
        request: Option<PathBuf>,
    },
    /// Serve POST /v1/connectors/dynamo and GET /healthz over HTTP, and/or
    /// Arrow Flight SQL.
    Serve {
        /// SQLite store file.
        #[arg(long, value_name = "PATH")]
        store: PathBuf,
        /// HTTP address (default 127.0.0.1:8080 unless only --flight-listen is given).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Arrow Flight SQL address (gRPC); none when absent.
        #[arg(long, value_name = "ADDR")]
        flight_listen: Option<String>,
        /// Milliseconds between writes of recorded usage to the store
        /// (what is left is written at shutdown).
        #[arg(long, value_name = "MS", default_value_t = 1_000,
              value_parser = clap::value_parser!(u64).range(1..))]
        usage_flush_ms: u64,
        /// Failed authentications one address may have within
        /// --auth-window-secs before its requests are refused (HTTP 429 /
        /// RESOURCE_EXHAUSTED `too_many_attempts`) until the window ends;
        /// 0 turns the limit off.
        #[arg(long, value_name = "N", default_value_t = dynamo_connector::AuthAttempts::DEFAULT_MAX_FAILURES)]
        auth_failures: u32,
        /// The window of --auth-failures, from an address's first failure.
        #[arg(long, value_name = "SECS", default_value_t = 60,
              value_parser = clap::value_parser!(u64).range(1..))]
        auth_window_secs: u64,
        /// Seconds each client's SQL session (its tables listed and
        /// described) is kept between `sql` requests and Flight SQL calls:
        /// the longest a table created, deleted or altered may go unseen.
        /// 0 builds a session per request.
        #[arg(long, value_name = "SECS", default_value_t = dynamo_connector::DEFAULT_SESSION_TTL.as_secs())]
        session_ttl_secs: u64,
    },
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Clients (tenants).
    Client {
        #[command(subcommand)]
        action: ClientAction,
    },
    /// A client's DynamoDB service.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// A client's DynamoDB credentials (read as JSON from standard input, never argv).
    Credentials {
        #[command(subcommand)]
        action: CredentialsAction,
    },
    /// Session tokens.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// Users who log in with a password (Flight SQL's Basic authentication,
    /// as BI tools do) and get a session of their client.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Usage per client, table and UTC day: requests, items read and
    /// returned, read capacity, items written, write capacity, errors by code.
    Usage {
        /// Only this client.
        #[arg(long, value_name = "CLIENT")]
        client: Option<String>,
        /// From this UTC day (YYYY-MM-DD, inclusive).
        #[arg(long, value_name = "DAY", value_parser = parse_day)]
        since: Option<String>,
        /// Up to this UTC day (YYYY-MM-DD, inclusive).
        #[arg(long, value_name = "DAY", value_parser = parse_day)]
        until: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = UsageFormat::Table)]
        format: UsageFormat,
    },
    /// Daily read-capacity quotas.
    Quota {
        #[command(subcommand)]
        action: QuotaAction,
    },
    /// Tables a client's `sql` answers from mirrors (Delta Lake copies
    /// kept up to date by `dynamo-sql mirror follow`).
    Mirror {
        #[command(subcommand)]
        action: MirrorAction,
    },
    /// Write a new random master key (base64 of 32 bytes) to a new file
    /// readable by its owner only; give it as --master-key-file (or its
    /// text as DYNAMO_CONNECTOR_MASTER_KEY). Needs no store.
    MasterKey {
        /// The file to create (an existing file is never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Re-encrypt every stored credential with a new master key.
    RotateKey {
        /// File holding the new key (base64 of 32 bytes).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum QuotaAction {
    /// Refuse the client's requests (quota_exceeded, HTTP 429) once it has
    /// consumed N read capacity units in a UTC day.
    Set {
        client: String,
        #[arg(long, value_name = "N", value_parser = parse_quota)]
        daily_rcu: f64,
    },
    /// Remove the client's quota.
    Clear { client: String },
}

#[derive(Debug, Subcommand)]
enum MirrorAction {
    /// Answer the client's `sql` over TABLE from the mirror at PATH while
    /// it is at most --max-staleness behind.
    Set {
        client: String,
        table: String,
        path: String,
        /// The most the mirror may be behind (`500ms`, `30s`, `5m`, `1h`).
        #[arg(long, value_name = "DURATION", default_value = "30s",
              value_parser = dynamo_mirror::parse_duration)]
        max_staleness: std::time::Duration,
        /// Past that: catch up from the stream (`sync`), read DynamoDB
        /// (`live`) or fail (`error`: mirror_unavailable).
        #[arg(long, value_name = "POLICY", default_value = "sync",
              value_parser = ["sync", "live", "error"])]
        on_stale: String,
    },
    /// Read TABLE live again.
    Remove { client: String, table: String },
    /// The client's mirrored tables.
    List { client: String },
}

/// A `YYYY-MM-DD` day.
fn parse_day(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && digits(0..4)
        && digits(5..7)
        && digits(8..10)
    {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not a day (YYYY-MM-DD)"))
    }
}

/// A positive number of read capacity units.
fn parse_quota(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("'{s}' is not a positive number of read capacity units"))
}

#[derive(Debug, Subcommand)]
enum ClientAction {
    /// Add a client.
    Add { client: String },
    /// Let the client write (INSERT, REPLACE, UPDATE, DELETE through `sql`
    /// and Flight SQL) with `on`, or make it read-only again (`off`, the default).
    Writes {
        client: String,
        #[arg(value_parser = ["on", "off"])]
        allowed: String,
    },
}

#[derive(Debug, Subcommand)]
enum ServiceAction {
    /// Configure the client's DynamoDB service.
    Set {
        client: String,
        #[arg(long)]
        region: String,
        #[arg(long, value_parser = dynamo_datafusion::parse_endpoint_url)]
        endpoint_url: Option<String>,
        #[arg(long)]
        role_arn: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum CredentialsAction {
    /// Store credentials: {"accessKeyId", "secretAccessKey", "sessionToken"?} on standard input.
    Set { client: String },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Set USER's password (first line of standard input, never argv; at
    /// least 12 characters), creating USER for CLIENT if new. Only an
    /// Argon2id hash is stored.
    Set { client: String, user: String },
    /// Remove USER's password (its sessions stay until they expire or are
    /// revoked).
    Remove { user: String },
}

#[derive(Debug, Subcommand)]
enum SessionAction {
    /// Issue a session token (printed on standard output).
    Issue {
        client: String,
        #[arg(long)]
        user: Option<String>,
        /// Lifetime in seconds, from 1 to 31536000 (a year).
        #[arg(long, default_value_t = 3600, value_parser = parse_ttl)]
        ttl: i64,
    },
    /// List the sessions issued (never their tokens): id, client, user,
    /// expiry, and whether each is still live.
    List {
        /// Only this client's.
        #[arg(long, value_name = "CLIENT")]
        client: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Revoke one session (by the start of its id, as `session list` shows
    /// it), or every session of a client.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "client"])))]
    Revoke {
        /// At least 8 characters of the session's id.
        id: Option<String>,
        /// Every session of this client.
        #[arg(long, value_name = "CLIENT")]
        client: Option<String>,
    },
}

/// How `session list` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

/// Longest session lifetime `session issue` grants: a year.
const MAX_TTL_SECS: i64 = 365 * 24 * 3_600;

/// A session lifetime in seconds, with its bounds in the refusal.
fn parse_ttl(s: &str) -> Result<i64, String> {
    s.parse::<i64>()
        .ok()
        .filter(|t| (1..=MAX_TTL_SECS).contains(t))
        .ok_or_else(|| {
            format!("'{s}' is not a lifetime: give whole seconds from 1 to {MAX_TTL_SECS} (a year)")
        })
}

/// Writes log records of this project's crates to stderr.
struct StderrLogger(log::LevelFilter);

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.0
            && (m.target().starts_with("dynamo_connector")
                || m.target().starts_with("dynamo_datafusion"))
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            eprintln!("[{}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

fn init_logging(default: log::LevelFilter) {
    let level = std::env::var("DYNAMO_CONNECTOR_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(default);
    // One logger for the life of the process.
    if log::set_logger(Box::leak(Box::new(StderrLogger(level)))).is_ok() {
        log::set_max_level(level);
    }
}

/// The connector over `store`, recording usage (written every
/// `usage_flush`) and checking quotas.
fn connector(
    store: &Path,
    key_file: Option<&Path>,
    usage_flush: std::time::Duration,
) -> Result<Connector, ConnectorError> {
    let key = MasterKey::load(key_file)?;
    let store = Arc::new(SqliteStore::open(store)?);
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(MasterKeyCipher(key)),
    );
    let usage = UsageRecorder::start(store.clone(), Arc::new(SystemClock), usage_flush);
    Ok(Connector::new(Arc::new(resolver))
        .with_password_login(store.clone())
        .with_schema_store(store.clone())
        .with_mirror_store(store.clone())
        .with_write_access(store)
        .with_usage(usage))
}

async fn admin(
    store: Option<&Path>,
    key_file: Option<&Path>,
    action: Admin,
) -> Result<(), ConnectorError> {
    // Every action but master-key works on the store.
    let db = || {
        let store = store.ok_or_else(|| {
            ConnectorError::invalid(
                "admin needs --store PATH (the SQLite store file) for this action",
            )
        })?;
        SqliteStore::open(store)
    };
    match action {
        Admin::MasterKey { out } => write_master_key(&out)?,
        Admin::Client {
            action: ClientAction::Add { client },
        } => {
            db()?.add_client(&client)?;
            eprintln!(
                "client '{client}' added (read-only; `admin client writes {client} on` lets it write)"
            );
        }
        Admin::Client {
            action: ClientAction::Writes { client, allowed },
        } => {
            let on = allowed == "on";
            db()?.set_write_access(&client, on)?;
            eprintln!(
                "client '{client}' {}",
                if on { "may write" } else { "is read-only" }
            );
        }
        Admin::Service {
            action:
                ServiceAction::Set {
                    client,
                    region,
                    endpoint_url,
                    role_arn,
                },
        } => {
            db()?.set_service(
                &client,
                &DynamoService {
                    region,
                    endpoint_url,
                    role_arn,
                },
            )?;
            eprintln!("DynamoDB service of client '{client}' set");
        }
        Admin::Credentials {
            action: CredentialsAction::Set { client },
        } => {
            let key = MasterKey::load(key_file)?;
            let mut input = zeroize::Zeroizing::new(Vec::new());
            std::io::stdin().read_to_end(&mut input).map_err(|e| {
                ConnectorError::invalid(format!("reading credentials from standard input: {e}"))
            })?;
            let credentials = Credentials::from_json(&input)?;
            db()?.set_credentials(&key, &client, &credentials)?;
            eprintln!("DynamoDB credentials of client '{client}' stored (encrypted)");
        }
        Admin::Session {
            action: SessionAction::Issue { client, user, ttl },
        } => {
            let token = db()?.issue_session(&client, user.as_deref(), ttl)?;
            println!("{}", token.expose());
        }
        Admin::Session {
            action: SessionAction::List { client, format },
        } => print!(
            "{}",
            format_sessions(&db()?.sessions(client.as_deref())?, format)
        ),
        Admin::Session {
            action: SessionAction::Revoke { id, client },
        } => match (id, client) {
            (_, Some(client)) => {
                let n = db()?.revoke_client_sessions(&client)?;
                eprintln!("revoked {n} session(s) of client '{client}'");
            }
            (Some(id), None) => {
                let s = db()?.revoke_session(&id)?;
                eprintln!(
                    "revoked session {} of client '{}'{}",
                    &s.id[..16],
                    s.client_id,
                    s.user.map(|u| format!(" (user '{u}')")).unwrap_or_default()
                );
            }
            (None, None) => {
                return Err(ConnectorError::invalid(
                    "session revoke needs a session id or --client CLIENT",
                ));
            }
        },
        Admin::User {
            action: UserAction::Set { client, user },
        } => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                ConnectorError::invalid(format!("reading the password from standard input: {e}"))
            })?;
            let password = Secret::new(line.trim_end_matches(['\r', '\n']));
            db()?.set_user_password(&client, &user, &password)?;
            eprintln!("password of user '{user}' (client '{client}') set");
        }
        Admin::User {
            action: UserAction::Remove { user },
        } => {
            if db()?.remove_user(&user)? {
                eprintln!("user '{user}' removed");
            } else {
                return Err(ConnectorError::invalid(format!("no user '{user}'")));
            }
        }
        Admin::Usage {
            client,
            since,
            until,
            format,
        } => {
            let rows = db()?.usage(&UsageFilter {
                client_id: client,
                since,
                until,
            })?;
            print!("{}", format_usage(&rows, format));
        }
        Admin::Quota {
            action: QuotaAction::Set { client, daily_rcu },
        } => {
            db()?.set_daily_quota(&client, Some(daily_rcu))?;
            eprintln!("client '{client}': daily quota of {daily_rcu} read capacity units");
        }
        Admin::Quota {
            action: QuotaAction::Clear { client },
        } => {
            db()?.set_daily_quota(&client, None)?;
            eprintln!("client '{client}': no quota");
        }
        Admin::Mirror {
            action:
                MirrorAction::Set {
                    client,
                    table,
                    path,
                    max_staleness,
                    on_stale,
                },
        } => {
            // A mirror that does not open is refused now, not at the first query.
            dynamo_mirror::Mirror::open_for(&path, &table)
                .await
                .map_err(|e| ConnectorError::invalid(e.to_string()))?;
            let config = MirrorConfig {
                table: table.clone(),
                path: path.clone(),
                max_staleness_ms: max_staleness.as_millis() as u64,
                on_stale: on_stale.clone(),
            };
            db()?.set_mirror(&client, &config)?;
            eprintln!(
                "client '{client}': table '{table}' answers from {path} within {} ms (then {on_stale})",
                config.max_staleness_ms
            );
        }
        Admin::Mirror {
            action: MirrorAction::Remove { client, table },
        } => {
            if db()?.remove_mirror(&client, &table)? {
                eprintln!("client '{client}': table '{table}' is read live");
            } else {
                eprintln!("client '{client}': table '{table}' had no mirror");
            }
        }
        Admin::Mirror {
            action: MirrorAction::List { client },
        } => {
            for m in db()?.mirrors(&client)? {
                println!(
                    "{}\t{}\t{} ms\t{}",
                    m.table, m.path, m.max_staleness_ms, m.on_stale
                );
            }
        }
        Admin::RotateKey { new_key_file } => {
            let old = MasterKey::load(key_file)?;
            let new = MasterKey::load(Some(&new_key_file))?;
            let n = db()?.rotate_key(&old, &new)?;
            eprintln!("re-encrypted {n} credential(s); use the new key from now on");
        }
    }
    Ok(())
}

/// Writes a new random master key to `out`, a new file only its owner can
/// read.
fn write_master_key(out: &Path) -> Result<(), ConnectorError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(out).map_err(|e| {
        ConnectorError::invalid(format!(
            "cannot create master key file {}: {e} (an existing file is never overwritten)",
            out.display()
        ))
    })?;
    let key = MasterKey::generate().to_base64();
    writeln!(file, "{}", key.expose()).map_err(|e| {
        ConnectorError::internal(format!("writing master key file {}: {e}", out.display()))
    })?;
    eprintln!(
        "new master key in {} (owner read/write only): pass --master-key-file {}; keep a copy \
         in your secret store, stored credentials cannot be read without it",
        out.display(),
        out.display()
    );
    Ok(())
}

/// `session list` output: no token, only ids (their start is enough to
/// revoke).
fn format_sessions(sessions: &[SessionInfo], format: ListFormat) -> String {
    let expires = |s: &SessionInfo| {
        utc_time(std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.expires_at.max(0) as u64))
    };
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = sessions
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "id": s.id, "clientId": s.client_id, "user": s.user,
                        "expiresAt": expires(s), "live": s.live,
                    })
                })
                .collect();
            format!("{}\n", serde_json::Value::Array(rows))
        }
        ListFormat::Table => {
            let mut out = format!(
                "{:<16}  {:<20}  {:<16}  {:<20}  {}\n",
                "id", "client", "user", "expires", "state"
            );
            for s in sessions {
                out.push_str(&format!(
                    "{:<16}  {:<20}  {:<16}  {:<20}  {}\n",
                    &s.id[..16.min(s.id.len())],
                    s.client_id,
                    s.user.as_deref().unwrap_or("-"),
                    expires(s),
                    if s.live { "live" } else { "expired" }
                ));
            }
            out
        }
    }
}

async fn run(cli: Cli) -> Result<(), ConnectorError> {
    let key_file = cli.master_key_file.as_deref();
    match cli.command {
        Command::Admin { store, action } => admin(store.as_deref(), key_file, action).await,
        Command::Run {
            store,
            session,
            request,
        } => {
            let body = match &request {
                Some(path) => std::fs::read(path).map_err(|e| {
                    ConnectorError::invalid(format!("cannot read {}: {e}", path.display()))
                })?,
                None => {
                    let mut b = Vec::new();
                    std::io::stdin().read_to_end(&mut b).map_err(|e| {
                        ConnectorError::invalid(format!(
                            "reading the request from standard input: {e}"
                        ))
                    })?;
                    b
                }
            };
            let connector = connector(&store, key_file, std::time::Duration::from_secs(60))?;
            let response = connector.handle(Some(&session), &body).await;
            if let Some(usage) = connector.usage() {
                usage.close().await;
            }
            println!("{}", response?);
            Ok(())
        }
        Command::Serve {
            store,
            listen,
            flight_listen,
            usage_flush_ms,
            auth_failures,
            auth_window_secs,
            session_ttl_secs,
        } => {
            let connector = Arc::new(
                connector(
                    &store,
                    key_file,
                    std::time::Duration::from_millis(usage_flush_ms),
                )?
                .with_metrics(Arc::new(Metrics::new()))
                .with_session_ttl(std::time::Duration::from_secs(session_ttl_secs))
                .with_auth_attempts(Arc::new(
                    dynamo_connector::AuthAttempts::new(
                        auth_failures,
                        std::time::Duration::from_secs(auth_window_secs),
                    ),
                )),
            );
            let http = match (listen, &flight_listen) {
                (Some(addr), _) => Some(addr),
                (None, None) => Some("127.0.0.1:8080".to_string()),
                (None, Some(_)) => None,
            };
            // One shutdown signal, seen by both servers.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let until_stopped = move || {
                let mut stopped = stopped.clone();
                async move {
                    let _ = stopped.wait_for(|s| *s).await;
                }
            };
            let mut servers = tokio::task::JoinSet::new();
            if let Some(addr) = http {
                let listener = bind(&addr).await?;
                log::info!("listening on http://{}", local(&listener, &addr));
                let (connector, shutdown) = (Arc::clone(&connector), until_stopped());
                servers.spawn(async move {
                    dynamo_connector::http::serve(connector, listener, shutdown)
                        .await
                        .map_err(|e| ConnectorError::internal(format!("HTTP server: {e}")))
                });
            }
            if let Some(addr) = flight_listen {
                let listener = bind(&addr).await?;
                log::info!("Flight SQL on grpc://{}", local(&listener, &addr));
                let (connector, shutdown) = (Arc::clone(&connector), until_stopped());
                servers.spawn(async move {
                    dynamo_connector::flight::serve(connector, listener, shutdown)
                        .await
                        .map_err(|e| ConnectorError::internal(format!("Flight SQL server: {e}")))
                });
            }
            // The signal, or the first server to fail, stops both; each
            // finishes its in-flight requests.
            let mut outcome = Ok(());
            tokio::select! {
                _ = shutdown_signal() => {}
                Some(joined) = servers.join_next() => outcome = server_outcome(joined),
            }
            let _ = stop.send(true);
            while let Some(joined) = servers.join_next().await {
                if outcome.is_ok() {
                    outcome = server_outcome(joined);
                }
            }
            // Usage recorded and not yet written goes to the store now.
            if let Some(usage) = connector.usage() {
                usage.close().await;
            }
            log::info!("shut down");
            outcome
        }
    }
}

/// What a server task ended with.
fn server_outcome(
    joined: Result<Result<(), ConnectorError>, tokio::task::JoinError>,
) -> Result<(), ConnectorError> {
    joined.map_err(|e| ConnectorError::internal(format!("server task: {e}")))?
}

async fn bind(addr: &str) -> Result<tokio::net::TcpListener, ConnectorError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ConnectorError::internal(format!("cannot listen on {addr}: {e}")))
}

fn local(listener: &tokio::net::TcpListener, asked: &str) -> String {
    listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| asked.to_string())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn main() -> ExitCode {
    // Threads with room for the deepest plan a statement may make
    // (`dynamo_datafusion::statement::MAX_OPERATORS`).
    dynamo_datafusion::statement::run_main(async_main())
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(match cli.command {
        Command::Serve { .. } => log::LevelFilter::Info,
        _ => log::LevelFilter::Warn,
    });
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{}", e.to_json());
            ExitCode::FAILURE
        }
    }
}
