//! The `dynamo.connector` entry point of an analytics platform, made real and
//! safe for many tenants.
//!
//! The seed's "How It Works", one layer each, each with its own error code:
//! 1. **Authentication** — [`SessionAuthenticator`]: a session token → client id (`unauthenticated`).
//! 2. **Table availability** — [`ServiceDirectory`]: is DynamoDB configured for the client (`service_not_configured`)?
//! 3. **Credential retrieval** — [`CredentialStore`]: the client's encrypted credentials (`credentials_not_found`),
//!    [`CredentialCipher`]: decrypted (`credentials_unreadable`).
//! 4. **Integration and data fetching** — [`TenantResolver`] builds (and caches) the SDK client;
//!    [`Connector`] validates the request (`invalid_request`) and runs a scan, a query or SQL
//!    (`table_not_found`, `access_denied`, `throttled`, `dynamodb_error`).
//! 5. **Error handling** — [`ConnectorError`]: `{"error": {"code", "message"}}`, never a secret.
//!
//! [`SqliteStore`] is the embedded default for steps 1–3 (AES-256-GCM under a
//! [`MasterKey`]); [`ChainResolver`] serves single-tenant use from the AWS chain.

mod attempts;
mod bounded;
mod connector;
mod crypto;
mod dynamo_json;
mod error;
pub mod flight;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
mod ingest;
mod metrics;
mod planned;
mod read;
mod request;
mod secret;
mod sessions;
mod store;
mod tenant;
mod usage;

pub use attempts::AuthAttempts;
pub use connector::{Connector, SQL_TABLE, SqlSession};
pub use crypto::{Sealed, open as open_sealed, seal};
pub use dynamo_json::{from_dynamo_json, item_from_json, item_to_json, to_dynamo_json};
pub use error::{ConnectorError, ErrorCode, Result};
pub use metrics::{METRICS_CONTENT_TYPE, Metrics};
pub use request::{
    CONFIG_FIELDS, ConnectorRequest, INPUT_FIELDS, Inputs, Limits, ReadOperation, ReadRequest,
    parse_request,
};
pub use secret::{MASTER_KEY_ENV, MasterKey, Secret};
pub use sessions::DEFAULT_SESSION_TTL;
pub use store::{MIN_PASSWORD_CHARS, SessionInfo, SqliteStore};
pub use tenant::{
    ChainResolver, ClientResolver, CredentialCipher, CredentialStore, Credentials,
    DYNAMODB_SERVICE, DynamoService, MasterKeyCipher, MirrorConfig, MirrorStore, PasswordLogin,
    ResolvedClient, SchemaStore, ServiceDirectory, Session, SessionAuthenticator, TenantResolver,
    WriteAccess, build_client, next_generation,
};
pub use usage::{
    Clock, SystemClock, TableUsage, UsageFilter, UsageFormat, UsageRecorder, UsageRow, UsageStore,
    format_usage, utc_day, utc_time,
};
