//! Arrow rows → DynamoDB items, exactly: every type the reader produces is
//! written back as the DynamoDB type it was read from.
//!
//! | column | written as |
//! |---|---|
//! | `Utf8` | `S` (a JSON text column: its JSON, see below; a text column: `S`, or `N` for a number key) |
//! | integers, `Float64` | `N` with the exact digits (floats: the shortest text that reads back as the same float) |
//! | `Decimal128`/`Decimal256` | `N` with the exact digits |
//! | temporal column with a time format | the format's `S` or `N` |
//! | `Boolean` | `BOOL` |
//! | `Binary` | `B` |
//! | list marked as a set | `SS`/`NS`/`BS` (duplicates dropped; an empty set is no attribute) |
//! | other lists | `L` (a NULL member is `NULL`) |
//! | `Struct` | `M` (NULL fields are left out) |
//! | the `_extra` column | each of its attributes, from their DynamoDB JSON |
//!
//! NULL is no attribute (table option `write_null = 'null'`: DynamoDB's
//! `NULL` type). JSON text columns hold plain JSON: a string is
//! written as `S`, a number as `N` (exact digits), `true`/`false` as `BOOL`,
//! `null` as `NULL`, an array as `L`, an object as `M` — a value that was a
//! binary or a set before it was read as JSON text comes back as a string or
//! a list (JSON has no such types).

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryViewArray, BooleanArray, FixedSizeBinaryArray,
    LargeBinaryArray, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, Decimal128Type, Decimal256Type, Field, Float16Type,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, SchemaRef, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::Value;

use crate::metadata::{KeyType, TableMeta};
use crate::schema::infer::{is_extra_field, is_json_field, is_set_field, is_text_field};
use crate::schema::time::time_format_of;
use crate::value::Item;
use crate::value::dynamo_json::from_dynamo_json;
use crate::value::number::ExactNumber;
use crate::value::time::{TimeFormat, render_date, render_second};

/// Why a row could not become an item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BadRow {
    /// The column (or nested path) at fault.
    pub column: String,
    /// What is wrong with its value.
    pub reason: String,
}

/// How one column is written.
#[derive(Debug, Clone)]
enum Role {
    /// An attribute of its own.
    Attribute { name: String, key: Option<KeyType> },
    /// The `_extra` column: a JSON object of DynamoDB JSON attributes.
    Extra,
}

/// Turns record batches of a table's columns into DynamoDB items.
#[derive(Debug, Clone)]
pub(crate) struct ItemEncoder {
    schema: SchemaRef,
    roles: Vec<Role>,
    keys: Vec<(String, KeyType)>,
    /// A NULL column value is DynamoDB's `NULL` (not no attribute).
    null_type: bool,
}

impl ItemEncoder {
    /// An encoder for batches of `schema` (columns named as attributes) into `meta`'s table.
    pub(crate) fn new(meta: &TableMeta, schema: SchemaRef) -> Self {
        let keys: Vec<(String, KeyType)> = std::iter::once(&meta.keys.partition_key)
            .chain(meta.keys.sort_key.as_ref())
            .map(|k| (k.name.clone(), k.key_type))
            .collect();
        let roles = schema
            .fields()
            .iter()
            .map(|f| {
                if is_extra_field(f) {
                    Role::Extra
                } else {
                    Role::Attribute {
                        name: f.name().clone(),
                        key: keys.iter().find(|(k, _)| k == f.name()).map(|(_, t)| *t),
                    }
                }
            })
            .collect();
        Self {
            schema,
            roles,
            keys,
            null_type: false,
        }
    }

    /// This encoder writing SQL NULL as DynamoDB's `NULL` type (table
    /// option `write_null = 'null'`) instead of leaving the attribute out.
    pub(crate) fn writing_null_type(mut self, yes: bool) -> Self {
        self.null_type = yes;
        self
    }

    /// The table's key attributes and their types, partition key first.
    pub(crate) fn keys(&self) -> &[(String, KeyType)] {
        &self.keys
    }

