//! Checks the fuzz targets run (`fuzz/`), and the corpus replay in the test
//! suite: each takes arbitrary bytes and panics only when an invariant breaks.
//! Not part of the supported API.
//!
//! - [`check_render`]: bytes → SQL filters → planned read → the DynamoDB
//!   expressions of every request, which must follow DynamoDB's expression
//!   grammar, define exactly the placeholders they use, hold only values
//!   DynamoDB accepts, and stay within its size limits.
//! - [`check_decode`]: any item → Arrow, for several schemas: a batch or a
//!   clear error, never a panic.

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue as AV;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::common::Column;
use datafusion::logical_expr::{Expr, lit};
use datafusion::scalar::ScalarValue;

use crate::decode::{Item, ItemDecoder};
use crate::metadata::TableMeta;
use crate::plan::{
    MAX_EXPRESSION_BYTES, Operation, PlanOptions, ReadOptions, ReadUnit, RenderedRequest, ScanPlan,
};
use crate::value::number::ExactNumber;
use dynamo_testkit::expression::{
    check_condition, check_key_condition, check_projection, placeholders,
};

/// Reads choices from the fuzzer's bytes; zeros once they run out.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next byte.
    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A choice in `0..n`.
    pub fn pick(&mut self, n: usize) -> usize {
        (self.byte() as usize) % n.max(1)
    }

    /// True when the bytes are used up.
    pub fn done(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "", "a", "Z", "#n0", ":v0", "'", "\"", " ", "%", "_", "\\", "é", "😀", "AND", "size",
            "x.y", "[0]", "\u{0}",
        ];
        let n = self.pick(4);
        (0..n).map(|_| PIECES[self.pick(PIECES.len())]).collect()
    }
}

fn schema() -> SchemaRef {
    crate::plan::fixture::orders_schema()
}

fn literal(bytes: &mut Bytes, t: &DataType) -> Expr {
    if bytes.pick(16) == 0 {
        return lit(ScalarValue::try_from(t).unwrap_or(ScalarValue::Null));
    }
    match t {
        DataType::Utf8 => lit(bytes.string()),
        DataType::Int64 => {
            const EDGES: &[i64] = &[0, 1, -1, 7, 100, i64::MAX, i64::MIN, 999_999];
            lit(EDGES[bytes.pick(EDGES.len())])
        }
        DataType::Decimal128(p, s) => {
            let digits = bytes.pick(20) as u32;
            let v = (bytes.byte() as i128 - 128) * 10i128.pow(digits);
            lit(ScalarValue::Decimal128(Some(v), *p, *s))
        }
        DataType::Float64 => {
            const EDGES: &[f64] = &[
                0.0,
                -0.0,
                1.5,
                -2.25,
                1e300,
                1e-300,
                f64::NAN,
                f64::INFINITY,
                1e126,
                1e-131,
            ];
            lit(EDGES[bytes.pick(EDGES.len())])
        }
        DataType::Boolean => lit(bytes.pick(2) == 0),
        DataType::Binary => lit(ScalarValue::Binary(Some(
            (0..bytes.pick(3)).map(|_| bytes.byte()).collect(),
        ))),
        _ => lit(ScalarValue::Null),
    }
}

fn predicate(bytes: &mut Bytes, schema: &Schema, depth: usize) -> Expr {
    let choice = if depth >= 3 {
        bytes.pick(8)
    } else {
        bytes.pick(11)
    };
    // Top-level conditions favour key attributes (the first five), so keys,
    // indexes, GetItem and BatchGetItem are planned often.
    let fields = if depth == 0 && bytes.pick(3) > 0 {
        5
    } else {
        schema.fields().len()
    };
    let field = schema.field(bytes.pick(fields));
    let column = Expr::Column(Column::from_name(field.name()));
    let t = field.data_type();
    match choice {
        0..=2 => {
            let v = literal(bytes, t);
            match bytes.pick(if depth == 0 { 12 } else { 6 }) {
                0 => column.eq(v),
                1 => column.not_eq(v),
                2 => column.lt(v),
                3 => column.lt_eq(v),
                4 => column.gt(v),
                5 => column.gt_eq(v),
                _ => column.eq(v),
            }
        }
        3 => {
            let (lo, hi) = (literal(bytes, t), literal(bytes, t));
            if bytes.pick(4) == 0 {
                column.not_between(lo, hi)
            } else {
                column.between(lo, hi)
            }
        }
        4 => {
            let n = match bytes.pick(4) {
                0 => 101 + bytes.pick(30),
                _ => 1 + bytes.pick(6),
            };
            let list = (0..n).map(|_| literal(bytes, t)).collect();
            column.in_list(list, bytes.pick(4) == 0)
        }
        5 => column.is_null(),
        6 => column.is_not_null(),
        7 if *t == DataType::Utf8 => {
            let mut pattern = bytes.string();
            if bytes.pick(2) == 0 {
                pattern.push('%');
            }
            column.like(lit(pattern))
        }
        7 => column.is_not_null(),
        8 => Expr::Not(Box::new(predicate(bytes, schema, depth + 1))),
        9 => predicate(bytes, schema, depth + 1).and(predicate(bytes, schema, depth + 1)),
        _ => predicate(bytes, schema, depth + 1).or(predicate(bytes, schema, depth + 1)),
    }
}

