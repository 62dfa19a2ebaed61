//! A real cluster on 127.0.0.1: a `dynamo-ballista` scheduler and two
//! executors as processes, DynamoDB Local behind them. Queries through the
//! cluster answer what they answer locally, a scan's segments are tasks on
//! both executors, no secret reaches a log or the event log, and a killed
//! executor never leaves a partial answer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use dynamo_ballista::cluster_session;
use dynamo_ballista::process::session_config;
use dynamo_datafusion::{ConnectionOptions, DynamoTableProvider};
use dynamo_testkit::{
    ClusterSpec, FaultConfig, FaultProxy, LOCAL_SECRET, LocalCluster, TableSpec, local_client,
    local_endpoint, unique_name,
};

/// The cluster processes' own secret access key (DynamoDB Local keeps one
/// database per access key id, so the id is the test client's).
const CLUSTER_SECRET: &str = "cluster-own-secret";

/// A scheduler and two executors of 2 tasks each, with their own
/// credentials; executor `i` also gets `executor_args(i)`.
async fn start_cluster(
    scheduler_args: &[&str],
    executor_args: impl Fn(usize) -> Vec<String>,
) -> LocalCluster {
    let mut spec = ClusterSpec::new(env!("CARGO_BIN_EXE_dynamo-ballista"), 2, 2);
    spec.scheduler_args = scheduler_args.iter().map(|a| a.to_string()).collect();
    spec.executor_args = (0..2).map(executor_args).collect();
    spec.env.extend(
        [
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", CLUSTER_SECRET),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    spec.env.push((
        "DYNAMODB_ENDPOINT".into(),
        local_endpoint().expect("DYNAMODB_ENDPOINT"),
    ));
    LocalCluster::start(spec).await.expect("cluster")
}

/// A client session of `cluster`.
async fn session(cluster: &LocalCluster) -> SessionContext {
    let state = SessionStateBuilder::new()
        .with_config(session_config())
        .with_default_features()
        .build();
    cluster_session(&cluster.url(), state, &ConnectionOptions::default())
        .await
        .expect("cluster session")
}

/// Files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                files_under(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// The files under `dir` and their text, read when none vanishes between
/// listing and reading (the scheduler renames an event log it finishes;
/// then the listing is taken again, for at most 5 s).
fn texts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let read: std::io::Result<Vec<(PathBuf, String)>> = files_under(dir)
            .into_iter()
            .map(|f| std::fs::read_to_string(&f).map(|text| (f, text)))
            .collect();
        match read {
            Ok(texts) => return texts,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    }
}

/// Rows as sorted lines of `|`-joined values.
fn rows(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            let cells: Vec<String> = b
                .columns()
                .iter()
                .map(|c| array_value_to_string(c, r).expect("cell"))
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}