    /// The items of `batch`, one per row, in order. A row that cannot be
    /// written (a NULL key, a value DynamoDB cannot hold) is an error naming
    /// its index in the batch and the column.
    pub(crate) fn encode(&self, batch: &RecordBatch) -> Result<Vec<Item>, (usize, BadRow)> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Dictionary(_, value) => cast(c, value).unwrap_or_else(|_| c.clone()),
                _ => c.clone(),
            })
            .collect();
        (0..batch.num_rows())
            .map(|row| self.row(&columns, row).map_err(|e| (row, e)))
            .collect()
    }

    fn row(&self, columns: &[ArrayRef], row: usize) -> Result<Item, BadRow> {
        let mut item = Item::with_capacity(columns.len());
        for ((column, field), role) in columns
            .iter()
            .zip(self.schema.fields().iter())
            .zip(&self.roles)
        {
            match role {
                Role::Attribute { name, key } => {
                    let value = match key {
                        Some(key_type) => Some(key_value(column, field, row, *key_type)?),
                        None => value_at(column.as_ref(), field, row).map_err(|reason| BadRow {
                            column: name.clone(),
                            reason,
                        })?,
                    };
                    match value {
                        Some(value) => {
                            item.insert(name.clone(), value);
                        }
                        None if self.null_type => {
                            item.insert(name.clone(), AttributeValue::Null(true));
                        }
                        None => {}
                    }
                }
                Role::Extra => {
                    for (name, value) in extra_attributes(column.as_ref(), row)? {
                        if item.contains_key(&name)
                            || self.schema.fields().iter().any(|f| f.name() == &name)
                        {
                            return Err(BadRow {
                                column: field.name().clone(),
                                reason: format!(
                                    "attribute '{name}' is also a column: set it there, not in {}",
                                    field.name()
                                ),
                            });
                        }
                        item.insert(name, value);
                    }
                }
            }
        }
        Ok(item)
    }

    /// The value a column of this table's schema stores for `row` of
    /// `array` (`None`: no attribute), e.g. an UPDATE's new value.
    pub(crate) fn value(
        &self,
        column: usize,
        array: &dyn Array,
        row: usize,
    ) -> Result<Option<AttributeValue>, BadRow> {
        let field = self.schema.field(column);
        let value = value_at(array, field, row).map_err(|reason| BadRow {
            column: field.name().clone(),
            reason,
        })?;
        Ok(value.or_else(|| self.null_type.then_some(AttributeValue::Null(true))))
    }
}

/// A key attribute's value: present, and of the key's type.
fn key_value(
    column: &ArrayRef,
    field: &Field,
    row: usize,
    key_type: KeyType,
) -> Result<AttributeValue, BadRow> {
    let bad = |reason: String| BadRow {
        column: field.name().clone(),
        reason,
    };
    let value = value_at(column.as_ref(), field, row).map_err(bad)?;
    let value = match (value, key_type) {
        (None, _) => {
            return Err(bad(
                "is a key of the table and cannot be NULL: every item needs its key".into(),
            ));
        }
        // A text column keeps numbers as their digits.
        (Some(AttributeValue::S(s)), KeyType::N) if is_text_field(field) => {
            AttributeValue::N(number_text(&s).map_err(bad)?)
        }
        (Some(v), _) => v,
    };
    let fits = matches!(
        (&value, key_type),
        (AttributeValue::S(s), KeyType::S) if !s.is_empty()
    ) || matches!(
        (&value, key_type),
        (AttributeValue::B(b), KeyType::B) if !b.as_ref().is_empty()
    ) || matches!((&value, key_type), (AttributeValue::N(_), KeyType::N));
    if !fits {
        return Err(bad(format!(
            "is a key of type {key_type}: {} cannot be its value (keys are non-empty strings, \
             numbers or binary of the key's type)",
            crate::value::json::describe_value(&value)
        )));
    }
    Ok(value)
}

/// A number's canonical text, if DynamoDB can store it.
fn number_text(text: &str) -> Result<String, String> {
    let n = ExactNumber::parse(text)
        .map_err(|_| format!("'{text}' is not a number (a number key needs digits)"))?;
    if !n.fits_dynamodb() {
        return Err(format!(
            "{text} is beyond DynamoDB's numbers (38 significant digits, magnitude 1E-130 to 9.99E+125)"
        ));
    }
    Ok(n.to_string())
}

