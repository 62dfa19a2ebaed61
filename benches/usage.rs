//! What recording usage (and keeping metrics) costs a request: the same
//! connector requests against DynamoDB Local with usage and metrics off,
//! with usage on, with usage and metrics on — interleaved round by round in
//! one run, so the machine's noise falls on all three alike. Reports each
//! configuration's median latency and its ratio to "off".
//!
//! `scripts/bench.sh usage [--runs R]` (R rounds of 50 requests per
//! configuration, default 20; `--smoke` is the CI configuration).

#[path = "support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_connector::{
    Connector, Credentials, DynamoService, MasterKey, MasterKeyCipher, Metrics, SqliteStore,
    SystemClock, TenantResolver, UsageRecorder,
};
use dynamo_testkit::{TableSpec, create_table, put_items, table_exists};
use support::{Args, BoxError, median, write_result};

const TABLE: &str = "bench_usage";

async fn table(client: &aws_sdk_dynamodb::Client) -> Result<(), BoxError> {
    if table_exists(client, TABLE).await? {
        return Ok(());
    }
    create_table(
        client,
        &TableSpec::new(TABLE, "pk", T::S).sort_key("sk", T::N),
    )
    .await?;
    let items = (0..200)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 20))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("v".to_string(), AV::S("x".repeat(100))),
            ])
        })
        .collect();
    put_items(client, TABLE, items).await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse(&[0], 20, 0)?;
    let rounds = if args.smoke { 1 } else { args.runs };
    let per_round = if args.smoke { 5 } else { 50 };
    let client = dynamo_testkit::local_client().await?;
    table(&client).await?;

    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.db"))?);
    let key = MasterKey::generate();
    store.add_client("bench")?;
    store.set_service(
        "bench",
        &DynamoService {
            region: "us-east-1".into(),
            endpoint_url: Some(dynamo_testkit::local_endpoint()?),
            role_arn: None,
        },
    )?;
    let creds =
        serde_json::json!({"accessKeyId": "test", "secretAccessKey": dynamo_testkit::LOCAL_SECRET});
    store.set_credentials(
        &key,
        "bench",
        &Credentials::from_json(creds.to_string().as_bytes())?,
    )?;
    let token = store.issue_session("bench", None, 3_600)?;
    let resolver = Arc::new(TenantResolver::new(
        store.clone(),
        store.clone(),
        store.clone(),
        Arc::new(MasterKeyCipher(key)),
    ));
    let usage = UsageRecorder::start(store.clone(), Arc::new(SystemClock), Duration::from_secs(1));
    let configs: Vec<(&str, Connector)> = vec![
        (
            "off",
            Connector::new(resolver.clone()).with_schema_store(store.clone()),
        ),
        (
            "usage",
            Connector::new(resolver.clone())
                .with_schema_store(store.clone())
                .with_usage(Arc::clone(&usage)),
        ),
        (
            "usage + metrics",
            Connector::new(resolver.clone())
                .with_schema_store(store.clone())
                .with_usage(Arc::clone(&usage))
                .with_metrics(Arc::new(Metrics::new())),
        ),
    ];
    let requests: Vec<String> = (0..per_round)
        .map(|i| {
            serde_json::json!({"inputs": {"tableName": TABLE, "operation": "query",
                "keyCondition": "pk = :p",
                "expressionAttributeValues": {":p": {"S": format!("p{}", i % 20)}}}})
            .to_string()
        })
        .collect();
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds + 1 {
        for (c, (_, connector)) in configs.iter().enumerate() {
            for body in &requests {
                let start = Instant::now();
                connector
                    .handle(Some(token.expose()), body.as_bytes())
                    .await?;
                // The first round warms caches and connections.
                if round > 0 {
                    times[c].push(start.elapsed());
                }
            }
        }
    }
    usage.close().await;
    let base = median(times[0].clone());
    let mut md = format!(
        "### Usage recording overhead (DynamoDB Local, {} Query requests per configuration, interleaved)\n\n\
         | configuration | median latency | ÷ off |\n|---|---|---|\n",
        rounds * per_round
    );
    for (c, (name, _)) in configs.iter().enumerate() {
        let m = median(times[c].clone());
        md += &format!(
            "| {name} | {:.2} ms | {:.3} |\n",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() / base.as_secs_f64().max(1e-12)
        );
    }
    println!("{md}");
    if !args.smoke {
        write_result("usage.md", &md)?;
    }
    Ok(())
}
