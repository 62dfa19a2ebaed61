//! `dynamo-sql` against what users do today (boto3 + pandas, pinned in
//! `python/requirements.txt`), same query, same DynamoDB Local table,
//! same run: `SELECT country, count(*), sum(amount) FROM t GROUP BY country`.
//! Both answers are compared before any time is reported.
//!
//! `scripts/bench.sh vs_python [--items N] [--runs R]`; `--smoke` for CI. The
//! Python interpreter is `$BENCH_PYTHON` (scripts/bench.sh and scripts/test.sh
//! create a virtual environment with the pinned packages).

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use support::{Args, BoxError, load_bench_table, local_dynamo_sql, median};

/// A decimal's digits without trailing fraction zeros: `3308.3800` and
/// `3308.38` are the same value (the inferred column keeps four decimals).
fn decimal(text: &str) -> String {
    match text.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => text.to_string(),
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[100_000], 3, 500)?;
    let endpoint = dynamo_testkit::local_endpoint()?;
    let client = dynamo_testkit::local_client().await?;
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/boto3_pandas.py");
    println!(
        "| items | dynamo-sql (median of {0}) | boto3 + pandas (median of {0}) | speed-up |\n|---|---|---|---|",
        args.runs
    );
    for &n in &args.items {
        let table = load_bench_table(&client, n).await?;
        let sql = "SELECT country, count(*) AS n, sum(amount) AS total FROM t GROUP BY country ORDER BY country";
        let sql = sql.replace(" t ", &format!(" {table} "));
        // One untimed scan warms DynamoDB Local's JIT, so neither side pays for it.
        dynamo_testkit::local_client()
            .await?
            .scan()
            .table_name(&table)
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut times = Vec::new();
        let mut ours = BTreeMap::new();
        for _ in 0..args.runs {
            let start = Instant::now();
            let out = local_dynamo_sql(&endpoint)?
                .args(["--format", "csv", "-c", &sql])
                .output()?;
            times.push(start.elapsed());
            if !out.status.success() {
                return Err(format!(
                    "dynamo-sql failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
                .into());
            }
            ours = String::from_utf8(out.stdout)?
                .lines()
                .skip(1)
                .filter_map(|l| {
                    let mut f = l.split(',');
                    Some((
                        f.next()?.to_string(),
                        (f.next()?.parse::<u64>().ok()?, decimal(f.next()?)),
                    ))
                })
                .collect();
        }
        let ours_t = median(times);
        let out = Command::new(&python)
            .arg(&script)
            .args([
                "--endpoint-url",
                &endpoint,
                "--table",
                &table,
                "--runs",
                &args.runs.to_string(),
            ])
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "boto3 + pandas failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let theirs: BTreeMap<String, (u64, String)> = v["result"]
            .as_object()
            .ok_or("no result")?
            .iter()
            .map(|(k, r)| {
                (
                    k.clone(),
                    (
                        r[0].as_u64().unwrap_or(0),
                        decimal(r[1].as_str().unwrap_or("")),
                    ),
                )
            })
            .collect();
        if ours != theirs {
            return Err(
                format!("answers differ:\n dynamo-sql: {ours:?}\n pandas: {theirs:?}").into(),
            );
        }
        let theirs_t = v["median_s"].as_f64().ok_or("no time")?;
        println!(
            "| {n} | {:.2} s | {:.2} s | {:.1}× |",
            ours_t.as_secs_f64(),
            theirs_t,
            theirs_t / ours_t.as_secs_f64().max(1e-9)
        );
    }
    Ok(())
}