const ITEMS: usize = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_through_the_cluster_answer_as_locally_on_both_executors() {
    let client = local_client().await.expect("client");
    let events = unique_name("ClusterEvents");
    let users = unique_name("ClusterUsers");
    let items = (0..ITEMS)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("u{}", i % 500))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("n".to_string(), AV::N((i % 13).to_string())),
                (
                    "body".to_string(),
                    AV::S(format!("event {i} {}", "x".repeat(40))),
                ),
            ])
        })
        .collect();
    TableSpec::new(&events, "pk", T::S)
        .sort_key("sk", T::N)
        .create_with(&client, items)
        .await
        .expect("events");
    let people = (0..500)
        .map(|u| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("u{u}"))),
                (
                    "country".to_string(),
                    AV::S(["fr", "de", "jp"][u % 3].to_string()),
                ),
            ])
        })
        .collect();
    TableSpec::new(&users, "pk", T::S)
        .create_with(&client, people)
        .await
        .expect("users");

    // Each executor reads through a proxy of its own, which counts what
    // it reads.
    let endpoint = local_endpoint().expect("endpoint");
    let mut proxies = Vec::new();
    for _ in 0..2 {
        proxies.push(
            FaultProxy::start(&endpoint, FaultConfig::none())
                .await
                .expect("proxy"),
        );
    }
    let endpoints: Vec<String> = proxies.iter().map(FaultProxy::endpoint).collect();
    let nodes = start_cluster(&[], |i| {
        vec!["--endpoint-url".to_string(), endpoints[i].clone()]
    })
    .await;
    let local = SessionContext::new_with_config(
        datafusion::prelude::SessionConfig::new().with_target_partitions(2),
    );
    let cluster = session(&nodes).await;
    for (name, table, segments) in [("events", &events, 8), ("users", &users, 1)] {
        for ctx in [&local, &cluster] {
            let provider = DynamoTableProvider::builder(client.clone(), table)
                .segments(segments)
                .build()
                .await
                .expect("provider");
            ctx.register_table(name, Arc::new(provider))
                .expect("register");
        }
    }
    // The events' sort key read as epoch seconds: the format travels with
    // the plan to the executors.
    for ctx in [&local, &cluster] {
        let provider = DynamoTableProvider::builder(client.clone(), &events)
            .segments(8)
            .time_format("sk", "epoch_seconds".parse().expect("format"))
            .build()
            .await
            .expect("provider");
        ctx.register_table("timed", Arc::new(provider))
            .expect("register");
    }
    // 40 partition keys: 40 Queries. 3 × 45 keys: BatchGetItem chunks of 100.
    let fan_out = format!(
        "SELECT pk, count(*) FROM events WHERE pk IN ({}) GROUP BY pk",
        (1..=40)
            .map(|u| format!("'u{u}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let batch_get = format!(
        "SELECT pk, sk, n FROM events WHERE pk IN ('u1', 'u2', 'u3') AND sk IN ({})",
        (1..=45)
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (sql, operation) in [(&fan_out, "Query"), (&batch_get, "BatchGetItem")] {
        let explain = rows(
            &local
                .sql(&format!("EXPLAIN {sql}"))
                .await
                .expect("explain")
                .collect()
                .await
                .expect("explain"),
        )
        .join("\n");
        // The local session has 2 partitions (cores), the cluster's 16.
        assert!(
            explain.lines().any(
                |l| l.contains(&format!("operation={operation}")) && l.contains("partitions=2")
            ),
            "{sql}: several {operation} partitions: {explain}"
        );
    }
    let queries = [
        "SELECT count(*), sum(n) FROM events",
        "SELECT n, count(*) FROM events GROUP BY n",
        "SELECT sk, n FROM events WHERE pk = 'u7'",
        "SELECT body FROM events WHERE pk = 'u7' AND sk = 507",
        &fan_out,
        &batch_get,
        "SELECT u.country, count(*) FROM events e JOIN users u ON e.pk = u.pk GROUP BY u.country",
        "SELECT sk, n FROM timed WHERE pk = 'u7' AND sk >= TIMESTAMP '1970-01-01T00:20:00'",
        "SELECT n, count(*), min(sk) FROM timed WHERE sk BETWEEN TIMESTAMP '1970-01-01T00:10:00' \
         AND TIMESTAMP '1970-01-01T00:30:00' GROUP BY n ORDER BY n",
    ];
    for sql in queries {
        let want = rows(&local.sql(sql).await.expect(sql).collect().await.expect(sql));
        assert!(!want.is_empty(), "{sql}: the test needs rows");
        let got = rows(
            &cluster
                .sql(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .collect()
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}")),
        );
        assert_eq!(got, want, "{sql}: the cluster answers as locally");
    }
    for (i, dir) in nodes.work_dirs().iter().enumerate() {
        assert!(
            !files_under(dir).is_empty(),
            "executor {i} ran no task (no shuffle output in {})",
            dir.display()
        );
    }

    // The 8 segments of a scan are tasks on both executors, each segment
    // read once: what the two executors' Scans evaluated adds up to the
    // table, and each read part of it.
    let before: Vec<u64> = proxies
        .iter()
        .map(|p| p.counts().scanned_by_scans)
        .collect();
    let sql = "SELECT count(*) FROM events";
    let got = rows(
        &cluster
            .sql(sql)
            .await
            .expect(sql)
            .collect()
            .await
            .expect(sql),
    );
    assert_eq!(got, vec![ITEMS.to_string()]);
    let scanned: Vec<u64> = proxies
        .iter()
        .zip(&before)
        .map(|(p, b)| p.counts().scanned_by_scans - b)
        .collect();
    assert_eq!(
        scanned.iter().sum::<u64>(),
        ITEMS as u64,
        "every item evaluated once across the executors: {scanned:?}"
    );
    assert!(
        scanned.iter().all(|s| *s > 0),
        "both executors read segments: {scanned:?}"
    );

    // Neither the cluster's secret nor the client's reaches a log or the
    // scheduler's event log, which do hold the plans that ran.
    let events = texts_under(nodes.event_log_dir());
    assert!(
        events.iter().any(|(_, text)| text.contains("DynamoExec")),
        "the event log records the scans ({} files)",
        events.len()
    );
    let mut texts: Vec<(String, String)> = nodes
        .logs()
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("log");
            (f.display().to_string(), text)
        })
        .chain(
            events
                .into_iter()
                .map(|(f, text)| (f.display().to_string(), text)),
        )
        .collect();
    // What the scheduler's REST API tells of the jobs and their settings.
    let jobs = nodes.api("/api/jobs").await.expect("jobs");
    let ids: Vec<String> = serde_json::from_str::<serde_json::Value>(&jobs)
        .expect("jobs JSON")
        .as_array()
        .expect("a list of jobs")
        .iter()
        .filter_map(|j| j["job_id"].as_str().map(String::from))
        .collect();
    assert!(ids.len() >= queries.len(), "jobs listed: {jobs}");
    for id in &ids {
        let config = nodes
            .api(&format!("/api/job/{id}/config"))
            .await
            .expect("config");
        texts.push((format!("job {id} config"), config));
    }
    texts.push(("/api/jobs".into(), jobs));
    for (name, text) in &texts {
        assert!(!text.is_empty(), "{name} is empty");
        for secret in [CLUSTER_SECRET, LOCAL_SECRET] {
            assert!(!text.contains(secret), "{name} holds a secret access key");
        }
    }
}

