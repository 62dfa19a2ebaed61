//! The client-side ceiling, measured against a replay server that answers
//! DescribeTable and Scan from memory (optionally after a fixed latency), so
//! DynamoDB Local is not the bottleneck:
//!
//! 1. raw SDK paginator vs `SELECT count(*)` / `SELECT *` through the provider (ratio);
//! 2. parallel scan with 1, 2, 4, 8 segments at 5 ms per request (speed-up);
//! 3. peak RSS of a process aggregating 100k vs 1M items (ratio: streaming);
//! 4. (`latency`) a 1M-item `SELECT count(*)` at 0, 20, 100 and 300 ms per
//!    request, default settings vs one segment per partition: time ÷ the
//!    0 ms time, items/s, requests in flight reached, peak RSS;
//!    (`sweep`) the same read, default settings against every hand-tuned
//!    configuration of segments × `max_concurrency` × initial concurrency
//!    at each latency: the best one, and default ÷ best;
//! 5. (`fanout`) at 100 ms per request, a Query fan-out (`pk IN` 200
//!    values) and a BatchGetItem of 1,000 keys: time ÷ (latency × the
//!    fewest round trips);
//! 6. (`cluster`) a grouped aggregate over 1M items at 0, 20 and 100 ms
//!    per request, on a local Ballista cluster (`dynamo-ballista`
//!    processes) of 1 and of 2 executors, and in one process: time, and
//!    2 executors ÷ 1;
//! 7. (`joins`) a join of 100 partition keys (a `VALUES` list) with the
//!    table at 0, 10 and 20 ms per request: the join's keys read by key
//!    (one Query each) vs the planned Scan — requests, items, time, and
//!    planned ÷ by key.
//!
//! The server's latency per request is the first segment of the endpoint's
//! path (`http://127.0.0.1:PORT/100`), so one server (and its page cache)
//! serves every latency. It answers DescribeTable, Scan, Query (on the
//! partition key) and BatchGetItem.
//!
//! The server is this binary in `--serve` mode, in its own process, so its page
//! cache never counts towards the client's memory. Pages are DynamoDB's wire
//! format (`Items`, `Count`, `ScannedCount`, `LastEvaluatedKey`,
//! `ConsumedCapacity`), ~1 MB each, built from the same item generator as the
//! other benches; segment `s` of `t` holds the items with index ≡ s (mod t).
//!
//! `cargo bench --bench replay` (release) or `scripts/bench.sh replay`; `--smoke` for CI;
//! `--only latency` / `--only sweep` / `--only fanout` / `--only cluster` / `--only joins` for one part (the
//! cluster part needs the `dynamo-ballista` binary built beside it).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::Client;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::{DynamoExec, DynamoTableProvider};
use serde_json::{Value, json};
use support::{Args, BoxError, COUNTRIES, built_binary, median, pk, timed};

const TABLE: &str = "replay";
/// Bytes an item counts for, in the table's size and in the page limit
/// (DynamoDB counts its own item size for both, not the JSON's).
const ITEM_BYTES: usize = 250;
/// Items per page: DynamoDB's 1 MiB page limit, in those bytes.
const PAGE_ITEMS: usize = (1 << 20) / ITEM_BYTES;

fn item_json(i: usize) -> String {
    format!(
        r#"{{"pk":{{"S":"{}"}},"sk":{{"N":"{i}"}},"country":{{"S":"{}"}},"score":{{"N":"{}"}},"amount":{{"N":"{}.{:02}"}},"active":{{"BOOL":{}}},"note":{{"S":"{i:0>120}"}}}}"#,
        pk(i),
        COUNTRIES[(i * 7) % COUNTRIES.len()],
        (i * 7919) % 1000,
        (i * 31) % 100,
        i % 100,
        i.is_multiple_of(3)
    )
}

/// (segment, total segments, first item index, limit).
type PageKey = (usize, usize, usize, usize);

struct Server {
    items: usize,
    latency: Duration,
    /// Rendered page bodies.
    pages: Mutex<HashMap<PageKey, Arc<String>>>,
}

