//! A hash join's dynamic filter, read as conditions on the table's columns.
//!
//! DataFusion's hash join builds its (small) side first and publishes a
//! filter on the other side's join keys: each key's bounds, and for a small
//! build side an `IN` list of its key values (a `struct(…) IN (…)` list of
//! rows for a join on several columns; one filter per partition of a
//! partitioned join, inside a `CASE`). What that filter lets through is
//! read here as plain conditions — `device IN ('d1', 'd7')`, `ts >= 10 AND
//! ts <= 90`, `(customer = 'c1' AND orderId = 3) OR …` — that the planner
//! can turn into keys, an index Query or a FilterExpression. Every row the
//! filter passes meets them (they may pass more: the filter itself is
//! still applied to every row). Pure: the expression in, the conditions out.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, StructArray};
use datafusion::arrow::datatypes::Schema;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, Operator, lit};
use datafusion::physical_expr::expressions::{BinaryExpr, CaseExpr, Column, InListExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};

use crate::plan::MAX_BATCH_KEYS;

/// What a join filter says of the table's columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Implied {
    /// No row passes (the join's other side is empty).
    Nothing,
    /// Every row that passes meets all of these (none: nothing is known).
    Conditions(Vec<Expr>),
}

/// The conditions every row that `filter` passes meets, on the columns of
/// `table` — `filter` names the columns of `output`, the read's output; a
/// column counts only when the table has it with the same type.
pub(crate) fn implied_conditions(
    filter: &Arc<dyn PhysicalExpr>,
    output: &Schema,
    table: &Schema,
) -> Implied {
    let columns = Columns { output, table };
    match columns.facts(filter) {
        Facts::Never => Implied::Nothing,
        Facts::Known(facts) => {
            Implied::Conditions(facts.iter().flat_map(Fact::conditions).collect())
        }
    }
}

/// One thing known of the rows that pass.
#[derive(Debug, Clone, PartialEq)]
enum Fact {
    /// The column is one of these values (distinct, ordered, not NULL).
    In(String, Vec<ScalarValue>),
    /// The column is at least this value.
    AtLeast(String, ScalarValue),
    /// The column is at most this value.
    AtMost(String, ScalarValue),
    /// The columns together are one of these rows (distinct, no NULL).
    Rows(Vec<String>, Vec<Vec<ScalarValue>>),
}

/// What is known of the rows an expression passes.
#[derive(Debug, Clone, PartialEq)]
enum Facts {
    /// None pass.
    Never,
    /// Those that pass meet every fact (none: nothing is known).
    Known(Vec<Fact>),
}

impl Fact {
    /// The same subject (kind and columns): two facts that can be merged.
    fn same_subject(&self, other: &Fact) -> bool {
        match (self, other) {
            (Fact::In(a, _), Fact::In(b, _))
            | (Fact::AtLeast(a, _), Fact::AtLeast(b, _))
            | (Fact::AtMost(a, _), Fact::AtMost(b, _)) => a == b,
            (Fact::Rows(a, _), Fact::Rows(b, _)) => a == b,
            _ => false,
        }
    }

    /// Both facts hold (same subject); `None`: no row can meet both.
    fn both(self, other: Fact) -> Option<Fact> {
        Some(match (self, other) {
            (Fact::In(c, a), Fact::In(_, b)) => {
                let b: HashSet<ScalarValue> = b.into_iter().collect();
                let kept: Vec<ScalarValue> = a.into_iter().filter(|v| b.contains(v)).collect();
                if kept.is_empty() {
                    return None;
                }
                Fact::In(c, kept)
            }
            (Fact::AtLeast(c, a), Fact::AtLeast(_, b)) => {
                Fact::AtLeast(c, pick(a, b, Ordering::Greater)?)
            }
            (Fact::AtMost(c, a), Fact::AtMost(_, b)) => {
                Fact::AtMost(c, pick(a, b, Ordering::Less)?)
            }
            (Fact::Rows(c, a), Fact::Rows(_, b)) => {
                let b: HashSet<Vec<ScalarValue>> = b.into_iter().collect();
                let kept: Vec<Vec<ScalarValue>> = a.into_iter().filter(|r| b.contains(r)).collect();
                if kept.is_empty() {
                    return None;
                }
                Fact::Rows(c, kept)
            }
            (a, _) => a,
        })
    }

