//! The default store: one SQLite file holding clients, sessions (only a hash of
//! each token, with an expiry), DynamoDB services, and credentials encrypted
//! with AES-256-GCM under a master key.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::crypto::{NONCE_LEN, Sealed, open, seal};
use crate::error::{ConnectorError, ErrorCode, Result};
use crate::secret::{MasterKey, Secret};
use crate::tenant::{
    CredentialStore, Credentials, DYNAMODB_SERVICE, DynamoService, MirrorConfig, MirrorStore,
    PasswordLogin, SchemaStore, ServiceDirectory, Session, SessionAuthenticator,
};
use crate::usage::{UsageFilter, UsageRow, UsageStore};
use dynamo_datafusion::schema::SchemaCache;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user TEXT,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    user TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS services (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    region TEXT NOT NULL,
    endpoint_url TEXT,
    role_arn TEXT,
    PRIMARY KEY (client_id, service)
);
CREATE TABLE IF NOT EXISTS schemas (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    id TEXT NOT NULL,
    entry TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, id)
);
CREATE TABLE IF NOT EXISTS usage (
    client_id TEXT NOT NULL,
    day TEXT NOT NULL,
    table_name TEXT NOT NULL,
    requests INTEGER NOT NULL,
    items_read INTEGER NOT NULL,
    items_returned INTEGER NOT NULL,
    rcu REAL NOT NULL,
    items_written INTEGER NOT NULL DEFAULT 0,
    wcu REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, day, table_name)
);
CREATE TABLE IF NOT EXISTS usage_errors (
    client_id TEXT NOT NULL,
    day TEXT NOT NULL,
    table_name TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (client_id, day, table_name, code)
);
CREATE TABLE IF NOT EXISTS mirrors (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    table_name TEXT NOT NULL,
    path TEXT NOT NULL,
    max_staleness_ms INTEGER NOT NULL,
    on_stale TEXT NOT NULL,
    PRIMARY KEY (client_id, table_name)
);
CREATE TABLE IF NOT EXISTS write_access (
    client_id TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS quotas (
    client_id TEXT PRIMARY KEY REFERENCES clients(id) ON DELETE CASCADE,
    daily_rcu REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, service)
);
";

/// Prefix of every session token.
pub const TOKEN_PREFIX: &str = "dcs_";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// Fewest characters a user's password has.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// A hash no password matches (of random bytes, made once), verified when
/// a user is unknown so that an unknown user takes as long to refuse as a
/// wrong password.
fn no_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        let unguessable: [u8; 32] = rand::random();
        argon2::Argon2::default()
            .hash_password(&unguessable, &SaltString::generate(&mut OsRng))
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// An issued session as the store knows it: no token, only who it is for
/// and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The token's SHA-256 hash in hexadecimal: names the session without
    /// revealing the token.
    pub id: String,
    /// The client it authenticates as.
    pub client_id: String,
    /// The user it was issued to, if named.
    pub user: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: i64,
    /// Not yet expired.
    pub live: bool,
}

/// A token hash as a session id.
fn session_id(hash: &[u8]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    text.len()
        .is_multiple_of(2)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
                .collect()
        })
        .flatten()
}

