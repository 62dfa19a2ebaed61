//! Read options of a DynamoDB table, from the builder or from `OPTIONS (...)`.

use std::collections::HashMap;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::plan::IndexPolicy;
use crate::policy::{DEFAULT_MAX_CONCURRENCY, RetryPolicy};
use crate::schema::{BadTime, ColumnType, Rules, TimeFormat};

/// Default number of items sampled to infer a schema.
///
/// Sampling reads items spread over several scan segments. With 2,000 items an
/// attribute present in 1% of items is missed with probability 0.99^2000 ≈ 2e-9.
pub const DEFAULT_SAMPLE_SIZE: usize = 2_000;

/// How the provider reads a table.
///
/// Serializable (serde) for a provider sent to another process, except
/// `column_types`: a serialized provider carries its whole schema, which
/// already holds them.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct TableOptions {
    /// Items sampled to infer the schema.
    pub sample_size: usize,
    /// Strongly consistent reads (twice the read capacity).
    pub consistent_read: bool,
    /// Items per request (`Limit`); `None` lets DynamoDB fill 1 MB pages.
    pub page_size: Option<i32>,
    /// Parallel-scan segments; `None` chooses one per 1 MB page of the
    /// table's size (at most 1,000): each segment is a unit of I/O, read
    /// concurrently with others.
    pub segments: Option<u32>,
    /// Most requests one scan keeps in flight, over all its partitions
    /// (the adaptive limit grows up to it while throughput grows).
    pub max_concurrency: usize,
    /// Requests one scan starts with in flight; `None` chooses: every unit
    /// of the read (up to `max_concurrency`) for an on-demand table, what
    /// one second of a provisioned table's read capacity pays for.
    pub initial_concurrency: Option<usize>,
    /// Column types that replace the inferred ones (and add unsampled attributes).
    #[serde(skip)]
    pub column_types: Vec<(String, ColumnType)>,
    /// Push filters, keys, indexes and limits into requests (see [`crate::PlanOptions`]).
    pub pushdown: bool,
    /// Which secondary indexes may be used.
    pub index: IndexPolicy,
    /// Retries of throttled and failed requests.
    pub retry: RetryPolicy,
    /// Read-capacity limit of one query, in RCU per second, shared by its segments.
    pub read_capacity: Option<f64>,
    /// Read-capacity limit as a percentage of the table's provisioned RCU
    /// (provisioned tables only; `read_capacity` wins when both are set).
    pub read_capacity_percent: Option<f64>,
    /// How long a cached schema is used before the table is sampled again
    /// (when a schema cache is set; zero: always sample).
    pub schema_ttl: Duration,
    /// Adds the column `_extra`: every attribute of an item that the schema
    /// has no column for, as a JSON object of DynamoDB JSON values.
    pub extra_attributes: bool,
    /// String attributes whose sampled values are all canonical ISO-8601
    /// (UTC timestamps of one precision, or dates) become `Timestamp` or
    /// `Date32` columns; `false` keeps them text.
    pub infer_time: bool,
    /// What a value that is not in its column's time format reads as.
    pub on_bad_time: BadTime,
    /// Shows items whose time-to-live attribute is in the past (expired,
    /// not yet deleted by DynamoDB); by default reads hide them.
    pub include_expired: bool,
    /// Read capacity units one query may consume from this table at most:
    /// a query estimated above it is refused before any read, and a read
    /// that consumes more is stopped (the session's `dynamodb.max_rcu`
    /// applies too; the lower wins).
    pub max_rcu: Option<f64>,
    /// Write-capacity limit of one write statement, in WCU per second,
    /// shared by its requests (unset: as fast as DynamoDB takes them).
    pub write_capacity: Option<f64>,
    /// Writes SQL NULL as DynamoDB's `NULL` type; by default a NULL column
    /// value is no attribute (what reads show as NULL either way).
    pub write_null_type: bool,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            sample_size: DEFAULT_SAMPLE_SIZE,
            consistent_read: false,
            page_size: None,
            segments: None,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            initial_concurrency: None,
            column_types: Vec::new(),
            pushdown: true,
            index: IndexPolicy::Auto,
            retry: RetryPolicy::default(),
            read_capacity: None,
            read_capacity_percent: None,
            schema_ttl: crate::schema::cache::DEFAULT_SCHEMA_TTL,
            extra_attributes: false,
            infer_time: true,
            on_bad_time: BadTime::Error,
            include_expired: false,
            max_rcu: None,
            write_capacity: None,
            write_null_type: false,
        }
    }
}

