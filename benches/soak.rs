//! Soak: `dynamo-connector serve` (HTTP and Flight SQL) under a mixed load
//! from several tenants for many minutes, with 5 % of DynamoDB's answers
//! throttled or failed by the fault proxy. Every answer is checked against
//! the items written (each tenant has its own data, so an answer from another
//! tenant's table is wrong); the server's resident memory and open file
//! descriptors are sampled every 5 s.
//!
//! Reports requests, errors, wrong answers, p50/p99/max latency per
//! operation, faults injected, RSS at minute 5 (or a sixth of the run) and at
//! the end, and descriptors. Fails on any error or wrong answer, on RSS at
//! the end above 1.2× RSS at minute 5 (runs of 10 minutes or more), or on
//! descriptors that grow.
//!
//! `scripts/soak.sh [--minutes M] [--workers W] [--only OPERATION]...`
//! (default 30 minutes, 8 workers, every operation: `http-query`,
//! `http-scan`, `http-sql`, `flight-sql`); `--smoke` (CI) runs 20 seconds.
//!
//! `--load` (`scripts/load.sh [--seconds S] [--workers W] [--only OP]...`):
//! the same server, tenants and checked operations without faults, 10
//! clients for 60 s by default; prints req/s, p50 and p99 per operation and
//! the `sql` ÷ `query` p50 ratio (the same partition read both ways), and
//! writes `benches/results/load.md`.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::Int64Type;
use dynamo_connector::{Credentials, DynamoService, MasterKey, SqliteStore};
use dynamo_testkit::{FaultConfig, FaultProxy, TableSpec, local_client_as, put_items};
use futures::TryStreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use support::{BoxError, built_binary, write_result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const PARTITIONS: usize = 20;
const OPERATIONS: [&str; 4] = ["http query", "http scan", "http sql", "flight sql"];

struct Settings {
    duration: Duration,
    workers: usize,
    items: usize,
    smoke: bool,
    /// A load test: no faults, no memory checks, a shorter default run.
    load: bool,
    /// `serve --session-ttl-secs` (its default when `None`; 0 builds a SQL
    /// session per request, as before sessions were kept).
    session_ttl: Option<u64>,
    /// The operations run (`--only http-query` …, repeatable; all by default).
    operations: Vec<usize>,
}

fn settings() -> Result<Settings, BoxError> {
    let mut seconds: Option<f64> = None;
    let mut workers: Option<usize> = None;
    let mut load = false;
    let mut session_ttl = None;
    let mut smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
    let mut only = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--minutes" => {
                let m: f64 = args.next().ok_or("--minutes needs a number")?.parse()?;
                seconds = Some(m * 60.0);
            }
            "--seconds" => seconds = Some(args.next().ok_or("--seconds needs a number")?.parse()?),
            "--workers" => workers = Some(args.next().ok_or("--workers needs a number")?.parse()?),
            "--load" => load = true,
            "--session-ttl-secs" => {
                session_ttl = Some(
                    args.next()
                        .ok_or("--session-ttl-secs needs a number")?
                        .parse()?,
                )
            }
            "--smoke" => smoke = true,
            "--only" => {
                let name = args.next().ok_or("--only needs an operation")?;
                let op = OPERATIONS
                    .iter()
                    .position(|o| o.replace(' ', "-") == name)
                    .ok_or(format!(
                        "--only takes one of {}",
                        OPERATIONS.join(", ").replace(' ', "-")
                    ))?;
                only.push(op);
            }
            "--bench" | "--nocapture" => {}
            other => return Err(format!("unknown argument '{other}'").into()),
        }
    }
    let operations = if only.is_empty() {
        (0..OPERATIONS.len()).collect()
    } else {
        only
    };
    let (default_seconds, default_workers) = if load { (60.0, 10) } else { (1_800.0, 8) };
    let (duration, workers, items) = if smoke {
        (Duration::from_secs(if load { 10 } else { 20 }), 4, 200)
    } else {
        (
            Duration::from_secs_f64(seconds.unwrap_or(default_seconds)),
            workers.unwrap_or(default_workers).max(1),
            1_000,
        )
    };
    Ok(Settings {
        duration,
        workers,
        items,
        smoke,
        load,
        session_ttl,
        operations,
    })
}

