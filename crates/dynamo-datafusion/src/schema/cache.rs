//! Inferred schemas kept between runs, so a one-shot query does not pay for a
//! new sample every time.
//!
//! An entry is what inference observed (and every widening since), keyed by
//! where the table lives and which table it is:
//!
//! - the endpoint (or `aws` for the default one) and the region;
//! - the account, from the table's ARN; where the ARN has no real account
//!   (a local server answers `000000000000` for every caller, and keeps one
//!   database per access key) a fingerprint of the access key id instead —
//!   a SHA-256 digest, never the key;
//! - the table name and its creation time from DescribeTable, so a table
//!   deleted and created again under the same name never reuses the old
//!   table's schema.
//!
//! Entries expire after a time to live (table option `schema_ttl`, default
//! [`DEFAULT_SCHEMA_TTL`]). Where entries live is pluggable ([`SchemaCache`]):
//! [`FileSchemaCache`] keeps one JSON file per table in a directory
//! (`dynamo-sql` uses the user's cache directory); the connector keeps them
//! per client in its store.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use datafusion::arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Widening;
use crate::key_stats::KeyStats;
use crate::metadata::TableMeta;
use crate::schema::infer::Observed;
use crate::schema::{SchemaHistory, SchemaOrigin};

/// How long a cached schema is used before the table is sampled again.
pub const DEFAULT_SCHEMA_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Format of an entry; entries of another version are ignored (2: with
/// the sample's key statistics; 3: with the time shape of strings).
const ENTRY_VERSION: u32 = 3;

/// Where cached schemas are kept: opaque text entries under an id.
///
/// Implementations must be safe to call from several queries at once. A
/// failure to load or store never fails a query: the table is sampled again
/// (and a warning logged).
pub trait SchemaCache: Debug + Send + Sync {
    /// The entry stored under `id`, if any.
    fn load(&self, id: &str) -> Result<Option<String>, String>;
    /// Stores `entry` under `id`, replacing what was there.
    fn store(&self, id: &str, entry: &str) -> Result<(), String>;
}

/// Which table a cached schema belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaKey {
    /// The endpoint URL, or `aws` for the SDK's default endpoint.
    pub endpoint: String,
    /// The region.
    pub region: String,
    /// `account:<id>`, or `key:<fingerprint of the access key id>`.
    pub identity: String,
    /// Table name.
    pub table: String,
    /// Creation time from DescribeTable, in milliseconds since the epoch.
    pub created_millis: Option<i64>,
}

impl SchemaKey {
    /// The key of `meta`'s table as read through a client configured with
    /// `endpoint` and `region`, signing with `access_key_id`.
    pub(crate) fn new(
        endpoint: Option<&str>,
        region: Option<&str>,
        access_key_id: Option<&str>,
        meta: &TableMeta,
    ) -> Self {
        let account = meta
            .arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .filter(|a| *a != "000000000000");
        let identity = match (account, access_key_id) {
            (Some(account), _) => format!("account:{account}"),
            (None, Some(key)) => format!("key:{}", fingerprint(key)),
            (None, None) => "unknown".to_string(),
        };
        Self {
            endpoint: endpoint.unwrap_or("aws").to_string(),
            region: region.unwrap_or_default().to_string(),
            identity,
            table: meta.name.clone(),
            created_millis: meta.created_millis,
        }
    }

    /// The id entries are stored under: a digest of the whole key.
    pub fn id(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        hex(&Sha256::digest(text.as_bytes()))[..32].to_string()
    }
}

/// A short, one-way fingerprint of an access key id.
fn fingerprint(access_key_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"dynamo-connector schema cache\0");
    h.update(access_key_id.as_bytes());
    hex(&h.finalize())[..16].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One widening as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredWidening {
    at: u64,
    column: String,
    from: String,
    to: String,
    to_json: bool,
}

/// A cached schema: the observations it is built from, and its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    version: u32,
    key: SchemaKey,
    pub observed: BTreeMap<String, Observed>,
    sampled_items: usize,
    sampled_at: u64,
    saved_at: u64,
    widened: Vec<StoredWidening>,
    /// The sample's key statistics (cost estimates), when it had them.
    #[serde(default)]
    pub keys: Option<KeyStats>,
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

