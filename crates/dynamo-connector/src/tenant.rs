//! The session and secret layer: session → client id → DynamoDB service →
//! encrypted credentials → decrypted credentials → SDK client. Each step is a
//! small pluggable trait with its own error code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::Credentials as SdkCredentials;
use aws_sdk_dynamodb::Client;
use dynamo_datafusion::schema::SchemaCache;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::crypto::{Sealed, open};
use crate::error::{ConnectorError, ErrorCode, Result};
use crate::secret::{MasterKey, Secret};

/// The service name credentials are stored under.
pub const DYNAMODB_SERVICE: &str = "dynamodb";

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The tenant.
    pub client_id: String,
    /// The user who logged in, if known.
    pub user: Option<String>,
}

/// A client's DynamoDB service configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoService {
    /// AWS region.
    pub region: String,
    /// Endpoint override (e.g. a local server).
    pub endpoint_url: Option<String>,
    /// Role to assume with the stored credentials.
    pub role_arn: Option<String>,
}

/// Decrypted AWS credentials. `Debug` prints no secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    #[serde(deserialize_with = "secret")]
    pub secret_access_key: Secret,
    /// Session token of temporary credentials.
    #[serde(default, deserialize_with = "optional_secret")]
    pub session_token: Option<Secret>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

fn optional_secret<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Secret>, D::Error> {
    Option::<String>::deserialize(d).map(|o| o.map(Secret::new))
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &"[REDACTED]")
            .field("secret_access_key", &self.secret_access_key)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl Credentials {
    /// Parses `{"accessKeyId", "secretAccessKey", "sessionToken"?}`.
    pub fn from_json(text: &[u8]) -> Result<Self> {
        serde_json::from_slice(text).map_err(|e| {
            // Only field names may be echoed: serde's other messages can quote values.
            let m = e.to_string();
            let detail = if m.starts_with("unknown field") || m.starts_with("missing field") {
                m.split(" at line").next().unwrap_or("malformed JSON").to_string()
            } else {
                "malformed JSON or a value that is not a string".to_string()
            };
            ConnectorError::invalid(format!(
                "credentials must be {{\"accessKeyId\", \"secretAccessKey\", \"sessionToken\"?}}: {detail}"
            ))
        })
    }

    /// The JSON that is encrypted at rest.
    pub(crate) fn to_json(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut v = serde_json::json!({
            "accessKeyId": self.access_key_id,
            "secretAccessKey": self.secret_access_key.expose(),
        });
        if let Some(t) = &self.session_token {
            v["sessionToken"] = serde_json::Value::String(t.expose().to_string());
        }
        zeroize::Zeroizing::new(v.to_string().into_bytes())
    }
}

/// Step 1: a session token → the session, or `unauthenticated`.
#[async_trait]
pub trait SessionAuthenticator: Send + Sync {
    /// Authenticates a session token.
    async fn authenticate(&self, token: &str) -> Result<Session>;
}

/// A user name and password → a new session token (of the user's client),
/// or `unauthenticated`: for clients that log in with a password (BI tools
/// over Flight SQL send HTTP Basic authentication).
#[async_trait]
pub trait PasswordLogin: Send + Sync {
    /// Checks `password` against the user's stored hash and issues a
    /// session of `ttl_seconds`. The refusal never says whether the user
    /// exists.
    async fn log_in(&self, user: &str, password: &Secret, ttl_seconds: i64) -> Result<Secret>;
}

/// Step 2: is a DynamoDB service configured for the client?
#[async_trait]
pub trait ServiceDirectory: Send + Sync {
    /// The client's DynamoDB service, or `None`.
    async fn dynamodb_service(&self, client_id: &str) -> Result<Option<DynamoService>>;
}

/// Step 3: the client's encrypted credentials for a service.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// The sealed credentials, or `None`.
    async fn encrypted_credentials(&self, client_id: &str, service: &str)
    -> Result<Option<Sealed>>;
}

/// Step 4: decryption.
pub trait CredentialCipher: Send + Sync {
    /// Decrypts sealed credentials, or fails with `credentials_unreadable`.
    fn decrypt(&self, client_id: &str, service: &str, sealed: &Sealed) -> Result<Credentials>;
}

/// AES-256-GCM with a master key (see [`crate::crypto`]).
#[derive(Debug, Clone)]
pub struct MasterKeyCipher(pub MasterKey);

