//! Per-tenant usage and daily quotas.
//!
//! Every request the connector serves (HTTP, one-shot `run`, Flight SQL) is
//! counted per client, table and UTC day: requests, items read (evaluated
//! by DynamoDB), items returned, read capacity consumed, errors by code.
//! [`UsageRecorder`] takes a request's counts without waiting: they go to a
//! background task that sums them and writes them to the [`UsageStore`]
//! in one transaction per interval, so a request never waits on the store;
//! [`UsageRecorder::close`] writes what is left (graceful shutdown). A
//! write that fails is kept and tried again at the next interval.
//!
//! A client with a daily quota (`admin quota set C --daily-rcu N`) is
//! refused with `quota_exceeded` once what the store holds for its day,
//! plus what this process has not written yet, reaches the quota; the quota
//! resets at the next midnight UTC. A request is checked before it runs and
//! may itself pass the quota; the next one is refused.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ConnectorError, ErrorCode, Result};

/// Seconds in a day.
const DAY: u64 = 86_400;
/// Summed rows written at once when this many are waiting, before the interval.
const MAX_PENDING_ROWS: usize = 1_000;

/// The time, injectable for tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The UTC day of `t`, as `YYYY-MM-DD`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use dynamo_connector::utc_day;
/// assert_eq!(utc_day(UNIX_EPOCH + Duration::from_secs(1_764_460_800)), "2025-11-30");
/// ```
pub fn utc_day(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t.max(UNIX_EPOCH))
        .format("%Y-%m-%d")
        .to_string()
}

/// `t` as an RFC 3339 UTC time to the second.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use dynamo_connector::utc_time;
/// assert_eq!(utc_time(UNIX_EPOCH + Duration::from_secs(1_764_490_500)), "2025-11-30T08:15:00Z");
/// ```
pub fn utc_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t.max(UNIX_EPOCH))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The next midnight UTC after `t`, and the seconds until it.
fn next_midnight(t: SystemTime) -> (SystemTime, u64) {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let next = (secs / DAY + 1) * DAY;
    (UNIX_EPOCH + Duration::from_secs(next), next - secs)
}

/// One request's reads of one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableUsage {
    /// The DynamoDB table.
    pub table: String,
    /// Items DynamoDB evaluated.
    pub items_read: u64,
    /// Items it returned.
    pub items_returned: u64,
    /// Read capacity units consumed.
    pub rcu: f64,
    /// Items written (inserted, replaced, updated or deleted).
    pub items_written: u64,
    /// Write capacity units consumed.
    pub wcu: f64,
}

/// One client's usage of one table on one UTC day: as recorded, stored
/// and reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageRow {
    /// The client (tenant).
    pub client_id: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// The table; `(sql)` for `sql` requests that failed before naming one.
    pub table: String,
    /// Requests.
    pub requests: u64,
    /// Items DynamoDB evaluated.
    pub items_read: u64,
    /// Items returned.
    pub items_returned: u64,
    /// Read capacity units consumed.
    pub rcu: f64,
    /// Items written.
    pub items_written: u64,
    /// Write capacity units consumed.
    pub wcu: f64,
    /// Failed requests by error code.
    pub errors: BTreeMap<String, u64>,
}

impl UsageRow {
    fn key(&self) -> (String, String, String) {
        (self.client_id.clone(), self.day.clone(), self.table.clone())
    }

    /// Adds `other`'s counts (same client, day and table) to this row.
    pub fn absorb(&mut self, other: &UsageRow) {
        self.requests += other.requests;
        self.items_read += other.items_read;
        self.items_returned += other.items_returned;
        self.rcu += other.rcu;
        self.items_written += other.items_written;
        self.wcu += other.wcu;
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }
}

/// Which usage to report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// One client, or all.
    pub client_id: Option<String>,
    /// From this day (`YYYY-MM-DD`, inclusive).
    pub since: Option<String>,
    /// Up to this day (inclusive).
    pub until: Option<String>,
}