/// A cluster whose executors may be killed, reading a table of its own.
struct KillableCluster {
    nodes: LocalCluster,
    /// A client session with the table as `t`.
    session: SessionContext,
    /// The proxy between the executors and DynamoDB Local.
    proxy: FaultProxy,
}

/// A table of `items` items (`pk` = k0…, `n` = i % 10, `g` = i % 7), read by
/// a cluster whose executors reach DynamoDB Local through a proxy holding
/// each answer `latency`, in 4 segments of `page_size`-item pages; a lost
/// executor is noticed within 6 s.
async fn killable_cluster(
    prefix: &str,
    items: usize,
    latency: Duration,
    page_size: i32,
) -> KillableCluster {
    let client = local_client().await.expect("client");
    let table = unique_name(prefix);
    let rows = (0..items)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("k{i}"))),
                ("n".to_string(), AV::N((i % 10).to_string())),
                ("g".to_string(), AV::N((i % 7).to_string())),
            ])
        })
        .collect();
    TableSpec::new(&table, "pk", T::S)
        .create_with(&client, rows)
        .await
        .expect("table");
    let proxy = FaultProxy::start(
        &local_endpoint().expect("endpoint"),
        FaultConfig {
            latency,
            ..FaultConfig::none()
        },
    )
    .await
    .expect("proxy");
    let endpoint = proxy.endpoint();
    let nodes = start_cluster(&["--executor-timeout", "6"], |_| {
        ["--heartbeat", "1", "--endpoint-url", &endpoint]
            .map(String::from)
            .to_vec()
    })
    .await;
    let session = session(&nodes).await;
    let provider = DynamoTableProvider::builder(client.clone(), &table)
        .segments(4)
        .page_size(page_size)
        .build()
        .await
        .expect("provider");
    session
        .register_table("t", Arc::new(provider))
        .expect("register");
    KillableCluster {
        nodes,
        session,
        proxy,
    }
}

