//! What a mirror records of its source, in the Delta table itself.
//!
//! - Table properties, set when the mirror is created: the DynamoDB table
//!   (`dynamodb.mirror.table`) and its columns as Arrow types with their
//!   metadata (`dynamodb.mirror.schema`): what the stream's images are
//!   decoded with and what reads cast back to.
//! - The commit information of every commit the mirror makes
//!   (`dynamodb.mirror`): the [`MirrorPosition`] — the stream checkpoint
//!   the commit's data reaches and since when every change is in it —
//!   written in the same commit as the data, with an application
//!   transaction (`txn`, app id [`APP_ID`]) whose version is the batch
//!   number: Delta refuses a second writer's commit of the same batch.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use deltalake::DeltaTable;
use dynamo_datafusion::changes::ChangeCheckpoint;
use serde::{Deserialize, Serialize};

use crate::error::{MirrorError, Result, delta};

/// The application id of the mirror's Delta transactions.
pub const APP_ID: &str = "dynamo-connector-mirror";
/// The commit-information key of a [`MirrorPosition`].
pub(crate) const COMMIT_KEY: &str = "dynamodb.mirror";
/// The table property naming the DynamoDB table.
pub(crate) const TABLE_PROPERTY: &str = "dynamodb.mirror.table";
/// The table property holding the table's columns (Arrow schema, JSON).
pub(crate) const SCHEMA_PROPERTY: &str = "dynamodb.mirror.schema";

/// Where a mirror stands: committed with the data it describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MirrorPosition {
    /// The commit's batch number (0: the bootstrap Scan; +1 each commit).
    pub batch: i64,
    /// The stream position the mirror's data reaches: the next changes
    /// applied are those after it.
    pub checkpoint: ChangeCheckpoint,
    /// Every change made before this time (milliseconds since the epoch)
    /// is in the mirror: when the stream was last read to its end (for the
    /// bootstrap, when its Scan started).
    pub caught_up_at_ms: i64,
    /// Change records the commit applied (items, for the bootstrap).
    pub records: u64,
}

impl MirrorPosition {
    /// How far the mirror is behind at `now_ms`.
    pub fn lag_ms(&self, now_ms: i64) -> i64 {
        (now_ms - self.caught_up_at_ms).max(0)
    }

    /// How far the mirror is behind now.
    pub fn lag_now_ms(&self) -> i64 {
        self.lag_ms(crate::mirror::now_ms())
    }

    /// The commit information that records this position.
    pub(crate) fn commit_metadata(&self) -> Result<Vec<(String, serde_json::Value)>> {
        let value = serde_json::to_value(self).map_err(|e| MirrorError::Delta {
            path: String::new(),
            reason: format!("the mirror position does not serialize: {e}"),
        })?;
        Ok(vec![(COMMIT_KEY.to_string(), value)])
    }
}

/// What a mirror's table properties say of its source.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The DynamoDB table.
    pub(crate) table: String,
    /// Its columns, as queries see them.
    pub(crate) schema: SchemaRef,
}

impl Source {
    /// The table properties that record this source.
    pub(crate) fn properties(&self) -> Result<HashMap<String, Option<String>>> {
        let schema =
            serde_json::to_string(self.schema.as_ref()).map_err(|e| MirrorError::Delta {
                path: String::new(),
                reason: format!("the table's schema does not serialize: {e}"),
            })?;
        Ok(HashMap::from([
            (TABLE_PROPERTY.to_string(), Some(self.table.clone())),
            (SCHEMA_PROPERTY.to_string(), Some(schema)),
        ]))
    }

    /// The source recorded in `table`'s properties.
    pub(crate) fn of(path: &str, table: &DeltaTable) -> Result<Self> {
        let snapshot = table.snapshot().map_err(|e| delta(path, e))?;
        let properties = snapshot.metadata().configuration();
        let not_a_mirror = |what: &str| MirrorError::NotAMirror {
            path: path.to_string(),
            reason: format!("the Delta table has no table property '{what}'"),
        };
        let name = properties
            .get(TABLE_PROPERTY)
            .ok_or_else(|| not_a_mirror(TABLE_PROPERTY))?;
        let schema = properties
            .get(SCHEMA_PROPERTY)
            .ok_or_else(|| not_a_mirror(SCHEMA_PROPERTY))?;
        let schema: Schema = serde_json::from_str(schema).map_err(|e| MirrorError::NotAMirror {
            path: path.to_string(),
            reason: format!("its '{SCHEMA_PROPERTY}' is not a schema: {e}"),
        })?;
        Ok(Self {
            table: name.clone(),
            schema: Arc::new(schema),
        })
    }
}

/// Commits looked at, newest first, for the last position (others'
/// commits, such as OPTIMIZE or VACUUM, come between).
const MOST_COMMITS_BACK: usize = 1_000;

/// The position a commit (its JSON lines) recorded in its commit
/// information, if it did.
fn recorded_position(commit: &[u8]) -> Option<serde_json::Value> {
    std::str::from_utf8(commit).ok()?.lines().find_map(|line| {
        let action: serde_json::Value = serde_json::from_str(line).ok()?;
        action.get("commitInfo")?.get(COMMIT_KEY).cloned()
    })
}

/// The position of the mirror at its loaded version: the newest commit
/// that recorded one (other writers' commits, such as an OPTIMIZE, are
/// passed over), checked against the application transaction.
pub(crate) async fn position(path: &str, table: &DeltaTable) -> Result<MirrorPosition> {
    let snapshot = table.snapshot().map_err(|e| delta(path, e))?;
    let batch = snapshot
        .transaction_version(table.log_store().as_ref(), APP_ID)
        .await
        .map_err(|e| delta(path, e))?;
    let Some(batch) = batch else {
        return Err(MirrorError::NotAMirror {
            path: path.to_string(),
            reason: format!("no commit of application '{APP_ID}'"),
        });
    };
    // The commits of the loaded version and before, newest first (a
    // listing of the log would also show commits made since it loaded).
    let loaded = table.version().unwrap_or_default();
    for version in (0..=loaded).rev().take(MOST_COMMITS_BACK) {
        let Some(commit) = table
            .log_store()
            .read_commit_entry(version)
            .await
            .map_err(|e| delta(path, e))?
        else {
            break;
        };
        let Some(found) = recorded_position(&commit) else {
            continue;
        };
        let position: MirrorPosition =
            serde_json::from_value(found).map_err(|e| MirrorError::NotAMirror {
                path: path.to_string(),
                reason: format!("its position does not read: {e}"),
            })?;
        if position.batch != batch {
            return Err(MirrorError::NotAMirror {
                path: path.to_string(),
                reason: format!(
                    "its newest position is of batch {} but its transaction log says {batch} \
                     (was it restored to an older version?)",
                    position.batch
                ),
            });
        }
        return Ok(position);
    }
    Err(MirrorError::NotAMirror {
        path: path.to_string(),
        reason: "no commit in its log records a stream position".to_string(),
    })
}