/// The DynamoDB value of one Arrow value (`None`: NULL, no attribute).
pub(crate) fn value_at(
    array: &dyn Array,
    field: &Field,
    row: usize,
) -> Result<Option<AttributeValue>, String> {
    if array.is_null(row) {
        return Ok(None);
    }
    if let Some(format) = time_format_of(field) {
        return time_value(array, &format, row).map(Some);
    }
    let n = |text: String| number_text(&text).map(|t| Some(AttributeValue::N(t)));
    let s = |text: &str| -> Result<Option<AttributeValue>, String> {
        if is_json_field(field) {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| format!("is a JSON column and {} is not JSON: {e}", short(text)))?;
            from_plain_json(&value).map(Some)
        } else {
            Ok(Some(AttributeValue::S(text.to_string())))
        }
    };
    let b = |bytes: &[u8]| Ok(Some(AttributeValue::B(Blob::new(bytes))));
    match array.data_type() {
        DataType::Utf8 => s(downcast::<StringArray>(array)?.value(row)),
        DataType::LargeUtf8 => s(downcast::<LargeStringArray>(array)?.value(row)),
        DataType::Utf8View => s(downcast::<StringViewArray>(array)?.value(row)),
        DataType::Boolean => Ok(Some(AttributeValue::Bool(
            downcast::<BooleanArray>(array)?.value(row),
        ))),
        DataType::Int8 => n(array.as_primitive::<Int8Type>().value(row).to_string()),
        DataType::Int16 => n(array.as_primitive::<Int16Type>().value(row).to_string()),
        DataType::Int32 => n(array.as_primitive::<Int32Type>().value(row).to_string()),
        DataType::Int64 => n(array.as_primitive::<Int64Type>().value(row).to_string()),
        DataType::UInt8 => n(array.as_primitive::<UInt8Type>().value(row).to_string()),
        DataType::UInt16 => n(array.as_primitive::<UInt16Type>().value(row).to_string()),
        DataType::UInt32 => n(array.as_primitive::<UInt32Type>().value(row).to_string()),
        DataType::UInt64 => n(array.as_primitive::<UInt64Type>().value(row).to_string()),
        DataType::Float16 => float(f64::from(array.as_primitive::<Float16Type>().value(row))),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(_, scale) => n(scaled_text(
            &array
                .as_primitive::<Decimal128Type>()
                .value(row)
                .to_string(),
            *scale,
        )),
        DataType::Decimal256(_, scale) => n(scaled_text(
            &array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string(),
            *scale,
        )),
        DataType::Binary => b(downcast::<BinaryArray>(array)?.value(row)),
        DataType::LargeBinary => b(downcast::<LargeBinaryArray>(array)?.value(row)),
        DataType::BinaryView => b(downcast::<BinaryViewArray>(array)?.value(row)),
        DataType::FixedSizeBinary(_) => b(downcast::<FixedSizeBinaryArray>(array)?.value(row)),
        DataType::Date32 => render_date(array.as_primitive::<Date32Type>().value(row))
            .map(|d| Some(AttributeValue::S(d)))
            .ok_or_else(|| "is a date beyond years 0 to 9999".to_string()),
        DataType::Date64 => {
            let days = array
                .as_primitive::<Date64Type>()
                .value(row)
                .div_euclid(86_400_000);
            i32::try_from(days)
                .ok()
                .and_then(render_date)
                .map(|d| Some(AttributeValue::S(d)))
                .ok_or_else(|| "is a date beyond years 0 to 9999".to_string())
        }
        DataType::Timestamp(unit, _) => {
            let nanos = timestamp_nanos(array, *unit, row);
            render_second(nanos)
                .map(|t| Some(AttributeValue::S(t)))
                .ok_or_else(|| "is a time beyond years 0 to 9999".to_string())
        }
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            members(list.value(row).as_ref(), item, is_set_field(field))
        }
        DataType::LargeList(item) => {
            let list = array.as_list::<i64>();
            members(list.value(row).as_ref(), item, is_set_field(field))
        }
        DataType::Struct(fields) => {
            let st = array.as_struct();
            let mut map = HashMap::with_capacity(fields.len());
            for (child, f) in st.columns().iter().zip(fields.iter()) {
                let value =
                    value_at(child.as_ref(), f, row).map_err(|e| format!("{}: {e}", f.name()))?;
                if let Some(v) = value {
                    map.insert(f.name().clone(), v);
                }
            }
            Ok(Some(AttributeValue::M(map)))
        }
        DataType::Null => Ok(None),
        DataType::Dictionary(_, value) => {
            let unpacked = cast(&array.slice(row, 1), value).map_err(|e| e.to_string())?;
            value_at(unpacked.as_ref(), field, 0)
        }
        other => Err(format!(
            "has Arrow type {other}, which has no DynamoDB type to write it as (cast it to text, \
             a number or a list)"
        )),
    }
}

