//! Loads the demo tables (UserEngagement, Inventory) into a local DynamoDB-API server.
//!
//! `cargo run --example load_demo` with `DYNAMODB_ENDPOINT` set to a loopback URL
//! (`scripts/demo.sh` does this). Credentials and region come from
//! `AWS_ACCESS_KEY_ID` / `AWS_REGION` when set, so the REPL sees the same database.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".to_string());
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string());
    let client = match dynamo_testkit::local_client_as(&key, &region).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("load_demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match dynamo_testkit::load_demo(&client).await {
        Ok(n) => {
            eprintln!(
                "load_demo: wrote {n} items into {:?}",
                dynamo_testkit::DEMO_TABLES
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("load_demo: {e}");
            ExitCode::FAILURE
        }
    }
}
