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
use crate::infer::is_json_field;
use crate::json::{describe_value, write_json};
use crate::number::ExactNumber;

/// One DynamoDB item as the SDK returns it.
pub type Item = HashMap<String, AttributeValue>;

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
    pub fn decode(&self, items: &[Item]) -> Result<RecordBatch> {
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        let mut values: Vec<Option<&AttributeValue>> = Vec::with_capacity(items.len());
        for field in self.schema.fields() {
            values.clear();
            values.extend(items.iter().map(|item| item.get(field.name())));
            let mut path = field.name().clone();
            columns.push(self.build(field, &values, &mut path)?);
        }
        let options = RecordBatchOptions::new().with_row_count(Some(items.len()));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options).map_err(
            |source| Error::Arrow {
                table: self.table.to_string(),
                source,
            },
        )
    }

    fn misfit(&self, path: &str, value: &AttributeValue, expected: &DataType) -> Error {
        Error::ValueDoesNotFit {
            table: self.table.to_string(),
            attribute: path.to_string(),
            value: describe_value(value),
            expected: expected.clone(),
        }
    }

    /// Builds the array of one column (or nested child) from its values.
    fn build(
        &self,
        field: &Field,
        values: &[Option<&AttributeValue>],
        path: &mut String,
    ) -> Result<ArrayRef> {
        let dt = field.data_type();
        if !field.is_nullable()
            && let Some(pos) = values.iter().position(|v| present(v).is_none())
        {
            return Err(Error::ValueDoesNotFit {
                table: self.table.to_string(),
                attribute: path.clone(),
                value: match values[pos] {
                    Some(v) => describe_value(v),
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
                            write_json(v, &mut buf);
                            b.append_value(&buf);
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Utf8 => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for v in values.iter().map(present) {
                    match v {
                        None => b.append_null(),
                        Some(AttributeValue::S(s)) => b.append_value(s),
                        Some(val @ AttributeValue::N(x)) => b.append_value(
                            ExactNumber::parse(x)
                                .map_err(|_| self.misfit(path, val, dt))?
                                .to_string(),
                        ),
                        Some(other) => return Err(self.misfit(path, other, dt)),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Int64 => {
                Arc::new(self.numbers::<Int64Type>(values, path, dt, |n| n.to_i64())?)
            }
            DataType::Float64 => {
                Arc::new(self.numbers::<Float64Type>(values, path, dt, |n| Some(n.to_f64()))?)
            }
            DataType::Decimal128(p, s) => {
                Arc::new(
                    self.numbers::<Decimal128Type>(values, path, dt, |n| n.to_decimal128(*p, *s))?,
                )
            }
            DataType::Decimal256(p, s) => {
                Arc::new(
                    self.numbers::<Decimal256Type>(values, path, dt, |n| n.to_decimal256(*p, *s))?,
                )
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                for v in values.iter().map(present) {
                    match v {
                        None => b.append_null(),
                        Some(AttributeValue::Bool(x)) => b.append_value(*x),
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
                        Some(AttributeValue::B(x)) => b.append_value(x.as_ref()),
                        Some(other) => return Err(self.misfit(path, other, dt)),
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

    /// Builds a numeric column: each `N` value converted exactly by `convert`,
    /// which answers `None` when the value does not fit.
    fn numbers<T: ArrowPrimitiveType>(
        &self,
        values: &[Option<&AttributeValue>],
        path: &str,
        dt: &DataType,
        convert: impl Fn(&ExactNumber) -> Option<T::Native>,
    ) -> Result<PrimitiveArray<T>> {
        let mut b = PrimitiveBuilder::<T>::with_capacity(values.len());
        for v in values.iter().map(present) {
            match v {
                None => b.append_null(),
                Some(val @ AttributeValue::N(x)) => b.append_value(
                    ExactNumber::parse(x)
                        .ok()
                        .and_then(|num| convert(&num))
                        .ok_or_else(|| self.misfit(path, val, dt))?,
                ),
                Some(other) => return Err(self.misfit(path, other, dt)),
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
        values: &[Option<&AttributeValue>],
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
        values: &[Option<&AttributeValue>],
        path: &mut String,
    ) -> Result<ArrayRef> {
        // Set members are plain strings, numbers and blobs; turn them into values
        // the element builder understands without copying the whole item.
        let mut owned: Vec<AttributeValue> = Vec::new();
        let mut spans: Vec<Option<(bool, usize, usize)>> = Vec::with_capacity(values.len());
        for v in values {
            spans.push(match v {
                None | Some(AttributeValue::Null(_)) => None,
                Some(AttributeValue::L(l)) => Some((false, 0, l.len())),
                Some(AttributeValue::Ss(s)) => {
                    let start = owned.len();
                    owned.extend(s.iter().map(|x| AttributeValue::S(x.clone())));
                    Some((true, start, owned.len()))
                }
                Some(AttributeValue::Ns(s)) => {
                    let start = owned.len();
                    owned.extend(s.iter().map(|x| AttributeValue::N(x.clone())));
                    Some((true, start, owned.len()))
                }
                Some(AttributeValue::Bs(s)) => {
                    let start = owned.len();
                    owned.extend(s.iter().map(|x| AttributeValue::B(x.clone())));
                    Some((true, start, owned.len()))
                }
                Some(other) => {
                    return Err(self.misfit(path, other, &DataType::List(Arc::clone(item))));
                }
            });
        }
        let mut children: Vec<Option<&AttributeValue>> = Vec::new();
        let mut lengths = Vec::with_capacity(values.len());
        for (v, span) in values.iter().zip(&spans) {
            match (v, span) {
                (Some(AttributeValue::L(l)), Some(_)) => {
                    children.extend(l.iter().map(Some));
                    lengths.push(l.len());
                }
                (_, Some((true, start, end))) => {
                    children.extend(owned[*start..*end].iter().map(Some));
                    lengths.push(end - start);
                }
                _ => lengths.push(0),
            }
        }
        let base = path.len();
        path.push_str("[]");
        let child = self.build(item, &children, path)?;
        path.truncate(base);
        let nulls = NullBuffer::from(spans.iter().map(Option::is_some).collect::<Vec<_>>());
        let list = ListArray::try_new(
            Arc::clone(item),
            OffsetBuffer::from_lengths(lengths),
            child,
            Some(nulls),
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
        values: &[Option<&AttributeValue>],
        path: &mut String,
    ) -> Result<ArrayRef> {
        let mut valid = Vec::with_capacity(values.len());
        for v in values {
            match v {
                None | Some(AttributeValue::Null(_)) => valid.push(false),
                Some(AttributeValue::M(_)) => valid.push(true),
                Some(other) => {
                    return Err(self.misfit(path, other, &DataType::Struct(fields.clone())));
                }
            }
        }
        let mut children = Vec::with_capacity(fields.len());
        let mut child_values: Vec<Option<&AttributeValue>> = Vec::with_capacity(values.len());
        for field in fields {
            child_values.clear();
            child_values.extend(values.iter().map(|v| match v {
                Some(AttributeValue::M(m)) => m.get(field.name()),
                _ => None,
            }));
            let base = path.len();
            path.push('.');
            path.push_str(field.name());
            children.push(self.build(field, &child_values, path)?);
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

/// A value that is really there: NULL and absence are the same thing in SQL.
fn present<'v>(v: &Option<&'v AttributeValue>) -> Option<&'v AttributeValue> {
    match v {
        Some(AttributeValue::Null(_)) | None => None,
        Some(v) => Some(*v),
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
    use datafusion::arrow::array::Array;
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
