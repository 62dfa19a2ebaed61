//! Session settings under the `dynamodb.` prefix: `SET dynamodb.pushdown = false`.
//!
//! The settings are a DataFusion config extension whose entries carry their
//! full names (`dynamodb.max_rcu`), as Ballista's own settings do: a
//! cluster client sends a session's entries with each job, and the
//! scheduler and executors set them by name, so a setting made in the client
//! is the setting the cluster plans and reads with.

use std::fmt;
use std::str::FromStr;

use datafusion::common::config::{
    ConfigEntry, ConfigExtension, ConfigField, ExtensionOptions, Visit,
};
use datafusion::common::{DataFusionError, Result as DfResult};

/// `dynamodb.`: the settings' prefix.
const PREFIX: &str = concat!("dynamodb", ".");

/// Defines the settings struct with its defaults, per-field parsing and
/// display, and a DataFusion config extension whose entries are named with
/// the prefix.
macro_rules! dynamo_settings {
    (
        $(#[doc = $struct_doc:tt])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:tt])*
                pub $field:ident : $ty:ty, default = $default:expr
            )*
        }
    ) => {
        $(#[doc = $struct_doc])*
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default),* }
            }
        }

        impl ConfigField for $name {
            fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
                let (field, rest) = key.split_once('.').unwrap_or((key, ""));
                match field {
                    $(stringify!($field) => self.$field.set(rest, value),)*
                    _ => Err(unknown_setting(field)),
                }
            }

            fn visit<V: Visit>(&self, v: &mut V, prefix: &str, _description: &'static str) {
                $(
                    self.$field.visit(
                        v,
                        &format!("{prefix}{}", stringify!($field)),
                        concat!($($doc),*).trim(),
                    );
                )*
            }
        }

        impl ExtensionOptions for $name {
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }

            fn as_any_mut(&mut self) -> &mut dyn std::any::Any {
                self
            }

            fn cloned(&self) -> Box<dyn ExtensionOptions> {
                Box::new(self.clone())
            }

            fn set(&mut self, key: &str, value: &str) -> DfResult<()> {
                ConfigField::set(self, key, value)
            }

            fn entries(&self) -> Vec<ConfigEntry> {
                let mut entries = Entries(Vec::new());
                self.visit(&mut entries, PREFIX, "");
                entries.0
            }
        }
    };
}

/// Collects a settings struct's entries.
struct Entries(Vec<ConfigEntry>);

impl Visit for Entries {
    fn some<V: fmt::Display>(&mut self, key: &str, value: V, description: &'static str) {
        self.0.push(ConfigEntry {
            key: key.to_string(),
            value: Some(value.to_string()),
            description,
        });
    }

    fn none(&mut self, key: &str, description: &'static str) {
        self.0.push(ConfigEntry {
            key: key.to_string(),
            value: None,
            description,
        });
    }
}

/// The names of the settings, without the prefix.
fn setting_names() -> Vec<String> {
    DynamoConfig::default()
        .entries()
        .into_iter()
        .map(|e| e.key.strip_prefix(PREFIX).unwrap_or(&e.key).to_string())
        .collect()
}

/// A key that names no setting, with the ones there are.
fn unknown_setting(key: &str) -> DataFusionError {
    DataFusionError::Configuration(format!(
        "no setting '{PREFIX}{key}'; the settings are {PREFIX}{}",
        setting_names().join(&format!(", {PREFIX}"))
    ))
}

dynamo_settings! {
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
        /// Shows items whose time-to-live attribute is in the past (expired,
        /// not yet deleted by DynamoDB) (unset: the table option
        /// `include_expired`, default false: reads hide them).
        pub include_expired: Option<bool>, default = None
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
        /// Let an UPDATE or DELETE without a WHERE (or with one DataFusion
        /// cannot hand the table: a subquery) change every item of the table.
        pub allow_full_table_writes: bool, default = false
        /// How a write statement writes: `batch` (BatchWriteItem for
        /// REPLACE, one conditional request per item otherwise; what was
        /// written before a failure stays written) or `transaction` (one
        /// TransactWriteItems of at most 100 items: all or nothing, at
        /// twice the write capacity).
        pub write_mode: WriteMode, default = WriteMode::Batch
        /// Write capacity units one write statement may consume at most
        /// (unset: no ceiling). A statement whose estimate (`EXPLAIN` shows
        /// it) is above it is refused before any write; one that would
        /// pass it while writing stops before the write that would.
        pub max_wcu: Option<f64>, default = None
        /// USD per million write request units, for the price `EXPLAIN`
        /// shows beside a write's estimate (default: the published
        /// us-east-1 on-demand write price).
        pub price_per_million_wru: f64, default = DEFAULT_PRICE_PER_MILLION_WRU
    }
}

