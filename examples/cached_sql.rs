//! Embedding the provider the way `dynamo-sql` does: a session whose table
//! schemas are cached between runs, and statements run with
//! `run_statement`, which re-plans a statement when a column widens.
//!
//! `cargo run --example cached_sql -- 'SELECT count(*) FROM Inventory'` with
//! `DYNAMODB_ENDPOINT` set to a loopback URL (after `scripts/demo.sh` loaded
//! the demo tables, with the same `AWS_ACCESS_KEY_ID` and `AWS_REGION`).
//! Run it twice: the second run samples nothing.

use std::process::ExitCode;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::config::Dialect;
use datafusion::prelude::SessionConfig;
use dynamo_datafusion::TableOptions;
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::run::{CollectSink, RunOptions, run_statement};
use dynamo_datafusion::schema::FileSchemaCache;
use dynamo_datafusion::session::dynamo_session_with_cache;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(sql: &str) -> Result<(), BoxError> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_string());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let client = dynamo_testkit::local_client_as(&key, &region).await?;
    let cache = std::env::temp_dir().join("dynamo-connector-example-schemas");
    let ctx = dynamo_session_with_cache(
        client,
        SessionConfig::new(),
        TableOptions::default(),
        Some(Arc::new(FileSchemaCache::new(&cache))),
    )
    .await?;
    let statement = ctx.state().sql_to_statement(sql, &Dialect::Generic)?;
    let mut result = CollectSink::default();
    let outcome = run_statement(&ctx, &statement, &RunOptions::default(), &mut result).await?;
    println!("{}", pretty_format_batches(&result.batches)?);
    for notice in &outcome.notices {
        eprintln!("Notice: {notice}");
    }
    eprintln!("{}", ReadStats::of_plan(&outcome.plan));
    eprintln!("schemas cached in {}", cache.display());
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let sql = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "SELECT count(*) FROM Inventory".to_string());
    match run(&sql).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cached_sql: {e}");
            ExitCode::FAILURE
        }
    }
}
