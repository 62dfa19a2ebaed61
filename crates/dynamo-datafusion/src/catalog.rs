//! Every table of an account and region, queryable by name: a DataFusion
//! schema backed by ListTables, each table described when first used.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use datafusion::catalog::{SchemaProvider, TableProvider, UrlTableFactory};
use datafusion::error::{DataFusionError, Result as DfResult};

use crate::error::{Error, Result, describe_sdk_error};
use crate::options::TableOptions;
use crate::provider::{DynamoTableProvider, DynamoTableProviderBuilder};
use crate::schema::cache::SchemaCache;

/// A DataFusion schema whose tables are the DynamoDB tables of one client.
///
/// Tables registered explicitly (e.g. by `CREATE EXTERNAL TABLE`) shadow
/// DynamoDB tables of the same name.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use datafusion::prelude::SessionContext;
/// use dynamo_datafusion::DynamoSchemaProvider;
///
/// let ctx = SessionContext::new();
/// let schema = DynamoSchemaProvider::try_new(client, Default::default()).await?;
/// ctx.catalog("datafusion").expect("default catalog").register_schema("public", Arc::new(schema))?;
/// ctx.sql("SELECT count(*) FROM \"UserEngagement\"").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DynamoSchemaProvider {
    client: Client,
    options: TableOptions,
    cache: Option<Arc<dyn SchemaCache>>,
    names: RwLock<Vec<String>>,
    described: RwLock<HashMap<String, Arc<dyn TableProvider>>>,
    registered: RwLock<HashMap<String, Arc<dyn TableProvider>>>,
    /// Names DynamoDB has no table of are tried as file paths or URLs.
    files: OnceLock<Arc<dyn UrlTableFactory>>,
}

impl DynamoSchemaProvider {
    /// Lists the tables of `client`'s account and region. Tables are described
    /// (and their schema sampled, with `options`) when a query first names them.
    pub async fn try_new(client: Client, options: TableOptions) -> Result<Self> {
        let names = list_tables(&client).await?;
        Ok(Self {
            client,
            options,
            cache: None,
            names: RwLock::new(names),
            described: RwLock::new(HashMap::new()),
            registered: RwLock::new(HashMap::new()),
            files: OnceLock::new(),
        })
    }

    /// Answers a name DynamoDB has no table of as a file or directory path
    /// (or URL), through `factory` — `SELECT * FROM 'out.parquet'`, as
    /// datafusion-cli does. For a user's own tool only: a server must not
    /// let its callers read its files. Set once; later calls are ignored.
    ///
    /// ```no_run
    /// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
    /// use std::sync::Arc;
    /// use datafusion::datasource::dynamic_file::DynamicListTableFactory;
    /// use datafusion::prelude::SessionContext;
    /// use dynamo_datafusion::DynamoSchemaProvider;
    ///
    /// let ctx = SessionContext::new();
    /// let schema = Arc::new(DynamoSchemaProvider::try_new(client, Default::default()).await?);
    /// let files = Arc::new(DynamicListTableFactory::default());
    /// files.session_store().with_state(ctx.state_weak_ref());
    /// schema.read_files_with(files);
    /// ctx.catalog("datafusion").expect("default catalog").register_schema("public", schema)?;
    /// ctx.sql("SELECT count(*) FROM 'out.parquet'").await?.show().await?;
    /// # Ok(()) }
    /// ```
    pub fn read_files_with(&self, factory: Arc<dyn UrlTableFactory>) {
        let _ = self.files.set(factory);
    }

