//! `EXPLAIN` for a person at a terminal: the physical plan as an indented
//! tree, each DynamoDB read as a block of labelled lines with names and
//! values in place of their placeholders, instead of one 400-character
//! line. `EXPLAIN ANALYZE`, `EXPLAIN VERBOSE`, `EXPLAIN FORMAT …` and
//! output that is not a terminal keep DataFusion's own text.

use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{ExplainStatement, Statement};
use dynamo_datafusion::DynamoExec;

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
    let physical = dynamo_datafusion::plan_here(&state, &plan).await?;
    Ok(render(&physical))
}

/// `plan` as an indented tree; a DynamoDB read as a block.
pub fn render(plan: &Arc<dyn ExecutionPlan>) -> String {
    let mut out = String::new();
    walk(plan, 0, &mut out);
    out
}

fn walk(node: &Arc<dyn ExecutionPlan>, depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match (node.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoExec>() {
        Some(read) => {
            out.push_str(&format!("{indent}DynamoExec\n"));
            let lines = read.request_lines();
            let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
            for (label, value) in lines {
                out.push_str(&format!("{indent}  {label:>width$}: {value}\n"));
            }
        }
        None => {
            let line = displayable(node.as_ref()).one_line().to_string();
            out.push_str(&format!("{indent}{}\n", line.trim_end()));
        }
    }
    for child in node.children() {
        walk(child, depth + 1, out);
    }
}
