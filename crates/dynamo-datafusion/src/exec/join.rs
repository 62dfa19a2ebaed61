//! A hash join's dynamic filter, read as partition-key values.
//!
//! DataFusion's hash join builds its (small) side first and publishes a
//! filter on the other side's join keys: bounds, and for a small build side
//! an `IN` list of its key values (one per partition of a partitioned join,
//! inside a `CASE`). When the list is on the table's partition key, the
//! read can fetch exactly those keys instead of the table. Pure: the
//! expression in, the values out.

use std::sync::Arc;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, InListExpr, Literal};

use crate::metadata::KeyType;
use crate::value::number::ExactNumber;

/// What a join filter says of the partition key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum KeyFilter {
    /// Nothing passes (an empty build side).
    Nothing,
    /// Only these values (distinct, sorted) can pass.
    Values(Vec<AttributeValue>),
    /// It does not pin the key to values this read can look up.
    Unknown,
}

/// The partition-key values `filter` lets through, when it is (or holds)
/// `IN` lists on the output column `column` whose literals all convert to
/// `key_type`. NULLs match no key and are dropped.
pub(crate) fn key_values(
    filter: &Arc<dyn PhysicalExpr>,
    column: &str,
    key_type: KeyType,
) -> KeyFilter {
    if let Some(l) = filter.downcast_ref::<Literal>()
        && l.value() == &ScalarValue::Boolean(Some(false))
    {
        return KeyFilter::Nothing;
    }
    let mut lists = Vec::new();
    collect_lists(filter, column, &mut lists);
    if lists.is_empty() {
        return KeyFilter::Unknown;
    }
    let mut values: Vec<(String, AttributeValue)> = Vec::new();
    for list in lists {
        for item in list.list() {
            let Some(lit) = item.downcast_ref::<Literal>() else {
                return KeyFilter::Unknown;
            };
            if lit.value().is_null() {
                continue;
            }
            let Some(v) = to_attribute(lit.value(), key_type) else {
                return KeyFilter::Unknown;
            };
            let sort_key = match &v {
                AttributeValue::S(s) => format!("S{s}"),
                AttributeValue::N(n) => format!("N{n}"),
                AttributeValue::B(b) => format!("B{:?}", b.as_ref()),
                _ => return KeyFilter::Unknown,
            };
            values.push((sort_key, v));
        }
    }
    values.sort_by(|a, b| a.0.cmp(&b.0));
    values.dedup_by(|a, b| a.0 == b.0);
    KeyFilter::Values(values.into_iter().map(|(_, v)| v).collect())
}

/// Every non-negated `IN` list on `column` in `expr`.
fn collect_lists<'a>(expr: &'a Arc<dyn PhysicalExpr>, column: &str, out: &mut Vec<&'a InListExpr>) {
    if let Some(list) = expr.downcast_ref::<InListExpr>()
        && !list.negated()
        && list
            .expr()
            .downcast_ref::<Column>()
            .is_some_and(|c| c.name() == column)
    {
        out.push(list);
        return;
    }
    for child in expr.children() {
        collect_lists(child, column, out);
    }
}

/// A join key value as the partition key's DynamoDB value; `None` when it
/// is of another kind (a float: its exact decimal is not known).
fn to_attribute(value: &ScalarValue, key_type: KeyType) -> Option<AttributeValue> {
    match (key_type, value) {
        (
            KeyType::S,
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)),
        ) => Some(AttributeValue::S(s.clone())),
        (
            KeyType::B,
            ScalarValue::Binary(Some(b))
            | ScalarValue::LargeBinary(Some(b))
            | ScalarValue::BinaryView(Some(b)),
        ) => Some(AttributeValue::B(Blob::new(b.clone()))),
        (KeyType::N, v) => {
            let text = match v {
                ScalarValue::Int8(Some(_))
                | ScalarValue::Int16(Some(_))
                | ScalarValue::Int32(Some(_))
                | ScalarValue::Int64(Some(_))
                | ScalarValue::UInt8(Some(_))
                | ScalarValue::UInt16(Some(_))
                | ScalarValue::UInt32(Some(_))
                | ScalarValue::UInt64(Some(_))
                | ScalarValue::Decimal128(Some(_), _, _)
                | ScalarValue::Decimal256(Some(_), _, _) => v.to_string(),
                _ => return None,
            };
            // DynamoDB's own spelling of the number (`1.50` is `1.5`).
            let n = ExactNumber::parse(&text).ok()?;
            Some(AttributeValue::N(n.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{BinaryExpr, lit};

    fn schema() -> Schema {
        Schema::new(vec![Field::new("device", DataType::Utf8, true)])
    }

    fn in_list(values: &[Option<&str>]) -> Arc<dyn PhysicalExpr> {
        let array: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let col: Arc<dyn PhysicalExpr> = Arc::new(Column::new("device", 0));
        Arc::new(InListExpr::try_new_from_array(col, array, false, &schema()).expect("in list"))
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn an_in_list_on_the_key_gives_its_distinct_values_without_nulls() {
        let f = in_list(&[Some("b"), Some("a"), None, Some("b")]);
        assert_eq!(
            key_values(&f, "device", KeyType::S),
            KeyFilter::Values(vec![s("a"), s("b")])
        );
        // Inside bounds and a partitioned join's branches: every list counts.
        let bounds: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("device", 0)),
            Operator::GtEq,
            lit("a"),
        ));
        let both: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            bounds,
            Operator::And,
            Arc::new(BinaryExpr::new(
                in_list(&[Some("c")]),
                Operator::Or,
                in_list(&[Some("a")]),
            )),
        ));
        assert_eq!(
            key_values(&both, "device", KeyType::S),
            KeyFilter::Values(vec![s("a"), s("c")])
        );
    }

    #[test]
    fn other_columns_types_and_shapes_are_unknown_and_false_is_nothing() {
        let f = in_list(&[Some("a")]);
        assert_eq!(key_values(&f, "other", KeyType::S), KeyFilter::Unknown);
        assert_eq!(
            key_values(&f, "device", KeyType::N),
            KeyFilter::Unknown,
            "a string is no number"
        );
        assert_eq!(
            key_values(&lit(true), "device", KeyType::S),
            KeyFilter::Unknown
        );
        assert_eq!(
            key_values(&lit(false), "device", KeyType::S),
            KeyFilter::Nothing
        );
    }

    #[test]
    fn numbers_take_dynamodbs_spelling() {
        assert_eq!(
            to_attribute(&ScalarValue::Decimal128(Some(150), 38, 2), KeyType::N),
            Some(AttributeValue::N("1.5".into()))
        );
        assert_eq!(
            to_attribute(&ScalarValue::Int64(Some(-7)), KeyType::N),
            Some(AttributeValue::N("-7".into()))
        );
        assert_eq!(
            to_attribute(&ScalarValue::Float64(Some(1.5)), KeyType::N),
            None
        );
    }
}
