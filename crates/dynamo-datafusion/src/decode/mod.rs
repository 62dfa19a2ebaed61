//! Items → Arrow record batches, driven by the schema.
//!
//! Each item is visited once: its attributes go straight into the builders of
//! their columns ([`builder`]), so the item is read while it is in cache and
//! nothing is gathered in between. A value that does not fit its column is an
//! error naming the table, the attribute path and the value — never a silent
//! NULL or a rounded number.

mod builder;
mod cursor;
mod from_json;

pub(crate) use cursor::items_span;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::{RecordBatch, RecordBatchOptions};
use datafusion::arrow::datatypes::SchemaRef;

use crate::error::{Error, Result};
use crate::schema::infer::is_extra_field;
use builder::{Misfit, Record};

pub use crate::value::Item;

/// Decodes pages of items into record batches of a fixed schema.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use aws_sdk_dynamodb::types::AttributeValue;
/// use datafusion::arrow::datatypes::{DataType, Field, Schema};
/// use dynamo_datafusion::decode::ItemDecoder;
///
/// let schema = Arc::new(Schema::new(vec![
///     Field::new("id", DataType::Utf8, false),
///     Field::new("price", DataType::Decimal128(38, 2), true),
/// ]));
/// let decoder = ItemDecoder::try_new("orders", schema).unwrap();
/// let item = HashMap::from([
///     ("id".to_string(), AttributeValue::S("o-1".into())),
///     ("price".to_string(), AttributeValue::N("12.5".into())),
/// ]);
/// let batch = decoder.decode(&[item]).unwrap();
/// assert_eq!(batch.num_rows(), 1);
/// ```
///
/// A map decoded into a struct column may hold keys the struct has no field
/// for: they are not read. Columns whose type is inferred (and so can widen)
/// are decoded with closed maps instead, where such a key does not fit.
#[derive(Debug, Clone)]
pub struct ItemDecoder {
    table: Arc<str>,
    schema: SchemaRef,
    /// Per column: its maps hold only the keys its struct type names.
    closed_maps: Arc<[bool]>,
    /// Attributes that have a column in the table (read or not): the others
    /// go to the extra-attributes column, when the schema has one.
    known: Arc<HashSet<String>>,
    /// The table's key attributes, to name the item in messages.
    keys: Arc<[String]>,
    /// Values read as NULL because they were not in their time format,
    /// since [`take_bad_times`](Self::take_bad_times) (shared by clones).
    bad_times: Arc<AtomicUsize>,
}

/// What, besides its schema, decides how an [`ItemDecoder`] reads items.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecoderSettings {
    /// Per column: its maps hold only the keys its struct type names.
    pub closed_maps: Vec<bool>,
    /// Attributes that have a column in the table, sorted.
    pub known: Vec<String>,
    /// The table's key attributes.
    pub keys: Vec<String>,
}

impl ItemDecoder {
    /// A decoder for `schema`; fails when a column type cannot hold DynamoDB values.
    pub fn try_new(table: &str, schema: SchemaRef) -> Result<Self> {
        let closed_maps = vec![false; schema.fields().len()].into();
        let known = Arc::new(column_names(&schema));
        let decoder = Self {
            table: table.into(),
            schema,
            closed_maps,
            known,
            keys: Arc::new([]),
            bad_times: Arc::default(),
        };
        decoder.record(0)?;
        Ok(decoder)
    }

    /// The same decoder, where a map with a key its column's struct type
    /// lacks does not fit, for each column `closed` names.
    pub(crate) fn closing_maps(mut self, closed: impl Fn(&str) -> bool) -> Self {
        self.closed_maps = self
            .schema
            .fields()
            .iter()
            .map(|f| closed(f.name()))
            .collect();
        self
    }

    /// The same decoder, knowing that the attributes of `table_schema` have
    /// columns even where this decoder does not read them: only the others
    /// belong in the extra-attributes column.
    pub(crate) fn knowing_columns(mut self, table_schema: &SchemaRef) -> Self {
        self.known = Arc::new(column_names(table_schema));
        self
    }