fn downcast<T: 'static>(array: &dyn Array) -> Result<&T, String> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| format!("internal: column is not a {}", std::any::type_name::<T>()))
}

/// A float as its shortest exact text; NaN and infinities have none.
fn float(v: f64) -> Result<Option<AttributeValue>, String> {
    if !v.is_finite() {
        return Err(format!(
            "is {v}, which DynamoDB numbers cannot hold (only finite numbers)"
        ));
    }
    // Rust prints the shortest text that parses back to the same float.
    number_text(&format!("{v}")).map(|t| Some(AttributeValue::N(t)))
}

/// An unscaled decimal's digits with the decimal point `scale` places from the right.
fn scaled_text(unscaled: &str, scale: i8) -> String {
    if scale <= 0 {
        let zeros = "0".repeat(scale.unsigned_abs() as usize);
        return format!("{unscaled}{zeros}");
    }
    format!("{unscaled}E-{scale}")
}

fn timestamp_nanos(array: &dyn Array, unit: TimeUnit, row: usize) -> i128 {
    let v = i128::from(match unit {
        TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
        TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
        TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
        TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
    });
    v * crate::value::time::nanos_per(unit)
}

/// A temporal value in its column's format.
fn time_value(
    array: &dyn Array,
    format: &TimeFormat,
    row: usize,
) -> Result<AttributeValue, String> {
    let v: i64 = match array.data_type() {
        DataType::Timestamp(unit, _) => {
            // The column's own unit is the format's; another is converted.
            let nanos = timestamp_nanos(array, *unit, row);
            let per = format.unit_nanos();
            if nanos % per != 0 {
                return Err(format!(
                    "has more precision than its time format {format} keeps"
                ));
            }
            i64::try_from(nanos / per).map_err(|_| "is out of range".to_string())?
        }
        DataType::Date32 => i64::from(array.as_primitive::<Date32Type>().value(row)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row),
        other => return Err(format!("is {other}, not a time of format {format}")),
    };
    format
        .encode(v)
        .ok_or_else(|| format!("cannot be written in its time format {format} (out of its range)"))
}

/// A list's members: a set (`SS`/`NS`/`BS`) or a list (`L`).
fn members(values: &dyn Array, item: &Field, set: bool) -> Result<Option<AttributeValue>, String> {
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        let member = value_at(values, item, i).map_err(|e| format!("[{i}] {e}"))?;
        match (member, set) {
            (Some(v), _) => out.push(v),
            (None, true) => return Err(format!("[{i}] is NULL, and a set cannot hold NULL")),
            (None, false) => out.push(AttributeValue::Null(true)),
        }
    }
    if !set {
        return Ok(Some(AttributeValue::L(out)));
    }
    if out.is_empty() {
        // DynamoDB has no empty sets: the attribute is removed.
        return Ok(None);
    }
    let kind = match &out[0] {
        AttributeValue::S(_) => 'S',
        AttributeValue::N(_) => 'N',
        AttributeValue::B(_) => 'B',
        other => {
            return Err(format!(
                "is a set column, and sets hold strings, numbers or binary, not {}",
                crate::value::json::describe_value(other)
            ));
        }
    };
    match kind {
        'S' => {
            let set: BTreeSet<String> = out
                .into_iter()
                .filter_map(|v| v.as_s().ok().cloned())
                .collect();
            Ok(Some(AttributeValue::Ss(set.into_iter().collect())))
        }
        'N' => {
            let mut seen: Vec<ExactNumber> = Vec::new();
            let mut numbers = Vec::new();
            for v in out {
                if let AttributeValue::N(text) = v
                    && let Ok(n) = ExactNumber::parse(&text)
                    && !seen.contains(&n)
                {
                    seen.push(n);
                    numbers.push(text);
                }
            }
            Ok(Some(AttributeValue::Ns(numbers)))
        }
        _ => {
            let set: BTreeSet<Vec<u8>> = out
                .into_iter()
                .filter_map(|v| v.as_b().ok().map(|b| b.as_ref().to_vec()))
                .collect();
            Ok(Some(AttributeValue::Bs(
                set.into_iter().map(Blob::new).collect(),
            )))
        }
    }
}

