//! What a query will read, before it reads: the `ScanPlan` of each DynamoDB
//! scan in a physical plan — the operation, the requests it starts with,
//! the partitions, the filters re-checked above the read — and the plan as
//! the JSON that would ship it to another process (no client, no
//! credentials in it).
//!
//! `cargo run --example scan_plan -- "SELECT * FROM UserEngagement WHERE userId = '123000'"`
//! with `DYNAMODB_ENDPOINT` set to a loopback URL (after `scripts/demo.sh`
//! loaded the demo tables, with the same `AWS_ACCESS_KEY_ID` and `AWS_REGION`).

use std::process::ExitCode;
use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use dynamo_datafusion::{DynamoExec, ScanPlan, TableOptions, dynamo_session};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every DynamoDB scan in `plan`.
fn scans(plan: &Arc<dyn ExecutionPlan>, out: &mut Vec<ScanPlan>) {
    if let Some(exec) = (plan.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoExec>() {
        out.push(exec.scan_plan().clone());
    }
    for child in plan.children() {
        scans(child, out);
    }
}

async fn run(sql: &str) -> Result<(), BoxError> {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_string());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let client = dynamo_testkit::local_client_as(&key, &region).await?;
    let ctx = dynamo_session(client, SessionConfig::new(), TableOptions::default()).await?;
    // Planned, not executed: nothing is read from the table.
    let plan = ctx.sql(sql).await?.create_physical_plan().await?;
    let mut found = Vec::new();
    scans(&plan, &mut found);
    for scan in &found {
        println!(
            "{} on {}: {} request(s) to start, {} partition(s), filters re-checked above the read: {:?}, limit: {:?}",
            scan.operation(),
            scan.table(),
            scan.unit_count(),
            scan.partition_count(),
            scan.residual_filters(),
            scan.limit(),
        );
        println!("{}", serde_json::to_string_pretty(scan)?);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let sql = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "SELECT * FROM UserEngagement WHERE userId = '123000'".to_string());
    match run(&sql).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scan_plan: {e}");
            ExitCode::FAILURE
        }
    }
}
