//! Column builders: one per column (and per nested child), fed item by item.
//!
//! Each item is visited once, while it is in cache: its attributes are matched
//! to columns and appended to that column's builder straight away. Columns an
//! item lacks get a NULL. Lists and maps feed child builders the same way.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::array::builder::NullBufferBuilder;
use datafusion::arrow::array::{
    ArrayRef, ArrowPrimitiveType, BinaryBuilder, BooleanBuilder, ListArray, PrimitiveBuilder,
    StringBuilder, StructArray,
};
use datafusion::arrow::buffer::{OffsetBuffer, ScalarBuffer};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::arrow::datatypes::{Decimal128Type, Decimal256Type, Float64Type, Int64Type};
use datafusion::arrow::error::ArrowError;

use crate::schema::infer::{
    Observed, is_extra_field, is_json_field, is_text_field, is_undetermined_field,
};
use crate::schema::time::{bad_time_is_null, time_format_of};
use crate::value::dynamo_json::item_to_json;
use crate::value::json::{describe_value, write_json};
use crate::value::number::{ExactNumber, fast_decimal128, fast_i64};
use crate::value::time::TimeFormat;

/// A value that does not fit its column.
#[derive(Debug)]
pub(super) struct Misfit {
    /// Attribute path, e.g. `info.tags[]`.
    pub attribute: String,
    /// The value rendered for the message, or `(missing)`.
    pub value: String,
    /// The column's declared type.
    pub expected: DataType,
    /// The column's time format, for temporal columns.
    pub format: Option<String>,
}

/// A value being decoded: an attribute of an item, or a member of a set
/// (borrowed, so sets decode without copying their members).
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Attr(&'a AttributeValue),
    Str(&'a str),
    Num(&'a str),
    Bin(&'a [u8]),
}

impl<'a> Val<'a> {
    pub(super) fn s(self) -> Option<&'a str> {
        match self {
            Val::Attr(AttributeValue::S(s)) => Some(s),
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(super) fn n(self) -> Option<&'a str> {
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
    pub(super) fn to_attr(self) -> AttributeValue {
        match self {
            Val::Attr(a) => a.clone(),
            Val::Str(s) => AttributeValue::S(s.to_string()),
            Val::Num(n) => AttributeValue::N(n.to_string()),
            Val::Bin(b) => AttributeValue::B(aws_smithy_types::Blob::new(b.to_vec())),
        }
    }

    /// The value unless it is DynamoDB's NULL: NULL and absence are the same in SQL.
    pub(super) fn present(self) -> Option<Self> {
        match self {
            Val::Attr(AttributeValue::Null(_)) => None,
            v => Some(v),
        }
    }
}

/// Finds the column of an attribute name: a linear scan for the few columns a
/// query reads (comparing lengths first), a hash map beyond that.
pub(super) struct ColumnIndex<'s> {
    names: Vec<&'s str>,
    many: Option<HashMap<&'s str, usize>>,
}

impl<'s> ColumnIndex<'s> {
    const LINEAR_MAX: usize = 16;

    fn new(names: impl Iterator<Item = &'s str>) -> Self {
        let names: Vec<&str> = names.collect();
        let many = (names.len() > Self::LINEAR_MAX)
            .then(|| names.iter().enumerate().map(|(i, n)| (*n, i)).collect());
        Self { names, many }
    }

    pub(super) fn find(&self, name: &str) -> Option<usize> {
        match &self.many {
            Some(map) => map.get(name).copied(),
            None => self
                .names
                .iter()
                .position(|c| c.len() == name.len() && *c == name),
        }
    }

    /// The name of column `c`.
    pub(super) fn name(&self, c: usize) -> &'s str {
        self.names[c]
    }
}

/// A column type no DynamoDB value can be decoded into.
#[derive(Debug)]
pub(super) struct Unsupported {
    /// Column path, e.g. `info.tags[]`.
    pub path: String,
    pub data_type: DataType,
}

/// The columns of an item, or the fields of a map decoded as a struct.
pub(super) struct Record<'s> {
    pub(super) index: ColumnIndex<'s>,
    pub(super) columns: Vec<Column<'s>>,
    /// For each column, the last row (counted from 1) that gave it a value.
    pub(super) filled: Vec<usize>,
    pub(super) rows: usize,
    /// The column of each attribute position of the previous JSON item
    /// ([`NOT_A_COLUMN`] for others): answers tend to list attributes in the
    /// same order, so one comparison usually finds the column.
    pub(super) order: Vec<usize>,
    /// The struct type of a map column, when this record decodes one: a key
    /// that is not one of its fields does not fit (the column must widen to
    /// show it). `None` at the top level, where attributes no column asks
    /// for are simply not read.
    pub(super) map_of: Option<(&'s Field, String)>,
    /// The extra-attributes column, at the top level of a schema that has one.
    pub(super) extra: Option<Extra<'s>>,
}

/// Collects, per item, the attributes the table has no column for.
pub(super) struct Extra<'s> {
    /// Its column.
    column: usize,
    /// Attributes that have a column (read by this query or not).
    known: &'s HashSet<String>,
    /// This item's attributes without a column, so far.
    pending: HashMap<String, AttributeValue>,
}

impl Extra<'_> {
    /// True when `name` belongs in the extra column.
    pub(super) fn takes(&self, name: &str) -> bool {
        !self.known.contains(name)
    }

    pub(super) fn push(&mut self, name: &str, value: AttributeValue) {
        self.pending.insert(name.to_string(), value);
    }
}