    /// The same decoder, naming an item by these key attributes when one of
    /// its values does not fit.
    pub(crate) fn naming_keys<'a>(mut self, keys: impl IntoIterator<Item = &'a str>) -> Self {
        self.keys = keys.into_iter().map(str::to_string).collect();
        self
    }

    /// A decoder of the same table for another schema (a projection of this
    /// one's columns), keeping each column's closed maps.
    pub(crate) fn reshaped(&self, schema: SchemaRef) -> Result<Self> {
        let closed = |name: &str| {
            self.schema
                .index_of(name)
                .ok()
                .and_then(|i| self.closed_maps.get(i).copied())
                .unwrap_or(false)
        };
        let mut decoder = Self::try_new(&self.table, schema)?.closing_maps(closed);
        decoder.known = Arc::clone(&self.known);
        decoder.keys = Arc::clone(&self.keys);
        Ok(decoder)
    }

    /// What, besides its schema, decides how this decoder reads items.
    pub(crate) fn settings(&self) -> DecoderSettings {
        let mut known: Vec<String> = self.known.iter().cloned().collect();
        known.sort();
        DecoderSettings {
            closed_maps: self.closed_maps.to_vec(),
            known,
            keys: self.keys.to_vec(),
        }
    }

    /// A decoder for `schema` with [`settings`](Self::settings) taken
    /// from another.
    pub(crate) fn with_settings(
        table: &str,
        schema: SchemaRef,
        settings: DecoderSettings,
    ) -> Result<Self> {
        let mut decoder = Self::try_new(table, schema)?;
        let columns = decoder.schema.fields().len();
        if settings.closed_maps.len() != columns {
            return Err(Error::Metadata {
                table: table.to_string(),
                reason: format!(
                    "a scan's decoding layout has map settings for {} columns, its schema {columns}",
                    settings.closed_maps.len()
                ),
            });
        }
        decoder.closed_maps = settings.closed_maps.into();
        decoder.known = Arc::new(settings.known.into_iter().collect());
        decoder.keys = settings.keys.into();
        Ok(decoder)
    }

    /// Empty builders for the schema, room for `rows` rows.
    fn record(&self, rows: usize) -> Result<Record<'_>> {
        let closed = |i: usize| self.closed_maps.get(i).copied().unwrap_or(false);
        Record::new(self.schema.fields(), rows, closed, &self.known).map_err(|u| {
            Error::UnsupportedType {
                column: u.path,
                data_type: u.data_type,
            }
        })
    }

    /// The schema of the batches produced.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes `items` into one batch.
    pub fn decode(&self, items: &[Item]) -> Result<RecordBatch> {
        let mut record = self.record(items.len())?;
        for item in items {
            record.append(item).map_err(|m| self.misfit(m, item))?;
        }
        self.finish(record, items.len())
    }

    /// Decodes the first `max` items (all when `None`) of a JSON array of
    /// items in DynamoDB JSON — the `Items` of a Scan or Query answer as
    /// DynamoDB sent it — into one batch, the same batch [`decode`](Self::decode)
    /// makes of those items as SDK values.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use datafusion::arrow::array::{Array, AsArray};
    /// use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    /// use dynamo_datafusion::decode::ItemDecoder;
    ///
    /// let schema = Arc::new(Schema::new(vec![
    ///     Field::new("id", DataType::Utf8, false),
    ///     Field::new("qty", DataType::Int64, true),
    /// ]));
    /// let decoder = ItemDecoder::try_new("orders", schema).unwrap();
    /// let items = r#"[{"id":{"S":"o-1"},"qty":{"N":"3"}},{"id":{"S":"o-2"}}]"#;
    /// let batch = decoder.decode_json(items, None).unwrap();
    /// let qty = batch.column(1).as_primitive::<Int64Type>();
    /// assert_eq!((qty.value(0), qty.is_null(1)), (3, true));
    /// ```
    pub fn decode_json(&self, items: &str, max: Option<usize>) -> Result<RecordBatch> {
        // A guess at the rows, for the builders' first allocation.
        let guess = max.unwrap_or(usize::MAX).min(items.len() / 128 + 1);
        let mut record = self.record(guess)?;
        match record.append_json_items(items, max) {
            Some(rows) => self.finish(record, rows),
            None => self.decode_json_slowly(items, max),
        }
    }

    /// The full parse into SDK values, for pages the direct walk gave up on:
    /// it decodes them identically or says what is wrong.
    fn decode_json_slowly(&self, items: &str, max: Option<usize>) -> Result<RecordBatch> {
        let bad = |reason: String| Error::BadAnswer {
            table: self.table.to_string(),
            reason,
        };
        let mut parsed = crate::value::dynamo_json::items_from_json_text(items).map_err(bad)?;
        parsed.truncate(max.unwrap_or(usize::MAX));
        self.decode(&parsed)
    }

    /// Values read as NULL because they were not in their time format
    /// since the last call (by this decoder and its clones).
    pub(crate) fn take_bad_times(&self) -> usize {
        self.bad_times.swap(0, Ordering::Relaxed)
    }

    fn finish(&self, record: Record, rows: usize) -> Result<RecordBatch> {
        let bad = record.bad_times();
        if bad > 0 {
            self.bad_times.fetch_add(bad, Ordering::Relaxed);
        }
        let arrow = |source| Error::Arrow {
            table: self.table.to_string(),
            source,
        };
        let columns = record.finish().map_err(arrow)?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .map_err(arrow)
    }

    fn misfit(&self, m: Misfit, item: &Item) -> Error {
        match m.format {
            Some(format) => Error::BadTimeValue {
                table: self.table.to_string(),
                item: self.item_key(item).into(),
                attribute: m.attribute,
                value: m.value,
                format: format.into(),
            },
            None => Error::ValueDoesNotFit {
                table: self.table.to_string(),
                attribute: m.attribute,
                value: m.value,
                expected: m.expected,
            },
        }
    }

    /// ` item {"id":{"S":"a"}}`: the item's key as DynamoDB JSON, or nothing
    /// when the decoder does not know the key attributes.
    fn item_key(&self, item: &Item) -> String {
        if self.keys.is_empty() {
            return String::new();
        }
        let key: Item = self
            .keys
            .iter()
            .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
            .collect();
        let json = serde_json::Value::Object(crate::value::dynamo_json::item_to_json(&key));
        format!(" item {json}")
    }
}