impl Server {
    fn describe(&self) -> String {
        json!({"Table": {
            "TableName": TABLE, "TableStatus": "ACTIVE",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "N"}],
            "ItemCount": self.items, "TableSizeBytes": self.items * ITEM_BYTES
        }})
        .to_string()
    }

    fn scan(&self, req: &Value) -> Arc<String> {
        let total = req["TotalSegments"].as_u64().unwrap_or(1).max(1) as usize;
        let segment = req["Segment"].as_u64().unwrap_or(0) as usize;
        let limit = req["Limit"]
            .as_u64()
            .map(|l| l as usize)
            .unwrap_or(PAGE_ITEMS)
            .min(PAGE_ITEMS);
        // Resume after the item the last page ended with.
        let start = req["ExclusiveStartKey"]["sk"]["N"]
            .as_str()
            .and_then(|s| s.parse::<usize>().ok())
            .map(|i| i + total)
            .unwrap_or(segment);
        let key = (segment, total, start, limit);
        if let Some(p) = self
            .pages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Arc::clone(p);
        }
        let indices: Vec<usize> = (start..self.items).step_by(total).take(limit).collect();
        let mut body = String::with_capacity(indices.len() * 260 + 200);
        body.push_str(r#"{"Items":["#);
        for (n, i) in indices.iter().enumerate() {
            if n > 0 {
                body.push(',');
            }
            body.push_str(&item_json(*i));
        }
        body.push_str(&format!(
            r#"],"Count":{0},"ScannedCount":{0},"ConsumedCapacity":{{"TableName":"{TABLE}","CapacityUnits":{1}}}"#,
            indices.len(),
            (indices.len() * ITEM_BYTES).div_ceil(4096) as f64 / 2.0
        ));
        if let Some(last) = indices.last().filter(|l| *l + total < self.items) {
            body.push_str(&format!(
                r#","LastEvaluatedKey":{{"pk":{{"S":"{}"}},"sk":{{"N":"{last}"}}}}"#,
                pk(*last)
            ));
        }
        body.push('}');
        let body = Arc::new(body);
        self.pages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, Arc::clone(&body));
        body
    }
}

impl Server {
    /// A Query on the partition key: the value of its one `S` placeholder.
    fn query(&self, req: &Value) -> Arc<String> {
        let key = req["ExpressionAttributeValues"]
            .as_object()
            .and_then(|values| values.values().find_map(|v| v["S"].as_str()))
            .unwrap_or_default();
        let items: Vec<usize> = key
            .strip_prefix("user#")
            .and_then(|n| n.parse::<usize>().ok())
            .map(|p| (p * 100..(p * 100 + 100).min(self.items)).collect())
            .unwrap_or_default();
        Arc::new(query_answer(&items))
    }

    /// BatchGetItem: every key that names an item (`sk` is the item's index).
    fn batch_get(&self, req: &Value) -> Arc<String> {
        let keys = req["RequestItems"][TABLE]["Keys"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let found: Vec<usize> = keys
            .iter()
            .filter_map(|k| {
                let i = k["sk"]["N"].as_str()?.parse::<usize>().ok()?;
                (i < self.items && k["pk"]["S"].as_str() == Some(pk(i).as_str())).then_some(i)
            })
            .collect();
        let items: Vec<String> = found.iter().map(|i| item_json(*i)).collect();
        Arc::new(format!(
            r#"{{"Responses":{{"{TABLE}":[{}]}},"UnprocessedKeys":{{}},"ConsumedCapacity":[{{"TableName":"{TABLE}","CapacityUnits":{}}}]}}"#,
            items.join(","),
            keys.len() as f64 / 2.0
        ))
    }
}

/// A Query answer of `items` (one page).
fn query_answer(items: &[usize]) -> String {
    let body: Vec<String> = items.iter().map(|i| item_json(*i)).collect();
    format!(
        r#"{{"Items":[{}],"Count":{1},"ScannedCount":{1},"ConsumedCapacity":{{"TableName":"{TABLE}","CapacityUnits":{2}}}}}"#,
        body.join(","),
        items.len(),
        (items.len() * ITEM_BYTES).div_ceil(4096) as f64 / 2.0
    )
}

async fn handle(server: Arc<Server>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    // The endpoint's path sets the latency of this client's requests.
    let latency = uri
        .path()
        .trim_matches('/')
        .parse::<u64>()
        .map(Duration::from_millis)
        .unwrap_or(server.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let body = match target.rsplit('.').next() {
        Some("DescribeTable") => Arc::new(server.describe()),
        Some("Scan") => server.scan(&req),
        Some("Query") => server.query(&req),
        Some("BatchGetItem") => server.batch_get(&req),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!("replay server does not answer {target}"),
            )
                .into_response();
        }
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
        body.as_str().to_owned(),
    )
        .into_response()
}

