//! Bad input gets a clear error: unknown table or column, bad SQL, unreachable endpoint.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use dynamo_datafusion::{DynamoTableProvider, Error};
use dynamo_testkit::{TableSpec, put_items, unique_name};

use crate::common::{client, context_with, dead_endpoint_client, query};

#[tokio::test]
async fn unknown_table_is_named() {
    let err = DynamoTableProvider::try_new(client().await, "NoSuchTable_xyz")
        .await
        .expect_err("missing table");
    assert!(matches!(err, Error::TableNotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("'NoSuchTable_xyz' does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_column_and_bad_sql() {
    let client = client().await;
    let table = unique_name("errs");
    TableSpec::new(&table, "id", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("create");
    put_items(
        &client,
        &table,
        vec![HashMap::from([("id".to_string(), AV::S("a".into()))])],
    )
    .await
    .expect("put");
    let provider = DynamoTableProvider::try_new(client, &table)
        .await
        .expect("provider");
    let ctx = context_with("t", provider);
    let err = query(&ctx, "SELECT nope FROM t")
        .await
        .expect_err("unknown column");
    assert!(err.to_string().contains("No field named nope"), "{err}");
    let err = query(&ctx, "SELEC id FROM t").await.expect_err("bad SQL");
    assert!(err.to_string().contains("SELEC"), "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_is_a_clear_error() {
    let client = dead_endpoint_client().await;
    let err = DynamoTableProvider::try_new(client, "Anything")
        .await
        .expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(
        msg.contains("DescribeTable") && msg.contains("Anything"),
        "{msg}"
    );
    assert!(
        msg.to_lowercase().contains("connect") || msg.contains("dispatch"),
        "{msg}"
    );
    assert!(
        !msg.contains("local-secret"),
        "secrets never appear in errors: {msg}"
    );
}
