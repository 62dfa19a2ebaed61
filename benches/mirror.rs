//! Live reads vs a mirror, against DynamoDB Local: a two-table analytics
//! workload (orders, their lines) answered live and from Delta mirrors —
//! DynamoDB items read and wall time per query, both answers compared —
//! also with 20 ms per DynamoDB request through a latency proxy (the real
//! service's side); the mirrors' bootstrap items/s; and freshness lag
//! (a write → visible to a query of the followed mirror) p50/p99 under a
//! steady write load.
//!
//! `scripts/bench.sh mirror [--items ORDERS] [--runs R]` (default 2,000
//! orders with 4 lines each, 3 runs); `--smoke` is the CI configuration.
//! Writes `benches/results/mirror.md`.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T, StreamViewType};
use datafusion::catalog::TableProvider;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::{DynamoConfig, DynamoTableProvider};
use dynamo_mirror::{Freshness, Mirror, MirrorTableProvider, OnStale, SyncOptions};
use dynamo_testkit::{FaultConfig, FaultProxy, TableSpec, create_table, put_items, unique_name};
use support::{Args, BoxError, median, write_result};

/// The workload: wide reads an analyst repeats.
const QUERIES: [(&str, &str); 6] = [
    (
        "orders by status",
        "SELECT status, count(*), sum(total) FROM orders GROUP BY status ORDER BY status",
    ),
    (
        "revenue per day",
        "SELECT o.day, sum(l.qty * l.price) FROM lines l JOIN orders o ON l.\"orderId\" = o.\"orderId\" \
         GROUP BY o.day ORDER BY o.day",
    ),
    (
        "top 10 customers",
        "SELECT customer, sum(total) AS spent FROM orders GROUP BY customer ORDER BY spent DESC, customer LIMIT 10",
    ),
    (
        "shipped lines by product",
        "SELECT l.product, sum(l.qty) FROM lines l JOIN orders o ON l.\"orderId\" = o.\"orderId\" \
         WHERE o.status = 'shipped' GROUP BY l.product ORDER BY l.product",
    ),
    (
        "big orders",
        "SELECT count(*) FROM orders WHERE total > 900",
    ),
    (
        "one order's lines",
        "SELECT line, product, qty FROM lines WHERE \"orderId\" = 'o00042' ORDER BY line",
    ),
];

const STATUSES: [&str; 4] = ["new", "paid", "shipped", "returned"];

fn order(i: usize) -> HashMap<String, AV> {
    HashMap::from([
        ("orderId".to_string(), AV::S(format!("o{i:05}"))),
        (
            "customer".to_string(),
            AV::S(format!("c{:03}", (i * 7) % 150)),
        ),
        (
            "status".to_string(),
            AV::S(STATUSES[(i * 3) % 4].to_string()),
        ),
        (
            "total".to_string(),
            AV::N(format!("{}.{:02}", (i * 37) % 1000, i % 100)),
        ),
        (
            "day".to_string(),
            AV::S(format!("2026-11-{:02}", 1 + i % 28)),
        ),
    ])
}

fn line(i: usize, l: usize) -> HashMap<String, AV> {
    HashMap::from([
        ("orderId".to_string(), AV::S(format!("o{i:05}"))),
        ("line".to_string(), AV::N(l.to_string())),
        (
            "product".to_string(),
            AV::S(format!("p{:02}", (i + l * 13) % 40)),
        ),
        ("qty".to_string(), AV::N((1 + (i + l) % 5).to_string())),
        (
            "price".to_string(),
            AV::N(format!("{}.{:02}", 1 + (i * l) % 90, l * 7 % 100)),
        ),
    ])
}

/// The two tables with streams, loaded.
async fn load(client: &Client, orders: usize) -> Result<(String, String), BoxError> {
    let (o, l) = (unique_name("bench_orders"), unique_name("bench_lines"));
    create_table(
        client,
        &TableSpec::new(&o, "orderId", T::S).stream(StreamViewType::NewAndOldImages),
    )
    .await?;
    create_table(
        client,
        &TableSpec::new(&l, "orderId", T::S)
            .sort_key("line", T::N)
            .stream(StreamViewType::NewAndOldImages),
    )
    .await?;
    put_items(client, &o, (0..orders).map(order).collect()).await?;
    put_items(
        client,
        &l,
        (0..orders)
            .flat_map(|i| (0..4).map(move |n| line(i, n)))
            .collect(),
    )
    .await?;
    Ok((o, l))
}