/// `--serve ITEMS LATENCY_MS`: serve on a free loopback port, print it, run until killed.
async fn serve(items: usize, latency_ms: u64) -> Result<(), BoxError> {
    let server = Arc::new(Server {
        items,
        latency: Duration::from_millis(latency_ms),
        pages: Mutex::new(HashMap::new()),
    });
    let handler = move |uri: Uri, headers: HeaderMap, body: Bytes| {
        handle(Arc::clone(&server), uri, headers, body)
    };
    // Every path: the SDK posts to the endpoint's path (`/100/`).
    let app = Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}

/// A replay server child process, killed on drop.
struct Replay {
    child: Child,
    endpoint: String,
}

impl Replay {
    fn start(items: usize, latency_ms: u64) -> Result<Self, BoxError> {
        let (child, endpoint) =
            support::serving_child(&["--serve", &items.to_string(), &latency_ms.to_string()])?;
        Ok(Self { child, endpoint })
    }

    async fn client(&self) -> Client {
        client_for(&self.endpoint).await
    }
}

async fn client_for(endpoint: &str) -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("replay", "replay", None, None, "static"))
        .load()
        .await;
    Client::new(&config)
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn raw_sdk(client: &Client, segments: usize) -> Result<usize, BoxError> {
    let reads = (0..segments).map(|s| {
        let client = client.clone();
        async move {
            let mut req = client.scan().table_name(TABLE);
            if segments > 1 {
                req = req.segment(s as i32).total_segments(segments as i32);
            }
            let mut pages = req.into_paginator().send();
            let mut n = 0;
            while let Some(p) = pages.next().await {
                n += p?.items().len();
            }
            Ok::<usize, BoxError>(n)
        }
    });
    Ok(futures::future::try_join_all(reads)
        .await?
        .into_iter()
        .sum())
}

async fn provider_session(client: &Client, segments: u32) -> Result<SessionContext, BoxError> {
    let provider = DynamoTableProvider::builder(client.clone(), TABLE)
        .segments(segments)
        .build()
        .await?;
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(segments.max(1) as usize),
    );
    ctx.register_table("t", Arc::new(provider))?;
    Ok(ctx)
}

/// Rows the query produced, or the count it computed.
async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<usize, BoxError> {
    let batches = ctx.sql(sql).await?.collect().await?;
    if sql.contains("count(*)") {
        use datafusion::arrow::array::AsArray;
        let b = batches.first().ok_or("no result")?;
        return Ok(b
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0) as usize);
    }
    Ok(batches.iter().map(|b| b.num_rows()).sum())
}

/// Peak resident set size of this process, in KiB (Linux).
fn peak_rss_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM")?;
    Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
}

/// The most requests the plan's DynamoDB scan had in flight.
fn in_flight_reached(plan: &Arc<dyn ExecutionPlan>) -> usize {
    find_exec(plan)
        .and_then(|scan| scan.metrics())
        .and_then(|m| m.sum_by_name("max_in_flight"))
        .map(|v| v.as_usize())
        .unwrap_or(0)
}

/// Requests in flight of the `wide` mode.
const WIDE: usize = 256;

/// A session over the replay table: `default` settings, `wide` (at most
/// [`WIDE`] requests in flight), or `old`: one segment per partition, each
/// partition reading its segment page after page (how reads went before
/// segments became units of I/O).
async fn latency_session(client: &Client, mode: &str) -> Result<SessionContext, BoxError> {
    let config = SessionConfig::new();
    let mut builder = DynamoTableProvider::builder(client.clone(), TABLE);
    match mode {
        "old" => builder = builder.segments(config.target_partitions() as u32),
        "wide" => builder = builder.max_concurrency(WIDE),
        "default" => {}
        // A hand-tuned configuration: `segments=S,max=M,initial=I`.
        tuned => {
            for setting in tuned.split(',') {
                let (key, value) = setting
                    .split_once('=')
                    .ok_or(format!("'{setting}' is not key=value"))?;
                let n: usize = value.parse()?;
                builder = match key {
                    "segments" => builder.segments(n as u32),
                    "max" => builder.max_concurrency(n),
                    "initial" => builder.initial_concurrency(n),
                    other => return Err(format!("no setting '{other}'").into()),
                };
            }
        }
    }
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table("t", Arc::new(builder.build().await?))?;
    Ok(ctx)
}

