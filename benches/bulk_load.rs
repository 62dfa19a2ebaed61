//! Bulk load of a Parquet file into a DynamoDB table: `REPLACE INTO t
//! SELECT * FROM file` (BatchWriteItem of 25, up to 64 requests in flight)
//! and `INSERT INTO t …` (one conditional PutItem per item) against boto3's
//! `batch_writer` (what users write today, in Python, a process), same file,
//! same run:
//!
//! 1. DynamoDB Local (CPU-bound, no latency): items/s, WCU (DynamoDB's
//!    `ConsumedCapacity` of the SQL side), and the boto3 table compared
//!    with the SQL one item by item;
//! 2. a write sink at 0 and 20 ms per request — this binary in `--serve
//!    LATENCY_MS` mode, in its own process: it answers DescribeTable,
//!    DescribeTimeToLive, ListTables, Scan (empty), BatchWriteItem and PutItem after the
//!    latency and counts the items it received, so a load is bounded by
//!    round trips as against the real service.
//!
//! `scripts/bench.sh bulk_load [--items N] [--runs R]` (default 100,000
//! items); `--smoke` for CI. Results in `benches/results/bulk-load.md`.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ScalarAttributeType as T;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::TableOptions;
use dynamo_datafusion::write::WriteStats;
use dynamo_testkit::TableSpec;
use serde_json::{Value, json};
use support::{Args, BoxError, COUNTRIES, median, pk, write_result};

/// The columns, as the SQL side declares the table.
const COLUMNS: &str = "pk VARCHAR NOT NULL, sk BIGINT NOT NULL, country VARCHAR, score BIGINT, \
                       amount DECIMAL(38, 2), active BOOLEAN, note VARCHAR";

/// `n` rows of ~200-byte items, as the other benches' items.
fn rows(n: usize) -> Result<RecordBatch, BoxError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("pk", DataType::Utf8, false),
        Field::new("sk", DataType::Int64, false),
        Field::new("country", DataType::Utf8, true),
        Field::new("score", DataType::Int64, true),
        Field::new("amount", DataType::Decimal128(38, 2), true),
        Field::new("active", DataType::Boolean, true),
        Field::new("note", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from((0..n).map(pk).collect::<Vec<_>>())),
        Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
        Arc::new(StringArray::from(
            (0..n)
                .map(|i| COUNTRIES[(i * 7) % COUNTRIES.len()])
                .collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            (0..n)
                .map(|i| ((i * 7919) % 1000) as i64)
                .collect::<Vec<_>>(),
        )),
        Arc::new(
            Decimal128Array::from(
                (0..n)
                    .map(|i| ((i * 31) % 10_000) as i128)
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(38, 2)?,
        ),
        Arc::new(BooleanArray::from(
            (0..n).map(|i| i.is_multiple_of(3)).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            (0..n).map(|i| format!("{i:0>120}")).collect::<Vec<_>>(),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Writes the rows to one Parquet file in `dir`.
async fn parquet_file(dir: &Path, n: usize) -> Result<PathBuf, BoxError> {
    let ctx = SessionContext::new();
    let df = ctx.read_batch(rows(n)?)?;
    let path = dir.join("load.parquet");
    df.write_parquet(
        path.to_str().ok_or("path")?,
        DataFrameWriteOptions::new().with_single_file_output(true),
        None,
    )
    .await?;
    Ok(path)
}

/// Runs `statement` (a REPLACE or INSERT from the file into `table`) in a
/// `dynamo_session` over `client`: (seconds, items written, WCU consumed).
async fn sql_load(
    client: &Client,
    table: &str,
    file: &Path,
    statement: &str,
) -> Result<(f64, u64, f64), BoxError> {
    let ctx = dynamo_datafusion::dynamo_session(
        client.clone(),
        SessionConfig::new(),
        TableOptions::default(),
    )
    .await?;
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE src STORED AS PARQUET LOCATION '{}'",
        file.display()
    ))
    .await?;
    ctx.sql(&format!(
        "CREATE EXTERNAL TABLE t ({COLUMNS}) STORED AS DYNAMODB LOCATION '{table}'"
    ))
    .await?;
    let start = Instant::now();
    let plan = ctx
        .sql(&format!("{statement} t SELECT * FROM src"))
        .await?
        .create_physical_plan()
        .await?;
    let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
    let seconds = start.elapsed().as_secs_f64();
    let stats = WriteStats::of_plan(&plan);
    let count = dynamo_datafusion::write::written_count(&batches).ok_or("no count")?;
    if count != stats.items_written as u64 {
        return Err(format!("count {count} but {} items written", stats.items_written).into());
    }
    Ok((seconds, count, stats.consumed_wcu))
}

/// boto3's batch_writer, as a process: (seconds, items written).
fn boto3_load(endpoint: &str, table: &str, file: &Path) -> Result<(f64, u64), BoxError> {
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/boto3_load.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--endpoint-url", endpoint, "--table", table, "--parquet"])
        .arg(file)
        // The test clients' identity: DynamoDB Local keeps a database per access key.
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", dynamo_testkit::LOCAL_SECRET)
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "boto3 load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok((
        v["seconds"].as_f64().ok_or("seconds")?,
        v["items"].as_u64().ok_or("items")?,
    ))
}