/// One tenant's data: what each answer must be.
struct Model {
    token: String,
    /// Per partition key: (items, sum of n).
    partitions: Vec<(i64, i64)>,
    /// Items with n < 50.
    below_50: i64,
}

fn n_of(tenant: usize, i: usize) -> i64 {
    ((i * 37 + tenant * 11) % 101) as i64
}

fn pk(p: usize) -> String {
    format!("p{p:02}")
}

/// The server process, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Each tenant's table behind the proxy, its store entry and session.
async fn tenants(
    dir: &std::path::Path,
    proxy: &str,
    items: usize,
) -> Result<(String, Vec<Model>), BoxError> {
    let key = MasterKey::generate();
    let key_file = dir.join("master.key");
    std::fs::write(&key_file, key.to_base64().expose())?;
    let store = SqliteStore::open(&dir.join("store.db"))?;
    let mut models = Vec::new();
    for (t, name) in TENANTS.iter().enumerate() {
        // DynamoDB Local keeps one database per access key: one per tenant.
        let access_key = format!("soak{name}");
        let client = local_client_as(&access_key, "us-east-1").await?;
        let table = "Events";
        let _ = dynamo_testkit::delete_table(&client, table).await;
        TableSpec::new(table, "pk", T::S)
            .sort_key("sk", T::N)
            .create(&client)
            .await?;
        let mut partitions = vec![(0i64, 0i64); PARTITIONS];
        let mut below_50 = 0;
        let rows = (0..items)
            .map(|i| {
                let (p, n) = (i % PARTITIONS, n_of(t, i));
                partitions[p].0 += 1;
                partitions[p].1 += n;
                below_50 += i64::from(n < 50);
                HashMap::from([
                    ("pk".to_string(), AV::S(pk(p))),
                    ("sk".to_string(), AV::N(i.to_string())),
                    ("n".to_string(), AV::N(n.to_string())),
                    ("s".to_string(), AV::S(format!("{name}-{}", i % 7))),
                ])
            })
            .collect();
        put_items(&client, table, rows).await?;
        store.add_client(name)?;
        store.set_service(
            name,
            &DynamoService {
                region: "us-east-1".into(),
                endpoint_url: Some(proxy.to_string()),
                role_arn: None,
            },
        )?;
        let credentials = Credentials::from_json(
            json!({"accessKeyId": access_key, "secretAccessKey": "local-secret"})
                .to_string()
                .as_bytes(),
        )?;
        store.set_credentials(&key, name, &credentials)?;
        let token = store.issue_session(name, None, 24 * 3600)?;
        models.push(Model {
            token: token.expose().to_string(),
            partitions,
            below_50,
        });
    }
    Ok((key_file.to_string_lossy().into_owned(), models))
}

/// One HTTP/1.1 exchange on a new connection: (status, body).
async fn post(addr: &str, token: &str, body: &Value) -> Result<(u16, Value), BoxError> {
    let body = body.to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST /v1/connectors/dynamo HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8(answer)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP head")?;
    let status: u16 = head.split_whitespace().nth(1).ok_or("no status")?.parse()?;
    Ok((status, serde_json::from_str(body)?))
}

fn number(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        Value::Object(m) => m.get("N").and_then(number),
        _ => None,
    }
}

/// What one operation answered, checked: `Err` names the wrong part.
type Checked = Result<(), String>;

async fn http_query(addr: &str, m: &Model, p: usize) -> Result<Checked, BoxError> {
    let request = json!({"inputs": {"tableName": "Events", "operation": "query",
        "keyCondition": "pk = :p", "expressionAttributeValues": {":p": {"S": pk(p)}}}});
    let (status, v) = post(addr, &m.token, &request).await?;
    if status != 200 {
        return Err(format!("HTTP {status}: {v}").into());
    }
    let items = v["items"].as_array().ok_or("no items")?;
    let sum: i64 = items.iter().filter_map(|i| number(&i["n"])).sum();
    let got = (items.len() as i64, sum);
    Ok((got == m.partitions[p]).then_some(()).ok_or(format!(
        "query {}: {got:?}, expected {:?}",
        pk(p),
        m.partitions[p]
    )))
}

