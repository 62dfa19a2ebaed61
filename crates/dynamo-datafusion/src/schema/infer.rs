//! Arrow types for DynamoDB attributes: what sampling observed, how observations
//! unify, and which Arrow type results.
//!
//! Unification rule (documented in `docs/types.md`):
//! - the same DynamoDB type unifies with itself; `NULL` and absence unify with anything;
//! - numbers unify with numbers: integral values that fit `i64` give `Int64`, otherwise
//!   `Decimal128(38, s)` with `s` the largest scale seen, `Decimal256(76, s)` when integer
//!   digits plus scale exceed 38, and exact JSON text beyond 76;
//! - sets and lists unify element-wise into `List<element>`; a list whose elements do
//!   not unify becomes JSON text;
//! - maps become `Struct` with the union of their keys; a key whose values do not unify
//!   becomes a JSON text field; a map with more than [`MAX_STRUCT_FIELDS`] distinct keys
//!   becomes JSON text;
//! - any other conflict (e.g. `S` in one item, `N` in another) gives JSON text.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use crate::metadata::KeyType;
use crate::value::number::{DECIMAL128_MAX_PRECISION, DECIMAL256_MAX_PRECISION, ExactNumber};
use crate::value::time::{Shape, TimeFormat};

/// Field metadata key that marks a Utf8 column holding JSON text.
pub const ENCODING_METADATA_KEY: &str = "dynamodb.encoding";
/// Value of [`ENCODING_METADATA_KEY`] for JSON text columns.
pub const JSON_ENCODING: &str = "json";
/// Value of [`ENCODING_METADATA_KEY`] for columns asked for as text: strings,
/// and numbers as their exact digits.
pub const TEXT_ENCODING: &str = "text";
/// Maps with more distinct keys than this are treated as dictionaries (JSON text).
pub const MAX_STRUCT_FIELDS: usize = 200;
/// A number column where the sample saw a fraction keeps at least this many
/// decimal places (when the integer digits leave room): a later value with
/// one more decimal than the sample showed (`6.18` after `6.1`) still fits,
/// exactly, without widening the column.
pub const MIN_FRACTION_SCALE: u32 = 4;

/// What is known about the numbers seen in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct NumberStats {
    all_fit_i64: bool,
    max_integer_digits: u32,
    max_scale: u32,
    invalid: bool,
}

impl NumberStats {
    fn of(text: &str) -> Self {
        match ExactNumber::parse(text) {
            Ok(n) => Self {
                all_fit_i64: n.to_i64().is_some(),
                max_integer_digits: n.integer_digits(),
                max_scale: n.scale(),
                invalid: false,
            },
            Err(_) => Self {
                invalid: true,
                ..Self::default()
            },
        }
    }

    fn merge(self, o: Self) -> Self {
        Self {
            all_fit_i64: self.all_fit_i64 && o.all_fit_i64,
            max_integer_digits: self.max_integer_digits.max(o.max_integer_digits),
            max_scale: self.max_scale.max(o.max_scale),
            invalid: self.invalid || o.invalid,
        }
    }

    /// The epoch unit of numbers declared to be times, by their digits:
    /// 10 digits are seconds from 1973 to 2286, 13 milliseconds, and so on.
    pub(crate) fn epoch_unit(self) -> TimeUnit {
        match self.max_integer_digits {
            0..=11 => TimeUnit::Second,
            12..=14 => TimeUnit::Millisecond,
            15..=17 => TimeUnit::Microsecond,
            _ => TimeUnit::Nanosecond,
        }
    }

    fn data_type(self) -> DataType {
        if self.invalid {
            return DataType::Utf8;
        }
        if self.all_fit_i64 {
            return DataType::Int64;
        }
        let digits = self.max_integer_digits + self.max_scale;
        // Headroom for fractions: free as long as the integer digits still fit.
        let roomy = if self.max_scale > 0 {
            self.max_scale.max(MIN_FRACTION_SCALE)
        } else {
            0
        };
        // Scale is at most 130 for DynamoDB numbers, so the casts below are lossless.
        if self.max_integer_digits + roomy <= u32::from(DECIMAL128_MAX_PRECISION) {
            DataType::Decimal128(DECIMAL128_MAX_PRECISION, roomy as i8)
        } else if digits <= u32::from(DECIMAL128_MAX_PRECISION) {
            DataType::Decimal128(DECIMAL128_MAX_PRECISION, self.max_scale as i8)
        } else if digits <= u32::from(DECIMAL256_MAX_PRECISION) {
            DataType::Decimal256(DECIMAL256_MAX_PRECISION, self.max_scale as i8)
        } else {
            DataType::Utf8
        }
    }
}

