//! Unit tests of the pushdown planner: every rule and its refusals.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue as AV;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::{Expr, col, ident, lit};

use super::*;
use crate::metadata::TableMeta;

fn meta() -> TableMeta {
    super::fixture::orders_meta()
}

fn schema() -> SchemaRef {
    super::fixture::orders_schema()
}

/// Plans `filters` over `meta`'s table with `schema`, for a query needing `columns`.
fn plan_full(
    meta: &TableMeta,
    schema: &SchemaRef,
    filters: &[Expr],
    columns: &[&str],
    options: &PlanOptions,
) -> AccessPlan {
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    plan_access(meta, schema, filters, &columns, options)
}

fn plan_with(filters: &[Expr], columns: &[&str], options: &PlanOptions) -> AccessPlan {
    plan_full(&meta(), &schema(), filters, columns, options)
}

/// Plans `filters` over another table or schema, default options.
fn plan_on(meta: &TableMeta, schema: &SchemaRef, filters: &[Expr], columns: &[&str]) -> AccessPlan {
    plan_full(meta, schema, filters, columns, &PlanOptions::default())
}

fn plan(filters: &[Expr], columns: &[&str]) -> AccessPlan {
    plan_with(filters, columns, &PlanOptions::default())
}

fn s(v: &str) -> AV {
    AV::S(v.into())
}

fn n(v: &str) -> AV {
    AV::N(v.into())
}

fn key_text(p: &AccessPlan) -> String {
    match &p.operation {
        Operation::Query {
            keys,
            partition_values,
            sort,
            ..
        } => {
            let mut b = ExpressionBuilder::default();
            render_key_condition(keys, &partition_values[0], sort.as_ref(), &mut b)
        }
        other => other.name().to_string(),
    }
}

fn filter_text(p: &AccessPlan) -> Option<String> {
    p.render_filter(&mut ExpressionBuilder::default())
}

#[test]
fn partition_key_equality_is_an_exact_query() {
    let p = plan(&[col("customer").eq(lit("c1"))], &["customer", "note"]);
    assert_eq!(
        p.operation,
        Operation::Query {
            index: None,
            keys: meta().keys,
            partition_values: vec![s("c1")],
            sort: None
        }
    );
    assert_eq!(p.exact, vec![true]);
    assert_eq!(key_text(&p), "#n0 = :v0");
    assert_eq!(p.ordered_by(), Some("orderId"));
}

#[test]
fn full_key_is_get_item() {
    let p = plan(
        &[
            col("customer").eq(lit("c1")),
            ident("orderId").eq(lit(7i64)),
        ],
        &["note"],
    );
    assert_eq!(
        p.operation,
        Operation::GetItem {
            key: vec![("customer".into(), s("c1")), ("orderId".into(), n("7"))]
        }
    );
    assert_eq!(p.exact, vec![true, true]);
    assert!(!p.has_filter(), "GetItem has no FilterExpression");
}

#[test]
fn lists_of_full_keys_are_batch_get_item() {
    let p = plan(
        &[
            col("customer").in_list(vec![lit("a"), lit("b"), lit("a")], false),
            ident("orderId").in_list(vec![lit(1i64), lit(2i64)], false),
        ],
        &["note"],
    );
    let Operation::BatchGetItem { keys } = &p.operation else {
        panic!("{p:?}")
    };
    assert_eq!(keys.len(), 4, "duplicates removed, cross product of 2 x 2");
    assert_eq!(p.exact, vec![true, true]);

    let either = (col("customer")
        .eq(lit("a"))
        .and(ident("orderId").eq(lit(1i64))))
    .or(col("customer")
        .eq(lit("b"))
        .and(ident("orderId").eq(lit(2i64))));
    let p = plan(&[either], &["note"]);
    assert!(
        matches!(&p.operation, Operation::BatchGetItem { keys } if keys.len() == 2),
        "{p:?}"
    );
    assert_eq!(p.exact, vec![true]);
}