/// The published us-east-1 on-demand price of a million write request units, in USD.
pub const DEFAULT_PRICE_PER_MILLION_WRU: f64 = 0.625;

/// How a write statement writes (`dynamodb.write_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Item by item (REPLACE: 25 at a time); a failure stops the statement
    /// and what was written stays written.
    #[default]
    Batch,
    /// One TransactWriteItems: every write or none.
    Transaction,
}

impl FromStr for WriteMode {
    type Err = DataFusionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "batch" => Ok(Self::Batch),
            "transaction" => Ok(Self::Transaction),
            _ => Err(DataFusionError::Configuration(format!(
                "dynamodb.write_mode is batch or transaction, not '{}'",
                s.trim()
            ))),
        }
    }
}

impl fmt::Display for WriteMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Batch => "batch",
            Self::Transaction => "transaction",
        })
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
enum_setting!(WriteMode);

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

/// Words that turn off a setting whose default is unset (`SET
/// dynamodb.max_rcu = off`).
const UNSET_WORDS: [&str; 3] = ["off", "none", "default"];

impl DynamoConfig {
    /// Puts `key` (without the `dynamodb.` prefix) back to its default,
    /// keeping every other setting: what `RESET dynamodb.<key>` does.
    ///
    /// ```
    /// use datafusion::config::ExtensionOptions;
    /// use dynamo_datafusion::DynamoConfig;
    ///
    /// let mut settings = DynamoConfig::default();
    /// settings.set("max_rcu", "100").unwrap();
    /// settings.set("pushdown", "false").unwrap();
    /// settings.reset("max_rcu").unwrap();
    /// assert_eq!((settings.max_rcu, settings.pushdown), (None, false));
    /// assert!(settings.reset("max_rcuu").is_err());
    /// ```
    pub fn reset(&mut self, key: &str) -> DfResult<()> {
        Self::check_key(key)?;
        // Rebuilt from the defaults with every other set value applied
        // again: one rule for every field, however it is stored.
        let mut fresh = Self::default();
        for entry in self.entries() {
            let name = entry.key.strip_prefix(PREFIX).unwrap_or(&entry.key);
            if let (true, Some(value)) = (name != key, &entry.value) {
                ConfigField::set(&mut fresh, name, value)?;
            }
        }
        *self = fresh;
        Ok(())
    }

    /// Sets `key` to `value`, where `off` (or `none`, `default`) unsets a
    /// setting whose default is unset, such as the ceiling `max_rcu`.
    pub fn set_or_unset(&mut self, key: &str, value: &str) -> DfResult<()> {
        Self::check_key(key)?;
        let full = format!("{PREFIX}{key}");
        let unset_by_default = Self::default()
            .entries()
            .iter()
            .any(|e| e.key == full && e.value.is_none());
        let word = value.trim().to_ascii_lowercase();
        if unset_by_default && UNSET_WORDS.contains(&word.as_str()) {
            return self.reset(key);
        }
        ConfigField::set(self, key, value).map_err(|e| {
            if unset_by_default {
                DataFusionError::Configuration(format!(
                    "{} (or 'off' to unset {full})",
                    e.strip_backtrace()
                ))
            } else {
                e
            }
        })
    }

    /// Refuses a key that names no setting, listing the ones there are.
    fn check_key(key: &str) -> DfResult<()> {
        if setting_names().iter().any(|n| n == key) {
            Ok(())
        } else {
            Err(unknown_setting(key))
        }
    }
}

/// Runs a `SET` or `RESET` of a `dynamodb.` setting in `ctx`, which
/// DataFusion's own statement handling cannot do for an extension's
/// settings (`RESET` looks only at `datafusion.` settings, and `SET` cannot
/// unset). `None` when `plan` is something else.
pub(crate) fn apply_setting_statement(
    ctx: &datafusion::prelude::SessionContext,
    plan: &datafusion::logical_expr::LogicalPlan,
) -> Option<DfResult<()>> {
    use datafusion::logical_expr::{LogicalPlan, Statement};
    let (key, value) = match plan {
        LogicalPlan::Statement(Statement::SetVariable(s)) => {
            (s.variable.strip_prefix(PREFIX)?, Some(s.value.as_str()))
        }
        LogicalPlan::Statement(Statement::ResetVariable(s)) => {
            (s.variable.strip_prefix(PREFIX)?, None)
        }
        _ => return None,
    };
    Some(DynamoConfig::apply_in(ctx, key, value))
}

