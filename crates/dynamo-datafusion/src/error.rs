//! Errors of the DynamoDB table provider, converted to `DataFusionError` at one boundary.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use std::fmt;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::DataFusionError;

/// What kind of failure a DynamoDB call met, decided once from the SDK error
/// (`read::retry::error_kind`) and carried by [`crate::Error`]: retries, the provider
/// and the connector all act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The table or index does not exist.
    NotFound,
    /// DynamoDB refused the credentials or the caller's permissions.
    AccessDenied,
    /// DynamoDB throttled the call.
    Throttled,
    /// DynamoDB refused the request as invalid (`ValidationException`).
    Validation,
    /// A passing fault: 5xx, timeout, connection failure, unreadable answer.
    Transient,
    /// Anything else.
    Other,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between SQL and a DynamoDB table.
///
/// Messages name the table and attribute involved and say what to do next;
/// they never contain credentials. `Debug` shows the same message: engines
/// that report a failed task by its debug form (Ballista's executors) then
/// tell the user what to do, not a structure dump.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The table does not exist in this account and region.
    #[error("DynamoDB table '{table}' does not exist (check the table name, region and endpoint)")]
    TableNotFound {
        /// Table name as given.
        table: String,
        /// DynamoDB's own answer.
        message: String,
    },

    /// A DynamoDB API call failed.
    #[error("DynamoDB {operation} on table '{table}' failed: {}{message}", gave_up_prefix(.gave_up))]
    Request {
        /// API operation, e.g. `Scan`.
        operation: &'static str,
        /// Table name.
        table: String,
        /// What kind of failure (decided once, from the SDK error).
        kind: ErrorKind,
        /// The SDK's error with its full cause chain.
        message: String,
        /// Why retrying stopped, when the failure was retried
        /// (e.g. `3 attempts failed`).
        gave_up: Option<String>,
        /// Requests sent, the failed first one and its retries.
        attempts: u32,
    },

    /// DynamoDB kept throttling a read until the retries ran out.
    #[error(
        "DynamoDB throttled {operation} on table '{table}' beyond the retry budget ({why}; last answer: {message}). \
         Lower the read rate (table option read_capacity, or fewer segments), raise the table's read capacity, \
         or allow more retries (table options max_attempts, retry_budget)"
    )]
    Throttled {
        /// API operation, e.g. `Scan`.
        operation: &'static str,
        /// Table name.
        table: String,
        /// Which limit ran out.
        why: String,
        /// The last error DynamoDB answered with.
        message: String,
        /// Requests sent, the first one and its retries.
        attempts: u32,
    },

    /// A DynamoDB API call that is not about one table failed.
    #[error("DynamoDB {operation} failed: {message}")]
    Service {
        /// API operation, e.g. `ListTables`.
        operation: &'static str,
        /// What kind of failure (decided once, from the SDK error).
        kind: ErrorKind,
        /// The SDK's error with its full cause chain.
        message: String,
    },

    /// DescribeTable answered with something this crate cannot use.
    #[error("table '{table}' has an unsupported description: {reason}")]
    Metadata {
        /// Table name.
        table: String,
        /// What was missing or malformed.
        reason: String,
    },

    /// An item value does not fit the Arrow type its column was given
    /// explicitly (inferred columns widen instead: [`Error::SchemaWidened`]).
    #[error(
        "table '{table}', attribute '{attribute}': value {value} does not fit column type {expected} \
         (the type was set explicitly: choose one that holds this value, e.g. json, Utf8 or a wider Decimal)"
    )]
    ValueDoesNotFit {
        /// Table name.
        table: String,
        /// Attribute path, e.g. `info.tags[2]`.
        attribute: String,
        /// The value, rendered as DynamoDB JSON and shortened.
        value: String,
        /// The column's Arrow type.
        expected: DataType,
    },

    /// The table has no DynamoDB stream to read change records from.
    #[error(
        "table '{table}' has no stream: enable one (StreamSpecification, view NEW_AND_OLD_IMAGES) \
         to read its change records as \"{table}$changes\""
    )]
    NoStream {
        /// Table name.
        table: String,
    },

    /// A read of change records reached a position the stream no longer
    /// holds (DynamoDB keeps 24 hours of changes).
    #[error(
        "table '{table}': the stream no longer holds the records of shard {shard} that the read \
         needed (DynamoDB Streams keeps 24 hours of changes): read again from the oldest record"
    )]
    ChangesTrimmed {
        /// Table name.
        table: String,
        /// The shard.
        shard: String,
    },

    /// A checkpoint of a read of change records does not fit the table's
    /// stream.
    #[error("table '{table}': the change checkpoint cannot be read from: {reason}")]
    ChangesCheckpoint {
        /// Table name.
        table: String,
        /// Why.
        reason: String,
    },

    /// A value is not in the time format of its column (declared, or the
    /// one the sample showed when the column cannot widen).
    #[error(
        "table '{table}'{item}, attribute '{attribute}': value {value} is not in time format {format} \
         (declare the format the table keeps with the option time_format, or set on_bad_time = 'null' \
         to read such values as NULL)"
    )]
    BadTimeValue {
        /// Table name.
        table: String,
        /// The item's key, as ` item {"id": {"S": "a"}}`, when known.
        item: Box<str>,
        /// Attribute path.
        attribute: String,
        /// The value, rendered as DynamoDB JSON and shortened.
        value: String,
        /// The column's time format.
        format: Box<str>,
    },

    /// A read met a value its inferred column could not hold, and the column
    /// widened to a type that holds it (and every value it held before).
    /// The statement must be planned again to use the widened schema:
    /// [`crate::run_statement`] does that by itself.
    #[error(
        "table '{table}': {changes}, to hold {value} at '{attribute}', a value the schema sample had \
         not seen; run the statement again to read with the widened schema"
    )]
    SchemaWidened {
        /// Table name.
        table: String,
        /// What widened, e.g. `column 'info.rating' widened from Decimal128(38, 4) to Decimal128(38, 6)`.
        changes: String,
        /// The columns that changed.
        widenings: Vec<Widening>,
        /// Attribute path of the value that did not fit.
        attribute: String,
        /// That value, as DynamoDB JSON.
        value: String,
    },

    /// An Arrow type that DynamoDB values cannot be decoded into.
    #[error("column '{column}': Arrow type {data_type} is not supported for DynamoDB attributes")]
    UnsupportedType {
        /// Column name.
        column: String,
        /// The unsupported type.
        data_type: DataType,
    },

    /// A query's estimated read capacity is above its ceiling
    /// (`dynamodb.max_rcu` or the table option `max_rcu`): refused before
    /// any read.
    #[error(
        "query refused before reading: {reads} would take about {estimated_rcu:.1} RCU \
         (~${usd}), above the ceiling of {max_rcu} RCU. Narrow it with a condition on a key, \
         add a LIMIT, or {raise}; EXPLAIN shows each read's estimate"
    )]
    OverCeiling {
        /// The reads, e.g. `a Scan of table 'Orders' (~1000 items)`.
        reads: String,
        /// Estimated read capacity units of the whole query.
        estimated_rcu: f64,
        /// Its on-demand price in USD, as shown (`0.0000036`).
        usd: String,
        /// The ceiling.
        max_rcu: f64,
        /// How to raise it where it was set ([`ceiling_hint`]).
        raise: String,
    },

    /// A query consumed more read capacity than its ceiling while reading:
    /// stopped, and nothing it read is handed on as complete.
    #[error(
        "query stopped: its reads consumed {consumed_rcu:.1} RCU by a read of table '{table}', \
         above the ceiling of {max_rcu} RCU (estimated before reading: {estimated_rcu:.1} RCU); \
         the result is incomplete and not returned. Narrow the query, or {raise}"
    )]
    CeilingReached {
        /// The table whose read crossed the ceiling.
        table: String,
        /// Read capacity units consumed by the query's reads so far.
        consumed_rcu: f64,
        /// The ceiling.
        max_rcu: f64,
        /// What the query was estimated to consume.
        estimated_rcu: f64,
        /// How to raise it where it was set ([`ceiling_hint`]).
        raise: String,
    },

    /// The engine task a read ran for was cancelled (e.g. a cluster job
    /// cancelled with Ctrl-C): the read stopped sending requests.
    #[error(
        "the read of table '{table}' stopped: its task ({task}) was cancelled; nothing it read is \
         returned"
    )]
    Cancelled {
        /// The table read.
        table: String,
        /// The engine's name of the task.
        task: String,
    },

    /// A table option is unknown or has a bad value.
    #[error("invalid DynamoDB table option '{key}': {reason}")]
    InvalidOption {
        /// Option key.
        key: String,
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A Scan or Query answer whose items are not DynamoDB JSON.
    #[error("DynamoDB's answer for table '{table}' cannot be read: {reason}")]
    BadAnswer {
        /// Table name.
        table: String,
        /// What is wrong, and where.
        reason: String,
    },

    /// A write statement refused before it wrote anything.
    #[error("{statement} on table '{table}' refused: {reason}")]
    WriteRefused {
        /// `INSERT`, `REPLACE`, `UPDATE` or `DELETE`.
        statement: &'static str,
        /// Table name.
        table: String,
        /// Why, and what to do instead.
        reason: String,
    },

    /// A row cannot be written as an item (a NULL key, a value DynamoDB
    /// cannot hold).
    #[error("table '{table}', row {row}, column '{column}': the value {reason}")]
    BadWriteValue {
        /// Table name.
        table: String,
        /// The row's number in the statement's input, from 1.
        row: u64,
        /// The column (or nested path).
        column: String,
        /// What is wrong with the value.
        reason: String,
    },

    /// An INSERT met an item with a key it was to write.
    #[error(
        "an item with key {key} already exists in table '{table}': INSERT writes only new items \
         (REPLACE INTO overwrites, UPDATE changes attributes)"
    )]
    ItemExists {
        /// Table name.
        table: String,
        /// The key, as DynamoDB JSON.
        key: String,
    },

    /// A write statement's writes reached its write-capacity ceiling.
    #[error(
        "the next write would take the statement past its write-capacity ceiling: \
         {consumed_wcu:.1} WCU consumed or in flight on table '{table}', dynamodb.max_wcu = {max_wcu} \
         (raise it with SET dynamodb.max_wcu = …)"
    )]
    WriteCeilingReached {
        /// Table name.
        table: String,
        /// Write capacity consumed (and reserved by writes in flight).
        consumed_wcu: f64,
        /// The ceiling.
        max_wcu: f64,
    },

    /// A transaction's condition failed: nothing of it was written.
    #[error("the transaction on table '{table}' was cancelled and wrote nothing: {reason}")]
    TransactionCancelled {
        /// Table name.
        table: String,
        /// Which item, and why.
        reason: String,
    },

    /// A write statement's input (its rows, or an UPDATE's or DELETE's
    /// read) failed after writes were made.
    #[error("its input failed: {reason}")]
    WriteInputFailed {
        /// The input's error.
        reason: String,
    },

    /// A write statement stopped part-way: what was written stays written.
    #[error(
        "{statement} on table '{table}' {}: {source}{}",
        stopped_after(*.written, *.skipped),
        rerun_note(statement, *.written)
    )]
    WriteStopped {
        /// `INSERT`, `REPLACE`, `UPDATE` or `DELETE`.
        statement: &'static str,
        /// Table name.
        table: String,
        /// Items written before it stopped (writes in flight included).
        written: u64,
        /// Items left as they were because they changed since the read.
        skipped: u64,
        /// Why it stopped.
        #[source]
        source: Box<Error>,
    },

    /// Building an Arrow batch failed.
    #[error("building Arrow data for table '{table}': {source}")]
    Arrow {
        /// Table name.
        table: String,
        /// The Arrow error.
        #[source]
        source: datafusion::arrow::error::ArrowError,
    },
}

