//! What a `dynamo-sql` run prints and where: the format, the row limit of
//! tables, expanded display, timing, statistics, and the output (standard
//! output, or a file after `\o FILE`). Backslash commands change them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::CliError;
use crate::print::Format;

/// Where results go.
#[derive(Debug)]
pub enum Output {
    /// Standard output.
    Stdout,
    /// A file (`\o FILE`), truncated when opened.
    File {
        /// As given.
        path: PathBuf,
        /// Buffered writer, flushed after every statement.
        file: BufWriter<File>,
    },
}

impl Output {
    /// Results go to `path` from now on (created or truncated).
    pub fn to_file(path: &Path) -> Result<Self, CliError> {
        let file = File::create(path).map_err(|e| CliError::Io {
            what: format!("opening {} for \\o", path.display()),
            source: e,
        })?;
        Ok(Output::File {
            path: path.to_path_buf(),
            file: BufWriter::new(file),
        })
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Stdout => std::io::stdout().write(buf),
            Output::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Stdout => std::io::stdout().flush(),
            Output::File { file, .. } => file.flush(),
        }
    }
}

/// How and where results are printed; changed by backslash commands.
#[derive(Debug)]
pub struct Settings {
    /// Output format (`--format`, `\format`).
    pub format: Format,
    /// Rows a table shows at most (`--maxrows`, `\set maxrows N`); `None`: all.
    pub maxrows: Option<usize>,
    /// One line per column (`\x`), for wide rows.
    pub expanded: bool,
    /// Print each statement's time (`\timing on|off`).
    pub timing: bool,
    /// Print what each statement cost in DynamoDB (`--stats`).
    pub stats: bool,
    /// Where results go (`\o FILE`, `\o`).
    pub output: Output,
    /// Plans printed for a person: `EXPLAIN` as an indented tree with the
    /// DynamoDB request as a block (on when standard output is a terminal).
    pub readable_plans: bool,
    /// A progress line on standard error during long reads (on when
    /// standard output and standard error are terminals).
    pub progress: bool,
    /// The cluster statements run on (`--cluster`), if any.
    pub cluster: Option<String>,
    /// The plan of the statement running now, to cancel its cluster job
    /// when it is interrupted.
    pub running: crate::exec::Running,
}

impl Settings {
    /// Settings for `format`, printing to standard output.
    pub fn new(format: Format) -> Self {
        Self {
            format,
            maxrows: None,
            expanded: false,
            timing: false,
            stats: false,
            output: Output::Stdout,
            readable_plans: false,
            progress: false,
            cluster: None,
            running: crate::exec::Running::default(),
        }
    }

    /// The variables `\set` shows, as (name, value).
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            ("format", format!("{:?}", self.format).to_ascii_lowercase()),
            (
                "maxrows",
                self.maxrows.map_or("all".to_string(), |n| n.to_string()),
            ),
            ("expanded", on_off(self.expanded).to_string()),
            ("timing", on_off(self.timing).to_string()),
            ("stats", on_off(self.stats).to_string()),
            ("readable_plans", on_off(self.readable_plans).to_string()),
            (
                "output",
                match &self.output {
                    Output::Stdout => "stdout".to_string(),
                    Output::File { path, .. } => path.display().to_string(),
                },
            ),
        ]
    }

    /// Sets the variable `name` (`\set NAME VALUE`); `Ok(false)` when
    /// `name` is not one of them.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, CliError> {
        let bad = |what: &str| CliError::Command(format!("\\set {name}: {what}, not '{value}'"));
        match name {
            "format" => {
                self.format =
                    parse_format(value).ok_or_else(|| bad("table, csv, json or ndjson"))?
            }
            "maxrows" => {
                self.maxrows = match value {
                    "all" | "0" => None,
                    n => Some(n.parse().map_err(|_| bad("a number of rows or 'all'"))?),
                }
            }
            "expanded" => self.expanded = parse_on_off(value).ok_or_else(|| bad("on or off"))?,
            "timing" => self.timing = parse_on_off(value).ok_or_else(|| bad("on or off"))?,
            "stats" => self.stats = parse_on_off(value).ok_or_else(|| bad("on or off"))?,
            "readable_plans" => {
                self.readable_plans = parse_on_off(value).ok_or_else(|| bad("on or off"))?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `on` or `off`.
pub fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// `on`/`off` (also `true`/`false`).
pub fn parse_on_off(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" => Some(true),
        "off" | "false" => Some(false),
        _ => None,
    }
}

/// A format by name.
pub fn parse_format(value: &str) -> Option<Format> {
    match value.to_ascii_lowercase().as_str() {
        "table" => Some(Format::Table),
        "csv" => Some(Format::Csv),
        "json" => Some(Format::Json),
        "ndjson" => Some(Format::Ndjson),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_set_by_name_and_refuse_bad_values() {
        let mut s = Settings::new(Format::Table);
        assert!(s.set("format", "CSV").expect("format"));
        assert_eq!(s.format, Format::Csv);
        assert!(s.set("maxrows", "25").expect("maxrows"));
        assert_eq!(s.maxrows, Some(25));
        assert!(s.set("maxrows", "all").expect("maxrows"));
        assert_eq!(s.maxrows, None);
        assert!(s.set("timing", "on").expect("timing") && s.timing);
        assert!(!s.set("dynamodb.pushdown", "false").expect("not ours"));
        let err = s.set("format", "xml").expect_err("bad");
        assert!(
            err.to_string()
                .contains("table, csv, json or ndjson, not 'xml'"),
            "{err}"
        );
        let shown = s.variables();
        assert!(shown.contains(&("format", "csv".to_string())), "{shown:?}");
        assert!(
            shown.contains(&("output", "stdout".to_string())),
            "{shown:?}"
        );
    }
}
