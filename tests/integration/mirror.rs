//! Mirrors: a Delta copy of a table made during writes and kept up to date
//! from DynamoDB Local's own stream equals the table; queries answer from it
//! within their freshness bound with no table read, and catch up, read live
//! or fail beyond it; a checkpoint the stream no longer holds is an error or
//! a rebuild, never a partial mirror.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T, StreamViewType};
use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::DynamoTableProvider;
use dynamo_mirror::{
    Freshness, Mirror, MirrorError, MirrorTableProvider, OnExpired, OnStale, SyncOptions,
};
use dynamo_testkit::{TableSpec, Xorshift, create_table, put_items, unique_name};

use crate::common::{client, pushdown_session, query, rows};

/// A seeded workload: puts (new items and replacements with other values
/// and shapes), updates of one attribute, deletes — over 60 keys.
struct Workload {
    rng: Xorshift,
}

impl Workload {
    fn seeded(seed: u64) -> Self {
        Self {
            rng: Xorshift(seed),
        }
    }

    fn next(&mut self, n: u64) -> u64 {
        self.rng.below(n)
    }

    fn item(&mut self, id: u64) -> HashMap<String, AV> {
        let v = self.next(1_000_000);
        let mut item = HashMap::from([
            ("pk".to_string(), AV::S(format!("p{}", id % 6))),
            ("sk".to_string(), AV::N(id.to_string())),
            ("v".to_string(), AV::N(format!("{}.{:02}", v, v % 100))),
            ("name".to_string(), AV::S(format!("n-{v}"))),
            ("ok".to_string(), AV::Bool(v.is_multiple_of(2))),
            (
                "tags".to_string(),
                AV::Ss(vec![format!("t{}", v % 3), "x".to_string()]),
            ),
            (
                "doc".to_string(),
                AV::M(HashMap::from([(
                    "a".to_string(),
                    AV::N((v % 7).to_string()),
                )])),
            ),
        ]);
        if v.is_multiple_of(5) {
            item.remove("name");
        }
        item
    }

    /// `n` writes to `table`.
    async fn run(&mut self, client: &Client, table: &str, n: usize) {
        for _ in 0..n {
            let id = self.next(60);
            let op = self.next(10);
            let key = |id: u64| {
                HashMap::from([
                    ("pk".to_string(), AV::S(format!("p{}", id % 6))),
                    ("sk".to_string(), AV::N(id.to_string())),
                ])
            };
            if op < 2 {
                client
                    .delete_item()
                    .table_name(table)
                    .set_key(Some(key(id)))
                    .send()
                    .await
                    .expect("delete");
            } else if op < 4 {
                client
                    .update_item()
                    .table_name(table)
                    .set_key(Some(key(id)))
                    .update_expression("SET v = :v")
                    .expression_attribute_values(":v", AV::N(self.next(500).to_string()))
                    .send()
                    .await
                    .expect("update");
            } else {
                let item = self.item(id);
                client
                    .put_item()
                    .table_name(table)
                    .set_item(Some(item))
                    .send()
                    .await
                    .expect("put");
            }
        }
    }
}

/// A table with a NEW_AND_OLD_IMAGES stream and 40 items.
async fn streamed_table(client: &Client, prefix: &str, workload: &mut Workload) -> String {
    let table = unique_name(prefix);
    let spec = TableSpec::new(&table, "pk", T::S)
        .sort_key("sk", T::N)
        .stream(StreamViewType::NewAndOldImages);
    create_table(client, &spec).await.expect("create");
    let items = (0..40).map(|id| workload.item(id)).collect();
    put_items(client, &table, items).await.expect("put");
    table
}

/// A streamed table (see [`streamed_table`]) and a provider of it.
async fn streamed_provider(
    client: &Client,
    prefix: &str,
    workload: &mut Workload,
) -> (String, Arc<DynamoTableProvider>) {
    let table = streamed_table(client, prefix, workload).await;
    let live = DynamoTableProvider::try_new(client.clone(), &table)
        .await
        .expect("provider");
    (table, Arc::new(live))
}

