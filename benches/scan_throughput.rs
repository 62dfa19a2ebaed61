//! Scan throughput against a local DynamoDB-API server: the raw SDK scan
//! (baseline) against the provider, measured in the same run, on the shared
//! ~200-byte bench table.
//!
//! `scripts/bench.sh scan_throughput [--items N] [--runs R]` starts DynamoDB Local
//! and runs this; `--smoke` is the seconds-long configuration CI runs.
//! Reports medians and ratios to the baseline, since shared machines are noisy.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::DynamoTableProvider;
use futures::StreamExt;
use support::{Args, BoxError, load_bench_table, median};

async fn raw_sdk_scan(client: &Client, table: &str) -> Result<usize, BoxError> {
    let mut pages = client.scan().table_name(table).into_paginator().send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        n += page?.items().len();
    }
    Ok(n)
}

/// A session with the table registered; describing and sampling happen here,
/// outside the timed reads.
async fn session(client: &Client, table: &str, segments: u32) -> Result<SessionContext, BoxError> {
    let provider = DynamoTableProvider::builder(client.clone(), table)
        .segments(segments)
        .build()
        .await?;
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(segments as usize),
    );
    ctx.register_table("t", Arc::new(provider))?;
    Ok(ctx)
}

/// Runs `sql` and returns how many items it saw: the rows, or for a
/// `count(*)` query the count it computed.
async fn provider_query(ctx: &SessionContext, sql: &str) -> Result<usize, BoxError> {
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let mut rows = 0;
    let mut counted = None;
    while let Some(b) = stream.next().await {
        let b = b?;
        rows += b.num_rows();
        if sql.contains("count(*)") && b.num_rows() == 1 {
            counted = Some(b.column(0).as_primitive::<Int64Type>().value(0) as usize);
        }
    }
    Ok(counted.unwrap_or(rows))
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[20_000], 3, 500)?;
    let (items, runs) = (args.items[0], args.runs);
    let client = dynamo_testkit::local_client().await?;
    let table = load_bench_table(&client, items).await?;
    let cases: Vec<(&str, u32, String)> = vec![
        ("raw SDK paginator, Scan (baseline)", 0, String::new()),
        (
            "provider SELECT count(*), 1 segment",
            1,
            "SELECT count(*) FROM t".into(),
        ),
        ("provider SELECT *, 1 segment", 1, "SELECT * FROM t".into()),
        ("provider SELECT *, 4 segments", 4, "SELECT * FROM t".into()),
    ];
    println!(
        "| read ({} items, median of {} runs) | wall time | items/s | time vs baseline |",
        items, runs
    );
    println!("|---|---|---|---|");
    let mut baseline = None;
    for (label, segments, sql) in cases {
        let mut times = Vec::with_capacity(runs);
        let ctx = match segments {
            0 => None,
            n => Some(session(&client, &table, n).await?),
        };
        for _ in 0..runs {
            let start = Instant::now();
            let n = match &ctx {
                Some(ctx) => provider_query(ctx, &sql).await?,
                None => raw_sdk_scan(&client, &table).await?,
            };
            times.push(start.elapsed());
            if n != items {
                return Err(format!("{label}: read {n} items, expected {}", items).into());
            }
        }
        let t = median(times);
        let base = *baseline.get_or_insert(t);
        println!(
            "| {label} | {:.3} s | {:.0} | {:.2}× |",
            t.as_secs_f64(),
            items as f64 / t.as_secs_f64(),
            t.as_secs_f64() / base.as_secs_f64()
        );
    }
    Ok(())
}