/// Every item of `table`, sorted by key, as DynamoDB JSON text.
async fn items_of(client: &Client, table: &str) -> Result<Vec<String>, BoxError> {
    let mut out = Vec::new();
    let mut pages = client
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item?;
        out.push(Value::Object(dynamo_datafusion::dynamo_json::item_to_json(&item)).to_string());
    }
    out.sort();
    Ok(out)
}

async fn new_table(client: &Client, name: &str) -> Result<String, BoxError> {
    let table = dynamo_testkit::unique_name(name);
    TableSpec::new(&table, "pk", T::S)
        .sort_key("sk", T::N)
        .create(client)
        .await?;
    Ok(table)
}

/// The write sink: items received, and the latency of every answer.
struct Sink {
    latency: Duration,
    items: AtomicU64,
}

const SINK_TABLE: &str = "load";

async fn answer(sink: Arc<Sink>, headers: HeaderMap, body: Bytes) -> Response {
    if !sink.latency.is_zero() {
        tokio::time::sleep(sink.latency).await;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let operation = target.rsplit('.').next();
    let named = request["TableName"].as_str();
    if matches!(operation, Some("DescribeTable" | "DescribeTimeToLive"))
        && named != Some(SINK_TABLE)
    {
        let missing = json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            "message": "Requested resource not found"
        });
        return (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
            missing.to_string(),
        )
            .into_response();
    }
    let answer = match operation {
        Some("DescribeTable") => json!({"Table": {
            "TableName": SINK_TABLE,
            "TableStatus": "ACTIVE",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
            "ItemCount": 0, "TableSizeBytes": 0,
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"}
        }}),
        Some("DescribeTimeToLive") => {
            json!({"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}})
        }
        Some("Scan") => json!({"Items": [], "Count": 0, "ScannedCount": 0}),
        Some("ListTables") => json!({"TableNames": [SINK_TABLE]}),
        Some("BatchWriteItem") => {
            let n = request["RequestItems"][SINK_TABLE]
                .as_array()
                .map_or(0, Vec::len);
            sink.items.fetch_add(n as u64, Ordering::Relaxed);
            json!({"UnprocessedItems": {}, "ConsumedCapacity": [{"TableName": SINK_TABLE, "CapacityUnits": n as f64}]})
        }
        Some("PutItem") => {
            sink.items.fetch_add(1, Ordering::Relaxed);
            json!({"ConsumedCapacity": {"TableName": SINK_TABLE, "CapacityUnits": 1.0}})
        }
        // The bench's own question: items received since the last time asked.
        Some("SinkCount") => json!({"Count": sink.items.swap(0, Ordering::Relaxed)}),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!("the sink does not answer {target}"),
            )
                .into_response();
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
        answer.to_string(),
    )
        .into_response()
}

