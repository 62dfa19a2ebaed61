//! `DynamoTableProvider`: a DynamoDB table as a DataFusion table.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;

use crate::decode::ItemDecoder;
use crate::error::{Error, Result, sdk_message};
use crate::exec::{DynamoScanExec, ScanPlan};
use crate::expression::ProjectionExpression;
use crate::metadata::TableMeta;
use crate::options::{ColumnType, TableOptions};
use crate::sample::sample_table;
use crate::schema::build_schema;

/// Bytes of table per parallel-scan segment when the count is chosen automatically:
/// a segment should have several 1 MB pages to read before parallelism pays.
const BYTES_PER_SEGMENT: u64 = 4 * 1024 * 1024;

/// A DynamoDB table that DataFusion can query.
///
/// Built from an SDK client and a table name: DescribeTable gives the keys and
/// indexes, and the schema is either given or inferred by sampling.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
/// use std::sync::Arc;
/// use datafusion::prelude::SessionContext;
/// use dynamo_datafusion::DynamoTableProvider;
///
/// let provider = DynamoTableProvider::try_new(client, "UserEngagement").await?;
/// let ctx = SessionContext::new();
/// ctx.register_table("engagement", Arc::new(provider))?;
/// ctx.sql("SELECT count(*) FROM engagement").await?.show().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoTableProvider {
    client: Client,
    meta: Arc<TableMeta>,
    schema: SchemaRef,
    options: Arc<TableOptions>,
}

/// Builds a [`DynamoTableProvider`] with non-default options.
///
/// ```no_run
/// # async fn demo(client: aws_sdk_dynamodb::Client) -> dynamo_datafusion::Result<()> {
/// use datafusion::arrow::datatypes::DataType;
/// use dynamo_datafusion::DynamoTableProvider;
///
/// let provider = DynamoTableProvider::builder(client, "Inventory")
///     .sample_size(10_000)
///     .column_type("price", DataType::Decimal128(38, 4))
///     .consistent_read(true)
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DynamoTableProviderBuilder {
    client: Client,
    table: String,
    schema: Option<SchemaRef>,
    options: TableOptions,
}

impl DynamoTableProviderBuilder {
    /// Uses this schema instead of sampling. Columns are attribute names.
    pub fn schema(mut self, schema: SchemaRef) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Number of items sampled to infer the schema.
    pub fn sample_size(mut self, n: usize) -> Self {
        self.options.sample_size = n.max(1);
        self
    }

    /// Forces the Arrow type of one attribute (adds it if sampling missed it).
    pub fn column_type(mut self, attribute: impl Into<String>, data_type: DataType) -> Self {
        self.options
            .column_types
            .push((attribute.into(), ColumnType::Arrow(data_type)));
        self
    }

    /// Reads one attribute as lossless JSON text.
    pub fn json_column(mut self, attribute: impl Into<String>) -> Self {
        self.options
            .column_types
            .push((attribute.into(), ColumnType::Json));
        self
    }

    /// Strongly consistent reads.
    pub fn consistent_read(mut self, yes: bool) -> Self {
        self.options.consistent_read = yes;
        self
    }

    /// Items per request (`Limit`).
    pub fn page_size(mut self, n: i32) -> Self {
        self.options.page_size = Some(n.max(1));
        self
    }

    /// Parallel-scan segments (DataFusion partitions).
    pub fn segments(mut self, n: u32) -> Self {
        self.options.segments = Some(n.max(1));
        self
    }

    /// Replaces all options at once.
    pub fn options(mut self, options: TableOptions) -> Self {
        self.options = options;
        self
    }

    /// Describes the table, infers the schema if none was given, and builds the provider.
    pub async fn build(self) -> Result<DynamoTableProvider> {
        let meta = describe_table(&self.client, &self.table).await?;
        let schema = match self.schema {
            Some(schema) => schema,
            None => {
                let observed = sample_table(
                    &self.client,
                    &self.table,
                    self.options.sample_size,
                    self.options.consistent_read,
                )
                .await?;
                build_schema(&meta, observed, &self.options.column_types)
            }
        };
        // Fail now, not at the first query, if a column type cannot be decoded.
        ItemDecoder::try_new(&meta.name, Arc::clone(&schema))?;
        Ok(DynamoTableProvider {
            client: self.client,
            meta: Arc::new(meta),
            schema,
            options: Arc::new(self.options),
        })
    }
}

/// Calls DescribeTable and turns the answer into [`TableMeta`].
pub async fn describe_table(client: &Client, table: &str) -> Result<TableMeta> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                Error::TableNotFound {
                    table: table.to_string(),
                }
            } else {
                Error::Request {
                    operation: "DescribeTable",
                    table: table.to_string(),
                    message: sdk_message(&e),
                }
            }
        })?;
    let desc = out.table().ok_or_else(|| Error::Metadata {
        table: table.to_string(),
        reason: "DescribeTable returned no table description".to_string(),
    })?;
    TableMeta::from_description(desc)
}

impl DynamoTableProvider {
    /// Describes `table` and infers its schema with default options.
    pub async fn try_new(client: Client, table: impl Into<String>) -> Result<Self> {
        Self::builder(client, table).build().await
    }

    /// Starts a builder for `table`.
    pub fn builder(client: Client, table: impl Into<String>) -> DynamoTableProviderBuilder {
        DynamoTableProviderBuilder {
            client,
            table: table.into(),
            schema: None,
            options: TableOptions::default(),
        }
    }

    /// Keys, indexes and size of the table.
    pub fn meta(&self) -> &TableMeta {
        &self.meta
    }

    /// The options the provider reads with.
    pub fn options(&self) -> &TableOptions {
        &self.options
    }

    /// Segments for a full scan: set by option, else one per [`BYTES_PER_SEGMENT`]
    /// of table, at most `target_partitions`.
    fn scan_segments(&self, target_partitions: usize) -> u32 {
        if let Some(n) = self.options.segments {
            return n;
        }
        let by_size = self.meta.size_bytes.div_ceil(BYTES_PER_SEGMENT).max(1);
        by_size.min(target_partitions.max(1) as u64) as u32
    }
}

#[async_trait]
impl TableProvider for DynamoTableProvider {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(indices) => Arc::new(self.schema.project(indices)?),
            None => Arc::clone(&self.schema),
        };
        let attributes: Vec<String> = if schema.fields().is_empty() {
            // Nothing needed but the row count: read the smallest thing there is.
            vec![self.meta.keys.partition_key.name.clone()]
        } else {
            schema.fields().iter().map(|f| f.name().clone()).collect()
        };
        let decoder = ItemDecoder::try_new(&self.meta.name, schema)?;
        // A limit is met fastest by one segment reading only that many items.
        let segments = match limit {
            Some(_) => 1,
            None => self.scan_segments(state.config().target_partitions()),
        };
        let plan = ScanPlan {
            table: self.meta.name.clone(),
            segments,
            projection: ProjectionExpression::new(attributes),
            consistent_read: self.options.consistent_read,
            page_size: self.options.page_size,
            limit,
        };
        Ok(Arc::new(DynamoScanExec::new(
            self.client.clone(),
            plan,
            decoder,
        )))
    }
}