impl CredentialCipher for MasterKeyCipher {
    fn decrypt(&self, client_id: &str, service: &str, sealed: &Sealed) -> Result<Credentials> {
        let plain = open(&self.0, client_id, service, sealed)?;
        Credentials::from_json(&plain).map_err(|_| {
            ConnectorError::new(
                ErrorCode::CredentialsUnreadable,
                format!("stored credentials of client '{client_id}' decrypt to something that is not credentials"),
            )
        })
    }
}

/// A DynamoDB client resolved for a caller.
#[derive(Debug, Clone)]
pub struct ResolvedClient {
    /// The tenant.
    pub client_id: String,
    /// The user, if known.
    pub user: Option<String>,
    /// The SDK client with the tenant's credentials.
    pub client: Client,
    /// Which build of the client this is: resolutions of one client id that
    /// answer the same `Some(generation)` hand out the same client (same
    /// service, same credentials), so what was built over one — the
    /// connector's SQL session, its tables described — may serve the
    /// other. A new generation whenever the client is rebuilt; `None` (a
    /// resolver that cannot tell) reuses nothing.
    pub generation: Option<u64>,
}

/// A number no client built in this process had before (see
/// [`ResolvedClient::generation`]): for a custom [`ClientResolver`] to
/// stamp each client it builds.
///
/// ```
/// let (a, b) = (dynamo_connector::next_generation(), dynamo_connector::next_generation());
/// assert_ne!(a, b);
/// ```
pub fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Turns a caller's session token into a DynamoDB client.
#[async_trait]
pub trait ClientResolver: Send + Sync {
    /// Resolves `token` (`None` when the caller sent none).
    async fn resolve(&self, token: Option<&str>) -> Result<ResolvedClient>;
}

/// A table a client's `sql` reads from its mirror (a Delta Lake copy kept
/// up to date from the table's stream; see `dynamo_mirror`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The DynamoDB table.
    pub table: String,
    /// The mirror's location (made by `dynamo-sql mirror create`).
    pub path: String,
    /// The most the mirror may be behind the table to answer, in ms.
    pub max_staleness_ms: u64,
    /// Past that: `sync` (catch up from the stream first), `live` (read
    /// DynamoDB) or `error` (`mirror_unavailable`).
    pub on_stale: String,
}

/// Which of a client's tables answer from mirrors.
pub trait MirrorStore: Send + Sync {
    /// The mirrors `client_id`'s `sql` requests read.
    fn mirrors(&self, client_id: &str) -> Result<Vec<MirrorConfig>>;
}

/// Which clients may write: INSERT, REPLACE, UPDATE and DELETE through
/// `sql` and Flight SQL. A client is read-only unless its store says
/// otherwise.
pub trait WriteAccess: Send + Sync {
    /// True when `client_id` may write.
    fn may_write(&self, client_id: &str) -> Result<bool>;
}

/// Where each client's inferred table schemas are kept between requests,
/// so an `sql` request reads no items to sample a table it read before.
pub trait SchemaStore: Send + Sync {
    /// The schema cache of `client_id` (entries of one client are never
    /// seen by another).
    fn schema_cache(&self, client_id: &str) -> Arc<dyn SchemaCache>;
}

struct CachedClient {
    fingerprint: [u8; 32],
    client: Client,
    generation: u64,
    created: Instant,
}

/// The multi-tenant resolver: runs the four steps, then builds (or reuses) the
/// client. Clients are cached per tenant for `ttl` and rebuilt as soon as the
/// stored credentials or service configuration change.
pub struct TenantResolver {
    auth: Arc<dyn SessionAuthenticator>,
    services: Arc<dyn ServiceDirectory>,
    store: Arc<dyn CredentialStore>,
    cipher: Arc<dyn CredentialCipher>,
    ttl: Duration,
    cache: Mutex<HashMap<String, CachedClient>>,
}

