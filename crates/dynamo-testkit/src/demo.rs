//! Demo tables modelled on the two use cases of the platform document:
//! user engagement analytics and inventory management. Deterministic (seeded).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue as AV, ScalarAttributeType as T, StreamSpecification, StreamViewType,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fixtures::{TableSpec, table_exists};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Names of the demo tables.
pub const DEMO_TABLES: [&str; 2] = ["UserEngagement", "Inventory"];

const FEATURES: [&str; 6] = [
    "dashboard",
    "reports",
    "export",
    "alerts",
    "search",
    "sharing",
];
const DEVICES: [&str; 3] = ["web", "ios", "android"];
const PLANS: [&str; 3] = ["free", "team", "enterprise"];
const COUNTRIES: [&str; 6] = ["US", "DE", "IN", "BR", "JP", "NO"];
const CATEGORIES: [&str; 5] = ["tools", "garden", "kitchen", "toys", "office"];
const WAREHOUSES: [&str; 4] = ["WH-EAST", "WH-WEST", "WH-NORTH", "WH-SOUTH"];

fn s(v: impl Into<String>) -> AV {
    AV::S(v.into())
}

fn n(v: impl ToString) -> AV {
    AV::N(v.to_string())
}

/// Creates and fills the demo tables; tables that already exist are left alone.
/// Returns the number of items written.
pub async fn load_demo(client: &Client) -> Result<usize, BoxError> {
    let tables = [
        TableSpec::new(DEMO_TABLES[0], "userId", T::S)
            .sort_key("eventTime", T::N)
            .stream(StreamViewType::NewAndOldImages)
            .global_index(
                "byFeature",
                ("feature", T::S),
                Some(("engagementScore", T::N)),
            ),
        TableSpec::new(DEMO_TABLES[1], "warehouseId", T::S)
            .sort_key("sku", T::S)
            .stream(StreamViewType::NewAndOldImages)
            .global_index("byCategory", ("category", T::S), Some(("quantity", T::N)))
            .projecting(&["productName", "price"]),
    ];
    let mut written = 0;
    for (spec, items) in tables.iter().zip([engagement_items, inventory_items]) {
        if table_exists(client, &spec.name).await? {
            with_stream(client, &spec.name).await?;
            continue;
        }
        let items = items();
        written += items.len();
        spec.create_with(client, items).await?;
    }
    Ok(written)
}

/// Turns on the stream of a demo table made before the demo had one (its
/// change records then start now).
async fn with_stream(client: &Client, table: &str) -> Result<(), BoxError> {
    let described = client.describe_table().table_name(table).send().await?;
    let enabled = described
        .table()
        .and_then(|t| t.stream_specification())
        .is_some_and(|s| s.stream_enabled());
    if !enabled {
        client
            .update_table()
            .table_name(table)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// 300 users, 2 to 12 events each.
fn engagement_items() -> Vec<HashMap<String, AV>> {
    let mut rng = StdRng::seed_from_u64(20_261_126);
    let mut items = Vec::new();
    for u in 0..300u32 {
        let user = format!("{:06}", 123_000 + u * 3);
        let plan = PLANS[rng.random_range(0..PLANS.len())];
        let country = COUNTRIES[rng.random_range(0..COUNTRIES.len())];
        let mut t: u64 = 1_761_955_200 + rng.random_range(0..86_400);
        for _ in 0..rng.random_range(2..=12) {
            t += rng.random_range(600..172_800);
            let mut item = HashMap::from([
                ("userId".to_string(), s(&user)),
                ("eventTime".to_string(), n(t)),
                (
                    "feature".to_string(),
                    s(FEATURES[rng.random_range(0..FEATURES.len())]),
                ),
                ("engagementScore".to_string(), n(rng.random_range(0..=100))),
                (
                    "sessionMinutes".to_string(),
                    n(format!(
                        "{}.{:02}",
                        rng.random_range(0..90),
                        rng.random_range(0..100)
                    )),
                ),
                (
                    "device".to_string(),
                    s(DEVICES[rng.random_range(0..DEVICES.len())]),
                ),
                ("plan".to_string(), s(plan)),
                ("country".to_string(), s(country)),
            ]);
            if rng.random_bool(0.2) {
                item.insert(
                    "tags".to_string(),
                    AV::Ss(vec![
                        "beta".into(),
                        format!("cohort-{}", rng.random_range(1..5)),
                    ]),
                );
            }
            items.push(item);
        }
    }
    items
}

/// 4 warehouses × 150 products.
fn inventory_items() -> Vec<HashMap<String, AV>> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut items = Vec::new();
    for wh in WAREHOUSES {
        for p in 0..150u32 {
            let category = CATEGORIES[(p as usize) % CATEGORIES.len()];
            let quantity: u32 = if rng.random_bool(0.1) {
                0
            } else {
                rng.random_range(1..500)
            };
            let mut item = HashMap::from([
                ("warehouseId".to_string(), s(wh)),
                ("sku".to_string(), s(format!("SKU-{:05}", 10_000 + p * 7))),
                ("productName".to_string(), s(format!("{category} item {p}"))),
                ("category".to_string(), s(category)),
                ("quantity".to_string(), n(quantity)),
                ("reorderLevel".to_string(), n(rng.random_range(10..60))),
                (
                    "price".to_string(),
                    n(format!(
                        "{}.{:02}",
                        rng.random_range(1..400),
                        rng.random_range(0..100)
                    )),
                ),
                (
                    "lastRestocked".to_string(),
                    s(format!(
                        "2026-{:02}-{:02}",
                        rng.random_range(1..12),
                        rng.random_range(1..29)
                    )),
                ),
                (
                    "dimensions".to_string(),
                    AV::M(HashMap::from([
                        ("widthCm".to_string(), n(rng.random_range(5..120))),
                        ("heightCm".to_string(), n(rng.random_range(5..120))),
                        (
                            "weightKg".to_string(),
                            n(format!(
                                "{}.{}",
                                rng.random_range(0..40),
                                rng.random_range(0..10)
                            )),
                        ),
                    ])),
                ),
                ("discontinued".to_string(), AV::Bool(rng.random_bool(0.05))),
            ]);
            if rng.random_bool(0.3) {
                item.insert(
                    "supplier".to_string(),
                    s(format!("Supplier {}", rng.random_range(1..20))),
                );
            }
            items.push(item);
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_data_is_deterministic_and_unique_by_key() {
        let a = engagement_items();
        assert_eq!(a, engagement_items());
        let mut keys: Vec<_> = a
            .iter()
            .map(|i| {
                (
                    format!("{:?}", i["userId"]),
                    format!("{:?}", i["eventTime"]),
                )
            })
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), a.len(), "primary keys must be unique");
        assert_eq!(inventory_items().len(), 600);
    }
}