/// Plans a read for filters made from `data`, checks every request it would
/// send, and returns the operation planned.
pub fn check_render(data: &[u8]) -> &'static str {
    let mut bytes = Bytes::new(data);
    let (meta, schema) = (crate::plan::fixture::orders_meta(), schema());
    let filters: Vec<Expr> = (0..1 + bytes.pick(4))
        .map(|_| predicate(&mut bytes, &schema, 0))
        .collect();
    let projection: Vec<usize> = (0..schema.fields().len())
        .filter(|_| bytes.pick(2) == 0)
        .collect();
    let options = ReadOptions {
        plan: PlanOptions {
            consistent_read: bytes.pick(2) == 0,
            ..PlanOptions::default()
        },
        segments: 4,
        max_partitions: 4,
        ..ReadOptions::default()
    };
    let scan = ScanPlan::new(&meta, &schema, &filters, Some(&projection), None, &options)
        .expect("the fixture's columns");
    let plan = &scan.access;
    assert_eq!(plan.exact.len(), filters.len(), "one exactness per filter");
    for unit in scan.partitions.iter().flatten() {
        // Exactly what `read` sends for this unit.
        let r = scan.render(unit);
        let mut expressions = Vec::new();
        if let Some(text) = &r.projection {
            check_projection(text);
            expressions.push(text.clone());
        }
        match (unit, &plan.operation) {
            (ReadUnit::Query(_), Operation::Query { .. }) => {
                let text = r
                    .key_condition
                    .clone()
                    .expect("a Query has a key condition");
                check_key_condition(&text);
                expressions.push(text);
                if let Some(f) = &r.filter {
                    check_condition(f);
                    expressions.push(f.clone());
                }
            }
            (ReadUnit::Segment(..), Operation::Scan) => {
                assert!(r.key_condition.is_none());
                if let Some(f) = &r.filter {
                    check_condition(f);
                    expressions.push(f.clone());
                }
            }
            (ReadUnit::Get(key), _) => check_key(&meta, key),
            (ReadUnit::Batch(keys), _) => {
                assert!(
                    !keys.is_empty() && keys.len() <= 100,
                    "batch of {}",
                    keys.len()
                );
                keys.iter().for_each(|k| check_key(&meta, k));
            }
            (u, op) => panic!("unit {u:?} in a {op:?} plan"),
        }
        for e in &expressions {
            assert!(
                e.len() <= MAX_EXPRESSION_BYTES,
                "expression of {} bytes",
                e.len()
            );
        }
        check_placeholders(&expressions, &r);
    }
    plan.operation.name()
}

fn check_key(meta: &TableMeta, key: &[(String, AV)]) {
    let names: Vec<&str> = key.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = meta.keys.attribute_names().collect();
    assert_eq!(
        names, expected,
        "a key names exactly the table's key attributes"
    );
    for (_, v) in key {
        check_key_value(v);
    }
}

fn check_key_value(v: &AV) {
    match v {
        AV::S(s) => assert!(!s.is_empty(), "empty string as a key value"),
        AV::B(b) => assert!(!b.as_ref().is_empty(), "empty binary as a key value"),
        AV::N(n) => check_number(n),
        other => panic!("key value of type {other:?}"),
    }
}

fn check_number(n: &str) {
    let parsed = ExactNumber::parse(n).unwrap_or_else(|e| panic!("'{n}' is not a number: {e:?}"));
    assert!(parsed.fits_dynamodb(), "'{n}' is out of DynamoDB's range");
}

fn check_value(v: &AV) {
    match v {
        AV::N(n) => check_number(n),
        AV::Ns(ns) => {
            assert!(!ns.is_empty(), "empty number set");
            ns.iter().for_each(|n| check_number(n));
        }
        AV::Ss(ss) => assert!(!ss.is_empty(), "empty string set"),
        AV::Bs(bs) => assert!(!bs.is_empty(), "empty binary set"),
        AV::L(l) => l.iter().for_each(check_value),
        AV::M(m) => m.values().for_each(check_value),
        _ => {}
    }
}

/// Every placeholder used is defined and every defined one used (DynamoDB
/// rejects both), and every value is one DynamoDB accepts.
fn check_placeholders(expressions: &[String], r: &RenderedRequest) {
    let mut used_names = BTreeSet::new();
    let mut used_values = BTreeSet::new();
    for e in expressions {
        let (names, values) = placeholders(e);
        used_names.extend(names);
        used_values.extend(values);
    }
    let defined_names: BTreeSet<String> = r
        .names
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let defined_values: BTreeSet<String> = r
        .values
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(used_names, defined_names, "names in {expressions:?}");
    assert_eq!(used_values, defined_values, "values in {expressions:?}");
    for v in r.values.iter().flat_map(|m| m.values()) {
        check_value(v);
    }
}

