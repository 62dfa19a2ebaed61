//! Connector errors: one stable code per step of the seed's "How It Works".

use datafusion::error::DataFusionError;
use dynamo_datafusion::ErrorKind;
use serde_json::json;

/// Result type of this crate.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// Stable error codes, as they appear in `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Missing, unknown or expired session.
    Unauthenticated,
    /// The client has no DynamoDB service configured.
    ServiceNotConfigured,
    /// The service has no stored credentials.
    CredentialsNotFound,
    /// Stored credentials could not be decrypted (wrong key or tampered).
    CredentialsUnreadable,
    /// The request is malformed.
    InvalidRequest,
    /// The table does not exist for this client.
    TableNotFound,
    /// DynamoDB refused the client's credentials or permissions.
    AccessDenied,
    /// DynamoDB throttled the read beyond the retry budget.
    Throttled,
    /// The statement's reads are estimated (or were counted) above its
    /// `config.maxCapacity`.
    CapacityExceeded,
    /// The client has used up its daily read-capacity quota.
    QuotaExceeded,
    /// Any other DynamoDB failure.
    DynamodbError,
    /// A table configured to answer from its mirror could not: the mirror
    /// is missing, behind its stream's retention, or older than its bound
    /// with `on_stale = 'error'`.
    MirrorUnavailable,
    /// The client may not write (INSERT, REPLACE, UPDATE, DELETE): it is
    /// read-only unless an administrator allows it.
    WriteNotAllowed,
    /// Too many failed authentications from the caller's address within
    /// the window (`serve --auth-failures`): refused without checking the
    /// token until the window ends.
    TooManyAttempts,
    /// A fault of the connector or its store.
    Internal,
}

impl ErrorCode {
    /// The code's text.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::ServiceNotConfigured => "service_not_configured",
            ErrorCode::CredentialsNotFound => "credentials_not_found",
            ErrorCode::CredentialsUnreadable => "credentials_unreadable",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::TableNotFound => "table_not_found",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::Throttled => "throttled",
            ErrorCode::CapacityExceeded => "capacity_exceeded",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::DynamodbError => "dynamodb_error",
            ErrorCode::MirrorUnavailable => "mirror_unavailable",
            ErrorCode::WriteNotAllowed => "write_not_allowed",
            ErrorCode::TooManyAttempts => "too_many_attempts",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the service answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::AccessDenied | ErrorCode::WriteNotAllowed => 403,
            ErrorCode::ServiceNotConfigured
            | ErrorCode::CredentialsNotFound
            | ErrorCode::TableNotFound => 404,
            ErrorCode::InvalidRequest | ErrorCode::CapacityExceeded => 400,
            ErrorCode::Throttled | ErrorCode::QuotaExceeded | ErrorCode::TooManyAttempts => 429,
            ErrorCode::DynamodbError => 502,
            ErrorCode::MirrorUnavailable => 503,
            ErrorCode::CredentialsUnreadable | ErrorCode::Internal => 500,
        }
    }
}

/// An error with its code and a message safe to show the caller: messages
/// never contain credentials, tokens or keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ConnectorError {
    /// Stable code.
    pub code: ErrorCode,
    /// What went wrong and what to do.
    pub message: String,
    /// Seconds after which trying again may succeed (a quota's reset),
    /// sent as HTTP `Retry-After`.
    pub retry_after_secs: Option<u64>,
}

impl ConnectorError {
    /// An error of `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// This error, saying the caller may try again after `secs` seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// `invalid_request`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }

    /// `{"error": {"code", "message"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        json!({"error": {"code": self.code.as_str(), "message": self.message}})
    }
}

impl From<rusqlite::Error> for ConnectorError {
    fn from(e: rusqlite::Error) -> Self {
        // SQLite messages name tables and constraints, never stored values.
        ConnectorError::internal(format!("credential store: {e}"))
    }
}

/// The connector's code for a kind of DynamoDB failure: one vocabulary for
/// `scan`, `query` and `sql`.
fn code_of(kind: ErrorKind) -> ErrorCode {
    match kind {
        ErrorKind::NotFound => ErrorCode::TableNotFound,
        ErrorKind::AccessDenied => ErrorCode::AccessDenied,
        ErrorKind::Throttled => ErrorCode::Throttled,
        ErrorKind::Validation => ErrorCode::InvalidRequest,
        // Transient, Other, and kinds a later provider may add.
        _ => ErrorCode::DynamodbError,
    }
}