/// Option keys accepted by [`TableOptions::from_map`].
pub const OPTION_KEYS: &[&str] = &[
    "sample_size",
    "consistent_read",
    "page_size",
    "segments",
    "max_concurrency",
    "initial_concurrency",
    "column_types",
    "pushdown",
    "index",
    "read_capacity",
    "read_capacity_percent",
    "max_attempts",
    "retry_budget",
    "retry_base_delay_ms",
    "retry_max_delay_ms",
    "schema_ttl",
    "extra_attributes",
    "time_format",
    "infer_time",
    "on_bad_time",
    "include_expired",
    "max_rcu",
    "write_capacity",
    "write_null",
];

impl TableOptions {
    /// Reads options from `CREATE EXTERNAL TABLE ... OPTIONS (...)` pairs.
    ///
    /// Keys may carry DataFusion's `format.` prefix or a `dynamodb.` prefix.
    /// `column_types` is `name: type; name: type` (names keep their case).
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self> {
        let mut opts = Self::default();
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for full_key in keys {
            let value = map[full_key].trim();
            let key = full_key
                .strip_prefix("format.")
                .or_else(|| full_key.strip_prefix("dynamodb."))
                .unwrap_or(full_key);
            // Name the key as the user wrote it, without DataFusion's `format.` prefix.
            let invalid = |reason: String| Error::InvalidOption {
                key: key.to_string(),
                reason,
            };
            match key {
                "sample_size" => {
                    opts.sample_size =
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                invalid(format!("'{value}' is not a positive whole number"))
                            })?
                }
                "consistent_read" => {
                    opts.consistent_read = parse_bool(value)
                        .ok_or_else(|| invalid(format!("'{value}' is not true or false")))?
                }
                "page_size" => {
                    opts.page_size = Some(value.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(
                        || invalid(format!("'{value}' is not a positive whole number")),
                    )?)
                }
                "segments" => {
                    opts.segments = Some(whole_between(value, 1, 1_000_000).map_err(invalid)?)
                }
                "max_concurrency" => {
                    opts.max_concurrency = whole_between(value, 1, 10_000).map_err(invalid)?
                }
                "initial_concurrency" => {
                    opts.initial_concurrency =
                        Some(whole_between(value, 1, 10_000).map_err(invalid)?)
                }
                "column_types" => opts
                    .column_types
                    .extend(parse_column_types(value).map_err(invalid)?),
                "time_format" => opts
                    .column_types
                    .extend(parse_time_formats(value).map_err(invalid)?),
                "infer_time" => {
                    opts.infer_time = parse_bool(value)
                        .ok_or_else(|| invalid(format!("'{value}' is not true or false")))?
                }
                "include_expired" => {
                    opts.include_expired = parse_bool(value)
                        .ok_or_else(|| invalid(format!("'{value}' is not true or false")))?
                }
                "on_bad_time" => {
                    opts.on_bad_time = match value.to_ascii_lowercase().as_str() {
                        "error" => BadTime::Error,
                        "null" => BadTime::Null,
                        _ => return Err(invalid(format!("'{value}' is not 'error' or 'null'"))),
                    }
                }
                "pushdown" => {
                    opts.pushdown = parse_bool(value)
                        .ok_or_else(|| invalid(format!("'{value}' is not true or false")))?
                }
                "index" => {
                    opts.index = match value {
                        "" => return Err(invalid("give 'auto', 'none' or an index name".into())),
                        v if v.eq_ignore_ascii_case("auto") => IndexPolicy::Auto,
                        v if v.eq_ignore_ascii_case("none") => IndexPolicy::Never,
                        name => IndexPolicy::Only(name.to_string()),
                    }
                }
                "read_capacity" => {
                    opts.read_capacity = Some(positive_f64(value).ok_or_else(|| {
                        invalid(format!(
                            "'{value}' is not a positive number of RCU per second"
                        ))
                    })?)
                }
                "write_capacity" => {
                    opts.write_capacity = Some(positive_f64(value).ok_or_else(|| {
                        invalid(format!(
                            "'{value}' is not a positive number of WCU per second"
                        ))
                    })?)
                }
                "write_null" => {
                    opts.write_null_type = match value.to_ascii_lowercase().as_str() {
                        "absent" => false,
                        "null" => true,
                        _ => {
                            return Err(invalid(format!(
                                "'{value}' is not 'absent' (NULL is no attribute) or 'null' \
                                 (DynamoDB's NULL type)"
                            )));
                        }
                    }
                }
                "read_capacity_percent" => {
                    opts.read_capacity_percent =
                        Some(positive_f64(value).filter(|p| *p <= 100.0).ok_or_else(|| {
                            invalid(format!("'{value}' is not a percentage in (0, 100]"))
                        })?)
                }
                "max_attempts" => {
                    opts.retry.max_attempts = whole_between(value, 1, 100).map_err(invalid)?
                }
                "retry_budget" => {
                    opts.retry.budget = value
                        .parse::<u32>()
                        .map_err(|_| invalid(format!("'{value}' is not a whole number")))?
                }
                "retry_base_delay_ms" | "retry_max_delay_ms" => {
                    let ms = value
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n <= 600_000)
                        .ok_or_else(|| {
                            invalid(format!(
                                "'{value}' is not a number of milliseconds up to 600000"
                            ))
                        })?;
                    if key == "retry_base_delay_ms" {
                        opts.retry.base_delay = Duration::from_millis(ms);
                    } else {
                        opts.retry.max_delay = Duration::from_millis(ms);
                    }
                }
                "extra_attributes" => {
                    opts.extra_attributes = parse_bool(value)
                        .ok_or_else(|| invalid(format!("'{value}' is not true or false")))?
                }
                "schema_ttl" => {
                    opts.schema_ttl = parse_ttl(value).map_err(invalid)?;
                }
                "max_rcu" => {
                    opts.max_rcu = Some(positive_f64(value).ok_or_else(|| {
                        invalid(format!(
                            "'{value}' is not a positive number of read capacity units"
                        ))
                    })?)
                }
                _ => {
                    return Err(invalid(format!(
                        "unknown option; accepted: {}",
                        OPTION_KEYS.join(", ")
                    )));
                }
            }
        }
        Ok(opts)
    }
}

