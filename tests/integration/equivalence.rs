//! Randomized equivalence: thousands of random predicates over random tables;
//! every answer with pushdown equals the answer with pushdown disabled.
//!
//! Seeded and reproducible: `EQUIV_SEED=n` replays one seed, `EQUIV_QUERIES=n`
//! sets the number of queries per table. A failure prints seed, query number and SQL.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{TableSpec, create_table, put_items, unique_name};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::{client, query, rows, sorted_rows, with_and_without_pushdown};

const DEFAULT_QUERIES: usize = 700;

fn seed(default: u64) -> u64 {
    std::env::var("EQUIV_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn queries() -> usize {
    std::env::var("EQUIV_QUERIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_QUERIES)
}

/// A column the generator can write predicates on.
#[derive(Clone)]
enum Col {
    /// String column with its value domain.
    S(&'static str, Vec<String>),
    /// Integer column with its range.
    N(&'static str, i64, i64),
    /// Decimal column (values with two decimals) with its range.
    D(&'static str, i64, i64),
    Bool(&'static str),
    /// Binary column with its byte domain.
    B(&'static str, Vec<u8>),
    /// A struct column's fields: (path SQL, column).
    Nested(String, Box<Col>),
    /// A column the planner cannot translate (JSON text of mixed types).
    Opaque(&'static str),
}

struct Shape {
    /// Partition key column, sort key column.
    pk: Col,
    sk: Option<Col>,
    cols: Vec<Col>,
}

fn q(name: &str) -> String {
    format!("\"{name}\"")
}

fn col_sql(c: &Col) -> String {
    match c {
        Col::S(n, _)
        | Col::N(n, _, _)
        | Col::D(n, _, _)
        | Col::Bool(n)
        | Col::B(n, _)
        | Col::Opaque(n) => q(n),
        Col::Nested(path, _) => path.clone(),
    }
}

fn literal(c: &Col, rng: &mut StdRng) -> String {
    match c {
        Col::S(_, domain) => format!(
            "'{}'",
            domain[rng.random_range(0..domain.len())].replace('\'', "''")
        ),
        Col::N(_, lo, hi) => rng.random_range(*lo..=*hi).to_string(),
        Col::D(_, lo, hi) => format!(
            "{}.{:02}",
            rng.random_range(*lo..=*hi),
            rng.random_range(0..100)
        ),
        Col::Bool(_) => rng.random_bool(0.5).to_string(),
        Col::B(_, domain) => format!("X'{:02x}'", domain[rng.random_range(0..domain.len())]),
        Col::Nested(_, inner) => literal(inner, rng),
        Col::Opaque(_) => format!("'{}'", rng.random_range(0..5)),
    }
}

/// One random atom on `c`.
fn atom(c: &Col, rng: &mut StdRng) -> String {
    let name = col_sql(c);
    let ops = ["=", "<>", "<", "<=", ">", ">="];
    match rng.random_range(0..10) {
        0 => format!("{name} IS NULL"),
        1 => format!("{name} IS NOT NULL"),
        _ => match c {
            Col::Bool(_) => match rng.random_range(0..3) {
                0 => name,
                1 => format!("NOT {name}"),
                _ => format!("{name} = {}", literal(c, rng)),
            },
            Col::S(_, domain) if rng.random_bool(0.25) => {
                let chars: Vec<char> = domain[rng.random_range(0..domain.len())].chars().collect();
                let cut = rng.random_range(0..=chars.len().min(4));
                let pattern: String = if rng.random_bool(0.5) {
                    chars[..cut].iter().collect::<String>() + "%"
                } else {
                    format!(
                        "%{}%",
                        chars[chars.len() - cut..].iter().collect::<String>()
                    )
                };
                format!("{name} LIKE '{}'", pattern.replace('\'', "''"))
            }
            _ => match rng.random_range(0..8) {
                0 => format!("{name} BETWEEN {} AND {}", literal(c, rng), literal(c, rng)),
                1 => {
                    let n = rng.random_range(1..5);
                    let vals: Vec<String> = (0..n).map(|_| literal(c, rng)).collect();
                    let not = if rng.random_bool(0.2) { "NOT " } else { "" };
                    format!("{name} {not}IN ({})", vals.join(", "))
                }
                // Arithmetic the planner cannot translate.
                2 if matches!(c, Col::N(..) | Col::D(..)) => format!("{name} + 0 = {name}"),
                _ => format!(
                    "{name} {} {}",
                    ops[rng.random_range(0..ops.len())],
                    literal(c, rng)
                ),
            },
        },
    }
}

fn predicate(shape: &Shape, rng: &mut StdRng, depth: u32) -> String {
    let all: Vec<&Col> = std::iter::once(&shape.pk)
        .chain(shape.sk.iter())
        .chain(shape.cols.iter())
        .collect();
    if depth == 0 || rng.random_bool(0.5) {
        return atom(all[rng.random_range(0..all.len())], rng);
    }
    match rng.random_range(0..4) {
        0 => format!("NOT ({})", predicate(shape, rng, depth - 1)),
        1 => format!(
            "({} OR {})",
            predicate(shape, rng, depth - 1),
            predicate(shape, rng, depth - 1)
        ),
        _ => format!(
            "({} AND {})",
            predicate(shape, rng, depth - 1),
            predicate(shape, rng, depth - 1)
        ),
    }
}

/// A WHERE clause, biased towards key conditions so every access path is exercised.
fn where_clause(shape: &Shape, rng: &mut StdRng) -> String {
    let mut parts = Vec::new();
    match rng.random_range(0..6) {
        0 | 1 => parts.push(format!(
            "{} = {}",
            col_sql(&shape.pk),
            literal(&shape.pk, rng)
        )),
        2 => {
            let vals: Vec<String> = (0..rng.random_range(1..4))
                .map(|_| literal(&shape.pk, rng))
                .collect();
            parts.push(format!("{} IN ({})", col_sql(&shape.pk), vals.join(", ")));
        }
        _ => {}
    }
    if let Some(sk) = &shape.sk
        && rng.random_bool(0.5)
    {
        parts.push(atom(sk, rng));
    }
    for _ in 0..rng.random_range(0..3) {
        parts.push(predicate(shape, rng, 2));
    }
    if parts.is_empty() {
        parts.push(predicate(shape, rng, 2));
    }
    parts.join(" AND ")
}

async fn check(table: &str, shape: &Shape, seed: u64) {
    let (a, b) = with_and_without_pushdown(&client().await, table, 3).await;
    let mut rng = StdRng::seed_from_u64(seed);
    let n = queries();
    for i in 0..n {
        let filter = where_clause(shape, &mut rng);
        let (sql, ordered) = match (&shape.sk, rng.random_range(0..8)) {
            (Some(sk), 0) => (
                format!(
                    "SELECT * FROM t WHERE {} = {} AND ({filter}) ORDER BY {} DESC LIMIT {}",
                    col_sql(&shape.pk),
                    literal(&shape.pk, &mut rng),
                    col_sql(sk),
                    rng.random_range(1..6)
                ),
                true,
            ),
            (_, 1) => (format!("SELECT count(*) FROM t WHERE {filter}"), true),
            _ => (format!("SELECT * FROM t WHERE {filter}"), false),
        };
        let context = format!("seed {seed}, query {i} of {n}: {sql}");
        let pushed = query(&a, &sql)
            .await
            .unwrap_or_else(|e| panic!("{context}\npushdown failed: {e}"));
        let plain = query(&b, &sql)
            .await
            .unwrap_or_else(|e| panic!("{context}\nno-pushdown failed: {e}"));
        if ordered {
            assert_eq!(rows(&pushed), rows(&plain), "{context}");
        } else {
            assert_eq!(sorted_rows(&pushed), sorted_rows(&plain), "{context}");
        }
    }
}

fn maybe<T>(rng: &mut StdRng, p: f64, value: impl FnOnce(&mut StdRng) -> T) -> Option<T> {
    if rng.random_bool(p) {
        Some(value(rng))
    } else {
        None
    }
}

/// Composite S/N key, a GSI with a sort key (sparse), an LSI with an INCLUDE
/// projection, reserved words, NULLs, missing and mixed-type attributes, a map.
#[tokio::test]
async fn composite_key_with_gsi_and_lsi() {
    let seed = seed(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let client = client().await;
    let table = unique_name("equiv_a");
    let spec = TableSpec::new(&table, "p", T::S)
        .sort_key("s", T::N)
        .global_index("gsi1", ("gk", T::S), Some(("gs", T::N)))
        .local_index("lsi1", ("ls", T::S))
        .projecting(&["a"]);
    create_table(&client, &spec).await.expect("create");
    let strs: Vec<String> = ["alpha", "beta", "gamma", "delta", "al'pha", "Beta", ""]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut items = Vec::new();
    for p in 0..8 {
        for s in 0..25 {
            let mut item: HashMap<String, AV> = HashMap::from([
                ("p".into(), AV::S(format!("p{p}"))),
                ("s".into(), AV::N(s.to_string())),
            ]);
            let mut put = |k: &str, v: Option<AV>| {
                if let Some(v) = v {
                    item.insert(k.to_string(), v);
                }
            };
            put(
                "gk",
                maybe(&mut rng, 0.8, |r| {
                    AV::S(["x", "y", "z"][r.random_range(0..3)].into())
                }),
            );
            put(
                "gs",
                maybe(&mut rng, 0.7, |r| AV::N(r.random_range(0..10).to_string())),
            );
            put(
                "ls",
                maybe(&mut rng, 0.7, |r| {
                    AV::S(format!(
                        "2026/0{}/1{}",
                        r.random_range(1..4),
                        r.random_range(0..10)
                    ))
                }),
            );
            let a = if rng.random_bool(0.1) {
                Some(AV::Null(true))
            } else {
                maybe(&mut rng, 0.8, |r| AV::N(r.random_range(-5..20).to_string()))
            };
            put("a", a);
            put(
                "b",
                maybe(&mut rng, 0.6, |r| {
                    AV::S(strs[r.random_range(0..strs.len())].clone())
                }),
            );
            put(
                "name",
                maybe(&mut rng, 0.9, |r| {
                    AV::S(strs[r.random_range(0..strs.len())].clone())
                }),
            );
            put(
                "size",
                maybe(&mut rng, 0.8, |r| {
                    AV::N(format!(
                        "{}.{:02}",
                        r.random_range(0..10),
                        r.random_range(0..100)
                    ))
                }),
            );
            put(
                "status",
                maybe(&mut rng, 0.8, |r| AV::Bool(r.random_bool(0.5))),
            );
            let mixed = if rng.random_bool(0.5) {
                AV::S(rng.random_range(0..5).to_string())
            } else {
                AV::N(rng.random_range(0..5).to_string())
            };
            put("mixed", maybe(&mut rng, 0.7, |_| mixed));
            let m = AV::M(HashMap::from([
                ("x".to_string(), AV::N(rng.random_range(0..10).to_string())),
                ("y".to_string(), AV::S(strs[rng.random_range(0..4)].clone())),
            ]));
            put("m", maybe(&mut rng, 0.7, |_| m));
            items.push(item);
        }
    }
    put_items(&client, &table, items).await.expect("put");
    let dom = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let shape = Shape {
        pk: Col::S("p", (0..9).map(|i| format!("p{i}")).collect()),
        sk: Some(Col::N("s", -1, 26)),
        cols: vec![
            Col::S("gk", dom(&["x", "y", "z", "w"])),
            Col::N("gs", -1, 10),
            Col::S(
                "ls",
                dom(&["2026/01/12", "2026/02/15", "2026/03/19", "2026/02"]),
            ),
            Col::N("a", -6, 21),
            Col::S("b", strs.clone()),
            Col::S("name", strs.clone()),
            Col::D("size", 0, 10),
            Col::Bool("status"),
            Col::Opaque("mixed"),
            Col::Nested("\"m\"['x']".into(), Box::new(Col::N("x", 0, 10))),
            Col::Nested(
                "\"m\"['y']".into(),
                Box::new(Col::S("y", strs[..4].to_vec())),
            ),
        ],
    };
    check(&table, &shape, seed).await;
}

/// Hash-only numeric key; binary attribute.
#[tokio::test]
async fn hash_only_numeric_key() {
    let seed = seed(2);
    let mut rng = StdRng::seed_from_u64(seed);
    let client = client().await;
    let table = unique_name("equiv_b");
    TableSpec::new(&table, "id", T::N)
        .create(&client)
        .await
        .expect("create");
    let items = (0..150)
        .map(|i| {
            let mut item = HashMap::from([("id".to_string(), AV::N(i.to_string()))]);
            if rng.random_bool(0.8) {
                item.insert("a".into(), AV::N(rng.random_range(0..30).to_string()));
            }
            if rng.random_bool(0.7) {
                item.insert("c".into(), AV::B(Blob::new(vec![rng.random_range(0..6u8)])));
            }
            if rng.random_bool(0.6) {
                item.insert(
                    "status".into(),
                    AV::S(["on", "off"][rng.random_range(0..2)].into()),
                );
            }
            item
        })
        .collect();
    put_items(&client, &table, items).await.expect("put");
    let shape = Shape {
        pk: Col::N("id", -1, 151),
        sk: None,
        cols: vec![
            Col::N("a", -1, 31),
            Col::B("c", (0..7).collect()),
            Col::S("status", vec!["on".into(), "off".into(), "o".into()]),
        ],
    };
    check(&table, &shape, seed).await;
}

/// Binary partition key, string sort key.
#[tokio::test]
async fn binary_and_string_keys() {
    let seed = seed(3);
    let mut rng = StdRng::seed_from_u64(seed);
    let client = client().await;
    let table = unique_name("equiv_c");
    TableSpec::new(&table, "k", T::B)
        .sort_key("r", T::S)
        .create(&client)
        .await
        .expect("create");
    let rs: Vec<String> = ["a", "ab", "abc", "b", "ba", "c", "Ä", "z"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut items = Vec::new();
    for k in 0..6u8 {
        for r in &rs {
            let mut item = HashMap::from([
                ("k".to_string(), AV::B(Blob::new(vec![k]))),
                ("r".to_string(), AV::S(r.clone())),
            ]);
            if rng.random_bool(0.8) {
                item.insert("a".into(), AV::N(rng.random_range(0..10).to_string()));
            }
            items.push(item);
        }
    }
    put_items(&client, &table, items).await.expect("put");
    let shape = Shape {
        pk: Col::B("k", (0..7).collect()),
        sk: Some(Col::S("r", rs)),
        cols: vec![Col::N("a", -1, 11)],
    };
    check(&table, &shape, seed).await;
}
