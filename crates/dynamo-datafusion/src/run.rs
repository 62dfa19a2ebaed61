//! Running a statement so that a value the schema sample missed never fails it.
//!
//! A read that meets a value its inferred column cannot hold widens the
//! column and fails with [`Error::SchemaWidened`] (see [`crate::schema::widen`]).
//! [`run_statement`] then plans the statement again — the tables now answer
//! with the widened schema — and runs it again, saying so in a notice.
//!
//! A re-run is only invisible while nothing has been handed on: results are
//! held back until the statement ends, or until `hold_back_bytes` of batches
//! (or more rows than the sink will take) have arrived. A column that widens
//! after results started flowing still fails the statement, with the same
//! error; the widened schema is kept, so running it again succeeds.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, execute_stream};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement;
use futures::StreamExt;

use crate::config::DynamoConfig;
use crate::error::Error;
use crate::exec::ceiling_rule::refuse_over_ceiling;
use crate::exec::stats::scan_warnings;

/// Where [`run_statement`] delivers a result.
pub trait ResultSink {
    /// Called once, before any batch, with the result's schema.
    fn start(&mut self, schema: SchemaRef) -> DfResult<()>;
    /// Called for each batch, in order; `Ok(false)` stops the statement.
    fn batch(&mut self, batch: RecordBatch) -> DfResult<bool>;
    /// The sink stops after this many rows at most: holding back more is pointless.
    fn row_bound(&self) -> Option<usize> {
        None
    }
    /// A warning about the statement, said before it reads (e.g. a large
    /// full Scan above `dynamodb.warn_rcu`); logged unless the sink shows it.
    fn warning(&mut self, text: &str) {
        log::warn!("{text}");
    }
    /// Called with the physical plan just before it runs: its metrics
    /// ([`crate::ReadStats::of_plan`]) count the reads as they happen, for a
    /// progress display.
    fn started(&mut self, _plan: &Arc<dyn ExecutionPlan>) {}
}

/// A [`ResultSink`] that keeps every batch (and the schema).
#[derive(Debug, Default)]
pub struct CollectSink {
    /// The result's schema, once started.
    pub schema: Option<SchemaRef>,
    /// The batches, in order.
    pub batches: Vec<RecordBatch>,
}

impl ResultSink for CollectSink {
    fn start(&mut self, schema: SchemaRef) -> DfResult<()> {
        self.schema = Some(schema);
        Ok(())
    }

    fn batch(&mut self, batch: RecordBatch) -> DfResult<bool> {
        self.batches.push(batch);
        Ok(true)
    }
}

/// How [`run_statement`] runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// Batches are held back up to this many bytes, so that a re-run after a
    /// widened column is invisible to the sink.
    pub hold_back_bytes: usize,
    /// At most this many re-runs per statement (each one follows a widening,
    /// and the schema only widens, so this is a safety net).
    pub max_reruns: usize,
    /// What the statement may do (e.g. reads only); `None` allows everything.
    pub sql_options: Option<SQLOptions>,
}

impl RunOptions {
    /// These options holding back at most `bytes` of batches.
    pub fn with_hold_back_bytes(mut self, bytes: usize) -> Self {
        self.hold_back_bytes = bytes;
        self
    }

    /// These options allowing only what `sql_options` allows.
    pub fn with_sql_options(mut self, sql_options: SQLOptions) -> Self {
        self.sql_options = Some(sql_options);
        self
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            hold_back_bytes: 64 * 1024 * 1024,
            max_reruns: 8,
            sql_options: None,
        }
    }
}

/// What running a statement did besides its result.
#[derive(Debug)]
pub struct RunOutcome {
    /// The physical plan of the last run (read statistics come from it).
    pub plan: Arc<dyn ExecutionPlan>,
    /// One line per widened column that made the statement run again.
    pub notices: Vec<String>,
    /// How often the statement was planned and run again.
    pub reruns: usize,
}

