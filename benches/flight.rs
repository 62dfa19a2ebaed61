//! A large scan's rows to a client: through the connector's Arrow Flight SQL
//! endpoint (a `dynamo-connector serve --flight-listen` process, read by
//! arrow-flight's Flight SQL client, batches counted as they arrive) vs
//! through `dynamo-sql -c … --format csv` (the CLI's fastest text output,
//! read whole), same DynamoDB Local table, same run. Reports each time,
//! their ratio, and the Flight server's peak RSS after each table size (a
//! server that streams holds a few batches, whatever the table's size).
//!
//! `scripts/bench.sh flight [--items N]... [--runs R]`; `--smoke` for CI.

#[path = "support/mod.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use dynamo_connector::{Credentials, DynamoService, MasterKey, SqliteStore};
use futures::TryStreamExt;
use support::{Args, BoxError, built_binary, load_bench_table, local_dynamo_sql, timed};

/// The server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A store with one client reading DynamoDB Local as the bench client does,
/// and a session token for it.
fn store(dir: &std::path::Path, endpoint: &str) -> Result<(String, String), BoxError> {
    let key = MasterKey::generate();
    let key_file = dir.join("master.key");
    std::fs::write(&key_file, key.to_base64().expose())?;
    let store = SqliteStore::open(&dir.join("store.db"))?;
    store.add_client("bench")?;
    store.set_service(
        "bench",
        &DynamoService {
            region: "us-east-1".into(),
            endpoint_url: Some(endpoint.into()),
            role_arn: None,
        },
    )?;
    // DynamoDB Local keeps one database per access key id: the test client's.
    let credentials =
        Credentials::from_json(br#"{"accessKeyId": "test", "secretAccessKey": "local-secret"}"#)?;
    store.set_credentials(&key, "bench", &credentials)?;
    let token = store.issue_session("bench", None, 3600)?;
    Ok((
        key_file.to_string_lossy().into_owned(),
        token.expose().to_string(),
    ))
}

/// Peak resident set size of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}

/// Rows of `sql` through Flight SQL.
async fn flight_rows(uri: &str, token: &str, sql: &str) -> Result<usize, BoxError> {
    let channel = tonic::transport::Endpoint::from_shared(uri.to_string())?
        .connect()
        .await?;
    let mut client = FlightSqlServiceClient::new(channel);
    client.set_token(token.to_string());
    let info = client.execute(sql.to_string(), None).await?;
    let mut rows = 0;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let mut batches = client.do_get(ticket).await?;
        while let Some(batch) = batches.try_next().await? {
            rows += batch.num_rows();
        }
    }
    Ok(rows)
}

/// Rows of `sql` through `dynamo-sql --format csv` (lines after the header).
fn cli_rows(endpoint: &str, sql: &str) -> Result<usize, BoxError> {
    let out = local_dynamo_sql(endpoint)?
        .args(["--format", "csv", "-c", sql])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "dynamo-sql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(out
        .stdout
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        .saturating_sub(1))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[20_000, 100_000], 3, 1_000)?;
    let endpoint = dynamo_testkit::local_endpoint()?;
    let client = dynamo_testkit::local_client().await?;
    let dir = tempfile::tempdir()?;
    let (key_file, token) = store(dir.path(), &endpoint)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = Server(
        Command::new(built_binary("dynamo-connector")?)
            .args(["--master-key-file", &key_file, "serve", "--store"])
            .arg(dir.path().join("store.db"))
            .args(["--flight-listen", &listen])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        if start.elapsed() > Duration::from_secs(20) {
            return Err("the Flight SQL server did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let uri = format!("http://{listen}");
    println!(
        "| items | Flight SQL (median of {0}) | dynamo-sql --format csv (median of {0}) | dynamo-sql ÷ Flight | Flight server peak RSS |\n|---|---|---|---|---|",
        args.runs
    );
    for &n in &args.items {
        let table = load_bench_table(&client, n).await?;
        let sql = format!("SELECT * FROM {table}");
        // Warm-up: DynamoDB Local's JIT and the server's schema sample.
        flight_rows(&uri, &token, &sql).await?;
        cli_rows(&endpoint, &sql)?;
        let flight = timed(args.runs, n, || flight_rows(&uri, &token, &sql)).await?;
        let cli = timed(args.runs, n, || async { cli_rows(&endpoint, &sql) }).await?;
        println!(
            "| {n} | {:.2} s | {:.2} s | {:.2}× | {:.0} MiB |",
            flight.as_secs_f64(),
            cli.as_secs_f64(),
            cli.as_secs_f64() / flight.as_secs_f64(),
            peak_rss_kib(server.0.id())? as f64 / 1024.0
        );
    }
    Ok(())
}
