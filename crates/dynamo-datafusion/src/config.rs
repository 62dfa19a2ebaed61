//! Session settings under the `dynamodb.` prefix: `SET dynamodb.pushdown = false`.

use datafusion::common::config::ConfigExtension;
use datafusion::common::extensions_options;

extensions_options! {
    /// Session-wide DynamoDB settings (register with
    /// `SessionConfig::with_option_extension(DynamoConfig::default())`;
    /// [`crate::dynamo_session`] does).
    pub struct DynamoConfig {
        /// Push filters, keys, indexes and limits into DynamoDB requests. When
        /// false every read is a plain Scan and DataFusion evaluates every filter
        /// (for comparisons and benchmarks; the answer is the same).
        pub pushdown: bool, default = true
        /// Full-scan guard: `off`, `warn` (log a warning) or `error` (refuse) when a
        /// query would Scan a table larger than `scan_guard_bytes`.
        pub scan_guard: String, default = "off".to_string()
        /// Table size above which the full-scan guard acts.
        pub scan_guard_bytes: u64, default = 1024 * 1024 * 1024
        /// Seconds a cached schema is used before the table is sampled again,
        /// for tables described after it is set (unset: the table option
        /// `schema_ttl`, default one day).
        pub schema_ttl: Option<u64>, default = None
        /// Adds the column `_extra` (every attribute without a column of its
        /// own, as DynamoDB JSON) to tables described after it is set
        /// (unset: the table option `extra_attributes`, default false).
        pub extra_attributes: Option<bool>, default = None
        /// Most requests one scan keeps in flight (unset: the table option
        /// `max_concurrency`, default 64).
        pub max_concurrency: Option<usize>, default = None
        /// Most DataFusion partitions one scan spreads its units (segments,
        /// Queries, key batches) over (unset: `target_partitions`). A
        /// partition still reads its units concurrently.
        pub max_partitions: Option<usize>, default = None
        /// Plan scans for a distributed engine (Ballista): each scan reads
        /// the partitions an in-memory input names, which the scheduler
        /// divides among tasks like any in-memory scan, and each task reads
        /// at its share of the read-capacity budget
        /// (`DynamoExec::with_partitions_input`). `dynamo-ballista` sets it.
        pub distributed: bool, default = false
        /// Read capacity units one query may consume at most (unset: no
        /// ceiling; the table option `max_rcu` applies too, the lower
        /// wins). A query whose estimate (`EXPLAIN` shows it) is above it
        /// is refused before any read; a query that consumes more while
        /// reading is stopped with an error.
        pub max_rcu: Option<f64>, default = None
        /// USD per million read request units, for the price `EXPLAIN`
        /// shows beside each read's estimate (default: the published
        /// us-east-1 on-demand read price).
        pub price_per_million_rru: f64, default = crate::plan::DEFAULT_PRICE_PER_MILLION_RRU
        /// Estimated read capacity above which a full Scan gets a warning
        /// before it reads (unset: no warning; `dynamo-sql` sets 10000).
        pub warn_rcu: Option<f64>, default = None
        /// Let a hash join's build side turn the other side's read into key
        /// lookups at run time (BatchGetItem or one Query per key) when its
        /// keys pin the table's partition key and that reads less; off: the
        /// planned read runs (the answer is the same).
        pub join_key_lookups: bool, default = true
    }
}

impl ConfigExtension for DynamoConfig {
    const PREFIX: &'static str = "dynamodb";
}

/// What the full-scan guard does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanGuard {
    Off,
    Warn,
    Error,
}

impl DynamoConfig {
    /// The settings of `session` (the defaults when it has none).
    pub(crate) fn of(session: &dyn datafusion::catalog::Session) -> Self {
        session
            .config()
            .options()
            .extensions
            .get::<DynamoConfig>()
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn guard(&self) -> ScanGuard {
        match self.scan_guard.to_ascii_lowercase().as_str() {
            "warn" => ScanGuard::Warn,
            "error" | "refuse" => ScanGuard::Error,
            _ => ScanGuard::Off,
        }
    }
}