impl TableOptions {
    /// What these options fix about the table's columns.
    pub(crate) fn rules(&self) -> Rules {
        Rules {
            overrides: self.column_types.clone(),
            infer_time: self.infer_time,
            bad_time: self.on_bad_time,
        }
    }
}

/// A time to live in whole seconds (`0`: none).
pub(crate) fn parse_ttl(value: &str) -> std::result::Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("'{value}' is not a whole number of seconds"))
}

fn positive_f64(v: &str) -> Option<f64> {
    v.parse::<f64>().ok().filter(|x| x.is_finite() && *x > 0.0)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `name: format; name: format` (a pattern may hold colons: the name ends
/// at the first).
fn parse_time_formats(spec: &str) -> std::result::Result<Vec<(String, ColumnType)>, String> {
    column_pairs(spec, "format", |f| {
        f.parse::<TimeFormat>().map(|f| ColumnType::Time(Some(f)))
    })
}

/// `name: type; name: type`.
fn parse_column_types(spec: &str) -> std::result::Result<Vec<(String, ColumnType)>, String> {
    column_pairs(spec, "type", str::parse::<ColumnType>)
}

/// `name: value; …` pairs, each value read by `parse` (`what` it is, for
/// messages); the name ends at the first colon.
fn column_pairs(
    spec: &str,
    what: &str,
    parse: impl Fn(&str) -> std::result::Result<ColumnType, String>,
) -> std::result::Result<Vec<(String, ColumnType)>, String> {
    spec.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once(':')
                .ok_or_else(|| format!("'{pair}' is not 'name: {what}'"))?;
            let value = parse(value).map_err(|e| format!("{what} of '{}': {e}", name.trim()))?;
            Ok((name.trim().to_string(), value))
        })
        .collect()
}

