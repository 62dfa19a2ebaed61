//! Random DynamoDB tables, described once and handed to both engines: as
//! DynamoDB items (written with the SDK) and as typed rows for DuckDB.
//!
//! The oracle's column types follow docs/types.md from the generator's own
//! knowledge of what it wrote (a column of 38-digit integers is `DECIMAL(38, 0)`,
//! a column of `S` and `N` values is its JSON text), never from the project's
//! inference: a decoding or typing bug shows as a different answer.

use std::collections::{BTreeSet, HashMap, HashSet};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{IndexSpec, TableSpec};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Value as J, json};

/// What a column holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `N`, integral, |v| ≤ 10^15 (sums stay inside `i64`).
    Int,
    /// `N` with up to `scale` decimals and up to 18 digits.
    Dec(u32),
    /// `N`, integers of 20 to 38 digits.
    Big,
    /// `N` of 10^-100 … 10^-129: beyond `Decimal256`, JSON text.
    Tiny,
    /// `S`; the domain may hold '' (non-key columns).
    Str,
    /// `B`; may be empty (non-key columns).
    Bin,
    /// `BOOL`.
    Bool,
    /// `SS`.
    StrSet,
    /// `NS` of integers.
    NumSet,
    /// `L` of integer `N`s.
    List,
    /// `M` {a: N, b: S, c: L of N, d: M {x: N}}, any subset of keys.
    Map,
    /// `S` in some items, `N` in others: JSON text.
    Mixed,
}

impl Kind {
    /// A key attribute's DynamoDB type, for the kinds that can be keys.
    pub fn key_type(&self) -> Option<T> {
        match self {
            Kind::Int | Kind::Dec(_) | Kind::Big => Some(T::N),
            Kind::Str => Some(T::S),
            Kind::Bin => Some(T::B),
            _ => None,
        }
    }

    /// Scalars SQL can compare and order.
    pub fn comparable(&self) -> bool {
        matches!(
            self,
            Kind::Int | Kind::Dec(_) | Kind::Big | Kind::Str | Kind::Bin | Kind::Bool
        )
    }

    /// Numbers `sum`/`avg` can add without overflowing.
    pub fn summable(&self) -> bool {
        matches!(self, Kind::Int | Kind::Dec(_))
    }

    /// The oracle's column type.
    pub fn oracle_type(&self) -> J {
        match self {
            Kind::Int => json!("int"),
            Kind::Dec(s) => json!({"dec": (*s).max(4)}),
            Kind::Big => json!({"dec": 0}),
            Kind::Tiny | Kind::Str | Kind::Mixed => json!("str"),
            Kind::Bin => json!("bin"),
            Kind::Bool => json!("bool"),
            Kind::StrSet => json!({"list": "str"}),
            Kind::NumSet | Kind::List => json!({"list": "int"}),
            Kind::Map => json!({"struct": [
                ["a", "int"], ["b", "str"], ["c", {"list": "int"}], ["d", {"struct": [["x", "int"]]}]
            ]}),
        }
    }
}

/// A generated value.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    /// DynamoDB's `NULL`.
    Null,
    Int(i64),
    /// Exact decimal text without exponent or trailing zeros.
    Num(String),
    Str(String),
    Bin(Vec<u8>),
    Bool(bool),
    StrSet(Vec<String>),
    NumSet(Vec<i64>),
    List(Vec<i64>),
    /// Present keys of {a, b, c, d: {x}}.
    Map {
        a: Option<i64>,
        b: Option<String>,
        c: Option<Vec<i64>>,
        d: Option<Option<i64>>,
    },
    /// A `Mixed` column's `S` …
    MixedS(String),
    /// … or `N`.
    MixedN(i64),
}

