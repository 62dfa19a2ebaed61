//! A physical plan for a person: an indented tree, each DynamoDB read as a
//! block of labelled lines ([`DynamoExec::request_lines`]: names and values
//! in place of placeholders) instead of one long line. What `dynamo-sql`
//! prints for `EXPLAIN` at a terminal and what the Python package's
//! `explain` returns.

use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlan, displayable};

use crate::exec::DynamoExec;

/// `plan` as an indented tree; a DynamoDB read as a block.
///
/// ```no_run
/// # async fn demo(ctx: datafusion::prelude::SessionContext) -> datafusion::error::Result<()> {
/// let plan = ctx.sql("SELECT * FROM UserEngagement WHERE userId = '123015'").await?
///     .create_physical_plan().await?;
/// print!("{}", dynamo_datafusion::readable_plan(&plan));
/// // ProjectionExec: …
/// //   DynamoExec
/// //     operation: Query
/// //         table: UserEngagement
/// //           key: userId = "123015"
/// # Ok(()) }
/// ```
pub fn readable_plan(plan: &Arc<dyn ExecutionPlan>) -> String {
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