/// Plain JSON → DynamoDB (see the module documentation).
fn from_plain_json(value: &Value) -> Result<AttributeValue, String> {
    Ok(match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Number(n) => AttributeValue::N(number_text(&n.to_string())?),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(items) => AttributeValue::L(
            items
                .iter()
                .map(from_plain_json)
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), from_plain_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// The attributes the `_extra` column holds for `row`.
fn extra_attributes(
    array: &dyn Array,
    row: usize,
) -> Result<Vec<(String, AttributeValue)>, BadRow> {
    let bad = |reason: String| BadRow {
        column: crate::schema::infer::EXTRA_COLUMN.to_string(),
        reason,
    };
    if array.is_null(row) {
        return Ok(Vec::new());
    }
    let text = match array.data_type() {
        DataType::Utf8 => downcast::<StringArray>(array).map_err(bad)?.value(row),
        other => return Err(bad(format!("is {other}, not JSON text"))),
    };
    let value: Value =
        serde_json::from_str(text).map_err(|e| bad(format!("{} is not JSON: {e}", short(text))))?;
    let object = value.as_object().ok_or_else(|| {
        bad("must be a JSON object of DynamoDB JSON values, like {\"rare\": {\"S\": \"x\"}}".into())
    })?;
    object
        .iter()
        .map(|(name, v)| Ok((name.clone(), from_dynamo_json(v, name).map_err(bad)?)))
        .collect()
}

/// A value shortened for a message.
fn short(text: &str) -> String {
    const MAX: usize = 60;
    if text.chars().count() <= MAX {
        return format!("'{text}'");
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("'{cut}…'")
}

/// The size DynamoDB bills an item's write by (its documented rules:
/// attribute names plus values; a number takes about one byte per two
/// significant digits plus one; lists and maps 3 bytes plus one per member).
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|m| 1 + value_size(m)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn number_size(text: &str) -> usize {
    let digits = text
        .bytes()
        .take_while(|b| *b != b'e' && *b != b'E')
        .filter(u8::is_ascii_digit)
        .count();
    digits.div_ceil(2) + 1
}

/// Write capacity units of one write of `item`: one per started KB.
pub(crate) fn write_units(item: &Item) -> f64 {
    item_size(item).div_ceil(1024).max(1) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        BooleanArray, Decimal128Array, Float64Array, Int64Array, ListArray, StringArray,
        StructArray,
    };
    use datafusion::arrow::datatypes::{Fields, Int32Type, Schema};

    use super::*;
    use crate::plan::fixture::orders_meta;
    use crate::schema::infer::{json_field, set_field};

    fn encode(schema: Schema, columns: Vec<ArrayRef>) -> Result<Vec<Item>, (usize, BadRow)> {
        let schema = Arc::new(schema);
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch");
        ItemEncoder::new(&orders_meta(), schema).encode(&batch)
    }

    fn key_fields() -> Vec<Field> {
        vec![
            Field::new("customer", DataType::Utf8, false),
            Field::new("orderId", DataType::Int64, false),
        ]
    }

    fn keys(n: usize) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(vec!["c"; n])),
            Arc::new(Int64Array::from((0..n as i64).collect::<Vec<_>>())),
        ]
    }

    #[test]
    fn scalars_keep_their_exact_values_and_null_is_no_attribute() {
        let mut fields = key_fields();
        fields.extend([
            Field::new("qty", DataType::Int64, true),
            Field::new("price", DataType::Decimal128(38, 4), true),
            Field::new("ratio", DataType::Float64, true),
            Field::new("paid", DataType::Boolean, true),
        ]);
        let mut columns = keys(2);
        columns.extend([
            Arc::new(Int64Array::from(vec![Some(-7), None])) as ArrayRef,
            Arc::new(
                Decimal128Array::from(vec![Some(123_456_789), Some(-5)])
                    .with_precision_and_scale(38, 4)
                    .expect("decimal"),
            ),
            Arc::new(Float64Array::from(vec![Some(0.1), Some(1e21)])),
            Arc::new(BooleanArray::from(vec![Some(true), None])),
        ]);
        let items = encode(Schema::new(fields), columns).expect("items");
        assert_eq!(items[0]["qty"], AttributeValue::N("-7".into()));
        assert_eq!(items[0]["price"], AttributeValue::N("12345.6789".into()));
        assert_eq!(items[0]["ratio"], AttributeValue::N("0.1".into()));
        assert_eq!(items[0]["paid"], AttributeValue::Bool(true));
        assert!(!items[1].contains_key("qty") && !items[1].contains_key("paid"));
        assert_eq!(items[1]["price"], AttributeValue::N("-0.0005".into()));
        assert_eq!(
            items[1]["ratio"],
            AttributeValue::N("1000000000000000000000".into())
        );
    }

    #[test]
    fn sets_lists_maps_and_json_come_back_as_their_dynamodb_types() {
        let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(3), Some(1), Some(3)]),
            Some(vec![]),
        ]);
        let list = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(3), None]),
            None,
        ]);
        let item_field = Arc::new(Field::new("item", DataType::Int32, true));
        let inner = Fields::from(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int64, true),
        ]);
        let map = StructArray::new(
            inner.clone(),
            vec![
                Arc::new(StringArray::from(vec![Some("x"), None])),
                Arc::new(Int64Array::from(vec![None, Some(2)])),
            ],
            None,
        );
        let mut fields = key_fields();
        fields.extend([
            set_field("nums", DataType::List(Arc::clone(&item_field)), true),
            Field::new("list", DataType::List(item_field), true),
            Field::new("info", DataType::Struct(inner), true),
            json_field("doc", true),
        ]);
        let mut columns = keys(2);
        columns.extend([
            Arc::new(tags) as ArrayRef,
            Arc::new(list),
            Arc::new(map),
            Arc::new(StringArray::from(vec![
                Some(r#"{"n": 12345678901234567890123.5, "s": ["a", true, null]}"#),
                Some("not json"),
            ])),
        ]);
        let err = encode(Schema::new(fields.clone()), columns.clone()).expect_err("bad JSON");
        assert_eq!(err.0, 1);
        assert_eq!(err.1.column, "doc");
        assert!(err.1.reason.contains("not JSON"), "{:?}", err.1);

        columns[5] = Arc::new(StringArray::from(vec![
            Some(r#"{"n": 12345678901234567890123.5, "s": ["a", true, null]}"#),
            None,
        ]));
        let items = encode(Schema::new(fields), columns).expect("items");
        assert_eq!(
            items[0]["nums"],
            AttributeValue::Ns(vec!["3".into(), "1".into()])
        );
        assert!(
            !items[1].contains_key("nums"),
            "an empty set is no attribute"
        );
        assert_eq!(
            items[0]["list"],
            AttributeValue::L(vec![
                AttributeValue::N("3".into()),
                AttributeValue::Null(true)
            ])
        );
        assert_eq!(
            items[0]["info"],
            AttributeValue::M(HashMap::from([("a".into(), AttributeValue::S("x".into()))]))
        );
        let doc = items[0]["doc"].as_m().expect("map");
        assert_eq!(
            doc["n"],
            AttributeValue::N("12345678901234567890123.5".into())
        );
        assert_eq!(
            doc["s"],
            AttributeValue::L(vec![
                AttributeValue::S("a".into()),
                AttributeValue::Bool(true),
                AttributeValue::Null(true)
            ])
        );
    }

    #[test]
    fn keys_must_be_present_and_of_their_type() {
        let fields = key_fields();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["c", ""])),
            Arc::new(Int64Array::from(vec![1, 2])),
        ];
        let err = encode(Schema::new(fields), columns).expect_err("empty key");
        assert_eq!((err.0, err.1.column.as_str()), (1, "customer"));
        assert!(err.1.reason.contains("key"), "{:?}", err.1);
    }

    #[test]
    fn numbers_dynamodb_cannot_hold_are_refused() {
        let mut fields = key_fields();
        fields.push(Field::new("ratio", DataType::Float64, true));
        let mut columns = keys(1);
        columns.push(Arc::new(Float64Array::from(vec![f64::NAN])));
        let err = encode(Schema::new(fields.clone()), columns).expect_err("NaN");
        assert!(err.1.reason.contains("finite"), "{:?}", err.1);
        let mut columns = keys(1);
        columns.push(Arc::new(Float64Array::from(vec![1e200])));
        let err = encode(Schema::new(fields), columns).expect_err("too large");
        assert!(err.1.reason.contains("beyond DynamoDB"), "{:?}", err.1);
    }

    #[test]
    fn sizes_follow_dynamodb_rules() {
        let item = Item::from([
            ("id".to_string(), AttributeValue::S("abc".into())),
            ("n".to_string(), AttributeValue::N("12345".into())),
        ]);
        assert_eq!(item_size(&item), 2 + 3 + 1 + 4);
        assert_eq!(write_units(&item), 1.0);
        let big = Item::from([("b".to_string(), AttributeValue::S("x".repeat(2048)))]);
        assert_eq!(write_units(&big), 3.0);
    }
}
