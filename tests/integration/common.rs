//! Shared helpers: clients, tables, running SQL, rendering rows for comparison.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ScalarAttributeType;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::decode::Item;
use dynamo_datafusion::run::{CollectSink, RunOptions, RunOutcome, run_statement};
use dynamo_datafusion::{DynamoConfig, DynamoExec, DynamoTableProvider, TableOptions};
use dynamo_testkit::{TableSpec, put_items, unique_name};

/// A new table keyed by `pk` (S) and `sk` (N), named after `prefix`, holding `items`.
pub async fn pk_sk_table(client: &Client, prefix: &str, items: Vec<Item>) -> String {
    let table = unique_name(prefix);
    TableSpec::new(&table, "pk", ScalarAttributeType::S)
        .sort_key("sk", ScalarAttributeType::N)
        .create(client)
        .await
        .expect("create");
    put_items(client, &table, items).await.expect("put");
    table
}

/// The shared test client; fails loudly when the suite runs without the server.
pub async fn client() -> Client {
    dynamo_testkit::local_client()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A session with DynamoDB's case-sensitive names (no identifier normalisation).
pub fn context() -> SessionContext {
    let mut config = SessionConfig::new().with_target_partitions(4);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    SessionContext::new_with_config(config)
}

/// A session configured like `dynamo_session`: case-sensitive names, exact
/// decimal literals, join key lists of up to 1,000 keys, `SET dynamodb.*`
/// settings.
pub fn pushdown_session(target_partitions: usize) -> SessionContext {
    SessionContext::new_with_config(DynamoConfig::session_defaults(
        SessionConfig::new().with_target_partitions(target_partitions),
    ))
}

/// `dynamo_session` over `client`: every table of the local server by name,
/// `CREATE EXTERNAL TABLE … STORED AS DYNAMODB`, `"T$changes"`.
pub async fn dynamo_session_of(client: &Client) -> SessionContext {
    dynamo_datafusion::dynamo_session(
        client.clone(),
        SessionConfig::new(),
        TableOptions::default(),
    )
    .await
    .expect("session")
}

/// `table` registered as `t` twice: with pushdown, and with pushdown disabled.
pub async fn with_and_without_pushdown(
    client: &Client,
    table: &str,
    target_partitions: usize,
) -> (SessionContext, SessionContext) {
    let on = DynamoTableProvider::try_new(client.clone(), table)
        .await
        .expect("provider");
    let off = DynamoTableProvider::builder(client.clone(), table)
        .options({
            let mut off = TableOptions::default();
            off.pushdown = false;
            off
        })
        .build()
        .await
        .expect("provider");
    let (a, b) = (
        pushdown_session(target_partitions),
        pushdown_session(target_partitions),
    );
    a.register_table("t", Arc::new(on)).expect("register");
    b.register_table("t", Arc::new(off)).expect("register");
    (a, b)
}

/// Registers `provider` as `name` in a fresh case-sensitive session.
pub fn context_with(name: &str, provider: DynamoTableProvider) -> SessionContext {
    let ctx = context();
    ctx.register_table(name, Arc::new(provider))
        .expect("register table");
    ctx
}

/// Runs SQL and collects the batches.
pub async fn query(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Vec<RecordBatch>> {
    ctx.sql(sql).await?.collect().await
}

/// Runs `sql` as `dynamo-sql` and the connector do (`run_statement`: a
/// column that widens re-plans the statement): its batches and outcome
/// (notices, re-runs, the plan that ran).
pub async fn run_as_dynamo_sql(
    ctx: &SessionContext,
    sql: &str,
) -> datafusion::error::Result<(Vec<RecordBatch>, RunOutcome)> {
    let statement = ctx
        .state()
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)?;
    let mut sink = CollectSink::default();
    let outcome = run_statement(ctx, &statement, &RunOptions::default(), &mut sink).await?;
    Ok((sink.batches, outcome))
}

/// Renders every row as `v1|v2|...` (NULL as `NULL`), in result order.
pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formatter"))
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            );
        }
    }
    out
}

/// [`rows`], sorted: for comparing results whose order is not defined.
pub fn sorted_rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut r = rows(batches);
    r.sort();
    r
}

/// Runs SQL, returning the batches and the executed physical plan (for metrics).
pub async fn run_with_plan(
    ctx: &SessionContext,
    sql: &str,
) -> (Vec<RecordBatch>, Arc<dyn ExecutionPlan>) {
    let df = ctx.sql(sql).await.expect("plan");
    let plan = df.create_physical_plan().await.expect("physical plan");
    let batches = collect(Arc::clone(&plan), ctx.task_ctx())
        .await
        .expect("run");
    (batches, plan)
}

/// Finds the DynamoDB scan in a plan.
pub fn find_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&DynamoExec> {
    if let Some(scan) = (plan.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoExec>() {
        return Some(scan);
    }
    plan.children().into_iter().find_map(find_scan)
}

/// Sum of a named metric over the partitions of the scan in `plan`.
pub fn scan_metric(plan: &Arc<dyn ExecutionPlan>, name: &str) -> usize {
    let scan = find_scan(plan).expect("plan has a DynamoExec");
    let metrics = scan.metrics().expect("scan has metrics");
    if name == "output_rows" {
        // DataFusion keeps the standard row count out of `sum_by_name`.
        return metrics.output_rows().unwrap_or(0);
    }
    metrics.sum_by_name(name).map(|v| v.as_usize()).unwrap_or(0)
}

/// A client for a loopback port nothing listens on (static test credentials,
/// so the credential chain stays local).
pub async fn dead_endpoint_client() -> Client {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let options = dynamo_datafusion::ConnectionOptions::default()
        .with_endpoint_url(Some(format!("http://127.0.0.1:{port}")))
        .with_region(Some("us-east-1".into()));
    let config = options
        .sdk_config()
        .await
        .into_builder()
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new(
                "test",
                "local-secret",
                None,
                None,
                "static",
            ),
        ));
    Client::new(&config.build())
}
