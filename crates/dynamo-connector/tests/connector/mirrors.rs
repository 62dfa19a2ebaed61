//! A client's tables answered from mirrors: `admin mirror set` makes the
//! client's `sql` read the mirror (no DynamoDB item read) within its bound,
//! catch up from the stream past it, or answer `mirror_unavailable`; the
//! live reads a mirror makes use the client's own credentials.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T, StreamViewType};
use dynamo_datafusion::DynamoTableProvider;
use dynamo_mirror::Mirror;
use dynamo_testkit::{TableSpec, local_client_as, put_items};
use serde_json::json;

use crate::fixture::*;

fn item(i: usize) -> HashMap<String, AV> {
    HashMap::from([
        ("id".to_string(), AV::S(format!("i{i:03}"))),
        ("n".to_string(), AV::N(i.to_string())),
    ])
}

fn count_request(table: &str) -> String {
    json!({"inputs": {"operation": "sql", "sql": format!("SELECT count(*) AS c, sum(n) AS s FROM \"{table}\"")}})
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clients_sql_answers_from_its_mirror_within_the_bound_and_catches_up_past_it() {
    let f = fixture().await;
    let acme = local_client_as(&f.acme_key, "us-east-1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let table = "Mirrored";
    TableSpec::new(table, "id", T::S)
        .stream(StreamViewType::NewAndOldImages)
        .create(&acme)
        .await
        .expect("create");
    put_items(&acme, table, (0..30).map(item).collect())
        .await
        .expect("put");
    let live = Arc::new(
        DynamoTableProvider::try_new(acme.clone(), table)
            .await
            .expect("provider"),
    );
    let path = f._dir.path().join("mirrors/acme-mirrored");
    let path = path.to_str().expect("utf-8 path");
    Mirror::create(&live, path).await.expect("mirror");

    let set = |client: &str, staleness: &str, on_stale: &str| {
        let o = admin(
            &f,
            &[
                "mirror",
                "set",
                client,
                table,
                path,
                "--max-staleness",
                staleness,
                "--on-stale",
                on_stale,
            ],
            None,
        );
        assert!(o.status.success(), "{}", text(&o));
    };
    set("acme", "1h", "error");
    let listed = text(&admin(&f, &["mirror", "list", "acme"], None));
    assert!(
        listed.contains(table) && listed.contains("3600000 ms"),
        "{listed}"
    );

    // Within the bound: the mirror answers, no DynamoDB item read.
    let (ok, v, all) = run(&f, &f.acme_session, &count_request(table));
    assert!(ok, "{all}");
    assert_eq!(v["items"][0]["c"], json!(30), "{v}");
    assert_eq!(v["scannedCount"], json!(0), "{v}");
    // A write the mirror does not have yet: still the mirror's answer.
    acme.put_item()
        .table_name(table)
        .set_item(Some(item(100)))
        .send()
        .await
        .expect("put");
    let (_, v, _) = run(&f, &f.acme_session, &count_request(table));
    assert_eq!(v["items"][0]["c"], json!(30), "{v}");

    // Past the bound with `error`: the client is told, with its own code.
    set("acme", "0s", "error");
    let (ok, v, all) = run(&f, &f.acme_session, &count_request(table));
    assert!(!ok, "{all}");
    assert_eq!(code(&v), "mirror_unavailable", "{v}");
    assert!(all.contains("max_staleness"), "{all}");

    // With `sync`: caught up from the stream, with the client's credentials.
    set("acme", "0s", "sync");
    let (ok, v, all) = run(&f, &f.acme_session, &count_request(table));
    assert!(ok, "{all}");
    assert_eq!(v["items"][0]["c"], json!(31), "{v}");
    assert_eq!(v["scannedCount"], json!(0), "{v}");
    assert_no_secret(&f, &all);

    // Another client pointed at the same mirror reads with its own
    // credentials: its database has no such table.
    set("globex", "0s", "live");
    let (ok, v, all) = run(&f, &f.globex_session, &count_request(table));
    assert!(!ok, "{all}");
    assert_eq!(code(&v), "table_not_found", "{v}");

    // Removed: read live again (every item read).
    let o = admin(&f, &["mirror", "remove", "acme", table], None);
    assert!(o.status.success(), "{}", text(&o));
    let (ok, v, all) = run(&f, &f.acme_session, &count_request(table));
    assert!(ok, "{all}");
    assert_eq!(v["items"][0]["c"], json!(31), "{v}");
    assert_eq!(v["scannedCount"], json!(31), "{v}");

    // A location that holds no mirror is refused when it is set.
    let o = admin(
        &f,
        &[
            "mirror",
            "set",
            "acme",
            table,
            f._dir.path().to_str().expect("path"),
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("not a mirror"), "{}", text(&o));
}