/// A mirror of `table`, made and read through a fault proxy (which the
/// test scripts), in a new directory (dropped with it).
async fn mirrored_through_proxy(
    table: &str,
) -> (
    dynamo_testkit::FaultProxy,
    Arc<DynamoTableProvider>,
    tempfile::TempDir,
    Mirror,
) {
    let proxy = dynamo_testkit::FaultProxy::start(
        &dynamo_testkit::local_endpoint().unwrap_or_else(|e| panic!("{e}")),
        dynamo_testkit::FaultConfig::none(),
    )
    .await
    .expect("proxy");
    let live = Arc::new(
        DynamoTableProvider::try_new(proxy.client().await, table)
            .await
            .expect("provider"),
    );
    let (dir, mirror) = new_mirror(&live).await;
    (proxy, live, dir, mirror)
}

/// A mirror of `live` created in a new directory (dropped with it).
async fn new_mirror(live: &Arc<DynamoTableProvider>) -> (tempfile::TempDir, Mirror) {
    let dir = mirror_dir();
    let (mirror, _) = Mirror::create(live, dir.path().join("m").to_str().expect("path"))
        .await
        .expect("create");
    (dir, mirror)
}

fn mirror_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// Every row of `provider`, sorted by key, as text.
async fn all_rows(provider: Arc<dyn TableProvider>) -> Vec<String> {
    let ctx = pushdown_session(4);
    ctx.register_table("t", provider).expect("register");
    rows(
        &query(&ctx, "SELECT * FROM t ORDER BY pk, sk")
            .await
            .expect("read"),
    )
}

/// The mirror's rows (read from its files, whatever their age) and the
/// table's (read live, with the mirror's columns).
async fn mirror_and_table(
    mirror: &Mirror,
    live: &Arc<DynamoTableProvider>,
) -> (Vec<String>, Vec<String>) {
    let forever = Freshness {
        max_staleness: Duration::from_secs(86_400),
        on_stale: OnStale::Error,
    };
    let mirrored = all_rows(Arc::new(MirrorTableProvider::new(
        Arc::clone(live),
        mirror,
        forever,
    )))
    .await;
    let table = all_rows(Arc::clone(live) as Arc<dyn TableProvider>).await;
    (mirrored, table)
}

#[tokio::test]
async fn a_mirror_made_during_writes_and_synced_equals_the_table() {
    let client = client().await;
    let mut workload = Workload::seeded(0x9e37_79b9_7f4a_7c15);
    let (table, live) = streamed_provider(&client, "Mirrored", &mut workload).await;
    let dir = mirror_dir();
    let path = dir.path().join("m");
    let path = path.to_str().expect("utf-8 path");
    // Writes go on while the mirror records the stream's position and Scans.
    let writer = {
        let (client, table) = (client.clone(), table.clone());
        let mut more = Workload::seeded(0x1234_5678_9abc_def1);
        tokio::spawn(async move { more.run(&client, &table, 150).await })
    };
    let (mut mirror, created) = Mirror::create(&live, path).await.expect("create");
    assert!(created.records >= 40, "{created:?}");
    writer.await.expect("writer");
    workload.run(&client, &table, 60).await;
    let options = SyncOptions::default().batch_records(25);
    let synced = mirror.sync(&live, &options).await.expect("sync");
    assert!(synced.records > 0 && synced.commits >= 1, "{synced:?}");
    let (mirrored, scanned) = mirror_and_table(&mirror, &live).await;
    assert!(!scanned.is_empty());
    assert_eq!(
        mirrored, scanned,
        "the mirror equals a Scan of the table, row for row"
    );
    // Each commit recorded where it stands; nothing new means no new data.
    let position = mirror.position().await.expect("position");
    assert_eq!(
        position.checkpoint.stream_arn,
        live.meta().stream_arn.clone().unwrap_or_default()
    );
    let again = mirror.sync(&live, &options).await.expect("sync again");
    assert_eq!((again.records, again.commits), (0, 0), "{again:?}");
    // An idle follower's heartbeat: a commit of the position alone.
    let version = mirror.version();
    let beat = mirror
        .sync(&live, &options.clone().heartbeat(Duration::ZERO))
        .await
        .expect("heartbeat");
    assert_eq!((beat.records, beat.commits), (0, 1), "{beat:?}");
    assert_eq!(mirror.version(), version + 1);
    let after = mirror.position().await.expect("position");
    assert_eq!(after.batch, position.batch + 1);
    assert!(after.caught_up_at_ms >= position.caught_up_at_ms);
    assert_eq!(after.checkpoint, position.checkpoint);
    // Creating a mirror where one is: refused, the old one untouched.
    let err = Mirror::create(&live, path).await.expect_err("exists");
    assert!(matches!(err, MirrorError::Exists { .. }), "{err}");
}

