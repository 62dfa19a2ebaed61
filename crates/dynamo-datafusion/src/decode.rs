//! Items → Arrow record batches, driven by the schema.
//!
//! Each Arrow type has one function that builds its array from the values of
//! one column (`None` for a missing attribute); lists and structs gather their
//! children's values and recurse. A value that does not fit its column is an
//! error naming the table, the attribute path and the value — never a silent
//! NULL or a rounded number.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::array::{
    ArrayRef, ArrowPrimitiveType, BinaryBuilder, BooleanBuilder, ListArray, PrimitiveArray,
    PrimitiveBuilder, RecordBatch, RecordBatchOptions, StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, SchemaRef};
use datafusion::arrow::datatypes::{Decimal128Type, Decimal256Type, Float64Type, Int64Type};

use crate::error::{Error, Result};
use crate::infer::{is_json_field, is_text_field};
use crate::json::{describe_value, write_json};
use crate::number::{ExactNumber, fast_decimal128, fast_i64};

/// One DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

/// A value being decoded: an attribute of an item, or a member of a set
/// (borrowed, so sets decode without copying their members).
#[derive(Debug, Clone, Copy)]
enum Val<'a> {
    Attr(&'a AttributeValue),
    Str(&'a str),
    Num(&'a str),
    Bin(&'a [u8]),
}

impl<'a> Val<'a> {
    fn s(self) -> Option<&'a str> {
        match self {
            Val::Attr(AttributeValue::S(s)) => Some(s),
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn n(self) -> Option<&'a str> {
        match self {
            Val::Attr(AttributeValue::N(n)) => Some(n),
            Val::Num(n) => Some(n),
            _ => None,
        }
    }

    fn b(self) -> Option<&'a [u8]> {
        match self {
            Val::Attr(AttributeValue::B(b)) => Some(b.as_ref()),
            Val::Bin(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an owned attribute, for messages and JSON (cold paths).
    fn to_attr(self) -> AttributeValue {
        match self {
            Val::Attr(a) => a.clone(),
            Val::Str(s) => AttributeValue::S(s.to_string()),
            Val::Num(n) => AttributeValue::N(n.to_string()),
            Val::Bin(b) => AttributeValue::B(aws_smithy_types::Blob::new(b.to_vec())),
        }
    }
}

/// A value that is really there: NULL and absence are the same thing in SQL.
fn present<'v>(v: &Option<Val<'v>>) -> Option<Val<'v>> {
    match v {
        Some(Val::Attr(AttributeValue::Null(_))) | None => None,
        Some(v) => Some(*v),
    }
}

/// Finds the column of an attribute name: a linear scan for the few columns a
/// query reads (comparing lengths first), a hash map beyond that.
enum ColumnIndex<'s> {
    Few(Vec<&'s str>),
    Many(HashMap<&'s str, usize>),
}

impl<'s> ColumnIndex<'s> {
    const LINEAR_MAX: usize = 16;

    fn new(names: impl Iterator<Item = &'s str>) -> Self {
        let names: Vec<&str> = names.collect();
        if names.len() <= Self::LINEAR_MAX {
            ColumnIndex::Few(names)
        } else {
            ColumnIndex::Many(names.into_iter().enumerate().map(|(i, n)| (n, i)).collect())
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        match self {
            ColumnIndex::Few(names) => names
                .iter()
                .position(|c| c.len() == name.len() && *c == name),
            ColumnIndex::Many(map) => map.get(name).copied(),
        }
    }

    /// Calls `put(column, value)` for each attribute of `item` that is a column.
    fn gather<'v>(
        &self,
        item: &'v HashMap<String, AttributeValue>,
        mut put: impl FnMut(usize, &'v AttributeValue),
    ) {
        for (name, value) in item {
            if let Some(c) = self.find(name) {
                put(c, value);
            }
        }
    }
}

/// Decodes pages of items into record batches of a fixed schema.
#[derive(Debug, Clone)]
pub struct ItemDecoder {
    table: Arc<str>,
    schema: SchemaRef,
}

impl ItemDecoder {
    /// A decoder for `schema`; fails when a column type cannot hold DynamoDB values.
    pub fn try_new(table: &str, schema: SchemaRef) -> Result<Self> {
        for field in schema.fields() {
            check_supported(field, field.name())?;
        }
        Ok(Self {
            table: table.into(),
            schema,
        })
    }

    /// The schema of the batches produced.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes `items` into one batch.
    ///
    /// One pass over each item's attributes gathers the values of every column
    /// while the item is in cache (no hashing of column names); the columns are
    /// then built from the gathered values.
    pub fn decode(&self, items: &[Item]) -> Result<RecordBatch> {
        let fields = self.schema.fields();
        let n = items.len();
        let index = ColumnIndex::new(fields.iter().map(|f| f.name().as_str()));
        // Column-major: column c's values are gathered[c * n .. (c + 1) * n].
        let mut gathered: Vec<Option<Val>> = vec![None; n * fields.len()];
        for (row, item) in items.iter().enumerate() {
            index.gather(item, |c, v| gathered[c * n + row] = Some(Val::Attr(v)));
        }
        let mut columns = Vec::with_capacity(fields.len());
        for (c, field) in fields.iter().enumerate() {
            let mut path = field.name().clone();
            columns.push(self.build(field, &gathered[c * n..(c + 1) * n], &mut path)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(n));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options).map_err(
            |source| Error::Arrow {
                table: self.table.to_string(),
                source,
            },
        )
    }

    fn misfit(&self, path: &str, value: Val, expected: &DataType) -> Error {
        Error::ValueDoesNotFit {
            table: self.table.to_string(),
            attribute: path.to_string(),
            value: describe_value(&value.to_attr()),
            expected: expected.clone(),
        }
    }

    /// Builds the array of one column (or nested child) from its values.
    fn build(&self, field: &Field, values: &[Option<Val>], path: &mut String) -> Result<ArrayRef> {
        let dt = field.data_type();
        if !field.is_nullable()
            && let Some(pos) = values.iter().position(|v| present(v).is_none())
        {
            return Err(Error::ValueDoesNotFit {
                table: self.table.to_string(),
                attribute: path.clone(),
                value: match values[pos] {
                    Some(v) => describe_value(&v.to_attr()),
                    None => "(missing)".to_string(),
                },
                expected: dt.clone(),
            });
        }
        if let Some(base) = base_type(dt) {
            return self.build_via(field, base, values, path);
        }
        let n = values.len();
        let array: ArrayRef = match dt {
            DataType::Utf8 if is_json_field(field) => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                let mut buf = String::new();
                for v in values.iter().map(present) {
                    match v {
                        Some(v) => {
                            buf.clear();
                            match v {
                                Val::Attr(a) => write_json(a, &mut buf),
                                other => write_json(&other.to_attr(), &mut buf),
                            }
                            b.append_value(&buf);
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Utf8 if is_text_field(field) => {
                // Asked for as text: strings, and numbers as their exact digits.
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for v in values.iter().map(present) {
                    match v {
                        None => b.append_null(),
                        Some(v) => match (v.s(), v.n()) {
                            (Some(s), _) => b.append_value(s),
                            (_, Some(x)) => b.append_value(
                                ExactNumber::parse(x)
                                    .map_err(|_| self.misfit(path, v, dt))?
                                    .to_string(),
                            ),
                            _ => return Err(self.misfit(path, v, dt)),
                        },
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Utf8 => {
                // Strings only: the planner relies on a Utf8 column holding `S` values.
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for v in values.iter().map(present) {
                    match v {
                        None => b.append_null(),
                        Some(v) => b.append_value(v.s().ok_or_else(|| self.misfit(path, v, dt))?),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => Arc::new(self.numbers::<Int64Type>(values, path, dt, |t| {
                fast_i64(t).or_else(|| ExactNumber::parse(t).ok()?.to_i64())
            })?),
            DataType::Float64 => Arc::new(self.numbers::<Float64Type>(values, path, dt, |t| {
                Some(ExactNumber::parse(t).ok()?.to_f64())
            })?),
            DataType::Decimal128(p, s) => {
                Arc::new(self.numbers::<Decimal128Type>(values, path, dt, |t| {
                    fast_decimal128(t, *p, *s)
                        .or_else(|| ExactNumber::parse(t).ok()?.to_decimal128(*p, *s))
                })?)
            }
            DataType::Decimal256(p, s) => {
                Arc::new(self.numbers::<Decimal256Type>(values, path, dt, |t| {
                    ExactNumber::parse(t).ok()?.to_decimal256(*p, *s)
                })?)
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                for v in values.iter().map(present) {
                    match v {
                        None => b.append_null(),
                        Some(Val::Attr(AttributeValue::Bool(x))) => b.append_value(*x),
                        Some(other) => return Err(self.misfit(path, other, dt)),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Binary => {
                let mut b = BinaryBuilder::with_capacity(n, n * 16);
                for v in values.iter().map(present) {
                    match v {
                        None => b.append_null(),
                        Some(v) => b.append_value(v.b().ok_or_else(|| self.misfit(path, v, dt))?),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::List(item) => self.build_list(item, values, path)?,
            DataType::Struct(fields) => self.build_struct(fields, values, path)?,
            other => {
                return Err(Error::UnsupportedType {
                    column: path.clone(),
                    data_type: other.clone(),
                });
            }
        };
        Ok(array)
    }

    /// Builds a numeric column: each `N` value's text converted exactly by
    /// `convert`, which answers `None` when the value does not fit.
    fn numbers<T: ArrowPrimitiveType>(
        &self,
        values: &[Option<Val>],
        path: &str,
        dt: &DataType,
        convert: impl Fn(&str) -> Option<T::Native>,
    ) -> Result<PrimitiveArray<T>> {
        let mut b = PrimitiveBuilder::<T>::with_capacity(values.len());
        for v in values.iter().map(present) {
            match v {
                None => b.append_null(),
                Some(v) => b.append_value(
                    v.n()
                        .and_then(&convert)
                        .ok_or_else(|| self.misfit(path, v, dt))?,
                ),
            }
        }
        // Carries precision and scale for decimals.
        Ok(b.finish().with_data_type(dt.clone()))
    }

    /// Builds a type DynamoDB has no direct counterpart for (e.g. `Int32`, `Utf8View`,
    /// as SQL DDL declares them) through its base type, checking integer ranges.
    fn build_via(
        &self,
        field: &Field,
        base: DataType,
        values: &[Option<Val>],
        path: &mut String,
    ) -> Result<ArrayRef> {
        let dt = field.data_type();
        let base_field = field.clone().with_data_type(base);
        let array = self.build(&base_field, values, path)?;
        if let Some((min, max)) = integer_range(dt) {
            let ints = array.as_primitive::<Int64Type>();
            for (i, v) in ints.iter().enumerate() {
                if let Some(v) = v
                    && !(min..=max).contains(&i128::from(v))
                    && let Some(value) = values[i]
                {
                    return Err(self.misfit(path, value, dt));
                }
            }
        }
        cast(&array, dt).map_err(|source| Error::Arrow {
            table: self.table.to_string(),
            source,
        })
    }

    fn build_list(
        &self,
        item: &FieldRef,
        values: &[Option<Val>],
        path: &mut String,
    ) -> Result<ArrayRef> {
        let mut children: Vec<Option<Val>> = Vec::new();
        let mut lengths = Vec::with_capacity(values.len());
        let mut valid = Vec::with_capacity(values.len());
        for v in values.iter().map(present) {
            let before = children.len();
            match v {
                None => {}
                Some(Val::Attr(AttributeValue::L(l))) => {
                    children.extend(l.iter().map(|e| Some(Val::Attr(e))))
                }
                // Set members are borrowed, never copied.
                Some(Val::Attr(AttributeValue::Ss(m))) => {
                    children.extend(m.iter().map(|e| Some(Val::Str(e))))
                }
                Some(Val::Attr(AttributeValue::Ns(m))) => {
                    children.extend(m.iter().map(|e| Some(Val::Num(e))))
                }
                Some(Val::Attr(AttributeValue::Bs(m))) => {
                    children.extend(m.iter().map(|e| Some(Val::Bin(e.as_ref()))))
                }
                Some(other) => {
                    return Err(self.misfit(path, other, &DataType::List(Arc::clone(item))));
                }
            }
            valid.push(v.is_some());
            lengths.push(children.len() - before);
        }
        let base = path.len();
        path.push_str("[]");
        let child = self.build(item, &children, path)?;
        path.truncate(base);
        let list = ListArray::try_new(
            Arc::clone(item),
            OffsetBuffer::from_lengths(lengths),
            child,
            Some(NullBuffer::from(valid)),
        )
        .map_err(|source| Error::Arrow {
            table: self.table.to_string(),
            source,
        })?;
        Ok(Arc::new(list))
    }

    fn build_struct(
        &self,
        fields: &Fields,
        values: &[Option<Val>],
        path: &mut String,
    ) -> Result<ArrayRef> {
        let mut valid = Vec::with_capacity(values.len());
        for v in values.iter().map(present) {
            match v {
                None => valid.push(false),
                Some(Val::Attr(AttributeValue::M(_))) => valid.push(true),
                Some(other) => {
                    return Err(self.misfit(path, other, &DataType::Struct(fields.clone())));
                }
            }
        }
        let n = values.len();
        let index = ColumnIndex::new(fields.iter().map(|f| f.name().as_str()));
        let mut gathered: Vec<Option<Val>> = vec![None; n * fields.len()];
        for (row, v) in values.iter().enumerate() {
            if let Some(Val::Attr(AttributeValue::M(m))) = v {
                index.gather(m, |c, v| gathered[c * n + row] = Some(Val::Attr(v)));
            }
        }
        let mut children = Vec::with_capacity(fields.len());
        for (c, field) in fields.iter().enumerate() {
            let base = path.len();
            path.push('.');
            path.push_str(field.name());
            children.push(self.build(field, &gathered[c * n..(c + 1) * n], path)?);
            path.truncate(base);
        }
        let array = if fields.is_empty() {
            StructArray::new_empty_fields(values.len(), Some(NullBuffer::from(valid)))
        } else {
            StructArray::try_new(fields.clone(), children, Some(NullBuffer::from(valid))).map_err(
                |source| Error::Arrow {
                    table: self.table.to_string(),
                    source,
                },
            )?
        };
        Ok(Arc::new(array))
    }
}

/// The type a column of `dt` is decoded as before a cast, for types DynamoDB
/// values map to only through a wider or differently laid-out type.
fn base_type(dt: &DataType) -> Option<DataType> {
    match dt {
        DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
        DataType::BinaryView | DataType::LargeBinary => Some(DataType::Binary),
        DataType::Int8 | DataType::Int16 | DataType::Int32 => Some(DataType::Int64),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Some(DataType::Int64),
        DataType::Float32 => Some(DataType::Float64),
        _ => None,
    }
}

fn integer_range(dt: &DataType) -> Option<(i128, i128)> {
    Some(match dt {
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        _ => return None,
    })
}

/// Checks, before any item is read, that a column's type can hold DynamoDB values.
fn check_supported(field: &Field, path: &str) -> Result<()> {
    if base_type(field.data_type()).is_some() {
        return Ok(());
    }
    match field.data_type() {
        DataType::Utf8
        | DataType::Int64
        | DataType::Float64
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _)
        | DataType::Boolean
        | DataType::Binary => Ok(()),
        DataType::List(item) => check_supported(item, &format!("{path}[]")),
        DataType::Struct(fields) => fields
            .iter()
            .try_for_each(|f| check_supported(f, &format!("{path}.{}", f.name()))),
        other => Err(Error::UnsupportedType {
            column: path.to_string(),
            data_type: other.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::json_field;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::Schema;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn decoder(fields: Vec<Field>) -> ItemDecoder {
        ItemDecoder::try_new("T", Arc::new(Schema::new(fields))).expect("supported")
    }

    #[test]
    fn scalars_and_missing_values() {
        let d = decoder(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new("price", DataType::Decimal128(38, 2), true),
            Field::new("ok", DataType::Boolean, true),
        ]);
        let batch = d
            .decode(&[
                item(&[
                    ("id", AttributeValue::S("a".into())),
                    ("n", AttributeValue::N("42".into())),
                    ("price", AttributeValue::N("12.5".into())),
                    ("ok", AttributeValue::Bool(true)),
                ]),
                item(&[
                    ("id", AttributeValue::S("b".into())),
                    ("n", AttributeValue::Null(true)),
                ]),
            ])
            .expect("decodes");
        assert_eq!(batch.num_rows(), 2);
        let n = batch.column(1).as_primitive::<Int64Type>();
        assert_eq!((n.value(0), n.is_null(1)), (42, true));
        let p = batch.column(2).as_primitive::<Decimal128Type>();
        assert_eq!((p.value(0), p.is_null(1)), (1250, true));
        assert!(batch.column(3).is_null(1));
    }

    #[test]
    fn misfits_are_errors_naming_table_attribute_and_value() {
        let d = decoder(vec![Field::new("n", DataType::Int64, true)]);
        let err = d
            .decode(&[item(&[("n", AttributeValue::N("1.5".into()))])])
            .expect_err("1.5 is not an Int64");
        let msg = err.to_string();
        assert!(
            msg.contains("table 'T'") && msg.contains("'n'") && msg.contains("1.5"),
            "{msg}"
        );

        let d = decoder(vec![Field::new("p", DataType::Decimal128(38, 1), true)]);
        assert!(
            d.decode(&[item(&[("p", AttributeValue::N("0.25".into()))])])
                .is_err()
        );
        let d = decoder(vec![Field::new("s", DataType::Utf8, true)]);
        assert!(
            d.decode(&[item(&[("s", AttributeValue::Bool(true))])])
                .is_err()
        );
    }

    #[test]
    fn plain_strings_are_strict_and_text_columns_take_numbers() {
        let strict = decoder(vec![Field::new("s", DataType::Utf8, true)]);
        let number = item(&[("s", AttributeValue::N("1.50".into()))]);
        assert!(
            strict.decode(std::slice::from_ref(&number)).is_err(),
            "the planner relies on Utf8 = S"
        );
        let text = decoder(vec![crate::infer::text_field("s", true)]);
        let batch = text.decode(&[number]).expect("text takes numbers");
        assert_eq!(batch.column(0).as_string::<i32>().value(0), "1.5");
    }

    #[test]
    fn missing_key_is_an_error() {
        let d = decoder(vec![Field::new("id", DataType::Utf8, false)]);
        let err = d.decode(&[item(&[])]).expect_err("key missing");
        assert!(err.to_string().contains("(missing)"), "{err}");
    }

    #[test]
    fn nested_lists_sets_and_structs() {
        let list_of_int = DataType::List(Field::new("item", DataType::Int64, true).into());
        let strukt = DataType::Struct(Fields::from(vec![
            Field::new("city", DataType::Utf8, true),
            Field::new(
                "tags",
                DataType::List(Field::new("item", DataType::Utf8, true).into()),
                true,
            ),
        ]));
        let d = decoder(vec![
            Field::new("nums", list_of_int, true),
            Field::new("addr", strukt, true),
            json_field("raw", true),
        ]);
        let batch = d
            .decode(&[
                item(&[
                    ("nums", AttributeValue::Ns(vec!["1".into(), "2".into()])),
                    (
                        "addr",
                        AttributeValue::M(HashMap::from([
                            ("city".into(), AttributeValue::S("Oslo".into())),
                            ("tags".into(), AttributeValue::Ss(vec!["x".into()])),
                        ])),
                    ),
                    (
                        "raw",
                        AttributeValue::L(vec![
                            AttributeValue::S("a".into()),
                            AttributeValue::N("1".into()),
                        ]),
                    ),
                ]),
                item(&[(
                    "nums",
                    AttributeValue::L(vec![AttributeValue::N("3".into())]),
                )]),
                item(&[]),
            ])
            .expect("decodes");
        let nums = batch.column(0).as_list::<i32>();
        assert_eq!(nums.value_length(0), 2);
        assert_eq!(nums.value_length(1), 1);
        assert!(nums.is_null(2));
        let addr = batch.column(1).as_struct();
        assert_eq!(addr.column(0).as_string::<i32>().value(0), "Oslo");
        assert!(addr.is_null(1));
        assert_eq!(batch.column(2).as_string::<i32>().value(0), r#"["a",1]"#);
    }

    #[test]
    fn nested_misfit_names_the_path() {
        let strukt = DataType::Struct(Fields::from(vec![Field::new("n", DataType::Int64, true)]));
        let d = decoder(vec![Field::new("m", strukt, true)]);
        let err = d
            .decode(&[item(&[(
                "m",
                AttributeValue::M(HashMap::from([("n".into(), AttributeValue::S("x".into()))])),
            )])])
            .expect_err("string in Int64");
        assert!(err.to_string().contains("'m.n'"), "{err}");
    }

    #[test]
    fn zero_columns_keep_the_row_count() {
        let d = decoder(vec![]);
        let batch = d.decode(&[item(&[]), item(&[])]).expect("decodes");
        assert_eq!(batch.num_rows(), 2);
    }

    #[test]
    fn ddl_types_decode_through_their_base_type_with_range_checks() {
        let d = decoder(vec![
            Field::new("s", DataType::Utf8View, true),
            Field::new("i", DataType::Int32, true),
        ]);
        let batch = d
            .decode(&[item(&[
                ("s", AttributeValue::S("v".into())),
                ("i", AttributeValue::N("7".into())),
            ])])
            .expect("decodes");
        assert_eq!(batch.column(0).data_type(), &DataType::Utf8View);
        assert_eq!(batch.column(1).data_type(), &DataType::Int32);
        let err = d
            .decode(&[item(&[("i", AttributeValue::N("3000000000".into()))])])
            .expect_err("out of Int32 range");
        assert!(err.to_string().contains("3000000000"), "{err}");
    }

    #[test]
    fn unsupported_types_fail_up_front() {
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        assert!(ItemDecoder::try_new("T", schema).is_err());
    }
}
