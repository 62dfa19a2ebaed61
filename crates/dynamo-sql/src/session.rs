//! The DataFusion session of `dynamo-sql`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::datasource::dynamic_file::DynamicListTableFactory;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::schema::{FileSchemaCache, SchemaCache};
use dynamo_datafusion::session::dynamo_session_with_cache;
use dynamo_datafusion::{
    ConnectionOptions, DynamoConfig, DynamoSchemaProvider, DynamoTableFactory, TableOptions,
};
use dynamo_mirror::MirrorTableFactory;

use crate::error::CliError;

pub use dynamo_datafusion::session::{DEFAULT_CATALOG as CATALOG, DEFAULT_SCHEMA as SCHEMA};

/// Estimated read capacity above which a full Scan is warned about before
/// it reads (`SET dynamodb.warn_rcu` changes it): about 80 MB read
/// eventually consistent.
pub const WARN_RCU: f64 = 10_000.0;

/// Where inferred schemas are kept between runs.
#[derive(Debug)]
pub enum SchemaCacheChoice {
    /// Nowhere: every run samples.
    Off,
    /// In this directory, or the user's cache directory when `None`.
    Dir(Option<PathBuf>),
}

/// How tables of the catalogue are read.
#[derive(Debug, Clone, Copy)]
pub struct TableSettings {
    /// Seconds a cached schema is used.
    pub schema_ttl_secs: u64,
    /// Add the `_extra` column.
    pub extra_attributes: bool,
}

/// A session where every DynamoDB table is queryable by its exact name, with
/// `information_schema` for `SHOW TABLES` and `SHOW COLUMNS`, and inferred
/// schemas read from and kept in the schema cache; with `cluster`, a client
/// session of that Ballista cluster.
pub async fn build_context(
    connection: &ConnectionOptions,
    cache: SchemaCacheChoice,
    tables: TableSettings,
    cluster: Option<&str>,
) -> Result<SessionContext, CliError> {
    let client = connection.client().await;
    let mut config = match cluster {
        Some(_) => dynamo_ballista::process::session_config(),
        None => SessionConfig::new(),
    }
    .with_information_schema(true);
    if config.options().extensions.get::<DynamoConfig>().is_none() {
        config = config.with_option_extension(DynamoConfig::default());
    }
    if let Some(settings) = config.options_mut().extensions.get_mut::<DynamoConfig>() {
        settings.warn_rcu = Some(WARN_RCU);
    }
    let cache: Option<Arc<dyn SchemaCache>> = match cache {
        SchemaCacheChoice::Off => None,
        SchemaCacheChoice::Dir(Some(dir)) => Some(Arc::new(FileSchemaCache::new(dir))),
        SchemaCacheChoice::Dir(None) => {
            FileSchemaCache::in_user_cache("dynamo-sql").map(|c| Arc::new(c) as _)
        }
    };
    let mut options = TableOptions::default();
    options.schema_ttl = Duration::from_secs(tables.schema_ttl_secs);
    options.extra_attributes = tables.extra_attributes;
    let ctx = dynamo_session_with_cache(client.clone(), config, options, cache.clone()).await?;
    mirrored_tables(&ctx, client, cache);
    match cluster {
        Some(url) => Ok(dynamo_ballista::cluster_session(url, ctx.state(), connection).await?),
        None => {
            read_files(&ctx);
            Ok(ctx)
        }
    }
}

/// `CREATE EXTERNAL TABLE ... STORED AS DYNAMODB ... OPTIONS (mirror
/// 'PATH')`: a table answered from its mirror while it is fresh enough.
fn mirrored_tables(
    ctx: &SessionContext,
    client: aws_sdk_dynamodb::Client,
    cache: Option<Arc<dyn SchemaCache>>,
) {
    let mut tables = DynamoTableFactory::new(client);
    if let Some(cache) = cache {
        tables = tables.with_schema_cache(cache);
    }
    let factory = Arc::new(MirrorTableFactory::new(Arc::new(tables)));
    ctx.state_ref()
        .write()
        .table_factories_mut()
        .insert(DynamoTableFactory::FILE_TYPE.to_string(), factory);
}

/// A file is a table by its path (`SELECT * FROM 'out.parquet'`), as in
/// datafusion-cli: a name DynamoDB has no table of is tried as a file.
fn read_files(ctx: &SessionContext) {
    let Some(schema) = ctx.catalog(CATALOG).and_then(|c| c.schema(SCHEMA)) else {
        return;
    };
    if let Some(dynamo) = schema.downcast_ref::<DynamoSchemaProvider>() {
        let files = Arc::new(DynamicListTableFactory::default());
        files.session_store().with_state(ctx.state_weak_ref());
        dynamo.read_files_with(files);
    }
}