/// Plans and runs `statement`, delivering its result to `sink`, and runs it
/// again when a column widens before any result was delivered.
///
/// ```no_run
/// # async fn demo(ctx: datafusion::prelude::SessionContext) -> datafusion::error::Result<()> {
/// use dynamo_datafusion::run::{CollectSink, RunOptions, run_statement};
///
/// let statement = ctx.state().sql_to_statement("SELECT count(*) FROM Movies", &datafusion::config::Dialect::Generic)?;
/// let mut sink = CollectSink::default();
/// let outcome = run_statement(&ctx, &statement, &RunOptions::default(), &mut sink).await?;
/// for notice in outcome.notices {
///     eprintln!("Notice: {notice}");
/// }
/// # Ok(()) }
/// ```
pub async fn run_statement<S: ResultSink + ?Sized>(
    ctx: &SessionContext,
    statement: &Statement,
    options: &RunOptions,
    sink: &mut S,
) -> DfResult<RunOutcome> {
    let mut notices = Vec::new();
    // Warnings already said (a re-run plans the same reads again).
    let mut warned = Vec::new();
    loop {
        let reruns = notices.len();
        match run_once(ctx, statement, options, sink, &mut warned).await {
            Ok(plan) => {
                notices.extend(bad_time_notices(&plan));
                notices.extend(skipped_write_notices(&plan));
                return Ok(RunOutcome {
                    plan,
                    notices,
                    reruns,
                });
            }
            Err(Failure::Widened(e)) if reruns < options.max_reruns => {
                notices.push(widening_notice(&e));
            }
            Err(Failure::Widened(e) | Failure::Other(e)) => return Err(e),
        }
    }
}

/// A notice per table whose read met values not in their time format and
/// read them as NULL, as the table asked (`on_bad_time = 'null'`).
fn bad_time_notices(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    crate::exec::ReadStats::by_table(plan)
        .into_iter()
        .filter(|(_, stats)| stats.bad_time_values > 0)
        .map(|(table, stats)| {
            format!(
                "table '{table}': {} values were not in their column's time format and read as \
                 NULL (on_bad_time = 'null')",
                stats.bad_time_values
            )
        })
        .collect()
}

/// A notice per table an UPDATE or DELETE left items of as they were:
/// they changed (or went) between the statement's read and its write.
fn skipped_write_notices(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    crate::write::WriteStats::by_table(plan)
        .into_iter()
        .filter(|(_, stats)| stats.items_skipped > 0)
        .map(|(table, stats)| {
            format!(
                "table '{table}': {} items were left as they were: they changed or were \
                 deleted between the statement's read and its write (not counted)",
                stats.items_skipped
            )
        })
        .collect()
}

/// Why one run ended without a result.
enum Failure {
    /// A column widened before anything reached the sink: run again.
    Widened(DataFusionError),
    Other(DataFusionError),
}

impl Failure {
    fn of(e: DataFusionError, delivered: bool) -> Self {
        let widened = matches!(Error::find_in(&e), Some(Error::SchemaWidened { .. }));
        if widened && !delivered {
            Failure::Widened(e)
        } else {
            Failure::Other(e)
        }
    }
}

