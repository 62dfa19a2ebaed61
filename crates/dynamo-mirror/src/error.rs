//! What can go wrong with a mirror, each with its own variant.

use datafusion::error::DataFusionError;

/// A mirror operation's result.
pub type Result<T, E = MirrorError> = std::result::Result<T, E>;

/// Why a mirror could not be created, followed or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MirrorError {
    /// The location holds no mirror (no Delta table, or a Delta table this
    /// project did not write).
    #[error("'{path}' is not a mirror of a DynamoDB table: {reason}")]
    NotAMirror {
        /// The mirror's location as given.
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// The location already holds a Delta table.
    #[error(
        "'{path}' already holds a Delta table; a mirror is created at a new location \
         (remove the old one first to rebuild it)"
    )]
    Exists {
        /// The mirror's location as given.
        path: String,
    },
    /// The location is not one a mirror can be kept at.
    #[error("mirror location '{path}': {reason}")]
    Location {
        /// The location as given.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The table cannot be mirrored as it is (no stream, a stream without
    /// new images, a column without a Delta type).
    #[error("table '{table}' cannot be mirrored: {reason}")]
    Unmirrorable {
        /// The DynamoDB table.
        table: String,
        /// Why, and what to change.
        reason: String,
    },
    /// The mirror's checkpoint is no longer in the table's stream (older
    /// than its 24-hour retention, or the stream was replaced): what
    /// follows it is lost, so the mirror cannot be brought up to date from
    /// the stream.
    #[error(
        "mirror at '{path}' of table '{table}' has fallen behind its stream: {reason}; \
         rebuild it from a Scan (`--on-expired rebootstrap`) or create a new mirror"
    )]
    Expired {
        /// The mirror's location.
        path: String,
        /// The DynamoDB table.
        table: String,
        /// What the stream said.
        reason: String,
    },
    /// Another follower applied changes to the mirror at the same time.
    #[error(
        "mirror at '{path}': another follower committed while this one applied batch {batch}; \
         nothing of this batch was kept (run one follower per mirror)"
    )]
    Concurrent {
        /// The mirror's location.
        path: String,
        /// The batch this follower tried to commit.
        batch: i64,
    },
    /// The mirror is older than a query allows and the query may not
    /// bring it up to date (`on_stale = 'error'`).
    #[error(
        "mirror at '{path}' is {lag_ms} ms behind table '{table}', more than max_staleness \
         ({max_ms} ms); start `dynamo-sql mirror follow {path}`, or let queries catch up \
         (on_stale = 'sync') or read live (on_stale = 'live')"
    )]
    Stale {
        /// The mirror's location.
        path: String,
        /// The DynamoDB table.
        table: String,
        /// How far behind the mirror is.
        lag_ms: i64,
        /// The bound the query set.
        max_ms: i64,
    },
    /// Reading the Delta table or writing to it failed.
    #[error("mirror at '{path}': {reason}")]
    Delta {
        /// The mirror's location.
        path: String,
        /// The Delta library's message.
        reason: String,
    },
    /// DynamoDB or its stream refused or failed.
    #[error(transparent)]
    Dynamo(#[from] dynamo_datafusion::Error),
    /// Planning or running the DataFusion side failed.
    #[error(transparent)]
    DataFusion(Box<DataFusionError>),
}

impl From<DataFusionError> for MirrorError {
    fn from(e: DataFusionError) -> Self {
        MirrorError::DataFusion(Box::new(e))
    }
}

impl From<MirrorError> for DataFusionError {
    fn from(e: MirrorError) -> Self {
        match e {
            MirrorError::DataFusion(e) => *e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

/// A Delta library error at `path`, as a [`MirrorError`].
pub(crate) fn delta(path: &str, e: impl std::fmt::Display) -> MirrorError {
    MirrorError::Delta {
        path: path.to_string(),
        reason: e.to_string(),
    }
}
