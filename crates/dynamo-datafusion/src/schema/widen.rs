//! A table's schema as it lives: inferred from a sample, and widened when a
//! read meets a value the sample did not show.
//!
//! The schema is a pure function of the table's metadata, what has been
//! observed of its items, and the column types the user fixed
//! ([`build_schema`]). Widening adds observations — those of the page whose
//! value did not fit — and builds the schema again: unification only ever
//! widens (`Int64` → `Decimal128` → `Decimal256` → exact text; conflicting
//! types → JSON text; a struct gains the map keys it lacked), so the new
//! schema holds every value the old one held, and the value that did not
//! fit. Columns whose type the user fixed never change: a value that does
//! not fit them stays an error.
//!
//! Every clone of a provider shares one [`SchemaState`], so the next plan of
//! any query sees the widened schema.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Widening;
use crate::key_stats::KeyStats;
use crate::metadata::TableMeta;
use crate::schema::cache::{CacheSlot, Entry, SchemaCache};
use crate::schema::infer::{
    EXTRA_COLUMN, Observed, extra_field, is_json_field, merge_observations, observe_items,
};
use crate::schema::{Rules, build_schema};
use crate::schema::{SchemaHistory, SchemaOrigin};
use crate::value::Item;

#[derive(Debug)]
struct Current {
    observed: BTreeMap<String, Observed>,
    schema: SchemaRef,
    history: SchemaHistory,
}

/// The live schema of one table, shared by a provider and its scans.
#[derive(Debug)]
pub(crate) struct SchemaState {
    meta: Arc<TableMeta>,
    rules: Rules,
    /// The schema ends with the column of attributes it has no column for.
    extra: bool,
    /// False when the caller gave the schema: nothing widens.
    widens: bool,
    current: RwLock<Current>,
    /// Where the schema is cached, if it is: widenings are saved there too.
    cache: Option<CacheSlot>,
    /// What the sample showed of the key attributes (kept with the schema).
    keys: Option<Arc<KeyStats>>,
}

impl SchemaState {
    /// A schema inferred from `observed`, widening as reads require.
    pub(crate) fn inferred(
        meta: Arc<TableMeta>,
        observed: BTreeMap<String, Observed>,
        rules: Rules,
        origin: SchemaOrigin,
    ) -> Self {
        let history = SchemaHistory {
            origin,
            cached: None,
            widened: Vec::new(),
        };
        Self::with_history(meta, observed, rules, history)
    }

    /// A schema inferred earlier, with its history (from a schema cache).
    pub(crate) fn with_history(
        meta: Arc<TableMeta>,
        observed: BTreeMap<String, Observed>,
        rules: Rules,
        history: SchemaHistory,
    ) -> Self {
        let schema = build_schema(&meta, observed.clone(), &rules);
        Self {
            meta,
            rules,
            extra: false,
            widens: true,
            current: RwLock::new(Current {
                observed,
                schema,
                history,
            }),
            cache: None,
            keys: None,
        }
    }

    /// This state with the key statistics of its sample.
    pub(crate) fn with_key_stats(mut self, keys: Option<KeyStats>) -> Self {
        self.keys = keys.map(Arc::new);
        self
    }

    /// The key statistics of the schema's sample, if any.
    pub(crate) fn key_stats(&self) -> Option<&Arc<KeyStats>> {
        self.keys.as_ref()
    }

    /// Adds the column of attributes the schema has no column for
    /// ([`crate::schema::infer::EXTRA_COLUMN`]) when `yes`; an attribute of that name
    /// is an error.
    pub(crate) fn with_extra_column(mut self, yes: bool) -> crate::error::Result<Self> {
        if !yes {
            return Ok(self);
        }
        let current = self
            .current
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if current.schema.field_with_name(EXTRA_COLUMN).is_ok() {
            return Err(crate::error::Error::InvalidOption {
                key: "extra_attributes".into(),
                reason: format!(
                    "table '{}' has an attribute named '{EXTRA_COLUMN}', the name of the extra-attributes column",
                    self.meta.name
                ),
            });
        }
        current.schema = with_extra(&current.schema);
        self.extra = true;
        Ok(self)
    }

    /// Keeps the schema in `slot` after every widening, and now when
    /// `store_now` (a new sample; not a schema just read from there).
    pub(crate) fn cached_in(mut self, slot: CacheSlot, store_now: bool) -> Self {
        if store_now {
            save(&slot, &self.read(), self.keys.as_deref());
        }
        self.cache = Some(slot);
        self
    }

    /// The cache the schema is kept in, if any.
    pub(crate) fn cache(&self) -> Option<&Arc<dyn SchemaCache>> {
        self.cache.as_ref().map(|slot| &slot.cache)
    }