/// An attribute no column asks for.
pub(super) const NOT_A_COLUMN: usize = usize::MAX;

impl<'s> Record<'s> {
    /// Builders for the top-level `fields`; `closed(i)` tells whether the
    /// maps of column `i` must hold only keys its struct type has (columns
    /// whose type can widen) or may hold others, unread (types the user chose).
    /// Fails on the first column type no DynamoDB value can be decoded into.
    pub fn new(
        fields: &'s Fields,
        capacity: usize,
        closed: impl Fn(usize) -> bool,
        known: &'s HashSet<String>,
    ) -> Result<Self, Unsupported> {
        let columns = fields
            .iter()
            .enumerate()
            .map(|(i, f)| Column::new(f, f.name().clone(), capacity, closed(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut record = Self::of(fields, columns, None);
        record.extra = fields
            .iter()
            .position(|f| is_extra_field(f))
            .map(|column| Extra {
                column,
                known,
                pending: HashMap::new(),
            });
        Ok(record)
    }

    /// Builders for the fields of a map column, `map_of` when its maps are
    /// closed (see [`Record::map_of`]).
    fn nested(
        fields: &'s Fields,
        path: &str,
        capacity: usize,
        map_of: Option<&'s Field>,
    ) -> Result<Self, Unsupported> {
        let columns = fields
            .iter()
            .map(|f| {
                let child = format!("{path}.{}", f.name());
                Column::new(f, child, capacity, map_of.is_some())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let map_of = map_of.map(|f| (f, path.to_string()));
        Ok(Self::of(fields, columns, map_of))
    }

    fn of(
        fields: &'s Fields,
        columns: Vec<Column<'s>>,
        map_of: Option<(&'s Field, String)>,
    ) -> Self {
        Self {
            index: ColumnIndex::new(fields.iter().map(|f| f.name().as_str())),
            filled: vec![0; columns.len()],
            columns,
            rows: 0,
            order: Vec::new(),
            map_of,
            extra: None,
        }
    }

    /// The misfit of a map key that is not a field of the struct column.
    pub(super) fn unknown_key(&self, key: &str, value: String) -> Option<Misfit> {
        let (field, path) = self.map_of.as_ref()?;
        Some(Misfit {
            attribute: format!("{path}.{key}"),
            value: format!("{value} (a map key the column type has no field for)"),
            expected: field.data_type().clone(),
            format: None,
        })
    }

    /// Appends one row from an item's (or a map's) attributes.
    pub fn append(&mut self, map: &HashMap<String, AttributeValue>) -> Result<(), Misfit> {
        self.rows += 1;
        for (name, value) in map {
            match self.column_of(name) {
                Some(c) => {
                    self.columns[c].append(Val::Attr(value).present(), Some(value))?;
                    self.filled[c] = self.rows;
                }
                None => {
                    if let Some(extra) = self.extra.as_mut().filter(|e| e.takes(name)) {
                        extra.push(name, value.clone());
                    } else if let Some(m) = self.unknown_key(name, describe_value(value)) {
                        return Err(m);
                    }
                }
            }
        }
        self.fill_missing()
    }

    /// The column of attribute `name`, never the extra-attributes column
    /// (an attribute of that name is an extra attribute itself).
    pub(super) fn column_of(&self, name: &str) -> Option<usize> {
        self.index
            .find(name)
            .filter(|c| self.extra.as_ref().is_none_or(|e| e.column != *c))
    }

    /// Appends NULL to each column the current row gave no value (and the
    /// row's extra attributes, if any, to their column).
    pub(super) fn fill_missing(&mut self) -> Result<(), Misfit> {
        if let Some(extra) = self.extra.as_mut()
            && !extra.pending.is_empty()
        {
            // Keys sorted, values lossless DynamoDB JSON: as item_to_json renders items.
            let text = serde_json::Value::Object(item_to_json(&extra.pending)).to_string();
            extra.pending.clear();
            if let Kind::Json(b, _, _) = &mut self.columns[extra.column].kind {
                b.append_value(&text);
                self.filled[extra.column] = self.rows;
            }
        }
        for (column, filled) in self.columns.iter_mut().zip(&self.filled) {
            if *filled != self.rows {
                column.append(None, None)?;
            }
        }
        Ok(())
    }

    /// Appends a row in which every column is missing (under a NULL struct).
    fn append_absent(&mut self) -> Result<(), Misfit> {
        self.rows += 1;
        self.columns
            .iter_mut()
            .try_for_each(|column| column.append(None, None))
    }

    /// Values of temporal columns that were not in their format and were
    /// read as NULL (as the column asked).
    pub fn bad_times(&self) -> usize {
        self.columns
            .iter()
            .map(|c| match &c.kind {
                Kind::Time { bad, .. } => *bad,
                _ => 0,
            })
            .sum()
    }

    /// The finished arrays, one per column.
    pub fn finish(self) -> Result<Vec<ArrayRef>, ArrowError> {
        self.columns.into_iter().map(Column::finish).collect()
    }
}

/// The builder of one column or nested child.
pub(super) struct Column<'s> {
    pub(super) field: &'s Field,
    /// Attribute path for messages, e.g. `profile.tags[]`.
    pub(super) path: String,
    pub(super) kind: Kind<'s>,
}

/// How a column's values are appended; types DynamoDB has no direct
/// counterpart for (`Int32`, `Utf8View`, ...) build their base type and are
/// cast when finished.
pub(super) enum Kind<'s> {
    /// `S` values only: the planner relies on a Utf8 column holding strings.
    Strings(StringBuilder),
    /// Strings, and numbers as their exact digits.
    Text(StringBuilder),
    /// Any value, as JSON text (the buffer); `true`: only values that tell
    /// no type (the column is [`is_undetermined_field`]).
    Json(StringBuilder, String, bool),
    /// Integers, checked against the declared type's range.
    Int(PrimitiveBuilder<Int64Type>, Option<(i64, i64)>),
    Float(PrimitiveBuilder<Float64Type>),
    Decimal128(PrimitiveBuilder<Decimal128Type>, u8, i8),
    Decimal256(PrimitiveBuilder<Decimal256Type>, u8, i8),
    Bool(BooleanBuilder),
    Binary(BinaryBuilder),
    /// Times kept in strings or numbers, as units since the epoch (days
    /// for dates); values not in the format are NULL when `null_on_bad`.
    Time {
        values: PrimitiveBuilder<Int64Type>,
        format: TimeFormat,
        null_on_bad: bool,
        /// Values not in the format, read as NULL.
        bad: usize,
    },
    List {
        item: &'s FieldRef,
        offsets: Vec<i32>,
        validity: NullBufferBuilder,
        child: Box<Column<'s>>,
    },
    Struct {
        fields: &'s Fields,
        validity: NullBufferBuilder,
        record: Record<'s>,
    },
}

impl<'s> Column<'s> {
    fn new(field: &'s Field, path: String, n: usize, closed: bool) -> Result<Self, Unsupported> {
        let strings = || StringBuilder::with_capacity(n, n * 16);
        if let Some(format) = time_format_of(field) {
            let kind = Kind::Time {
                values: PrimitiveBuilder::with_capacity(n),
                format,
                null_on_bad: bad_time_is_null(field),
                bad: 0,
            };
            return Ok(Self { field, path, kind });
        }
        let kind = match field.data_type() {
            DataType::Utf8 if is_json_field(field) => {
                Kind::Json(strings(), String::new(), is_undetermined_field(field))
            }
            DataType::Utf8 if is_text_field(field) => Kind::Text(strings()),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Kind::Strings(strings()),
            DataType::Int64 => Kind::Int(PrimitiveBuilder::with_capacity(n), None),
            dt @ (DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32) => Kind::Int(PrimitiveBuilder::with_capacity(n), integer_range(dt)),
            DataType::Float64 | DataType::Float32 => {
                Kind::Float(PrimitiveBuilder::with_capacity(n))
            }
            DataType::Decimal128(p, s) => {
                Kind::Decimal128(PrimitiveBuilder::with_capacity(n), *p, *s)
            }
            DataType::Decimal256(p, s) => {
                Kind::Decimal256(PrimitiveBuilder::with_capacity(n), *p, *s)
            }
            DataType::Boolean => Kind::Bool(BooleanBuilder::with_capacity(n)),
            DataType::Binary | DataType::BinaryView | DataType::LargeBinary => {
                Kind::Binary(BinaryBuilder::with_capacity(n, n * 16))
            }
            DataType::List(item) => {
                let mut offsets = Vec::with_capacity(n + 1);
                offsets.push(0);
                Kind::List {
                    item,
                    offsets,
                    validity: NullBufferBuilder::new(n),
                    child: Box::new(Column::new(item, format!("{path}[]"), n, closed)?),
                }
            }
            DataType::Struct(fields) => Kind::Struct {
                fields,
                validity: NullBufferBuilder::new(n),
                record: Record::nested(fields, &path, n, closed.then_some(field))?,
            },
            other => {
                return Err(Unsupported {
                    path,
                    data_type: other.clone(),
                });
            }
        };
        Ok(Self { field, path, kind })
    }

    /// Appends a value (`None` when missing or NULL; `raw` is the attribute
    /// as it came, for the message when a required column has none).
    pub(super) fn append(
        &mut self,
        value: Option<Val>,
        raw: Option<&AttributeValue>,
    ) -> Result<(), Misfit> {
        let Some(v) = value else {
            if !self.field.is_nullable() {
                let value = raw.map_or_else(|| "(missing)".to_string(), describe_value);
                return Err(misfit(self.field, &self.path, value));
            }
            return self.append_null();
        };
        let Column { field, path, kind } = self;
        let fits = match kind {
            Kind::Strings(b) => match v.s() {
                Some(s) => {
                    b.append_value(s);
                    true
                }
                None => false,
            },
            Kind::Text(b) => match (v.s(), v.n()) {
                (Some(s), _) => {
                    b.append_value(s);
                    true
                }
                (_, Some(x)) => match ExactNumber::parse(x) {
                    Ok(x) => {
                        b.append_value(x.to_string());
                        true
                    }
                    Err(_) => false,
                },
                _ => false,
            },
            // A column whose type nothing has told yet takes values that
            // tell none either; the first that does widens it.
            Kind::Json(_, _, true) if !Observed::of(&v.to_attr()).undetermined() => false,
            Kind::Json(b, buf, _) => {
                buf.clear();
                match v {
                    Val::Attr(a) => write_json(a, buf),
                    other => write_json(&other.to_attr(), buf),
                }
                b.append_value(&*buf);
                true
            }
            Kind::Int(b, range) => append_number(b, v, |t| {
                fast_i64(t)
                    .or_else(|| ExactNumber::parse(t).ok()?.to_i64())
                    .filter(|x| range.is_none_or(|(min, max)| (min..=max).contains(x)))
            }),
            Kind::Float(b) => append_number(b, v, |t| Some(ExactNumber::parse(t).ok()?.to_f64())),
            Kind::Decimal128(b, p, s) => append_number(b, v, |t| {
                fast_decimal128(t, *p, *s)
                    .or_else(|| ExactNumber::parse(t).ok()?.to_decimal128(*p, *s))
            }),
            Kind::Decimal256(b, p, s) => {
                append_number(b, v, |t| ExactNumber::parse(t).ok()?.to_decimal256(*p, *s))
            }
            Kind::Time {
                values,
                format,
                null_on_bad,
                bad,
            } => {
                let parsed = match (v.s(), v.n()) {
                    (Some(s), _) => format.decode_str(s),
                    (_, Some(n)) => format.decode_number(n),
                    _ => None,
                };
                match parsed {
                    Some(x) => values.append_value(x),
                    None if *null_on_bad => {
                        values.append_null();
                        *bad += 1;
                    }
                    None => {
                        let mut m = misfit(field, path, describe_value(&v.to_attr()));
                        m.format = Some(format.to_string());
                        return Err(m);
                    }
                }
                true
            }
            Kind::Bool(b) => match v {
                Val::Attr(AttributeValue::Bool(x)) => {
                    b.append_value(*x);
                    true
                }
                _ => false,
            },
            Kind::Binary(b) => match v.b() {
                Some(x) => {
                    b.append_value(x);
                    true
                }
                None => false,
            },
            Kind::List {
                offsets,
                validity,
                child,
                ..
            } => {
                let before = *offsets.last().unwrap_or(&0);
                let members = match v {
                    Val::Attr(AttributeValue::L(l)) => {
                        for e in l {
                            child.append(Val::Attr(e).present(), Some(e))?;
                        }
                        l.len()
                    }
                    // Set members are borrowed, never copied.
                    Val::Attr(AttributeValue::Ss(m)) => {
                        for e in m {
                            child.append(Some(Val::Str(e)), None)?;
                        }
                        m.len()
                    }
                    Val::Attr(AttributeValue::Ns(m)) => {
                        for e in m {
                            child.append(Some(Val::Num(e)), None)?;
                        }
                        m.len()
                    }
                    Val::Attr(AttributeValue::Bs(m)) => {
                        for e in m {
                            child.append(Some(Val::Bin(e.as_ref())), None)?;
                        }
                        m.len()
                    }
                    _ => return Err(misfit(field, path, describe_value(&v.to_attr()))),
                };
                let end = i32::try_from(members)
                    .ok()
                    .and_then(|m| before.checked_add(m))
                    .ok_or_else(|| {
                        let too_many = format!("a list taking the page past {} members", i32::MAX);
                        misfit(field, path, too_many)
                    })?;
                offsets.push(end);
                validity.append_non_null();
                true
            }
            Kind::Struct {
                validity, record, ..
            } => match v {
                Val::Attr(AttributeValue::M(m)) => {
                    record.append(m)?;
                    validity.append_non_null();
                    true
                }
                _ => false,
            },
        };
        if fits {
            Ok(())
        } else {
            Err(misfit(field, path, describe_value(&v.to_attr())))
        }
    }

    pub(super) fn append_null(&mut self) -> Result<(), Misfit> {
        match &mut self.kind {
            Kind::Strings(b) | Kind::Text(b) | Kind::Json(b, _, _) => b.append_null(),
            Kind::Int(b, _) | Kind::Time { values: b, .. } => b.append_null(),
            Kind::Float(b) => b.append_null(),
            Kind::Decimal128(b, ..) => b.append_null(),
            Kind::Decimal256(b, ..) => b.append_null(),
            Kind::Bool(b) => b.append_null(),
            Kind::Binary(b) => b.append_null(),
            Kind::List {
                offsets, validity, ..
            } => {
                offsets.push(*offsets.last().unwrap_or(&0));
                validity.append_null();
            }
            Kind::Struct {
                validity, record, ..
            } => {
                validity.append_null();
                record.append_absent()?;
            }
        }
        Ok(())
    }

    /// The finished array, in the column's declared type.
    fn finish(self) -> Result<ArrayRef, ArrowError> {
        let array: ArrayRef = match self.kind {
            Kind::Strings(mut b) | Kind::Text(mut b) | Kind::Json(mut b, _, _) => {
                Arc::new(b.finish())
            }
            Kind::Int(mut b, _) | Kind::Time { values: mut b, .. } => Arc::new(b.finish()),
            Kind::Float(mut b) => Arc::new(b.finish()),
            Kind::Decimal128(mut b, p, s) => Arc::new(b.finish().with_precision_and_scale(p, s)?),
            Kind::Decimal256(mut b, p, s) => Arc::new(b.finish().with_precision_and_scale(p, s)?),
            Kind::Bool(mut b) => Arc::new(b.finish()),
            Kind::Binary(mut b) => Arc::new(b.finish()),
            Kind::List {
                item,
                offsets,
                mut validity,
                child,
            } => Arc::new(ListArray::try_new(
                Arc::clone(item),
                OffsetBuffer::new(ScalarBuffer::from(offsets)),
                child.finish()?,
                validity.finish(),
            )?),
            Kind::Struct {
                fields,
                mut validity,
                record,
            } => {
                let rows = record.rows;
                let children = record.finish()?;
                Arc::new(if fields.is_empty() {
                    StructArray::new_empty_fields(rows, validity.finish())
                } else {
                    StructArray::try_new(fields.clone(), children, validity.finish())?
                })
            }
        };
        let declared = self.field.data_type();
        if array.data_type() == declared {
            Ok(array)
        } else {
            cast(&array, declared)
        }
    }
}

/// Appends the number `convert` makes of an `N` value; `false` when the value
/// is not a number or does not fit.
fn append_number<T: ArrowPrimitiveType>(
    b: &mut PrimitiveBuilder<T>,
    v: Val,
    convert: impl FnOnce(&str) -> Option<T::Native>,
) -> bool {
    match v.n().and_then(convert) {
        Some(x) => {
            b.append_value(x);
            true
        }
        None => false,
    }
}

fn misfit(field: &Field, path: &str, value: String) -> Misfit {
    Misfit {
        attribute: path.to_string(),
        value,
        expected: field.data_type().clone(),
        format: None,
    }
}

/// The range of the integer types that are decoded through `Int64`.
fn integer_range(dt: &DataType) -> Option<(i64, i64)> {
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
