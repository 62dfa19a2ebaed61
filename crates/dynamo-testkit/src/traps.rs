//! A catalogue table whose rare items hold values a schema sample does not see.
//!
//! Shaped like DynamoDB's movie sample: partition key `year` (N), sort key
//! `title` (S), a map `info` (`rating` with one decimal, `genres` and
//! `actors` lists, `running_time_secs`), and top-level `votes` and `code`
//! (whole numbers). After loading, four items that a parallel scan reaches
//! late in their segment (never in the first pages a sample reads) are
//! rewritten to carry one trap each:
//!
//! - [`Traps::rating`]: `info.rating` with six decimals;
//! - [`Traps::huge_votes`]: `votes` beyond `Int64`;
//! - [`Traps::text_code`]: `code` as an `S`;
//! - [`Traps::new_key`]: `info.trivia`, a map key no other item has.
//!
//! A fifth, [`Traps::two_decimals`], has a two-decimal `info.rating` (the
//! inferred type's headroom holds it), and a sixth, [`Traps::rare`], an
//! attribute `premiere` no other item has (no column unless the schema has
//! an extra-attributes column). [`trap_table`] returns every item as
//! written, so tests compute the exact answers from them.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType};

use crate::fixtures::{TableSpec, create_table, put_items, unique_name};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Item = HashMap<String, AV>;

/// Items in a trap table.
pub const TRAP_TABLE_ITEMS: usize = 4_000;
/// Parallel-scan segments used to place the traps (the sampler's maximum).
const SEGMENTS: i32 = 8;
/// A trap sits at least this deep in its segment's scan order: past what
/// a sample reads there (2,000 items over 8 segments is 250 each).
const DEPTH: usize = 300;

/// The key (`year`, `title`) of each trap item.
#[derive(Debug, Clone)]
pub struct Traps {
    /// `info.rating` = `7.123456`.
    pub rating: (i64, String),
    /// `votes` = `123456789012345678901234`.
    pub huge_votes: (i64, String),
    /// `code` = `"A-17"` (an `S`; every other `code` is an `N`).
    pub text_code: (i64, String),
    /// `info.trivia` = `"filmed twice"`.
    pub new_key: (i64, String),
    /// `info.rating` = `6.18` (two decimals where the sample saw one).
    pub two_decimals: (i64, String),
    /// `premiere` = `{"S": "Cannes"}`, an attribute no other item has.
    pub rare: (i64, String),
}

/// A trap table: its name, every item as written, and where the traps are.
#[derive(Debug, Clone)]
pub struct TrapTable {
    /// Table name.
    pub name: String,
    /// Every item, traps included, as written.
    pub items: Vec<Item>,
    /// The trap items' keys.
    pub traps: Traps,
}

const GENRES: [&str; 6] = ["Drama", "Comedy", "Sci-Fi", "Action", "Thriller", "Romance"];

fn movie(i: usize) -> Item {
    let year = 1990 + (i % 30) as i64;
    let title = format!("Movie {i:05}");
    let genres: Vec<AV> = (0..1 + i % 3)
        .map(|g| AV::S(GENRES[(i / 7 + g * 2) % GENRES.len()].to_string()))
        .collect();
    let actors: Vec<AV> = (0..2)
        .map(|a| AV::S(format!("Actor {}", (i * 13 + a * 7) % 500)))
        .collect();
    let info = HashMap::from([
        (
            "rating".to_string(),
            AV::N(format!("{}.{}", 3 + i % 6, i % 10)),
        ),
        ("genres".to_string(), AV::L(genres)),
        ("actors".to_string(), AV::L(actors)),
        (
            "running_time_secs".to_string(),
            AV::N((5_000 + (i * 37) % 4_000).to_string()),
        ),
    ]);
    HashMap::from([
        ("year".to_string(), AV::N(year.to_string())),
        ("title".to_string(), AV::S(title)),
        ("info".to_string(), AV::M(info)),
        (
            "votes".to_string(),
            AV::N(((i * 7_919) % 100_000).to_string()),
        ),
        ("code".to_string(), AV::N((i % 97).to_string())),
    ])
}

fn info(item: &mut Item) -> Option<&mut HashMap<String, AV>> {
    match item.get_mut("info") {
        Some(AV::M(m)) => Some(m),
        _ => None,
    }
}

fn key_of(item: &Item) -> (i64, String) {
    let year = match item.get("year") {
        Some(AV::N(n)) => n.parse().unwrap_or_default(),
        _ => 0,
    };
    let title = match item.get("title") {
        Some(AV::S(s)) => s.clone(),
        _ => String::new(),
    };
    (year, title)
}

/// Keys of items found deep in each parallel-scan segment, in segment order.
async fn deep_keys(client: &Client, table: &str) -> Result<Vec<(i64, String)>, BoxError> {
    let mut out = Vec::new();
    for segment in 0..SEGMENTS {
        let mut seen = 0usize;
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(table)
                .segment(segment)
                .total_segments(SEGMENTS)
                .projection_expression("#y, title")
                .expression_attribute_names("#y", "year")
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items() {
                if seen >= DEPTH {
                    out.push(key_of(item));
                }
                seen += 1;
            }
            start = page.last_evaluated_key;
            if start.is_none() || out.len() > 5 * (segment as usize + 1) {
                break;
            }
        }
    }
    Ok(out)
}

/// Creates and fills a trap table (about 4,000 items); see the module docs.
pub async fn trap_table(client: &Client, prefix: &str) -> Result<TrapTable, BoxError> {
    let name = unique_name(prefix);
    create_table(
        client,
        &TableSpec::new(&name, "year", ScalarAttributeType::N)
            .sort_key("title", ScalarAttributeType::S),
    )
    .await?;
    let mut items: Vec<Item> = (0..TRAP_TABLE_ITEMS).map(movie).collect();
    put_items(client, &name, items.clone()).await?;

    // One trap per segment where possible, each deep in its segment.
    let deep = deep_keys(client, &name).await?;
    let pick = |n: usize| -> Result<(i64, String), BoxError> {
        deep.get(n * deep.len() / 6)
            .cloned()
            .ok_or_else(|| "the table has too few items deep in its scan segments".into())
    };
    let traps = Traps {
        rating: pick(0)?,
        huge_votes: pick(1)?,
        text_code: pick(2)?,
        new_key: pick(3)?,
        two_decimals: pick(4)?,
        rare: pick(5)?,
    };
    let mut rewritten = Vec::new();
    for item in items.iter_mut() {
        let key = key_of(item);
        if key == traps.rating {
            if let Some(m) = info(item) {
                m.insert("rating".into(), AV::N("7.123456".into()));
            }
        } else if key == traps.huge_votes {
            item.insert("votes".into(), AV::N("123456789012345678901234".into()));
        } else if key == traps.text_code {
            item.insert("code".into(), AV::S("A-17".into()));
        } else if key == traps.new_key {
            if let Some(m) = info(item) {
                m.insert("trivia".into(), AV::S("filmed twice".into()));
            }
        } else if key == traps.two_decimals {
            if let Some(m) = info(item) {
                m.insert("rating".into(), AV::N("6.18".into()));
            }
        } else if key == traps.rare {
            item.insert("premiere".into(), AV::S("Cannes".into()));
        } else {
            continue;
        }
        rewritten.push(item.clone());
    }
    put_items(client, &name, rewritten).await?;
    Ok(TrapTable { name, items, traps })
}
