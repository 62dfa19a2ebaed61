//! `scan` and `query`: faults, paging with `nextToken`, exact caps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{
    FaultConfig, FaultProxy, TableSpec, create_table, local_client_as, local_endpoint, put_items,
};
use serde_json::{Value, json};

use crate::fixture::*;

// Multi-threaded: `run` blocks one thread while the proxy serves on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_change_no_answer() {
    let f = fixture().await;
    let req = seed_request().to_string();
    let (ok, clean, all) = run(&f, &f.acme_session, &req);
    assert!(ok, "{all}");
    let proxy = FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig::mixed(0.10, 7),
    )
    .await
    .expect("proxy");
    set_endpoint(&f, "acme", &proxy.endpoint());
    for _ in 0..20 {
        let (ok, v, all) = run(&f, &f.acme_session, &req);
        assert!(ok, "{all}");
        assert_eq!(v["items"], clean["items"]);
    }
    assert!(proxy.counts().total_faults() > 0, "{:?}", proxy.counts());
}

#[tokio::test]
async fn paging_with_next_token_returns_every_item_once() {
    let f = fixture().await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut req =
            json!({"inputs": {"tableName": "UserEngagement", "operation": "scan", "limit": 1}});
        if let Some(t) = &token {
            req["inputs"]["nextToken"] = json!(t);
        }
        let (ok, v, all) = run(&f, &f.acme_session, &req.to_string());
        assert!(ok, "{all}");
        for item in v["items"].as_array().expect("items") {
            seen.push(format!(
                "{}|{}",
                item["userId"]["S"], item["eventTime"]["N"]
            ));
        }
        token = v["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    let before = seen.len();
    seen.dedup();
    assert_eq!((before, seen.len()), (4, 4), "{seen:?}");
    // A token used on another table is refused.
    let first = json!({"inputs": {"tableName": "UserEngagement", "operation": "scan", "limit": 1}});
    let (_, v, _) = run(&f, &f.acme_session, &first.to_string());
    let other = json!({"inputs": {"tableName": "Other_table", "operation": "scan", "nextToken": v["nextToken"]}});
    let (_, v, _) = run(&f, &f.acme_session, &other.to_string());
    assert_eq!(code(&v), "invalid_request");
}

/// The connector of the fixture's store and key, in this process.
fn in_process_connector(f: &Fixture) -> dynamo_connector::Connector {
    use dynamo_connector::{Connector, MasterKey, MasterKeyCipher, SqliteStore, TenantResolver};
    use std::sync::Arc;
    let key = MasterKey::load(Some(&f.key_file)).expect("key");
    let store = Arc::new(SqliteStore::open(&f.store).expect("store"));
    let resolver = TenantResolver::new(
        store.clone(),
        store.clone(),
        store,
        Arc::new(MasterKeyCipher(key)),
    );
    Connector::new(Arc::new(resolver))
}

/// One read paged to its end with `nextToken`: answers, and the summed
/// `scannedCount` and `consumedCapacity`.
#[derive(Debug, PartialEq)]
struct Paged {
    answers: usize,
    items: usize,
    scanned: u64,
    capacity: f64,
}

async fn page_totals(
    connector: &dynamo_connector::Connector,
    session: &str,
    inputs: &Value,
    config: &Value,
) -> Paged {
    let mut paged = Paged {
        answers: 0,
        items: 0,
        scanned: 0,
        capacity: 0.0,
    };
    let mut token: Option<String> = None;
    loop {
        let mut request = json!({"inputs": inputs, "config": config});
        if let Some(t) = &token {
            request["inputs"]["nextToken"] = json!(t);
        }
        let v = connector
            .handle(Some(session), request.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{request}: {}", e.to_json()));
        paged.answers += 1;
        paged.items += v["items"].as_array().expect("items").len();
        paged.scanned += v["scannedCount"].as_u64().expect("scannedCount");
        paged.capacity += v["consumedCapacity"].as_f64().expect("consumedCapacity");
        token = v["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            return paged;
        }
        assert!(paged.answers < 1_000, "paging did not end");
    }
}

/// AWS's Movies sample, in shape: (year, title) keys, an `info` map with a
/// list of actors (0 to 4) and a plot; about 2 MB, so DynamoDB pages it.
async fn movies(client: &aws_sdk_dynamodb::Client, count: usize) -> String {
    let table = dynamo_testkit::unique_name("Movies");
    create_table(
        client,
        &TableSpec::new(&table, "year", T::N).sort_key("title", T::S),
    )
    .await
    .expect("create");
    let items = (0..count)
        .map(|i| {
            let actors = (0..i % 5)
                .map(|a| AV::S(format!("Actor {i}-{a}")))
                .collect();
            let info = HashMap::from([
                ("actors".to_string(), AV::L(actors)),
                ("rating".to_string(), AV::N(format!("{}.{}", i % 10, i % 7))),
                ("plot".to_string(), AV::S(format!("{i} ").repeat(120))),
            ]);
            HashMap::from([
                ("year".to_string(), AV::N((1920 + i % 90).to_string())),
                ("title".to_string(), AV::S(format!("Movie {i:05}"))),
                ("info".to_string(), AV::M(info)),
            ])
        })
        .collect();
    put_items(client, &table, items).await.expect("put");
    table
}

#[tokio::test]
async fn paging_with_default_caps_reads_as_dynamodb_pages_and_a_cut_page_is_not_read_again() {
    use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
    let f = fixture().await;
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let total = 4_000;
    let table = movies(&client, total).await;
    let connector = in_process_connector(&f);
    // AWS's documented request: actors of at least 3, a projection.
    let inputs = json!({"tableName": table, "operation": "scan",
        "filterExpression": "size(info.actors) >= :num",
        "projection": "#yr, title, info.rating",
        "expressionAttributeNames": {"#yr": "year"},
        "expressionAttributeValues": {":num": {"N": "3"}}});

    // DynamoDB's own paging of the same request.
    let mut own = Paged {
        answers: 0,
        items: 0,
        scanned: 0,
        capacity: 0.0,
    };
    let mut pages = client
        .scan()
        .table_name(&table)
        .filter_expression("size(info.actors) >= :num")
        .projection_expression("#yr, title, info.rating")
        .expression_attribute_names("#yr", "year")
        .expression_attribute_values(":num", AV::N("3".into()))
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.expect("scan page");
        own.answers += 1;
        own.items += page.items().len();
        own.scanned += page.scanned_count() as u64;
        own.capacity += page
            .consumed_capacity()
            .and_then(|c| c.capacity_units())
            .expect("consumed capacity");
    }
    assert!(own.answers >= 2, "the table spans pages: {own:?}");
    assert_eq!(own.scanned, total as u64);

    // Default caps: the connector's answers end on DynamoDB's page
    // boundaries, so together they read what DynamoDB's own paging reads.
    let paged = page_totals(&connector, &f.acme_session, &inputs, &json!({})).await;
    assert_eq!(
        (paged.items, paged.scanned, paged.capacity),
        (own.items, own.scanned, own.capacity),
        "default paging differs from DynamoDB's own: {paged:?} vs {own:?}"
    );
    assert!(paged.answers <= own.answers, "{paged:?} vs {own:?}");

    // The caller's maxItems cuts inside pages; with a filter every item
    // matches, so each answer resumes exactly where the last one stopped and
    // the table is read once in all.
    let all = json!({"tableName": table, "operation": "scan",
        "filterExpression": "size(info.actors) >= :num",
        "expressionAttributeValues": {":num": {"N": "0"}}});
    let paged = page_totals(
        &connector,
        &f.acme_session,
        &all,
        &json!({"maxItems": 1000}),
    )
    .await;
    assert_eq!(
        (paged.items, paged.scanned),
        (total, total as u64),
        "{paged:?}"
    );
    assert!(paged.answers >= 4, "{paged:?}");
    // Some match (2 in 5): every matching item once; requests sized from the
    // answer's share of matches cut few pages, and a cut page's rest is all
    // that is read again (measured: 4,818 items read for 4,000; re-reading
    // from each cut to its page's end read 7,006).
    let paged = page_totals(
        &connector,
        &f.acme_session,
        &inputs,
        &json!({"maxItems": 300}),
    )
    .await;
    assert_eq!(paged.items, own.items, "{paged:?}");
    assert!(
        2 * paged.scanned < 3 * total as u64,
        "cut pages were read again: {paged:?}"
    );
}

/// Pages through one read with `nextToken` under `config`, checking every
/// answer's caps; returns every item's `id` in the order returned.
async fn page_through(
    connector: &dynamo_connector::Connector,
    session: &str,
    inputs: &Value,
    config: &Value,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..500 {
        let mut request = json!({"inputs": inputs, "config": config});
        if let Some(t) = &token {
            request["inputs"]["nextToken"] = json!(t);
        }
        let v = connector
            .handle(Some(session), request.to_string().as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{request}: {}", e.to_json()));
        let items = v["items"].as_array().expect("items");
        if let Some(max) = config["maxItems"].as_u64() {
            assert!(items.len() as u64 <= max, "{v}");
        }
        if let Some(max) = config["maxScanned"].as_u64() {
            assert!(v["scannedCount"].as_u64().expect("scanned") <= max, "{v}");
        }
        if let Some(limit) = inputs["limit"].as_u64() {
            assert!(v["scannedCount"].as_u64().expect("scanned") <= limit, "{v}");
        }
        for item in items {
            assert!(
                inputs.get("projection").is_none() || item.get("pk").is_none(),
                "an added key attribute was returned: {item}"
            );
            seen.push(item["id"]["S"].as_str().expect("id").to_string());
        }
        token = v["nextToken"].as_str().map(str::to_string);
        assert_eq!(v["complete"], json!(token.is_none()), "{v}");
        if token.is_none() {
            assert!(v["stoppedBy"].is_null(), "{v}");
            return seen;
        }
        assert!(
            v["stoppedBy"].is_string(),
            "an early stop names its cap: {v}"
        );
    }
    panic!("paging did not end");
}

#[tokio::test]
async fn caps_are_exact_and_paging_under_any_of_them_returns_every_item_once() {
    let f = fixture().await;
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // 150 items in 3 partitions; GSI byGroup (group, n); score 0..149.
    let table = dynamo_testkit::unique_name("Paging");
    create_table(
        &client,
        &TableSpec::new(&table, "pk", T::S)
            .sort_key("n", T::N)
            .global_index("byGroup", ("group", T::S), Some(("n", T::N))),
    )
    .await
    .expect("create");
    let total = 150;
    let items = (0..total)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("p{}", i % 3))),
                ("n".to_string(), AV::N(i.to_string())),
                ("id".to_string(), AV::S(format!("i{i:03}"))),
                ("group".to_string(), AV::S(format!("g{}", i % 2))),
                ("score".to_string(), AV::N(i.to_string())),
                ("pad".to_string(), AV::S("x".repeat(100))),
            ])
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");

    let connector = in_process_connector(&f);

    let filters = [
        ("nothing", "score > :v", 1_000, 0),
        ("some", "score >= :v", 100, total - 100),
        ("all", "score >= :v", 0, total),
    ];
    let configs = [
        json!({"maxItems": 7}),
        json!({"maxScanned": 13}),
        json!({"maxCapacity": 1}),
        json!({"maxBytes": 700}),
        json!({"maxItems": 4, "maxScanned": 9}),
    ];
    for (what, filter, v, expected) in filters {
        for config in &configs {
            for limit in [None, Some(11)] {
                let mut inputs = json!({"tableName": table, "operation": "scan",
                    "filterExpression": filter, "expressionAttributeValues": {":v": {"N": v.to_string()}}});
                if let Some(l) = limit {
                    inputs["limit"] = json!(l);
                }
                let mut seen = page_through(&connector, &f.acme_session, &inputs, config).await;
                let n = seen.len();
                seen.sort();
                seen.dedup();
                assert_eq!(
                    (n, seen.len()),
                    (expected, expected),
                    "filter matching {what}, config {config}, limit {limit:?}: lost or repeated items"
                );
            }
        }
    }

    // An index Query with a projection that leaves the keys out: answers are
    // cut after any item, keys are not returned, nothing lost or repeated.
    let inputs = json!({"tableName": table, "operation": "query", "indexName": "byGroup",
        "keyCondition": "#g = :g", "filterExpression": "score >= :s",
        "expressionAttributeNames": {"#g": "group"},
        "expressionAttributeValues": {":g": {"S": "g1"}, ":s": {"N": "20"}},
        "projection": "id, score"});
    let mut seen = page_through(
        &connector,
        &f.acme_session,
        &inputs,
        &json!({"maxItems": 6}),
    )
    .await;
    let expected = (0..total).filter(|i| i % 2 == 1 && *i >= 20).count();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((n, seen.len()), (expected, expected));

    // DynamoDB's Limit: one request evaluating 6 items, whatever matches.
    let one = json!({"inputs": {"tableName": table, "operation": "scan", "limit": 6,
        "filterExpression": "score > :v", "expressionAttributeValues": {":v": {"N": "1000"}}}});
    let v = connector
        .handle(Some(&f.acme_session), one.to_string().as_bytes())
        .await
        .expect("scan");
    assert_eq!(
        (
            v["scannedCount"].clone(),
            v["count"].clone(),
            v["stoppedBy"].clone()
        ),
        (json!(6), json!(0), json!("limit")),
        "{v}"
    );
    assert!(v["nextToken"].is_string());

    // maxItems cuts inside a page: exactly that many items.
    let capped =
        json!({"inputs": {"tableName": table, "operation": "scan"}, "config": {"maxItems": 5}});
    let v = connector
        .handle(Some(&f.acme_session), capped.to_string().as_bytes())
        .await
        .expect("scan");
    assert_eq!(
        (v["count"].clone(), v["stoppedBy"].clone()),
        (json!(5), json!("maxItems")),
        "{v}"
    );
}