/// The SQLite store. Implements the session, service and credential steps.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqliteStore")
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| {
            ConnectorError::internal(format!("cannot open store {}: {e}", path.display()))
        })?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL;")?;
        conn.execute_batch(SCHEMA)?;
        // Stores made before writes were counted gain their columns.
        for (column, decl) in [
            ("items_written", "INTEGER NOT NULL DEFAULT 0"),
            ("wcu", "REAL NOT NULL DEFAULT 0"),
        ] {
            let has: bool = conn
                .prepare("SELECT 1 FROM pragma_table_info('usage') WHERE name = ?1")?
                .exists(params![column])?;
            if !has {
                conn.execute_batch(&format!("ALTER TABLE usage ADD COLUMN {column} {decl}"))?;
            }
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn require_client(conn: &Connection, client_id: &str) -> Result<()> {
        let exists: Option<i64> = conn
            .query_row(
                "SELECT 1 FROM clients WHERE id = ?1",
                params![client_id],
                |r| r.get(0),
            )
            .optional()?;
        exists.map(|_| ()).ok_or_else(|| {
            ConnectorError::invalid(format!(
                "unknown client '{client_id}': add it with `dynamo-connector admin client add {client_id}`"
            ))
        })
    }

    /// Adds a client (no-op if it exists).
    pub fn add_client(&self, client_id: &str) -> Result<()> {
        if client_id.trim().is_empty() {
            return Err(ConnectorError::invalid("client id must not be empty"));
        }
        self.conn().execute(
            "INSERT OR IGNORE INTO clients (id, created_at) VALUES (?1, ?2)",
            params![client_id, now()],
        )?;
        Ok(())
    }

    /// Configures the client's DynamoDB service.
    pub fn set_service(&self, client_id: &str, service: &DynamoService) -> Result<()> {
        if let Some(url) = &service.endpoint_url {
            dynamo_datafusion::parse_endpoint_url(url).map_err(ConnectorError::invalid)?;
        }
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        conn.execute(
            "INSERT INTO services (client_id, service, region, endpoint_url, role_arn) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (client_id, service) DO UPDATE SET region = ?3, endpoint_url = ?4, role_arn = ?5",
            params![client_id, DYNAMODB_SERVICE, service.region, service.endpoint_url, service.role_arn],
        )?;
        Ok(())
    }

    /// Encrypts and stores the client's DynamoDB credentials.
    pub fn set_credentials(
        &self,
        key: &MasterKey,
        client_id: &str,
        credentials: &Credentials,
    ) -> Result<()> {
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        let sealed = seal(key, client_id, DYNAMODB_SERVICE, &credentials.to_json())?;
        conn.execute(
            "INSERT INTO credentials (client_id, service, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (client_id, service) DO UPDATE SET nonce = ?3, ciphertext = ?4, updated_at = ?5",
            params![client_id, DYNAMODB_SERVICE, sealed.nonce.to_vec(), sealed.ciphertext, now()],
        )?;
        Ok(())
    }

    /// Issues a session token for the client, valid `ttl_seconds`. Only its hash is stored.
    pub fn issue_session(
        &self,
        client_id: &str,
        user: Option<&str>,
        ttl_seconds: i64,
    ) -> Result<Secret> {
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        // A fixed prefix: the token never starts with '-' (it is a command-line
        // argument) and secret scanners can recognise it.
        let token = format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        );
        conn.execute(
            "INSERT INTO sessions (token_hash, client_id, user, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash(&token), client_id, user, now().saturating_add(ttl_seconds)],
        )?;
        Ok(Secret::new(token))
    }

    /// Re-encrypts every stored credential from `old` to `new`, atomically.
    /// Returns how many were re-encrypted.
    pub fn rotate_key(&self, old: &MasterKey, new: &MasterKey) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = {
            let mut stmt =
                tx.prepare("SELECT client_id, service, nonce, ciphertext FROM credentials")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (client, service, nonce, ciphertext) in &rows {
            let sealed = sealed_from(nonce.clone(), ciphertext.clone())?;
            let plain = open(old, client, service, &sealed)?;
            let resealed = seal(new, client, service, &plain)?;
            tx.execute(
                "UPDATE credentials SET nonce = ?1, ciphertext = ?2, updated_at = ?3 WHERE client_id = ?4 AND service = ?5",
                params![resealed.nonce.to_vec(), resealed.ciphertext, now(), client, service],
            )?;
        }
        tx.commit()?;
        Ok(rows.len())
    }

    /// The sessions issued, newest expiry first (of one client when
    /// given): each named by the start of its token's hash, never by the
    /// token, which is not stored.
    pub fn sessions(&self, client_id: Option<&str>) -> Result<Vec<SessionInfo>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT token_hash, client_id, user, expires_at FROM sessions \
             WHERE ?1 IS NULL OR client_id = ?1 ORDER BY expires_at DESC, client_id",
        )?;
        let now = now();
        let rows = stmt.query_map(params![client_id], |r| {
            let hash: Vec<u8> = r.get(0)?;
            let expires_at: i64 = r.get(3)?;
            Ok(SessionInfo {
                id: session_id(&hash),
                client_id: r.get(1)?,
                user: r.get(2)?,
                expires_at,
                live: expires_at > now,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes the session whose id (as [`Self::sessions`] lists it) starts
    /// with `id_prefix` — at least 8 characters, naming exactly one
    /// session. Returns the session revoked.
    pub fn revoke_session(&self, id_prefix: &str) -> Result<SessionInfo> {
        let prefix = id_prefix.trim().to_ascii_lowercase();
        if prefix.len() < 8 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ConnectorError::invalid(format!(
                "'{id_prefix}' is not a session id: give at least 8 hexadecimal characters of \
                 an id that `admin session list` shows"
            )));
        }
        let matching: Vec<SessionInfo> = self
            .sessions(None)?
            .into_iter()
            .filter(|s| s.id.starts_with(&prefix))
            .collect();
        let session = match <[SessionInfo; 1]>::try_from(matching) {
            Ok([one]) => one,
            Err(many) if many.is_empty() => {
                return Err(ConnectorError::invalid(format!(
                    "no session's id starts with '{prefix}' (`admin session list` shows them)"
                )));
            }
            Err(many) => {
                return Err(ConnectorError::invalid(format!(
                    "{} sessions' ids start with '{prefix}': give more of the id",
                    many.len()
                )));
            }
        };
        let hash = hex_decode(&session.id)
            .ok_or_else(|| ConnectorError::internal("a listed session id is not hexadecimal"))?;
        self.conn()
            .execute("DELETE FROM sessions WHERE token_hash = ?1", params![hash])?;
        Ok(session)
    }

    /// Revokes every session of `client_id`; returns how many.
    pub fn revoke_client_sessions(&self, client_id: &str) -> Result<usize> {
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        Ok(conn.execute(
            "DELETE FROM sessions WHERE client_id = ?1",
            params![client_id],
        )?)
    }

    /// Sets the password of `user` (created for `client_id` if new; a user
    /// belongs to one client): stored as an Argon2id hash, never the
    /// password. At least [`MIN_PASSWORD_CHARS`] characters.
    pub fn set_user_password(&self, client_id: &str, user: &str, password: &Secret) -> Result<()> {
        use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
        if user.trim().is_empty() || user.contains(':') {
            return Err(ConnectorError::invalid(format!(
                "'{user}' is not a user name: not empty, and no ':' (HTTP Basic authentication \
                 separates the name from the password with it)"
            )));
        }
        if password.expose().chars().count() < MIN_PASSWORD_CHARS {
            return Err(ConnectorError::invalid(format!(
                "a password has at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = argon2::Argon2::default()
            .hash_password(password.expose().as_bytes(), &salt)
            .map_err(|e| ConnectorError::internal(format!("hashing a password: {e}")))?
            .to_string();
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        let owner: Option<String> = conn
            .query_row(
                "SELECT client_id FROM users WHERE user = ?1",
                params![user],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(other) = owner.filter(|o| o != client_id) {
            return Err(ConnectorError::invalid(format!(
                "user '{user}' belongs to client '{other}': a user name names one client"
            )));
        }
        conn.execute(
            "INSERT INTO users (user, client_id, password_hash, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user) DO UPDATE SET password_hash = ?3, updated_at = ?4",
            params![user, client_id, hash, now()],
        )?;
        Ok(())
    }

    /// Removes `user`'s password (its sessions stay until they expire or
    /// are revoked); false when there was none.
    pub fn remove_user(&self, user: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM users WHERE user = ?1", params![user])?
            > 0)
    }

    /// Removes expired sessions; returns how many.
    pub fn purge_expired_sessions(&self) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            params![now()],
        )?)
    }
}

fn sealed_from(nonce: Vec<u8>, ciphertext: Vec<u8>) -> Result<Sealed> {
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| {
        ConnectorError::new(
            ErrorCode::CredentialsUnreadable,
            "stored credentials are damaged (bad nonce length)",
        )
    })?;
    Ok(Sealed { nonce, ciphertext })
}

impl UsageStore for SqliteStore {
    fn add_usage(&self, rows: &[UsageRow]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for r in rows {
            tx.execute(
                "INSERT INTO usage (client_id, day, table_name, requests, items_read, items_returned, rcu,
                   items_written, wcu)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (client_id, day, table_name) DO UPDATE SET
                   requests = requests + ?4, items_read = items_read + ?5,
                   items_returned = items_returned + ?6, rcu = rcu + ?7,
                   items_written = items_written + ?8, wcu = wcu + ?9",
                params![
                    r.client_id,
                    r.day,
                    r.table,
                    r.requests as i64,
                    r.items_read as i64,
                    r.items_returned as i64,
                    r.rcu,
                    r.items_written as i64,
                    r.wcu
                ],
            )?;
            for (code, n) in &r.errors {
                tx.execute(
                    "INSERT INTO usage_errors (client_id, day, table_name, code, count)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (client_id, day, table_name, code) DO UPDATE SET count = count + ?5",
                    params![r.client_id, r.day, r.table, code, *n as i64],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn usage(&self, filter: &UsageFilter) -> Result<Vec<UsageRow>> {
        let conn = self.conn();
        let mut rows: Vec<UsageRow> = {
            let mut stmt = conn.prepare(
                "SELECT client_id, day, table_name, requests, items_read, items_returned, rcu,
                   items_written, wcu FROM usage
                 WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR day >= ?2) AND (?3 IS NULL OR day <= ?3)
                 ORDER BY client_id, day, table_name",
            )?;
            let mapped =
                stmt.query_map(params![filter.client_id, filter.since, filter.until], |r| {
                    Ok(UsageRow {
                        client_id: r.get(0)?,
                        day: r.get(1)?,
                        table: r.get(2)?,
                        requests: r.get::<_, i64>(3)?.max(0) as u64,
                        items_read: r.get::<_, i64>(4)?.max(0) as u64,
                        items_returned: r.get::<_, i64>(5)?.max(0) as u64,
                        rcu: r.get(6)?,
                        items_written: r.get::<_, i64>(7)?.max(0) as u64,
                        wcu: r.get(8)?,
                        errors: Default::default(),
                    })
                })?;
            mapped.collect::<rusqlite::Result<_>>()?
        };
        let mut stmt = conn.prepare(
            "SELECT client_id, day, table_name, code, count FROM usage_errors
             WHERE (?1 IS NULL OR client_id = ?1) AND (?2 IS NULL OR day >= ?2) AND (?3 IS NULL OR day <= ?3)",
        )?;
        let errors =
            stmt.query_map(params![filter.client_id, filter.since, filter.until], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
        for e in errors {
            let (client_id, day, table, code, count) = e?;
            if let Some(row) = rows
                .iter_mut()
                .find(|r| r.client_id == client_id && r.day == day && r.table == table)
            {
                row.errors.insert(code, count.max(0) as u64);
            }
        }
        Ok(rows)
    }

    fn day_rcu(&self, client_id: &str, day: &str) -> Result<f64> {
        let total: Option<f64> = self.conn().query_row(
            "SELECT SUM(rcu) FROM usage WHERE client_id = ?1 AND day = ?2",
            params![client_id, day],
            |r| r.get(0),
        )?;
        Ok(total.unwrap_or(0.0))
    }

    fn daily_quota(&self, client_id: &str) -> Result<Option<f64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT daily_rcu FROM quotas WHERE client_id = ?1",
                params![client_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn set_daily_quota(&self, client_id: &str, rcu: Option<f64>) -> Result<()> {
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        match rcu {
            Some(rcu) => conn.execute(
                "INSERT INTO quotas (client_id, daily_rcu) VALUES (?1, ?2)
                 ON CONFLICT (client_id) DO UPDATE SET daily_rcu = ?2",
                params![client_id, rcu],
            )?,
            None => conn.execute(
                "DELETE FROM quotas WHERE client_id = ?1",
                params![client_id],
            )?,
        };
        Ok(())
    }
}

impl SqliteStore {
    /// Makes the client's `sql` read `mirror.table` from its mirror.
    pub fn set_mirror(&self, client_id: &str, mirror: &MirrorConfig) -> Result<()> {
        if mirror.table.is_empty() || mirror.path.is_empty() {
            return Err(ConnectorError::invalid("a mirror needs a table and a path"));
        }
        if !["sync", "live", "error"].contains(&mirror.on_stale.as_str()) {
            return Err(ConnectorError::invalid(format!(
                "on_stale '{}': expected sync, live or error",
                mirror.on_stale
            )));
        }
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        conn.execute(
            "INSERT INTO mirrors (client_id, table_name, path, max_staleness_ms, on_stale) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (client_id, table_name) DO UPDATE SET path = ?3, max_staleness_ms = ?4, on_stale = ?5",
            params![client_id, mirror.table, mirror.path, mirror.max_staleness_ms as i64, mirror.on_stale],
        )?;
        Ok(())
    }

    /// The client's `sql` reads `table` live again; false when it had no mirror.
    pub fn remove_mirror(&self, client_id: &str, table: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM mirrors WHERE client_id = ?1 AND table_name = ?2",
            params![client_id, table],
        )?;
        Ok(n > 0)
    }
}

impl SqliteStore {
    /// Lets `client_id` write (`true`) or makes it read-only (`false`, the default).
    pub fn set_write_access(&self, client_id: &str, may_write: bool) -> Result<()> {
        let conn = self.conn();
        Self::require_client(&conn, client_id)?;
        if may_write {
            conn.execute(
                "INSERT OR IGNORE INTO write_access (client_id) VALUES (?1)",
                params![client_id],
            )?;
        } else {
            conn.execute(
                "DELETE FROM write_access WHERE client_id = ?1",
                params![client_id],
            )?;
        }
        Ok(())
    }
}

impl crate::tenant::WriteAccess for SqliteStore {
    fn may_write(&self, client_id: &str) -> Result<bool> {
        let conn = self.conn();
        Ok(conn
            .prepare("SELECT 1 FROM write_access WHERE client_id = ?1")?
            .exists(params![client_id])?)
    }
}

impl MirrorStore for SqliteStore {
    fn mirrors(&self, client_id: &str) -> Result<Vec<MirrorConfig>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT table_name, path, max_staleness_ms, on_stale FROM mirrors WHERE client_id = ?1 ORDER BY table_name",
        )?;
        let rows = statement.query_map(params![client_id], |row| {
            Ok(MirrorConfig {
                table: row.get(0)?,
                path: row.get(1)?,
                max_staleness_ms: row.get::<_, i64>(2)?.max(0) as u64,
                on_stale: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

impl SchemaStore for SqliteStore {
    fn schema_cache(&self, client_id: &str) -> Arc<dyn SchemaCache> {
        Arc::new(ClientSchemas {
            conn: Arc::clone(&self.conn),
            client_id: client_id.to_string(),
        })
    }
}

/// One client's cached table schemas, in the store's `schemas` table.
struct ClientSchemas {
    conn: Arc<Mutex<Connection>>,
    client_id: String,
}

impl std::fmt::Debug for ClientSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientSchemas({})", self.client_id)
    }
}

impl SchemaCache for ClientSchemas {
    fn load(&self, id: &str) -> std::result::Result<Option<String>, String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.query_row(
            "SELECT entry FROM schemas WHERE client_id = ?1 AND id = ?2",
            params![self.client_id, id],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())
    }

    fn store(&self, id: &str, entry: &str) -> std::result::Result<(), String> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.execute(
            "INSERT INTO schemas (client_id, id, entry, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (client_id, id) DO UPDATE SET entry = excluded.entry, updated_at = excluded.updated_at",
            params![self.client_id, id, entry, now()],
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl SessionAuthenticator for SqliteStore {
    async fn authenticate(&self, token: &str) -> Result<Session> {
        let row: Option<(String, Option<String>, i64)> = self
            .conn()
            .query_row(
                "SELECT client_id, user, expires_at FROM sessions WHERE token_hash = ?1",
                params![token_hash(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            None => Err(ConnectorError::new(
                ErrorCode::Unauthenticated,
                "unknown session: log in again",
            )),
            Some((_, _, expires)) if expires <= now() => Err(ConnectorError::new(
                ErrorCode::Unauthenticated,
                "session expired: log in again",
            )),
            Some((client_id, user, _)) => Ok(Session { client_id, user }),
        }
    }
}

#[async_trait]
impl PasswordLogin for SqliteStore {
    async fn log_in(&self, user: &str, password: &Secret, ttl_seconds: i64) -> Result<Secret> {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT client_id, password_hash FROM users WHERE user = ?1",
                params![user],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (client, hash) = match &row {
            Some((client, hash)) => (Some(client.as_str()), hash.as_str()),
            None => (None, no_user_hash()),
        };
        let password = password.expose().to_string();
        let hash = hash.to_string();
        // Argon2 takes tens of milliseconds of CPU: off the async workers.
        let matches = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                argon2::Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .map_err(|e| ConnectorError::internal(format!("checking a password: {e}")))?;
        match client {
            Some(client) if matches => self.issue_session(client, Some(user), ttl_seconds),
            _ => Err(ConnectorError::new(
                ErrorCode::Unauthenticated,
                "unknown user or wrong password",
            )),
        }
    }
}

#[async_trait]
impl ServiceDirectory for SqliteStore {
    async fn dynamodb_service(&self, client_id: &str) -> Result<Option<DynamoService>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT region, endpoint_url, role_arn FROM services WHERE client_id = ?1 AND service = ?2",
                params![client_id, DYNAMODB_SERVICE],
                |r| Ok(DynamoService { region: r.get(0)?, endpoint_url: r.get(1)?, role_arn: r.get(2)? }),
            )
            .optional()?)
    }
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn encrypted_credentials(
        &self,
        client_id: &str,
        service: &str,
    ) -> Result<Option<Sealed>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .conn()
            .query_row(
                "SELECT nonce, ciphertext FROM credentials WHERE client_id = ?1 AND service = ?2",
                params![client_id, service],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        row.map(|(n, c)| sealed_from(n, c)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{CredentialCipher, MasterKeyCipher};
    use crate::usage::{UsageFilter, UsageRow, UsageStore};

    fn creds() -> Credentials {
        Credentials::from_json(br#"{"accessKeyId":"AK","secretAccessKey":"SK"}"#).expect("valid")
    }

    #[tokio::test]
    async fn users_log_in_with_a_password_stored_only_as_a_hash() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqliteStore::open(&dir.path().join("s.db")).expect("open");
        for c in ["acme", "globex"] {
            store.add_client(c).expect("add");
        }
        let password = Secret::new("correct horse battery");
        assert!(
            store
                .set_user_password("acme", "ann", &Secret::new("short"))
                .is_err()
        );
        assert!(store.set_user_password("acme", "a:b", &password).is_err());
        store
            .set_user_password("acme", "ann", &password)
            .expect("set");
        let stored: String = store
            .conn()
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .expect("row");
        assert!(
            stored.starts_with("$argon2id$") && !stored.contains("horse"),
            "{stored}"
        );
        let e = store
            .set_user_password("globex", "ann", &password)
            .expect_err("one client per user");
        assert!(
            e.message.contains("belongs to client 'acme'"),
            "{}",
            e.message
        );
        let token = store.log_in("ann", &password, 60).await.expect("log in");
        let session = store.authenticate(token.expose()).await.expect("session");
        assert_eq!(
            (session.client_id.as_str(), session.user.as_deref()),
            ("acme", Some("ann"))
        );
        for (user, pw) in [
            ("ann", "wrong password!"),
            ("nobody", "correct horse battery"),
        ] {
            let e = store
                .log_in(user, &Secret::new(pw), 60)
                .await
                .expect_err("refused");
            assert_eq!(e.code, ErrorCode::Unauthenticated);
            assert_eq!(e.message, "unknown user or wrong password");
        }
        assert!(store.remove_user("ann").expect("remove"));
        assert!(store.log_in("ann", &password, 60).await.is_err());
    }

    #[tokio::test]
    async fn sessions_are_listed_without_their_tokens_and_revoked() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqliteStore::open(&dir.path().join("s.db")).expect("open");
        for c in ["acme", "globex"] {
            store.add_client(c).expect("add");
        }
        let ann = store
            .issue_session("acme", Some("ann"), 600)
            .expect("issue");
        let bob = store.issue_session("acme", Some("bob"), 60).expect("issue");
        let old = store.issue_session("acme", None, -5).expect("issue");
        let globex = store.issue_session("globex", None, 600).expect("issue");
        let listed = store.sessions(Some("acme")).expect("list");
        assert_eq!(listed.len(), 3);
        assert_eq!(
            listed
                .iter()
                .map(|s| (s.user.as_deref(), s.live))
                .collect::<Vec<_>>(),
            vec![(Some("ann"), true), (Some("bob"), true), (None, false)]
        );
        for s in &listed {
            assert_eq!(s.id.len(), 64);
            for token in [&ann, &bob, &old] {
                assert!(!token.expose().contains(&s.id) && !s.id.contains(token.expose()));
            }
        }
        assert_eq!(store.sessions(None).expect("all").len(), 4);
        // Revoked by the start of its id: bob's token no longer works.
        let e = store.revoke_session("abc").expect_err("too short");
        assert!(
            e.message.contains("at least 8 hexadecimal"),
            "{}",
            e.message
        );
        let revoked = store.revoke_session(&listed[1].id[..12]).expect("revoke");
        assert_eq!(revoked.user.as_deref(), Some("bob"));
        assert!(store.authenticate(bob.expose()).await.is_err());
        assert!(store.authenticate(ann.expose()).await.is_ok());
        let e = store.revoke_session(&listed[1].id[..12]).expect_err("gone");
        assert!(
            e.message.contains("no session's id starts with"),
            "{}",
            e.message
        );
        // All of a client's sessions; the other client's stay.
        assert_eq!(store.revoke_client_sessions("acme").expect("revoke"), 2);
        assert!(store.authenticate(ann.expose()).await.is_err());
        assert!(store.authenticate(globex.expose()).await.is_ok());
        assert!(store.revoke_client_sessions("nobody").is_err());
    }

    #[tokio::test]
    async fn sessions_services_credentials_and_rotation() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SqliteStore::open(&dir.path().join("s.db")).expect("open");
        store.add_client("acme").expect("add");
        assert!(
            store.issue_session("nobody", None, 60).is_err(),
            "unknown client"
        );
        let token = store.issue_session("acme", Some("ann"), 60).expect("issue");
        let session = store
            .authenticate(token.expose())
            .await
            .expect("valid session");
        assert_eq!(
            session,
            Session {
                client_id: "acme".into(),
                user: Some("ann".into())
            }
        );
        let expired = store.issue_session("acme", None, -1).expect("issue");
        let err = store
            .authenticate(expired.expose())
            .await
            .expect_err("expired");
        assert_eq!(err.code, ErrorCode::Unauthenticated);
        assert_eq!(store.purge_expired_sessions().expect("purge"), 1);
        assert!(store.authenticate("forged").await.is_err());

        assert_eq!(store.dynamodb_service("acme").await.expect("query"), None);
        let svc = DynamoService {
            region: "eu-west-1".into(),
            endpoint_url: None,
            role_arn: None,
        };
        store.set_service("acme", &svc).expect("set");
        assert_eq!(
            store.dynamodb_service("acme").await.expect("query"),
            Some(svc)
        );

        let (k1, k2) = (MasterKey::generate(), MasterKey::generate());
        store.set_credentials(&k1, "acme", &creds()).expect("set");
        let sealed = store
            .encrypted_credentials("acme", DYNAMODB_SERVICE)
            .await
            .expect("q")
            .expect("stored");
        assert!(
            !sealed.ciphertext.windows(2).any(|w| w == b"SK"),
            "encrypted at rest"
        );
        assert_eq!(
            MasterKeyCipher(k1.clone())
                .decrypt("acme", DYNAMODB_SERVICE, &sealed)
                .expect("k1"),
            creds()
        );
        assert_eq!(store.rotate_key(&k1, &k2).expect("rotate"), 1);
        let sealed = store
            .encrypted_credentials("acme", DYNAMODB_SERVICE)
            .await
            .expect("q")
            .expect("stored");
        assert_eq!(
            MasterKeyCipher(k2)
                .decrypt("acme", DYNAMODB_SERVICE, &sealed)
                .expect("k2"),
            creds()
        );
        let err = MasterKeyCipher(k1)
            .decrypt("acme", DYNAMODB_SERVICE, &sealed)
            .expect_err("old key");
        assert_eq!(err.code, ErrorCode::CredentialsUnreadable);
    }

    #[test]
    fn usage_adds_up_per_client_day_and_table_and_quotas_are_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.db");
        let store = SqliteStore::open(&path).expect("open");
        store.add_client("acme").expect("client");
        let row = |day: &str, table: &str, rcu: f64, error: Option<&str>| UsageRow {
            client_id: "acme".into(),
            day: day.into(),
            table: table.into(),
            requests: 1,
            items_read: 10,
            items_returned: 4,
            rcu,
            items_written: 2,
            wcu: 2.0,
            errors: error
                .map(|e| std::collections::BTreeMap::from([(e.to_string(), 1)]))
                .unwrap_or_default(),
        };
        store
            .add_usage(&[
                row("2026-11-30", "A", 1.5, None),
                row("2026-11-30", "B", 0.5, None),
            ])
            .expect("add");
        store
            .add_usage(&[
                row("2026-11-30", "A", 2.0, Some("throttled")),
                row("2026-12-01", "A", 4.0, None),
            ])
            .expect("add");
        assert_eq!(store.day_rcu("acme", "2026-11-30").expect("sum"), 4.0);
        assert_eq!(store.day_rcu("globex", "2026-11-30").expect("sum"), 0.0);
        let all = store.usage(&UsageFilter::default()).expect("usage");
        assert_eq!(all.len(), 3);
        assert_eq!(
            (
                all[0].table.as_str(),
                all[0].requests,
                all[0].items_read,
                all[0].rcu
            ),
            ("A", 2, 20, 3.5)
        );
        assert_eq!(all[0].errors["throttled"], 1);
        let later = store
            .usage(&UsageFilter {
                client_id: Some("acme".into()),
                since: Some("2026-12-01".into()),
                until: None,
            })
            .expect("usage");
        assert_eq!(later.len(), 1);
        assert_eq!(store.daily_quota("acme").expect("quota"), None);
        store.set_daily_quota("acme", Some(100.0)).expect("set");
        assert!(
            store.set_daily_quota("nobody", Some(1.0)).is_err(),
            "unknown client"
        );
        drop(store);
        // Both survive a reopen.
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.daily_quota("acme").expect("quota"), Some(100.0));
        assert_eq!(store.day_rcu("acme", "2026-12-01").expect("sum"), 4.0);
        store.set_daily_quota("acme", None).expect("clear");
        assert_eq!(store.daily_quota("acme").expect("quota"), None);
    }
}
