//! `EXPLAIN` for a person at a terminal: the physical plan as an indented
//! tree, each DynamoDB read as a block of labelled lines with names and
//! values in place of their placeholders, instead of one 400-character
//! line. `EXPLAIN ANALYZE`, `EXPLAIN VERBOSE`, `EXPLAIN FORMAT …` and
//! output that is not a terminal keep DataFusion's own text.

use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{ExplainStatement, Statement};

use crate::error::CliError;

/// The `EXPLAIN` this module prints, if `statement` is one (no ANALYZE,
/// VERBOSE or FORMAT).
pub fn plain_explain(statement: &Statement) -> Option<&ExplainStatement> {
    match statement {
        Statement::Explain(e)
            if !e.options.analyze && !e.options.verbose && e.options.format.is_none() =>
        {
            Some(e)
        }
        _ => None,
    }
}

/// Plans the explained statement and renders its physical plan.
pub async fn readable(
    ctx: &SessionContext,
    explain: &ExplainStatement,
) -> Result<String, CliError> {
    let state = ctx.state();
    let plan = state
        .statement_to_plan((*explain.statement).clone())
        .await?;
    // Planned here even on a cluster: its scheduler plans it the same way,
    // and the reads are what a person asking EXPLAIN wants to see.
    let physical = dynamo_datafusion::run::plan_here(&state, &plan).await?;
    Ok(dynamo_datafusion::readable_plan(&physical))
}