async fn http_scan(addr: &str, m: &Model) -> Result<Checked, BoxError> {
    let request = json!({"inputs": {"tableName": "Events", "operation": "scan",
        "filterExpression": "n < :x", "expressionAttributeValues": {":x": {"N": "50"}}},
        "config": {"maxItems": 100000}});
    let (status, v) = post(addr, &m.token, &request).await?;
    if status != 200 {
        return Err(format!("HTTP {status}: {v}").into());
    }
    let got = v["count"].as_i64().ok_or("no count")?;
    Ok((got == m.below_50 && v["complete"] == json!(true))
        .then_some(())
        .ok_or(format!("scan: {got} items, expected {}", m.below_50)))
}

async fn http_sql(addr: &str, m: &Model, p: usize) -> Result<Checked, BoxError> {
    let sql = format!(
        "SELECT count(*) AS c, sum(n) AS s FROM \"Events\" WHERE pk = '{}'",
        pk(p)
    );
    let (status, v) = post(
        addr,
        &m.token,
        &json!({"inputs": {"operation": "sql", "sql": sql}}),
    )
    .await?;
    if status != 200 {
        return Err(format!("HTTP {status}: {v}").into());
    }
    let row = &v["items"][0];
    let got = (
        number(&row["c"]).ok_or("no c")?,
        number(&row["s"]).ok_or("no s")?,
    );
    Ok((got == m.partitions[p]).then_some(()).ok_or(format!(
        "sql {}: {got:?}, expected {:?}",
        pk(p),
        m.partitions[p]
    )))
}

async fn flight_sql(
    client: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    m: &Model,
) -> Result<Checked, BoxError> {
    client.set_token(m.token.clone());
    let info = client
        .execute(
            "SELECT pk, count(*) AS c, CAST(sum(n) AS BIGINT) AS s FROM \"Events\" GROUP BY pk"
                .to_string(),
            None,
        )
        .await?;
    let mut got = vec![(0i64, 0i64); PARTITIONS];
    let mut rows = 0;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let mut batches = client.do_get(ticket).await?;
        while let Some(batch) = batches.try_next().await? {
            let keys = batch.column(0).as_string::<i32>();
            let counts = batch.column(1).as_primitive::<Int64Type>();
            let sums = batch.column(2).as_primitive::<Int64Type>();
            for r in 0..batch.num_rows() {
                let p: usize = keys.value(r)[1..].parse()?;
                *got.get_mut(p).ok_or("unknown partition")? = (counts.value(r), sums.value(r));
                rows += usize::from(!sums.is_null(r));
            }
        }
    }
    Ok((got == m.partitions && rows == PARTITIONS)
        .then_some(())
        .ok_or(format!(
            "flight group by: {got:?}, expected {:?}",
            m.partitions
        )))
}

/// A Flight SQL client of the server at `uri`.
async fn connect_flight(
    uri: &str,
) -> Result<FlightSqlServiceClient<tonic::transport::Channel>, BoxError> {
    let channel = tonic::transport::Endpoint::from_shared(uri.to_string())?
        .connect()
        .await?;
    Ok(FlightSqlServiceClient::new(channel))
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    wrong: Vec<String>,
}