    /// One fact or the other holds (same subject): what holds either way;
    /// `None` when the two cannot be compared.
    fn either(self, other: Fact) -> Option<Fact> {
        Some(match (self, other) {
            (Fact::In(c, mut a), Fact::In(_, b)) => {
                a.extend(b);
                Fact::In(c, distinct(a)?)
            }
            (Fact::AtLeast(c, a), Fact::AtLeast(_, b)) => {
                Fact::AtLeast(c, pick(a, b, Ordering::Less)?)
            }
            (Fact::AtMost(c, a), Fact::AtMost(_, b)) => {
                Fact::AtMost(c, pick(a, b, Ordering::Greater)?)
            }
            (Fact::Rows(c, mut a), Fact::Rows(_, b)) => {
                let mut seen: HashSet<Vec<ScalarValue>> = a.iter().cloned().collect();
                a.extend(b.into_iter().filter(|row| seen.insert(row.clone())));
                Fact::Rows(c, a)
            }
            _ => return None,
        })
    }

    /// The fact as logical conditions on the table's columns. Rows also
    /// give each column's values, so a read by one of the keys can use them.
    fn conditions(&self) -> Vec<Expr> {
        let column = |name: &str| Expr::Column(datafusion::common::Column::new_unqualified(name));
        match self {
            Fact::In(c, values) => vec![in_list(column(c), values)],
            Fact::AtLeast(c, v) => vec![column(c).gt_eq(lit(v.clone()))],
            Fact::AtMost(c, v) => vec![column(c).lt_eq(lit(v.clone()))],
            Fact::Rows(columns, rows) => {
                let mut out = Vec::new();
                if rows.len() <= MAX_BATCH_KEYS {
                    let any_row = rows
                        .iter()
                        .filter_map(|row| {
                            columns
                                .iter()
                                .zip(row)
                                .map(|(c, v)| column(c).eq(lit(v.clone())))
                                .reduce(Expr::and)
                        })
                        .reduce(Expr::or);
                    out.extend(any_row);
                }
                for (i, c) in columns.iter().enumerate() {
                    if let Some(values) = distinct(rows.iter().map(|r| r[i].clone()).collect()) {
                        out.push(in_list(column(c), &values));
                    }
                }
                out
            }
        }
    }
}

/// `column = v`, or `column IN (…)` for several values.
fn in_list(column: Expr, values: &[ScalarValue]) -> Expr {
    match values {
        [one] => column.eq(lit(one.clone())),
        _ => column.in_list(values.iter().cloned().map(lit).collect(), false),
    }
}

/// `a` or `b`, whichever compares as `want` to the other; `None` when they
/// do not compare.
fn pick(a: ScalarValue, b: ScalarValue, want: Ordering) -> Option<ScalarValue> {
    match a.partial_cmp(&b)? {
        o if o == want => Some(a),
        _ => Some(b),
    }
}

/// `values` ordered and without repeats; `None` when two do not compare.
fn distinct(mut values: Vec<ScalarValue>) -> Option<Vec<ScalarValue>> {
    let mut comparable = true;
    values.sort_by(|a, b| {
        a.partial_cmp(b).unwrap_or_else(|| {
            comparable = false;
            Ordering::Equal
        })
    });
    values.dedup();
    comparable.then_some(values)
}

/// Both sets of facts hold.
fn and(a: Facts, b: Facts) -> Facts {
    let (Facts::Known(a), Facts::Known(b)) = (a, b) else {
        return Facts::Never;
    };
    let mut out: Vec<Fact> = a;
    for fact in b {
        match out.iter().position(|f| f.same_subject(&fact)) {
            Some(i) => match out[i].clone().both(fact) {
                Some(merged) => out[i] = merged,
                None => return Facts::Never,
            },
            None => out.push(fact),
        }
    }
    Facts::Known(out)
}

