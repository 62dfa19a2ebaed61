//! A real cluster on 127.0.0.1: a `dynamo-ballista` scheduler and two
//! executors as processes, DynamoDB Local behind them. Queries through the
//! cluster answer what they answer locally, and a scan of 8 segments runs
//! tasks on both executors.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    FaultConfig, FaultProxy, TableSpec, local_client, local_endpoint, unique_name,
};

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port whose next port is free too (an executor binds both).
fn free_port_pair() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} did not start listening"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The cluster processes' own secret access key (DynamoDB Local keeps one
/// database per access key id, so the id is the test client's).
const CLUSTER_SECRET: &str = "cluster-own-secret";

/// Starts `dynamo-ballista` with `args`, logging at debug level to `log`.
fn spawn(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_dynamo-ballista"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", CLUSTER_SECRET)
        .env("RUST_LOG", "debug")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(
            "DYNAMODB_ENDPOINT",
            local_endpoint().expect("DYNAMODB_ENDPOINT"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn dynamo-ballista");
    Proc(child)
}

/// Files under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
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

/// A scheduler and two executors, killed when dropped.
struct Cluster {
    /// The scheduler's address.
    scheduler: String,
    /// Executor processes, in start order.
    executors: Vec<Proc>,
    /// Their work directories (shuffle output).
    work_dirs: Vec<std::path::PathBuf>,
    /// Each process's log (scheduler first).
    logs: Vec<std::path::PathBuf>,
    /// The scheduler's event log directory.
    event_log_dir: std::path::PathBuf,
    _scheduler: Proc,
    _work: tempfile::TempDir,
}

impl Drop for Cluster {
    /// A failed test shows the end of each process's log.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            eprintln!("--- {} (last 30 lines)\n{tail}", log.display());
        }
    }
}

impl Cluster {
    /// Starts it; the extra arguments go to the scheduler and to executor
    /// `i` (`executor_args(i)`). Returns once the executors have had time
    /// to register.
    async fn start(scheduler_args: &[&str], executor_args: impl Fn(usize) -> Vec<String>) -> Self {
        let work = tempfile::tempdir().expect("work dirs");
        let event_log_dir = work.path().join("events");
        let scheduler = format!("127.0.0.1:{}", free_port_pair());
        let mut args = vec![
            "scheduler",
            "--bind",
            &scheduler,
            "--event-log-dir",
            event_log_dir.to_str().expect("utf-8 path"),
        ];
        args.extend_from_slice(scheduler_args);
        let mut logs = vec![work.path().join("scheduler.log")];
        let scheduler_proc = spawn(&args, &logs[0]);
        wait_listening(scheduler.parse().expect("addr"));
        let (mut executors, mut work_dirs) = (Vec::new(), Vec::new());
        for i in 0..2 {
            let bind = format!("127.0.0.1:{}", free_port_pair());
            let dir = work.path().join(format!("executor{i}"));
            std::fs::create_dir_all(&dir).expect("work dir");
            let mut args = vec![
                "executor",
                "--scheduler",
                &scheduler,
                "--bind",
                &bind,
                "--concurrent-tasks",
                "2",
                "--work-dir",
                dir.to_str().expect("utf-8 path"),
            ];
            let extra = executor_args(i);
            args.extend(extra.iter().map(String::as_str));
            logs.push(work.path().join(format!("executor{i}.log")));
            executors.push(spawn(&args, &logs[i + 1]));
            wait_listening(bind.parse().expect("addr"));
            work_dirs.push(dir);
        }
        // Executors register with the scheduler by heartbeat.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Self {
            scheduler,
            executors,
            work_dirs,
            logs,
            event_log_dir,
            _scheduler: scheduler_proc,
            _work: work,
        }
    }

    /// A client session of this cluster.
    async fn session(&self) -> SessionContext {
        let state = SessionStateBuilder::new()
            .with_config(session_config())
            .with_default_features()
            .build();
        cluster_session(
            &format!("df://{}", self.scheduler),
            state,
            &ConnectionOptions::default(),
        )
        .await
        .expect("cluster session")
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
    let nodes = Cluster::start(&[], |i| {
        vec!["--endpoint-url".to_string(), endpoints[i].clone()]
    })
    .await;
    let local = SessionContext::new();
    let cluster = nodes.session().await;
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
    let queries = [
        "SELECT count(*), sum(n) FROM events",
        "SELECT n, count(*) FROM events GROUP BY n",
        "SELECT sk, n FROM events WHERE pk = 'u7'",
        "SELECT body FROM events WHERE pk = 'u7' AND sk = 507",
        "SELECT u.country, count(*) FROM events e JOIN users u ON e.pk = u.pk GROUP BY u.country",
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
    for (i, dir) in nodes.work_dirs.iter().enumerate() {
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
    let events = files_under(&nodes.event_log_dir);
    let event_text: String = events
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("event log"))
        .collect();
    assert!(
        event_text.contains("DynamoExec"),
        "the event log records the scans ({} files)",
        events.len()
    );
    for file in nodes.logs.iter().chain(&events) {
        let text = std::fs::read_to_string(file).expect("log");
        assert!(!text.is_empty(), "{} is empty", file.display());
        for secret in [CLUSTER_SECRET, dynamo_testkit::LOCAL_SECRET] {
            assert!(
                !text.contains(secret),
                "{} holds a secret access key",
                file.display()
            );
        }
    }
}

/// An executor killed while the cluster reads: the query completes on the
/// other executor with the full answer, or fails with an error — never a
/// partial answer reported as complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_killed_mid_scan_never_yields_a_partial_answer() {
    let client = local_client().await.expect("client");
    let table = unique_name("ClusterKill");
    let items = (0..4_000)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(format!("k{i}"))),
                ("n".to_string(), AV::N((i % 10).to_string())),
            ])
        })
        .collect();
    TableSpec::new(&table, "pk", T::S)
        .create_with(&client, items)
        .await
        .expect("table");
    // The executors read through a proxy that holds every answer 20 ms, in
    // 20-item pages: each of 4 segments (tasks on both executors) takes
    // ~1 s, long enough to kill a reader mid-scan.
    let proxy = FaultProxy::start(
        &local_endpoint().expect("endpoint"),
        FaultConfig {
            latency: Duration::from_millis(20),
            ..FaultConfig::none()
        },
    )
    .await
    .expect("proxy");
    let endpoint = proxy.endpoint();
    // A lost executor is noticed within 6 s.
    let mut nodes = Cluster::start(&["--executor-timeout", "6"], |_| {
        ["--heartbeat", "1", "--endpoint-url", &endpoint]
            .map(String::from)
            .to_vec()
    })
    .await;
    let cluster = nodes.session().await;
    let provider = DynamoTableProvider::builder(client.clone(), &table)
        .segments(4)
        .page_size(20)
        .build()
        .await
        .expect("provider");
    cluster
        .register_table("t", Arc::new(provider))
        .expect("register");
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
    drop(nodes.executors.remove(0));
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