impl Entry {
    pub(crate) fn new(
        key: &SchemaKey,
        observed: BTreeMap<String, Observed>,
        history: &SchemaHistory,
        keys: Option<&KeyStats>,
    ) -> Self {
        let (sampled_items, sampled_at) = match history.origin {
            SchemaOrigin::Sampled { items, at } => (items, secs(at)),
            SchemaOrigin::Given => (0, 0),
        };
        Self {
            version: ENTRY_VERSION,
            key: key.clone(),
            observed,
            sampled_items,
            sampled_at,
            saved_at: secs(SystemTime::now()),
            widened: history
                .widened
                .iter()
                .map(|(at, w)| StoredWidening {
                    at: secs(*at),
                    column: w.column.clone(),
                    from: w.from.to_string(),
                    to: w.to.to_string(),
                    to_json: w.to_json,
                })
                .collect(),
            keys: keys.cloned(),
        }
    }

    /// The entry in `text` when it is for `key`, of this version, and younger than `ttl`.
    pub(crate) fn parse(text: &str, key: &SchemaKey, ttl: Duration) -> Option<Self> {
        let entry: Entry = serde_json::from_str(text).ok()?;
        let fresh = SystemTime::now()
            .duration_since(time(entry.saved_at))
            .is_ok_and(|age| age < ttl);
        (entry.version == ENTRY_VERSION && entry.key == *key && fresh).then_some(entry)
    }

    /// Where the schema came from and how it widened.
    pub(crate) fn history(&self) -> SchemaHistory {
        SchemaHistory {
            origin: SchemaOrigin::Sampled {
                items: self.sampled_items,
                at: time(self.sampled_at),
            },
            cached: Some(time(self.saved_at)),
            widened: self
                .widened
                .iter()
                .filter_map(|w| {
                    Some((
                        time(w.at),
                        Widening {
                            column: w.column.clone(),
                            from: DataType::from_str(&w.from).ok()?,
                            to: DataType::from_str(&w.to).ok()?,
                            to_json: w.to_json,
                        },
                    ))
                })
                .collect(),
        }
    }

    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A [`SchemaCache`] of one JSON file per table in a directory.
///
/// ```
/// use dynamo_datafusion::schema::FileSchemaCache;
///
/// let dir = std::env::temp_dir().join("dynamo-schemas-doc");
/// let cache = FileSchemaCache::new(&dir);
/// assert_eq!(cache.dir(), dir.as_path());
/// ```
#[derive(Debug, Clone)]
pub struct FileSchemaCache {
    dir: PathBuf,
}

impl FileSchemaCache {
    /// Entries in `dir` (created when the first entry is stored).
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
        }
    }

    /// `<user cache directory>/<app>/schemas`: `$XDG_CACHE_HOME`, else
    /// `$HOME/.cache`; `None` when neither is set.
    pub fn in_user_cache(app: &str) -> Option<Self> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(Self::new(base.join(app).join("schemas")))
    }

    /// The directory entries live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }
}

impl SchemaCache for FileSchemaCache {
    fn load(&self, id: &str) -> Result<Option<String>, String> {
        match std::fs::read_to_string(self.path(id)) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("reading {}: {e}", self.path(id).display())),
        }
    }

    fn store(&self, id: &str, entry: &str) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        // Write aside, then rename: a reader never sees half an entry.
        let tmp = self.dir.join(format!(".{id}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, entry).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, self.path(id))
            .map_err(|e| format!("writing {}: {e}", self.path(id).display()))
    }
}

/// Where an entry goes: the cache and the table's key.
#[derive(Debug, Clone)]
pub(crate) struct CacheSlot {
    pub cache: Arc<dyn SchemaCache>,
    pub key: SchemaKey,
}

impl CacheSlot {
    /// The fresh entry of this table, if any (failures are logged, not raised).
    pub(crate) fn load(&self, ttl: Duration) -> Option<Entry> {
        match self.cache.load(&self.key.id()) {
            Ok(Some(text)) => Entry::parse(&text, &self.key, ttl),
            Ok(None) => None,
            Err(e) => {
                log::warn!(
                    "schema cache of table '{}' unreadable, sampling again: {e}",
                    self.key.table
                );
                None
            }
        }
    }

    pub(crate) fn store(&self, entry: &Entry) {
        if let Err(e) = self.cache.store(&self.key.id(), &entry.to_text()) {
            log::warn!("schema of table '{}' not cached: {e}", self.key.table);
        }
    }
}

/// Notes where a request went (scheme, host and port) and the access key id
/// it was signed with (from its `Authorization` header), for [`SchemaKey`].
#[derive(Debug, Clone, Default)]
pub(crate) struct SigningKey {
    slot: Arc<Mutex<(Option<String>, Option<String>)>>,
}

impl SigningKey {
    /// The access key id.
    pub(crate) fn get(&self) -> Option<String> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone()
    }

    /// `scheme://host[:port]` of the endpoint.
    pub(crate) fn endpoint(&self) -> Option<String> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }
}