#[test]
fn partition_key_lists_become_one_query_each() {
    let p = plan(
        &[col("customer").in_list(vec![lit("a"), lit("b"), lit("b")], false)],
        &["note"],
    );
    assert!(
        matches!(&p.operation, Operation::Query { partition_values, .. } if partition_values.len() == 2)
    );
    assert_eq!(p.exact, vec![true]);
    assert_eq!(p.ordered_by(), None, "a union of queries has no order");
    let p = plan(
        &[col("customer")
            .eq(lit("a"))
            .or(col("customer").eq(lit("b")))],
        &["note"],
    );
    assert!(
        matches!(&p.operation, Operation::Query { partition_values, .. } if partition_values.len() == 2)
    );
}

#[test]
fn several_lists_on_a_key_read_the_values_all_allow() {
    // A query's own list and a join's keys: both enforced by one read.
    let customers =
        |v: &[&str]| col("customer").in_list(v.iter().map(|c| lit(*c)).collect(), false);
    let p = plan(
        &[customers(&["a", "b", "c"]), customers(&["b", "c", "d"])],
        &["note"],
    );
    assert_eq!(
        p.operation,
        Operation::Query {
            index: None,
            keys: meta().keys,
            partition_values: vec![s("b"), s("c")],
            sort: None,
        }
    );
    assert_eq!(p.exact, vec![true, true]);
    // No value in common: nothing to read, and nothing is read.
    let p = plan(&[customers(&["a"]), customers(&["b"])], &["note"]);
    assert!(
        matches!(&p.operation, Operation::Query { partition_values, .. } if partition_values.is_empty()),
        "{:?}",
        p.operation
    );
    assert_eq!(p.exact, vec![true, true]);
    assert!(p.partitions(1, 4).iter().all(Vec::is_empty));
}

#[test]
fn sort_key_ranges() {
    let pk = col("customer").eq(lit("c"));
    for (cond, text) in [
        (ident("orderId").gt(lit(5i64)), "#n0 = :v0 AND #n1 > :v1"),
        (
            ident("orderId").lt_eq(lit(5i64)),
            "#n0 = :v0 AND #n1 <= :v1",
        ),
        (
            ident("orderId").between(lit(1i64), lit(9i64)),
            "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
        ),
    ] {
        let p = plan(&[pk.clone(), cond], &["note"]);
        assert_eq!(key_text(&p), text);
        assert_eq!(p.exact, vec![true, true]);
    }
    // A two-sided range becomes BETWEEN; the strict side is re-checked by DataFusion.
    let p = plan(
        &[
            pk.clone(),
            ident("orderId").gt_eq(lit(3i64)),
            ident("orderId").lt(lit(8i64)),
        ],
        &["note"],
    );
    assert_eq!(key_text(&p), "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2");
    assert_eq!(p.exact, vec![true, true, false]);
    // The tighter of two lower bounds is used.
    let p = plan(
        &[
            pk.clone(),
            ident("orderId").gt(lit(3i64)),
            ident("orderId").gt(lit(6i64)),
        ],
        &["note"],
    );
    let Operation::Query { sort, .. } = &p.operation else {
        panic!()
    };
    assert_eq!(sort, &Some(SortCondition::Compare(CmpOp::Gt, n("6"))));
    assert_eq!(p.exact, vec![true, false, true]);
    // Sort key equality wins over ranges (and makes a GetItem here).
    let p = plan(
        &[
            pk,
            ident("orderId").eq(lit(4i64)),
            ident("orderId").gt(lit(1i64)),
        ],
        &["note"],
    );
    assert!(matches!(p.operation, Operation::GetItem { .. }));
}