impl DynamoConfig {
    /// Changes the setting `key` (without the `dynamodb.` prefix) of the
    /// session `ctx`: sets it to `value` (`off` unsets a setting that is
    /// unset by default), or resets it to its default when `value` is
    /// `None`. What `SET` and `RESET` of a `dynamodb.` setting do.
    pub fn apply_in(
        ctx: &datafusion::prelude::SessionContext,
        key: &str,
        value: Option<&str>,
    ) -> DfResult<()> {
        let state = ctx.state_ref();
        let mut state = state.write();
        let extensions = &mut state.config_mut().options_mut().extensions;
        match extensions.get_mut::<DynamoConfig>() {
            Some(settings) => match value {
                Some(value) => settings.set_or_unset(key, value),
                None => settings.reset(key),
            },
            None => Err(DataFusionError::Configuration(format!(
                "this session has no dynamodb settings: build it with dynamo_session (or \
                 register DynamoConfig) to set dynamodb.{key}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_carry_their_full_names_and_set_back_by_them() {
        let mut s = DynamoConfig::default();
        ExtensionOptions::set(&mut s, "max_rcu", "7").expect("set");
        let entries = s.entries();
        let max = entries
            .iter()
            .find(|e| e.key == "dynamodb.max_rcu")
            .expect("a prefixed entry");
        assert_eq!(max.value.as_deref(), Some("7"));
        assert!(
            max.description.contains("Read capacity units"),
            "{}",
            max.description
        );
        // Through DataFusion's options, by full name: what a cluster does
        // with the entries a client sends.
        let mut options = datafusion::config::ConfigOptions::new();
        options.extensions.insert(DynamoConfig::default());
        for e in &entries {
            if let Some(v) = &e.value {
                options
                    .set(&e.key, v)
                    .expect("settable by its entry's name");
            }
        }
        let copied = options
            .extensions
            .get::<DynamoConfig>()
            .expect("registered");
        assert_eq!(copied.max_rcu, Some(7.0));
        let e = ConfigField::set(&mut s, "nope", "1")
            .expect_err("unknown")
            .to_string();
        assert!(e.contains("no setting 'dynamodb.nope'"), "{e}");
    }

    #[test]
    fn reset_puts_one_setting_back_and_keeps_the_others() {
        let mut s = DynamoConfig::default();
        ConfigField::set(&mut s, "max_rcu", "12.5").expect("set");
        ConfigField::set(&mut s, "scan_guard", "error").expect("set");
        ConfigField::set(&mut s, "join_key_lookups", "rcu").expect("set");
        ConfigField::set(&mut s, "price_per_million_rru", "0.25").expect("set");
        s.reset("scan_guard").expect("reset");
        assert_eq!(s.scan_guard, ScanGuard::Off);
        assert_eq!(s.max_rcu, Some(12.5));
        assert_eq!(s.join_key_lookups, JoinKeyLookups::FewerRcu);
        assert_eq!(s.price_per_million_rru, 0.25);
        s.reset("max_rcu").expect("reset");
        assert_eq!(s.max_rcu, None);
        let e = s.reset("max_rc").expect_err("unknown").to_string();
        assert!(e.contains("no setting 'dynamodb.max_rc'"), "{e}");
        assert!(e.contains("dynamodb.max_rcu"), "{e}");
    }

    #[test]
    fn off_unsets_what_is_unset_by_default_and_nothing_else() {
        let mut s = DynamoConfig::default();
        s.set_or_unset("max_rcu", "100").expect("set");
        assert_eq!(s.max_rcu, Some(100.0));
        s.set_or_unset("max_rcu", "OFF").expect("off");
        assert_eq!(s.max_rcu, None);
        s.set_or_unset("warn_rcu", "5").expect("set");
        s.set_or_unset("warn_rcu", "none").expect("none");
        assert_eq!(s.warn_rcu, None);
        // Enumerations keep their own 'off'; a number stays a number.
        s.set_or_unset("scan_guard", "off").expect("off");
        assert_eq!(s.scan_guard, ScanGuard::Off);
        let e = s
            .set_or_unset("price_per_million_rru", "off")
            .expect_err("not unsettable")
            .to_string();
        assert!(!e.contains("or 'off'"), "{e}");
        let e = s
            .set_or_unset("max_rcu", "lots")
            .expect_err("not a number")
            .to_string();
        assert!(e.contains("or 'off' to unset dynamodb.max_rcu"), "{e}");
    }
}
