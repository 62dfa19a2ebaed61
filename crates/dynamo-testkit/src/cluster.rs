//! A Ballista cluster of `dynamo-ballista` processes on 127.0.0.1 — one
//! scheduler, some executors — for tests and benchmarks. Every process is
//! killed when the cluster is dropped; each logs at debug level to a file of
//! its own.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Why a cluster did not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A process could not be started, or a file written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// A process did not come up in time.
    #[error("{0}")]
    Timeout(String),
    /// The scheduler's REST API answered something unexpected.
    #[error("scheduler REST API: {0}")]
    Api(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The `dynamo-ballista` binary.
    pub binary: PathBuf,
    /// Number of executors.
    pub executors: usize,
    /// Tasks each executor runs at once.
    pub concurrent_tasks: usize,
    /// Extra arguments of the scheduler.
    pub scheduler_args: Vec<String>,
    /// Extra arguments of executor `i` (none past the end).
    pub executor_args: Vec<Vec<String>>,
    /// Environment of every process (their own credentials, `RUST_LOG`).
    pub env: Vec<(String, String)>,
}

impl ClusterSpec {
    /// `executors` executors of `concurrent_tasks` tasks each, run by `binary`.
    pub fn new(binary: impl Into<PathBuf>, executors: usize, concurrent_tasks: usize) -> Self {
        Self {
            binary: binary.into(),
            executors,
            concurrent_tasks,
            scheduler_args: Vec::new(),
            executor_args: Vec::new(),
            env: vec![("RUST_LOG".into(), "debug".into())],
        }
    }
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running cluster.
pub struct LocalCluster {
    spec: ClusterSpec,
    scheduler: SocketAddr,
    executors: Vec<Option<Proc>>,
    work_dirs: Vec<PathBuf>,
    logs: Vec<PathBuf>,
    event_log_dir: PathBuf,
    scheduler_proc: Option<Proc>,
    work: PathBuf,
}

impl std::fmt::Debug for LocalCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCluster")
            .field("scheduler", &self.scheduler)
            .field("executors", &self.executors.len())
            .finish_non_exhaustive()
    }
}

/// Starts executor `i` of `spec` on a free port pair: the process and the
/// address it binds.
fn executor(
    spec: &ClusterSpec,
    scheduler: SocketAddr,
    i: usize,
    dir: &Path,
    log: &Path,
) -> Result<(Proc, SocketAddr), ClusterError> {
    let bind: SocketAddr = ([127, 0, 0, 1], free_port_pair()).into();
    let mut args = vec![
        "executor".to_string(),
        "--scheduler".into(),
        scheduler.to_string(),
        "--bind".into(),
        bind.to_string(),
        "--concurrent-tasks".into(),
        spec.concurrent_tasks.to_string(),
        "--work-dir".into(),
        dir.to_string_lossy().into_owned(),
    ];
    args.extend(spec.executor_args.get(i).into_iter().flatten().cloned());
    Ok((spawn(spec, args, log)?, bind))
}