/// `value` as a whole number from `low` to `high`, or why not.
fn whole_between<T>(value: &str, low: T, high: T) -> std::result::Result<T, String>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    value
        .parse::<T>()
        .ok()
        .filter(|n| (low..=high).contains(n))
        .ok_or_else(|| format!("'{value}' is not between {low} and {high}"))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, TimeUnit};

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_every_option() {
        let o = TableOptions::from_map(&map(&[
            ("format.sample_size", "50"),
            ("format.consistent_read", "TRUE"),
            ("dynamodb.page_size", "10"),
            ("segments", "4"),
            (
                "format.column_types",
                "Price: Decimal128(38, 4); raw: json;flag:boolean",
            ),
            ("format.pushdown", "false"),
            ("format.index", "byStatus"),
            ("format.read_capacity", "12.5"),
            ("format.read_capacity_percent", "40"),
            ("format.max_attempts", "4"),
            ("format.retry_budget", "9"),
            ("format.retry_base_delay_ms", "5"),
            ("format.retry_max_delay_ms", "80"),
            ("format.schema_ttl", "600"),
            ("format.extra_attributes", "true"),
            (
                "format.time_format",
                "at: epoch_millis; day: %d/%m/%Y %H:%M @ Europe/Paris",
            ),
            ("format.infer_time", "false"),
            ("format.on_bad_time", "NULL"),
            ("format.include_expired", "true"),
        ]))
        .expect("valid");
        assert!(!o.infer_time && o.include_expired);
        assert_eq!(o.on_bad_time, BadTime::Null);
        assert_eq!(o.sample_size, 50);
        assert!(o.consistent_read);
        assert_eq!((o.page_size, o.segments), (Some(10), Some(4)));
        assert!(!o.pushdown);
        assert_eq!(o.index, IndexPolicy::Only("byStatus".into()));
        assert_eq!(
            (o.read_capacity, o.read_capacity_percent),
            (Some(12.5), Some(40.0))
        );
        assert_eq!(o.schema_ttl, Duration::from_secs(600));
        assert!(o.extra_attributes);
        assert_eq!(
            o.retry,
            RetryPolicy {
                max_attempts: 4,
                budget: 9,
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(80),
            }
        );
        assert_eq!(
            o.column_types,
            vec![
                (
                    "Price".to_string(),
                    ColumnType::Arrow(DataType::Decimal128(38, 4))
                ),
                ("raw".to_string(), ColumnType::Json),
                ("flag".to_string(), ColumnType::Arrow(DataType::Boolean)),
                (
                    "at".to_string(),
                    ColumnType::Time(Some(TimeFormat::Epoch(TimeUnit::Millisecond)))
                ),
                (
                    "day".to_string(),
                    ColumnType::Time(Some(
                        "%d/%m/%Y %H:%M @ Europe/Paris".parse().expect("format")
                    ))
                ),
            ]
        );
    }

    #[test]
    fn rejects_bad_values_and_unknown_keys() {
        for (k, v) in [
            ("format.sample_size", "0"),
            ("format.consistent_read", "yes"),
            ("format.segments", "-1"),
            ("format.column_types", "price decimal"),
            ("format.column_types", "price: NotAType"),
            ("format.colour", "red"),
            ("format.pushdown", "maybe"),
            ("format.index", ""),
            ("format.read_capacity", "0"),
            ("format.read_capacity", "NaN"),
            ("format.read_capacity_percent", "150"),
            ("format.max_attempts", "0"),
            ("format.retry_budget", "-3"),
            ("format.retry_max_delay_ms", "1e9"),
            ("format.schema_ttl", "-1"),
            ("format.extra_attributes", "yes"),
            ("format.time_format", "at"),
            ("format.time_format", "at: epoch_weeks"),
            ("format.infer_time", "maybe"),
            ("format.on_bad_time", "ignore"),
            ("format.include_expired", "1"),
        ] {
            let err = TableOptions::from_map(&map(&[(k, v)])).expect_err("invalid");
            let bare = k.trim_start_matches("format.");
            assert!(
                err.to_string().contains(&format!("option '{bare}'")),
                "{err}"
            );
        }
    }
}