#[tokio::test]
async fn queries_answer_from_a_fresh_mirror_with_no_table_read_and_catch_up_when_it_is_older() {
    let client = client().await;
    let mut workload = Workload::seeded(0x0dd_ba11);
    let (table, live) = streamed_provider(&client, "Fresh", &mut workload).await;
    let (_dir, mirror) = new_mirror(&live).await;
    let count_sql = "SELECT count(*) FROM t WHERE pk = 'p1'";
    let session = |freshness: Freshness| {
        let ctx: SessionContext = pushdown_session(2);
        ctx.register_table(
            "t",
            Arc::new(MirrorTableProvider::new(
                Arc::clone(&live),
                &mirror,
                freshness,
            )),
        )
        .expect("register");
        ctx
    };
    let plan_of = |ctx: SessionContext| async move {
        let rows = rows(
            &query(&ctx, &format!("EXPLAIN {count_sql}"))
                .await
                .expect("explain"),
        );
        rows.join("\n")
    };
    let before = rows(
        &query(&session(Freshness::default()), count_sql)
            .await
            .expect("count"),
    );
    // A new item: a mirror within its bound does not have it yet.
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(workload.item(1_003))) // pk 'p1'
        .send()
        .await
        .expect("put");
    let hour = Freshness {
        max_staleness: Duration::from_secs(3600),
        on_stale: OnStale::Error,
    };
    let fresh = session(hour);
    let plan = plan_of(fresh.clone()).await;
    assert!(
        plan.contains("MirrorScanExec: table=") && !plan.contains("DynamoExec"),
        "{plan}"
    );
    assert_eq!(
        rows(&query(&fresh, count_sql).await.expect("count")),
        before
    );
    // A bound it is past: caught up from the stream first.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let strict = Freshness {
        max_staleness: Duration::from_millis(10),
        on_stale: OnStale::Sync,
    };
    let ctx = session(strict);
    let state = ctx.state();
    let plan = state
        .create_physical_plan(&state.create_logical_plan(count_sql).await.expect("sql"))
        .await
        .expect("plan");
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    assert!(
        shown.contains("caught up from the stream") && !shown.contains("DynamoExec"),
        "no table read: {shown}"
    );
    let after = rows(
        &datafusion::physical_plan::collect(plan, ctx.task_ctx())
            .await
            .expect("run"),
    );
    let n = |r: &[String]| r[0].parse::<i64>().expect("a count");
    assert_eq!(n(&after), n(&before) + 1, "the new item is in the answer");
    // Past the bound with `error`: says so; with `live`: reads DynamoDB.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let err = query(
        &session(Freshness {
            on_stale: OnStale::Error,
            ..strict
        }),
        count_sql,
    )
    .await
    .expect_err("stale");
    assert!(err.to_string().contains("more than max_staleness"), "{err}");
    let live_plan = plan_of(session(Freshness {
        on_stale: OnStale::Live,
        ..strict
    }))
    .await;
    assert!(
        live_plan.contains("DynamoExec") && !live_plan.contains("MirrorScanExec"),
        "{live_plan}"
    );
}