impl V {
    /// The attribute as DynamoDB stores it.
    pub fn attribute(&self) -> AV {
        match self {
            V::Null => AV::Null(true),
            V::Int(i) | V::MixedN(i) => AV::N(i.to_string()),
            V::Num(n) => AV::N(n.clone()),
            V::Str(s) | V::MixedS(s) => AV::S(s.clone()),
            V::Bin(b) => AV::B(Blob::new(b.clone())),
            V::Bool(b) => AV::Bool(*b),
            V::StrSet(v) => AV::Ss(v.clone()),
            V::NumSet(v) => AV::Ns(v.iter().map(i64::to_string).collect()),
            V::List(v) => AV::L(v.iter().map(|i| AV::N(i.to_string())).collect()),
            V::Map { a, b, c, d } => {
                let mut m = HashMap::new();
                if let Some(a) = a {
                    m.insert("a".to_string(), AV::N(a.to_string()));
                }
                if let Some(b) = b {
                    m.insert("b".to_string(), AV::S(b.clone()));
                }
                if let Some(c) = c {
                    m.insert(
                        "c".to_string(),
                        AV::L(c.iter().map(|i| AV::N(i.to_string())).collect()),
                    );
                }
                if let Some(d) = d {
                    let mut inner = HashMap::new();
                    if let Some(x) = d {
                        inner.insert("x".to_string(), AV::N(x.to_string()));
                    }
                    m.insert("d".to_string(), AV::M(inner));
                }
                AV::M(m)
            }
        }
    }

    /// The value as the oracle loads it (see `tests/oracle/duckdb_oracle.py`).
    pub fn oracle(&self) -> J {
        match self {
            V::Null => J::Null,
            V::Int(i) => json!(i),
            V::Num(n) => json!(n),
            V::Str(s) => json!(s),
            V::Bin(b) => json!(hex(b)),
            V::Bool(b) => json!(b),
            V::StrSet(v) => json!(v),
            V::NumSet(v) | V::List(v) => json!(v),
            V::Map { a, b, c, d } => {
                let mut m = serde_json::Map::new();
                if let Some(a) = a {
                    m.insert("a".into(), json!(a));
                }
                if let Some(b) = b {
                    m.insert("b".into(), json!(b));
                }
                if let Some(c) = c {
                    m.insert("c".into(), json!(c));
                }
                if let Some(d) = d {
                    m.insert("d".into(), json!({"x": d}));
                }
                J::Object(m)
            }
            // docs/types.md: JSON text renders S as a JSON string, N with its digits.
            V::MixedS(s) => json!(J::String(s.clone()).to_string()),
            V::MixedN(i) => json!(i.to_string()),
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A column: its attribute name, what it holds, and the values it draws from.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    /// Values to draw from (repeats make groups, joins and key hits).
    pub domain: Vec<V>,
    /// Share of items that have the attribute.
    pub presence: f64,
    /// Share of present attributes stored as DynamoDB `NULL`.
    pub null_rate: f64,
}

/// A secondary index over generated columns.
#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub local: bool,
    pub pk: String,
    pub sk: Option<String>,
    /// `None`: ALL; `Some([])`: KEYS_ONLY; else INCLUDE.
    pub projection: Option<Vec<String>>,
}

/// A generated table: key columns first, then the others.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub pk: Column,
    pub sk: Option<Column>,
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    /// Each item: attribute name → value (absent attributes are missing).
    pub items: Vec<HashMap<String, V>>,
}

impl Table {
    /// Key columns, then the others, in docs/types.md's column order (keys
    /// first, every other attribute in name order).
    pub fn all_columns(&self) -> Vec<&Column> {
        let mut out = vec![&self.pk];
        out.extend(self.sk.as_ref());
        let mut rest: Vec<&Column> = self.columns.iter().collect();
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(rest);
        out
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.all_columns().into_iter().find(|c| c.name == name)
    }

    /// The key attribute names.
    pub fn keys(&self) -> Vec<&str> {
        let mut k = vec![self.pk.name.as_str()];
        k.extend(self.sk.as_ref().map(|c| c.name.as_str()));
        k
    }

    /// The DynamoDB table to create.
    pub fn spec(&self) -> TableSpec {
        let key_type = |c: &Column| c.kind.key_type().expect("key kind");
        let mut spec = TableSpec::new(&self.name, &self.pk.name, key_type(&self.pk));
        if let Some(sk) = &self.sk {
            spec = spec.sort_key(&sk.name, key_type(sk));
        }
        for ix in &self.indexes {
            let col = |n: &str| self.column(n).expect("index column");
            spec = spec.index(IndexSpec {
                name: ix.name.clone(),
                local: ix.local,
                partition_key: (ix.pk.clone(), key_type(col(&ix.pk))),
                sort_key: ix.sk.as_ref().map(|s| (s.clone(), key_type(col(s)))),
                projection: ix.projection.clone(),
            });
        }
        spec
    }