/// The unified observation of one attribute (or nested value) across items.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Observed {
    /// Only `NULL` or nothing seen.
    Unknown,
    /// Strings; with the time shape every one of them has, if they all have one.
    String(Option<Shape>),
    Binary,
    Boolean,
    Number(NumberStats),
    List(Box<Observed>),
    /// A string, number or binary set (`SS`/`NS`/`BS`): a list column marked
    /// as a set ([`SET_METADATA_KEY`]), so a write stores a set again.
    Set(Box<Observed>),
    Struct(BTreeMap<String, Observed>),
    /// Conflicting types: JSON text.
    Json,
}

impl Observed {
    /// Observes one value.
    pub(crate) fn of(value: &AttributeValue) -> Self {
        match value {
            AttributeValue::S(s) => Self::String(TimeFormat::detect(s)),
            AttributeValue::N(n) => Self::Number(NumberStats::of(n)),
            AttributeValue::B(_) => Self::Binary,
            AttributeValue::Bool(_) => Self::Boolean,
            AttributeValue::Null(_) => Self::Unknown,
            AttributeValue::Ss(_) => Self::Set(Box::new(Self::String(None))),
            AttributeValue::Bs(_) => Self::Set(Box::new(Self::Binary)),
            AttributeValue::Ns(v) => Self::Set(Box::new(
                v.iter()
                    .map(|n| Self::Number(NumberStats::of(n)))
                    .fold(Self::Unknown, Self::merge),
            )),
            AttributeValue::L(v) => Self::List(Box::new(
                v.iter().map(Self::of).fold(Self::Unknown, Self::merge),
            )),
            AttributeValue::M(m) => {
                if m.len() > MAX_STRUCT_FIELDS {
                    return Self::Json;
                }
                Self::Struct(m.iter().map(|(k, v)| (k.clone(), Self::of(v))).collect())
            }
            _ => Self::Json,
        }
    }

    /// Unifies two observations (the rule in the module documentation).
    pub(crate) fn merge(self, other: Self) -> Self {
        use Observed::*;
        match (self, other) {
            (Unknown, x) | (x, Unknown) => x,
            (Json, _) | (_, Json) => Json,
            (String(a), String(b)) => String(a.zip(b).and_then(|(a, b)| a.merge(b))),
            (Binary, Binary) => Binary,
            (Boolean, Boolean) => Boolean,
            (Number(a), Number(b)) => Number(a.merge(b)),
            (List(a), List(b)) => List(Box::new(a.merge(*b))),
            (Set(a), Set(b)) => Set(Box::new(a.merge(*b))),
            // Sets in some items, lists in others: a list (written back as one).
            (Set(a), List(b)) | (List(a), Set(b)) => List(Box::new(a.merge(*b))),
            (Struct(mut a), Struct(b)) => {
                for (k, v) in b {
                    let merged = match a.remove(&k) {
                        Some(old) => old.merge(v),
                        None => v,
                    };
                    a.insert(k, merged);
                }
                if a.len() > MAX_STRUCT_FIELDS {
                    Json
                } else {
                    Struct(a)
                }
            }
            _ => Json,
        }
    }

    /// The observation a declared key type implies.
    pub(crate) fn of_key_type(kt: KeyType) -> Self {
        match kt {
            KeyType::S => Self::String(None),
            KeyType::B => Self::Binary,
            KeyType::N => Self::Number(NumberStats {
                all_fit_i64: true,
                ..NumberStats::default()
            }),
        }
    }

    /// The time format of a column of such strings, when they all have one.
    pub(crate) fn time_format(&self) -> Option<TimeFormat> {
        match self {
            Observed::String(Some(shape)) => shape.format(),
            _ => None,
        }
    }

    /// The Arrow field for this observation.
    pub(crate) fn to_field(&self, name: &str, nullable: bool) -> Field {
        match self.data_type() {
            Some(dt) if matches!(self, Observed::Set(_)) => set_field(name, dt, nullable),
            Some(dt) => Field::new(name, dt, nullable),
            None if self.undetermined() => undetermined_field(name, nullable),
            None => json_field(name, nullable),
        }
    }

    /// True when nothing seen tells the type: only `NULL`, empty lists or
    /// empty maps. Such a column is JSON text until a value with a type
    /// arrives, which widens it to that type.
    pub(crate) fn undetermined(&self) -> bool {
        match self {
            Observed::Unknown => true,
            Observed::List(inner) | Observed::Set(inner) => inner.undetermined(),
            Observed::Struct(fields) => fields.is_empty(),
            _ => false,
        }
    }