impl Error {
    /// What kind of DynamoDB failure this is; `None` for errors that are not
    /// DynamoDB's (a value that does not fit, a bad option, ...).
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::TableNotFound { .. } => Some(ErrorKind::NotFound),
            Error::Request { kind, .. } | Error::Service { kind, .. } => Some(*kind),
            Error::Throttled { .. } => Some(ErrorKind::Throttled),
            Error::WriteStopped { source, .. } => source.kind(),
            _ => None,
        }
    }

    /// The provider error inside a DataFusion error, however deeply wrapped
    /// (contexts, shared errors from other partitions, Arrow errors).
    pub fn find_in(e: &DataFusionError) -> Option<&Error> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(found) = err.downcast_ref::<Error>() {
                return Some(found);
            }
            cur = err.source();
        }
        None
    }
}

/// How to raise a read-capacity ceiling, said where it was set: the
/// session's setting (`SET dynamodb.max_rcu`), or the table's option — the
/// only one a session without `dynamodb.` settings has (datafusion-python).
pub(crate) fn ceiling_hint(set_by_table: bool) -> String {
    if set_by_table {
        "raise the table's ceiling: its option max_rcu (OPTIONS ('max_rcu' '…') in SQL, \
         DynamoTable(…, max_rcu=…) in Python)"
            .to_string()
    } else {
        "raise the ceiling: SET dynamodb.max_rcu = … (RESET dynamodb.max_rcu lifts it)".to_string()
    }
}