#[tokio::test]
async fn expired_items_are_hidden_in_mirror_reads_as_in_live_ones() {
    let client = client().await;
    let table = unique_name("MirrorTtl");
    let spec = TableSpec::new(&table, "pk", T::S)
        .sort_key("sk", T::N)
        .stream(StreamViewType::NewImage);
    create_table(&client, &spec).await.expect("create");
    dynamo_testkit::enable_time_to_live(&client, &table, "expires")
        .await
        .expect("ttl");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let items = (0..12)
        .map(|i: i64| {
            let mut item = HashMap::from([
                ("pk".to_string(), AV::S("p".to_string())),
                ("sk".to_string(), AV::N(i.to_string())),
            ]);
            match i % 3 {
                0 => item.insert("expires".to_string(), AV::N((now - 3600).to_string())),
                1 => item.insert("expires".to_string(), AV::N((now + 3600).to_string())),
                _ => None,
            };
            item
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");
    let live = Arc::new(
        DynamoTableProvider::try_new(client.clone(), &table)
            .await
            .expect("provider"),
    );
    let (_dir, mirror) = new_mirror(&live).await;
    // Hidden or shown as the session says, the same from the mirror as live.
    let forever = Freshness {
        max_staleness: Duration::from_secs(86_400),
        on_stale: OnStale::Error,
    };
    let count = |provider: Arc<dyn TableProvider>, include: bool| async move {
        let ctx = pushdown_session(2);
        ctx.register_table("t", provider).expect("register");
        query(&ctx, &format!("SET dynamodb.include_expired = {include}"))
            .await
            .expect("set");
        rows(
            &query(&ctx, "SELECT sk FROM t ORDER BY sk")
                .await
                .expect("read"),
        )
    };
    // The mirror holds the expired items the table held when it was made;
    // reads of it hide them as live reads do.
    let mut mirror = mirror;
    let mirrored = count(
        Arc::new(MirrorTableProvider::new(
            Arc::clone(&live),
            &mirror,
            forever,
        )),
        false,
    )
    .await;
    assert_eq!(mirrored.len(), 8, "expired items hidden: {mirrored:?}");
    // DynamoDB Local deletes expired items on its own schedule, through
    // the stream (records of an event name the SDK does not know, with the
    // old image only): the mirror applies them as removals.
    // The answers are compared after a sync, again until they settle.
    for include in [false, true] {
        let mut attempts = 0;
        loop {
            mirror
                .sync(&live, &SyncOptions::default())
                .await
                .expect("sync");
            let provider = MirrorTableProvider::new(Arc::clone(&live), &mirror, forever);
            let mirrored = count(Arc::new(provider), include).await;
            let scanned = count(Arc::clone(&live) as Arc<dyn TableProvider>, include).await;
            if !include {
                assert_eq!(scanned.len(), 8, "expired items hidden: {scanned:?}");
            }
            if mirrored == scanned {
                break;
            }
            attempts += 1;
            assert!(
                attempts < 20,
                "include_expired = {include}: {mirrored:?} vs {scanned:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

#[tokio::test]
async fn a_checkpoint_the_stream_no_longer_holds_is_an_error_or_a_rebuild() {
    let client = client().await;
    let mut workload = Workload::seeded(0xfeed_beef);
    let table = streamed_table(&client, "Trimmed", &mut workload).await;
    let (proxy, live, _dir, mut mirror) = mirrored_through_proxy(&table).await;
    workload.run(&client, &table, 30).await;
    let version = mirror.version();
    proxy.answer_error(".GetShardIterator", 0, "TrimmedDataAccessException");
    let err = mirror
        .sync(&live, &SyncOptions::default())
        .await
        .expect_err("trimmed");
    assert!(matches!(err, MirrorError::Expired { .. }), "{err}");
    assert!(
        err.to_string().contains("has fallen behind its stream"),
        "{err}"
    );
    mirror.refresh().await.expect("refresh");
    assert_eq!(mirror.version(), version, "nothing committed");
    proxy.answer_error(".GetShardIterator", 0, "TrimmedDataAccessException");
    let rebuilt = mirror
        .sync(
            &live,
            &SyncOptions::default().on_expired(OnExpired::Rebootstrap),
        )
        .await
        .expect("rebuild");
    assert!(rebuilt.rebootstrapped, "{rebuilt:?}");
    let (mirrored, scanned) = mirror_and_table(&mirror, &live).await;
    assert_eq!(mirrored, scanned);
}

/// The largest of `read`'s sequence numbers (decimal text).
fn last_sequence(read: &dynamo_datafusion::changes::ChangesRead) -> String {
    use datafusion::arrow::array::{Array, StringArray};
    let mut last = String::new();
    for batch in &read.batches {
        let column = batch
            .column_by_name("sequence_number")
            .expect("sequence_number");
        let numbers = column.as_any().downcast_ref::<StringArray>().expect("text");
        for i in 0..numbers.len() {
            let n = numbers.value(i);
            if (n.len(), n) > (last.len(), last.as_str()) {
                last = n.to_string();
            }
        }
    }
    last
}

#[tokio::test]
async fn a_stream_whose_shard_rolled_over_is_applied_parent_first() {
    let client = client().await;
    let mut workload = Workload::seeded(0x5_4a2d);
    let table = streamed_table(&client, "Rolled", &mut workload).await;
    let (proxy, live, _dir, mut mirror) = mirrored_through_proxy(&table).await;
    let set_all = |base: u64| {
        let (client, table) = (client.clone(), table.clone());
        async move {
            for id in 0..40u64 {
                client
                    .update_item()
                    .table_name(&table)
                    .key("pk", AV::S(format!("p{}", id % 6)))
                    .key("sk", AV::N(id.to_string()))
                    .update_expression("SET v = :v")
                    .expression_attribute_values(":v", AV::N((base + id).to_string()))
                    .send()
                    .await
                    .expect("update");
            }
        }
    };
    // Changes before the roll-over (in the parent) and after (in the
    // child) to the same items: read out of lineage order, the older ones
    // would win.
    set_all(1_000).await;
    // The stream's last record, read directly (the keys are enough).
    let keys = datafusion::arrow::datatypes::Schema::new(vec![
        datafusion::arrow::datatypes::Field::new(
            "pk",
            datafusion::arrow::datatypes::DataType::Utf8,
            false,
        ),
        datafusion::arrow::datatypes::Field::new(
            "sk",
            datafusion::arrow::datatypes::DataType::Int64,
            false,
        ),
    ]);
    let direct = DynamoTableProvider::builder(client.clone(), &table)
        .schema(Arc::new(keys))
        .build()
        .await
        .expect("provider");
    let at = last_sequence(&direct.changes_since(None).await.expect("read"));
    proxy.split_stream_at(&at);
    set_all(2_000).await;
    workload.run(&client, &table, 20).await;
    mirror
        .sync(&live, &SyncOptions::default())
        .await
        .expect("sync");
    let (mirrored, scanned) = mirror_and_table(&mirror, &live).await;
    assert_eq!(mirrored, scanned, "parent first, then child");
    let position = mirror.position().await.expect("position");
    assert_eq!(position.checkpoint.finished.len(), 1, "{position:?}");
    assert!(
        position
            .checkpoint
            .positions
            .keys()
            .any(|s| s.contains("splitchild")),
        "{position:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_followers_of_one_mirror_end_equal_to_the_table() {
    let client = client().await;
    let mut workload = Workload::seeded(0x2f0_11e5);
    let (table, live) = streamed_provider(&client, "Twice", &mut workload).await;
    let dir = mirror_dir();
    let path = dir.path().join("m");
    let path = path.to_str().expect("utf-8 path").to_string();
    Mirror::create(&live, &path).await.expect("create");
    // Two followers sync in loops while the table changes; a commit that
    // loses to the other's is refused (Concurrent) and the loser goes on.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let followers: Vec<_> = (0..2)
        .map(|_| {
            let (live, path, stop) = (Arc::clone(&live), path.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut mirror = Mirror::open(&path).await.expect("open");
                let mut refused = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match mirror
                        .sync(&live, &SyncOptions::default().batch_records(1))
                        .await
                    {
                        Ok(_) => {}
                        Err(MirrorError::Concurrent { .. }) => refused += 1,
                        Err(e) => panic!("follower: {e}"),
                    }
                }
                refused
            })
        })
        .collect();
    for _ in 0..6 {
        workload.run(&client, &table, 15).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut refused = 0;
    for f in followers {
        refused += f.await.expect("follower");
    }
    let mut mirror = Mirror::open(&path).await.expect("open");
    mirror
        .sync(&live, &SyncOptions::default())
        .await
        .expect("last sync");
    let (mirrored, scanned) = mirror_and_table(&mirror, &live).await;
    assert_eq!(mirrored, scanned, "{refused} commits refused");
    eprintln!("{refused} commits refused as concurrent");
}