/// Where usage and quotas are kept ([`crate::SqliteStore`] is one).
pub trait UsageStore: Send + Sync + std::fmt::Debug {
    /// Adds `rows` to what is stored (summing rows of the same client, day
    /// and table), all or nothing.
    fn add_usage(&self, rows: &[UsageRow]) -> Result<()>;
    /// The stored rows `filter` selects, by client, day and table.
    fn usage(&self, filter: &UsageFilter) -> Result<Vec<UsageRow>>;
    /// Read capacity units stored for `client_id` on `day`.
    fn day_rcu(&self, client_id: &str, day: &str) -> Result<f64>;
    /// The client's daily quota of read capacity units, if any.
    fn daily_quota(&self, client_id: &str) -> Result<Option<f64>>;
    /// Sets (or with `None` removes) the client's daily quota.
    fn set_daily_quota(&self, client_id: &str, rcu: Option<f64>) -> Result<()>;
}

/// How [`format_usage`] prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UsageFormat {
    /// Aligned columns.
    Table,
    /// One JSON array of objects.
    Json,
    /// Comma-separated values with a header row (errors as `code=n;code=n`).
    Csv,
}

/// `rows` as text in `format`.
///
/// ```
/// use dynamo_connector::{UsageFormat, UsageRow, format_usage};
/// let row = UsageRow { client_id: "acme".into(), day: "2026-11-30".into(), table: "Orders".into(),
///     requests: 3, items_read: 40, items_returned: 12, rcu: 2.5, items_written: 2, wcu: 2.0,
///     errors: Default::default() };
/// assert_eq!(
///     format_usage(&[row], UsageFormat::Csv),
///     "client,day,table,requests,items_read,items_returned,rcu,items_written,wcu,errors\nacme,2026-11-30,Orders,3,40,12,2.5,2,2,\n"
/// );
/// ```
pub fn format_usage(rows: &[UsageRow], format: UsageFormat) -> String {
    let errors = |r: &UsageRow, sep: &str| {
        r.errors
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let header = [
        "client",
        "day",
        "table",
        "requests",
        "items_read",
        "items_returned",
        "rcu",
        "items_written",
        "wcu",
        "errors",
    ];
    let cells = |r: &UsageRow, sep: &str| {
        vec![
            r.client_id.clone(),
            r.day.clone(),
            r.table.clone(),
            r.requests.to_string(),
            r.items_read.to_string(),
            r.items_returned.to_string(),
            r.rcu.to_string(),
            r.items_written.to_string(),
            r.wcu.to_string(),
            errors(r, sep),
        ]
    };
    match format {
        UsageFormat::Json => {
            let mut text = serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into());
            text.push('\n');
            text
        }
        UsageFormat::Csv => {
            let quote = |c: String| {
                if c.contains([',', '"', '\n']) {
                    format!("\"{}\"", c.replace('"', "\"\""))
                } else {
                    c
                }
            };
            let mut out = header.join(",") + "\n";
            for r in rows {
                let line: Vec<String> = cells(r, ";").into_iter().map(quote).collect();
                out += &(line.join(",") + "\n");
            }
            out
        }
        UsageFormat::Table => {
            let body: Vec<Vec<String>> = rows.iter().map(|r| cells(r, ", ")).collect();
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    body.iter()
                        .map(|row| row[i].chars().count())
                        .chain([header[i].len()])
                        .max()
                        .unwrap_or(0)
                })
                .collect();
            let line = |row: &[String]| {
                row.iter()
                    .zip(&widths)
                    .enumerate()
                    .map(|(i, (c, w))| {
                        // Numbers right-aligned, text left-aligned.
                        if (3..9).contains(&i) {
                            format!("{c:>w$}")
                        } else {
                            format!("{c:<w$}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
                    + "\n"
            };
            let mut out = line(&header.map(String::from));
            for row in &body {
                out += &line(row);
            }
            out += &format!(
                "({} row{})\n",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" }
            );
            out
        }
    }
}

enum Message {
    Rows(Vec<UsageRow>),
    Flush(oneshot::Sender<()>),
}

/// Records usage without slowing requests, and checks quotas. See the
/// module documentation.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dynamo_connector::SqliteStore>) {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use dynamo_connector::{SystemClock, TableUsage, UsageRecorder};
///
/// let usage = UsageRecorder::start(store, Arc::new(SystemClock), Duration::from_secs(1));
/// usage.check_quota("acme").expect("under its quota");
/// usage.record("acme", &[TableUsage { table: "Orders".into(), items_read: 10, items_returned: 2, rcu: 0.5,
///     items_written: 0, wcu: 0.0 }], None);
/// usage.close().await;
/// # }
/// ```
#[derive(Debug)]
pub struct UsageRecorder {
    store: Arc<dyn UsageStore>,
    clock: Arc<dyn Clock>,
    tx: mpsc::UnboundedSender<Message>,
    /// Capacity recorded but not yet written, by (client, day).
    unwritten: Arc<Mutex<HashMap<(String, String), f64>>>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl UsageRecorder {
    /// Starts the writer task (on the current tokio runtime), writing
    /// every `interval`.
    pub fn start(
        store: Arc<dyn UsageStore>,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let unwritten = Arc::new(Mutex::new(HashMap::new()));
        let task = tokio::spawn(write_loop(
            Arc::clone(&store),
            rx,
            interval,
            Arc::clone(&unwritten),
        ));
        Arc::new(Self {
            store,
            clock,
            tx,
            unwritten,
            task: Mutex::new(Some(task)),
        })
    }

    /// The day it is now (UTC).
    pub fn today(&self) -> String {
        utc_day(self.clock.now())
    }

    /// Records one request of `client_id`: its reads of each table, and
    /// the error it failed with (`table`, `code`), if it did. A request
    /// is counted once per table it read (once under the error's table
    /// when it failed).
    pub fn record(&self, client_id: &str, tables: &[TableUsage], error: Option<(&str, ErrorCode)>) {
        let day = self.today();
        let mut rows: Vec<UsageRow> = tables
            .iter()
            .map(|t| UsageRow {
                client_id: client_id.to_string(),
                day: day.clone(),
                table: t.table.clone(),
                requests: 1,
                items_read: t.items_read,
                items_returned: t.items_returned,
                rcu: t.rcu,
                items_written: t.items_written,
                wcu: t.wcu,
                errors: BTreeMap::new(),
            })
            .collect();
        if let Some((table, code)) = error {
            let errors = BTreeMap::from([(code.as_str().to_string(), 1)]);
            match rows.iter_mut().find(|r| r.table == table) {
                Some(row) => row.errors = errors,
                None => rows.push(UsageRow {
                    client_id: client_id.to_string(),
                    day: day.clone(),
                    table: table.to_string(),
                    requests: 1,
                    errors,
                    ..UsageRow::default()
                }),
            }
        }
        if rows.is_empty() {
            return;
        }
        let rcu: f64 = rows.iter().map(|r| r.rcu).sum();
        *self
            .unwritten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((client_id.to_string(), day))
            .or_default() += rcu;
        if self.tx.send(Message::Rows(rows)).is_err() {
            log::warn!("usage of client '{client_id}' not recorded: the recorder is closed");
        }
    }

    /// Read capacity units `client_id` used today: stored, and recorded
    /// but not yet written.
    pub fn used_today(&self, client_id: &str) -> Result<f64> {
        let day = self.today();
        let stored = self.store.day_rcu(client_id, &day)?;
        let pending = self
            .unwritten
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(client_id.to_string(), day))
            .copied()
            .unwrap_or(0.0);
        Ok(stored + pending)
    }

    /// `quota_exceeded` when `client_id` has a daily quota and has used it
    /// up today; the error says when it resets.
    pub fn check_quota(&self, client_id: &str) -> Result<()> {
        let Some(quota) = self.store.daily_quota(client_id)? else {
            return Ok(());
        };
        let used = self.used_today(client_id)?;
        if used < quota {
            return Ok(());
        }
        let now = self.clock.now();
        let (reset, wait) = next_midnight(now);
        Err(ConnectorError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "client '{client_id}' has used {used:.1} read capacity units of its daily quota of \
                 {quota} on {} (UTC); the quota resets at {}T00:00:00Z, in {}h {:02}m",
                utc_day(now),
                utc_day(reset),
                wait / 3_600,
                (wait % 3_600) / 60
            ),
        )
        .retry_after(wait))
    }

    /// Waits until everything recorded so far is written (or failed to be).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes what is left and stops the writer: for a graceful shutdown.
    pub async fn close(&self) {
        self.flush().await;
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

/// Sums rows by (client, day, table) into `pending`.
fn add_rows(pending: &mut BTreeMap<(String, String, String), UsageRow>, rows: Vec<UsageRow>) {
    for row in rows {
        match pending.get_mut(&row.key()) {
            Some(sum) => sum.absorb(&row),
            None => {
                pending.insert(row.key(), row);
            }
        }
    }
}

/// Writes `pending` in one transaction; on failure keeps it for the next try.
async fn write(
    store: &Arc<dyn UsageStore>,
    pending: &mut BTreeMap<(String, String, String), UsageRow>,
    unwritten: &Arc<Mutex<HashMap<(String, String), f64>>>,
) {
    if pending.is_empty() {
        return;
    }
    let rows: Vec<UsageRow> = pending.values().cloned().collect();
    let store = Arc::clone(store);
    let written = tokio::task::spawn_blocking(move || store.add_usage(&rows).map(|()| rows)).await;
    match written {
        Ok(Ok(rows)) => {
            pending.clear();
            let mut unwritten = unwritten.lock().unwrap_or_else(PoisonError::into_inner);
            for row in rows {
                let key = (row.client_id, row.day);
                if let Some(left) = unwritten.get_mut(&key) {
                    *left -= row.rcu;
                    if *left <= 1e-9 {
                        unwritten.remove(&key);
                    }
                }
            }
        }
        Ok(Err(e)) => log::warn!("usage not written yet ({e}); trying again"),
        Err(e) => log::warn!("usage not written yet ({e}); trying again"),
    }
}

async fn write_loop(
    store: Arc<dyn UsageStore>,
    mut rx: mpsc::UnboundedReceiver<Message>,
    interval: Duration,
    unwritten: Arc<Mutex<HashMap<(String, String), f64>>>,
) {
    let mut pending = BTreeMap::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Rows(rows)) => {
                    add_rows(&mut pending, rows);
                    if pending.len() >= MAX_PENDING_ROWS {
                        write(&store, &mut pending, &unwritten).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    // Everything sent before the flush is in `pending` now.
                    write(&store, &mut pending, &unwritten).await;
                    let _ = done.send(());
                }
                None => {
                    write(&store, &mut pending, &unwritten).await;
                    return;
                }
            },
            _ = tick.tick() => write(&store, &mut pending, &unwritten).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_midnights_in_utc() {
        let t = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(utc_day(t(0)), "1970-01-01");
        assert_eq!(utc_day(t(951_782_400)), "2000-02-29");
        assert_eq!(utc_day(t(1_798_761_599)), "2026-12-31");
        assert_eq!(utc_day(t(1_798_761_600)), "2027-01-01");
        let (reset, wait) = next_midnight(t(1_798_761_599));
        assert_eq!((utc_day(reset), wait), ("2027-01-01".to_string(), 1));
    }

    #[test]
    fn rows_of_one_client_day_and_table_are_summed() {
        let row = |table: &str, rcu: f64, error: Option<&str>| UsageRow {
            client_id: "c".into(),
            day: "2026-11-30".into(),
            table: table.into(),
            requests: 1,
            items_read: 2,
            items_returned: 1,
            rcu,
            items_written: 0,
            wcu: 0.0,
            errors: error
                .map(|e| BTreeMap::from([(e.to_string(), 1)]))
                .unwrap_or_default(),
        };
        let mut pending = BTreeMap::new();
        add_rows(
            &mut pending,
            vec![
                row("A", 0.5, None),
                row("B", 1.0, None),
                row("A", 2.0, Some("throttled")),
            ],
        );
        let a = &pending[&("c".into(), "2026-11-30".into(), "A".into())];
        assert_eq!((a.requests, a.items_read, a.rcu), (2, 4, 2.5));
        assert_eq!(a.errors["throttled"], 1);
        assert_eq!(pending.len(), 2);
    }
}