/// One set of facts or the other holds: what holds either way.
fn or(a: Facts, b: Facts) -> Facts {
    match (a, b) {
        (Facts::Never, x) | (x, Facts::Never) => x,
        (Facts::Known(a), Facts::Known(b)) => Facts::Known(
            a.into_iter()
                .filter_map(|fact| {
                    let other = b.iter().find(|g| g.same_subject(&fact))?;
                    fact.either(other.clone())
                })
                .collect(),
        ),
    }
}

/// The read's output columns, mapped to the table's.
struct Columns<'a> {
    output: &'a Schema,
    table: &'a Schema,
}

impl Columns<'_> {
    /// The table column `expr` is, when it is a column of the output that
    /// the table has with the same type.
    fn column(&self, expr: &Arc<dyn PhysicalExpr>) -> Option<String> {
        let c = expr.downcast_ref::<Column>()?;
        let field = self.output.fields().get(c.index())?;
        let in_table = self.table.field_with_name(field.name()).ok()?;
        (field.name() == c.name() && in_table.data_type() == field.data_type())
            .then(|| field.name().clone())
    }

    fn facts(&self, expr: &Arc<dyn PhysicalExpr>) -> Facts {
        let nothing_known = Facts::Known(Vec::new());
        if let Some(l) = expr.downcast_ref::<Literal>() {
            return match l.value() {
                v if v.is_null() || v == &ScalarValue::Boolean(Some(false)) => Facts::Never,
                _ => nothing_known,
            };
        }
        if let Some(b) = expr.downcast_ref::<BinaryExpr>() {
            return match b.op() {
                Operator::And => and(self.facts(b.left()), self.facts(b.right())),
                Operator::Or => or(self.facts(b.left()), self.facts(b.right())),
                op => self
                    .comparison(b.left(), *op, b.right())
                    .map_or(nothing_known, |f| Facts::Known(vec![f])),
            };
        }
        if let Some(list) = expr.downcast_ref::<InListExpr>() {
            return if list.negated() {
                nothing_known
            } else {
                self.membership(list)
            };
        }
        if let Some(case) = expr.downcast_ref::<CaseExpr>() {
            // Some branch's filter passes each row; no ELSE passes none.
            let mut all = case.else_expr().map_or(Facts::Never, |e| self.facts(e));
            for (_, then) in case.when_then_expr() {
                all = or(all, self.facts(then));
            }
            return all;
        }
        nothing_known
    }

    /// `column op literal` (either way round) as a fact.
    fn comparison(
        &self,
        left: &Arc<dyn PhysicalExpr>,
        op: Operator,
        right: &Arc<dyn PhysicalExpr>,
    ) -> Option<Fact> {
        let (column, value, op) = match (self.column(left), right.downcast_ref::<Literal>()) {
            (Some(c), Some(l)) => (c, l.value().clone(), op),
            _ => {
                let l = left.downcast_ref::<Literal>()?;
                (self.column(right)?, l.value().clone(), op.swap()?)
            }
        };
        if value.is_null() {
            return None;
        }
        match op {
            Operator::Eq => Some(Fact::In(column, vec![value])),
            Operator::GtEq | Operator::Gt => Some(Fact::AtLeast(column, value)),
            Operator::LtEq | Operator::Lt => Some(Fact::AtMost(column, value)),
            _ => None,
        }
    }

    /// An `IN` list on a column, or on `struct(columns…)`.
    fn membership(&self, list: &InListExpr) -> Facts {
        let nothing_known = Facts::Known(Vec::new());
        let mut literals = Vec::with_capacity(list.list().len());
        for item in list.list() {
            match item.downcast_ref::<Literal>() {
                Some(l) => literals.push(l.value()),
                None => return nothing_known,
            }
        }
        if let Some(column) = self.column(list.expr()) {
            let values: Vec<ScalarValue> = literals
                .into_iter()
                .filter(|v| !v.is_null())
                .cloned()
                .collect();
            if values.is_empty() {
                return Facts::Never;
            }
            return distinct(values)
                .map_or(nothing_known, |v| Facts::Known(vec![Fact::In(column, v)]));
        }
        let Some(f) = list.expr().downcast_ref::<ScalarFunctionExpr>() else {
            return nothing_known;
        };
        let columns: Option<Vec<String>> = (f.name() == "struct")
            .then(|| f.args().iter().map(|a| self.column(a)).collect())
            .flatten();
        let Some(columns) = columns else {
            return nothing_known;
        };
        let mut rows: Vec<Vec<ScalarValue>> = Vec::with_capacity(literals.len());
        let mut seen: HashSet<Vec<ScalarValue>> = HashSet::with_capacity(literals.len());
        for value in literals {
            let ScalarValue::Struct(s) = value else {
                return nothing_known;
            };
            match struct_row(s, columns.len()) {
                Some(Some(row)) => {
                    if seen.insert(row.clone()) {
                        rows.push(row);
                    }
                }
                // A NULL field matches no row of an equality join.
                Some(None) => {}
                None => return nothing_known,
            }
        }
        if rows.is_empty() {
            return Facts::Never;
        }
        Facts::Known(vec![Fact::Rows(columns, rows)])
    }
}

