//! The shape of one scan: from the schema, the query's projection and
//! filters and the planned read, what is decoded, what DynamoDB is asked
//! for, what is re-checked above the read, how many segments, and the limit
//! the read itself may stop at. Pure, so `scan()` is plan → guard → shape →
//! exec.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::logical_expr::Expr;

use super::{AccessPlan, Operation, ProjectionExpression};
use crate::metadata::TableMeta;
use crate::schema::infer::is_extra_field;

/// Top-level columns an expression reads, added to `out` once each.
pub(crate) fn expr_columns(e: &Expr, out: &mut Vec<String>) {
    for c in e.column_refs() {
        if !out.contains(&c.name) {
            out.push(c.name.clone());
        }
    }
}

/// The columns handed on (DataFusion's projection, all when `None`) and
/// the columns the planner must know the query needs (those and the
/// filters' columns).
pub(crate) fn query_columns(
    schema: &SchemaRef,
    projection: Option<&[usize]>,
    filters: &[Expr],
) -> (Vec<String>, Vec<String>) {
    let output: Vec<String> = match projection {
        Some(indices) => indices
            .iter()
            .map(|i| schema.field(*i).name().clone())
            .collect(),
        None => schema.fields().iter().map(|f| f.name().clone()).collect(),
    };
    let mut needed = output.clone();
    filters.iter().for_each(|f| expr_columns(f, &mut needed));
    (output, needed)
}

/// What one scan reads and hands on.
#[derive(Debug, Clone)]
pub(crate) struct ScanShape {
    /// Columns handed on, in order (the first columns of `read_schema`).
    pub output: Vec<String>,
    /// The filters (by position) the read does not enforce exactly: they are
    /// re-applied above it (DataFusion may have been told Exact for some of
    /// them when it asked about fewer filters).
    pub residual: Vec<usize>,
    /// What is decoded: the output columns, then what residual filters need.
    pub read_schema: SchemaRef,
    /// The `ProjectionExpression` (`None`: whole items).
    pub projection: Option<ProjectionExpression>,
    /// Parallel-scan segments (1 for every other operation).
    pub segments: u32,
    /// Items the read may stop after: the query's limit, when nothing is
    /// re-checked above the read.
    pub read_limit: Option<usize>,
}

impl ScanShape {
    /// The shape of reading `plan` for a query handing on `output`, with
    /// `filters` and `limit`; a full Scan uses `scan_segments` segments.
    pub(crate) fn of(
        meta: &TableMeta,
        schema: &SchemaRef,
        output: Vec<String>,
        filters: &[Expr],
        plan: &AccessPlan,
        limit: Option<usize>,
        scan_segments: u32,
    ) -> Result<Self, ArrowError> {
        let residual: Vec<usize> = plan
            .exact
            .iter()
            .enumerate()
            .filter(|(_, exact)| !**exact)
            .map(|(i, _)| i)
            .collect();
        let mut read_columns = output.clone();
        for &i in &residual {
            if let Some(f) = filters.get(i) {
                expr_columns(f, &mut read_columns);
            }
        }
        let read_indices = read_columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<Result<Vec<_>, _>>()?;
        let read_schema = std::sync::Arc::new(schema.project(&read_indices)?);
        let reads_extra = read_schema.fields().iter().any(|f| is_extra_field(f));
        let attributes = if read_columns.is_empty() {
            // Nothing needed but the row count: read the smallest thing there is.
            vec![meta.keys.partition_key.name.clone()]
        } else if reads_extra {
            // Every attribute, to find those the schema has no column for.
            vec![]
        } else {
            read_columns
        };
        let segments = match (&plan.operation, limit, residual.is_empty()) {
            // A limit is met fastest by one segment reading only that many items.
            (Operation::Scan, Some(_), true) => 1,
            (Operation::Scan, _, _) => scan_segments.max(1),
            _ => 1,
        };
        Ok(Self {
            read_limit: if residual.is_empty() { limit } else { None },
            output,
            residual,
            read_schema,
            projection: ProjectionExpression::new(attributes),
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::{col, lit};

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            crate::schema::infer::extra_field(),
        ]))
    }

    fn plan(exact: Vec<bool>) -> AccessPlan {
        AccessPlan {
            exact,
            ..AccessPlan::full_scan(0)
        }
    }

    #[test]
    fn residual_filters_add_the_columns_they_read_after_the_output() {
        let meta = TableMeta::hash_only("T", "id");
        let filters = [col("b").eq(lit("x")), col("a").gt(lit(1i64))];
        let (output, needed) = query_columns(&schema(), Some(&[1]), &filters);
        assert_eq!(
            (output.clone(), needed),
            (vec!["a".to_string()], vec!["a".into(), "b".into()])
        );
        let shape = ScanShape::of(
            &meta,
            &schema(),
            output,
            &filters,
            &plan(vec![false, true]),
            Some(5),
            4,
        )
        .expect("shape");
        assert_eq!(shape.residual, vec![0]);
        let names: Vec<&str> = shape
            .read_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(shape.read_limit, None, "a re-checked filter may drop rows");
        assert_eq!(shape.segments, 4);
        assert_eq!(
            shape.projection.map(|p| p.attributes()),
            Some(vec!["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn a_row_count_reads_the_partition_key_and_a_limit_one_segment() {
        let meta = TableMeta::hash_only("T", "id");
        let shape =
            ScanShape::of(&meta, &schema(), vec![], &[], &plan(vec![]), Some(3), 4).expect("shape");
        assert_eq!(
            shape.projection.map(|p| p.attributes()),
            Some(vec!["id".to_string()])
        );
        assert_eq!((shape.segments, shape.read_limit), (1, Some(3)));
    }

    #[test]
    fn the_extra_attributes_column_reads_whole_items() {
        let meta = TableMeta::hash_only("T", "id");
        let shape = ScanShape::of(
            &meta,
            &schema(),
            vec!["id".into(), "_extra".into()],
            &[],
            &plan(vec![]),
            None,
            2,
        )
        .expect("shape");
        assert!(shape.projection.is_none());
        assert_eq!(shape.segments, 2);
    }
}