#[test]
fn like_prefix_on_a_string_sort_key_is_begins_with() {
    let p = plan(
        &[
            col("customer").eq(lit("c")),
            col("placed").like(lit("2026-01%")),
        ],
        &["customer", "placed"],
    );
    // The LSI on `placed` reads only the matching dates.
    assert!(
        matches!(&p.operation, Operation::Query { index: Some(i), .. } if i == "byDate"),
        "{p:?}"
    );
    assert_eq!(key_text(&p), "#n0 = :v0 AND begins_with(#n1, :v1)");
    assert_eq!(p.exact, vec![true, true]);
}

#[test]
fn non_key_conditions_go_to_the_filter_and_stay_inexact() {
    let p = plan(
        &[
            col("customer").eq(lit("c")),
            col("note").eq(lit("x")),
            col("price").gt(lit(1.0)),
        ],
        &["note"],
    );
    assert_eq!(filter_text(&p).as_deref(), Some("#n0 = :v0"));
    assert_eq!(p.exact, vec![true, false, false]);
}

#[test]
fn key_attributes_never_reach_a_query_filter() {
    let p = plan(
        &[
            col("customer").eq(lit("c")),
            ident("orderId").not_eq(lit(5i64)),
        ],
        &["note"],
    );
    assert!(matches!(p.operation, Operation::Query { .. }));
    assert_eq!(
        filter_text(&p),
        None,
        "orderId <> 5 cannot be a Query filter"
    );
    assert_eq!(p.exact, vec![true, false]);
}

#[test]
fn scans_filter_on_anything_translatable() {
    let p = plan(
        &[
            col("customer").gt(lit("m")),
            col("note").like(lit("%urgent%")),
        ],
        &["note"],
    );
    assert_eq!(p.operation, Operation::Scan);
    assert_eq!(
        filter_text(&p).as_deref(),
        Some("(#n0 > :v0 AND contains(#n1, :v1))")
    );
    assert_eq!(p.exact, vec![false, false]);
}

#[test]
fn a_gsi_is_used_when_it_holds_every_answer_and_column() {
    // status = 'open' AND total > 10: both GSI keys are constrained.
    let filters = [
        col("status").eq(lit("open")),
        col("total").gt(lit(ScalarValue::Decimal128(Some(1000), 38, 2))),
    ];
    let p = plan(
        &filters,
        &["customer", "orderId", "note", "status", "total"],
    );
    assert!(
        matches!(&p.operation, Operation::Query { index: Some(i), .. } if i == "byStatus"),
        "{p:?}"
    );
    assert_eq!(key_text(&p), "#n0 = :v0 AND #n1 > :v1");
    assert_eq!(p.exact, vec![true, true]);
    assert_eq!(p.ordered_by(), Some("total"));

    // The GSI has a sort key nothing constrains: items without `total` are not in it.
    let p = plan(&[col("status").eq(lit("open"))], &["note"]);
    assert_eq!(
        p.operation,
        Operation::Scan,
        "a sparse index must never drop rows"
    );
    assert!(filter_text(&p).is_some());

    // IS NULL does not reject missing values.
    let p = plan(
        &[col("status").eq(lit("open")), col("total").is_null()],
        &["note"],
    );
    assert_eq!(p.operation, Operation::Scan);

    // The GSI does not project `placed`.
    let p = plan(&filters, &["placed"]);
    assert_eq!(p.operation, Operation::Scan);

    // KEYS_ONLY holds index and table keys only.
    let p = plan(
        &[col("region").eq(lit("eu"))],
        &["customer", "orderId", "region"],
    );
    assert!(matches!(&p.operation, Operation::Query { index: Some(i), .. } if i == "byRegion"));
    let p = plan(&[col("region").eq(lit("eu"))], &["note"]);
    assert_eq!(p.operation, Operation::Scan);
}