/// The one row of a struct literal: `Some(None)` when it or a field is NULL,
/// `None` when it is not a one-row struct of `width` fields.
fn struct_row(s: &StructArray, width: usize) -> Option<Option<Vec<ScalarValue>>> {
    if s.len() != 1 || s.num_columns() != width {
        return None;
    }
    if s.is_null(0) {
        return Some(None);
    }
    let mut row = Vec::with_capacity(width);
    for column in s.columns() {
        let v = ScalarValue::try_from_array(column, 0).ok()?;
        if v.is_null() {
            return Some(None);
        }
        row.push(v);
    }
    Some(Some(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Fields};
    use datafusion::logical_expr::col;
    use datafusion::physical_expr::expressions::{IsNullExpr, lit as plit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("device", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ])
    }

    fn device() -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new("device", 0))
    }

    fn n() -> Arc<dyn PhysicalExpr> {
        Arc::new(Column::new("n", 1))
    }

    fn in_list(values: &[Option<&str>]) -> Arc<dyn PhysicalExpr> {
        let array: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        Arc::new(
            InListExpr::try_new_from_array(device(), array, false, &schema()).expect("in list"),
        )
    }

    fn binary(
        l: Arc<dyn PhysicalExpr>,
        op: Operator,
        r: Arc<dyn PhysicalExpr>,
    ) -> Arc<dyn PhysicalExpr> {
        Arc::new(BinaryExpr::new(l, op, r))
    }

    fn bounds(low: i64, high: i64) -> Arc<dyn PhysicalExpr> {
        binary(
            binary(n(), Operator::GtEq, plit(low)),
            Operator::And,
            binary(n(), Operator::LtEq, plit(high)),
        )
    }

    fn implied(filter: &Arc<dyn PhysicalExpr>) -> Implied {
        implied_conditions(filter, &schema(), &schema())
    }

    fn conditions(exprs: Vec<Expr>) -> Implied {
        Implied::Conditions(exprs)
    }

    #[test]
    fn an_in_list_gives_its_distinct_values_without_nulls() {
        assert_eq!(
            implied(&in_list(&[Some("b"), Some("a"), None, Some("b")])),
            conditions(vec![col("device").in_list(vec![lit("a"), lit("b")], false)])
        );
        assert_eq!(
            implied(&in_list(&[Some("a")])),
            conditions(vec![col("device").eq(lit("a"))])
        );
        assert_eq!(
            implied(&in_list(&[None])),
            Implied::Nothing,
            "NULL matches nothing"
        );
    }

    #[test]
    fn bounds_and_lists_together_give_both() {
        let f = binary(bounds(3, 9), Operator::And, in_list(&[Some("a")]));
        assert_eq!(
            implied(&f),
            conditions(vec![
                col("n").gt_eq(lit(3i64)),
                col("n").lt_eq(lit(9i64)),
                col("device").eq(lit("a")),
            ])
        );
    }

    #[test]
    fn a_partitioned_joins_branches_give_what_holds_in_every_branch() {
        // CASE hash % 3 WHEN 0 THEN … WHEN 1 THEN … ELSE false END: the union.
        let branch =
            |low, high, v: &str| binary(bounds(low, high), Operator::And, in_list(&[Some(v)]));
        let case: Arc<dyn PhysicalExpr> = Arc::new(
            CaseExpr::try_new(
                Some(n()),
                vec![
                    (plit(0i64), branch(3, 9, "c")),
                    (plit(1i64), branch(1, 4, "a")),
                ],
                Some(plit(false)),
            )
            .expect("case"),
        );
        assert_eq!(
            implied(&case),
            conditions(vec![
                col("n").gt_eq(lit(1i64)),
                col("n").lt_eq(lit(9i64)),
                col("device").in_list(vec![lit("a"), lit("c")], false),
            ])
        );
        // A branch that knows nothing (a hash lookup, an empty build) makes
        // the union know nothing of that column.
        let unknown: Arc<dyn PhysicalExpr> = Arc::new(IsNullExpr::new(device()));
        let case: Arc<dyn PhysicalExpr> = Arc::new(
            CaseExpr::try_new(
                Some(n()),
                vec![
                    (plit(0i64), branch(3, 9, "c")),
                    (plit(1i64), binary(bounds(1, 4), Operator::And, unknown)),
                ],
                Some(plit(false)),
            )
            .expect("case"),
        );
        assert_eq!(
            implied(&case),
            conditions(vec![col("n").gt_eq(lit(1i64)), col("n").lt_eq(lit(9i64))])
        );
    }

    #[test]
    fn probe_nulls_kept_by_the_join_make_the_filter_say_nothing() {
        // `device IS NULL OR device IN (…)` (a null-aware anti join) passes
        // rows without a device: no condition may drop them.
        let f = binary(
            Arc::new(IsNullExpr::new(device())),
            Operator::Or,
            in_list(&[Some("a")]),
        );
        assert_eq!(implied(&f), conditions(vec![]));
    }

    #[test]
    fn a_struct_list_gives_its_rows_and_each_columns_values() {
        let fields = Fields::from(vec![
            Field::new("c0", DataType::Utf8, true),
            Field::new("c1", DataType::Int64, true),
        ]);
        let array: ArrayRef = Arc::new(StructArray::new(
            fields.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    Some("c"),
                ])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), Some(1), None])),
            ],
            None,
        ));
        let structure = Arc::new(ScalarFunctionExpr::new(
            "struct",
            datafusion::functions::core::r#struct(),
            vec![device(), n()],
            Arc::new(Field::new("struct", DataType::Struct(fields), true)),
            Arc::new(datafusion::config::ConfigOptions::default()),
        ));
        let f: Arc<dyn PhysicalExpr> = Arc::new(
            InListExpr::try_new_from_array(structure, array, false, &schema()).expect("in list"),
        );
        let row = |d: &str, v: i64| col("device").eq(lit(d)).and(col("n").eq(lit(v)));
        assert_eq!(
            implied(&f),
            conditions(vec![
                row("a", 1).or(row("b", 2)),
                col("device").in_list(vec![lit("a"), lit("b")], false),
                col("n").in_list(vec![lit(1i64), lit(2i64)], false),
            ])
        );
    }

    #[test]
    fn false_is_nothing_and_other_columns_or_types_are_unknown() {
        assert_eq!(implied(&plit(false)), Implied::Nothing);
        assert_eq!(implied(&plit(true)), conditions(vec![]));
        // The table has `device` as a number: the output's string is another column.
        let table = Schema::new(vec![
            Field::new("device", DataType::Int64, true),
            Field::new("n", DataType::Int64, true),
        ]);
        assert_eq!(
            implied_conditions(&in_list(&[Some("a")]), &schema(), &table),
            conditions(vec![])
        );
        // Disjoint lists: no row passes both.
        let f = binary(in_list(&[Some("a")]), Operator::And, in_list(&[Some("b")]));
        assert_eq!(implied(&f), Implied::Nothing);
    }
}
