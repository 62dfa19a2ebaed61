//! Session settings under the `dynamodb.` prefix: `SET dynamodb.pushdown = false`.

use std::fmt;
use std::str::FromStr;

use datafusion::common::config::{ConfigExtension, ConfigField, Visit};
use datafusion::common::{DataFusionError, Result as DfResult, extensions_options};

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
        pub scan_guard: ScanGuard, default = ScanGuard::Off
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
        /// lookups at run time (BatchGetItem of full keys, or one Query per
        /// key of the table or an index) when its keys pin that key:
        /// `items` when that reads fewer items than the planned read, `rcu`
        /// when it consumes fewer capacity units, `off` never (the planned
        /// read runs; the answer is the same). `true` is `items`, `false` is
        /// `off`.
        pub join_key_lookups: JoinKeyLookups, default = JoinKeyLookups::FewerItems
    }
}

impl ConfigExtension for DynamoConfig {
    const PREFIX: &'static str = "dynamodb";
}

/// What the full-scan guard does (`dynamodb.scan_guard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanGuard {
    /// Nothing.
    #[default]
    Off,
    /// Logs a warning and reads.
    Warn,
    /// Refuses the query.
    Error,
}

impl FromStr for ScanGuard {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "false" => Ok(Self::Off),
            "warn" => Ok(Self::Warn),
            "error" | "refuse" => Ok(Self::Error),
            _ => Err(DataFusionError::Configuration(format!(
                "dynamodb.scan_guard is off, warn or error, not '{}'",
                s.trim()
            ))),
        }
    }
}

impl fmt::Display for ScanGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::Warn => "warn",
            Self::Error => "error",
        })
    }
}

/// When a join's keys turn a read into key lookups (`dynamodb.join_key_lookups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JoinKeyLookups {
    /// Never: the planned read runs.
    Off,
    /// When the lookups read fewer items than the planned read.
    #[default]
    FewerItems,
    /// When the lookups consume fewer read capacity units.
    FewerRcu,
}

impl FromStr for JoinKeyLookups {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "false" => Ok(Self::Off),
            "items" | "true" | "on" => Ok(Self::FewerItems),
            "rcu" => Ok(Self::FewerRcu),
            _ => Err(DataFusionError::Configuration(format!(
                "dynamodb.join_key_lookups is items, rcu or off (true is items, false is off), \
                 not '{}'",
                s.trim()
            ))),
        }
    }
}

impl JoinKeyLookups {
    /// What the rule compares of a read's estimate: items, or capacity
    /// units under `rcu`.
    pub(crate) fn cost(self, estimate: &crate::plan::ReadEstimate) -> f64 {
        match self {
            Self::FewerRcu => estimate.rcu,
            _ => estimate.items,
        }
    }

    /// The unit [`Self::cost`] counts, for messages.
    pub(crate) fn unit(self) -> &'static str {
        match self {
            Self::FewerRcu => "RCU",
            _ => "items",
        }
    }
}

impl fmt::Display for JoinKeyLookups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Off => "off",
            Self::FewerItems => "items",
            Self::FewerRcu => "rcu",
        })
    }
}

/// A setting parsed by its `FromStr`, shown by its `Display`.
macro_rules! enum_setting {
    ($t:ty) => {
        impl ConfigField for $t {
            fn visit<V: Visit>(&self, v: &mut V, key: &str, description: &'static str) {
                v.some(key, self, description)
            }

            fn set(&mut self, _key: &str, value: &str) -> DfResult<()> {
                *self = value.parse()?;
                Ok(())
            }
        }
    };
}
enum_setting!(ScanGuard);
enum_setting!(JoinKeyLookups);

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
}
