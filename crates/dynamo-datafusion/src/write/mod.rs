//! Writes: INSERT, REPLACE, UPDATE and DELETE with DynamoDB's semantics.
//!
//! | module | does |
//! |---|---|
//! | `encode` | Arrow rows → DynamoDB items, exactly; item sizes and write units |
//! | `ops` | one item's conditional write, a BatchWriteItem, a TransactWriteItems: sent, retried, judged |
//! | `exec` | [`DynamoWriteExec`]: a statement's rows → writes, concurrently, with its capacity bounds |
//! | `guard` | [`DmlGuard`]: refuses an UPDATE or DELETE whose WHERE DataFusion cannot hand the table |
//!
//! The statements (`DynamoTableProvider` builds them from DataFusion's
//! `insert_into`, `update` and `delete_from`):
//!
//! | SQL | DynamoDB |
//! |---|---|
//! | `INSERT INTO t …` | PutItem per row with `attribute_not_exists(pk)`: an existing key stops the statement |
//! | `REPLACE INTO t …`, `INSERT OR REPLACE INTO t …` | BatchWriteItem of 25 puts: the whole item is replaced |
//! | `UPDATE t SET … WHERE …` | the WHERE's read, then UpdateItem per item, if it still exists and still matches |
//! | `DELETE FROM t WHERE …` | the WHERE's read, then DeleteItem per item, if it still matches |

pub(crate) mod encode;
mod exec;
mod guard;
pub(crate) mod ops;

pub use crate::config::WriteMode;
pub(crate) use exec::{Assignment, WriteJob};
pub use exec::{DynamoWriteExec, MAX_TRANSACTION_ITEMS, WriteStats, written_count};
pub use guard::{DmlGuard, uses_dml_guard};

use crate::policy::RetryPolicy;

/// What a write statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statement {
    /// New items only.
    Insert,
    /// Whole items, new or replacing.
    Replace,
    /// New values for some attributes of existing items.
    Update,
    /// Removes items.
    Delete,
}

impl Statement {
    /// The SQL keyword.
    pub fn name(&self) -> &'static str {
        match self {
            Statement::Insert => "INSERT",
            Statement::Replace => "REPLACE",
            Statement::Update => "UPDATE",
            Statement::Delete => "DELETE",
        }
    }
}

/// How a statement writes: the session's and the table's settings.
#[derive(Debug, Clone)]
pub(crate) struct WriteSettings {
    pub mode: WriteMode,
    /// Most requests in flight.
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
    /// WCU per second, shared by the statement's requests.
    pub write_capacity: Option<f64>,
    /// The statement's write-capacity ceiling.
    pub max_wcu: Option<f64>,
    pub price_per_million_wru: f64,
}