    /// The items as DynamoDB stores them.
    pub fn dynamo_items(&self) -> Vec<HashMap<String, AV>> {
        self.items
            .iter()
            .map(|item| {
                item.iter()
                    .map(|(k, v)| (k.clone(), v.attribute()))
                    .collect()
            })
            .collect()
    }

    /// The oracle's load request: typed columns and one row per item.
    pub fn oracle_load(&self) -> J {
        let cols = self.all_columns();
        json!({
            "op": "load",
            "table": self.name,
            "columns": cols.iter().map(|c| json!([c.name, c.kind.oracle_type()])).collect::<Vec<_>>(),
            "rows": self.items.iter().map(|item| {
                cols.iter().map(|c| item.get(&c.name).map_or(J::Null, V::oracle)).collect::<Vec<_>>()
            }).collect::<Vec<_>>(),
        })
    }
}

/// Attribute names that are hard to carry: non-ASCII, spaces, dots, quotes,
/// mixed case and long. Distinct without regard to case (DuckDB folds case).
const NAMES: &[&str] = &[
    "qty",
    "price",
    "label",
    "Ünïcode_名前",
    "with space",
    "dot.ted",
    "quo\"te",
    "CamelCase",
    "_under",
    "emoji😀",
    "a_very_long_attribute_name_that_goes_on_and_on_for_more_than_sixty_four_characters_x",
    "sel",
    "from",
    "größe",
    "v2",
    "tag",
    "n",
    "payload",
];

const ALPHABET: &[&str] = &[
    "a", "b", "c", "A", "Z", "0", "9", " ", "%", "_", "'", "é", "名", "😀", "-", "ab", "ß",
];

fn random_string(rng: &mut StdRng, min: usize, max: usize) -> String {
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| *ALPHABET.choose(rng).expect("alphabet"))
        .collect()
}

/// A decimal's text without trailing zeros: `mantissa` / 10^`scale`.
pub fn decimal_text(mantissa: i128, scale: u32) -> String {
    let neg = mantissa < 0;
    let digits = mantissa.unsigned_abs().to_string();
    let scale = scale as usize;
    let (int, frac) = if digits.len() > scale {
        let (i, f) = digits.split_at(digits.len() - scale);
        (i.to_string(), f.to_string())
    } else {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat(scale - digits.len())),
        )
    };
    let frac = frac.trim_end_matches('0');
    let body = if frac.is_empty() {
        int
    } else {
        format!("{int}.{frac}")
    };
    if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    }
}

fn random_int(rng: &mut StdRng) -> i64 {
    match rng.random_range(0..4) {
        0 => rng.random_range(-5..=5),
        1 => rng.random_range(-1000..=1000),
        2 => rng.random_range(-1_000_000_000_000_000..=1_000_000_000_000_000),
        _ => rng.random_range(0..=100),
    }
}

fn random_value(kind: &Kind, rng: &mut StdRng, key: bool) -> V {
    match kind {
        Kind::Int => V::Int(random_int(rng)),
        Kind::Dec(scale) => {
            let digits = rng.random_range(1..=18u32);
            let m: i128 = rng.random_range(0..10i128.pow(digits));
            let m = if rng.random_bool(0.3) { -m } else { m };
            V::Num(decimal_text(m, *scale))
        }
        Kind::Big => {
            let digits = rng.random_range(20..=38u32);
            let m: i128 = rng.random_range(10i128.pow(digits - 1)..10i128.pow(digits));
            V::Num(if rng.random_bool(0.3) {
                format!("-{m}")
            } else {
                m.to_string()
            })
        }
        Kind::Tiny => {
            let m = rng.random_range(1..1000i128);
            let e = rng.random_range(100..=129u32);
            V::Num(decimal_text(if rng.random_bool(0.3) { -m } else { m }, e))
        }
        Kind::Str => V::Str(random_string(rng, usize::from(key), 8)),
        Kind::Bin => {
            let len = rng.random_range(usize::from(key)..=5);
            V::Bin(
                (0..len)
                    .map(|_| *[0u8, 1, 0x7f, 0x80, 0xff, 0x41].choose(rng).expect("byte"))
                    .collect(),
            )
        }
        Kind::Bool => V::Bool(rng.random_bool(0.5)),
        Kind::StrSet => {
            let n = rng.random_range(1..=4);
            let set: BTreeSet<String> = (0..n).map(|_| random_string(rng, 1, 4)).collect();
            V::StrSet(set.into_iter().collect())
        }
        Kind::NumSet => {
            let n = rng.random_range(1..=4);
            let set: BTreeSet<i64> = (0..n).map(|_| rng.random_range(-20..=20)).collect();
            V::NumSet(set.into_iter().collect())
        }
        Kind::List => {
            let n = rng.random_range(0..=4);
            V::List((0..n).map(|_| rng.random_range(-20..=20)).collect())
        }
        Kind::Map => V::Map {
            a: rng.random_bool(0.7).then(|| rng.random_range(-50..=50)),
            b: rng.random_bool(0.7).then(|| random_string(rng, 0, 5)),
            c: rng.random_bool(0.5).then(|| {
                (0..rng.random_range(0..=3))
                    .map(|_| rng.random_range(0..=9))
                    .collect()
            }),
            d: rng
                .random_bool(0.5)
                .then(|| rng.random_bool(0.7).then(|| rng.random_range(0..=5))),
        },
        Kind::Mixed => {
            if rng.random_bool(0.5) {
                V::MixedS(random_string(rng, 0, 5))
            } else {
                V::MixedN(rng.random_range(-100..=100))
            }
        }
    }
}

