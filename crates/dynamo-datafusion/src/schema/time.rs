//! Temporal columns: a `Timestamp` or `Date32` field whose metadata names
//! the [`TimeFormat`] its attribute keeps time in (so the format travels
//! with the schema: to the decoder, the planner, and other processes).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

use crate::error::{Error, Result};
use crate::metadata::TableMeta;
use crate::schema::ColumnType;
use crate::schema::infer::Observed;
use crate::value::time::TimeFormat;

/// What a value that is not in its column's time format reads as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BadTime {
    /// An error naming the item's key, the attribute, the value and the format.
    #[default]
    Error,
    /// NULL, counted (a notice says how many).
    Null,
}

/// Field metadata key naming a temporal column's format (`epoch_seconds`, …).
pub const TIME_FORMAT_METADATA_KEY: &str = "dynamodb.time_format";
/// Field metadata key set to `null` when values not in the format read as NULL.
pub const BAD_TIME_METADATA_KEY: &str = "dynamodb.on_bad_time";

/// A temporal field over an attribute kept in `format`.
///
/// ```
/// use dynamo_datafusion::schema::{BadTime, TimeFormat, time_field, time_format_of};
///
/// let format: TimeFormat = "epoch_seconds".parse().unwrap();
/// let field = time_field("expiresAt", &format, true, BadTime::Error);
/// assert_eq!(field.data_type().to_string(), "Timestamp(s, \"UTC\")");
/// assert_eq!(time_format_of(&field), Some(format));
/// ```
pub fn time_field(name: &str, format: &TimeFormat, nullable: bool, bad: BadTime) -> Field {
    let mut metadata = HashMap::from([(TIME_FORMAT_METADATA_KEY.to_string(), format.to_string())]);
    if bad == BadTime::Null {
        metadata.insert(BAD_TIME_METADATA_KEY.to_string(), "null".to_string());
    }
    Field::new(name, format.data_type(), nullable).with_metadata(metadata)
}

/// The format of a temporal field, `None` for other fields.
pub fn time_format_of(field: &Field) -> Option<TimeFormat> {
    field
        .metadata()
        .get(TIME_FORMAT_METADATA_KEY)
        .and_then(|text| text.parse().ok())
}

/// True when a value not in the field's format reads as NULL.
pub(crate) fn bad_time_is_null(field: &Field) -> bool {
    field
        .metadata()
        .get(BAD_TIME_METADATA_KEY)
        .map(String::as_str)
        == Some("null")
}

/// The format of a column declared temporal without one: what its sampled
/// values show (ISO text of one precision, dates, epoch numbers by their
/// digits), else any RFC 3339 text.
pub(crate) fn declared_format(observed: Option<&Observed>) -> TimeFormat {
    match observed {
        Some(Observed::String(Some(shape))) => shape.declared_format(),
        Some(Observed::Number(stats)) => TimeFormat::Epoch(stats.epoch_unit()),
        _ => TimeFormat::Iso,
    }
}

/// A schema the caller gave (a column list, a builder schema) with its
/// temporal columns tied to their formats: the option's format, else `date`
/// for dates, epoch seconds for the time-to-live attribute and RFC 3339 for
/// other timestamps. A format given for a column the schema lacks, or for
/// a column that is not temporal, is an error.
pub(crate) fn with_time_formats(
    schema: SchemaRef,
    meta: &TableMeta,
    overrides: &[(String, ColumnType)],
    bad: BadTime,
) -> Result<SchemaRef> {
    let given = |name: &str| {
        overrides.iter().rev().find_map(|(n, t)| match t {
            ColumnType::Time(Some(format)) if n == name => Some(format.clone()),
            _ => None,
        })
    };
    for (name, ty) in overrides {
        if matches!(ty, ColumnType::Time(Some(_))) {
            let field = schema
                .field_with_name(name)
                .map_err(|_| Error::InvalidOption {
                    key: "time_format".into(),
                    reason: format!(
                        "table '{}' has no column '{name}' in its column list",
                        meta.name
                    ),
                })?;
            if !matches!(
                field.data_type(),
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            ) {
                return Err(Error::InvalidOption {
                    key: "time_format".into(),
                    reason: format!(
                        "column '{name}' is declared {}; declare it TIMESTAMP or DATE",
                        field.data_type()
                    ),
                });
            }
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            let format = match f.data_type() {
                DataType::Timestamp(_, _) => given(f.name()).unwrap_or_else(|| {
                    if meta.ttl_attribute.as_deref() == Some(f.name().as_str()) {
                        TimeFormat::Epoch(TimeUnit::Second)
                    } else {
                        TimeFormat::Iso
                    }
                }),
                DataType::Date32 | DataType::Date64 => given(f.name()).unwrap_or(TimeFormat::Date),
                _ => return f.as_ref().clone(),
            };
            let mut field = time_field(f.name(), &format, f.is_nullable(), bad);
            let mut metadata = f.metadata().clone();
            metadata.extend(field.metadata().clone());
            field.set_metadata(metadata);
            field
        })
        .collect();
    Ok(Arc::new(Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_schema_ties_each_temporal_column_to_a_format() {
        let mut meta = TableMeta::hash_only("T", "id");
        meta.ttl_attribute = Some("expires".into());
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("at", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "expires",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("ms", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ]));
        let overrides = vec![(
            "ms".to_string(),
            ColumnType::Time(Some(TimeFormat::Epoch(TimeUnit::Millisecond))),
        )];
        let out = with_time_formats(schema, &meta, &overrides, BadTime::Null).expect("valid");
        let format = |name: &str| {
            out.field_with_name(name)
                .ok()
                .and_then(|f| time_format_of(f).map(|t| t.to_string()))
        };
        assert_eq!(format("id"), None);
        assert_eq!(format("at").as_deref(), Some("iso"));
        assert_eq!(format("day").as_deref(), Some("date"));
        assert_eq!(format("expires").as_deref(), Some("epoch_seconds"));
        assert_eq!(format("ms").as_deref(), Some("epoch_millis"));
        assert!(out.field_with_name("ms").is_ok_and(bad_time_is_null));
        assert_eq!(
            out.field_with_name("ms")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Timestamp(
                TimeUnit::Millisecond,
                Some("UTC".into())
            ))
        );
    }

    #[test]
    fn a_format_for_a_missing_or_plain_column_is_an_error() {
        let meta = TableMeta::hash_only("T", "id");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]));
        for name in ["id", "nope"] {
            let overrides = vec![(name.to_string(), ColumnType::Time(Some(TimeFormat::Date)))];
            let err = with_time_formats(Arc::clone(&schema), &meta, &overrides, BadTime::Error)
                .expect_err("refused");
            assert!(err.to_string().contains("time_format"), "{err}");
        }
    }
}
