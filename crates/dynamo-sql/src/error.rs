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
    /// The run was interrupted (Ctrl-C); what was cancelled.
    #[error("{0}")]
    Interrupted(String),
    /// An error with what probably went wrong (a table name in the wrong case).
    #[error("{error}; {hint}")]
    Hinted {
        /// The error.
        error: Box<CliError>,
        /// The likely fix.
        hint: String,
    },
}

/// The table a "table '…' not found" message names (without the default
/// catalog and schema), if it is one.
pub fn missing_table(message: &str) -> Option<&str> {
    let start = message.find("table '")? + "table '".len();
    let rest = &message[start..];
    let name = &rest[..rest.find("' not found")?];
    Some(
        name.strip_prefix(concat!("datafusion", ".", "public", "."))
            .unwrap_or(name),
    )
}

/// The table of `names` that `missing` most likely meant: the same name in
/// another case, else one within two edits (ignoring case) of a name of at
/// least four characters.
pub fn nearest_table<'a>(missing: &str, names: &'a [String]) -> Option<&'a str> {
    let lower = missing.to_lowercase();
    if let Some(same) = names.iter().find(|n| n.to_lowercase() == lower) {
        return Some(same);
    }
    if missing.chars().count() < 4 {
        return None;
    }
    names
        .iter()
        .map(|n| (strsim::levenshtein(&n.to_lowercase(), &lower), n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| n.as_str())
}

/// The provider's message when `e` carries one, else DataFusion's.
fn provider_message(e: &DataFusionError) -> String {
    match dynamo_datafusion::Error::find_in(e) {
        Some(found) => found.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_is_matched_in_another_case_or_by_a_near_name() {
        let message = "Error during planning: table 'datafusion.public.inventory' not found";
        assert_eq!(missing_table(message), Some("inventory"));
        assert_eq!(missing_table("No field named x"), None);
        let names = vec!["Inventory".to_string(), "UserEngagement".to_string()];
        assert_eq!(nearest_table("inventory", &names), Some("Inventory"));
        assert_eq!(
            nearest_table("UserEngagment", &names),
            Some("UserEngagement")
        );
        assert_eq!(nearest_table("Orders", &names), None);
        assert_eq!(nearest_table("inv", &names), None);
    }
}
