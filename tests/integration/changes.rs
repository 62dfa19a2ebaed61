//! A table's change records as a table, read from DynamoDB Local's own
//! Streams: every change once, each item's changes in order, images decoded
//! with the table's schema — replaying them gives the table back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T, StreamViewType};
use datafusion::arrow::array::RecordBatch;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::DynamoTableProvider;
use dynamo_testkit::{TableSpec, create_table, put_items, unique_name};

use crate::common::{client, pushdown_session, query, rows};

/// A table with a NEW_AND_OLD_IMAGES stream and what was done to it: 40
/// items put, every third updated twice, every fifth deleted.
async fn changed_table(client: &Client) -> (String, Vec<(String, &'static str)>) {
    let table = unique_name("Changing");
    let spec = TableSpec::new(&table, "id", T::S)
        .sort_key("n", T::N)
        .stream(StreamViewType::NewAndOldImages);
    create_table(client, &spec).await.expect("create");
    let key = |i: usize| format!("k{}#{i}", i % 4);
    let item = |i: usize, v: usize| {
        HashMap::from([
            ("id".to_string(), AV::S(format!("k{}", i % 4))),
            ("n".to_string(), AV::N(i.to_string())),
            ("v".to_string(), AV::N(v.to_string())),
            (
                "at".to_string(),
                AV::S(format!("2025-11-{:02}T08:00:00Z", 1 + i % 28)),
            ),
        ])
    };
    let mut done = Vec::new();
    put_items(client, &table, (0..40).map(|i| item(i, 0)).collect())
        .await
        .expect("put");
    done.extend((0..40).map(|i| (key(i), "INSERT")));
    for round in 1..=2 {
        for i in (0..40).step_by(3) {
            client
                .put_item()
                .table_name(&table)
                .set_item(Some(item(i, round)))
                .send()
                .await
                .expect("update");
            done.push((key(i), "MODIFY"));
        }
    }
    for i in (0..40).step_by(5) {
        client
            .delete_item()
            .table_name(&table)
            .key("id", AV::S(format!("k{}", i % 4)))
            .key("n", AV::N(i.to_string()))
            .send()
            .await
            .expect("delete");
        done.push((key(i), "REMOVE"));
    }
    (table, done)
}

/// What `read` answers once `done` holds of it, or after 20 s: DynamoDB
/// Local writes stream records as the changes happen.
async fn eventually<T, F, Fut>(mut read: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = read().await;
        if done(&answer) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows of `sql` once the stream holds `expected` records.
async fn when_recorded(ctx: &SessionContext, sql: &str, expected: usize) -> Vec<String> {
    let count = || async { rows(&query(ctx, "SELECT count(*) FROM c").await.expect("count")) };
    eventually(count, |n| *n == vec![expected.to_string()]).await;
    rows(&query(ctx, sql).await.expect(sql))
}

/// `batches` as the table `name` of a fresh session.
fn session_over(name: &str, batches: &[RecordBatch]) -> SessionContext {
    let ctx = SessionContext::new();
    if let Some(first) = batches.first() {
        let mem = datafusion::datasource::MemTable::try_new(first.schema(), vec![batches.to_vec()])
            .expect("table");
        ctx.register_table(name, Arc::new(mem)).expect("register");
    }
    ctx
}

#[tokio::test]
async fn change_records_come_once_in_order_and_replay_to_the_table() {
    let client = client().await;
    let (table, done) = changed_table(&client).await;
    let provider = DynamoTableProvider::try_new(client.clone(), &table)
        .await
        .expect("provider");
    let ctx = pushdown_session(4);
    ctx.register_table("c", provider.changes().expect("a stream"))
        .expect("register");
    ctx.register_table("t", Arc::new(provider))
        .expect("register");

    let got = when_recorded(
        &ctx,
        "SELECT concat(keys['id'], '#', CAST(keys['n'] AS VARCHAR)) AS k, event FROM c",
        done.len(),
    )
    .await;
    // Every change once, and each item's changes in the order they were made.
    let per_key = |pairs: Vec<(String, String)>| {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, e) in pairs {
            m.entry(k).or_default().push(e);
        }
        m
    };
    let read = per_key(
        got.iter()
            .map(|r| {
                let (k, e) = r.split_once('|').expect("two columns");
                (k.to_string(), e.to_string())
            })
            .collect(),
    );
    let wanted = per_key(
        done.iter()
            .map(|(k, e)| (k.clone(), e.to_string()))
            .collect(),
    );
    assert_eq!(read, wanted);

    // Images have the table's types: a MODIFY's old and new values.
    let modified = rows(
        &query(
            &ctx,
            "SELECT old_image['v'] AS before, new_image['v'] AS after, arrow_typeof(new_image['at']) \
             FROM c WHERE event = 'MODIFY' AND keys['n'] = 3",
        )
        .await
        .expect("images"),
    );
    assert_eq!(
        modified,
        vec![
            r#"0|1|Timestamp(s, "UTC")"#.to_string(),
            r#"1|2|Timestamp(s, "UTC")"#.to_string()
        ]
    );
    let removed = rows(
        &query(
            &ctx,
            "SELECT count(*) FROM c WHERE event = 'REMOVE' AND new_image IS NULL \
             AND old_image IS NOT NULL AND NOT expired",
        )
        .await
        .expect("removes"),
    );
    assert_eq!(removed, vec!["8"]);

    // Replaying the changes in order gives the table back, row for row.
    let replay = rows(
        &query(
            &ctx,
            "SELECT event, keys['id'], keys['n'], new_image['v'] FROM c",
        )
        .await
        .expect("replay"),
    );
    let mut state: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in replay {
        let f: Vec<&str> = r.split('|').collect();
        let key = (f[1].to_string(), f[2].to_string());
        match f[0] {
            "REMOVE" => {
                state.remove(&key);
            }
            _ => {
                state.insert(key, f[3].to_string());
            }
        }
    }
    let replayed: Vec<String> = state
        .into_iter()
        .map(|((id, n), v)| format!("{id}|{n}|{v}"))
        .collect();
    let mut scanned = rows(&query(&ctx, "SELECT id, n, v FROM t").await.expect("scan"));
    scanned.sort();
    let mut replayed = replayed;
    replayed.sort();
    assert_eq!(replayed, scanned);
}

#[tokio::test]
async fn a_schema_of_tables_names_change_records_and_a_table_without_a_stream_says_so() {
    let client = client().await;
    let (table, done) = changed_table(&client).await;
    let ctx = crate::common::dynamo_session_of(&client).await;
    let sql = format!("SELECT count(*) FROM \"{table}$changes\"");
    let counted = eventually(
        || async { rows(&query(&ctx, &sql).await.expect(&sql)) },
        |n| *n == vec![done.len().to_string()],
    )
    .await;
    assert_eq!(counted, vec![done.len().to_string()]);

    let plain = unique_name("NoStream");
    TableSpec::new(&plain, "id", T::S)
        .create(&client)
        .await
        .expect("create");
    let err = query(&ctx, &format!("SELECT * FROM \"{plain}$changes\""))
        .await
        .expect_err("no stream");
    assert!(
        err.to_string()
            .contains(&format!("table '{plain}' has no stream: enable one")),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_iterator_is_taken_again_and_a_trimmed_position_is_an_error() {
    let client = client().await;
    let (table, done) = changed_table(&client).await;
    let proxy = dynamo_testkit::FaultProxy::start(
        &dynamo_testkit::local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        dynamo_testkit::FaultConfig::none(),
    )
    .await
    .expect("proxy");
    let through = DynamoTableProvider::try_new(proxy.client().await, &table)
        .await
        .expect("provider");
    let ctx = pushdown_session(4);
    ctx.register_table("c", through.changes().expect("a stream"))
        .expect("register");
    let sql = "SELECT event, keys['id'], keys['n'], new_image['v'], sequence_number FROM c";
    let clean = when_recorded(&ctx, sql, done.len()).await;
    assert_eq!(clean.len(), done.len());
    // The second GetRecords of the read finds its iterator expired: the
    // read takes one after the last record it read — nothing lost, nothing
    // read twice.
    proxy.answer_error(".GetRecords", 1, "ExpiredIteratorException");
    let again = rows(&query(&ctx, sql).await.expect("read again"));
    assert_eq!(again, clean);
    let before = proxy.counts().requests;
    // A position the stream no longer holds.
    proxy.answer_error(".GetRecords", 0, "TrimmedDataAccessException");
    let err = query(&ctx, sql).await.expect_err("trimmed");
    assert!(
        err.to_string().contains(&format!(
            "table '{table}': the stream no longer holds the records of shard"
        )),
        "{err}"
    );
    assert!(proxy.counts().requests > before);
}

/// The record count of a read's batches.
fn count(read: &dynamo_datafusion::changes::ChangesRead) -> usize {
    read.batches.iter().map(|b| b.num_rows()).sum()
}

#[tokio::test]
async fn a_read_from_a_checkpoint_returns_exactly_what_changed_since() {
    let client = client().await;
    let (table, done) = changed_table(&client).await;
    let provider = DynamoTableProvider::try_new(client.clone(), &table)
        .await
        .expect("provider");
    // Everything so far (waiting for DynamoDB Local to have recorded it).
    let first = eventually(
        || async { provider.changes_since(None).await.expect("read") },
        |read| count(read) == done.len(),
    )
    .await;
    assert_eq!(count(&first), done.len());
    // A checkpoint travels as JSON (kept with what the records built).
    let text = serde_json::to_string(&first.checkpoint).expect("json");
    let checkpoint: dynamo_datafusion::changes::ChangeCheckpoint =
        serde_json::from_str(&text).expect("json");
    assert_eq!(checkpoint, first.checkpoint);
    // Nothing new: nothing read.
    let none = provider
        .changes_since(Some(checkpoint.clone()))
        .await
        .expect("read");
    assert_eq!(count(&none), 0);
    // Five more changes: exactly those five, in order.
    for v in 10..15 {
        client
            .put_item()
            .table_name(&table)
            .item("id", AV::S("k1".into()))
            .item("n", AV::N("1".into()))
            .item("v", AV::N(v.to_string()))
            .send()
            .await
            .expect("put");
    }
    let next = eventually(
        || async {
            provider
                .changes_since(Some(checkpoint.clone()))
                .await
                .expect("read")
        },
        |read| count(read) >= 5,
    )
    .await;
    let ctx = session_over("next", &next.batches);
    assert_eq!(
        rows(
            &query(
                &ctx,
                "SELECT event, CAST(new_image['v'] AS VARCHAR) FROM next"
            )
            .await
            .expect("read")
        ),
        vec![
            "MODIFY|10",
            "MODIFY|11",
            "MODIFY|12",
            "MODIFY|13",
            "MODIFY|14"
        ]
    );
    // A checkpoint of another stream is refused.
    let mut other = next.checkpoint.clone();
    other.stream_arn = "arn:aws:dynamodb:ddblocal:000000000000:table/Other/stream/x".into();
    let err = provider
        .changes_since(Some(other))
        .await
        .expect_err("another stream");
    assert!(
        err.to_string()
            .contains("the change checkpoint cannot be read from"),
        "{err}"
    );
    // A checkpoint inside a shard the stream no longer lists: the records
    // after it are gone, an error rather than a partial read.
    let mut lost = next.checkpoint;
    lost.positions.insert("shardId-trimmed".into(), "1".into());
    let err = provider
        .changes_since(Some(lost))
        .await
        .expect_err("trimmed");
    assert!(
        err.to_string()
            .contains("the stream no longer holds the records of shard shardId-trimmed"),
        "{err}"
    );
}

#[tokio::test]
async fn following_a_random_workload_from_checkpoints_rebuilds_the_table() {
    let client = client().await;
    let table = unique_name("Followed");
    let spec = TableSpec::new(&table, "id", T::S).stream(StreamViewType::NewAndOldImages);
    create_table(&client, &spec).await.expect("create");
    // A seeded workload in rounds; after each, the follower reads on from
    // its checkpoint and applies what it read, by key. (It is made after
    // the first round: images hold the columns its schema sample saw.)
    let mut provider: Option<DynamoTableProvider> = None;
    let mut rng = dynamo_testkit::Xorshift(0x2545_f491_4f6c_dd1d);
    let mut next = |n: u64| rng.below(n);
    let mut copy: BTreeMap<String, String> = BTreeMap::new();
    let mut checkpoint = None;
    let mut applied = 0usize;
    let mut written = 0usize;
    for _round in 0..6 {
        for _ in 0..25 {
            let id = format!("i{}", next(30));
            if next(4) == 0 {
                client
                    .delete_item()
                    .table_name(&table)
                    .key("id", AV::S(id))
                    .send()
                    .await
                    .expect("delete");
            } else {
                client
                    .put_item()
                    .table_name(&table)
                    .item("id", AV::S(id))
                    .item("v", AV::N(next(1000).to_string()))
                    .send()
                    .await
                    .expect("put");
            }
            written += 1;
        }
        if provider.is_none() {
            provider = Some(
                DynamoTableProvider::try_new(client.clone(), &table)
                    .await
                    .expect("provider"),
            );
        }
        let Some(follower) = provider.as_ref() else {
            continue;
        };
        let read = follower
            .changes_since(checkpoint.take())
            .await
            .expect("read on");
        if !read.batches.is_empty() {
            let ctx = session_over("r", &read.batches);
            for r in rows(
                &query(
                    &ctx,
                    "SELECT event, keys['id'], CAST(new_image['v'] AS VARCHAR) FROM r",
                )
                .await
                .expect("records"),
            ) {
                let f: Vec<&str> = r.split('|').collect();
                applied += 1;
                if f[0] == "REMOVE" {
                    copy.remove(f[1]);
                } else {
                    copy.insert(f[1].to_string(), f[2].to_string());
                }
            }
        }
        checkpoint = Some(read.checkpoint);
    }
    let ctx = pushdown_session(2);
    ctx.register_table("t", Arc::new(provider.expect("made in the first round")))
        .expect("register");
    let mut scanned = rows(&query(&ctx, "SELECT id, v FROM t").await.expect("scan"));
    scanned.sort();
    let mut copied: Vec<String> = copy.iter().map(|(k, v)| format!("{k}|{v}")).collect();
    copied.sort();
    assert_eq!(copied, scanned, "the followed copy equals the table");
    // Deleting a missing item records nothing; every other write one record.
    assert!(
        applied <= written && applied > written / 2,
        "{applied} of {written}"
    );
}
