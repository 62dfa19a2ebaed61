//! Connector errors: one stable code per step of the seed's "How It Works".

use serde_json::json;

/// Result type of this crate.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// Stable error codes, as they appear in `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Any other DynamoDB failure.
    DynamodbError,
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
            ErrorCode::DynamodbError => "dynamodb_error",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status the service answers with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::AccessDenied => 403,
            ErrorCode::ServiceNotConfigured
            | ErrorCode::CredentialsNotFound
            | ErrorCode::TableNotFound => 404,
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Throttled => 429,
            ErrorCode::DynamodbError => 502,
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
}

impl ConnectorError {
    /// An error of `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
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