    /// The Arrow type, or `None` for JSON text.
    fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Observed::Unknown | Observed::Json => return None,
            Observed::String(_) => DataType::Utf8,
            Observed::Binary => DataType::Binary,
            Observed::Boolean => DataType::Boolean,
            Observed::Number(stats) => match stats.data_type() {
                DataType::Utf8 => return None,
                dt => dt,
            },
            Observed::List(inner) | Observed::Set(inner) => {
                let item = inner.data_type()?;
                DataType::List(Field::new("item", item, true).into())
            }
            // An always-empty map tells nothing about its keys.
            Observed::Struct(fields) if fields.is_empty() => return None,
            Observed::Struct(fields) => DataType::Struct(
                fields
                    .iter()
                    .map(|(k, v)| v.to_field(k, true))
                    .collect::<Fields>(),
            ),
        })
    }
}

/// A nullable-or-not Utf8 field marked as JSON text.
pub fn json_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable).with_metadata(HashMap::from([(
        ENCODING_METADATA_KEY.to_string(),
        JSON_ENCODING.to_string(),
    )]))
}

/// Field metadata key marking a JSON text column whose type nothing seen has
/// told yet (only `NULL`, empty lists or empty maps): the first value with a
/// type widens it ([`Observed::undetermined`]).
pub const UNDETERMINED_METADATA_KEY: &str = "dynamodb.undetermined";

/// A JSON text field for an attribute whose type is not known yet.
pub fn undetermined_field(name: &str, nullable: bool) -> Field {
    marked_json_field(name, nullable, UNDETERMINED_METADATA_KEY)
}

/// A JSON text field with metadata `key` = `true`.
fn marked_json_field(name: &str, nullable: bool, key: &str) -> Field {
    let mut field = json_field(name, nullable);
    let mut metadata = field.metadata().clone();
    metadata.insert(key.to_string(), "true".to_string());
    field.set_metadata(metadata);
    field
}

/// True for a field whose type is not known yet ([`undetermined_field`]).
pub fn is_undetermined_field(field: &Field) -> bool {
    field.metadata().contains_key(UNDETERMINED_METADATA_KEY)
}

/// Field metadata key marking a list column whose values are DynamoDB sets
/// (`SS`, `NS` or `BS`, by the element type): written back as sets.
pub const SET_METADATA_KEY: &str = "dynamodb.set";

/// A list field whose values are DynamoDB sets.
pub fn set_field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable).with_metadata(HashMap::from([(
        SET_METADATA_KEY.to_string(),
        "true".to_string(),
    )]))
}

/// True when the list field holds DynamoDB sets.
pub fn is_set_field(field: &Field) -> bool {
    field.metadata().contains_key(SET_METADATA_KEY)
}

/// Field metadata key marking the column that holds every attribute the
/// schema has no column for.
pub const EXTRA_METADATA_KEY: &str = "dynamodb.extra_attributes";
/// Name of that column (table option `extra_attributes`).
pub const EXTRA_COLUMN: &str = "_extra";

/// The column of attributes the schema has no column for: a JSON object of
/// their DynamoDB JSON values (`{"rare":{"S":"x"}}`), NULL when there are none.
pub fn extra_field() -> Field {
    marked_json_field(EXTRA_COLUMN, true, EXTRA_METADATA_KEY)
}

/// True for the column of attributes the schema has no column for.
pub fn is_extra_field(field: &Field) -> bool {
    field.metadata().contains_key(EXTRA_METADATA_KEY)
}

/// A Utf8 field holding strings and numbers as exact text.
pub fn text_field(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable).with_metadata(HashMap::from([(
        ENCODING_METADATA_KEY.to_string(),
        TEXT_ENCODING.to_string(),
    )]))
}

/// True when the field holds strings and numbers as text.
pub fn is_text_field(field: &Field) -> bool {
    field
        .metadata()
        .get(ENCODING_METADATA_KEY)
        .map(String::as_str)
        == Some(TEXT_ENCODING)
}

/// True when the field holds JSON text.
pub fn is_json_field(field: &Field) -> bool {
    field
        .metadata()
        .get(ENCODING_METADATA_KEY)
        .map(String::as_str)
        == Some(JSON_ENCODING)
}

/// Observes every attribute of a sample of items.
pub(crate) fn observe_items<'a>(
    items: impl IntoIterator<Item = &'a HashMap<String, AttributeValue>>,
) -> BTreeMap<String, Observed> {
    let mut seen: BTreeMap<String, Observed> = BTreeMap::new();
    for item in items {
        for (name, value) in item {
            merge_one(&mut seen, name, Observed::of(value));
        }
    }
    seen
}

