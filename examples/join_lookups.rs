//! A join that reads only the keys it needs: the events of the users who had
//! a top-scoring `search` session. The small side (an index Query) is read
//! first; its user ids turn the read of `UserEngagement` into one Query per
//! user instead of a Scan of the table. The same query runs with
//! `dynamodb.join_key_lookups` on and off: same answer, the items read per
//! table, and the read chosen at run time (`EXPLAIN ANALYZE`'s `join_keys`).
//!
//! `cargo run --example join_lookups` with `DYNAMODB_ENDPOINT` set to a
//! loopback URL (after `scripts/demo.sh` loaded the demo tables, with the
//! same `AWS_ACCESS_KEY_ID` and `AWS_REGION`).

use std::process::ExitCode;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::{TableOptions, dynamo_session};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SQL: &str = "WITH top(userId) AS (\
    SELECT DISTINCT userId FROM UserEngagement \
    WHERE feature = 'search' AND engagementScore >= 98) \
  SELECT e.userId, count(*) AS events, max(e.engagementScore) AS best \
  FROM top JOIN UserEngagement e ON e.userId = top.userId \
  GROUP BY e.userId ORDER BY e.userId";

/// Runs the query: its rows as text, and the items read per table.
async fn run(ctx: &SessionContext) -> Result<(String, Vec<(String, ReadStats)>), BoxError> {
    let plan = ctx.sql(SQL).await?.create_physical_plan().await?;
    let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await?;
    Ok((
        pretty_format_batches(&batches)?.to_string(),
        ReadStats::by_table(&plan),
    ))
}

async fn main_inner() -> Result<(), BoxError> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_string());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let client = dynamo_testkit::local_client_as(&key, &region).await?;
    let ctx = dynamo_session(client, SessionConfig::new(), TableOptions::default()).await?;

    let (rows, by_key) = run(&ctx).await?;
    ctx.sql("SET dynamodb.join_key_lookups = 'off'").await?;
    let (planned_rows, planned) = run(&ctx).await?;
    if rows != planned_rows {
        return Err("key lookups changed the answer".into());
    }
    println!("{rows}");
    for (label, reads) in [
        ("join keys read by key", &by_key),
        ("planned read", &planned),
    ] {
        let items: Vec<String> = reads
            .iter()
            .map(|(table, s)| {
                format!(
                    "{table}: {} items, {:.1} RCU",
                    s.items_scanned, s.consumed_rcu
                )
            })
            .collect();
        println!("{label}: {}", items.join("; "));
    }

    // What the read of UserEngagement chose, and why.
    ctx.sql("SET dynamodb.join_key_lookups = 'items'").await?;
    let explain = ctx
        .sql(&format!("EXPLAIN ANALYZE {SQL}"))
        .await?
        .collect()
        .await?;
    let text = pretty_format_batches(&explain)?.to_string();
    for choice in text.split("join_keys=[").skip(1) {
        let end = choice.find("], metrics").unwrap_or(choice.len());
        println!("join_keys: {}", &choice[..end]);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match main_inner().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("join_lookups: {e}");
            ExitCode::FAILURE
        }
    }
}
