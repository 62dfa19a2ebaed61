//! A table's columns as Delta Lake columns, and back.
//!
//! Delta has no Decimal256, no nanosecond timestamp readable by every
//! reader, no second or millisecond timestamps and no null type. A mirror
//! keeps each column losslessly in a type every Delta reader knows:
//!
//! | table column | mirror column |
//! |---|---|
//! | `Timestamp(s \| ms \| µs, tz)`, `Date64` | `timestamp` (µs, UTC) |
//! | `Timestamp(ns, tz)` | `long` (nanoseconds since the epoch) |
//! | `Decimal256(p, s)` | `string` (the exact number) |
//! | `Null` (never seen with a value) | `string` (all null) |
//! | large and view strings, binaries, lists | their plain kinds |
//!
//! Every other type is kept as it is (nested types field by field). Reads
//! cast back to the table's own types, so a query answers with the same
//! types and values from the mirror as from DynamoDB. Mirror columns are
//! nullable: a row of a removed item carries only its keys.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit,
};
use datafusion::arrow::error::ArrowError;

/// The time zone of every mirror timestamp.
const UTC: &str = "UTC";

/// The Delta-readable schema of a table's `source` columns: an error names
/// the first column that has no Delta type.
pub(crate) fn delta_schema(source: &Schema) -> Result<SchemaRef, String> {
    let fields = source
        .fields()
        .iter()
        .map(|f| delta_field(f).map_err(|why| format!("column '{}': {why}", f.name())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn delta_field(field: &Field) -> Result<Field, String> {
    Ok(Field::new(
        field.name(),
        delta_type(field.data_type())?,
        true,
    ))
}

fn delta_type(t: &DataType) -> Result<DataType, String> {
    use DataType as T;
    Ok(match t {
        T::Boolean | T::Int8 | T::Int16 | T::Int32 | T::Int64 | T::Float32 | T::Float64 => {
            t.clone()
        }
        T::Utf8 | T::Binary | T::Date32 => t.clone(),
        T::Decimal128(p, _) if *p <= 38 => t.clone(),
        T::LargeUtf8 | T::Utf8View | T::Decimal256(..) | T::Null => T::Utf8,
        T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_) => T::Binary,
        T::Timestamp(TimeUnit::Nanosecond, _) => T::Int64,
        T::Timestamp(..) | T::Date64 => T::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        T::List(item) | T::LargeList(item) | T::FixedSizeList(item, _) => {
            T::List(Arc::new(delta_field(item)?))
        }
        T::Struct(fields) if !fields.is_empty() => T::Struct(
            fields
                .iter()
                .map(|f| delta_field(f).map_err(|why| format!("field '{}': {why}", f.name())))
                .collect::<Result<Fields, _>>()?,
        ),
        T::Map(entries, sorted) => match entries.data_type() {
            T::Struct(kv) if kv.len() == 2 => T::Map(
                Arc::new(Field::new(
                    entries.name(),
                    T::Struct(Fields::from(vec![
                        Field::new(kv[0].name(), delta_type(kv[0].data_type())?, false),
                        delta_field(&kv[1])?,
                    ])),
                    false,
                )),
                *sorted,
            ),
            other => return Err(format!("a map of {other} has no Delta type")),
        },
        other => return Err(format!("{other} has no Delta type")),
    })
}

/// `batch` (of the table's columns) in the mirror's types: `delta` is
/// [`delta_schema`] of the batch's schema, possibly with more columns.
pub(crate) fn to_delta(batch: &RecordBatch, delta: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    convert_batch(batch, delta)
}

/// `batch` (of mirror columns) in the table's types: `source` names the
/// same columns in the same order.
pub(crate) fn from_delta(
    batch: &RecordBatch,
    source: &SchemaRef,
) -> Result<RecordBatch, ArrowError> {
    convert_batch(batch, source)
}

/// Each column of `batch` in the type of the same column of `to` (a
/// batch of no column keeps its row count: `count(*)`).
fn convert_batch(batch: &RecordBatch, to: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(to.fields())
        .map(|(column, field)| convert(column, field))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::clone(to), columns, &rows)
}

/// One column in the type of `to`: lossless both ways for the pairs
/// [`delta_type`] makes (a cast that would lose a value is an error).
fn convert(column: &ArrayRef, to: &FieldRef) -> Result<ArrayRef, ArrowError> {
    if column.data_type() == to.data_type() {
        return Ok(Arc::clone(column));
    }
    if to.data_type() == &DataType::Null {
        return Ok(new_null_array(&DataType::Null, column.len()));
    }
    let safe = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    cast_with_options(column, to.data_type(), &safe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Array, Date64Array, Decimal256Array, Int64Array, NullArray, StringArray,
        TimestampNanosecondArray, TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::i256;

    fn source() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("pk", DataType::Utf8, false),
            Field::new("big", DataType::Decimal256(76, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
                true,
            ),
            Field::new(
                "ns",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                true,
            ),
            Field::new("day", DataType::Date64, true),
            Field::new("nothing", DataType::Null, true),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    #[test]
    fn delta_types_are_the_ones_every_reader_knows() -> Result<(), String> {
        let delta = delta_schema(&source())?;
        let types: Vec<String> = delta
            .fields()
            .iter()
            .map(|f| f.data_type().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "Utf8",
                "Utf8",
                "Timestamp(µs, \"UTC\")",
                "Int64",
                "Timestamp(µs, \"UTC\")",
                "Utf8",
                "Int64"
            ]
        );
        assert!(delta.fields().iter().all(|f| f.is_nullable()));
        let err = delta_schema(&Schema::new(vec![Field::new(
            "u",
            DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::DayTime),
            true,
        )]));
        assert!(err.is_err_and(|e| e.contains("column 'u'")));
        Ok(())
    }

    #[test]
    fn values_go_to_delta_and_back_unchanged() -> Result<(), Box<dyn std::error::Error>> {
        let source = source();
        let big = i256::from_string("123456789012345678901234567890123456789012345678901")
            .ok_or("i256")?;
        let batch = RecordBatch::try_new(
            Arc::clone(&source),
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(
                    Decimal256Array::from(vec![Some(big), None]).with_precision_and_scale(76, 2)?,
                ),
                Arc::new(
                    TimestampSecondArray::from(vec![Some(1_700_000_000), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(
                    TimestampNanosecondArray::from(vec![Some(1_700_000_000_123_456_789), None])
                        .with_timezone("UTC"),
                ),
                Arc::new(Date64Array::from(vec![Some(86_400_000), None])),
                Arc::new(NullArray::new(2)),
                Arc::new(Int64Array::from(vec![Some(7), None])),
            ],
        )?;
        let delta = delta_schema(&source)?;
        let stored = to_delta(&batch, &delta)?;
        let text = stored
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or("text")?;
        assert_eq!(
            text.value(0),
            "1234567890123456789012345678901234567890123456789.01"
        );
        assert_eq!(from_delta(&stored, &source)?, batch);
        assert_eq!(stored.column(5).null_count(), 2);
        // No column at all (count(*)): the rows are still counted.
        let none = batch.project(&[])?;
        let empty = Arc::new(Schema::empty());
        assert_eq!(from_delta(&to_delta(&none, &empty)?, &empty)?.num_rows(), 2);
        Ok(())
    }
}
