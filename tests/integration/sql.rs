//! SQL across DynamoDB tables: joins, aggregates, catalogs, CREATE EXTERNAL TABLE.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::{TableOptions, dynamo_session};
use dynamo_testkit::{TableSpec, put_items, unique_name};

use crate::common::{client, query, rows};

/// Customers and their orders, with totals known in advance.
async fn shop() -> (String, String, aws_sdk_dynamodb::Client) {
    let client = client().await;
    let customers = unique_name("Customers");
    let orders = unique_name("Orders");
    TableSpec::new(&customers, "customerId", ScalarAttributeType::S)
        .create(&client)
        .await
        .expect("create customers");
    TableSpec::new(&orders, "customerId", ScalarAttributeType::S)
        .sort_key("orderId", ScalarAttributeType::N)
        .create(&client)
        .await
        .expect("create orders");
    let regions = ["north", "south", "east"];
    let custs = (0..30)
        .map(|c| {
            HashMap::from([
                ("customerId".to_string(), AV::S(format!("c{c:02}"))),
                ("region".to_string(), AV::S(regions[c % 3].to_string())),
            ])
        })
        .collect();
    let ords = (0..300)
        .map(|o| {
            HashMap::from([
                ("customerId".to_string(), AV::S(format!("c{:02}", o % 30))),
                ("orderId".to_string(), AV::N(o.to_string())),
                ("total".to_string(), AV::N(format!("{}.{:02}", o, o % 100))),
            ])
        })
        .collect();
    put_items(&client, &customers, custs)
        .await
        .expect("put customers");
    put_items(&client, &orders, ords).await.expect("put orders");
    (customers, orders, client)
}

async fn catalog_context(client: aws_sdk_dynamodb::Client) -> SessionContext {
    dynamo_session(client, SessionConfig::new(), TableOptions::default())
        .await
        .expect("list tables")
}

#[tokio::test]
async fn join_and_aggregate_across_two_tables() {
    let (customers, orders, client) = shop().await;
    let ctx = catalog_context(client).await;
    let sql = format!(
        "SELECT c.region, count(*) AS orders, sum(o.total) AS revenue \
         FROM \"{orders}\" o JOIN \"{customers}\" c ON o.customerId = c.customerId \
         GROUP BY c.region ORDER BY c.region"
    );
    let got = rows(&query(&ctx, &sql).await.expect("join"));
    // Expected totals computed independently of the engine.
    let mut expected: Vec<(String, usize, i64)> = ["east", "north", "south"]
        .iter()
        .map(|r| (r.to_string(), 0, 0))
        .collect();
    for o in 0..300i64 {
        let region = ["north", "south", "east"][((o % 30) % 3) as usize];
        let slot = expected.iter_mut().find(|e| e.0 == region).expect("region");
        slot.1 += 1;
        slot.2 += o * 100 + o % 100; // cents
    }
    let expected: Vec<String> = expected
        .into_iter()
        // Prices have two decimals; the inferred column keeps four.
        .map(|(r, n, cents)| format!("{r}|{n}|{}.{:02}00", cents / 100, cents % 100))
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn tables_are_found_by_exact_case_sensitive_name() {
    let (customers, _orders, client) = shop().await;
    let ctx = catalog_context(client).await;
    let got = rows(
        &query(
            &ctx,
            &format!("SELECT count(*) FROM {customers} WHERE region = 'north'"),
        )
        .await
        .expect("unquoted mixed-case name works as typed"),
    );
    assert_eq!(got, vec!["10"]);
    let wrong_case = customers.to_lowercase();
    let err = query(&ctx, &format!("SELECT * FROM {wrong_case}"))
        .await
        .expect_err("other case");
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn create_external_table_with_options_and_explicit_columns() {
    let (_customers, orders, client) = shop().await;
    let ctx = catalog_context(client).await;
    query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE o2 STORED AS DYNAMODB LOCATION '{orders}' \
             OPTIONS ('segments' '3', 'column_types' 'total: Utf8')"
        ),
    )
    .await
    .expect("create with options");
    let got = rows(
        &query(&ctx, "SELECT total FROM o2 WHERE orderId = 101")
            .await
            .expect("query"),
    );
    assert_eq!(got, vec!["101.01"]);
    query(
        &ctx,
        &format!(
            "CREATE EXTERNAL TABLE o3 (customerId VARCHAR NOT NULL, total DECIMAL(10, 2)) \
             STORED AS DYNAMODB LOCATION '{orders}'"
        ),
    )
    .await
    .expect("create with columns");
    let got = rows(
        &query(&ctx, "SELECT count(*), sum(total) FROM o3")
            .await
            .expect("query"),
    );
    let cents: i64 = (0..300i64).map(|o| o * 100 + o % 100).sum();
    assert_eq!(got, vec![format!("300|{}.{:02}", cents / 100, cents % 100)]);

    let err = query(
        &ctx,
        &format!("CREATE EXTERNAL TABLE o4 STORED AS DYNAMODB LOCATION '{orders}' OPTIONS ('colour' 'red')"),
    )
    .await
    .expect_err("unknown option");
    assert!(err.to_string().contains("unknown option"), "{err}");
}

/// Found by the connector's soak (benches/soak.rs: the server grew ~4 MiB a
/// minute under `sql` requests): describing a table kept the describe call's
/// runtime components in a cycle with the interceptor that noted them, so
/// every provider built — one per table per `sql` request — kept its client's
/// connector and credentials alive for good. After providers, a session and
/// its query are dropped, nothing holds the client's credentials provider.
#[tokio::test]
async fn dropped_providers_and_sessions_release_their_client() {
    use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
    use std::sync::Arc;

    #[derive(Debug)]
    struct Counted(#[allow(dead_code)] Arc<()>);
    impl ProvideCredentials for Counted {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::ready(Ok(Credentials::new(
                "test",
                dynamo_testkit::LOCAL_SECRET,
                None,
                None,
                "counted",
            )))
        }
    }

    let local = crate::common::client().await;
    let table = crate::common::pk_sk_table(
        &local,
        "released",
        vec![std::collections::HashMap::from([
            (
                "pk".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::S("a".into()),
            ),
            (
                "sk".to_string(),
                aws_sdk_dynamodb::types::AttributeValue::N("1".into()),
            ),
        ])],
    )
    .await;
    let token = Arc::new(());
    {
        let config = local
            .config()
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Counted(Arc::clone(&token))))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        for _ in 0..3 {
            let provider = dynamo_datafusion::DynamoTableProvider::try_new(client.clone(), &table)
                .await
                .expect("provider");
            drop(provider);
        }
        let ctx = crate::common::dynamo_session_of(&client).await;
        let batches = crate::common::query(
            &ctx,
            &format!("SELECT count(*) FROM \"{table}\" WHERE pk = 'a'"),
        )
        .await
        .expect("query");
        assert_eq!(crate::common::rows(&batches), ["1"]);
        assert!(Arc::strong_count(&token) > 1, "the client signs with it");
    }
    assert_eq!(
        Arc::strong_count(&token),
        1,
        "a dropped provider or session still holds its client's credentials"
    );
}