/// Merges observations of several attributes into `into`.
pub(crate) fn merge_observations(
    into: &mut BTreeMap<String, Observed>,
    from: BTreeMap<String, Observed>,
) {
    for (name, obs) in from {
        merge_one(into, &name, obs);
    }
}

fn merge_one(into: &mut BTreeMap<String, Observed>, name: &str, obs: Observed) {
    match into.get_mut(name) {
        Some(slot) => {
            let old = std::mem::replace(slot, Observed::Unknown);
            *slot = old.merge(obs);
        }
        None => {
            into.insert(name.to_string(), obs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue as AV;

    fn field_of(values: &[AV]) -> Field {
        values
            .iter()
            .map(Observed::of)
            .fold(Observed::Unknown, Observed::merge)
            .to_field("a", true)
    }

    #[test]
    fn scalars() {
        assert_eq!(field_of(&[AV::S("x".into())]).data_type(), &DataType::Utf8);
        assert_eq!(field_of(&[AV::Bool(true)]).data_type(), &DataType::Boolean);
        assert_eq!(
            field_of(&[AV::B(vec![1u8].into())]).data_type(),
            &DataType::Binary
        );
    }

    #[test]
    fn numbers_widen_exactly() {
        assert_eq!(
            field_of(&[AV::N("1".into()), AV::N("-7".into())]).data_type(),
            &DataType::Int64
        );
        assert_eq!(
            field_of(&[AV::N("1".into()), AV::N("2.25".into())]).data_type(),
            &DataType::Decimal128(38, 4),
            "fractions get headroom"
        );
        assert_eq!(
            field_of(&[AV::N("1.123456".into())]).data_type(),
            &DataType::Decimal128(38, 6)
        );
        // 36 integer digits leave no room for four decimals: the sampled scale.
        assert_eq!(
            field_of(&[AV::N(format!("{}.5", "9".repeat(36)))]).data_type(),
            &DataType::Decimal128(38, 1)
        );
        assert_eq!(
            field_of(&[AV::N("99999999999999999999".into())]).data_type(),
            &DataType::Decimal128(38, 0)
        );
        // 30 integer digits and scale 20 need Decimal256.
        assert_eq!(
            field_of(&[AV::N("1E+29".into()), AV::N("1E-20".into())]).data_type(),
            &DataType::Decimal256(76, 20)
        );
        // The extremes of DynamoDB's range only fit exact text.
        let f = field_of(&[AV::N("1E+125".into()), AV::N("1E-130".into())]);
        assert!(is_json_field(&f));
    }

    #[test]
    fn conflicts_become_json() {
        assert!(is_json_field(&field_of(&[
            AV::S("x".into()),
            AV::N("1".into())
        ])));
        assert!(is_json_field(&field_of(&[AV::L(vec![
            AV::S("x".into()),
            AV::Bool(true)
        ])])));
        assert!(is_json_field(&field_of(&[AV::Null(true)])));
    }

    #[test]
    fn sets_and_lists_unify_elementwise() {
        let f = field_of(&[AV::Ss(vec!["a".into()]), AV::L(vec![AV::S("b".into())])]);
        assert_eq!(
            f.data_type(),
            &DataType::List(Field::new("item", DataType::Utf8, true).into())
        );
        let f = field_of(&[AV::Ns(vec!["1".into(), "1.5".into()])]);
        assert_eq!(
            f.data_type(),
            &DataType::List(Field::new("item", DataType::Decimal128(38, 4), true).into())
        );
    }

    #[test]
    fn maps_union_their_keys_and_isolate_conflicts() {
        let a = AV::M(HashMap::from([("x".into(), AV::N("1".into()))]));
        let b = AV::M(HashMap::from([
            ("y".into(), AV::S("s".into())),
            ("x".into(), AV::S("oops".into())),
        ]));
        let f = field_of(&[a, b]);
        let DataType::Struct(fields) = f.data_type() else {
            panic!("expected struct, got {f:?}");
        };
        assert_eq!(fields.len(), 2);
        assert!(is_json_field(&fields[0]), "conflicting key is JSON");
        assert_eq!(fields[1].data_type(), &DataType::Utf8);
    }

    #[test]
    fn dictionaries_become_json() {
        let m: HashMap<String, AV> = (0..=MAX_STRUCT_FIELDS)
            .map(|i| (format!("k{i}"), AV::N("1".into())))
            .collect();
        assert!(is_json_field(&field_of(&[AV::M(m)])));
    }
}