/// An executor killed while the cluster reads: the query completes on the
/// other executor with the full answer, or fails with an error — never a
/// partial answer reported as complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_mid_scan_never_yields_a_partial_answer() {
    // Answers held 20 ms, 20-item pages: each of 4 segments (tasks on both
    // executors) takes ~1 s, long enough to kill a reader mid-scan.
    let KillableCluster {
        mut nodes,
        session: cluster,
        proxy,
    } = killable_cluster("ClusterKill", 4_000, Duration::from_millis(20), 20).await;
    let before = proxy.counts().requests;
    let query = tokio::spawn(async move {
        let df = cluster.sql("SELECT count(*), sum(n) FROM t").await?;
        df.collect().await
    });
    // Kill one executor once the scan is under way.
    let start = Instant::now();
    while proxy.counts().requests < before + 10 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the scan never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nodes.kill_executor(0);
    let outcome = tokio::time::timeout(Duration::from_secs(120), query)
        .await
        .expect("the query ends")
        .expect("task");
    match outcome {
        Ok(batches) => assert_eq!(
            rows(&batches),
            vec!["4000|18000".to_string()],
            "a complete answer, or none"
        ),
        Err(e) => eprintln!("the query failed with an error (acceptable): {e}"),
    }
}

/// Runs `sql` as `dynamo-sql` does (`run_statement`): the error's text, or
/// the rows and the warnings said before reading.
async fn run(ctx: &SessionContext, sql: &str) -> Result<(Vec<String>, Vec<String>), String> {
    struct Sink {
        batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
        warnings: Vec<String>,
    }
    impl dynamo_datafusion::run::ResultSink for Sink {
        fn start(
            &mut self,
            _: datafusion::arrow::datatypes::SchemaRef,
        ) -> datafusion::error::Result<()> {
            Ok(())
        }
        fn batch(
            &mut self,
            batch: datafusion::arrow::record_batch::RecordBatch,
        ) -> datafusion::error::Result<bool> {
            self.batches.push(batch);
            Ok(true)
        }
        fn warning(&mut self, text: &str) {
            self.warnings.push(text.to_string());
        }
    }
    let statement = ctx
        .state()
        .sql_to_statement(sql, &datafusion::config::Dialect::Generic)
        .map_err(|e| e.to_string())?;
    let mut sink = Sink {
        batches: Vec::new(),
        warnings: Vec::new(),
    };
    dynamo_datafusion::run::run_statement(ctx, &statement, &Default::default(), &mut sink)
        .await
        .map_err(|e| e.to_string())?;
    Ok((rows(&sink.batches), sink.warnings))
}

/// `sql` through DataFusion alone (no check before the job is sent): what
/// the cluster's scheduler and executors do with the session's settings.
async fn on_cluster(ctx: &SessionContext, sql: &str) -> Result<Vec<String>, String> {
    let df = ctx.sql(sql).await.map_err(|e| e.to_string())?;
    df.collect()
        .await
        .map(|b| rows(&b))
        .map_err(|e| e.to_string())
}