/// The names of a schema's columns, but for the extra-attributes column.
fn column_names(schema: &SchemaRef) -> HashSet<String> {
    schema
        .fields()
        .iter()
        .filter(|f| !is_extra_field(f))
        .map(|f| f.name().clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::schema::infer::json_field;
    use crate::value::dynamo_json::item_from_json;
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{
        DataType, Decimal128Type, Field, Fields, Int64Type, Schema,
    };

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
        let text = decoder(vec![crate::schema::infer::text_field("s", true)]);
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
    fn answers_decode_from_json_directly_and_like_sdk_values() {
        let strukt = DataType::Struct(Fields::from(vec![
            Field::new("city", DataType::Utf8, true),
            Field::new("zip", DataType::Int32, true),
        ]));
        let list = |t| DataType::List(Field::new("item", t, true).into());
        let d = decoder(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Decimal128(38, 2), true),
            Field::new("ok", DataType::Boolean, true),
            Field::new("raw", DataType::Binary, true),
            Field::new("tags", list(DataType::Utf8), true),
            Field::new("nums", list(DataType::Int64), true),
            Field::new("addr", strukt, true),
            json_field("doc", true),
        ]);
        let json = r#"[
            {"id":{"S":"a\"\u00e9"},"n":{"N":"-12.5"},"ok":{"BOOL":true},"raw":{"B":"AAE="},
             "tags":{"SS":["x","y"]},"nums":{"L":[{"N":"1"},{"NULL":true},{"N":"3"}]},
             "addr":{"M":{"city":{"S":"Oslo"},"zip":{"N":"150"},"other":{"L":[{"M":{}}]}}},
             "doc":{"M":{"k":{"NS":["1","2"]}}},"ignored":{"SS":["z"]}},
            {"id":{"S":"b"},"n":{"NULL":true},"nums":{"NS":["7"]},"addr":{"NULL":true}}
        ]"#;
        let mut record = d.record(2).expect("supported");
        assert_eq!(
            record.append_json_items(json, None),
            Some(2),
            "decoded directly, not through the slow path"
        );
        let direct = d.decode_json(json, None).expect("decodes");
        let values: Vec<serde_json::Value> = serde_json::from_str(json).expect("JSON");
        let items: Vec<Item> = values
            .iter()
            .map(|v| item_from_json(v.as_object().expect("object")).expect("valid"))
            .collect();
        assert_eq!(direct, d.decode(&items).expect("decodes"));
        assert_eq!(direct.column(0).as_string::<i32>().value(0), "a\"é");
        assert_eq!(
            direct.column(6).as_struct().column(1).data_type(),
            &DataType::Int32
        );
        assert_eq!(
            direct.column(7).as_string::<i32>().value(0),
            r#"{"k":[1,2]}"#
        );
        assert_eq!(d.decode_json(json, Some(1)).expect("decodes").num_rows(), 1);
    }

    #[test]
    fn json_answers_that_do_not_fit_or_parse_are_clear_errors() {
        let d = decoder(vec![Field::new("n", DataType::Int64, true)]);
        let err = d
            .decode_json(r#"[{"n":{"N":"1.5"}}]"#, None)
            .expect_err("1.5 is not an Int64");
        assert!(
            err.to_string().contains("'n'") && err.to_string().contains("1.5"),
            "{err}"
        );
        for bad in [r#"[{"n":{"N":1}}]"#, r#"[{"n":{"X":"1"}}]"#, "[{", "{}"] {
            let err = d.decode_json(bad, None).expect_err(bad);
            assert!(matches!(err, Error::BadAnswer { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn unsupported_types_fail_up_front() {
        let schema = Arc::new(Schema::new(vec![Field::new("d", DataType::Date32, true)]));
        assert!(ItemDecoder::try_new("T", schema).is_err());
    }
}
