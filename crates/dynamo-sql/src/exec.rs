//! Running SQL text: parse into statements, plan and run each, print results.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{CopyToSource, DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::run::{ResultSink, RunOptions};

use crate::error::CliError;
use crate::print::{Format, Printer};
use crate::progress::Progress;
use crate::settings::Settings;
use dynamo_datafusion::write::WriteStats;

/// What one statement produced.
pub struct Outcome {
    /// Rows printed.
    pub rows: usize,
    /// Wall time from planning to the last row.
    pub elapsed: std::time::Duration,
    /// DynamoDB requests, items scanned and returned, capacity consumed.
    pub stats: ReadStats,
    /// What a write statement wrote (none for a query).
    pub writes: WriteStats,
}

/// The plan of the statement running now (set when it starts, cleared
/// when it ends), shared with whoever handles Ctrl-C.
#[derive(Debug, Clone, Default)]
pub struct Running(std::sync::Arc<std::sync::Mutex<Option<std::sync::Arc<dyn ExecutionPlan>>>>);

impl Running {
    fn set(&self, plan: Option<std::sync::Arc<dyn ExecutionPlan>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = plan;
    }

    fn take(&self) -> Option<std::sync::Arc<dyn ExecutionPlan>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// After a statement was interrupted (Ctrl-C): cancels the job it submitted
/// to the cluster, so its reads stop there too, and says what was done.
pub async fn interrupted(settings: &Settings) -> String {
    let plan = settings.running.take();
    let writes = plan.as_ref().map(WriteStats::of_plan).unwrap_or_default();
    if writes.writes > 0 {
        // The items written stay written: say how many.
        return format!(
            "Statement cancelled: {} items were written before it stopped ({} skipped); \
             writes in flight at that moment may have been applied too. {}",
            writes.items_written, writes.items_skipped, "A REPLACE can be run again as it is."
        );
    }
    let (Some(cluster), Some(plan)) = (&settings.cluster, plan) else {
        return "Query cancelled.".to_string();
    };
    match dynamo_ballista::cancel_jobs(cluster, &plan).await {
        Ok(jobs) if jobs.is_empty() => "Query cancelled (no cluster job had started).".to_string(),
        Ok(jobs) => format!(
            "Query cancelled; cluster job {} cancelled.",
            jobs.join(", ")
        ),
        Err(e) => format!("Query cancelled here, but the cluster job may still run: {e}"),
    }
}

/// Runs every statement (or backslash command) in `text`, printing results
/// as `settings` say.
pub async fn run_text(
    ctx: &SessionContext,
    text: &str,
    settings: &mut Settings,
) -> Result<Vec<Outcome>, CliError> {
    let trimmed = text.trim();
    if trimmed.starts_with('\\') {
        crate::command::run(ctx, trimmed, settings).await?;
        return Ok(vec![]);
    }
    dynamo_datafusion::statement::check_complexity(text)?;
    let statements = DFParser::parse_sql_with_dialect(text, &GenericDialect {})?;
    let mut outcomes = Vec::with_capacity(statements.len());
    for statement in statements {
        if let Some(table) = analyzed_table(&statement) {
            let start = Instant::now();
            crate::command::refresh(ctx, &table, &mut settings.output).await?;
            outcomes.push(Outcome {
                rows: 0,
                elapsed: start.elapsed(),
                stats: ReadStats::default(),
                writes: WriteStats::default(),
            });
            continue;
        }
        if settings.readable_plans
            && settings.format == Format::Table
            && let Some(explain) = crate::explain::plain_explain(&statement)
        {
            let start = Instant::now();
            let text = crate::explain::readable(ctx, explain).await?;
            settings
                .output
                .write_all(text.as_bytes())
                .map_err(|e| CliError::Io {
                    what: "writing output".to_string(),
                    source: e,
                })?;
            outcomes.push(Outcome {
                rows: 0,
                elapsed: start.elapsed(),
                stats: ReadStats::default(),
                writes: WriteStats::default(),
            });
            continue;
        }
        let (statement, created) = prepare_copy(ctx, statement)
            .await
            .map_err(|e| with_table_hint(ctx, e))?;
        match run_statement(ctx, statement, settings).await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                let e = with_table_hint(ctx, e);
                // A failed COPY leaves no file it created half-written.
                if let Some(path) = created.filter(|p| p.is_file()) {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        }
    }
    Ok(outcomes)
}

/// `e`, with the table it most likely meant when it names a missing table
/// (from the names in memory: no DynamoDB call).
fn with_table_hint(ctx: &SessionContext, e: CliError) -> CliError {
    let text = e.to_string();
    let Some(missing) = crate::error::missing_table(&text) else {
        return e;
    };
    let names = ctx
        .catalog(crate::session::CATALOG)
        .and_then(|c| c.schema(crate::session::SCHEMA))
        .map(|s| s.table_names())
        .unwrap_or_default();
    match crate::error::nearest_table(missing, &names) {
        Some(name) => {
            let hint = format!("did you mean {name}? (table names are case-sensitive)");
            CliError::Hinted {
                error: Box::new(e),
                hint,
            }
        }
        None => e,
    }
}

/// A `COPY … TO` statement made ready: to a CSV file (`STORED AS CSV` or a
/// `.csv` target), columns CSV cannot hold (structs, lists, maps) become
/// their JSON text (`to_json`); and the target's path when the statement
/// creates it, to remove it again if the statement fails.
async fn prepare_copy(
    ctx: &SessionContext,
    statement: Statement,
) -> Result<(Statement, Option<PathBuf>), CliError> {
    let Statement::CopyTo(mut copy) = statement else {
        return Ok((statement, None));
    };
    let local = !copy.target.contains("://");
    let created = (local && !Path::new(&copy.target).exists()).then(|| PathBuf::from(&copy.target));
    let csv = match &copy.stored_as {
        Some(format) => format.eq_ignore_ascii_case("csv"),
        None => Path::new(&copy.target)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    if !csv {
        return Ok((Statement::CopyTo(copy), created));
    }
    let query = match &copy.source {
        CopyToSource::Query(q) => q.to_string(),
        CopyToSource::Relation(name) => format!("SELECT * FROM {name}"),
    };
    let plan = ctx.state().create_logical_plan(&query).await?;
    let fields = plan.schema().fields();
    if !fields.iter().any(|f| f.data_type().is_nested()) {
        return Ok((Statement::CopyTo(copy), created));
    }
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let columns: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = quote(f.name());
            if f.data_type().is_nested() {
                format!("to_json({name}) AS {name}")
            } else {
                name
            }
        })
        .collect();
    let select = format!("SELECT {} FROM ({query}) AS \"_copy\"", columns.join(", "));
    let mut parsed = DFParser::parse_sql_with_dialect(&select, &GenericDialect {})?;
    match parsed.pop_front() {
        Some(Statement::Statement(inner)) => match *inner {
            SqlStatement::Query(q) => copy.source = CopyToSource::Query(q),
            _ => {
                return Err(CliError::Setup(
                    "COPY: the rewritten query is not a query".into(),
                ));
            }
        },
        _ => {
            return Err(CliError::Setup(
                "COPY: the rewritten query did not parse".into(),
            ));
        }
    }
    Ok((Statement::CopyTo(copy), created))
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
    settings: &mut Settings,
) -> Result<Outcome, CliError> {
    let start = Instant::now();
    let format = settings.format;
    // Table and JSON output is printed once every row is in: a re-run
    // after a widened column is always invisible there.
    let options = match format {
        Format::Table | Format::Json => RunOptions::default().with_hold_back_bytes(usize::MAX),
        Format::Csv | Format::Ndjson => RunOptions::default(),
    };
    let view = (settings.maxrows, settings.expanded);
    let mut sink = PrintSink {
        format,
        view,
        printer: None,
        show_progress: settings.progress,
        progress: None,
        running: settings.running.clone(),
        out: &mut settings.output,
        rows: 0,
    };
    let outcome = dynamo_datafusion::run::run_statement(ctx, &statement, &options, &mut sink).await;
    sink.progress = None;
    sink.running.set(None);
    let outcome = outcome?;
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
        writes: WriteStats::of_plan(&outcome.plan),
    })
}

/// Prints a statement's result as it is delivered.
struct PrintSink<'a, W: Write> {
    format: Format,
    /// Most rows a table shows, and expanded display.
    view: (Option<usize>, bool),
    printer: Option<Printer>,
    /// Draw progress while the statement reads.
    show_progress: bool,
    /// The progress line, until the result prints.
    progress: Option<Progress>,
    /// Where the running plan is kept for Ctrl-C.
    running: Running,
    out: &'a mut W,
    rows: usize,
}

impl<W: Write> ResultSink for PrintSink<'_, W> {
    fn started(&mut self, plan: &std::sync::Arc<dyn ExecutionPlan>) {
        self.running.set(Some(std::sync::Arc::clone(plan)));
        if self.show_progress {
            self.progress = Some(Progress::watch(std::sync::Arc::clone(plan)));
        }
    }

    fn start(&mut self, schema: SchemaRef) -> datafusion::error::Result<()> {
        // The result prints from here: the progress line goes.
        self.progress = None;
        self.printer = Some(Printer::new(self.format, schema).with_view(self.view.0, self.view.1));
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
