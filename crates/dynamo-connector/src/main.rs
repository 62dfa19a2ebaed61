//! `dynamo-connector`: administer the credential store, run one request, or serve HTTP.
//!
//! ```text
//! dynamo-connector admin --store PATH client add CLIENT
//! dynamo-connector admin --store PATH service set CLIENT --region R [--endpoint-url URL] [--role-arn ARN]
//! dynamo-connector admin --store PATH credentials set CLIENT        < {"accessKeyId", "secretAccessKey", "sessionToken"?}
//! dynamo-connector admin --store PATH session issue CLIENT [--user U] [--ttl SECONDS]
//! dynamo-connector admin --store PATH rotate-key --new-key-file F
//! dynamo-connector run --store PATH --session TOKEN [--request FILE]
//! dynamo-connector serve --store PATH [--listen 127.0.0.1:PORT] [--flight-listen 127.0.0.1:PORT]
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
    Connector, ConnectorError, Credentials, DynamoService, MasterKey, MasterKeyCipher, SqliteStore,
    TenantResolver,
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
        /// SQLite store file (created if missing).
        #[arg(long, value_name = "PATH")]
        store: PathBuf,
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
    /// Re-encrypt every stored credential with a new master key.
    RotateKey {
        /// File holding the new key (base64 of 32 bytes).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum ClientAction {
    /// Add a client.
    Add { client: String },
}

#[derive(Debug, Subcommand)]
enum ServiceAction {
    /// Configure the client's DynamoDB service.
    Set {
        client: String,
        #[arg(long)]
        region: String,
        #[arg(long)]
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
enum SessionAction {
    /// Issue a session token (printed on standard output).
    Issue {
        client: String,
        #[arg(long)]
        user: Option<String>,
        /// Lifetime in seconds (at least 1).
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(i64).range(1..))]
        ttl: i64,
    },
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

fn connector(store: &Path, key_file: Option<&Path>) -> Result<Connector, ConnectorError> {
    let key = MasterKey::load(key_file)?;
    let store = Arc::new(SqliteStore::open(store)?);
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(MasterKeyCipher(key)),
    );
    Ok(Connector::new(Arc::new(resolver)).with_schema_store(store))
}

fn admin(store: &Path, key_file: Option<&Path>, action: Admin) -> Result<(), ConnectorError> {
    let db = SqliteStore::open(store)?;
    match action {
        Admin::Client {
            action: ClientAction::Add { client },
        } => {
            db.add_client(&client)?;
            eprintln!("client '{client}' added");
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
            db.set_service(
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
            db.set_credentials(&key, &client, &credentials)?;
            eprintln!("DynamoDB credentials of client '{client}' stored (encrypted)");
        }
        Admin::Session {
            action: SessionAction::Issue { client, user, ttl },
        } => {
            let token = db.issue_session(&client, user.as_deref(), ttl)?;
            println!("{}", token.expose());
        }
        Admin::RotateKey { new_key_file } => {
            let old = MasterKey::load(key_file)?;
            let new = MasterKey::load(Some(&new_key_file))?;
            let n = db.rotate_key(&old, &new)?;
            eprintln!("re-encrypted {n} credential(s); use the new key from now on");
        }
    }
    Ok(())
}

async fn run(cli: Cli) -> Result<(), ConnectorError> {
    let key_file = cli.master_key_file.as_deref();
    match cli.command {
        Command::Admin { store, action } => admin(&store, key_file, action),
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
            let response = connector(&store, key_file)?
                .handle(Some(&session), &body)
                .await?;
            println!("{response}");
            Ok(())
        }
        Command::Serve {
            store,
            listen,
            flight_listen,
        } => {
            let connector = Arc::new(connector(&store, key_file)?);
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

#[tokio::main]
async fn main() -> ExitCode {
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
