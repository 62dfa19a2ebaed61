//! `CREATE EXTERNAL TABLE t STORED AS DYNAMODB LOCATION 'TableName' [OPTIONS (...)]`.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::CreateExternalTable;

use crate::config::DynamoConfig;
use crate::options::TableOptions;
use crate::provider::DynamoTableProvider;
use crate::schema::cache::SchemaCache;

/// The file type name to register the factory under.
pub(crate) const DYNAMODB_FILE_TYPE: &str = "DYNAMODB";

/// Creates [`DynamoTableProvider`]s from `CREATE EXTERNAL TABLE` statements.
///
/// `LOCATION` is the DynamoDB table name. A column list, when given, is the
/// schema (no sampling); otherwise the schema is inferred. `OPTIONS` takes the
/// keys of [`TableOptions::from_map`].
///
/// ```no_run
/// use std::sync::Arc;
/// use datafusion::execution::session_state::SessionStateBuilder;
/// use dynamo_datafusion::DynamoTableFactory;
///
/// # fn demo(client: aws_sdk_dynamodb::Client) {
/// let state = SessionStateBuilder::new()
///     .with_default_features()
///     .with_table_factory(
///         DynamoTableFactory::FILE_TYPE.to_string(),
///         Arc::new(DynamoTableFactory::new(client)),
///     )
///     .build();
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoTableFactory {
    client: Client,
    cache: Option<Arc<dyn SchemaCache>>,
}

impl DynamoTableFactory {
    /// The file type to register the factory under: `STORED AS DYNAMODB`.
    pub const FILE_TYPE: &'static str = DYNAMODB_FILE_TYPE;

    /// A factory whose tables read with `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            cache: None,
        }
    }

    /// Keeps the inferred schemas of the tables it creates in `cache`.
    pub fn with_schema_cache(mut self, cache: Arc<dyn SchemaCache>) -> Self {
        self.cache = Some(cache);
        self
    }
}

#[async_trait]
impl TableProviderFactory for DynamoTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let table = match cmd.locations.as_slice() {
            [one] if !one.trim().is_empty() => one.trim().to_string(),
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "CREATE EXTERNAL TABLE {} STORED AS DYNAMODB needs exactly one LOCATION: \
                     the DynamoDB table name",
                    cmd.name
                )));
            }
        };
        let mut options = TableOptions::from_map(&cmd.options)?;
        // Session settings apply where the table's options are silent.
        let settings = DynamoConfig::of(state);
        let given = |key: &str| {
            [
                key.to_string(),
                format!("format.{key}"),
                format!("dynamodb.{key}"),
            ]
            .iter()
            .any(|k| cmd.options.contains_key(k))
        };
        if let (Some(secs), false) = (settings.schema_ttl, given("schema_ttl")) {
            options.schema_ttl = std::time::Duration::from_secs(secs);
        }
        if let (Some(extra), false) = (settings.extra_attributes, given("extra_attributes")) {
            options.extra_attributes = extra;
        }
        let mut builder = DynamoTableProvider::builder(self.client.clone(), table).options(options);
        if let Some(cache) = &self.cache {
            builder = builder.schema_cache(Arc::clone(cache));
        }
        let declared: Schema = cmd.schema.as_arrow().clone();
        if !declared.fields().is_empty() {
            builder = builder.schema(Arc::new(declared));
        }
        Ok(Arc::new(builder.build().await?))
    }
}