/// Every `dynamodb.*` setting of the client's session reaches the plan the
/// cluster runs: a ceiling refuses before any DynamoDB request (said by the
/// client before a job is sent, and by the executors when one is), pushdown
/// off reads by Scan, RESET puts a setting back, and warnings are said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_plans_and_reads_with_the_sessions_dynamodb_settings() {
    let client = local_client().await.expect("client");
    let table = unique_name("ClusterSettings");
    let items = (0..2_000)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("u{}", i % 50))),
                ("sk".to_string(), AV::N(i.to_string())),
                ("body".to_string(), AV::S("x".repeat(200))),
            ])
        })
        .collect();
    TableSpec::new(&table, "pk", T::S)
        .sort_key("sk", T::N)
        .create_with(&client, items)
        .await
        .expect("table");
    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let endpoint = proxy.endpoint();
    let nodes = start_cluster(&[], |_| {
        vec!["--endpoint-url".to_string(), endpoint.clone()]
    })
    .await;
    let cluster = session(&nodes).await;
    let provider = DynamoTableProvider::builder(client.clone(), &table)
        .build()
        .await
        .expect("provider");
    cluster
        .register_table("t", Arc::new(provider))
        .expect("register");
    let count = "SELECT count(*) FROM t";
    let jobs = || async {
        let listed = nodes.api("/api/jobs").await.expect("jobs");
        serde_json::from_str::<serde_json::Value>(&listed)
            .expect("jobs JSON")
            .as_array()
            .map_or(0, Vec::len)
    };

    // The ceiling, refused by the client before any job is sent.
    run(&cluster, "SET dynamodb.max_rcu = 1")
        .await
        .expect("set");
    let (requests, jobs_before) = (proxy.counts().requests, jobs().await);
    let e = run(&cluster, count).await.expect_err("over the ceiling");
    assert!(e.contains("refused before reading"), "{e}");
    assert!(e.contains("above the ceiling of 1 RCU"), "{e}");
    assert_eq!(jobs().await, jobs_before, "no job was sent");
    // The same query sent as a job: the cluster plans with the client's
    // ceiling and its executors refuse it, reading nothing.
    let e = on_cluster(&cluster, count)
        .await
        .expect_err("refused on the cluster");
    assert!(e.contains("refused before reading"), "{e}");
    assert!(jobs().await > jobs_before, "a job was sent");
    assert_eq!(proxy.counts().requests, requests, "no DynamoDB request");
    // RESET lifts it, on the client and on the cluster.
    run(&cluster, "RESET dynamodb.max_rcu")
        .await
        .expect("reset");
    assert_eq!(run(&cluster, count).await.expect("count").0, vec!["2000"]);
    assert_eq!(
        on_cluster(&cluster, count).await.expect("count"),
        vec!["2000"]
    );

    // Pushdown off: the cluster reads one item by Scan, not by GetItem.
    let one = "SELECT body FROM t WHERE pk = 'u7' AND sk = 507";
    let scans = proxy.counts().scans;
    assert_eq!(on_cluster(&cluster, one).await.expect("one").len(), 1);
    assert_eq!(proxy.counts().scans, scans, "a GetItem, no Scan");
    run(&cluster, "SET dynamodb.pushdown = false")
        .await
        .expect("set");
    assert_eq!(on_cluster(&cluster, one).await.expect("one").len(), 1);
    assert!(proxy.counts().scans > scans, "pushdown off: a Scan");
    run(&cluster, "RESET dynamodb.pushdown")
        .await
        .expect("reset");
    let scans = proxy.counts().scans;
    assert_eq!(on_cluster(&cluster, one).await.expect("one").len(), 1);
    assert_eq!(proxy.counts().scans, scans, "pushdown back on: no Scan");

    // EXPLAIN shows the DynamoDB read the cluster runs, with its estimate
    // and the session's ceiling.
    run(&cluster, "SET dynamodb.max_rcu = 1000")
        .await
        .expect("set");
    let (explained, _) = run(&cluster, &format!("EXPLAIN {count}"))
        .await
        .expect("explain");
    let explained = explained.join("\n");
    assert!(
        explained.contains("DynamoExec: operation=Scan")
            && explained.contains("estimate=[items≈2000")
            && explained.contains("max_rcu=1000"),
        "{explained}"
    );
    run(&cluster, "RESET dynamodb.max_rcu")
        .await
        .expect("reset");

    // A warning before a large Scan, said by the client.
    run(&cluster, "SET dynamodb.warn_rcu = 0.1")
        .await
        .expect("set");
    let (rows, warnings) = run(&cluster, count).await.expect("count");
    assert_eq!(rows, vec!["2000"]);
    assert!(
        warnings.iter().any(|w| w.contains("Scans all of table")),
        "{warnings:?}"
    );
}