    /// A file table for `name`, when files are read and it names one.
    async fn file_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.files.get() {
            Some(factory) => factory.try_new(name).await,
            None => Ok(None),
        }
    }

    /// The table `name` if it is registered or already described — no
    /// DynamoDB call (for completion and other lookups that must not read).
    pub fn loaded(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        if let Some(t) = read(&self.registered).get(name) {
            return Some(Arc::clone(t));
        }
        read(&self.described).get(name).cloned()
    }

    /// Lists the tables again and forgets cached descriptions and schemas.
    pub async fn refresh(&self) -> Result<()> {
        let names = list_tables(&self.client).await?;
        *write(&self.names) = names;
        write(&self.described).clear();
        Ok(())
    }

    /// The SDK client this schema reads with.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Keeps inferred schemas in `cache` (see
    /// [`DynamoTableProviderBuilder::schema_cache`](crate::DynamoTableProviderBuilder::schema_cache)).
    pub fn with_schema_cache(mut self, cache: Arc<dyn SchemaCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Describes and samples table `name` again (`ANALYZE TABLE`), replacing
    /// its schema here and in the schema cache. A table registered with
    /// `CREATE EXTERNAL TABLE` is sampled again with its own options.
    pub async fn resample(&self, name: &str) -> Result<Arc<dyn TableProvider>> {
        let registered = read(&self.registered).get(name).cloned();
        if let Some(table) = registered {
            let Some(dynamo) = table.downcast_ref::<DynamoTableProvider>() else {
                return Err(Error::InvalidOption {
                    key: "table".into(),
                    reason: format!("table '{name}' is not a DynamoDB table"),
                });
            };
            let fresh: Arc<dyn TableProvider> = Arc::new(dynamo.resampled().await?);
            write(&self.registered).insert(name.to_string(), Arc::clone(&fresh));
            return Ok(fresh);
        }
        let fresh: Arc<dyn TableProvider> =
            Arc::new(self.builder(name).resample(true).build().await?);
        write(&self.described).insert(name.to_string(), Arc::clone(&fresh));
        Ok(fresh)
    }

    /// `base`'s change records, as the table `name` (`"T$changes"`).
    async fn changes_of(&self, name: &str, base: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some(table) = Box::pin(self.table(base)).await? else {
            return Ok(None);
        };
        let Some(dynamo) = table.downcast_ref::<DynamoTableProvider>() else {
            return Err(DataFusionError::Plan(format!(
                "table '{base}' is not a DynamoDB table: it has no change records"
            )));
        };
        let changes = dynamo.changes()?;
        write(&self.described).insert(name.to_string(), Arc::clone(&changes));
        Ok(Some(changes))
    }

    fn builder(&self, name: &str) -> DynamoTableProviderBuilder {
        let builder =
            DynamoTableProvider::builder(self.client.clone(), name).options(self.options.clone());
        match &self.cache {
            Some(cache) => builder.schema_cache(Arc::clone(cache)),
            None => builder,
        }
    }
}

/// All table names, following ListTables pagination; each page retried as
/// reads are ([`crate::RetryPolicy::default`]).
pub async fn list_tables(client: &Client) -> Result<Vec<String>> {
    let client = &crate::read::without_sdk_retries(client);
    let policy = crate::RetryPolicy::default();
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = start.take();
        let out = crate::read::retry::metadata_call(&policy, || {
            client
                .list_tables()
                .set_exclusive_start_table_name(page.clone())
                .send()
        })
        .await
        .map_err(|(e, _)| Error::Service {
            operation: "ListTables",
            kind: crate::read::retry::error_kind(&e),
            message: describe_sdk_error(&e),
        })?;
        names.extend(out.table_names().iter().cloned());
        match out.last_evaluated_table_name {
            Some(next) => start = Some(next),
            None => return Ok(names),
        }
    }
}

/// DynamoDB's table-name rule: 3 to 255 characters of `a-z A-Z 0-9 _ - .`.
pub(crate) fn is_valid_table_name(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl SchemaProvider for DynamoSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        let mut names = read(&self.names).clone();
        names.extend(read(&self.registered).keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = read(&self.registered).get(name) {
            return Ok(Some(Arc::clone(t)));
        }
        if let Some(t) = read(&self.described).get(name) {
            return Ok(Some(Arc::clone(t)));
        }
        if let Some(base) = name.strip_suffix(crate::changes::CHANGES_SUFFIX)
            && is_valid_table_name(base)
        {
            return self.changes_of(name, base).await;
        }
        if !is_valid_table_name(name) {
            // DynamoDB could not have such a table; don't ask it.
            return self.file_table(name).await;
        }
        let built = self.builder(name).build().await;
        match built {
            Ok(provider) => {
                let provider: Arc<dyn TableProvider> = Arc::new(provider);
                write(&self.described).insert(name.to_string(), Arc::clone(&provider));
                let mut names = write(&self.names);
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
                Ok(Some(provider))
            }
            Err(Error::TableNotFound { .. }) => self.file_table(name).await,
            Err(e) => Err(DataFusionError::from(e)),
        }
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(write(&self.registered).insert(name, table))
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(write(&self.registered).remove(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        let base = name
            .strip_suffix(crate::changes::CHANGES_SUFFIX)
            .unwrap_or(name);
        read(&self.registered).contains_key(name) || read(&self.names).iter().any(|n| n == base)
    }
}

#[cfg(test)]
mod tests {
    use super::is_valid_table_name;

    #[test]
    fn table_name_rule() {
        for ok in ["abc", "User_Engagement-2026.v1", &"a".repeat(255)] {
            assert!(is_valid_table_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "",
            "has space",
            "ümlaut",
            "semi;colon",
            &"a".repeat(256),
        ] {
            assert!(!is_valid_table_name(bad), "{bad}");
        }
    }
}
