//! Errors of the command line, in one place: every module returns them,
//! `main` prints them.

use datafusion::error::DataFusionError;

/// Errors of the command line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// From DataFusion (planning, execution) or the provider (shown with
    /// the provider's own message, without DataFusion's wrapping).
    #[error("{}", provider_message(.0))]
    DataFusion(#[from] DataFusionError),
    /// From the provider, before a query ran.
    #[error("{0}")]
    Dynamo(#[from] dynamo_datafusion::Error),
    /// Reading input or writing output.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Producing output.
    #[error("formatting output: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// Session set-up.
    #[error("{0}")]
    Setup(String),
    /// A backslash command that does not exist or lacks an argument.
    #[error("{0}")]
    Command(String),
}

/// The provider's message when `e` carries one, else DataFusion's.
fn provider_message(e: &DataFusionError) -> String {
    match dynamo_datafusion::Error::find_in(e) {
        Some(found) => found.to_string(),
        None => e.to_string(),
    }
}