/// A cluster address where nothing listens: one clear line, at once.
#[tokio::test]
async fn a_scheduler_that_is_not_running_is_named_in_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let state = SessionStateBuilder::new()
        .with_config(session_config())
        .with_default_features()
        .build();
    let url = format!("df://127.0.0.1:{port}");
    let Err(e) = cluster_session(&url, state, &ConnectionOptions::default()).await else {
        panic!("a session of a cluster that is not there");
    };
    let e = e.to_string();
    assert!(e.contains(&format!("no scheduler at {url}")), "{e}");
    assert!(!e.contains("tonic") && e.lines().count() == 1, "{e}");
}

/// An executor started without AWS credentials says so at start, in one
/// line that says how to give it some (before, it started silently and
/// failed every query later with a nested dump).
#[tokio::test]
async fn an_executor_without_credentials_says_so_at_start() {
    use std::io::{BufRead, BufReader};
    let port = |_| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    };
    let (scheduler, bind) = (port(()), port(()));
    let empty = std::env::temp_dir().join(unique_name("home"));
    std::fs::create_dir_all(&empty).expect("home");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dynamo-ballista"))
        .args(["executor", "--scheduler", &format!("127.0.0.1:{scheduler}")])
        .args(["--bind", &format!("127.0.0.1:{bind}")])
        .args(["--endpoint-url", &local_endpoint().expect("endpoint")])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &empty)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("executor starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let warning = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("no AWS credentials for this executor") => break line,
            Ok(line) => seen.push(line),
            Err(_) => break String::new(),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !warning.is_empty(),
        "no warning; the executor said: {seen:?}"
    );
    assert!(
        warning.contains("AWS_ACCESS_KEY_ID") && warning.contains("--profile"),
        "{warning}"
    );
}