/// How far a stopped write statement got.
fn stopped_after(written: u64, skipped: u64) -> String {
    match (written, skipped) {
        (0, 0) => "wrote nothing".to_string(),
        (w, 0) => format!("stopped after {w} items were written"),
        (w, s) => format!(
            "stopped after {w} items were written ({s} skipped: changed since they were read)"
        ),
    }
}

/// What running a stopped write statement again does, once it wrote something.
fn rerun_note(statement: &str, written: u64) -> &'static str {
    if written == 0 {
        return "";
    }
    match statement {
        "INSERT" => {
            " (the items written stay written; run again, the INSERT stops at the first key it \
             already wrote: REPLACE INTO writes the rest)"
        }
        "REPLACE" => {
            " (the items written stay written; running it again writes them again, and the rest)"
        }
        "UPDATE" => {
            " (the items written stay written; running it again sets the items that still match again)"
        }
        _ => " (the items deleted stay deleted; running it again deletes the rest)",
    }
}

/// `gave up, 3 attempts failed: ` before a retried failure's message.
fn gave_up_prefix(why: &Option<String>) -> String {
    why.as_ref()
        .map(|w| format!("gave up, {w}: "))
        .unwrap_or_default()
}

/// One column (or nested field) whose type changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Widening {
    /// Column path, e.g. `info.rating` (`[]` marks list members).
    pub column: String,
    /// The type before.
    pub from: DataType,
    /// The type after: it holds every value `from` held, and the new one.
    pub to: DataType,
    /// True when `to` is `Utf8` holding each value's lossless JSON text.
    pub to_json: bool,
}

