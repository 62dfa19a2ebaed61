//! The DataFusion session of `dynamo-sql`.

use std::sync::Arc;

use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::{
    ConnectionOptions, DYNAMODB_FILE_TYPE, DynamoSchemaProvider, DynamoTableFactory, TableOptions,
};

use crate::exec::CliError;

/// Catalog and schema the DynamoDB tables live in (DataFusion's defaults).
pub const CATALOG: &str = "datafusion";
/// See [`CATALOG`].
pub const SCHEMA: &str = "public";

/// A session where every DynamoDB table is queryable by its exact name.
///
/// DynamoDB names are case-sensitive, so identifier normalisation is off:
/// `SELECT userId FROM UserEngagement` means exactly those names, as typed.
/// Function names and keywords stay case-insensitive.
pub async fn build_context(connection: &ConnectionOptions) -> Result<SessionContext, CliError> {
    let client = connection.client().await;
    let mut config = SessionConfig::new().with_information_schema(true);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_table_factory(
            DYNAMODB_FILE_TYPE.to_string(),
            Arc::new(DynamoTableFactory::new(client.clone())),
        )
        .build();
    let ctx = SessionContext::new_with_state(state);
    let tables = DynamoSchemaProvider::try_new(client, TableOptions::default()).await?;
    ctx.catalog(CATALOG)
        .ok_or_else(|| CliError::Setup(format!("catalog '{CATALOG}' missing")))?
        .register_schema(SCHEMA, Arc::new(tables))?;
    Ok(ctx)
}
