//! What a one-shot `dynamo-sql -c` key lookup reads, run after run: with
//! every run sampling the table for its schema (`--no-schema-cache`, as
//! before the schema cache) and with the schema cache (the first run
//! samples, the others read the cached schema).
//!
//! Requests go through a counting proxy on 127.0.0.1 in front of DynamoDB
//! Local: Scan requests and the items they evaluated are the sampling (the
//! query itself is a GetItem). `scripts/bench.sh schema_cache [--runs N]`;
//! `--smoke` is the configuration CI runs.

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use dynamo_testkit::{FaultConfig, FaultProxy, TRAP_TABLE_ITEMS, local_endpoint, trap_table};
use support::{Args, BoxError, local_dynamo_sql, median, write_result};

/// What a series of runs read.
struct Series {
    scans: u64,
    scanned: u64,
    requests: u64,
    times: Vec<Duration>,
}

fn series(
    proxy: &FaultProxy,
    runs: usize,
    cache: &[&str],
    sql: &str,
    expected: &str,
) -> Result<Series, BoxError> {
    let before = proxy.counts();
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = local_dynamo_sql(&proxy.endpoint())?
            .args(["--format", "csv"])
            .args(cache)
            .args(["-c", sql])
            .env_remove("DYNAMO_SQL_SCHEMA_CACHE")
            .output()?;
        times.push(start.elapsed());
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || stdout != expected {
            return Err(format!(
                "dynamo-sql answered {stdout:?} ({}), expected {expected:?}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
    }
    let after = proxy.counts();
    Ok(Series {
        scans: after.scans - before.scans,
        scanned: after.scanned_by_scans - before.scanned_by_scans,
        requests: after.requests - before.requests,
        times,
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[TRAP_TABLE_ITEMS], 10, TRAP_TABLE_ITEMS)?;
    let runs = if args.smoke { 3 } else { args.runs };
    let client = dynamo_testkit::local_client().await?;
    let table = trap_table(&client, "bench_schema").await?;
    let proxy = FaultProxy::start(&local_endpoint()?, FaultConfig::none()).await?;
    let (year, title) = &table.traps.two_decimals;
    let sql = format!(
        "SELECT title, info['rating'] AS rating FROM \"{}\" WHERE \"year\" = {year} AND title = '{title}'",
        table.name
    );
    let expected = format!("title,rating\n{title},6.1800\n");
    let dir = std::env::temp_dir().join(format!("bench-schema-cache-{}", std::process::id()));
    let dir_arg = dir.to_str().ok_or("temporary directory is not UTF-8")?;

    let sampling = series(&proxy, runs, &["--no-schema-cache"], &sql, &expected)?;
    let cached = series(&proxy, runs, &["--schema-cache", dir_arg], &sql, &expected)?;
    let _ = std::fs::remove_dir_all(&dir);

    let mut out = format!(
        "| {runs} one-shot GetItem runs, table of {TRAP_TABLE_ITEMS} items | Scan requests | items read by Scans (sampling) | items read in all | requests | median wall time |\n|---|---|---|---|---|---|\n"
    );
    for (name, s) in [
        ("every run samples (--no-schema-cache)", &sampling),
        ("schema cache (first run samples)", &cached),
    ] {
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {:.0} ms |\n",
            s.scans,
            s.scanned,
            s.scanned + runs as u64,
            s.requests,
            median(s.times.clone()).as_secs_f64() * 1000.0
        ));
    }
    let ratio =
        median(cached.times.clone()).as_secs_f64() / median(sampling.times.clone()).as_secs_f64();
    out.push_str(&format!(
        "\nmedian wall time with the cache ÷ without: {ratio:.2} (same run)\n"
    ));
    print!("{out}");
    if cached.scanned >= sampling.scanned {
        return Err("the schema cache did not reduce sampling".into());
    }
    if !args.smoke {
        write_result("schema-cache.md", &out)?;
    }
    Ok(())
}
