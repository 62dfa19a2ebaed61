//! Change records → the rows a mirror commit writes: per item the last
//! change wins — its new image, or a removal of its key.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, StringArray, StructArray,
};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::row::{RowConverter, SortField};

/// The column of a change row that says the item was removed.
pub(crate) const DELETE_COLUMN: &str = "__dynamo_mirror_removed";

/// One row per item changed in `batches` (change records in stream order,
/// see `dynamo_datafusion::changes`): the item's last new image, or its
/// keys with [`DELETE_COLUMN`] true when its last change removed it.
/// `columns` are the table's columns; `keys` name its key attributes.
pub(crate) fn last_changes(
    batches: &[RecordBatch],
    columns: &SchemaRef,
    keys: &[String],
) -> Result<RecordBatch, ArrowError> {
    let out_schema = change_schema(columns);
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(RecordBatch::new_empty(out_schema));
    }
    let mut key_columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); keys.len()];
    let mut images: Vec<&StructArray> = Vec::with_capacity(batches.len());
    let mut last: HashMap<Vec<u8>, (usize, usize, bool)> = HashMap::new();
    let mut order: Vec<Vec<u8>> = Vec::new();
    let converter = RowConverter::new(
        keys.iter()
            .map(|k| {
                columns
                    .field_with_name(k)
                    .map(|f| SortField::new(f.data_type().clone()))
            })
            .collect::<Result<Vec<_>, _>>()?,
    )?;
    for (b, batch) in batches.iter().enumerate() {
        let events = string_column(batch, "event")?;
        let key_struct = struct_column(batch, "keys")?;
        let new_image = struct_column(batch, "new_image")?;
        let mut these = Vec::with_capacity(keys.len());
        for (k, name) in keys.iter().enumerate() {
            let column = key_struct.column_by_name(name).ok_or_else(|| {
                ArrowError::SchemaError(format!("change records have no key '{name}'"))
            })?;
            these.push(Arc::clone(column));
            key_columns[k].push(Arc::clone(column));
        }
        let rows = converter.convert_columns(&these)?;
        for (r, row) in rows.iter().enumerate() {
            let event = events.value(r);
            // A record of no new image that is not an INSERT or MODIFY is a
            // removal: REMOVE, or an event name this SDK does not know (how
            // DynamoDB Local records its time-to-live deletions).
            let upsert = event == "INSERT" || event == "MODIFY";
            let removed = !upsert && new_image.is_null(r);
            if upsert && new_image.is_null(r) {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "a {event} record has no new image: the table's stream must show new images \
                     (NEW_IMAGE or NEW_AND_OLD_IMAGES)"
                )));
            }
            let key = row.as_ref().to_vec();
            if last.insert(key.clone(), (b, r, removed)).is_none() {
                order.push(key);
            }
        }
        images.push(new_image);
    }
    let picks: Vec<(usize, usize, bool)> =
        order.iter().filter_map(|k| last.get(k).copied()).collect();
    let at: Vec<(usize, usize)> = picks.iter().map(|&(b, r, _)| (b, r)).collect();
    let mut out: Vec<ArrayRef> = Vec::with_capacity(out_schema.fields().len());
    for field in columns.fields() {
        let column = match keys.iter().position(|k| k == field.name()) {
            Some(k) => {
                let parts: Vec<&dyn Array> = key_columns[k].iter().map(|a| a.as_ref()).collect();
                interleave(&parts, &at)?
            }
            None => {
                let parts = images
                    .iter()
                    .map(|image| {
                        image.column_by_name(field.name()).ok_or_else(|| {
                            ArrowError::SchemaError(format!(
                                "change images have no column '{}'",
                                field.name()
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let parts: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                interleave(&parts, &at)?
            }
        };
        out.push(column);
    }
    out.push(Arc::new(BooleanArray::from(
        picks
            .iter()
            .map(|&(_, _, removed)| removed)
            .collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(out_schema, out)
}

/// The table's columns, nullable, and [`DELETE_COLUMN`].
pub(crate) fn change_schema(columns: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = columns
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(DELETE_COLUMN, DataType::Boolean, false));
    Arc::new(Schema::new(fields))
}

fn string_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StringArray, ArrowError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| {
            ArrowError::SchemaError(format!("change records have no text column '{name}'"))
        })
}

fn struct_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a StructArray, ArrowError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StructArray>())
        .ok_or_else(|| ArrowError::SchemaError(format!("change records have no column '{name}'")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Fields;

    fn columns() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("pk", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]))
    }

    /// Change records of (event, key, n in the new image).
    fn records(rows: &[(&str, &str, Option<i64>)]) -> Result<RecordBatch, ArrowError> {
        let key_fields = Fields::from(vec![Field::new("pk", DataType::Utf8, false)]);
        let image_fields = Fields::from(vec![
            Field::new("pk", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
        ]);
        let keys = StructArray::try_new(
            key_fields.clone(),
            vec![Arc::new(StringArray::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            ))],
            None,
        )?;
        let removed: Vec<bool> = rows.iter().map(|r| r.0 == "REMOVE").collect();
        let image = StructArray::try_new(
            image_fields.clone(),
            vec![
                Arc::new(StringArray::from(
                    rows.iter()
                        .map(|r| (r.0 != "REMOVE").then_some(r.1))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.2).collect::<Vec<_>>(),
                )),
            ],
            Some(removed.iter().map(|r| !r).collect::<Vec<_>>().into()),
        )?;
        let schema = Schema::new(vec![
            Field::new("event", DataType::Utf8, false),
            Field::new("keys", DataType::Struct(key_fields), false),
            Field::new("new_image", DataType::Struct(image_fields), true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(keys),
                Arc::new(image),
            ],
        )
    }

    fn rows(batch: &RecordBatch) -> Vec<(String, Option<i64>, bool)> {
        let pk = batch.column(0).as_any().downcast_ref::<StringArray>();
        let n = batch.column(1).as_any().downcast_ref::<Int64Array>();
        let removed = batch.column(2).as_any().downcast_ref::<BooleanArray>();
        let (Some(pk), Some(n), Some(removed)) = (pk, n, removed) else {
            return Vec::new();
        };
        (0..batch.num_rows())
            .map(|i| {
                (
                    pk.value(i).to_string(),
                    n.is_valid(i).then(|| n.value(i)),
                    removed.value(i),
                )
            })
            .collect()
    }

    #[test]
    fn the_last_change_of_each_item_wins_across_batches() -> Result<(), ArrowError> {
        let first = records(&[
            ("INSERT", "a", Some(1)),
            ("INSERT", "b", Some(2)),
            ("MODIFY", "a", Some(3)),
        ])?;
        let second = records(&[
            ("REMOVE", "b", None),
            ("INSERT", "c", Some(4)),
            ("REMOVE", "a", None),
            ("INSERT", "a", Some(5)),
        ])?;
        let out = last_changes(&[first, second], &columns(), &["pk".to_string()])?;
        assert_eq!(
            rows(&out),
            vec![
                ("a".to_string(), Some(5), false),
                ("b".to_string(), None, true),
                ("c".to_string(), Some(4), false),
            ]
        );
        Ok(())
    }

    #[test]
    fn no_change_records_make_no_rows() -> Result<(), ArrowError> {
        let none = last_changes(&[], &columns(), &["pk".to_string()])?;
        assert_eq!(none.num_rows(), 0);
        assert_eq!(none.schema(), change_schema(&columns()));
        let empty = records(&[])?;
        assert_eq!(
            last_changes(&[empty], &columns(), &["pk".to_string()])?.num_rows(),
            0
        );
        Ok(())
    }

    #[test]
    fn an_unknown_event_without_a_new_image_removes_the_item() -> Result<(), ArrowError> {
        // DynamoDB Local's time-to-live deletions reach the SDK as an
        // unknown event name, with the old image only.
        let first = records(&[("INSERT", "a", Some(1)), ("INSERT", "b", Some(2))])?;
        let second = records(&[("REMOVE", "a", None)])?;
        let mut cols = second.columns().to_vec();
        cols[0] = Arc::new(StringArray::from(vec!["UNKNOWN"]));
        let second = RecordBatch::try_new(second.schema(), cols)?;
        let out = last_changes(&[first, second], &columns(), &["pk".to_string()])?;
        assert_eq!(
            rows(&out),
            vec![
                ("a".to_string(), None, true),
                ("b".to_string(), Some(2), false)
            ]
        );
        Ok(())
    }

    #[test]
    fn a_change_without_a_new_image_is_an_error_not_a_blank_row() -> Result<(), ArrowError> {
        let mut batch = records(&[("MODIFY", "a", Some(1))])?;
        let image = batch
            .column(2)
            .as_any()
            .downcast_ref::<StructArray>()
            .cloned();
        if let Some(image) = image {
            let (fields, columns, _) = image.into_parts();
            let blank = StructArray::try_new(fields, columns, Some(vec![false].into()))?;
            let mut columns = batch.columns().to_vec();
            columns[2] = Arc::new(blank);
            batch = RecordBatch::try_new(batch.schema(), columns)?;
        }
        let err = last_changes(&[batch], &columns(), &["pk".to_string()]);
        assert!(err.is_err_and(|e| e.to_string().contains("NEW_IMAGE")));
        Ok(())
    }
}