fn domain(kind: &Kind, rng: &mut StdRng, size: usize, key: bool) -> Vec<V> {
    let mut seen = Vec::new();
    for _ in 0..size * 3 {
        if seen.len() == size {
            break;
        }
        let v = random_value(kind, rng, key);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

const NON_KEY_KINDS: &[Kind] = &[
    Kind::Int,
    Kind::Dec(2),
    Kind::Dec(6),
    Kind::Big,
    Kind::Tiny,
    Kind::Str,
    Kind::Bin,
    Kind::Bool,
    Kind::StrSet,
    Kind::NumSet,
    Kind::List,
    Kind::Map,
    Kind::Mixed,
];

fn key_kind(rng: &mut StdRng) -> Kind {
    [
        Kind::Str,
        Kind::Int,
        Kind::Bin,
        Kind::Str,
        Kind::Int,
        Kind::Bin,
        Kind::Dec(2),
        Kind::Big,
    ]
    .choose(rng)
    .expect("kind")
    .clone()
}

/// A random table named `name` with `items` items; `reference`, when given,
/// adds a column `ref` drawing from that table's partition keys (for joins).
pub fn random_table(rng: &mut StdRng, name: String, reference: Option<&Table>) -> Table {
    let item_count = *[2usize, 5, 40, 120, 300, 1000].choose(rng).expect("count");
    let mut names: Vec<&str> = NAMES.to_vec();
    names.sort_by_key(|_| rng.random::<u32>());
    let mut names = names.into_iter();
    let mut next_name = || names.next().expect("enough names").to_string();

    let pk_kind = key_kind(rng);
    let composite = rng.random_bool(0.6);
    // Few partition keys with a sort key: several items per partition.
    let pk_size = if composite {
        (item_count / rng.random_range(2..=8)).max(1)
    } else {
        item_count * 2
    };
    let pk = Column {
        name: if rng.random_bool(0.5) {
            "pk".into()
        } else {
            next_name()
        },
        domain: domain(&pk_kind, rng, pk_size, true),
        kind: pk_kind,
        presence: 1.0,
        null_rate: 0.0,
    };
    let sk = composite.then(|| {
        let kind = key_kind(rng);
        Column {
            name: if rng.random_bool(0.5) {
                "sk".into()
            } else {
                next_name()
            },
            domain: domain(&kind, rng, item_count.max(4), true),
            kind,
            presence: 1.0,
            null_rate: 0.0,
        }
    });

    let mut columns = Vec::new();
    for _ in 0..rng.random_range(2..=7) {
        let kind = NON_KEY_KINDS.choose(rng).expect("kind").clone();
        let size = *[2usize, 5, 20, 200].choose(rng).expect("size");
        columns.push(Column {
            name: next_name(),
            domain: domain(&kind, rng, size, false),
            kind,
            presence: *[1.0, 0.9, 0.5, 0.1].choose(rng).expect("presence"),
            null_rate: *[0.0, 0.0, 0.1].choose(rng).expect("null rate"),
        });
    }
    if let Some(other) = reference {
        columns.push(Column {
            name: "ref".into(),
            kind: other.pk.kind.clone(),
            domain: other
                .pk
                .domain
                .iter()
                .cloned()
                .chain(domain(&other.pk.kind, rng, 3, true))
                .collect(),
            presence: 0.9,
            null_rate: 0.0,
        });
    }

    // Index keys: scalar columns with no empty value and no NULL (DynamoDB
    // refuses both in an index key); they may be missing (a sparse index).
    let mut index_cols = Vec::new();
    for c in &mut columns {
        // DynamoDB Local fails CreateTable (InternalFailure) for a local
        // index whose sort key name holds '"'; the service allows it.
        if c.kind.key_type().is_some() && !c.name.contains('"') && rng.random_bool(0.5) {
            c.domain.retain(|v| {
                !matches!(v, V::Str(s) if s.is_empty()) && !matches!(v, V::Bin(b) if b.is_empty())
            });
            if !c.domain.is_empty() {
                c.null_rate = 0.0;
                index_cols.push(c.name.clone());
            }
        }
    }
    let others: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
    let mut indexes = Vec::new();
    let projection = |rng: &mut StdRng| match rng.random_range(0..3) {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            others
                .iter()
                .filter(|_| rng.random_bool(0.4))
                .cloned()
                .collect::<Vec<_>>(),
        )
        .filter(|v| !v.is_empty()),
    };
    for (i, col) in index_cols.iter().enumerate() {
        let local = sk.is_some() && rng.random_bool(0.4);
        let sk_col = if local {
            Some(col.clone())
        } else {
            index_cols
                .iter()
                .find(|c| *c != col && rng.random_bool(0.5))
                .cloned()
        };
        let projection = projection(rng).map(|p: Vec<String>| {
            p.into_iter()
                .filter(|a| a != col && Some(a) != sk_col.as_ref())
                .collect()
        });
        indexes.push(Index {
            name: format!("ix{i}"),
            local,
            pk: if local { pk.name.clone() } else { col.clone() },
            sk: sk_col,
            projection,
        });
        if indexes.len() == 3 {
            break;
        }
    }

    let mut items = Vec::new();
    let mut keys = HashSet::new();
    let mut attempts = 0;
    while items.len() < item_count && attempts < item_count * 20 {
        attempts += 1;
        let pkv = pk.domain.choose(rng).expect("pk").clone();
        let skv = sk
            .as_ref()
            .map(|c| c.domain.choose(rng).expect("sk").clone());
        if !keys.insert(format!("{pkv:?}{skv:?}")) {
            continue;
        }
        let mut item = HashMap::new();
        item.insert(pk.name.clone(), pkv);
        if let (Some(c), Some(v)) = (&sk, skv) {
            item.insert(c.name.clone(), v);
        }
        for c in &columns {
            if rng.random_bool(c.presence) {
                let v = if rng.random_bool(c.null_rate) {
                    V::Null
                } else {
                    c.domain.choose(rng).expect("value").clone()
                };
                item.insert(c.name.clone(), v);
            }
        }
        items.push(item);
    }
    let mut table = Table {
        name,
        pk,
        sk,
        columns,
        indexes,
        items,
    };
    make_every_column_seen(&mut table);
    table
}

/// Every column, and each key of a map column, has a value in some item, so the
/// project's sampling finds the column the oracle declares (docs/types.md: a
/// column is what the items hold). Lists get one non-empty value.
fn make_every_column_seen(table: &mut Table) {
    let Some(first) = table.items.first_mut() else {
        return;
    };
    for c in &table.columns {
        let value = c
            .domain
            .iter()
            .find(|v| !matches!(v, V::List(l) if l.is_empty()))
            .cloned()
            .expect("domain has a value");
        match &c.kind {
            Kind::Map => {
                first.insert(
                    c.name.clone(),
                    V::Map {
                        a: Some(1),
                        b: Some("b".into()),
                        c: Some(vec![1, 2]),
                        d: Some(Some(3)),
                    },
                );
            }
            Kind::List => {
                first.insert(c.name.clone(), V::List(vec![1, 2, 3]));
            }
            Kind::Mixed => {
                // Both types in the table, or it would not be JSON text.
                first.insert(c.name.clone(), V::MixedS("s".into()));
            }
            _ => {
                first.insert(c.name.clone(), value);
            }
        }
    }
    if let Some(second) = table.items.get_mut(1) {
        for c in table.columns.iter().filter(|c| c.kind == Kind::Mixed) {
            second.insert(c.name.clone(), V::MixedN(7));
        }
    }
}
