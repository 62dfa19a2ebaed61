//! Nested projection: the fields of a map a query reads, and only those.
//!
//! DataFusion moves struct field access (`info['rating']`) into a projection
//! right above the scan. A read absorbs such a projection when each of its
//! expressions is a column or a chain of `get_field` with literal names: it
//! then asks DynamoDB for those document paths only (`#n0.#n1` in the
//! `ProjectionExpression`), decodes maps into structs pruned to the fields
//! read, and hands on the fields themselves. A field the query does not read
//! is never decoded, so a value there that the schema could not hold is
//! never met.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::projection::ProjectionExpr;

/// A column of the read's schema, and the field path into it (empty: all of it).
pub(crate) type Use = (usize, Vec<String>);

/// Each expression as a column and a path into it; `None` when any is
/// something else (then the projection is not absorbed).
pub(crate) fn uses_of(exprs: &[ProjectionExpr], input: &SchemaRef) -> Option<Vec<Use>> {
    if exprs.is_empty() {
        return None;
    }
    exprs.iter().map(|e| use_of(&e.expr, input)).collect()
}

fn use_of(expr: &Arc<dyn PhysicalExpr>, input: &SchemaRef) -> Option<Use> {
    if let Some(c) = expr.downcast_ref::<Column>() {
        return (input.fields().get(c.index())?.name() == c.name()).then(|| (c.index(), vec![]));
    }
    let f = expr.downcast_ref::<ScalarFunctionExpr>()?;
    let (base, keys) = f.args().split_first()?;
    if f.fun().name() != "get_field" || keys.is_empty() {
        return None;
    }
    let (column, mut path) = use_of(base, input)?;
    for key in keys {
        match key.downcast_ref::<Literal>()?.value() {
            ScalarValue::Utf8(Some(k))
            | ScalarValue::LargeUtf8(Some(k))
            | ScalarValue::Utf8View(Some(k)) => path.push(k.clone()),
            _ => return None,
        }
    }
    // Only paths through structs: a map column decoded as a struct.
    let mut field = input.field(column).clone();
    for step in &path {
        let DataType::Struct(children) = field.data_type() else {
            return None;
        };
        field = children.find(step)?.1.as_ref().clone();
    }
    Some((column, path))
}

/// What of each column is read: all of it, or some of its fields.
#[derive(Debug, Default)]
struct Node {
    whole: bool,
    children: BTreeMap<String, Node>,
}

impl Node {
    fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.whole = true,
            Some((head, rest)) => self.children.entry(head.clone()).or_default().insert(rest),
        }
    }

    /// `field` pruned to what is read.
    fn prune(&self, field: &Field) -> Field {
        let DataType::Struct(children) = field.data_type() else {
            return field.clone();
        };
        if self.whole {
            return field.clone();
        }
        let kept: Fields = children
            .iter()
            .filter_map(|c| Some(self.children.get(c.name())?.prune(c)))
            .collect();
        field.clone().with_data_type(DataType::Struct(kept))
    }

    /// The document paths to ask DynamoDB for, none overlapping.
    fn paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.whole || self.children.is_empty() {
            out.push(prefix.clone());
            return;
        }
        for (name, child) in &self.children {
            prefix.push(name.clone());
            child.paths(prefix, out);
            prefix.pop();
        }
    }
}

/// A projection absorbed into a read.
#[derive(Debug, Clone)]
pub(crate) struct NestedProjection {
    /// Per output column: its column in the read schema, and the path into it.
    pub(crate) outputs: Vec<Use>,
    /// The schema the read decodes into: the columns used, structs pruned.
    pub read_schema: SchemaRef,
    /// The document paths of the `ProjectionExpression`.
    pub paths: Vec<Vec<String>>,
    /// The schema handed on.
    pub output_schema: SchemaRef,
}

impl NestedProjection {
    /// A projection already worked out: `outputs` into `read_schema`,
    /// handing on `output_schema` (the read's paths are in its plan).
    pub(crate) fn from_parts(
        outputs: Vec<Use>,
        read_schema: SchemaRef,
        output_schema: SchemaRef,
    ) -> Self {
        Self {
            outputs,
            read_schema,
            paths: Vec::new(),
            output_schema,
        }
    }