impl Intercept for SigningKey {
    fn name(&self) -> &'static str {
        "SigningKey"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let key = request
            .headers()
            .get("authorization")
            .and_then(|auth| auth.split("Credential=").nth(1))
            .and_then(|cred| cred.split('/').next())
            .map(str::to_string);
        let uri = request.uri();
        let endpoint = uri
            .split_once("://")
            .map(|(scheme, rest)| format!("{scheme}://{}", rest.split('/').next().unwrap_or(rest)));
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = (endpoint, key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::infer::observe_items;
    use aws_sdk_dynamodb::types::AttributeValue as AV;
    use std::collections::HashMap;

    fn meta(arn: Option<&str>, created: i64) -> TableMeta {
        TableMeta {
            arn: arn.map(str::to_string),
            created_millis: Some(created),
            ttl_attribute: None,
            stream_arn: None,
            stream_view_type: None,
            ..TableMeta::hash_only("Movies", "id")
        }
    }

    #[test]
    fn keys_name_the_account_or_a_fingerprint_never_the_access_key() {
        let real = SchemaKey::new(
            None,
            Some("eu-west-1"),
            Some("AKIASECRETLOOKING"),
            &meta(
                Some("arn:aws:dynamodb:eu-west-1:123456789012:table/Movies"),
                1,
            ),
        );
        assert_eq!(real.identity, "account:123456789012");
        let local = SchemaKey::new(
            Some("http://127.0.0.1:8000"),
            Some("us-east-1"),
            Some("AKIASECRETLOOKING"),
            &meta(
                Some("arn:aws:dynamodb:ddblocal:000000000000:table/Movies"),
                1,
            ),
        );
        assert!(local.identity.starts_with("key:"), "{local:?}");
        let text = serde_json::to_string(&local).expect("json");
        assert!(!text.contains("AKIASECRETLOOKING"), "{text}");
        let other_key = SchemaKey::new(
            Some("http://127.0.0.1:8000"),
            Some("us-east-1"),
            Some("AKIAOTHER"),
            &meta(
                Some("arn:aws:dynamodb:ddblocal:000000000000:table/Movies"),
                1,
            ),
        );
        assert_ne!(local.id(), other_key.id());
        // The same name, created again: another table.
        let recreated = SchemaKey::new(
            Some("http://127.0.0.1:8000"),
            Some("us-east-1"),
            Some("AKIASECRETLOOKING"),
            &meta(
                Some("arn:aws:dynamodb:ddblocal:000000000000:table/Movies"),
                2,
            ),
        );
        assert_ne!(local.id(), recreated.id());
    }

    #[test]
    fn entries_round_trip_and_expire() {
        let key = SchemaKey::new(None, Some("r"), Some("k"), &meta(None, 5));
        let items = vec![HashMap::from([
            ("id".to_string(), AV::S("a".into())),
            ("n".to_string(), AV::N("1.5".into())),
        ])];
        let history = SchemaHistory {
            origin: SchemaOrigin::Sampled {
                items: 1,
                at: SystemTime::now(),
            },
            cached: None,
            widened: vec![(
                SystemTime::now(),
                Widening {
                    column: "n".into(),
                    from: DataType::Int64,
                    to: DataType::Decimal128(38, 4),
                    to_json: false,
                },
            )],
        };
        let entry = Entry::new(&key, observe_items(&items), &history, None);
        let text = entry.to_text();
        let back = Entry::parse(&text, &key, DEFAULT_SCHEMA_TTL).expect("fresh");
        assert_eq!(back.observed, observe_items(&items));
        let h = back.history();
        assert!(h.cached.is_some());
        assert_eq!(h.widened.len(), 1);
        assert_eq!(h.widened[0].1.to, DataType::Decimal128(38, 4));
        assert!(
            Entry::parse(&text, &key, Duration::ZERO).is_none(),
            "expired"
        );
        let other = SchemaKey::new(None, Some("r"), Some("k"), &meta(None, 6));
        assert!(Entry::parse(&text, &other, DEFAULT_SCHEMA_TTL).is_none());
        assert!(Entry::parse("{not json", &key, DEFAULT_SCHEMA_TTL).is_none());
    }

    #[test]
    fn files_store_and_load() {
        let dir = std::env::temp_dir().join(format!("dynamo-schema-cache-{}", std::process::id()));
        let cache = FileSchemaCache::new(&dir);
        assert_eq!(cache.load("abc").expect("no error"), None);
        cache.store("abc", "{\"x\":1}").expect("stores");
        assert_eq!(
            cache.load("abc").expect("loads").as_deref(),
            Some("{\"x\":1}")
        );
        cache.store("abc", "{\"x\":2}").expect("replaces");
        assert_eq!(
            cache.load("abc").expect("loads").as_deref(),
            Some("{\"x\":2}")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