impl fmt::Display for Widening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "column '{}' widened from {} to {}",
            self.column,
            type_name(&self.from),
            if self.to_json {
                "JSON text".to_string()
            } else {
                type_name(&self.to)
            }
        )
    }
}

/// A type as a widening names it: a struct by its field names.
fn type_name(t: &DataType) -> String {
    match t {
        DataType::Struct(fields) => {
            let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
            format!("Struct({})", names.join(", "))
        }
        other => other.to_string(),
    }
}

impl From<Error> for DataFusionError {
    fn from(e: Error) -> Self {
        DataFusionError::External(Box::new(e))
    }
}

/// Renders an SDK error for a person: DynamoDB's `code: message` for a service
/// error, the cause chain for anything else (connection failures, unreadable
/// answers), without the raw response dump of the SDK's `Debug`.
///
/// Answers are not credentials: nothing secret reaches the message.
pub fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let Some(service) = err.as_service_error() {
        if let Some(code) = service.code() {
            return match service.message() {
                Some(m) if !m.is_empty() => format!("{code}: {m}"),
                _ => code.to_string(),
            };
        }
        let status = err
            .raw_response()
            .map(|r| r.status().as_u16().to_string())
            .unwrap_or_else(|| "?".into());
        return format!(
            "unreadable answer (HTTP {status}): {}",
            error_chain(service)
        );
    }
    error_chain(err)
}

/// `Display` of an error and each of its sources, joined by `: `, skipping a
/// source whose text is already included.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = c.source();
    }
    out
}
