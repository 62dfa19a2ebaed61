//! Stream records → Arrow rows: the event, the keys and both images decoded
//! with the table's own schema, the record's time, sequence number and shard.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, OperationType, Record as StreamRecord,
};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, StringArray, StructArray, TimestampMillisecondArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use crate::decode::ItemDecoder;
use crate::error::{Error, Result};
use crate::metadata::TableMeta;
use crate::value::Item;

/// The principal DynamoDB's time to live deletes items as.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// The columns of a table's change records.
pub(crate) fn changes_schema(meta: &TableMeta, table: &SchemaRef) -> Result<SchemaRef> {
    let (keys, images) = key_and_image_fields(meta, table)?;
    Ok(Arc::new(Schema::new(vec![
        Field::new("event", DataType::Utf8, false),
        Field::new("expired", DataType::Boolean, false),
        Field::new("keys", DataType::Struct(keys), false),
        Field::new("new_image", DataType::Struct(images.clone()), true),
        Field::new("old_image", DataType::Struct(images), true),
        Field::new(
            "created_at",
            DataType::Timestamp(TimeUnit::Millisecond, Some(crate::value::time::UTC.into())),
            true,
        ),
        Field::new("sequence_number", DataType::Utf8, false),
        Field::new("shard_id", DataType::Utf8, false),
    ])))
}

/// The table's key columns (as they are), and every column for an image
/// (nullable: an image holds what the item held).
fn key_and_image_fields(meta: &TableMeta, table: &SchemaRef) -> Result<(Fields, Fields)> {
    let keys = meta
        .keys
        .attribute_names()
        .map(|name| {
            table
                .field_with_name(name)
                .map(|f| f.as_ref().clone())
                .map_err(|_| Error::Metadata {
                    table: meta.name.clone(),
                    reason: format!("the table's schema has no column for its key '{name}'"),
                })
        })
        .collect::<Result<Vec<Field>>>()?;
    // The extra-attributes column, when the table has one, takes what an
    // image holds beyond the columns.
    let images: Vec<Field> = table
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Ok((keys.into(), images.into()))
}

/// Decodes pages of stream records of one table.
#[derive(Debug, Clone)]
pub(crate) struct ChangeDecoder {
    table: String,
    schema: SchemaRef,
    keys: ItemDecoder,
    images: ItemDecoder,
}

impl ChangeDecoder {
    pub(crate) fn try_new(meta: &TableMeta, table: &SchemaRef) -> Result<Self> {
        let (keys, images) = key_and_image_fields(meta, table)?;
        let decoder = |fields: Fields| {
            ItemDecoder::try_new(&meta.name, Arc::new(Schema::new(fields)))
                .map(|d| d.naming_keys(meta.keys.attribute_names()))
        };
        Ok(Self {
            table: meta.name.clone(),
            schema: changes_schema(meta, table)?,
            keys: decoder(keys)?,
            images: decoder(images)?,
        })
    }

    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// One batch of `records` read from `shard`.
    pub(crate) fn decode(&self, shard: &str, records: &[StreamRecord]) -> Result<RecordBatch> {
        let mut events = Vec::with_capacity(records.len());
        let mut expired = Vec::with_capacity(records.len());
        let mut keys = Vec::with_capacity(records.len());
        let (mut news, mut olds) = (Vec::new(), Vec::new());
        let (mut has_new, mut has_old) = (Vec::new(), Vec::new());
        let mut created = Vec::with_capacity(records.len());
        let mut sequences = Vec::with_capacity(records.len());
        for r in records {
            let change = r.dynamodb();
            events.push(match r.event_name() {
                Some(OperationType::Insert) => "INSERT",
                Some(OperationType::Modify) => "MODIFY",
                Some(OperationType::Remove) => "REMOVE",
                _ => "UNKNOWN",
            });
            expired.push(r.user_identity().is_some_and(|who| {
                who.r#type() == Some("Service") && who.principal_id() == Some(TTL_PRINCIPAL)
            }));
            keys.push(item(change.and_then(|c| c.keys())));
            let new = change.and_then(|c| c.new_image());
            let old = change.and_then(|c| c.old_image());
            has_new.push(new.is_some());
            has_old.push(old.is_some());
            news.push(item(new));
            olds.push(item(old));
            created.push(
                change
                    .and_then(|c| c.approximate_creation_date_time())
                    .and_then(|t| t.to_millis().ok()),
            );
            sequences.push(
                change
                    .and_then(|c| c.sequence_number())
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        let arrow = |source| Error::Arrow {
            table: self.table.clone(),
            source,
        };
        let keys = struct_of(self.keys.decode(&keys)?, None).map_err(arrow)?;
        let news = struct_of(self.images.decode(&news)?, Some(has_new)).map_err(arrow)?;
        let olds = struct_of(self.images.decode(&olds)?, Some(has_old)).map_err(arrow)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(events)),
            Arc::new(BooleanArray::from(expired)),
            keys,
            news,
            olds,
            Arc::new(
                TimestampMillisecondArray::from(created).with_timezone(crate::value::time::UTC),
            ),
            Arc::new(StringArray::from(sequences)),
            Arc::new(StringArray::from(vec![shard; records.len()])),
        ];
        RecordBatch::try_new(Arc::clone(&self.schema), columns).map_err(arrow)
    }
}