/// VmRSS (KiB) and open descriptors of `pid`.
fn sample(pid: u32) -> Result<(u64, usize), BoxError> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .ok_or("no VmRSS")?
        .parse()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))?.count();
    Ok((rss, fds))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let s = settings()?;
    let endpoint = dynamo_testkit::local_endpoint()?;
    let faults = if s.load {
        FaultConfig::none()
    } else {
        FaultConfig {
            // 5 % of answers: half throttled, half a 500.
            rates: [0.025, 0.025, 0.0, 0.0, 0.0, 0.0],
            seed: 7,
            ..FaultConfig::none()
        }
    };
    let fault_text = if s.load { "no faults" } else { "5 % faults" };
    let proxy = FaultProxy::start(&endpoint, faults).await?;
    let dir = tempfile::tempdir()?;
    let (key_file, models) = tenants(dir.path(), &proxy.endpoint(), s.items).await?;
    let free = || -> Result<String, BoxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Ok(format!("127.0.0.1:{port}"))
    };
    let (http_addr, flight_addr) = (free()?, free()?);
    let server = Server(
        Command::new(built_binary("dynamo-connector")?)
            .args(["--master-key-file", &key_file, "serve", "--store"])
            .arg(dir.path().join("store.db"))
            .args(["--listen", &http_addr, "--flight-listen", &flight_addr])
            .args(
                s.session_ttl
                    .map(|t| vec!["--session-ttl-secs".to_string(), t.to_string()])
                    .unwrap_or_default(),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("DYNAMO_CONNECTOR_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let pid = server.0.id();
    let start = Instant::now();
    while std::net::TcpStream::connect(&flight_addr).is_err()
        || std::net::TcpStream::connect(&http_addr).is_err()
    {
        if start.elapsed() > Duration::from_secs(20) {
            return Err("serve did not start".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{}: {} tenants × {} items, {} workers, {:.0} s, {fault_text}",
        if s.load { "load" } else { "soak" },
        TENANTS.len(),
        s.items,
        s.workers,
        s.duration.as_secs_f64()
    );

    let models = Arc::new(models);
    let tallies: Arc<Vec<Mutex<Tally>>> =
        Arc::new(OPERATIONS.iter().map(|_| Mutex::default()).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..s.workers {
        let (models, tallies, stop) =
            (Arc::clone(&models), Arc::clone(&tallies), Arc::clone(&stop));
        let (http_addr, flight_uri) = (http_addr.clone(), format!("http://{flight_addr}"));
        let operations = s.operations.clone();
        workers.spawn(async move {
            let mut rng = StdRng::seed_from_u64(w as u64);
            let mut flight: Option<FlightSqlServiceClient<_>> = None;
            while !stop.load(Ordering::Relaxed) {
                let (t, op, p) = (
                    rng.random_range(..TENANTS.len()),
                    operations[rng.random_range(..operations.len())],
                    rng.random_range(..PARTITIONS),
                );
                let m = &models[t];
                let began = Instant::now();
                let outcome: Result<Checked, BoxError> = match op {
                    0 => http_query(&http_addr, m, p).await,
                    1 => http_scan(&http_addr, m).await,
                    2 => http_sql(&http_addr, m, p).await,
                    _ => {
                        if flight.is_none() {
                            match connect_flight(&flight_uri).await {
                                Ok(client) => flight = Some(client),
                                Err(e) => {
                                    tallies[op].lock().await.errors.push(e.to_string());
                                    continue;
                                }
                            }
                        }
                        match flight.as_mut() {
                            Some(client) => flight_sql(client, m).await,
                            None => continue,
                        }
                    }
                };
                let took = began.elapsed();
                let mut tally = tallies[op].lock().await;
                tally.latencies.push(took);
                match outcome {
                    Ok(Ok(())) => {}
                    Ok(Err(wrong)) => tally.wrong.push(format!("{}: {wrong}", TENANTS[t])),
                    Err(e) => tally.errors.push(format!("{}: {e}", TENANTS[t])),
                }
            }
        });
    }

    // Memory and descriptors every 5 s; the baseline at minute 5 (or a
    // sixth of a shorter run).
    let baseline_at = s.duration.min(Duration::from_secs(300)).min(s.duration / 6);
    let mut baseline: Option<(u64, usize)> = None;
    let mut samples = Vec::new();
    while start.elapsed() < s.duration {
        tokio::time::sleep(Duration::from_secs(5).min(s.duration / 4)).await;
        let now = sample(pid)?;
        samples.push(now);
        if baseline.is_none() && start.elapsed() >= baseline_at {
            baseline = Some(now);
        }
        if !s.smoke && samples.len() % 12 == 0 {
            eprintln!(
                "  {:>5.0} s: RSS {} MiB, {} descriptors",
                start.elapsed().as_secs_f64(),
                now.0 / 1024,
                now.1
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = workers.join_next().await {
        done?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let end = sample(pid)?;
    let baseline = baseline.unwrap_or(end);
    let counts = proxy.counts();

    let faulted = if s.load {
        format!("no faults ({} DynamoDB requests)", counts.requests)
    } else {
        format!(
            "5 % of DynamoDB's answers throttled or 500 by the fault proxy ({} of {} requests)",
            counts.total_faults(),
            counts.requests
        )
    };
    let mut out = format!(
        "{} of `dynamo-connector serve`{} (HTTP + Flight SQL): {} tenants × {} items, {} workers, \
         {:.0} s, {faulted}.\n\n\
         | operation | requests | req/s | errors | wrong answers | p50 | p99 | max |\n\
         |---|---|---|---|---|---|---|---|\n",
        if s.load { "Load" } else { "Soak" },
        s.session_ttl
            .map(|t| format!(" --session-ttl-secs {t}"))
            .unwrap_or_default(),
        TENANTS.len(),
        s.items,
        s.workers,
        elapsed,
    );
    let (mut errors, mut wrong) = (Vec::new(), Vec::new());
    let mut p50 = [Duration::ZERO; OPERATIONS.len()];
    for (i, (op, tally)) in OPERATIONS.iter().zip(tallies.iter()).enumerate() {
        let mut tally = tally.lock().await;
        if tally.latencies.is_empty() {
            continue;
        }
        tally.latencies.sort();
        p50[i] = percentile(&tally.latencies, 0.5);
        let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
        out.push_str(&format!(
            "| {op} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            tally.latencies.len(),
            tally.latencies.len() as f64 / elapsed,
            tally.errors.len(),
            tally.wrong.len(),
            ms(percentile(&tally.latencies, 0.5)),
            ms(percentile(&tally.latencies, 0.99)),
            ms(tally.latencies.last().copied().unwrap_or_default()),
        ));
        errors.extend(tally.errors.iter().take(3).map(|e| format!("{op}: {e}")));
        wrong.extend(tally.wrong.iter().take(3).map(|e| format!("{op}: {e}")));
    }
    // http sql (2) reads the partition that http query (0) reads.
    if !p50[0].is_zero() && !p50[2].is_zero() {
        out.push_str(&format!(
            "\n`sql` p50 ÷ `query` p50 (the same partition read both ways): {:.2}×.\n",
            p50[2].as_secs_f64() / p50[0].as_secs_f64()
        ));
    }
    let ratio = end.0 as f64 / baseline.0.max(1) as f64;
    let fd_max = samples.iter().map(|s| s.1).max().unwrap_or(end.1);
    out.push_str(&format!(
        "\nServer RSS {} MiB at {:.0} s, {} MiB at the end ({ratio:.2}×); open descriptors \
         {} at {:.0} s, {} at the end (most {fd_max}).\n",
        baseline.0 / 1024,
        baseline_at.as_secs_f64(),
        end.0 / 1024,
        baseline.1,
        baseline_at.as_secs_f64(),
        end.1
    ));
    println!("{out}");
    if !s.smoke {
        write_result(if s.load { "load.md" } else { "soak.md" }, &out)?;
    }
    for line in errors.iter().chain(&wrong) {
        eprintln!("  {line}");
    }
    if !errors.is_empty() || !wrong.is_empty() {
        return Err("errors or wrong answers under load (above)".into());
    }
    if s.load {
        return Ok(());
    }
    if s.duration >= Duration::from_secs(600) && ratio > 1.2 {
        return Err(format!("RSS grew {ratio:.2}× from minute 5 to the end").into());
    }
    if end.1 > baseline.1 + 16 {
        return Err(format!("open descriptors grew from {} to {}", baseline.1, end.1).into());
    }
    Ok(())
}