#[test]
fn ties_go_to_the_table_and_better_reads_win() {
    // Both the table and byRegion answer with a key-only Query: the table wins.
    let p = plan(
        &[col("customer").eq(lit("c")), col("region").eq(lit("eu"))],
        &["customer", "orderId", "region"],
    );
    assert!(matches!(&p.operation, Operation::Query { index: None, .. }));
    assert_eq!(p.exact, vec![true, false]);
    assert_eq!(filter_text(&p).as_deref(), Some("#n0 = :v0"));
    // The LSI adds a sort condition the table cannot use: it wins.
    let p = plan(
        &[
            col("customer").eq(lit("c")),
            col("placed").gt_eq(lit("2026")),
        ],
        &["note"],
    );
    assert!(matches!(&p.operation, Operation::Query { index: Some(i), .. } if i == "byDate"));
}

#[test]
fn index_policy_and_consistent_reads() {
    let filters = [col("region").eq(lit("eu"))];
    let cols = ["customer", "region"];
    let never = PlanOptions {
        index: IndexPolicy::Never,
        ..PlanOptions::default()
    };
    assert_eq!(
        plan_with(&filters, &cols, &never).operation,
        Operation::Scan
    );
    let other = PlanOptions {
        index: IndexPolicy::Only("byStatus".into()),
        ..PlanOptions::default()
    };
    assert_eq!(
        plan_with(&filters, &cols, &other).operation,
        Operation::Scan
    );
    let only = PlanOptions {
        index: IndexPolicy::Only("byRegion".into()),
        ..PlanOptions::default()
    };
    assert!(matches!(
        plan_with(&filters, &cols, &only).operation,
        Operation::Query { .. }
    ));
    let consistent = PlanOptions {
        consistent_read: true,
        ..PlanOptions::default()
    };
    assert_eq!(
        plan_with(&filters, &cols, &consistent).operation,
        Operation::Scan,
        "GSIs are eventually consistent"
    );
    // LSIs support consistent reads.
    let p = plan_with(
        &[col("customer").eq(lit("c")), col("placed").gt(lit("a"))],
        &["note"],
        &consistent,
    );
    assert!(matches!(&p.operation, Operation::Query { index: Some(i), .. } if i == "byDate"));
}

#[test]
fn pushdown_off_scans_and_claims_nothing() {
    let off = PlanOptions {
        pushdown: false,
        ..PlanOptions::default()
    };
    let p = plan_with(
        &[col("customer").eq(lit("c")), col("note").eq(lit("x"))],
        &["note"],
        &off,
    );
    assert_eq!(p.operation, Operation::Scan);
    assert!(!p.has_filter());
    assert_eq!(p.exact, vec![false, false]);
}

#[test]
fn literal_types_must_match_key_types() {
    // orderId is N: a string literal cannot be part of its key condition.
    let p = plan(
        &[col("customer").eq(lit("c")), ident("orderId").eq(lit("7"))],
        &["note"],
    );
    assert!(
        matches!(&p.operation, Operation::Query { sort: None, .. }),
        "{p:?}"
    );
    assert_eq!(p.exact, vec![true, false]);
    // A float literal on a key stays with DataFusion.
    let p = plan(
        &[
            col("customer").eq(lit("c")),
            ident("orderId").gt(lit(1.5f64)),
        ],
        &["note"],
    );
    assert!(matches!(&p.operation, Operation::Query { sort: None, .. }));
}

#[test]
fn filters_that_are_too_big_are_trimmed_not_failed() {
    let long = "x".repeat(1_500);
    let filters: Vec<Expr> = (0..5)
        .map(|i| col("note").not_eq(lit(format!("{long}{i}"))))
        .collect();
    let p = plan(&filters, &["note"]);
    let f = p.filter.clone().expect("some filter kept");
    // Values are placeholders, so even huge literals fit; all 5 conjuncts stay.
    assert!(matches!(f, Cond::And(ref v) if v.len() == 5));
    // Operator budget: 110 IN lists of 2 values... each IS NOT NULL costs 3 operators.
    let many: Vec<Expr> = (0..120)
        .map(|i| {
            col("note")
                .is_not_null()
                .and(col("region").not_eq(lit(format!("r{i}"))))
        })
        .collect();
    let p = plan(&many, &["note"]);
    let mut ops = 0;
    let text = p
        .render_filter(&mut ExpressionBuilder::default())
        .expect("filter");
    let _ = ExpressionBuilder::default().condition(p.filter.as_ref().expect("filter"), &mut ops);
    assert!(
        ops <= MAX_EXPRESSION_OPERATORS && text.len() <= MAX_EXPRESSION_BYTES,
        "{ops} ops, {} bytes",
        text.len()
    );
    assert!(p.exact.iter().all(|e| !e));
}