impl TenantResolver {
    /// A resolver from the four steps; clients are cached for 15 minutes.
    pub fn new(
        auth: Arc<dyn SessionAuthenticator>,
        services: Arc<dyn ServiceDirectory>,
        store: Arc<dyn CredentialStore>,
        cipher: Arc<dyn CredentialCipher>,
    ) -> Self {
        Self {
            auth,
            services,
            store,
            cipher,
            ttl: Duration::from_secs(15 * 60),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how long a built client is reused.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
}

fn fingerprint(service: &DynamoService, sealed: &Sealed) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [
        service.region.as_str(),
        service.endpoint_url.as_deref().unwrap_or(""),
        service.role_arn.as_deref().unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(sealed.nonce);
    h.update(&sealed.ciphertext);
    h.finalize().into()
}

#[async_trait]
impl ClientResolver for TenantResolver {
    async fn resolve(&self, token: Option<&str>) -> Result<ResolvedClient> {
        let token = token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            ConnectorError::new(
                ErrorCode::Unauthenticated,
                "no session: send the header `Authorization: Bearer <session token>` with the request",
            )
        })?;
        let session = self.auth.authenticate(token).await?;
        let service = self
            .services
            .dynamodb_service(&session.client_id)
            .await?
            .ok_or_else(|| {
                ConnectorError::new(
                    ErrorCode::ServiceNotConfigured,
                    format!(
                        "no DynamoDB service is configured for client '{}'",
                        session.client_id
                    ),
                )
            })?;
        let sealed = self
            .store
            .encrypted_credentials(&session.client_id, DYNAMODB_SERVICE)
            .await?
            .ok_or_else(|| {
                ConnectorError::new(
                    ErrorCode::CredentialsNotFound,
                    format!(
                        "no DynamoDB credentials are stored for client '{}'",
                        session.client_id
                    ),
                )
            })?;
        let print = fingerprint(&service, &sealed);
        {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cache.get(&session.client_id)
                && c.fingerprint == print
                && c.created.elapsed() < self.ttl
            {
                log::debug!(
                    "client '{}': reusing cached DynamoDB client",
                    session.client_id
                );
                return Ok(ResolvedClient {
                    client_id: session.client_id,
                    user: session.user,
                    client: c.client.clone(),
                    generation: Some(c.generation),
                });
            }
        }
        let credentials = self
            .cipher
            .decrypt(&session.client_id, DYNAMODB_SERVICE, &sealed)?;
        let client = build_client(&service, credentials).await;
        log::info!(
            "client '{}': built DynamoDB client for region {}{}",
            session.client_id,
            service.region,
            service
                .endpoint_url
                .as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        );
        let generation = next_generation();
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(
            session.client_id.clone(),
            CachedClient {
                fingerprint: print,
                client: client.clone(),
                generation,
                created: Instant::now(),
            },
        );
        Ok(ResolvedClient {
            client_id: session.client_id,
            user: session.user,
            client,
            generation: Some(generation),
        })
    }
}

/// Builds an SDK client from a service configuration and credentials, assuming
/// the service's role when it names one.
pub async fn build_client(service: &DynamoService, credentials: Credentials) -> Client {
    let static_credentials = SdkCredentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_string(),
        credentials
            .session_token
            .as_ref()
            .map(|t| t.expose().to_string()),
        None,
        "dynamo-connector-store",
    );
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(service.region.clone()))
        .credentials_provider(static_credentials);
    if let Some(url) = &service.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let config = match &service.role_arn {
        Some(role) => {
            let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("dynamo-connector")
                .configure(&base)
                .build()
                .await;
            base.into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(assumed),
                )
                .build()
        }
        None => base,
    };
    Client::new(&config)
}

/// Single-tenant resolver from the standard AWS credential chain: every caller
/// gets the same client (the REPL, a trusted service).
#[derive(Debug, Clone)]
pub struct ChainResolver {
    client: Client,
    generation: u64,
}

impl ChainResolver {
    /// Uses `client` for everyone.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            generation: next_generation(),
        }
    }
}

#[async_trait]
impl ClientResolver for ChainResolver {
    async fn resolve(&self, _token: Option<&str>) -> Result<ResolvedClient> {
        Ok(ResolvedClient {
            client_id: "default".into(),
            user: None,
            client: self.client.clone(),
            generation: Some(self.generation),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse_and_never_print() {
        let c = Credentials::from_json(
            br#"{"accessKeyId":"AKIAEXAMPLE","secretAccessKey":"s3cr3t","sessionToken":"tok"}"#,
        )
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("tok\"") && !shown.contains("AKIAEXAMPLE"),
            "{shown}"
        );
        let err = Credentials::from_json(br#"{"accessKeyId":"a","secret":"s3cr3t"}"#)
            .expect_err("bad field");
        assert!(!err.message.contains("s3cr3t"), "{err}");
        assert_eq!(Credentials::from_json(&c.to_json()).expect("round trip"), c);
    }
}
