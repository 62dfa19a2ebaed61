//! The DataFusion session of `dynamo-sql`.

use datafusion::prelude::{SessionConfig, SessionContext};
use dynamo_datafusion::{ConnectionOptions, TableOptions, dynamo_session};

use crate::exec::CliError;

pub use dynamo_datafusion::{DEFAULT_CATALOG as CATALOG, DEFAULT_SCHEMA as SCHEMA};

/// A session where every DynamoDB table is queryable by its exact name, with
/// `information_schema` for `SHOW TABLES` and `SHOW COLUMNS`.
pub async fn build_context(connection: &ConnectionOptions) -> Result<SessionContext, CliError> {
    let client = connection.client().await;
    let config = SessionConfig::new().with_information_schema(true);
    Ok(dynamo_session(client, config, TableOptions::default()).await?)
}