/// `--serve LATENCY_MS`: serve on a free loopback port, print it, run until killed.
async fn serve(latency_ms: u64) -> Result<(), BoxError> {
    let sink = Arc::new(Sink {
        latency: Duration::from_millis(latency_ms),
        items: AtomicU64::new(0),
    });
    let app = Router::new()
        .fallback(move |headers: HeaderMap, body: Bytes| answer(Arc::clone(&sink), headers, body));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

/// A sink child process, killed on drop.
struct SinkProcess {
    child: Child,
    endpoint: String,
}

impl SinkProcess {
    fn start(latency_ms: u64) -> Result<Self, BoxError> {
        let (child, endpoint) = support::serving_child(&["--serve", &latency_ms.to_string()])?;
        Ok(Self { child, endpoint })
    }

    async fn client(&self) -> Client {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new("sink", "sink", None, None, "static"))
            .load()
            .await;
        Client::new(&config)
    }

    /// Items the sink received since asked last.
    async fn received(&self) -> Result<u64, BoxError> {
        let response = reqwest_free_post(&self.endpoint, "DynamoDB_20120810.SinkCount").await?;
        Ok(response["Count"].as_u64().ok_or("count")?)
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One POST with an `X-Amz-Target`, over a plain TCP connection.
async fn reqwest_free_post(endpoint: &str, target: &str) -> Result<Value, BoxError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: {target}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    let body = text.split("\r\n\r\n").nth(1).ok_or("no body")?;
    Ok(serde_json::from_str(body)?)
}

/// One row of the results table.
struct Row {
    target: String,
    writer: &'static str,
    seconds: f64,
    wcu: Option<f64>,
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--serve") {
        return serve(argv.get(2).ok_or("latency")?.parse()?).await;
    }
    let args = Args::parse(&[100_000], 1, 2_000)?;
    let n = args.items[0];
    let dir = tempfile::tempdir()?;
    let file = parquet_file(dir.path(), n).await?;
    let mut rows: Vec<Row> = Vec::new();

    // 1. DynamoDB Local.
    let endpoint = dynamo_testkit::local_endpoint()?;
    let client = dynamo_testkit::local_client().await?;
    for _ in 0..args.runs {
        let replaced = new_table(&client, "load_replace").await?;
        let (seconds, _, wcu) = sql_load(&client, &replaced, &file, "REPLACE INTO").await?;
        rows.push(Row {
            target: "DynamoDB Local".into(),
            writer: "REPLACE INTO (BatchWriteItem)",
            seconds,
            wcu: Some(wcu),
        });
        let inserted = new_table(&client, "load_insert").await?;
        let (seconds, _, wcu) = sql_load(&client, &inserted, &file, "INSERT INTO").await?;
        rows.push(Row {
            target: "DynamoDB Local".into(),
            writer: "INSERT INTO (conditional PutItem)",
            seconds,
            wcu: Some(wcu),
        });
        let boto = new_table(&client, "load_boto3").await?;
        let (seconds, _) = boto3_load(&endpoint, &boto, &file)?;
        rows.push(Row {
            target: "DynamoDB Local".into(),
            writer: "boto3 batch_writer",
            seconds,
            wcu: None,
        });
        // The three tables hold the same items.
        let (a, b, c) = (
            items_of(&client, &replaced).await?,
            items_of(&client, &inserted).await?,
            items_of(&client, &boto).await?,
        );
        if a.len() != n || a != b || a != c {
            return Err(format!(
                "the loads differ: {} / {} / {} items, equal: {} {}",
                a.len(),
                b.len(),
                c.len(),
                a == b,
                a == c
            )
            .into());
        }
        for table in [replaced, inserted, boto] {
            dynamo_testkit::delete_table(&client, &table).await?;
        }
    }

    // 2. The write sink at 0 and 20 ms per request.
    let latencies: &[u64] = if args.smoke { &[0, 5] } else { &[0, 20] };
    for &latency in latencies {
        let sink = SinkProcess::start(latency)?;
        let sink_client = sink.client().await;
        let target = format!("sink, {latency} ms per request");
        for _ in 0..args.runs {
            for (writer, statement) in [
                ("REPLACE INTO (BatchWriteItem)", "REPLACE INTO"),
                ("INSERT INTO (conditional PutItem)", "INSERT INTO"),
            ] {
                let (seconds, items, wcu) =
                    sql_load(&sink_client, SINK_TABLE, &file, statement).await?;
                let received = sink.received().await?;
                if received != n as u64 || items != n as u64 {
                    return Err(
                        format!("{writer}: {items} written, {received} received of {n}").into(),
                    );
                }
                rows.push(Row {
                    target: target.clone(),
                    writer,
                    seconds,
                    wcu: Some(wcu),
                });
            }
            let (seconds, _) = boto3_load(&sink.endpoint, SINK_TABLE, &file)?;
            let received = sink.received().await?;
            if received != n as u64 {
                return Err(format!("boto3: {received} received of {n}").into());
            }
            rows.push(Row {
                target: target.clone(),
                writer: "boto3 batch_writer",
                seconds,
                wcu: None,
            });
        }
    }

    // Medians per (target, writer), and each SQL writer against boto3 in the same target.
    let mut table = format!(
        "Bulk load of {n} items (~200 bytes, 7 attributes) from one Parquet file; median of {} run(s); \
         2 cores, debug build.\n\n| target | writer | items/s | time | WCU (consumed) | time ÷ boto3 |\n|---|---|---|---|---|---|\n",
        args.runs
    );
    let mut keys: Vec<(String, &'static str)> = Vec::new();
    for r in &rows {
        if !keys.contains(&(r.target.clone(), r.writer)) {
            keys.push((r.target.clone(), r.writer));
        }
    }
    let time_of = |target: &str, writer: &str| {
        median(
            rows.iter()
                .filter(|r| r.target == target && r.writer == writer)
                .map(|r| Duration::from_secs_f64(r.seconds))
                .collect(),
        )
        .as_secs_f64()
    };
    for (target, writer) in &keys {
        let seconds = time_of(target, writer);
        let boto = time_of(target, "boto3 batch_writer");
        let wcu = rows
            .iter()
            .find(|r| &r.target == target && r.writer == *writer)
            .and_then(|r| r.wcu)
            .map_or("— (not reported by batch_writer)".to_string(), |w| {
                format!("{w:.0}")
            });
        table += &format!(
            "| {target} | {writer} | {:.0} | {seconds:.2} s | {wcu} | {:.2}× |\n",
            n as f64 / seconds,
            seconds / boto
        );
    }
    println!("{table}");
    if !args.smoke {
        write_result("bulk-load.md", &table)?;
    }
    Ok(())
}
