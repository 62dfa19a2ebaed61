//! Running SQL text: parse into statements, plan and run each, print results.

use std::io::Write;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use dynamo_datafusion::ReadStats;
use futures::StreamExt;
use std::sync::Arc;

use crate::print::{Format, Printer};

/// Errors of the command line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From DataFusion (planning, execution) or the provider.
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
    /// From the provider, before a query ran.
    #[error("{0}")]
    Dynamo(#[from] dynamo_datafusion::Error),
    /// Reading input or writing output.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Producing output.
    #[error("formatting output: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Session set-up.
    #[error("{0}")]
    Setup(String),
    /// A backslash command that does not exist or lacks an argument.
    #[error("{0}")]
    Command(String),
}

/// What one statement produced.
pub struct Outcome {
    /// Rows printed.
    pub rows: usize,
    /// Wall time from planning to the last row.
    pub elapsed: std::time::Duration,
    /// DynamoDB requests, items scanned and returned, capacity consumed.
    pub stats: ReadStats,
}

/// Runs every statement (or backslash command) in `text`, printing results to `out`.
pub async fn run_text(
    ctx: &SessionContext,
    text: &str,
    format: Format,
    out: &mut impl Write,
) -> Result<Vec<Outcome>, CliError> {
    let trimmed = text.trim();
    if trimmed.starts_with('\\') {
        crate::command::run(ctx, trimmed, format, out).await?;
        return Ok(vec![]);
    }
    let statements = DFParser::parse_sql_with_dialect(text, &GenericDialect {})?;
    let mut outcomes = Vec::with_capacity(statements.len());
    for statement in statements {
        outcomes.push(run_statement(ctx, statement, format, out).await?);
    }
    Ok(outcomes)
}

async fn run_statement(
    ctx: &SessionContext,
    statement: Statement,
    format: Format,
    out: &mut impl Write,
) -> Result<Outcome, CliError> {
    let start = Instant::now();
    let plan = ctx.state().statement_to_plan(statement).await?;
    let df = ctx.execute_logical_plan(plan).await?;
    let schema: SchemaRef = df.schema().as_arrow().clone().into();
    let task = Arc::new(df.task_ctx());
    let physical = df.create_physical_plan().await?;
    let mut stream = execute_stream(Arc::clone(&physical), task)?;
    let mut printer = Printer::new(format, schema);
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        let batch: RecordBatch = batch?;
        rows += batch.num_rows();
        printer.push(batch, out)?;
    }
    printer.finish(out)?;
    Ok(Outcome {
        rows,
        elapsed: start.elapsed(),
        stats: ReadStats::of_plan(&physical),
    })
}