/// `--latency ENDPOINT ITEMS MODE RUNS`: `SELECT count(*)` RUNS times in
/// this process; prints the median seconds, the requests in flight reached
/// and the peak RSS in KiB.
async fn latency_child(
    endpoint: &str,
    items: usize,
    mode: &str,
    runs: usize,
) -> Result<(), BoxError> {
    let client = client_for(endpoint).await;
    let ctx = latency_session(&client, mode).await?;
    let (mut times, mut reached) = (Vec::new(), 0);
    for _ in 0..runs {
        let start = Instant::now();
        let plan = ctx
            .sql("SELECT count(*) FROM t")
            .await?
            .create_physical_plan()
            .await?;
        let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
        times.push(start.elapsed());
        use datafusion::arrow::array::AsArray;
        let n = batches
            .first()
            .ok_or("no result")?
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
            .value(0) as usize;
        if n != items {
            return Err(format!("counted {n} items, expected {items}").into());
        }
        reached = reached.max(in_flight_reached(&plan));
    }
    println!(
        "{} {reached} {}",
        median(times).as_secs_f64(),
        peak_rss_kib()?
    );
    Ok(())
}

/// One `--latency` child's figures.
struct LatencyRun {
    secs: f64,
    in_flight: usize,
    rss_kib: u64,
}

