//! The read-capacity budget on a sustained scan: consumed RCU per second
//! against the configured `read_capacity`, with one and with four segments
//! sharing the budget, beside an unlimited scan measured in the same run.
//!
//! `scripts/bench.sh capacity [--items N]` starts DynamoDB Local and runs this;
//! `--smoke` is the seconds-long configuration CI runs. Target: the measured
//! rate within 10% of the limit.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::DynamoTableProvider;
use dynamo_datafusion::exec::ReadStats;
use support::{Args, BoxError, load_bench_table, write_result};

struct Measured {
    rcu: f64,
    seconds: f64,
    items: usize,
    requests: usize,
}

async fn scan(
    client: &Client,
    table: &str,
    segments: u32,
    limit: Option<f64>,
) -> Result<Measured, BoxError> {
    let mut builder = DynamoTableProvider::builder(client.clone(), table).segments(segments);
    if let Some(rate) = limit {
        builder = builder.read_capacity(rate);
    }
    let provider = builder.build().await?;
    let ctx = SessionContext::new_with_config(
        SessionConfig::new().with_target_partitions(segments as usize),
    );
    ctx.register_table("t", Arc::new(provider))?;
    let plan = ctx
        .sql("SELECT pk, sk, note FROM t")
        .await?
        .create_physical_plan()
        .await?;
    let start = Instant::now();
    let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
    let seconds = start.elapsed().as_secs_f64();
    let stats = ReadStats::of_plan(&plan);
    Ok(Measured {
        rcu: stats.consumed_rcu,
        seconds,
        items: batches.iter().map(|b| b.num_rows()).sum(),
        requests: stats.requests,
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[20_000], 1, 500)?;
    let items = args.items[0];
    let client = dynamo_testkit::local_client().await?;
    let table = load_bench_table(&client, items).await?;
    let limits: Vec<f64> = if args.smoke {
        vec![10.0]
    } else {
        vec![25.0, 50.0, 100.0]
    };
    let mut out = String::new();
    out.push_str(&format!(
        "| scan of {items} items | segments | consumed RCU | wall time | requests | RCU/s | RCU/s ÷ limit |\n|---|---|---|---|---|---|---|\n"
    ));
    let base = scan(&client, &table, 1, None).await?;
    out.push_str(&format!(
        "| no limit (baseline) | 1 | {:.1} | {:.2} s | {} | {:.0} | — |\n",
        base.rcu,
        base.seconds,
        base.requests,
        base.rcu / base.seconds
    ));
    for limit in limits {
        for segments in [1, 4] {
            let m = scan(&client, &table, segments, Some(limit)).await?;
            if m.items != items {
                return Err(format!("read {} items, expected {items}", m.items).into());
            }
            let rate = m.rcu / m.seconds;
            out.push_str(&format!(
                "| read_capacity = {limit} RCU/s | {segments} | {:.1} | {:.2} s | {} | {:.1} | {:.3} |\n",
                m.rcu,
                m.seconds,
                m.requests,
                rate,
                rate / limit
            ));
        }
    }
    print!("{out}");
    if !args.smoke {
        write_result(&format!("capacity-{items}.md"), &out)?;
    }
    Ok(())
}
