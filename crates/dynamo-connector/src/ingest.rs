//! Flight SQL bulk ingest (`CommandStatementIngest`, ADBC's `adbc_ingest`):
//! a client's stream of record batches INSERTed into one of its tables.

use std::sync::Arc;

use arrow_flight::FlightData;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::{CommandStatementIngest, TableExistsOption, TableNotExistOption};
use std::sync::Mutex;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{StreamExt, TryStreamExt};

use crate::connector::SqlSession;
use crate::error::{ConnectorError, Result, sql_error};

/// The ingested data cannot be decoded.
fn unreadable(e: FlightError) -> ConnectorError {
    ConnectorError::invalid(format!("the ingested data cannot be read: {e}"))
}

/// The ingest's rows as a one-shot partition, read once as they arrive.
struct IngestPartition {
    schema: SchemaRef,
    rows: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for IngestPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestPartition")
    }
}

impl PartitionStream for IngestPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.rows.lock().unwrap_or_else(|p| p.into_inner()).take();
        taken.unwrap_or_else(|| {
            let again = futures::stream::once(async {
                Err(DataFusionError::Execution(
                    "the ingested rows were already read: an ingest is read once".into(),
                ))
            });
            Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                again,
            ))
        })
    }
}

/// `"name"` with its quotes doubled: a SQL identifier as given.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Refuses what an ingest into an existing DynamoDB table cannot do.
fn check_command(command: &CommandStatementIngest) -> Result<()> {
    if command.temporary {
        return Err(ConnectorError::invalid(
            "temporary tables are not supported: ingest into an existing DynamoDB table",
        ));
    }
    if command.transaction_id.is_some() {
        return Err(ConnectorError::invalid(
            "transactions are not supported: each ingest is its own statement",
        ));
    }
    if let Some(options) = command.table_definition_options {
        let exists = TableExistsOption::try_from(options.if_exists).ok();
        if matches!(exists, Some(TableExistsOption::Replace)) {
            return Err(ConnectorError::invalid(format!(
                "ingest mode 'replace' would drop table '{}': ingest appends rows to an existing \
                 table (mode 'append')",
                command.table
            )));
        }
        if matches!(exists, Some(TableExistsOption::Fail))
            && matches!(
                TableNotExistOption::try_from(options.if_not_exist).ok(),
                Some(TableNotExistOption::Create)
            )
        {
            return Err(ConnectorError::invalid(format!(
                "ingest mode 'create' makes a new table; DynamoDB tables are created outside the \
                 connector: ingest into an existing table with mode 'append' ('{}')",
                command.table
            )));
        }
    }
    Ok(())
}

/// INSERTs the batches of `data` into the table `command` names, in
/// `session`: the items written and the plan that wrote them.
pub(crate) async fn ingest(
    session: &SqlSession,
    command: &CommandStatementIngest,
    data: impl futures::Stream<Item = Result<FlightData, tonic::Status>> + Send + 'static,
) -> Result<(u64, Arc<dyn ExecutionPlan>)> {
    check_command(command)?;
    let mut stream =
        FlightRecordBatchStream::new_from_flight_data(data.map_err(FlightError::from).boxed());
    // The first batch brings the schema (or the stream ends with only a schema).
    let first = stream.next().await.transpose().map_err(unreadable)?;
    let Some(schema) = stream
        .schema()
        .cloned()
        .or_else(|| first.as_ref().map(|b| b.schema()))
    else {
        return Err(ConnectorError::invalid(
            "the ingest sent no schema and no rows",
        ));
    };
    // The rows stream into the INSERT as they arrive: an ingest of any size
    // holds a few batches, never the whole of it.
    let rows = futures::stream::iter(first.map(Ok))
        .chain(stream)
        .map_err(|e| DataFusionError::External(Box::new(unreadable(e))));
    let partition = IngestPartition {
        schema: Arc::clone(&schema),
        rows: Mutex::new(Some(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&schema),
            rows,
        )))),
    };
    let source = format!("__ingest_{}", rand::random::<u64>());
    let table = StreamingTable::try_new(Arc::clone(&schema), vec![Arc::new(partition)])
        .map_err(sql_error)?;
    session
        .context()
        .register_table(source.as_str(), Arc::new(table))
        .map_err(sql_error)?;
    let columns: Vec<String> = schema.fields().iter().map(|f| quoted(f.name())).collect();
    let sql = format!(
        "INSERT INTO {} ({cols}) SELECT {cols} FROM {source}",
        quoted(&command.table),
        cols = columns.join(", ")
    );
    let result = session.execute_update(&sql).await;
    let _ = session.context().deregister_table(source.as_str());
    result
}