fn latency_run(
    endpoint: &str,
    items: usize,
    mode: &str,
    runs: usize,
) -> Result<LatencyRun, BoxError> {
    let out = Command::new(std::env::current_exe()?)
        .args([
            "--latency",
            endpoint,
            &items.to_string(),
            mode,
            &runs.to_string(),
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "latency child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    let mut parts = text.split_whitespace();
    Ok(LatencyRun {
        secs: parts.next().ok_or("no time")?.parse()?,
        in_flight: parts.next().ok_or("no in-flight")?.parse()?,
        rss_kib: parts.next().ok_or("no rss")?.parse()?,
    })
}

/// 4. A full scan at each latency: default settings vs one segment per partition.
fn latency_table(items: usize, latencies: &[u64], runs: usize) -> Result<(), BoxError> {
    let replay = Replay::start(items, 0)?;
    println!(
        "\n#### `SELECT count(*)` of {items} items at a fixed latency per request (default settings: \
         median of {runs} runs, each in its own process; one segment per partition: 1 run)\n"
    );
    println!(
        "| latency | default: time | ÷ 0 ms | items/s | in flight reached | peak RSS | \
         max_concurrency {WIDE}: time | ÷ 0 ms | in flight | peak RSS | \
         one segment per partition: time | ÷ 0 ms |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let (mut base_new, mut base_wide, mut base_old) = (None, None, None);
    for &ms in latencies {
        let endpoint = format!("{}/{ms}", replay.endpoint);
        let new = latency_run(&endpoint, items, "default", runs)?;
        let wide = latency_run(&endpoint, items, "wide", runs)?;
        let old = latency_run(&endpoint, items, "old", 1)?;
        let b_new = *base_new.get_or_insert(new.secs);
        let b_wide = *base_wide.get_or_insert(wide.secs);
        let b_old = *base_old.get_or_insert(old.secs);
        println!(
            "| {ms} ms | {:.2} s | {:.2}× | {:.0} | {} | {:.0} MiB | {:.2} s | {:.2}× | {} | {:.0} MiB | {:.2} s | {:.2}× |",
            new.secs,
            new.secs / b_new,
            items as f64 / new.secs,
            new.in_flight,
            new.rss_kib as f64 / 1024.0,
            wide.secs,
            wide.secs / b_wide,
            wide.in_flight,
            wide.rss_kib as f64 / 1024.0,
            old.secs,
            old.secs / b_old,
        );
    }
    Ok(())
}

/// The hand-tuned configurations of the sweep: segments × most requests in
/// flight × requests in flight at the start.
fn sweep_configs(segments: u64) -> Vec<String> {
    let mut configs = Vec::new();
    for s in [segments / 2, segments, segments * 2] {
        for max in [64, 256, 512] {
            for initial in [16, max] {
                configs.push(format!("segments={s},max={max},initial={initial}"));
            }
        }
    }
    configs
}

/// 4b. The default settings against every hand-tuned configuration of the
/// sweep at each latency: the best one's time, and default ÷ best.
fn sweep_table(items: usize, latencies: &[u64], runs: usize) -> Result<(), BoxError> {
    let replay = Replay::start(items, 0)?;
    // One segment per 1 MB page of the table's size, as the provider chooses.
    let auto_segments = ((items * ITEM_BYTES) as u64).div_ceil(1 << 20);
    let configs = sweep_configs(auto_segments);
    println!(
        "\n#### Defaults vs hand tuning: `SELECT count(*)` of {items} items ({auto_segments} \
         segments by default), median of {runs} runs each in its own process\n"
    );
    let mut summary = vec![
        "| latency | default: time | in flight reached | peak RSS | best hand-tuned | its time | in flight | peak RSS | default ÷ best |".to_string(),
        "|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let mut sweep = vec![format!(
        "| configuration | {} |",
        latencies
            .iter()
            .map(|ms| format!("{ms} ms"))
            .collect::<Vec<_>>()
            .join(" | ")
    )];
    sweep.push(format!("|---|{}", "---|".repeat(latencies.len())));
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); configs.len()];
    for &ms in latencies {
        let endpoint = format!("{}/{ms}", replay.endpoint);
        let default = latency_run(&endpoint, items, "default", runs)?;
        let mut best: Option<(usize, LatencyRun)> = None;
        for (i, config) in configs.iter().enumerate() {
            let run = latency_run(&endpoint, items, config, runs)?;
            times[i].push(run.secs);
            if best.as_ref().is_none_or(|(_, b)| run.secs < b.secs) {
                best = Some((i, run));
            }
        }
        let (i, b) = best.ok_or("no configuration")?;
        summary.push(format!(
            "| {ms} ms | {:.2} s | {} | {:.0} MiB | `{}` | {:.2} s | {} | {:.0} MiB | {:.2}× |",
            default.secs,
            default.in_flight,
            default.rss_kib as f64 / 1024.0,
            configs[i],
            b.secs,
            b.in_flight,
            b.rss_kib as f64 / 1024.0,
            default.secs / b.secs
        ));
    }
    for (config, t) in configs.iter().zip(&times) {
        sweep.push(format!(
            "| `{config}` | {} |",
            t.iter()
                .map(|s| format!("{s:.2} s"))
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    println!("{}\n\n{}", summary.join("\n"), sweep.join("\n"));
    Ok(())
}

/// 5. Key reads at 100 ms: a Query per `pk IN` value, BatchGetItem chunks.
async fn fanout_table(items: usize, runs: usize) -> Result<(), BoxError> {
    const LATENCY_MS: u64 = 100;
    let replay = Replay::start(items, 0)?;
    let client = client_for(&format!("{}/{LATENCY_MS}", replay.endpoint)).await;
    let ctx = latency_session(&client, "default").await?;
    let partitions = (items / 100).min(200);
    let pks: Vec<String> = (0..partitions).map(|p| format!("'user#{p:05}'")).collect();
    let fanout = format!("SELECT count(*) FROM t WHERE pk IN ({})", pks.join(", "));
    // 10 partition keys × 100 sort keys: 1,000 keys, 100 of them items.
    let sks: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let batch = format!(
        "SELECT count(*) FROM t WHERE pk IN ({}) AND sk IN ({})",
        pks[..10.min(pks.len())].join(", "),
        sks.join(", ")
    );
    let max = dynamo_datafusion::TableOptions::default().max_concurrency;
    println!(
        "\n#### Key reads at {LATENCY_MS} ms per request (median of {runs} runs; fewest round trips with at most {max} requests in flight)\n"
    );
    println!(
        "| read | requests | time | fewest round trips | time ÷ (latency × round trips) |\n|---|---|---|---|---|"
    );
    for (label, sql, requests, expected) in [
        (
            format!("Query fan-out, `pk IN` {partitions} values"),
            fanout,
            partitions,
            partitions * 100,
        ),
        ("BatchGetItem, 1,000 keys".to_string(), batch, 10, 100),
    ] {
        let plan = ctx.sql(&sql).await?.create_physical_plan().await?;
        let op = find_exec(&plan).map(|s| s.operation()).unwrap_or("?");
        let t = timed(runs, expected, || run_sql(&ctx, &sql)).await?;
        let rounds = requests.div_ceil(max);
        println!(
            "| {label} ({op}) | {requests} | {:.3} s | {rounds} | {:.2} |",
            t.as_secs_f64(),
            t.as_secs_f64() / (LATENCY_MS as f64 / 1000.0 * rounds as f64)
        );
    }
    Ok(())
}

/// Part 7: a join of 100 partition keys with the table, by key and as
/// planned, at each of `latencies` ms per request.
async fn join_table(items: usize, latencies: &[u64], runs: usize) -> Result<(), BoxError> {
    let replay = Replay::start(items, 0)?;
    let partitions = (items / 100).max(1);
    let keys: Vec<String> = (0..100)
        .map(|k| format!("('user#{:05}')", k * 7 % partitions))
        .collect();
    let sql = format!(
        "SELECT count(*) FROM (VALUES {}) AS k(pk) JOIN t ON k.pk = t.pk",
        keys.join(", ")
    );
    let distinct: std::collections::BTreeSet<&String> = keys.iter().collect();
    let expected = (distinct.len() * 100).min(items);
    println!(
        "\n#### Join: 100 partition keys (VALUES) × the {items}-item table, by latency per request (median of {runs} runs)\n"
    );
    println!(
        "| latency | read | requests | items read | time | planned ÷ by key |\n|---|---|---|---|---|---|"
    );
    for &latency in latencies {
        let client = client_for(&format!("{}/{latency}", replay.endpoint)).await;
        let mut measured = Vec::new();
        for rule in ["items", "off"] {
            let mut config = SessionConfig::new()
                .with_option_extension(dynamo_datafusion::DynamoConfig::default());
            config
                .options_mut()
                .optimizer
                .hash_join_inlist_pushdown_max_distinct_values = 1_000;
            let ctx = SessionContext::new_with_config(config);
            ctx.register_table(
                "t",
                Arc::new(DynamoTableProvider::try_new(client.clone(), TABLE).await?),
            )?;
            ctx.sql(&format!("SET dynamodb.join_key_lookups = '{rule}'"))
                .await?;
            let t = timed(runs, expected, || run_sql(&ctx, &sql)).await?;
            let plan = ctx.sql(&sql).await?.create_physical_plan().await?;
            collect(Arc::clone(&plan), ctx.task_ctx()).await?;
            let stats = dynamo_datafusion::exec::ReadStats::of_plan(&plan);
            measured.push((rule, t, stats));
        }
        let base = measured[1].1.as_secs_f64();
        for (rule, t, stats) in &measured {
            let label = if *rule == "off" {
                "planned Scan"
            } else {
                "join keys by key"
            };
            println!(
                "| {latency} ms | {label} | {} | {} | {:.3} s | {:.2}× |",
                stats.requests,
                stats.items_scanned,
                t.as_secs_f64(),
                base / t.as_secs_f64().max(1e-9)
            );
        }
    }
    Ok(())
}

/// The sum of the second column (counts per group) of `sql`'s answer.
async fn grouped_count(ctx: &SessionContext, sql: &str) -> Result<usize, BoxError> {
    use datafusion::arrow::array::AsArray;
    let batches = ctx.sql(sql).await?.collect().await?;
    Ok(batches
        .iter()
        .flat_map(|b| {
            b.column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .sum::<i64>() as usize)
}

/// A client session of `cluster` with the replay table as `t`, read by the
/// executors at `endpoint`.
async fn cluster_ctx(
    cluster: &dynamo_testkit::LocalCluster,
    client: &Client,
    endpoint: &str,
) -> Result<SessionContext, BoxError> {
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(dynamo_ballista::process::session_config())
        .with_default_features()
        .build();
    let connection = dynamo_datafusion::ConnectionOptions::default()
        .with_endpoint_url(Some(endpoint.to_string()))
        .with_region(Some("us-east-1".to_string()));
    let ctx = dynamo_ballista::cluster_session(&cluster.url(), state, &connection).await?;
    let provider = DynamoTableProvider::builder(client.clone(), TABLE)
        .build()
        .await?;
    ctx.register_table("t", Arc::new(provider))?;
    Ok(ctx)
}

/// Part 6: a grouped aggregate on a local Ballista cluster of 1 and of 2
/// executors (2 tasks each), and in this process, at each latency.
async fn cluster_table(items: usize, latencies: &[u64], runs: usize) -> Result<(), BoxError> {
    use dynamo_testkit::{ClusterSpec, LocalCluster};
    let binary = built_binary("dynamo-ballista")?;
    let replay = Replay::start(items, 0)?;
    let sql = "SELECT country, count(*), sum(score) FROM t GROUP BY country";
    println!(
        "\n#### `{sql}` over {items} items on a local Ballista cluster (16 partitions; \
         median of {runs} runs after a warm-up)\n"
    );
    println!(
        "| latency | one process | 1 executor × 2 tasks | 2 executors × 2 tasks | 2 ÷ 1 executor | \
         1 executor × 8 tasks |\n|---|---|---|---|---|---|"
    );
    for &ms in latencies {
        let endpoint = format!("{}/{ms}", replay.endpoint);
        let client = client_for(&endpoint).await;
        let local = latency_session(&client, "default").await?;
        grouped_count(&local, sql).await?; // fills the server's page cache
        let alone = timed(runs, items, || grouped_count(&local, sql)).await?;
        let mut times = Vec::new();
        // (executors, tasks each): 1 vs 2 executors of as many tasks as
        // cores, and 1 executor running more tasks than cores.
        for (executors, tasks) in [(1, 2), (2, 2), (1, 8)] {
            let mut spec = ClusterSpec::new(&binary, executors, tasks);
            spec.executor_args = vec![vec!["--endpoint-url".into(), endpoint.clone()]; executors];
            spec.env = [
                ("AWS_ACCESS_KEY_ID", "replay"),
                ("AWS_SECRET_ACCESS_KEY", "replay"),
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("RUST_LOG", "warn"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec();
            let cluster = LocalCluster::start(spec).await?;
            let ctx = cluster_ctx(&cluster, &client, &endpoint).await?;
            grouped_count(&ctx, sql).await?; // warm-up
            times.push(timed(runs, items, || grouped_count(&ctx, sql)).await?);
        }
        println!(
            "| {ms} ms | {:.2} s | {:.2} s | {:.2} s | {:.2}× | {:.2} s |",
            alone.as_secs_f64(),
            times[0].as_secs_f64(),
            times[1].as_secs_f64(),
            times[1].as_secs_f64() / times[0].as_secs_f64(),
            times[2].as_secs_f64()
        );
    }
    Ok(())
}

fn find_exec(plan: &Arc<dyn ExecutionPlan>) -> Option<&DynamoExec> {
    if let Some(scan) = (plan.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoExec>() {
        return Some(scan);
    }
    plan.children().into_iter().find_map(find_exec)
}

/// `--rss ENDPOINT ITEMS`: aggregate the whole table, print peak RSS.
async fn rss_child(endpoint: &str, items: usize) -> Result<(), BoxError> {
    let client = client_for(endpoint).await;
    let ctx = provider_session(&client, 4).await?;
    let n = run_sql(&ctx, "SELECT count(*), sum(score), max(note) FROM t").await?;
    if n != items {
        return Err(format!("aggregated {n} items, expected {items}").into());
    }
    println!("{}", peak_rss_kib()?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("--serve") => {
            return serve(
                argv.get(2).ok_or("items")?.parse()?,
                argv.get(3).ok_or("latency")?.parse()?,
            )
            .await;
        }
        Some("--latency") => {
            return latency_child(
                argv.get(2).ok_or("endpoint")?,
                argv.get(3).ok_or("items")?.parse()?,
                argv.get(4).ok_or("mode")?,
                argv.get(5).ok_or("runs")?.parse()?,
            )
            .await;
        }
        Some("--rss") => {
            return rss_child(
                argv.get(2).ok_or("endpoint")?,
                argv.get(3).ok_or("items")?.parse()?,
            )
            .await;
        }
        _ => {}
    }
    let args = Args::parse(&[200_000], 5, 20_000)?;
    let n = args.items[0];
    match args.only.as_deref() {
        Some("latency") => {
            let items = if args.smoke { n } else { 1_000_000 };
            let latencies: &[u64] = if args.smoke {
                &[0, 20]
            } else {
                &[0, 20, 100, 300]
            };
            return latency_table(items, latencies, args.runs.min(3));
        }
        Some("sweep") => {
            let (items, latencies): (usize, &[u64]) = if args.smoke {
                (n, &[0, 20])
            } else {
                (1_000_000, &[0, 20, 100, 300])
            };
            return sweep_table(items, latencies, args.runs.min(3));
        }
        Some("fanout") => return fanout_table(n.max(20_000), args.runs).await,
        Some("cluster") => {
            let (items, latencies): (usize, &[u64]) = if args.smoke {
                (n, &[0])
            } else {
                (1_000_000, &[0, 20, 100])
            };
            return cluster_table(items, latencies, args.runs.min(3)).await;
        }
        Some("joins") => {
            let latencies: &[u64] = if args.smoke { &[0] } else { &[0, 10, 20] };
            return join_table(n, latencies, args.runs).await;
        }
        Some(other) => {
            return Err(
                format!("no part '{other}': latency, sweep, fanout, cluster or joins").into(),
            );
        }
        None => {}
    }

    // 1. The ceiling: no latency, one segment.
    let replay = Replay::start(n, 0)?;
    let client = replay.client().await;
    let one = provider_session(&client, 1).await?;
    raw_sdk(&client, 1).await?; // fill the server's page cache
    let raw = timed(args.runs, n, || raw_sdk(&client, 1)).await?;
    let count = timed(args.runs, n, || run_sql(&one, "SELECT count(*) FROM t")).await?;
    let all = timed(args.runs, n, || run_sql(&one, "SELECT * FROM t")).await?;
    println!(
        "#### Client-side ceiling ({n} items, 1 segment, no latency, median of {} runs)\n",
        args.runs
    );
    println!("| read | time | items/s | vs raw SDK |\n|---|---|---|---|");
    for (label, t) in [
        ("raw SDK paginator (baseline)", raw),
        ("provider `SELECT count(*)`", count),
        ("provider `SELECT *`", all),
    ] {
        println!(
            "| {label} | {:.3} s | {:.0} | {:.2}× |",
            t.as_secs_f64(),
            n as f64 / t.as_secs_f64(),
            t.as_secs_f64() / raw.as_secs_f64()
        );
    }
    drop(replay);

    // 2. Segment scaling at 5 ms per request.
    let latency_items = if args.smoke { n } else { n / 4 };
    let replay = Replay::start(latency_items, 5)?;
    let client = replay.client().await;
    println!(
        "\n#### Parallel scan at 5 ms per request ({latency_items} items, `SELECT count(*)`, median of {} runs)\n",
        args.runs
    );
    println!("| segments | time | speed-up vs 1 |\n|---|---|---|");
    let mut base = None;
    for segments in [1u32, 2, 4, 8] {
        let ctx = provider_session(&client, segments).await?;
        let t = timed(args.runs, latency_items, || {
            run_sql(&ctx, "SELECT count(*) FROM t")
        })
        .await?;
        let b = *base.get_or_insert(t);
        println!(
            "| {segments} | {:.3} s | {:.2}× |",
            t.as_secs_f64(),
            b.as_secs_f64() / t.as_secs_f64()
        );
    }
    drop(replay);

    // 3. Peak RSS: the same aggregate over n/2 and 5n items, each in a fresh process.
    let sizes = if args.smoke {
        [n / 2, n]
    } else {
        [100_000, 1_000_000]
    };
    println!("\n#### Peak RSS of `SELECT count(*), sum(score), max(note)` (4 segments)\n");
    println!("| items | peak RSS | vs smallest |\n|---|---|---|");
    let mut first = None;
    for items in sizes {
        let replay = Replay::start(items, 0)?;
        let out = Command::new(std::env::current_exe()?)
            .args(["--rss", &replay.endpoint, &items.to_string()])
            .output()?;
        if !out.status.success() {
            return Err(
                format!("rss child failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        let kib: u64 = String::from_utf8(out.stdout)?.trim().parse()?;
        let f = *first.get_or_insert(kib);
        println!(
            "| {items} | {:.1} MiB | {:.2}× |",
            kib as f64 / 1024.0,
            kib as f64 / f as f64
        );
    }

    // 4. and 5. At the service's latency.
    let latency_items = if args.smoke { n } else { 1_000_000 };
    let latencies: &[u64] = if args.smoke {
        &[0, 20]
    } else {
        &[0, 20, 100, 300]
    };
    latency_table(latency_items, latencies, args.runs.min(3))?;
    fanout_table(n.max(20_000), args.runs).await?;
    Ok(())
}
