//! A ready DataFusion session over one client's DynamoDB tables.

use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::DynamoSchemaProvider;
use crate::config::DynamoConfig;
use crate::exec::ceiling_rule::CapacityCeilingRule;
use crate::factory::{DYNAMODB_FILE_TYPE, DynamoTableFactory};
use crate::options::TableOptions;
use crate::schema::cache::SchemaCache;

/// Catalog the DynamoDB tables are registered in (DataFusion's default).
pub const DEFAULT_CATALOG: &str = "datafusion";
/// Schema the DynamoDB tables are registered in (DataFusion's default).
pub const DEFAULT_SCHEMA: &str = "public";

/// DataFusion's default for the most build-side keys a hash join hands
/// the other side as a list (above it, only bounds and a hash lookup).
const DATAFUSION_INLIST_MAX_KEYS: usize = 150;

impl DynamoConfig {
    /// `config` as a DynamoDB session has it ([`dynamo_session`] applies
    /// this): case-sensitive names, exact decimal literals, join key lists
    /// of up to 1,000 keys (unless the caller chose a limit), and the
    /// `dynamodb.*` settings registered. For sessions built by other means
    /// (tests, engines) that must plan as `dynamo_session` does.
    ///
    /// ```
    /// use datafusion::prelude::SessionConfig;
    /// use dynamo_datafusion::DynamoConfig;
    ///
    /// let config = DynamoConfig::session_defaults(SessionConfig::new());
    /// assert!(!config.options().sql_parser.enable_ident_normalization);
    /// assert!(config.options().extensions.get::<DynamoConfig>().is_some());
    /// ```
    pub fn session_defaults(mut config: SessionConfig) -> SessionConfig {
        dynamo_defaults(&mut config);
        if config.options().extensions.get::<DynamoConfig>().is_none() {
            config = config.with_option_extension(DynamoConfig::default());
        }
        config
    }
}

/// The settings a DynamoDB session changes from DataFusion's defaults.
fn dynamo_defaults(config: &mut SessionConfig) {
    let options = config.options_mut();
    options.sql_parser.enable_ident_normalization = false;
    // `price > 12.34` compares exact decimals (and can be pushed down), not floats.
    options.sql_parser.parse_float_as_decimal = true;
    // A join's build side of up to a thousand keys reaches the other side as
    // a list of keys it can read by key (unless the caller chose a limit).
    let optimizer = &mut options.optimizer;
    if optimizer.hash_join_inlist_pushdown_max_distinct_values == DATAFUSION_INLIST_MAX_KEYS {
        optimizer.hash_join_inlist_pushdown_max_distinct_values = crate::plan::MAX_BATCH_KEYS;
    }
}

/// A session where every DynamoDB table of `client` is queryable by its exact name.
///
/// - DynamoDB names are case-sensitive, so identifier normalisation is off in
///   `config`: `SELECT userId FROM UserEngagement` means exactly those names
///   (keywords and function names stay case-insensitive);
/// - numeric literals with a fraction are exact decimals, as DynamoDB numbers are;
/// - `SET dynamodb.pushdown = false` and the full-scan guard settings of
///   [`DynamoConfig`] are available;
/// - `SET dynamodb.max_rcu = N` caps what a query may read, over all its
///   reads ([`crate::CapacityCeilingRule`]);
/// - a hash join hands its build side's keys to the other side as a list
///   when there are at most 1,000 per partition (DataFusion's
///   `hash_join_inlist_pushdown_max_distinct_values`, 150 by default, unless
///   `config` sets another value), so a read can turn them into key lookups
///   (`dynamodb.join_key_lookups`);
/// - the default schema lists the tables with ListTables (now) and describes each
///   when first used, with `options`;
/// - `CREATE EXTERNAL TABLE t STORED AS DYNAMODB LOCATION 'Table'` is registered;
/// - `to_json(value)` gives any value as JSON text ([`crate::to_json_udf`]).
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
/// use datafusion::prelude::SessionConfig;
/// use dynamo_datafusion::{TableOptions, dynamo_session};
///
/// let ctx = dynamo_session(client, SessionConfig::new(), TableOptions::default()).await?;
/// ctx.sql("SELECT count(*) FROM UserEngagement").await?.show().await?;
/// # Ok(()) }
/// ```
pub async fn dynamo_session(
    client: Client,
    config: SessionConfig,
    options: TableOptions,
) -> DfResult<SessionContext> {
    dynamo_session_with_cache(client, config, options, None).await
}

/// [`dynamo_session`], keeping inferred schemas in `cache` when given: a
/// later session (another run of a one-shot command, another request) reads
/// them instead of sampling. `SET dynamodb.schema_ttl` in `config` sets how
/// long they are used.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use datafusion::prelude::SessionConfig;
/// use dynamo_datafusion::schema::FileSchemaCache;
/// use dynamo_datafusion::session::dynamo_session_with_cache;
/// use dynamo_datafusion::TableOptions;
///
/// let cache = FileSchemaCache::in_user_cache("my-app").map(|c| Arc::new(c) as _);
/// let ctx = dynamo_session_with_cache(client, SessionConfig::new(), TableOptions::default(), cache).await?;
/// # Ok(()) }
/// ```
pub async fn dynamo_session_with_cache(
    client: Client,
    mut config: SessionConfig,
    mut options: TableOptions,
    cache: Option<Arc<dyn SchemaCache>>,
) -> DfResult<SessionContext> {
    dynamo_defaults(&mut config);
    match config.options().extensions.get::<DynamoConfig>() {
        None => config = config.with_option_extension(DynamoConfig::default()),
        Some(settings) => {
            if let Some(secs) = settings.schema_ttl {
                options.schema_ttl = std::time::Duration::from_secs(secs);
            }
            if let Some(extra) = settings.extra_attributes {
                options.extra_attributes = extra;
            }
        }
    }
    let mut factory = DynamoTableFactory::new(client.clone());
    if let Some(cache) = &cache {
        factory = factory.with_schema_cache(Arc::clone(cache));
    }
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_table_factory(DYNAMODB_FILE_TYPE.to_string(), Arc::new(factory))
        .with_physical_optimizer_rule(Arc::new(CapacityCeilingRule))
        .with_analyzer_rule(Arc::new(crate::write::DmlGuard))
        .build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_udf(crate::functions::to_json_udf());
    let mut tables = DynamoSchemaProvider::try_new(client, options).await?;
    if let Some(cache) = cache {
        tables = tables.with_schema_cache(cache);
    }
    ctx.catalog(DEFAULT_CATALOG)
        .ok_or_else(|| DataFusionError::Internal(format!("catalog '{DEFAULT_CATALOG}' missing")))?
        .register_schema(DEFAULT_SCHEMA, Arc::new(tables))?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_key_lists_reach_a_thousand_keys_unless_chosen() {
        let mut config = SessionConfig::new();
        assert_eq!(
            config
                .options()
                .optimizer
                .hash_join_inlist_pushdown_max_distinct_values,
            DATAFUSION_INLIST_MAX_KEYS,
            "DataFusion's default"
        );
        dynamo_defaults(&mut config);
        let o = config.options();
        assert_eq!(
            o.optimizer.hash_join_inlist_pushdown_max_distinct_values,
            1_000
        );
        assert!(!o.sql_parser.enable_ident_normalization);
        let mut config = SessionConfig::new();
        config
            .options_mut()
            .optimizer
            .hash_join_inlist_pushdown_max_distinct_values = 20;
        dynamo_defaults(&mut config);
        assert_eq!(
            config
                .options()
                .optimizer
                .hash_join_inlist_pushdown_max_distinct_values,
            20
        );
    }
}
