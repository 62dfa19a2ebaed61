//! Plans with DynamoDB tables and scans through this crate's codecs and
//! DataFusion's protobuf serialization, against DynamoDB Local: the decoded
//! plans answer like the originals, read with the decoding side's own
//! credentials, and no credential is in the bytes.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::physical_plan::collect;
use datafusion::prelude::SessionContext;
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use dynamo_ballista::{Connector, DynamoLogicalCodec, DynamoPhysicalCodec};
use dynamo_datafusion::{ConnectionOptions, DynamoTableProvider};
use dynamo_testkit::{TableSpec, local_endpoint, unique_name};

const PLANNER_KEY: &str = "AKIDPLANNERSENTINEL";
const PLANNER_SECRET: &str = "plannerSecretSentinel0123456789";

fn config(key: &str, secret: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(local_endpoint().expect("DYNAMODB_ENDPOINT"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key, secret, None, None, "test",
        )))
        .build()
}

/// A table of 600 items over 20 partition keys, read as the planner.
async fn table() -> (String, Client) {
    let client = Client::new(&config(PLANNER_KEY, PLANNER_SECRET));
    let name = unique_name("Ballista");
    let items = (0..600)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 20))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("n".to_string(), AV::N((i % 7).to_string())),
            ])
        })
        .collect();
    TableSpec::new(&name, "pk", T::S)
        .sort_key("sk", T::N)
        .create_with(&client, items)
        .await
        .expect("table");
    (name, client)
}

/// The decoding side: its own credentials (DynamoDB Local keeps one
/// database per access key id, so the id is the planner's; the secret is
/// not), the same local endpoint.
fn connector() -> Connector {
    Connector::new(
        config(PLANNER_KEY, "executorOwnSecret"),
        ConnectionOptions::default(),
    )
}

const QUERIES: &[&str] = &[
    "SELECT count(*), sum(n) FROM t",
    "SELECT n, count(*) FROM t GROUP BY n ORDER BY n",
    "SELECT sk, n FROM t WHERE pk = 'p3' AND sk > 100 ORDER BY sk",
    "SELECT n FROM t WHERE pk = 'p4' AND sk = 44",
    // No request can say `n % 7 = 3`: only the read's re-check does, so it
    // must travel with the scan.
    "SELECT pk, sk FROM t WHERE n % 7 = 3 AND n > 2 ORDER BY pk, sk",
];

async fn answer(
    ctx: &SessionContext,
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
) -> String {
    let batches = collect(plan, ctx.task_ctx()).await.expect("run");
    pretty_format_batches(&batches).expect("format").to_string()
}

#[tokio::test]
async fn scans_travel_as_plans_without_credentials_and_answer_the_same() {
    let (name, client) = table().await;
    let provider = DynamoTableProvider::builder(client, &name)
        .segments(4)
        .build()
        .await
        .expect("provider");
    let ctx = SessionContext::new();
    ctx.register_table("t", Arc::new(provider))
        .expect("register");
    let physical = DynamoPhysicalCodec::new(
        Arc::new(BallistaPhysicalExtensionCodec::default()),
        connector(),
    );
    let logical = DynamoLogicalCodec::new(
        Arc::new(BallistaLogicalExtensionCodec::default()),
        connector(),
    );
    for sql in QUERIES {
        let df = ctx.sql(sql).await.expect("sql");
        let logical_plan = df.logical_plan().clone();
        let plan = df.create_physical_plan().await.expect("plan");
        let local = answer(&ctx, Arc::clone(&plan)).await;
        if sql.contains("% 7") {
            let shown = datafusion::physical_plan::displayable(plan.as_ref())
                .indent(false)
                .to_string();
            assert!(
                !shown.contains("FilterExec") && shown.contains("recheck=["),
                "{sql}: checked by the read alone: {shown}"
            );
            assert!(local.lines().count() > 4, "{sql}: some rows pass: {local}");
        }

        let bytes = physical_plan_to_bytes_with_extension_codec(Arc::clone(&plan), &physical)
            .expect("encode physical");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(PLANNER_KEY) && !text.contains(PLANNER_SECRET),
            "{sql}: a credential in the physical plan"
        );
        assert!(text.contains(&name), "{sql}: the plan names its table");
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &physical)
                .expect("decode physical");
        assert_eq!(answer(&ctx, decoded).await, local, "{sql}: physical plan");

        let bytes = logical_plan_to_bytes_with_extension_codec(&logical_plan, &logical)
            .expect("encode logical");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(PLANNER_KEY) && !text.contains(PLANNER_SECRET),
            "{sql}: a credential in the logical plan"
        );
        let decoded =
            logical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &logical)
                .expect("decode logical");
        let replanned = ctx
            .state()
            .create_physical_plan(&decoded)
            .await
            .expect("replan");
        assert_eq!(answer(&ctx, replanned).await, local, "{sql}: logical plan");
    }
}

#[tokio::test]
async fn a_buffer_that_is_not_ours_goes_to_the_wrapped_codec() {
    use datafusion_proto::physical_plan::{DefaultPhysicalProtoConverter, PhysicalExtensionCodec};
    let physical = DynamoPhysicalCodec::new(
        Arc::new(BallistaPhysicalExtensionCodec::default()),
        connector(),
    );
    let ctx = SessionContext::new();
    let err = physical
        .try_decode(
            b"{\"not\": \"ours\"}",
            &[],
            &ctx.task_ctx(),
            &DefaultPhysicalProtoConverter {},
        )
        .expect_err("Ballista's codec refuses it");
    assert!(!err.to_string().contains("dynamo-ballista codec"), "{err}");
    let bad = [dynamo_ballista::codec::MAGIC, b"{\"plan\": 1}"].concat();
    let err = physical
        .try_decode(
            &bad,
            &[],
            &ctx.task_ctx(),
            &DefaultPhysicalProtoConverter {},
        )
        .expect_err("ours, but broken");
    assert!(
        err.to_string()
            .contains("dynamo-ballista codec: decoding a scan"),
        "{err}"
    );
}