fn session(
    orders: Arc<dyn TableProvider>,
    lines: Arc<dyn TableProvider>,
) -> Result<SessionContext, BoxError> {
    let mut config = SessionConfig::new()
        .with_target_partitions(4)
        .with_option_extension(DynamoConfig::default());
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    ctx.register_table("orders", orders)?;
    ctx.register_table("lines", lines)?;
    Ok(ctx)
}

/// Runs `sql` `runs` times: median time, DynamoDB items read, the answer.
async fn run(
    ctx: &SessionContext,
    sql: &str,
    runs: usize,
) -> Result<(Duration, usize, String), BoxError> {
    let mut times = Vec::new();
    let (mut items, mut answer) = (0, String::new());
    for _ in 0..runs {
        let start = Instant::now();
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
        times.push(start.elapsed());
        items = ReadStats::of_plan(&plan).items_scanned;
        answer = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
    }
    Ok((median(times), items, answer))
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[2_000], 3, 100)?;
    let orders = args.items[0];
    let client = dynamo_testkit::local_client().await?;
    let (o, l) = load(&client, orders).await?;
    let dir = tempfile::tempdir()?;
    let mut report = format!(
        "# Live reads vs a mirror ({orders} orders, {} lines; DynamoDB Local; median of {} runs)\n\n",
        orders * 4,
        args.runs
    );

    // Bootstrap.
    let live_o = Arc::new(DynamoTableProvider::try_new(client.clone(), &o).await?);
    let live_l = Arc::new(DynamoTableProvider::try_new(client.clone(), &l).await?);
    let start = Instant::now();
    let (mirror_o, made_o) =
        Mirror::create(&live_o, dir.path().join("orders").to_str().ok_or("path")?).await?;
    let (mirror_l, made_l) =
        Mirror::create(&live_l, dir.path().join("lines").to_str().ok_or("path")?).await?;
    let secs = start.elapsed().as_secs_f64();
    let made = made_o.records + made_l.records;
    report += &format!(
        "Bootstrap: {made} items into two mirrors in {secs:.2} s — {:.0} items/s.\n\n",
        made as f64 / secs
    );

    // The workload, live (direct and at 20 ms a request) and from the mirrors.
    let hour = Freshness {
        max_staleness: Duration::from_secs(3600),
        on_stale: OnStale::Error,
    };
    let mirrored = session(
        Arc::new(MirrorTableProvider::new(
            Arc::clone(&live_o),
            &mirror_o,
            hour,
        )),
        Arc::new(MirrorTableProvider::new(
            Arc::clone(&live_l),
            &mirror_l,
            hour,
        )),
    )?;
    let live = session(live_o.clone(), live_l.clone())?;
    let proxy = FaultProxy::start(
        &dynamo_testkit::local_endpoint()?,
        FaultConfig {
            latency: Duration::from_millis(20),
            ..FaultConfig::none()
        },
    )
    .await?;
    let slow = proxy.client().await;
    let far = session(
        Arc::new(DynamoTableProvider::try_new(slow.clone(), &o).await?),
        Arc::new(DynamoTableProvider::try_new(slow, &l).await?),
    )?;
    report += "| query | items read live | items read from the mirror | live | live, 20 ms/request | mirror | mirror ÷ live | mirror ÷ live at 20 ms |\n|---|---|---|---|---|---|---|---|\n";
    let (mut total_live, mut total_far, mut total_mirror, mut items_live, mut items_mirror) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0, 0);
    for (name, sql) in QUERIES {
        let (t_live, n_live, a_live) = run(&live, sql, args.runs).await?;
        let (t_far, _, a_far) = run(&far, sql, args.runs).await?;
        let (t_mirror, n_mirror, a_mirror) = run(&mirrored, sql, args.runs).await?;
        if a_live != a_mirror || a_live != a_far {
            return Err(
                format!("{name}: answers differ\nlive:\n{a_live}\nmirror:\n{a_mirror}").into(),
            );
        }
        total_live += t_live;
        total_far += t_far;
        total_mirror += t_mirror;
        items_live += n_live;
        items_mirror += n_mirror;
        report += &format!(
            "| {name} | {n_live} | {n_mirror} | {} | {} | {} | {:.2} | {:.3} |\n",
            ms(t_live),
            ms(t_far),
            ms(t_mirror),
            t_mirror.as_secs_f64() / t_live.as_secs_f64(),
            t_mirror.as_secs_f64() / t_far.as_secs_f64()
        );
    }
    report += &format!(
        "| **all {}** | **{items_live}** | **{items_mirror}** | {} | {} | {} | {:.2} | {:.3} |\n\n",
        QUERIES.len(),
        ms(total_live),
        ms(total_far),
        ms(total_mirror),
        total_mirror.as_secs_f64() / total_live.as_secs_f64(),
        total_mirror.as_secs_f64() / total_far.as_secs_f64()
    );

    // Freshness: writes at a steady rate while a follower applies them; a
    // query of the mirror polls for the newest write it sees.
    let writes = if args.smoke { 20 } else { 200 };
    let rate = Duration::from_millis(50);
    let poll = Duration::from_millis(20);
    let mut follower = Mirror::open(mirror_o.path()).await?;
    let stop = tokio::sync::Notify::new();
    let stop = Arc::new(stop);
    let following = {
        let (live, stop) = (Arc::clone(&live_o), Arc::clone(&stop));
        tokio::spawn(async move {
            let options = SyncOptions::default().heartbeat(Duration::from_secs(1));
            follower
                .follow(
                    &live,
                    &options,
                    Duration::from_millis(100),
                    stop.notified(),
                    |_| {},
                )
                .await
        })
    };
    let written: Arc<std::sync::Mutex<Vec<Instant>>> = Arc::default();
    let writer = {
        let (client, table, written) = (client.clone(), o.clone(), Arc::clone(&written));
        tokio::spawn(async move {
            for n in 0..writes {
                let mut item = order(orders + n);
                item.insert("seq".to_string(), AV::N(n.to_string()));
                client
                    .put_item()
                    .table_name(&table)
                    .set_item(Some(item))
                    .send()
                    .await?;
                written.lock().map_err(|_| "lock")?.push(Instant::now());
                tokio::time::sleep(rate).await;
            }
            Ok::<_, BoxError>(())
        })
    };
    let mut lags = Vec::new();
    let mut seen = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    let reader = session(
        Arc::new(MirrorTableProvider::new(
            Arc::clone(&live_o),
            &mirror_o,
            hour,
        )),
        Arc::clone(&live_l) as Arc<dyn TableProvider>,
    )?;
    let newest = format!("SELECT count(*) FROM orders WHERE \"orderId\" >= 'o{orders:05}'");
    while seen < writes && Instant::now() < deadline {
        let batches = reader.sql(&newest).await?.collect().await?;
        let visible = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
            .to_string()
            .lines()
            .nth(3)
            .and_then(|l| {
                l.trim_matches(|c: char| c == '|' || c.is_whitespace())
                    .parse::<usize>()
                    .ok()
            })
            .unwrap_or(0);
        if visible > seen {
            let now = Instant::now();
            let times = written.lock().map_err(|_| "lock")?.clone();
            lags.extend(
                times[seen..visible.min(times.len())]
                    .iter()
                    .map(|t| now - *t),
            );
            seen = visible;
        }
        tokio::time::sleep(poll).await;
    }
    writer.await??;
    stop.notify_one();
    following.await??;
    if seen < writes {
        return Err(format!("only {seen} of {writes} writes became visible").into());
    }
    lags.sort();
    let pct = |p: f64| lags[((lags.len() as f64 * p) as usize).min(lags.len() - 1)];
    report += &format!(
        "Freshness: {writes} writes, one every {} ms, a follower syncing every 100 ms; a query \
         polling every {} ms saw each at p50 {} and p99 {} after it was written (DynamoDB \
         Local; the poll adds up to {} ms).\n",
        rate.as_millis(),
        poll.as_millis(),
        ms(pct(0.5)),
        ms(pct(0.99)),
        poll.as_millis()
    );
    println!("{report}");
    if !args.smoke {
        write_result("mirror.md", &report)?;
    }
    Ok(())
}