    /// A schema the caller fixed: it never widens.
    pub(crate) fn given(meta: Arc<TableMeta>, schema: SchemaRef) -> Self {
        Self {
            meta,
            rules: Rules::default(),
            extra: false,
            widens: false,
            current: RwLock::new(Current {
                observed: BTreeMap::new(),
                schema,
                history: SchemaHistory {
                    origin: SchemaOrigin::Given,
                    cached: None,
                    widened: Vec::new(),
                },
            }),
            cache: None,
            keys: None,
        }
    }

    /// True when `column`'s type is inferred and so can widen (not given,
    /// not fixed by the user).
    pub(crate) fn can_widen(&self, column: &str) -> bool {
        self.widens && !self.rules.fixes(column)
    }

    /// The schema now.
    pub(crate) fn schema(&self) -> SchemaRef {
        Arc::clone(&self.read().schema)
    }

    /// Where the schema came from and how it widened.
    pub(crate) fn history(&self) -> SchemaHistory {
        self.read().history.clone()
    }

    /// Adds what `items` show to the observations and rebuilds the schema:
    /// the columns that changed (empty when nothing did, or the schema was
    /// given). Only columns already in the schema are observed; attributes it
    /// lacks stay out (they are not a misfit).
    pub(crate) fn widen(&self, items: &[Item]) -> Vec<Widening> {
        if !self.widens {
            return Vec::new();
        }
        let mut current = self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut seen = observe_items(items);
        seen.retain(|name, _| current.schema.field_with_name(name).is_ok());
        let mut observed = current.observed.clone();
        merge_observations(&mut observed, seen);
        let mut schema = build_schema(&self.meta, observed.clone(), &self.rules);
        if self.extra {
            schema = with_extra(&schema);
        }
        let changes = schema_changes(&current.schema, &schema);
        if !changes.is_empty() {
            let now = SystemTime::now();
            current
                .history
                .widened
                .extend(changes.iter().map(|w| (now, w.clone())));
            current.observed = observed;
            current.schema = schema;
            if let Some(slot) = &self.cache {
                save(slot, &current, self.keys.as_deref());
            }
        }
        changes
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Stores what `current` holds in `slot`.
fn save(slot: &CacheSlot, current: &Current, keys: Option<&KeyStats>) {
    slot.store(&Entry::new(
        &slot.key,
        current.observed.clone(),
        &current.history,
        keys,
    ));
}

/// `schema` with the extra-attributes column at the end.
fn with_extra(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(extra_field());
    Arc::new(Schema::new(fields))
}

/// The fields whose types differ between `old` and `new`, named by path and
/// followed into structs and lists, so `info.rating` is named rather than
/// the whole `info` struct.
pub(crate) fn schema_changes(old: &SchemaRef, new: &SchemaRef) -> Vec<Widening> {
    let mut out = Vec::new();
    for field in old.fields() {
        if let Ok(after) = new.field_with_name(field.name()) {
            field_changes(field.name(), field, after, &mut out);
        }
    }
    out
}

fn field_changes(path: &str, old: &Field, new: &Field, out: &mut Vec<Widening>) {
    if old.data_type() == new.data_type() && old.metadata() == new.metadata() {
        return;
    }
    match (old.data_type(), new.data_type()) {
        (DataType::Struct(a), DataType::Struct(b)) => {
            for f in a {
                if let Some((_, g)) = b.find(f.name()) {
                    field_changes(&format!("{path}.{}", f.name()), f, g, out);
                }
            }
            let added: Vec<&str> = b
                .iter()
                .filter(|g| a.find(g.name()).is_none())
                .map(|g| g.name().as_str())
                .collect();
            if !added.is_empty() {
                out.push(widening(path, old, new));
            }
        }
        (DataType::List(a), DataType::List(b)) => field_changes(&format!("{path}[]"), a, b, out),
        _ => out.push(widening(path, old, new)),
    }
}

fn widening(path: &str, old: &Field, new: &Field) -> Widening {
    Widening {
        column: path.to_string(),
        from: old.data_type().clone(),
        to: new.data_type().clone(),
        to_json: is_json_field(new),
    }
}

/// A short type name for messages: structs list their field names only.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnType;
    use aws_sdk_dynamodb::types::AttributeValue as AV;
    use std::collections::HashMap;

    fn meta() -> Arc<TableMeta> {
        Arc::new(TableMeta::hash_only("T", "id"))
    }

    fn item(pairs: &[(&str, AV)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn state(items: &[Item], overrides: Vec<(String, ColumnType)>) -> SchemaState {
        SchemaState::inferred(
            meta(),
            observe_items(items),
            Rules {
                overrides,
                ..Rules::default()
            },
            SchemaOrigin::Sampled {
                items: items.len(),
                at: SystemTime::now(),
            },
        )
    }

    fn ty(s: &SchemaState, c: &str) -> DataType {
        s.schema().field_with_name(c).expect(c).data_type().clone()
    }

    #[test]
    fn numbers_widen_and_nested_changes_are_named_by_path() {
        let info = |r: &str| AV::M(HashMap::from([("rating".to_string(), AV::N(r.into()))]));
        let s = state(
            &[item(&[
                ("id", AV::S("a".into())),
                ("n", AV::N("1".into())),
                ("info", info("6.1")),
            ])],
            vec![],
        );
        assert_eq!(ty(&s, "n"), DataType::Int64);
        let changes = s.widen(&[item(&[
            ("id", AV::S("b".into())),
            ("n", AV::N("123456789012345678901234".into())),
            ("info", info("6.123456")),
            ("other", AV::S("not a column".into())),
        ])]);
        let names: Vec<&str> = changes.iter().map(|w| w.column.as_str()).collect();
        assert_eq!(names, ["info.rating", "n"]);
        assert_eq!(ty(&s, "n"), DataType::Decimal128(38, 0));
        assert!(s.schema().field_with_name("other").is_err());
        assert_eq!(s.history().widened.len(), 2);
        assert_eq!(
            changes[0].to_string(),
            "column 'info.rating' widened from Decimal128(38, 4) to Decimal128(38, 6)"
        );
        // The same page again changes nothing.
        assert!(
            s.widen(&[item(&[("n", AV::N("123456789012345678901234".into()))])])
                .is_empty()
        );
    }

    #[test]
    fn conflicts_become_json_and_maps_gain_keys() {
        let s = state(
            &[item(&[
                ("id", AV::S("a".into())),
                ("n", AV::N("1".into())),
                (
                    "m",
                    AV::M(HashMap::from([("x".to_string(), AV::N("1".into()))])),
                ),
            ])],
            vec![],
        );
        let changes = s.widen(&[item(&[
            ("n", AV::S("one".into())),
            (
                "m",
                AV::M(HashMap::from([("y".to_string(), AV::Bool(true))])),
            ),
        ])]);
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(is_json_field(s.schema().field_with_name("n").expect("n")));
        let n = changes.iter().find(|w| w.column == "n").expect("n changed");
        assert_eq!(n.to_string(), "column 'n' widened from Int64 to JSON text");
        let DataType::Struct(fields) = ty(&s, "m") else {
            panic!("struct")
        };
        assert_eq!(fields.len(), 2);
    }

    #[test]
    fn a_column_seen_only_as_null_or_empty_is_undetermined_until_a_typed_value() {
        use crate::schema::infer::is_undetermined_field;
        let s = state(
            &[item(&[
                ("id", AV::S("a".into())),
                ("note", AV::Null(true)),
                ("tags", AV::L(vec![])),
                ("meta", AV::M(HashMap::new())),
                ("mixed", AV::L(vec![AV::S("x".into()), AV::N("1".into())])),
            ])],
            vec![],
        );
        for c in ["note", "tags", "meta"] {
            let f = s.schema().field_with_name(c).expect(c).clone();
            assert!(is_json_field(&f) && is_undetermined_field(&f), "{c}");
        }
        // Conflicting types are JSON text for good, not undetermined.
        let mixed = s.schema().field_with_name("mixed").expect("mixed").clone();
        assert!(is_json_field(&mixed) && !is_undetermined_field(&mixed));
        let changes = s.widen(&[item(&[
            ("note", AV::S("text".into())),
            ("tags", AV::L(vec![AV::N("1".into())])),
            (
                "meta",
                AV::M(HashMap::from([("x".to_string(), AV::Bool(true))])),
            ),
        ])]);
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(ty(&s, "note"), DataType::Utf8);
        assert!(!is_json_field(
            s.schema().field_with_name("note").expect("note")
        ));
        assert!(matches!(ty(&s, "tags"), DataType::List(_)));
        assert!(matches!(ty(&s, "meta"), DataType::Struct(_)));
    }

    #[test]
    fn fixed_columns_and_given_schemas_never_widen() {
        let s = state(
            &[item(&[("id", AV::S("a".into())), ("n", AV::N("1".into()))])],
            vec![("n".into(), ColumnType::Arrow(DataType::Int64))],
        );
        assert!(s.widen(&[item(&[("n", AV::N("1.5".into()))])]).is_empty());
        assert_eq!(ty(&s, "n"), DataType::Int64);

        let given = SchemaState::given(meta(), s.schema());
        assert!(given.widen(&[item(&[("n", AV::S("x".into()))])]).is_empty());
        assert_eq!(given.history().origin, SchemaOrigin::Given);
    }
}
