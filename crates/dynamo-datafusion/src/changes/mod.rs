//! A table's change records as a table: `SELECT * FROM "Orders$changes"`.
//!
//! DynamoDB Streams keeps 24 hours of a table's changes. Each row is one
//! change record: `event` (`INSERT`, `MODIFY`, `REMOVE`), `expired` (a
//! `REMOVE` made by DynamoDB's time to live, told apart by its service
//! identity), the item's `keys`, its `new_image` and `old_image` decoded
//! with the table's own schema (as the stream's view type holds them),
//! `created_at` (the approximate time of the change), `sequence_number` and
//! `shard_id`. A query reads what the stream holds when it runs: every
//! shard in lineage order (a parent before its children, so each item's
//! changes come in order), each from its oldest record; an open shard is
//! read until DynamoDB answers empty pages at its end. Iterators that
//! expire are taken again after the last record read; a position the
//! stream has trimmed is an error that says so. The stream is read with the
//! identity the table's DynamoDB client signs with.
//!
//! ```no_run
//! # async fn demo(client: aws_sdk_dynamodb::Client) -> datafusion::error::Result<()> {
//! use std::sync::Arc;
//! use datafusion::prelude::SessionContext;
//! use dynamo_datafusion::DynamoTableProvider;
//!
//! let orders = DynamoTableProvider::try_new(client, "Orders").await?;
//! let ctx = SessionContext::new();
//! ctx.register_table("orders_changes", orders.changes()?)?;
//! ctx.sql("SELECT event, count(*) FROM orders_changes GROUP BY event").await?.show().await?;
//! # Ok(()) }
//! ```

mod decode;
pub(crate) mod identity;
mod lineage;
mod read;

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use aws_credential_types::provider::SharedCredentialsProvider;

use crate::client::ConnectionOptions;
use crate::error::{Error, Result};
use crate::metadata::TableMeta;
use decode::ChangeDecoder;
pub use read::ChangeCheckpoint;
use read::ChangeCursor;

/// The suffix that names a table's change records in a schema of DynamoDB
/// tables: `"Orders$changes"`.
pub const CHANGES_SUFFIX: &str = "$changes";

/// The change records of the table `meta` describes, with `schema` the
/// table's columns (for the images): a table DataFusion can scan, reading
/// the stream with the credentials and region of `client`.
pub(crate) fn changes_table(
    client: &aws_sdk_dynamodb::Client,
    credentials: Option<SharedCredentialsProvider>,
    connection: &ConnectionOptions,
    meta: &TableMeta,
    schema: &SchemaRef,
) -> Result<StreamingTable> {
    let arn = meta.stream_arn.clone().ok_or_else(|| Error::NoStream {
        table: meta.name.clone(),
    })?;
    let decoder = ChangeDecoder::try_new(meta, schema)?;
    let schema = Arc::clone(decoder.schema());
    let partition = ChangePartition {
        client: streams_client(client, credentials, connection),
        table: meta.name.clone(),
        arn,
        decoder,
    };
    StreamingTable::try_new(schema, vec![Arc::new(partition)]).map_err(|e| Error::Metadata {
        table: meta.name.clone(),
        reason: e.to_string(),
    })
}

/// Change records read after a checkpoint, and the checkpoint after them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangesRead {
    /// The records, in the order read (each item's changes in order).
    pub batches: Vec<RecordBatch>,
    /// Where the read stopped: the next read starts after it.
    pub checkpoint: ChangeCheckpoint,
}

/// A read of a table's change records after a checkpoint, batch by batch:
/// each batch is a page of one shard's records, and [`Self::checkpoint`]
/// is always just after the last record returned — keep it with what the
/// records built, and a later read from it returns exactly what follows.
/// The read ends (`None`) once every shard the stream listed when it
/// started is read to its end (an open shard: to where DynamoDB answers
/// empty pages).
///
/// ```no_run
/// # async fn demo(orders: dynamo_datafusion::DynamoTableProvider) -> dynamo_datafusion::Result<()> {
/// let mut read = orders.change_reader(None)?;
/// while let Some(batch) = read.next_batch().await? {
///     println!("{} records, then {:?}", batch.num_rows(), read.checkpoint());
/// }
/// # Ok(()) }
/// ```
pub struct ChangeReader {
    cursor: ChangeCursor,
}

impl std::fmt::Debug for ChangeReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeReader")
            .field("checkpoint", self.cursor.checkpoint())
            .finish_non_exhaustive()
    }
}

impl ChangeReader {
    /// The next page of change records, `None` once the stream is read.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        self.cursor.next_batch().await
    }

    /// Where the read stands: after every record returned so far.
    pub fn checkpoint(&self) -> &ChangeCheckpoint {
        self.cursor.checkpoint()
    }

    /// The columns of the records (see [`crate::changes`]).
    pub fn schema(&self) -> &SchemaRef {
        self.cursor.schema()
    }
}

/// A read of the change records after `since` (all the stream holds, when
/// `None`).
pub(crate) fn change_reader(
    client: &aws_sdk_dynamodb::Client,
    credentials: Option<SharedCredentialsProvider>,
    connection: &ConnectionOptions,
    meta: &TableMeta,
    schema: &SchemaRef,
    since: Option<ChangeCheckpoint>,
) -> Result<ChangeReader> {
    let arn = meta.stream_arn.clone().ok_or_else(|| Error::NoStream {
        table: meta.name.clone(),
    })?;
    let decoder = ChangeDecoder::try_new(meta, schema)?;
    let mut cursor = ChangeCursor::new(
        streams_client(client, credentials, connection),
        meta.name.clone(),
        arn,
        decoder,
    );
    if let Some(since) = since {
        cursor = cursor.after(since)?;
    }
    Ok(ChangeReader { cursor })
}

/// Reads the change records after `since` (all the stream holds, when
/// `None`), to the end of every shard.
pub(crate) async fn read_changes(mut reader: ChangeReader) -> Result<ChangesRead> {
    let mut batches = Vec::new();
    while let Some(batch) = reader.next_batch().await? {
        batches.push(batch);
    }
    Ok(ChangesRead {
        batches,
        checkpoint: reader.checkpoint().clone(),
    })
}

/// A DynamoDB Streams client with the region, credentials and endpoint of
/// a DynamoDB client (a local server serves both APIs at one address).
fn streams_client(
    client: &aws_sdk_dynamodb::Client,
    credentials: Option<SharedCredentialsProvider>,
    connection: &ConnectionOptions,
) -> aws_sdk_dynamodbstreams::Client {
    let conf = client.config();
    let mut builder = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(conf.region().cloned());
    builder.set_credentials_provider(credentials);
    if let Some(url) = &connection.endpoint_url {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(builder.build())
}

/// The one partition of a change table: the whole stream, read in order.
#[derive(Debug)]
struct ChangePartition {
    client: aws_sdk_dynamodbstreams::Client,
    table: String,
    arn: String,
    decoder: ChangeDecoder,
}

impl PartitionStream for ChangePartition {
    fn schema(&self) -> &SchemaRef {
        self.decoder.schema()
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let cursor = ChangeCursor::new(
            self.client.clone(),
            self.table.clone(),
            self.arn.clone(),
            self.decoder.clone(),
        );
        let batches = futures::stream::try_unfold(cursor, |mut cursor| async move {
            let batch = cursor.next_batch().await.map_err(DataFusionError::from)?;
            Ok(batch.map(|b| (b, cursor)))
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(self.decoder.schema()),
            batches,
        ))
    }
}