    /// The read of `uses` from batches of `input`, handing on `output_schema`.
    pub(crate) fn new(input: &SchemaRef, uses: Vec<Use>, output_schema: SchemaRef) -> Self {
        let mut nodes: BTreeMap<usize, Node> = BTreeMap::new();
        for (column, path) in &uses {
            nodes.entry(*column).or_default().insert(path);
        }
        // Read columns keep the input's order.
        let position: BTreeMap<usize, usize> = nodes
            .keys()
            .enumerate()
            .map(|(i, column)| (*column, i))
            .collect();
        let fields: Vec<Field> = nodes
            .iter()
            .map(|(column, node)| node.prune(input.field(*column)))
            .collect();
        let mut paths = Vec::new();
        for (column, node) in &nodes {
            node.paths(&mut vec![input.field(*column).name().clone()], &mut paths);
        }
        let outputs = uses
            .into_iter()
            .map(|(column, path)| (position[&column], path))
            .collect();
        Self {
            outputs,
            read_schema: Arc::new(Schema::new(fields)),
            paths,
            output_schema,
        }
    }

    /// The output column that is all of read column `column`, if any.
    pub(crate) fn output_of_whole(&self, column: &str) -> Option<usize> {
        let read = self.read_schema.index_of(column).ok()?;
        self.outputs
            .iter()
            .position(|(c, path)| *c == read && path.is_empty())
    }

    /// The output batch of a decoded one: each column, or the field it names.
    pub(crate) fn project(&self, batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
        let columns = self
            .outputs
            .iter()
            .map(|(column, path)| {
                let mut array: ArrayRef = Arc::clone(batch.column(*column));
                for step in path {
                    let child = array
                        .as_struct_opt()
                        .and_then(|s| s.column_by_name(step))
                        .cloned()
                        .ok_or_else(|| {
                            ArrowError::SchemaError(format!("no field '{step}' in the read"))
                        })?;
                    array = child;
                }
                Ok(array)
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(Arc::clone(&self.output_schema), columns, &options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StructArray};

    fn input() -> SchemaRef {
        let info = DataType::Struct(Fields::from(vec![
            Field::new("rating", DataType::Int64, true),
            Field::new("genre", DataType::Utf8, true),
            Field::new(
                "deep",
                DataType::Struct(Fields::from(vec![Field::new("x", DataType::Int64, true)])),
                true,
            ),
        ]));
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("info", info, true),
        ]))
    }

    #[test]
    fn prunes_structs_to_the_fields_read_and_asks_for_disjoint_paths() {
        let input = input();
        let output = Arc::new(Schema::new(vec![
            Field::new("r", DataType::Int64, true),
            Field::new("x", DataType::Int64, true),
            Field::new("id", DataType::Utf8, false),
        ]));
        let p = NestedProjection::new(
            &input,
            vec![
                (1, vec!["rating".into()]),
                (1, vec!["deep".into(), "x".into()]),
                (0, vec![]),
            ],
            output,
        );
        assert_eq!(
            p.paths,
            vec![
                vec!["id".to_string()],
                vec!["info".into(), "deep".into(), "x".into()],
                vec!["info".into(), "rating".into()],
            ]
        );
        let DataType::Struct(kept) = p.read_schema.field(1).data_type() else {
            panic!("struct");
        };
        let names: Vec<&str> = kept.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["rating", "deep"], "input order, genre dropped");
        assert_eq!(p.output_of_whole("id"), Some(2));
        assert_eq!(p.output_of_whole("info"), None);
    }

    #[test]
    fn a_whole_column_wins_over_its_fields() {
        let input = input();
        let output = Arc::new(Schema::new(vec![Field::new("r", DataType::Int64, true)]));
        let p = NestedProjection::new(
            &input,
            vec![(1, vec!["rating".into()]), (1, vec![])],
            output,
        );
        assert_eq!(p.paths, vec![vec!["info".to_string()]]);
        assert_eq!(p.read_schema.field(0), input.field(1));
    }

    #[test]
    fn projects_fields_out_of_decoded_structs() {
        let read = Arc::new(Schema::new(vec![Field::new(
            "info",
            DataType::Struct(Fields::from(vec![Field::new(
                "rating",
                DataType::Int64,
                true,
            )])),
            true,
        )]));
        let info = StructArray::try_new(
            Fields::from(vec![Field::new("rating", DataType::Int64, true)]),
            vec![Arc::new(Int64Array::from(vec![Some(7), None]))],
            None,
        )
        .expect("struct");
        let batch = RecordBatch::try_new(Arc::clone(&read), vec![Arc::new(info)]).expect("batch");
        let output = Arc::new(Schema::new(vec![Field::new("r", DataType::Int64, true)]));
        let p = NestedProjection {
            outputs: vec![(0, vec!["rating".into()])],
            read_schema: read,
            paths: vec![],
            output_schema: output,
        };
        let out = p.project(&batch).expect("projects");
        let r = out
            .column(0)
            .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
        assert_eq!((r.value(0), r.is_null(1)), (7, true));
    }
}
