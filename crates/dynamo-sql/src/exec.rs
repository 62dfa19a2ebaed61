//! Running SQL text: parse into statements, plan and run each, print results.

use std::io::Write;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use dynamo_datafusion::{ReadStats, ResultSink, RunOptions};

use crate::error::CliError;
use crate::print::{Format, Printer};

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
        if let Some(table) = analyzed_table(&statement) {
            let start = Instant::now();
            crate::command::refresh(ctx, &table, out).await?;
            outcomes.push(Outcome {
                rows: 0,
                elapsed: start.elapsed(),
                stats: ReadStats::default(),
            });
            continue;
        }
        outcomes.push(run_statement(ctx, statement, format, out).await?);
    }
    Ok(outcomes)
}

/// The table of `ANALYZE TABLE t`: sampled again for its schema.
fn analyzed_table(statement: &Statement) -> Option<String> {
    let Statement::Statement(inner) = statement else {
        return None;
    };
    let SqlStatement::Analyze(analyze) = inner.as_ref() else {
        return None;
    };
    let name = analyze.table_name.as_ref()?;
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.clone())
}

async fn run_statement(
    ctx: &SessionContext,
    statement: Statement,
    format: Format,
    out: &mut impl Write,
) -> Result<Outcome, CliError> {
    let start = Instant::now();
    let options = RunOptions {
        // Table and JSON output is printed once every row is in: a re-run
        // after a widened column is always invisible there.
        hold_back_bytes: match format {
            Format::Table | Format::Json => usize::MAX,
            Format::Csv | Format::Ndjson => RunOptions::default().hold_back_bytes,
        },
        ..RunOptions::default()
    };
    let mut sink = PrintSink {
        format,
        printer: None,
        out,
        rows: 0,
    };
    let outcome = dynamo_datafusion::run_statement(ctx, &statement, &options, &mut sink).await?;
    for notice in &outcome.notices {
        eprintln!("Notice: {notice}");
    }
    if let Some(printer) = sink.printer {
        printer.finish(sink.out)?;
    }
    Ok(Outcome {
        rows: sink.rows,
        elapsed: start.elapsed(),
        stats: ReadStats::of_plan(&outcome.plan),
    })
}

/// Prints a statement's result as it is delivered.
struct PrintSink<'a, W: Write> {
    format: Format,
    printer: Option<Printer>,
    out: &'a mut W,
    rows: usize,
}

impl<W: Write> ResultSink for PrintSink<'_, W> {
    fn start(&mut self, schema: SchemaRef) -> datafusion::error::Result<()> {
        self.printer = Some(Printer::new(self.format, schema));
        Ok(())
    }

    fn warning(&mut self, text: &str) {
        eprintln!("Warning: {text}");
    }

    fn batch(&mut self, batch: RecordBatch) -> datafusion::error::Result<bool> {
        self.rows += batch.num_rows();
        if let Some(printer) = self.printer.as_mut() {
            printer
                .push(batch, self.out)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
        }
        Ok(true)
    }
}