async fn run_once<S: ResultSink + ?Sized>(
    ctx: &SessionContext,
    statement: &Statement,
    options: &RunOptions,
    sink: &mut S,
    warned: &mut Vec<String>,
) -> Result<Arc<dyn ExecutionPlan>, Failure> {
    let early = |e| Failure::of(e, false);
    let state = ctx.state();
    let plan = state
        .statement_to_plan(statement.clone())
        .await
        .map_err(early)?;
    if let Some(allowed) = &options.sql_options {
        allowed.verify_plan(&plan).map_err(early)?;
    }
    // `SET`/`RESET` of a `dynamodb.` setting, which DataFusion cannot reset.
    let plan = match crate::config::apply_setting_statement(ctx, &plan) {
        Some(done) => {
            done.map_err(early)?;
            datafusion::logical_expr::LogicalPlan::EmptyRelation(
                datafusion::logical_expr::EmptyRelation {
                    produce_one_row: false,
                    schema: Arc::new(datafusion::common::DFSchema::empty()),
                },
            )
        }
        None => plan,
    };
    // DDL and `SET` take effect here; queries only build their plan.
    let df = ctx.execute_logical_plan(plan).await.map_err(early)?;
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let task = Arc::new(df.task_ctx());
    let logical = df.logical_plan().clone();
    let settings = state.config().options().extensions.get::<DynamoConfig>();
    // A cluster runs the reads: the same statement planned here shows them,
    // so EXPLAIN shows them and the ceiling and warnings act before any job
    // is sent.
    let here = match settings.is_some_and(|s| s.distributed) {
        true => Some(plan_here(&state, &logical).await.map_err(early)?),
        false => None,
    };
    let explain = matches!(logical, LogicalPlan::Explain(_));
    let physical = match &here {
        Some(planned) if explain => Arc::clone(planned),
        _ => df.create_physical_plan().await.map_err(early)?,
    };
    let reads = match here {
        Some(planned) => {
            if !explain {
                refuse_over_ceiling(&planned).map_err(|e| early(e.into()))?;
            }
            planned
        }
        None => Arc::clone(&physical),
    };
    if let Some(threshold) = settings.and_then(|c| c.warn_rcu) {
        for warning in scan_warnings(&reads, threshold) {
            if !warned.contains(&warning) {
                sink.warning(&warning);
                warned.push(warning);
            }
        }
    }
    sink.started(&physical);
    let mut stream = execute_stream(Arc::clone(&physical), task).map_err(early)?;

    let mut held: Vec<RecordBatch> = Vec::new();
    let (mut held_bytes, mut held_rows) = (0usize, 0usize);
    let mut delivering = false;
    while let Some(next) = stream.next().await {
        let batch = next.map_err(|e| Failure::of(e, delivering))?;
        if delivering {
            if !sink.batch(batch).map_err(Failure::Other)? {
                return Ok(physical);
            }
            continue;
        }
        held_bytes += batch.get_array_memory_size();
        held_rows += batch.num_rows();
        held.push(batch);
        let enough_rows = sink.row_bound().is_some_and(|bound| held_rows > bound);
        if held_bytes > options.hold_back_bytes || enough_rows {
            delivering = true;
            if !deliver(sink, &schema, std::mem::take(&mut held))? {
                return Ok(physical);
            }
        }
    }
    if !delivering {
        deliver(sink, &schema, held)?;
    }
    Ok(physical)
}

/// `plan` planned in this process with `state`'s settings and rules, even
/// when `state` sends its statements to a cluster: what a cluster's
/// scheduler plans for it (the same planner and settings), with its
/// DynamoDB reads in view — for `EXPLAIN`, the ceiling and warnings before
/// a job is sent.
///
/// ```no_run
/// # async fn demo(ctx: datafusion::prelude::SessionContext) -> datafusion::error::Result<()> {
/// let state = ctx.state();
/// let logical = state.create_logical_plan("SELECT count(*) FROM Movies").await?;
/// let physical = dynamo_datafusion::run::plan_here(&state, &logical).await?;
/// println!("{}", datafusion::physical_plan::displayable(physical.as_ref()).indent(true));
/// # Ok(()) }
/// ```
pub async fn plan_here(
    state: &SessionState,
    plan: &LogicalPlan,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    // As SessionState::create_physical_plan does, with DataFusion's planner
    // in place of the session's (a cluster client's sends the plan away).
    let optimized = state.optimize(plan)?;
    DefaultPhysicalPlanner::default()
        .create_physical_plan(&optimized, state)
        .await
}

/// Starts the sink and hands it the held batches; false when it stopped.
fn deliver<S: ResultSink + ?Sized>(
    sink: &mut S,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<bool, Failure> {
    sink.start(Arc::clone(schema)).map_err(Failure::Other)?;
    for batch in batches {
        if !sink.batch(batch).map_err(Failure::Other)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn widening_notice(e: &DataFusionError) -> String {
    match Error::find_in(e) {
        Some(Error::SchemaWidened {
            table,
            changes,
            attribute,
            value,
            ..
        }) => format!(
            "table '{table}': {changes}, to hold {value} at '{attribute}' (not in the schema \
             sample); the statement ran again"
        ),
        _ => e.to_string(),
    }
}