use datafusion::common::ScalarValue;

#[test]
fn empty_strings_never_become_key_values() {
    // DynamoDB rejects an empty string in a key or key condition, and no item has one.
    let p = plan(&[col("customer").eq(lit(""))], &["customer"]);
    assert_eq!(p.operation, Operation::Scan);
    let p = plan(
        &[col("customer").in_list(vec![lit(""), lit("c1")], false)],
        &["customer"],
    );
    match &p.operation {
        Operation::Query {
            partition_values, ..
        } => assert_eq!(partition_values, &vec![s("c1")]),
        other => panic!("expected a Query, got {other:?}"),
    }
    let p = plan(
        &[
            col("customer").eq(lit("c1")),
            col("placed").gt(lit("")),
            col("status").eq(lit("")),
        ],
        &["customer", "placed", "status"],
    );
    let mut b = ExpressionBuilder::default();
    if let Operation::Query {
        keys,
        partition_values,
        sort,
        ..
    } = &p.operation
    {
        render_key_condition(keys, &partition_values[0], sort.as_ref(), &mut b);
    } else {
        panic!("expected a Query, got {:?}", p.operation);
    }
    assert!(
        b.values().iter().all(|v| v != &s("")),
        "an empty string in a key condition: {:?}",
        b.values()
    );
    let p = plan(
        &[col("customer")
            .eq(lit(""))
            .and(ident("orderId").eq(lit(1i64)))
            .or(col("customer")
                .eq(lit("c2"))
                .and(ident("orderId").eq(lit(2i64))))],
        &["customer"],
    );
    assert_eq!(
        p.operation,
        Operation::GetItem {
            key: vec![
                ("customer".to_string(), s("c2")),
                ("orderId".to_string(), n("2"))
            ]
        }
    );
}

#[test]
fn the_extra_attributes_column_is_never_pushed() {
    let mut fields: Vec<Field> = schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(crate::schema::infer::extra_field());
    let schema = Arc::new(Schema::new(fields));
    for f in [
        col("_extra").is_not_null(),
        col("_extra").is_null(),
        col("_extra").eq(lit("{}")),
    ] {
        let p = plan_on(&meta(), &schema, std::slice::from_ref(&f), &["_extra"]);
        assert!(p.filter.is_none(), "{f}");
        assert_eq!(p.exact, vec![false], "{f}");
        assert_eq!(p.operation, Operation::Scan);
    }
}

#[test]
fn an_index_key_that_is_a_table_key_needs_no_null_rejecting_predicate() {
    let mut meta = meta();
    meta.indexes.push(IndexMeta {
        name: "byStatusOrder".into(),
        kind: IndexKind::Global,
        keys: KeySchema {
            partition_key: crate::metadata::KeyAttribute {
                name: "status".into(),
                key_type: KeyType::S,
            },
            sort_key: Some(meta.keys.sort_key.clone().expect("orderId")),
        },
        projection: IndexProjection::All,
        item_count: 0,
        size_bytes: 0,
    });
    let p = plan_on(
        &meta,
        &schema(),
        &[col("status").eq(lit("CANCELLED"))],
        &["customer", "orderId", "total"],
    );
    assert!(
        matches!(&p.operation, Operation::Query { index: Some(i), .. } if i == "byStatusOrder"),
        "{:?}",
        p.operation
    );
    assert_eq!(p.exact, vec![true]);
    // byStatus's sort key `total` is no table key: it still needs one.
    let p = plan(&[col("status").eq(lit("CANCELLED"))], &["status"]);
    assert_eq!(p.operation, Operation::Scan);
}

