//! The Arrow schema of a table: key attributes first, then every sampled attribute.

pub(crate) mod cache;
pub(crate) mod infer;
pub(crate) mod widen;

pub use crate::value::time::TimeFormat;
pub use cache::{DEFAULT_SCHEMA_TTL, FileSchemaCache, SchemaCache, SchemaKey};
pub use infer::{is_json_field, json_field};
pub use time::{BadTime, time_field, time_format_of};

pub(crate) mod time;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Widening;
use crate::metadata::TableMeta;
use crate::schema::infer::{Observed, text_field};

/// The type a column is forced to, instead of the inferred one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    /// An Arrow type (Utf8, Int64, Float64, Decimal128/256, Boolean, Binary, List, Struct).
    Arrow(DataType),
    /// Lossless JSON text of whatever the attribute holds.
    Json,
    /// A `Timestamp` (UTC) or `Date32` over a string or number attribute,
    /// in this format, or (`None`) the one its sampled values show.
    Time(Option<TimeFormat>),
}

impl FromStr for ColumnType {
    type Err = String;

    /// Parses `json`, `timestamp` (format as sampled), `date`, or an Arrow
    /// type name as Arrow prints it (`Utf8`, `Decimal128(38, 4)`,
    /// `List(Int64)`), plus the SQL names `string`, `varchar`, `bigint`,
    /// `double`, `boolean`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "json" => ColumnType::Json,
            "timestamp" | "datetime" => ColumnType::Time(None),
            "date" => ColumnType::Time(Some(TimeFormat::Date)),
            "string" | "varchar" | "text" | "utf8" => ColumnType::Arrow(DataType::Utf8),
            "bigint" | "int64" => ColumnType::Arrow(DataType::Int64),
            "double" | "float64" => ColumnType::Arrow(DataType::Float64),
            "boolean" | "bool" => ColumnType::Arrow(DataType::Boolean),
            "binary" | "bytea" => ColumnType::Arrow(DataType::Binary),
            _ => ColumnType::Arrow(DataType::from_str(t).map_err(|e| e.to_string())?),
        })
    }
}

/// How a table's schema came to be, for `\d` and notices.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaOrigin {
    /// Given whole by the caller (a column list or a builder schema).
    Given,
    /// Inferred from a sample of this many items, at this time.
    Sampled {
        /// Items read to infer it.
        items: usize,
        /// When the sample was read.
        at: SystemTime,
    },
}

/// What is known about a table's schema: where it came from and how it widened.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaHistory {
    /// How the schema was first made.
    pub origin: SchemaOrigin,
    /// When it was read from a schema cache: the time the entry was saved.
    pub cached: Option<SystemTime>,
    /// Every widening since, oldest first.
    pub widened: Vec<(SystemTime, Widening)>,
}

/// What the user fixed about a table's columns: types, and how time is read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rules {
    /// Column types that replace the inferred ones (and add attributes).
    pub overrides: Vec<(String, ColumnType)>,
    /// Strings sampled as canonical ISO text become temporal columns.
    pub infer_time: bool,
    /// What a value not in its column's time format reads as.
    pub bad_time: BadTime,
}

impl Rules {
    /// True when the user fixed `column`'s type.
    pub(crate) fn fixes(&self, column: &str) -> bool {
        self.overrides.iter().any(|(name, _)| name == column)
    }
}

impl Default for Rules {
    /// Nothing fixed; ISO text becomes temporal; bad times are errors.
    fn default() -> Self {
        Self {
            overrides: Vec::new(),
            infer_time: true,
            bad_time: BadTime::Error,
        }
    }
}

