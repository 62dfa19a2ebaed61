//! Each client's SQL session, kept between requests: its tables are listed
//! and described once, not on every `sql` request or Flight SQL call.
//!
//! A kept session belongs to a client id *and* a client generation
//! ([`ResolvedClient::generation`]): new credentials or a new service
//! configuration build a new SDK client, and with it a new session. A kept
//! session is also built again
//! - when the client's mirrors change (they are tables of the session);
//! - after its time to live (`serve --session-ttl-secs`, 60 s by default),
//!   so tables created, deleted or altered (indexes, TTL) are seen within it;
//! - after any statement of the client fails: a table deleted or recreated
//!   under a kept description fails one statement, and the next describes it
//!   again.
//!
//! Each request gets its own [`SessionContext`] over the kept state (its own
//! settings: the request's capacity ceiling); the tables, their
//! descriptions and inferred schemas are shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use datafusion::execution::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::schema::SchemaCache;
use dynamo_datafusion::session::dynamo_session_with_cache;
use dynamo_datafusion::{DynamoConfig, TableOptions};

use crate::bounded::make_room;
use crate::error::{ConnectorError, ErrorCode, Result, sql_error};
use crate::tenant::{MirrorConfig, ResolvedClient};

/// How long a client's SQL session is kept by default.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(60);

/// The most clients whose sessions are kept at once; past it expired
/// sessions go, then the oldest.
pub(crate) const MAX_KEPT_SESSIONS: usize = 1_024;

struct Kept {
    generation: u64,
    mirrors: Vec<MirrorConfig>,
    state: SessionState,
    built: Instant,
}

/// The kept sessions, by client id.
pub(crate) struct SessionPool {
    ttl: Duration,
    kept: Mutex<HashMap<String, Kept>>,
}

impl SessionPool {
    /// Keeps sessions for `ttl` (zero: builds one per request).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            kept: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session over `resolved`'s tables — kept, or built (with `cache`'s
    /// schemas and `mirrors`' tables) and kept — whose statements may use
    /// at most `max_rcu` read (and write) capacity units when set.
    pub(crate) async fn session(
        &self,
        resolved: &ResolvedClient,
        cache: Option<Arc<dyn SchemaCache>>,
        mirrors: &[MirrorConfig],
        max_rcu: Option<f64>,
    ) -> Result<SessionContext> {
        let generation = resolved.generation.filter(|_| !self.ttl.is_zero());
        if let Some(generation) = generation {
            let kept = self.lock().get(&resolved.client_id).and_then(|k| {
                (k.generation == generation && k.mirrors == mirrors && k.built.elapsed() < self.ttl)
                    .then(|| k.state.clone())
            });
            if let Some(state) = kept {
                return Ok(with_ceiling(state, max_rcu));
            }
        }
        let state = build(&resolved.client, cache, mirrors).await?.state();
        if let Some(generation) = generation {
            let mut kept = self.lock();
            let now = Instant::now();
            make_room(
                &mut kept,
                &resolved.client_id,
                MAX_KEPT_SESSIONS,
                self.ttl,
                now,
                |k| k.built,
            );
            kept.insert(
                resolved.client_id.clone(),
                Kept {
                    generation,
                    mirrors: mirrors.to_vec(),
                    state: state.clone(),
                    built: now,
                },
            );
        }
        Ok(with_ceiling(state, max_rcu))
    }

    /// Drops `client_id`'s kept session: its next request builds one.
    pub(crate) fn forget(&self, client_id: &str) {
        self.lock().remove(client_id);
    }

    /// How many sessions are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A context of its own over `state`, with the request's capacity ceiling
/// (a request's ceiling bounds its writes too).
fn with_ceiling(mut state: SessionState, max_rcu: Option<f64>) -> SessionContext {
    let extensions = &mut state.config_mut().options_mut().extensions;
    if extensions.get::<DynamoConfig>().is_none() {
        extensions.insert(DynamoConfig::default());
    }
    if let Some(settings) = extensions.get_mut::<DynamoConfig>() {
        settings.max_rcu = max_rcu;
        settings.max_wcu = max_rcu;
    }
    SessionContext::new_with_state(state)
}

/// A session over `client`'s tables, with its stored schemas, and the
/// tables of `mirrors` answered from their mirrors.
async fn build(
    client: &Client,
    cache: Option<Arc<dyn SchemaCache>>,
    mirrors: &[MirrorConfig],
) -> Result<SessionContext> {
    // The session's settings (`DynamoConfig`) are added with their defaults.
    let ctx = dynamo_session_with_cache(
        client.clone(),
        SessionConfig::new(),
        TableOptions::default(),
        cache,
    )
    .await
    .map_err(sql_error)?;
    for config in mirrors {
        let provider = mirrored_table(client, config).await?;
        // As named: DynamoDB table names are case-sensitive.
        let name = datafusion::common::TableReference::bare(config.table.as_str());
        ctx.register_table(name, provider).map_err(sql_error)?;
    }
    Ok(ctx)
}

/// The table `config` names, answered from its mirror; the live reads it
/// may make (catching up, or reading live) use `client`.
async fn mirrored_table(
    client: &Client,
    config: &MirrorConfig,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    let unavailable = |e: dynamo_mirror::MirrorError| match e {
        dynamo_mirror::MirrorError::Dynamo(e) => crate::error::provider_error(&e),
        other => ConnectorError::new(
            ErrorCode::MirrorUnavailable,
            format!("table '{}': {other}", config.table),
        ),
    };
    let mirror = dynamo_mirror::Mirror::open_for(&config.path, &config.table)
        .await
        .map_err(unavailable)?;
    let on_stale = config.on_stale.parse().map_err(|e: String| {
        ConnectorError::new(
            ErrorCode::MirrorUnavailable,
            format!("table '{}': on_stale {e}", config.table),
        )
    })?;
    let freshness = dynamo_mirror::Freshness {
        max_staleness: std::time::Duration::from_millis(config.max_staleness_ms),
        on_stale,
    };
    let live = mirror
        .live_provider(client.clone())
        .await
        .map_err(unavailable)?;
    Ok(Arc::new(dynamo_mirror::MirrorTableProvider::new(
        live, &mirror, freshness,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(ctx: &SessionContext) -> (Option<f64>, Option<f64>) {
        let state = ctx.state();
        let s = state
            .config()
            .options()
            .extensions
            .get::<DynamoConfig>()
            .expect("settings");
        (s.max_rcu, s.max_wcu)
    }

    #[test]
    fn each_request_has_its_own_capacity_ceiling_over_a_shared_state() {
        let ctx = SessionContext::new_with_config(
            SessionConfig::new().with_option_extension(DynamoConfig::default()),
        );
        let first = with_ceiling(ctx.state(), Some(5.0));
        let second = with_ceiling(ctx.state(), None);
        assert_eq!(settings(&first), (Some(5.0), Some(5.0)));
        assert_eq!(settings(&second), (None, None));
        // A state without the settings gets them.
        let bare = with_ceiling(SessionContext::new().state(), Some(1.0));
        assert_eq!(settings(&bare), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn forgetting_drops_only_that_client() {
        let pool = SessionPool::new(DEFAULT_SESSION_TTL);
        for id in ["a", "b"] {
            pool.lock().insert(
                id.to_string(),
                Kept {
                    generation: 1,
                    mirrors: Vec::new(),
                    state: SessionContext::new().state(),
                    built: Instant::now(),
                },
            );
        }
        pool.forget("a");
        assert_eq!(pool.len(), 1);
        assert!(pool.lock().contains_key("b"));
    }
}