/// A loopback port whose next port is free too (an executor binds both).
fn free_port_pair() -> u16 {
    loop {
        let Ok(l) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = l.local_addr() else {
            continue;
        };
        let port = addr.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

async fn wait_listening(addr: SocketAddr, what: &str) -> Result<(), ClusterError> {
    let start = Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(ClusterError::Timeout(format!(
                "{what} did not listen on {addr} within 30 s"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Starts `spec`'s binary with `args`, logging to `log` (appended: a
/// restarted executor keeps its earlier log).
fn spawn(spec: &ClusterSpec, args: Vec<String>, log: &Path) -> Result<Proc, ClusterError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io("log file"))?;
    let child = Command::new(&spec.binary)
        .args(&args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .map_err(io(format!("starting {}", spec.binary.display())))?;
    Ok(Proc(child))
}

impl LocalCluster {
    /// Starts the scheduler (with an event log) and the executors, and
    /// returns once every executor has registered.
    pub async fn start(spec: ClusterSpec) -> Result<Self, ClusterError> {
        let work = std::env::temp_dir().join(format!(
            "dynamo-cluster-{}-{}",
            std::process::id(),
            crate::unique_name("c")
        ));
        std::fs::create_dir_all(&work).map_err(io("work directory"))?;
        let spawn = |args: Vec<String>, log: &Path| spawn(&spec, args, log);
        let path = |p: &Path| p.to_string_lossy().into_owned();
        let event_log_dir = work.join("events");
        let scheduler: SocketAddr = ([127, 0, 0, 1], free_port_pair()).into();
        let mut args = vec![
            "scheduler".to_string(),
            "--bind".into(),
            scheduler.to_string(),
            "--event-log-dir".into(),
            path(&event_log_dir),
        ];
        args.extend(spec.scheduler_args.iter().cloned());
        let mut logs = vec![work.join("scheduler.log")];
        let scheduler_proc = spawn(args, &logs[0])?;
        wait_listening(scheduler, "the scheduler").await?;
        let (mut executors, mut work_dirs) = (Vec::new(), Vec::new());
        for i in 0..spec.executors {
            let dir = work.join(format!("executor{i}"));
            std::fs::create_dir_all(&dir).map_err(io("executor work directory"))?;
            logs.push(work.join(format!("executor{i}.log")));
            let (proc, bind) = executor(&spec, scheduler, i, &dir, &logs[i + 1])?;
            executors.push(Some(proc));
            wait_listening(bind, "an executor").await?;
            work_dirs.push(dir);
        }
        let cluster = Self {
            spec,
            scheduler,
            executors,
            work_dirs,
            logs,
            event_log_dir,
            scheduler_proc: Some(scheduler_proc),
            work,
        };
        cluster.wait_registered(cluster.spec.executors).await?;
        Ok(cluster)
    }

    /// Waits until the scheduler lists `n` executors.
    async fn wait_registered(&self, n: usize) -> Result<(), ClusterError> {
        let start = Instant::now();
        loop {
            let listed = match self.api("/api/executors").await {
                Ok(body) => serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.as_array().map(Vec::len))
                    .unwrap_or(0),
                Err(_) => 0,
            };
            if listed >= n {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(ClusterError::Timeout(format!(
                    "{listed} of {n} executors registered within 30 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The scheduler's address, `df://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("df://{}", self.scheduler)
    }

    /// Stops executor `i` (as a crash would: killed).
    pub fn kill_executor(&mut self, i: usize) {
        if let Some(slot) = self.executors.get_mut(i) {
            slot.take();
        }
    }

    /// True while executor `i` runs (it was not killed).
    pub fn executor_running(&self, i: usize) -> bool {
        self.executors.get(i).is_some_and(Option::is_some)
    }

    /// Starts killed executor `i` again (on new ports, with the same work
    /// directory and arguments) and returns once it listens; the scheduler
    /// registers it with its next heartbeat.
    pub async fn restart_executor(&mut self, i: usize) -> Result<(), ClusterError> {
        if self.executor_running(i) {
            return Ok(());
        }
        let (Some(dir), Some(log)) = (self.work_dirs.get(i), self.logs.get(i + 1)) else {
            return Err(ClusterError::Api(format!("no executor {i}")));
        };
        let (proc, bind) = executor(&self.spec, self.scheduler, i, dir, log)?;
        self.executors[i] = Some(proc);
        wait_listening(bind, "a restarted executor").await
    }

    /// Each executor's work directory (its shuffle output).
    pub fn work_dirs(&self) -> &[PathBuf] {
        &self.work_dirs
    }

    /// Each process's log: the scheduler's, then each executor's.
    pub fn logs(&self) -> &[PathBuf] {
        &self.logs
    }

    /// The scheduler's event log directory.
    pub fn event_log_dir(&self) -> &Path {
        &self.event_log_dir
    }

    /// The body of a GET of `path` on the scheduler's REST API.
    pub async fn api(&self, path: &str) -> Result<String, ClusterError> {
        let mut stream = TcpStream::connect(self.scheduler)
            .await
            .map_err(io("connecting to the scheduler"))?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.scheduler);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(io("sending a REST request"))?;
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .await
            .map_err(io("reading a REST response"))?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| ClusterError::Api(format!("no HTTP response to GET {path}")))?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            let status = head.lines().next().unwrap_or_default();
            return Err(ClusterError::Api(format!("GET {path}: {status}")));
        }
        Ok(body.to_string())
    }

    /// The last `lines` lines of each process's log, for a failed test.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "--- {} (last {lines} lines)\n{}\n",
                log.display(),
                all[all.len().saturating_sub(lines)..].join("\n")
            ));
        }
        out
    }
}

impl Drop for LocalCluster {
    /// Kills the processes, executors first, and removes their files; a
    /// failing test shows the end of each log first.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails(30));
        }
        self.executors.clear();
        self.scheduler_proc.take();
        let _ = std::fs::remove_dir_all(&self.work);
    }
}