/// A table answered from its mirror on the cluster: the scheduler plans a
/// read of the mirror's Parquet files, the executors read them (no
/// DynamoDB request through the proxy they read with), and the answers are
/// the table's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirrored_table_is_read_from_the_mirrors_files_by_the_executors() {
    use dynamo_mirror::{Freshness, Mirror, MirrorTableProvider, OnStale};
    let client = local_client().await.expect("client");
    let table = unique_name("ClusterMirror");
    let items = (0..2_000)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("k{i}"))),
                ("n".to_string(), AV::N((i % 10).to_string())),
                (
                    "amount".to_string(),
                    AV::N(format!("{}.{:02}", i % 97, i % 100)),
                ),
            ])
        })
        .collect();
    TableSpec::new(&table, "pk", T::S)
        .stream(aws_sdk_dynamodb::types::StreamViewType::NewAndOldImages)
        .create_with(&client, items)
        .await
        .expect("table");
    let live = Arc::new(
        DynamoTableProvider::try_new(client.clone(), &table)
            .await
            .expect("provider"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mirror");
    let path = path.to_str().expect("utf-8 path");
    Mirror::create(&live, path).await.expect("mirror");
    let mirror = Mirror::open(path).await.expect("open");

    let proxy = FaultProxy::start(&local_endpoint().expect("endpoint"), FaultConfig::none())
        .await
        .expect("proxy");
    let endpoint = proxy.endpoint();
    let nodes = start_cluster(&[], |_| {
        vec!["--endpoint-url".to_string(), endpoint.clone()]
    })
    .await;
    let cluster = session(&nodes).await;
    let hour = Freshness {
        max_staleness: Duration::from_secs(3600),
        on_stale: OnStale::Error,
    };
    cluster
        .register_table(
            "t",
            Arc::new(MirrorTableProvider::new(Arc::clone(&live), &mirror, hour)),
        )
        .expect("register");
    let local = SessionContext::new();
    local
        .register_table(
            "t",
            Arc::clone(&live) as Arc<dyn datafusion::catalog::TableProvider>,
        )
        .expect("register");
    let before = proxy.counts();
    for sql in [
        "SELECT count(*), sum(n), sum(amount) FROM t",
        "SELECT n, count(*), max(amount) FROM t GROUP BY n",
        "SELECT pk, amount FROM t WHERE n = 3 AND amount > 50",
    ] {
        let from_mirror = rows(
            &cluster
                .sql(sql)
                .await
                .expect("sql")
                .collect()
                .await
                .expect("cluster"),
        );
        let from_table = rows(
            &local
                .sql(sql)
                .await
                .expect("sql")
                .collect()
                .await
                .expect("local"),
        );
        assert!(!from_table.is_empty(), "{sql}");
        assert_eq!(from_mirror, from_table, "{sql}");
    }
    let after = proxy.counts();
    assert_eq!(
        after.requests, before.requests,
        "the executors read no DynamoDB item: {after:?}"
    );
}

/// Soak: a loop of queries while executors are killed (as a crash would)
/// and started again at random; every answer is exact — a query may fail
/// with an error while its executor is gone, never answer wrong. Runs
/// `BALLISTA_SOAK_SECONDS` (default 30; `scripts/soak.sh --ballista
/// --minutes 10` runs ten minutes) and prints queries, exact answers,
/// errors and kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_answer_exactly_while_executors_are_killed_and_restarted() {
    let seconds: u64 = std::env::var("BALLISTA_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    // Answers held 5 ms, 100-item pages, 4 segments: a query takes long
    // enough for a kill to land in it.
    let KillableCluster {
        nodes,
        session: cluster,
        proxy: _proxy,
    } = killable_cluster("ClusterSoak", 2_000, Duration::from_millis(5), 100).await;
    let groups: Vec<String> = (0..7)
        .map(|g| format!("{g}|{}", (0..2_000).filter(|i| i % 7 == g).count()))
        .collect();
    let queries: Vec<(&str, Vec<String>)> = vec![
        ("SELECT count(*), sum(n) FROM t", vec!["2000|9000".into()]),
        ("SELECT g, count(*) FROM t GROUP BY g ORDER BY g", groups),
        ("SELECT count(*) FROM t WHERE n < 3", vec!["600".into()]),
    ];

    // Chaos: every 4–10 s one executor is killed, and started again 2–5 s
    // later (never both down at once).
    let nodes = Arc::new(tokio::sync::Mutex::new(nodes));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chaos = {
        let (nodes, stop) = (Arc::clone(&nodes), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut draw = dynamo_testkit::Xorshift(0x5eed_cafe);
            let mut kills = 0u32;
            // Sleeps `ms`, waking early when the loop ends: false then.
            let nap = |ms: u64| {
                let stop = Arc::clone(&stop);
                async move {
                    let until = Instant::now() + Duration::from_millis(ms);
                    while Instant::now() < until {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return false;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    true
                }
            };
            while nap(4_000 + draw.below(6_000)).await {
                let victim = draw.below(2) as usize;
                nodes.lock().await.kill_executor(victim);
                kills += 1;
                nap(2_000 + draw.below(3_000)).await;
                nodes
                    .lock()
                    .await
                    .restart_executor(victim)
                    .await
                    .expect("executor restarts");
            }
            kills
        })
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut ran, mut exact, mut errors) = (0, 0, Vec::new());
    let mut wrong = Vec::new();
    while Instant::now() < deadline {
        let (sql, want) = &queries[ran % queries.len()];
        ran += 1;
        let outcome = tokio::time::timeout(Duration::from_secs(120), async {
            cluster.sql(sql).await?.collect().await
        })
        .await;
        match outcome {
            Ok(Ok(batches)) if rows(&batches) == *want => exact += 1,
            Ok(Ok(batches)) => wrong.push(format!("{sql}: {:?}", rows(&batches))),
            Ok(Err(e)) => errors.push(format!("{sql}: {e}")),
            Err(_) => errors.push(format!("{sql}: no answer within 120 s")),
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let kills = chaos.await.expect("chaos task");
    eprintln!(
        "Ballista soak: {seconds} s, {ran} queries, {exact} exact, {} errors, {} wrong \
         answers, {kills} executor kills and restarts",
        errors.len(),
        wrong.len()
    );
    for e in errors.iter().take(5) {
        eprintln!("  error: {e}");
    }
    assert!(wrong.is_empty(), "wrong answers: {wrong:#?}");
    assert!(kills >= 1, "no executor was killed");
    assert!(
        exact * 2 >= ran,
        "fewer than half the queries answered ({exact} of {ran}): {errors:#?}"
    );
}