/// The columns of `batch` as one struct column, NULL where `present` is false.
fn struct_of(
    batch: RecordBatch,
    present: Option<Vec<bool>>,
) -> std::result::Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    let rows = batch.num_rows();
    let fields = batch.schema().fields().clone();
    let nulls = present.map(NullBuffer::from);
    Ok(Arc::new(if fields.is_empty() {
        StructArray::new_empty_fields(rows, nulls)
    } else {
        StructArray::try_new(fields, batch.columns().to_vec(), nulls)?
    }))
}

/// A stream image as the DynamoDB client's item (empty when there is none).
fn item(image: Option<&HashMap<String, StreamValue>>) -> Item {
    image
        .map(|m| m.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        .unwrap_or_default()
}

/// A stream value as the DynamoDB client's value: the same DynamoDB type.
pub(crate) fn value(v: &StreamValue) -> AttributeValue {
    match v {
        StreamValue::S(s) => AttributeValue::S(s.clone()),
        StreamValue::N(n) => AttributeValue::N(n.clone()),
        StreamValue::B(b) => AttributeValue::B(b.clone()),
        StreamValue::Bool(b) => AttributeValue::Bool(*b),
        StreamValue::Null(b) => AttributeValue::Null(*b),
        StreamValue::Ss(v) => AttributeValue::Ss(v.clone()),
        StreamValue::Ns(v) => AttributeValue::Ns(v.clone()),
        StreamValue::Bs(v) => AttributeValue::Bs(v.clone()),
        StreamValue::L(v) => AttributeValue::L(v.iter().map(value).collect()),
        StreamValue::M(m) => {
            AttributeValue::M(m.iter().map(|(k, v)| (k.clone(), value(v))).collect())
        }
        // A type this client does not know (none exists today): NULL.
        _ => AttributeValue::Null(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{Identity, StreamRecord as Change};
    use datafusion::arrow::array::Array;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    fn record(event: OperationType, id: &str, n: Option<&str>, old: Option<&str>) -> StreamRecord {
        let image = |v: &str| {
            HashMap::from([
                ("id".to_string(), StreamValue::S(id.into())),
                ("n".to_string(), StreamValue::N(v.into())),
            ])
        };
        let change = Change::builder()
            .keys("id", StreamValue::S(id.into()))
            .set_new_image(n.map(image))
            .set_old_image(old.map(image))
            .sequence_number("100")
            .approximate_creation_date_time(aws_smithy_types::DateTime::from_secs(1_764_490_500))
            .build();
        StreamRecord::builder()
            .event_name(event)
            .dynamodb(change)
            .build()
    }

    #[test]
    fn records_decode_with_the_tables_schema() {
        let meta = TableMeta::hash_only("T", "id");
        let table = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]));
        let decoder = ChangeDecoder::try_new(&meta, &table).expect("decoder");
        let mut expired = record(OperationType::Remove, "b", None, Some("7"));
        expired.user_identity = Some(
            Identity::builder()
                .principal_id(TTL_PRINCIPAL)
                .r#type("Service")
                .build(),
        );
        let batch = decoder
            .decode(
                "shard-1",
                &[
                    record(OperationType::Insert, "a", Some("1"), None),
                    record(OperationType::Modify, "a", Some("2"), Some("1")),
                    expired,
                ],
            )
            .expect("decodes");
        assert_eq!(batch.num_rows(), 3);
        let events = batch.column(0).as_string::<i32>();
        assert_eq!(
            (events.value(0), events.value(1), events.value(2)),
            ("INSERT", "MODIFY", "REMOVE")
        );
        let expired = batch.column(1).as_boolean();
        assert!(!expired.value(0) && expired.value(2));
        let new = batch.column(3).as_struct();
        assert!(
            new.is_valid(0) && new.is_null(2),
            "a REMOVE has no new image"
        );
        assert_eq!(new.column(1).as_primitive::<Int64Type>().value(1), 2);
        let old = batch.column(4).as_struct();
        assert!(old.is_null(0) && old.is_valid(1));
        assert_eq!(old.column(1).as_primitive::<Int64Type>().value(2), 7);
        assert_eq!(batch.column(7).as_string::<i32>().value(0), "shard-1");
    }
}