/// Builds the schema from the table's metadata and what sampling observed.
///
/// Table keys come first and are non-nullable; index keys and other attributes
/// follow in name order and are nullable. Declared key types win over samples
/// for `S` and `B`; `N` keys take their Arrow type from the sampled values.
/// Strings whose every sampled value is canonical ISO text become temporal
/// (unless `rules` say not), and so does the time-to-live attribute (epoch
/// seconds). The rules' overrides replace inferred types and add attributes
/// sampling did not see.
pub(crate) fn build_schema(
    meta: &TableMeta,
    mut observed: BTreeMap<String, Observed>,
    rules: &Rules,
) -> SchemaRef {
    for attr in &meta.attribute_types {
        let declared = Observed::of_key_type(attr.key_type);
        let merged = match observed.remove(&attr.name) {
            // A key attribute always has its declared type; only numbers
            // refine it, and strings say whether they hold time.
            Some(seen @ Observed::Number(_)) if matches!(declared, Observed::Number(_)) => {
                seen.merge(declared)
            }
            Some(seen @ Observed::String(_)) if matches!(declared, Observed::String(_)) => seen,
            _ => declared,
        };
        observed.insert(attr.name.clone(), merged);
    }
    if let Some(ttl) = &meta.ttl_attribute
        && !observed.contains_key(ttl)
    {
        observed.insert(ttl.clone(), Observed::Unknown);
    }
    let field = |name: &str, obs: &Observed, nullable: bool| -> Field {
        let is_ttl = meta.ttl_attribute.as_deref() == Some(name);
        match obs {
            Observed::Number(_) | Observed::Unknown if is_ttl => time::time_field(
                name,
                &TimeFormat::Epoch(datafusion::arrow::datatypes::TimeUnit::Second),
                nullable,
                rules.bad_time,
            ),
            _ => match obs.time_format().filter(|_| rules.infer_time) {
                Some(format) => time::time_field(name, &format, nullable, rules.bad_time),
                None => obs.to_field(name, nullable),
            },
        }
    };
    let table_keys: Vec<&str> = meta.keys.attribute_names().collect();
    let mut fields = Vec::with_capacity(observed.len());
    for key in &table_keys {
        if let Some(obs) = observed.get(*key) {
            fields.push(field(key, obs, false));
        }
    }
    fields.extend(
        observed
            .iter()
            .filter(|(name, _)| !table_keys.contains(&name.as_str()))
            .map(|(name, obs)| field(name, obs, true)),
    );
    for (name, ty) in &rules.overrides {
        let nullable = !table_keys.contains(&name.as_str());
        let time = |format: Option<&TimeFormat>| {
            let format = format
                .cloned()
                .unwrap_or_else(|| time::declared_format(observed.get(name)));
            time::time_field(name, &format, nullable, rules.bad_time)
        };
        let field = match ty {
            // Asked-for text takes numbers too; such a column is never pushed down.
            ColumnType::Arrow(DataType::Utf8) => text_field(name, nullable),
            ColumnType::Arrow(DataType::Timestamp(_, _)) => time(None),
            ColumnType::Arrow(DataType::Date32 | DataType::Date64) => time(Some(&TimeFormat::Date)),
            ColumnType::Arrow(dt) => Field::new(name, dt.clone(), nullable),
            ColumnType::Json => json_field(name, nullable),
            ColumnType::Time(format) => time(format.as_ref()),
        };
        match fields.iter_mut().find(|f| f.name() == name) {
            Some(existing) => *existing = field,
            None => fields.push(field),
        }
    }
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{KeyAttribute, KeySchema, KeyType};
    use crate::schema::infer::{is_json_field, observe_items};
    use aws_sdk_dynamodb::types::AttributeValue as AV;
    use std::collections::HashMap;

    fn meta() -> TableMeta {
        let pk = KeyAttribute {
            name: "userId".into(),
            key_type: KeyType::S,
        };
        let sk = KeyAttribute {
            name: "ts".into(),
            key_type: KeyType::N,
        };
        TableMeta {
            name: "T".into(),
            keys: KeySchema {
                partition_key: pk.clone(),
                sort_key: Some(sk.clone()),
            },
            indexes: vec![],
            item_count: 0,
            size_bytes: 0,
            attribute_types: vec![pk, sk],
            provisioned_read_capacity: None,
            arn: None,
            created_millis: None,
            ttl_attribute: None,
            stream_arn: None,
            stream_view_type: None,
        }
    }

    #[test]
    fn keys_first_then_sorted_attributes() {
        let items = vec![HashMap::from([
            ("zeta".to_string(), AV::S("z".into())),
            ("alpha".to_string(), AV::N("1".into())),
            ("ts".to_string(), AV::N("1.5".into())),
            ("userId".to_string(), AV::S("u".into())),
        ])];
        let schema = build_schema(&meta(), observe_items(&items), &Rules::default());
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["userId", "ts", "alpha", "zeta"]);
        assert!(!schema.field(0).is_nullable() && !schema.field(1).is_nullable());
        assert!(schema.field(2).is_nullable());
        assert_eq!(schema.field(1).data_type(), &DataType::Decimal128(38, 4));
    }

    #[test]
    fn keys_exist_even_in_an_empty_table() {
        let schema = build_schema(&meta(), BTreeMap::new(), &Rules::default());
        assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
        assert_eq!(schema.field(1).data_type(), &DataType::Int64);
    }

    #[test]
    fn overrides_replace_and_add() {
        let items = vec![HashMap::from([("alpha".to_string(), AV::N("1".into()))])];
        let schema = build_schema(
            &meta(),
            observe_items(&items),
            &Rules {
                overrides: vec![
                    ("alpha".into(), ColumnType::Arrow(DataType::Float64)),
                    ("rare".into(), ColumnType::Json),
                ],
                ..Rules::default()
            },
        );
        assert_eq!(
            schema
                .field_with_name("alpha")
                .map(|f| f.data_type().clone())
                .ok(),
            Some(DataType::Float64)
        );
        assert!(schema.field_with_name("rare").is_ok_and(is_json_field));
    }
}