#[test]
fn in_lists_beyond_a_hundred_values_become_batches_of_keys_never_filters() {
    let ids: Vec<Expr> = (0..150).map(|i| lit(format!("d{i}"))).collect();
    let meta = TableMeta::hash_only("Devices", "id");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("note", DataType::Utf8, true),
    ]));
    let p = plan_on(
        &meta,
        &schema,
        &[col("id").in_list(ids.clone(), false)],
        &["id", "note"],
    );
    let Operation::BatchGetItem { keys } = &p.operation else {
        panic!("{:?}", p.operation)
    };
    assert_eq!((keys.len(), p.exact.clone()), (150, vec![true]));
    let parts = p.partitions(1, 4);
    let units: usize = parts.iter().map(Vec::len).sum();
    assert_eq!(units, 2, "two requests of at most 100 keys: {parts:?}");

    // Full keys from pk IN (...) AND sk IN (...), up to the key limit.
    let customers: Vec<Expr> = (0..150).map(|i| lit(format!("c{i}"))).collect();
    let p = plan(
        &[
            col("customer").in_list(customers, false),
            ident("orderId").in_list(vec![lit(1i64), lit(2i64)], false),
        ],
        &["customer", "orderId"],
    );
    assert!(
        matches!(&p.operation, Operation::BatchGetItem { keys } if keys.len() == 300),
        "{:?}",
        p.operation
    );

    // On another attribute a long list stays with DataFusion.
    let notes: Vec<Expr> = (0..150).map(|i| lit(format!("n{i}"))).collect();
    let p = plan(&[col("note").in_list(notes, false)], &["note"]);
    assert_eq!((p.filter.is_none(), p.exact.clone()), (true, vec![false]));
}

#[test]
fn like_with_a_literal_prefix_gives_begins_with_to_the_key_and_rechecks() {
    let p = plan(
        &[
            col("customer").eq(lit("c1")),
            col("placed").like(lit("2026-1_%")),
        ],
        &["customer", "placed"],
    );
    let Operation::Query { index, sort, .. } = &p.operation else {
        panic!("{:?}", p.operation)
    };
    assert_eq!(index.as_deref(), Some("byDate"));
    assert_eq!(
        sort,
        &Some(SortCondition::BeginsWith(s("2026-1"))),
        "the prefix bounds the key"
    );
    assert_eq!(p.exact, vec![true, false], "the LIKE is re-checked");
    // Elsewhere the prefix is a FilterExpression, re-checked.
    let p = plan(&[col("note").like(lit("ab_c%"))], &["note"]);
    let mut b = ExpressionBuilder::default();
    assert_eq!(
        p.render_filter(&mut b).as_deref(),
        Some("begins_with(#n0, :v0)")
    );
    assert_eq!(p.exact, vec![false]);
}

#[test]
fn array_has_on_a_string_list_is_a_contains_filter_rechecked() {
    use datafusion::functions_nested::expr_fn::array_has;
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer", DataType::Utf8, false),
        Field::new("orderId", DataType::Int64, false),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new(
            "nums",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
    ]));
    let p = plan_on(
        &meta(),
        &schema,
        &[array_has(col("tags"), lit("vip"))],
        &["tags"],
    );
    let mut b = ExpressionBuilder::default();
    assert_eq!(
        p.render_filter(&mut b).as_deref(),
        Some("contains(#n0, :v0)")
    );
    assert_eq!(b.values(), &[s("vip")]);
    assert_eq!(p.exact, vec![false]);
    // Not for numbers, not negated.
    for f in [
        array_has(col("nums"), lit(1i64)),
        Expr::Not(Box::new(array_has(col("tags"), lit("vip")))),
    ] {
        let p = plan_on(&meta(), &schema, std::slice::from_ref(&f), &["tags"]);
        assert!(p.filter.is_none(), "{f}");
    }
}