/// A failed raw read (`scan`, `query`) as the connector answers it:
/// DynamoDB's own words, the operation and table, and the attempts made
/// when the retries ran out.
pub(crate) fn read_error(e: dynamo_datafusion::Error) -> ConnectorError {
    use dynamo_datafusion::Error as E;
    match &e {
        E::TableNotFound { table, message } => ConnectorError::new(
            ErrorCode::TableNotFound,
            format!("table '{table}' does not exist for this client ({message})"),
        ),
        E::Throttled {
            operation,
            table,
            message,
            attempts,
            ..
        } => ConnectorError::new(
            ErrorCode::Throttled,
            format!(
                "DynamoDB throttled {operation} on '{table}' beyond the retry budget ({message}); retry later, \
                 lower config.maxItems, or raise the table's capacity (gave up after {attempts} attempts)"
            ),
        ),
        E::Request {
            operation,
            table,
            kind,
            message,
            gave_up,
            attempts,
        } => {
            let tail = match gave_up {
                Some(_) => format!(" (gave up after {attempts} attempts)"),
                None => String::new(),
            };
            ConnectorError::new(
                code_of(*kind),
                format!("DynamoDB {operation} on '{table}' failed: {message}{tail}"),
            )
        }
        _ => provider_error(&e),
    }
}

/// A provider error as the connector answers it: its code from the kind of
/// DynamoDB failure, its message the provider's own.
pub(crate) fn provider_error(e: &dynamo_datafusion::Error) -> ConnectorError {
    match e {
        dynamo_datafusion::Error::InvalidOption { .. } => ConnectorError::invalid(e.to_string()),
        dynamo_datafusion::Error::OverCeiling {
            reads,
            estimated_rcu,
            usd,
            max_rcu,
            ..
        } => ConnectorError::new(
            ErrorCode::CapacityExceeded,
            format!(
                "statement refused before reading: {reads} would take about {estimated_rcu:.1} RCU \
                 (~${usd}), above config.maxCapacity = {max_rcu}; narrow it with a condition on \
                 a key, add a LIMIT, or raise config.maxCapacity"
            ),
        ),
        dynamo_datafusion::Error::CeilingReached {
            table,
            consumed_rcu,
            max_rcu,
            estimated_rcu,
            ..
        } => ConnectorError::new(
            ErrorCode::CapacityExceeded,
            format!(
                "statement stopped: its reads consumed {consumed_rcu:.1} RCU (reading table \
                 '{table}'), above config.maxCapacity = {max_rcu} (estimated before reading: \
                 {estimated_rcu:.1}); no partial result is returned. Raise config.maxCapacity or \
                 narrow the statement"
            ),
        ),
        _ => ConnectorError::new(
            e.kind().map_or(ErrorCode::DynamodbError, code_of),
            e.to_string(),
        ),
    }
}

/// A provider error met while serving a read of `table` (DescribeTable).
pub(crate) fn table_error(table: &str, e: dynamo_datafusion::Error) -> ConnectorError {
    match e.kind() {
        Some(ErrorKind::NotFound) => ConnectorError::new(
            ErrorCode::TableNotFound,
            format!("table '{table}' does not exist for this client ({e})"),
        ),
        _ => provider_error(&e),
    }
}

pub(crate) fn sql_error(e: DataFusionError) -> ConnectorError {
    // The provider's own message, without DataFusion's wrapping.
    if let Some(found) = dynamo_datafusion::Error::find_in(&e) {
        return provider_error(found);
    }
    let text = e.to_string();
    match e.find_root() {
        DataFusionError::External(inner) => {
            match inner.downcast_ref::<dynamo_mirror::MirrorError>() {
                Some(dynamo_mirror::MirrorError::Dynamo(found)) => provider_error(found),
                Some(mirror) => {
                    ConnectorError::new(ErrorCode::MirrorUnavailable, mirror.to_string())
                }
                None => ConnectorError::new(ErrorCode::Internal, text),
            }
        }
        DataFusionError::Plan(m) if m.contains("not found") && m.contains("table") => {
            ConnectorError::new(ErrorCode::TableNotFound, text)
        }
        DataFusionError::Plan(_)
        | DataFusionError::SQL(..)
        | DataFusionError::SchemaError(..)
        | DataFusionError::NotImplemented(_) => ConnectorError::invalid(text),
        _ => ConnectorError::new(ErrorCode::Internal, text),
    }
}
