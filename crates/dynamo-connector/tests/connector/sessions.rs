//! Each client's SQL session kept by `serve` between requests: a repeated
//! `sql` request pays for its reads only, and the kept session is built
//! again when the client's service changes, after a failed statement, and
//! never with `--session-ttl-secs 0`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{FaultConfig, FaultProxy, TableSpec, local_client_as, local_endpoint};
use serde_json::{Value, json};

use crate::fixture::*;

async fn counting_proxy() -> FaultProxy {
    FaultProxy::start(
        &local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        FaultConfig::none(),
    )
    .await
    .expect("proxy")
}

/// The `sql` answer of `statement` through `serve` at `addr`: (status, body).
fn sql(addr: &str, token: &str, statement: &str) -> (u16, Value) {
    let body = json!({"inputs": {"operation": "sql", "sql": statement}}).to_string();
    let (status, text) = post_connector(addr, Some(token), body.as_bytes());
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("JSON ({e}): {text}"));
    (status, v)
}

/// DynamoDB requests `proxy` passed while `f` ran, and what `f` answered.
fn requests_of<R>(proxy: &FaultProxy, f: impl FnOnce() -> R) -> (u64, R) {
    let before = proxy.counts().requests;
    let out = f();
    (proxy.counts().requests - before, out)
}

const TOTAL: &str = "SELECT count(*) AS c, sum(\"engagementScore\") AS s FROM \"UserEngagement\" WHERE \"userId\" = '123456'";

// Multi-threaded: the proxies serve while this thread waits on sockets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_sql_request_pays_for_its_reads_only() {
    let f = fixture().await;
    let proxy = counting_proxy().await;
    set_endpoint(&f, "acme", &proxy.endpoint());
    let (mut server, addr) = start_server(&f);
    let answer = |v: &Value| (v["items"][0]["c"].clone(), v["items"][0]["s"].to_string());
    let expected = (json!(3), "151".to_string());

    // The first request lists and describes the table (and samples it).
    let (first, (status, v)) = requests_of(&proxy, || sql(&addr, &f.acme_session, TOTAL));
    assert_eq!(status, 200, "{v}");
    assert_eq!(answer(&v), expected, "{v}");
    assert!(
        first > 1,
        "ListTables, DescribeTable… then the Query: {first}"
    );
    // The next ones read the partition: one Query each.
    for _ in 0..3 {
        let (next, (status, v)) = requests_of(&proxy, || sql(&addr, &f.acme_session, TOTAL));
        assert_eq!(status, 200, "{v}");
        assert_eq!(answer(&v), expected, "{v}");
        assert_eq!(next, 1, "only the Query: {v}");
    }
    // Another session of the same client shares it; another client does not.
    let (other, (status, v)) = requests_of(&proxy, || sql(&addr, &f.globex_session, TOTAL));
    assert_eq!(
        (status, other),
        (200, 0),
        "globex reads its own DynamoDB: {v}"
    );
    assert_eq!(v["items"][0]["c"], json!(1), "globex's own data: {v}");

    // A table created now is found at once (an unknown name is described).
    let client = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    TableSpec::new("Fresh", "id", T::S)
        .create(&client)
        .await
        .expect("create");
    client
        .put_item()
        .table_name("Fresh")
        .set_item(Some(HashMap::from([("id".to_string(), AV::S("a".into()))])))
        .send()
        .await
        .expect("put");
    let (status, v) = sql(
        &addr,
        &f.acme_session,
        "SELECT count(*) AS c FROM \"Fresh\"",
    );
    assert_eq!((status, &v["items"][0]["c"]), (200, &json!(1)), "{v}");

    // A deleted table fails its statement against the kept description
    // (`table_not_found`, as without kept sessions); the failure drops the
    // kept session, so the next request lists and describes again.
    dynamo_testkit::delete_table(&client, "Fresh")
        .await
        .expect("delete");
    let (status, v) = sql(
        &addr,
        &f.acme_session,
        "SELECT count(*) AS c FROM \"Fresh\"",
    );
    assert_eq!(status, 404, "{v}");
    assert_eq!(code(&v), "table_not_found", "{v}");
    let (rebuilt, (status, v)) = requests_of(&proxy, || sql(&addr, &f.acme_session, TOTAL));
    assert_eq!((status, answer(&v)), (200, expected.clone()), "{v}");
    assert!(rebuilt > 1, "built again after the failure: {rebuilt}");

    // A new service configuration builds a new client, and a new session.
    let moved = counting_proxy().await;
    set_endpoint(&f, "acme", &moved.endpoint());
    let (old, (status, v)) = requests_of(&proxy, || sql(&addr, &f.acme_session, TOTAL));
    assert_eq!((status, answer(&v)), (200, expected.clone()), "{v}");
    assert_eq!(old, 0, "nothing through the old endpoint");
    assert!(moved.counts().requests > 1, "listed and described again");
    let _ = stop_gracefully(&mut server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ttl_of_zero_builds_a_session_per_request() {
    let f = fixture().await;
    let proxy = counting_proxy().await;
    set_endpoint(&f, "acme", &proxy.endpoint());
    let (mut server, addr) = start_server_with(&f, &["--session-ttl-secs", "0"]);
    for _ in 0..2 {
        let (n, (status, v)) = requests_of(&proxy, || sql(&addr, &f.acme_session, TOTAL));
        assert_eq!(status, 200, "{v}");
        assert!(n > 1, "listed and described every time: {n}");
    }
    let _ = stop_gracefully(&mut server);
}