/// Decodes `item` into Arrow under several schemas; any outcome but a panic is fine,
/// and a batch has exactly one row.
pub fn check_decode(item: &Item) {
    let names: Vec<String> = {
        let mut n: Vec<String> = item.keys().take(6).cloned().collect();
        n.push("absent".into());
        n
    };
    let types = [
        DataType::Utf8,
        DataType::Int64,
        DataType::Float64,
        DataType::Boolean,
        DataType::Binary,
        DataType::Decimal128(38, 10),
        DataType::Decimal256(76, 20),
        DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        DataType::Struct(Fields::from(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Decimal128(20, 2), true),
        ])),
    ];
    let mut schemas: Vec<Vec<Field>> = types
        .iter()
        .map(|t| {
            names
                .iter()
                .map(|n| Field::new(n, t.clone(), true))
                .collect()
        })
        .collect();
    schemas.push(
        names
            .iter()
            .map(|n| crate::schema::infer::json_field(n, true))
            .collect(),
    );
    schemas.push(
        names
            .iter()
            .map(|n| crate::schema::infer::text_field(n, true))
            .collect(),
    );
    // Two columns and every other attribute in the extra-attributes column.
    let mut with_extra: Vec<Field> = names
        .iter()
        .take(2)
        .map(|n| crate::schema::infer::json_field(n, true))
        .collect();
    with_extra.push(crate::schema::infer::extra_field());
    schemas.push(with_extra);
    let json = format!(
        "[{}]",
        serde_json::Value::Object(crate::value::dynamo_json::item_to_json(item))
    );
    let struct_schema = types.len() - 1;
    for (i, fields) in schemas.into_iter().enumerate() {
        let schema = Arc::new(Schema::new(fields));
        let Ok(decoder) = ItemDecoder::try_new("fuzz", schema) else {
            continue;
        };
        // Maps of inferred struct columns are closed: a key the struct lacks
        // does not fit (the column widens); the same on both paths.
        let decoder = if i == struct_schema {
            decoder.closing_maps(|_| true)
        } else {
            decoder
        };
        let from_values = decoder.decode(std::slice::from_ref(item));
        if let Ok(batch) = &from_values {
            assert_eq!(batch.num_rows(), 1);
        }
        // The same item as DynamoDB's JSON, decoded directly: the same batch,
        // or an error where the SDK values gave one.
        let from_json = decoder.decode_json(&json, None);
        match (&from_values, &from_json) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "JSON and SDK decoding differ for {json}"),
            // Which misfit is met first depends on attribute order, which
            // differs (hash map vs. JSON order); the kind of error does not.
            (Err(a), Err(b)) => assert_eq!(
                std::mem::discriminant(a),
                std::mem::discriminant(b),
                "{a} vs {b}"
            ),
            _ => panic!(
                "JSON and SDK decoding disagree for {json}: {from_values:?} vs {from_json:?}"
            ),
        }
        assert!(
            decoder
                .decode_json(&json, Some(0))
                .is_ok_and(|b| b.num_rows() == 0)
        );
    }
}

/// Decodes arbitrary text as an answer's `Items` array under a few schemas;
/// any outcome but a panic is fine.
pub fn check_decode_json(text: &str) {
    for data_type in [
        DataType::Utf8,
        DataType::Int64,
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
    ] {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", data_type.clone(), true),
            Field::new("b", data_type, false),
        ]));
        if let Ok(decoder) = ItemDecoder::try_new("fuzz", schema) {
            let _ = decoder.decode_json(text, None);
        }
    }
    let _ = crate::decode::items_span(text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_accepts_what_dynamodb_accepts_and_refuses_the_rest() {
        check_condition("#n0 = :v0 AND (NOT #n1.#n2[3] BETWEEN :v1 AND :v2 OR #n3 IN (:v3, :v4))");
        check_condition("attribute_not_exists(#n0) OR begins_with(#n1, :v0) AND size(#n2) > :v1");
        check_key_condition("#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2");
        check_key_condition("#n0 = :v0 AND begins_with(#n1, :v1)");
        check_projection("#n0, #n1.#n2, #n3[0]");
        for bad in [
            "#n0 = ",
            "#n0 == :v0",
            "(#n0 = :v0",
            "#n0 = :v0 AND",
            "name = :v0 :v1",
        ] {
            assert!(
                std::panic::catch_unwind(|| check_condition(bad)).is_err(),
                "{bad}"
            );
        }
        for bad in [
            "#n0 <> :v0",
            "#n0 = :v0 OR #n1 = :v1",
            "#n0 = :v0 AND #n1 <> :v1",
            "#n0 = :v0 AND #n1 BETWEEN #n2 AND :v1",
            "#n0 = #n1",
        ] {
            assert!(
                std::panic::catch_unwind(|| check_key_condition(bad)).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_few_thousand_generated_plans_pass() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..3_000 {
            let data: Vec<u8> = (0..rng.usize(0..64)).map(|_| rng.u8(..)).collect();
            *seen.entry(check_render(&data)).or_insert(0) += 1;
        }
        // The generator reaches every kind of read.
        for op in ["Scan", "Query", "GetItem", "BatchGetItem"] {
            assert!(seen.get(op).is_some_and(|n| *n > 0), "{seen:?}");
        }
    }
}
