//! Backslash commands, in the conventions of psql and datafusion-cli:
//! `\dt`, `\d TABLE`, `\refresh TABLE`, `\format`, `\o`, `\timing`, `\x`,
//! `\h`, `\set`, `\?`, `\q`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::temporal_conversions::timestamp_s_to_datetime;
use datafusion::config::ExtensionOptions;
use dynamo_datafusion::metadata::{IndexKind, IndexProjection};
use dynamo_datafusion::schema::{SchemaHistory, SchemaOrigin, is_json_field, time_format_of};
use dynamo_datafusion::{DynamoConfig, DynamoSchemaProvider, DynamoTableProvider, TableMeta};

use crate::error::CliError;
use crate::print::{Format, Printer};
use crate::session::{CATALOG, SCHEMA};
use crate::settings::{Output, Settings, on_off, parse_format, parse_on_off};

/// A backslash command. One list ([`Command::ALL`]) names them, describes
/// them for `\?`, and tells completion what follows each, so the help, the
/// dispatch and Tab never disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `\dt`
    ListTables,
    /// `\d [TABLE]`
    Describe,
    /// `\refresh TABLE`
    Refresh,
    /// `\format [FORMAT]`
    Format,
    /// `\o [FILE]`
    Output,
    /// `\timing [on|off]`
    Timing,
    /// `\x [on|off]`
    Expanded,
    /// `\h [FUNCTION]`
    Functions,
    /// `\set [NAME VALUE]`
    Set,
    /// `\?`
    Help,
    /// `\q`
    Quit,
}

/// What Tab offers after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Argument {
    /// Nothing.
    None,
    /// A table name.
    Table,
    /// A function name.
    Function,
    /// One of these words.
    Words(&'static [&'static str]),
}

impl Command {
    /// Every command, in the order `\?` lists them.
    pub const ALL: [Command; 11] = [
        Command::ListTables,
        Command::Describe,
        Command::Refresh,
        Command::Format,
        Command::Output,
        Command::Timing,
        Command::Expanded,
        Command::Functions,
        Command::Set,
        Command::Help,
        Command::Quit,
    ];

    /// The command's name, as typed.
    pub fn name(self) -> &'static str {
        match self {
            Command::ListTables => "\\dt",
            Command::Describe => "\\d",
            Command::Refresh => "\\refresh",
            Command::Format => "\\format",
            Command::Output => "\\o",
            Command::Timing => "\\timing",
            Command::Expanded => "\\x",
            Command::Functions => "\\h",
            Command::Set => "\\set",
            Command::Help => "\\?",
            Command::Quit => "\\q",
        }
    }

    /// Other names it answers to.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Command::Output => &["\\out"],
            Command::Help => &["\\help"],
            Command::Quit => &["\\quit"],
            _ => &[],
        }
    }

    /// Its arguments, as `\?` shows them.
    fn usage(self) -> &'static str {
        match self {
            Command::Describe | Command::Refresh => " TABLE",
            Command::Format => " [FORMAT]",
            Command::Output => " [FILE]",
            Command::Timing | Command::Expanded => " [on|off]",
            Command::Functions => " [FUNCTION]",
            Command::Set => " [NAME VALUE]",
            _ => "",
        }
    }

    /// What it does, for `\?` (lines after the first are continued).
    fn about(self) -> &'static [&'static str] {
        match self {
            Command::ListTables => &["list tables"],
            Command::Describe => &[
                "columns and types of TABLE, with its DynamoDB keys and indexes,",
                "and where its schema came from",
            ],
            Command::Refresh => &["sample TABLE again for its schema (as ANALYZE TABLE TABLE;)"],
            Command::Format => &["show or set the output format: table, csv, json, ndjson"],
            Command::Output => &["send results to FILE (truncated); \\o alone: back to stdout"],
            Command::Timing => &["print each statement's time (toggles without an argument)"],
            Command::Expanded => {
                &["one line per column, for wide rows (toggles without an argument)"]
            }
            Command::Functions => &["the SQL functions, or one function's description and syntax"],
            Command::Set => &[
                "show the variables and dynamodb.* settings, or set one",
                "(format, maxrows, expanded, timing, stats, or any SET name)",
            ],
            Command::Help => &["this help"],
            Command::Quit => &["quit"],
        }
    }

    /// What Tab offers after it.
    pub fn argument(self) -> Argument {
        match self {
            Command::Describe | Command::Refresh => Argument::Table,
            Command::Functions => Argument::Function,
            Command::Format => Argument::Words(&["table", "csv", "json", "ndjson"]),
            Command::Timing | Command::Expanded => Argument::Words(&["on", "off"]),
            _ => Argument::None,
        }
    }

    /// The command `word` names, if any.
    pub fn named(word: &str) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|c| c.name() == word || c.aliases().contains(&word))
    }
}

/// What `\?` says after the commands.
const HELP_NOTES: &str = "\
SQL statements end with ';' and may span lines. Names are case-sensitive:
SELECT userId FROM UserEngagement; quoted names (\"my-table\") work as usual.
Tab completes keywords, functions, tables and the columns of the tables named in
the statement; Ctrl-R searches the history.
COPY (SELECT ...) TO 'out.parquet' (or .csv, .json) exports a result, and
SELECT * FROM 'out.parquet' reads a file back.
CREATE EXTERNAL TABLE t STORED AS DYNAMODB LOCATION 'TableName' [OPTIONS (...)]
registers a table under another name or with options.
SET dynamodb.pushdown = false turns pushdown off (to compare);
SET dynamodb.max_rcu = N refuses queries estimated above N read capacity units
(RESET dynamodb.max_rcu, or = off, lifts it);
SET dynamodb.scan_guard = 'error' refuses full scans of tables above
dynamodb.scan_guard_bytes. EXPLAIN shows the DynamoDB request and its estimated
cost; EXPLAIN ANALYZE and --stats show requests, items scanned and returned, and
read capacity. Schemas are sampled once and cached (--schema-cache, --schema-ttl);
ANALYZE TABLE t; samples t again. A value the sample never saw widens its
column and the statement runs again (a Notice says so). Option
'extra_attributes' 'true' (or --extra-attributes) adds a column _extra with
every attribute that has no column of its own.";

/// The text of `\?`, from [`Command::ALL`].
pub fn help() -> String {
    let mut out = String::from("Commands:\n");
    for command in Command::ALL {
        let head = format!("{}{}", command.name(), command.usage());
        for (i, line) in command.about().iter().enumerate() {
            let left = if i == 0 { head.as_str() } else { "" };
            out.push_str(&format!("  {left:<19} {line}\n"));
        }
    }
    out.push_str(HELP_NOTES);
    out
}

/// Runs one backslash command.
pub async fn run(
    ctx: &SessionContext,
    line: &str,
    settings: &mut Settings,
) -> Result<(), CliError> {
    let line = line.trim().trim_end_matches(';').trim();
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    let format = settings.format;
    let out = &mut settings.output;
    let command = Command::named(cmd).ok_or_else(|| {
        CliError::Command(format!("unknown command '{cmd}'; \\? lists the commands"))
    })?;
    match command {
        Command::Help => {
            writeln!(out, "{}", help()).map_err(io)?;
            Ok(())
        }
        Command::Quit => Ok(()),
        Command::ListTables => list_tables(ctx, format, out),
        Command::Describe if arg.is_empty() => list_tables(ctx, format, out),
        Command::Describe => describe(ctx, unquote(arg), format, out).await,
        Command::Refresh if arg.is_empty() => Err(CliError::Command(
            "\\refresh needs a table name: \\refresh TABLE".to_string(),
        )),
        Command::Refresh => refresh(ctx, unquote(arg), out).await,
        Command::Format if arg.is_empty() => say(&format!("format is {}", name_of(format))),
        Command::Format => {
            settings.format = parse_format(arg).ok_or_else(|| {
                CliError::Command(format!(
                    "unknown format '{arg}': table, csv, json or ndjson"
                ))
            })?;
            say(&format!("format is {}", name_of(settings.format)))
        }
        Command::Output => {
            settings.output.flush().map_err(io)?;
            settings.output = if arg.is_empty() {
                Output::Stdout
            } else {
                Output::to_file(Path::new(unquote(arg)))?
            };
            Ok(())
        }
        Command::Timing => {
            settings.timing = toggle(settings.timing, arg, "\\timing")?;
            say(&format!("timing is {}", on_off(settings.timing)))
        }
        Command::Expanded => {
            settings.expanded = toggle(settings.expanded, arg, "\\x")?;
            say(&format!(
                "expanded display is {}",
                on_off(settings.expanded)
            ))
        }
        Command::Functions if arg.is_empty() => list_functions(ctx, format, out),
        Command::Functions => function_help(ctx, arg, out),
        Command::Set if arg.is_empty() => show_settings(ctx, settings),
        Command::Set => {
            let (name, value) = arg
                .split_once(char::is_whitespace)
                .map(|(n, v)| (n, v.trim()))
                .ok_or_else(|| {
                    CliError::Command(
                        "\\set needs a name and a value: \\set NAME VALUE".to_string(),
                    )
                })?;
            if settings.set(name, value)? {
                return Ok(());
            }
            let value = value.trim_matches('\'');
            if let Some(key) = name.strip_prefix("dynamodb.") {
                // `off` unsets, as `SET dynamodb.… = off` does.
                dynamo_datafusion::DynamoConfig::apply_in(ctx, key, Some(value))?;
                return Ok(());
            }
            ctx.sql(&format!("SET {name} = '{}'", value.replace('\'', "''")))
                .await?;
            Ok(())
        }
    }
}

/// A command's confirmation, on standard error (results stay clean).
fn say(text: &str) -> Result<(), CliError> {
    eprintln!("{text}");
    Ok(())
}

fn name_of(format: Format) -> String {
    format!("{format:?}").to_ascii_lowercase()
}

/// `on`, `off`, or (no argument) the other state.
fn toggle(now: bool, arg: &str, command: &str) -> Result<bool, CliError> {
    if arg.is_empty() {
        return Ok(!now);
    }
    parse_on_off(arg)
        .ok_or_else(|| CliError::Command(format!("{command} takes on or off, not '{arg}'")))
}

/// Every SQL function, with its kind and a one-line description.
fn list_functions(
    ctx: &SessionContext,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let state = ctx.state();
    let mut rows: Vec<Vec<String>> = Vec::new();
    // At a terminal's width in a table; whole in the machine formats.
    let width = (format == Format::Table).then_some(SUMMARY_WIDTH);
    let first_line = |d: Option<&datafusion::logical_expr::Documentation>| {
        d.map(|d| summary(&d.description, width))
            .unwrap_or_default()
    };
    for (name, f) in state.scalar_functions() {
        rows.push(vec![
            name.clone(),
            "scalar".into(),
            first_line(f.documentation()),
        ]);
    }
    for (name, f) in state.aggregate_functions() {
        rows.push(vec![
            name.clone(),
            "aggregate".into(),
            first_line(f.documentation()),
        ]);
    }
    for (name, f) in state.window_functions() {
        rows.push(vec![
            name.clone(),
            "window".into(),
            first_line(f.documentation()),
        ]);
    }
    rows.sort();
    print_rows(&["function", "kind", "description"], rows, format, out)
}

/// Characters of a function's description `\h` shows in a table.
const SUMMARY_WIDTH: usize = 60;

/// The first sentence of `description` on one line, cut to `width`
/// characters (with an ellipsis) when given.
fn summary(description: &str, width: Option<usize>) -> String {
    let line = description.split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence = match line.find(". ") {
        Some(end) => &line[..=end],
        None => line.as_str(),
    };
    match width {
        Some(width) if sentence.chars().count() > width => {
            let cut: String = sentence.chars().take(width - 1).collect();
            format!("{}…", cut.trim_end())
        }
        _ => sentence.to_string(),
    }
}

/// One function's documentation.
fn function_help(ctx: &SessionContext, name: &str, out: &mut impl Write) -> Result<(), CliError> {
    let state = ctx.state();
    let key = name.to_ascii_lowercase();
    let doc = state
        .scalar_functions()
        .get(&key)
        .map(|f| ("scalar", f.documentation()))
        .or_else(|| {
            state
                .aggregate_functions()
                .get(&key)
                .map(|f| ("aggregate", f.documentation()))
        })
        .or_else(|| {
            state
                .window_functions()
                .get(&key)
                .map(|f| ("window", f.documentation()))
        });
    let Some((kind, doc)) = doc else {
        return Err(CliError::Command(format!(
            "no function '{name}'; \\h lists them"
        )));
    };
    let Some(doc) = doc else {
        writeln!(out, "{key} ({kind} function): no documentation").map_err(io)?;
        return Ok(());
    };
    let mut text = format!(
        "{key} ({kind} function)\n\n{}\n\nSyntax: {}\n",
        doc.description.trim(),
        doc.syntax_example
    );
    if let Some(args) = &doc.arguments {
        text.push_str("\nArguments:\n");
        for (arg, what) in args {
            text.push_str(&format!("  {arg}: {}\n", what.trim()));
        }
    }
    if let Some(example) = &doc.sql_example {
        text.push_str(&format!("\nExample:\n{}\n", example.trim()));
    }
    write!(out, "{text}").map_err(io)
}

/// The REPL's variables and the session's `dynamodb.*` settings.
fn show_settings(ctx: &SessionContext, settings: &mut Settings) -> Result<(), CliError> {
    let mut rows: Vec<Vec<String>> = settings
        .variables()
        .into_iter()
        .map(|(n, v)| vec![n.to_string(), v])
        .collect();
    let state = ctx.state();
    if let Some(dynamodb) = state.config().options().extensions.get::<DynamoConfig>() {
        for entry in ExtensionOptions::entries(dynamodb) {
            rows.push(vec![
                entry.key,
                entry.value.unwrap_or_else(|| "(unset)".into()),
            ]);
        }
    }
    let format = settings.format;
    print_rows(&["name", "value"], rows, format, &mut settings.output)
}

fn unquote(name: &str) -> &str {
    name.strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name)
}

fn io(e: std::io::Error) -> CliError {
    CliError::Io {
        what: "writing output".to_string(),
        source: e,
    }
}

fn print_rows(
    columns: &[&str],
    rows: Vec<Vec<String>>,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)?;
    let mut printer = Printer::new(format, schema);
    printer.push(batch, out)?;
    printer.finish(out)
}

fn list_tables(ctx: &SessionContext, format: Format, out: &mut impl Write) -> Result<(), CliError> {
    let schema = ctx
        .catalog(CATALOG)
        .and_then(|c| c.schema(SCHEMA))
        .ok_or_else(|| CliError::Setup(format!("schema {CATALOG}.{SCHEMA} missing")))?;
    let rows = schema.table_names().into_iter().map(|t| vec![t]).collect();
    print_rows(&["table_name"], rows, format, out)
}

async fn describe(
    ctx: &SessionContext,
    table: &str,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    // Exact name: DynamoDB names are case-sensitive, so no identifier normalisation.
    let provider = ctx.table_provider(TableReference::bare(table)).await?;
    let dynamo = provider.downcast_ref::<DynamoTableProvider>();
    let meta = dynamo.map(DynamoTableProvider::meta);
    let rows = provider
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let ty = if is_json_field(f) {
                "Utf8 (JSON text)".to_string()
            } else if let Some(format) = time_format_of(f) {
                // The attribute keeps its DynamoDB form; the format reads it.
                format!("{} ({format})", f.data_type())
            } else {
                f.data_type().to_string()
            };
            vec![
                f.name().clone(),
                ty,
                if f.is_nullable() { "YES" } else { "NO" }.to_string(),
                meta.map(|m| key_role(m, f.name())).unwrap_or_default(),
            ]
        })
        .collect();
    print_rows(
        &["column_name", "data_type", "nullable", "dynamodb_key"],
        rows,
        format,
        out,
    )?;
    if let Some(m) = meta {
        if format == Format::Table {
            writeln!(
                out,
                "DynamoDB table {}: ~{} items, ~{} bytes",
                m.name, m.item_count, m.size_bytes
            )
            .map_err(io)?;
            if let Some(d) = dynamo {
                for line in provenance(&d.schema_history()) {
                    writeln!(out, "{line}").map_err(io)?;
                }
            }
        }
        if !m.indexes.is_empty() {
            let rows = m
                .indexes
                .iter()
                .map(|ix| {
                    vec![
                        ix.name.clone(),
                        match ix.kind {
                            IndexKind::Global => "GSI",
                            IndexKind::Local => "LSI",
                        }
                        .to_string(),
                        ix.keys.partition_key.name.clone(),
                        ix.keys
                            .sort_key
                            .as_ref()
                            .map(|k| k.name.clone())
                            .unwrap_or_default(),
                        match &ix.projection {
                            IndexProjection::All => "ALL".to_string(),
                            IndexProjection::KeysOnly => "KEYS_ONLY".to_string(),
                            IndexProjection::Include(a) => format!("INCLUDE({})", a.join(", ")),
                        },
                    ]
                })
                .collect();
            print_rows(
                &[
                    "index_name",
                    "kind",
                    "partition_key",
                    "sort_key",
                    "projection",
                ],
                rows,
                format,
                out,
            )?;
        }
    }
    Ok(())
}

/// Samples `table` again (`\refresh`, `ANALYZE TABLE`) and says what it found.
pub async fn refresh(
    ctx: &SessionContext,
    table: &str,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let schema = ctx
        .catalog(CATALOG)
        .and_then(|c| c.schema(SCHEMA))
        .ok_or_else(|| CliError::Setup(format!("schema {CATALOG}.{SCHEMA} missing")))?;
    let dynamo = schema
        .downcast_ref::<DynamoSchemaProvider>()
        .ok_or_else(|| CliError::Setup("the default schema is not DynamoDB's".to_string()))?;
    let provider = dynamo.resample(table).await?;
    let columns = provider.schema().fields().len();
    let items = provider
        .downcast_ref::<DynamoTableProvider>()
        .and_then(|p| match p.schema_history().origin {
            SchemaOrigin::Sampled { items, .. } => Some(items),
            SchemaOrigin::Given => None,
        })
        .unwrap_or(0);
    writeln!(
        out,
        "Table {table}: sampled {items} items, {columns} columns."
    )
    .map_err(io)
}

/// Where a schema came from, for `\d`.
fn provenance(history: &SchemaHistory) -> Vec<String> {
    let mut lines = vec![match &history.origin {
        SchemaOrigin::Given => "schema: given (a column list)".to_string(),
        SchemaOrigin::Sampled { items, at } => format!(
            "schema: sampled {items} items at {}{}",
            utc(*at),
            history
                .cached
                .map(|saved| format!(" (read from the schema cache, saved at {})", utc(saved)))
                .unwrap_or_default()
        ),
    }];
    for (at, w) in &history.widened {
        lines.push(format!("widened at {}: {w}", utc(*at)));
    }
    lines
}

fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    timestamp_s_to_datetime(secs as i64)
        .map(|d| format!("{d} UTC"))
        .unwrap_or_else(|| format!("{secs} s after the epoch"))
}

fn key_role(meta: &TableMeta, column: &str) -> String {
    let mut roles = Vec::new();
    if meta.keys.partition_key.name == column {
        roles.push(format!(
            "partition key ({})",
            meta.keys.partition_key.key_type
        ));
    }
    if let Some(sk) = meta.keys.sort_key.as_ref().filter(|k| k.name == column) {
        roles.push(format!("sort key ({})", sk.key_type));
    }
    for ix in &meta.indexes {
        if ix.keys.partition_key.name == column {
            roles.push(format!("{} partition key", ix.name));
        }
        if ix.keys.sort_key.as_ref().is_some_and(|k| k.name == column) {
            roles.push(format!("{} sort key", ix.name));
        }
    }
    if meta.ttl_attribute.as_deref() == Some(column) {
        roles.push("time to live".to_string());
    }
    roles.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_summaries_are_one_sentence_cut_to_the_width() {
        let long = "Returns the first non-null value of its arguments, which is a very long \
                    description of a function. Second sentence.";
        let short = summary(long, Some(SUMMARY_WIDTH));
        assert_eq!(short.chars().count(), SUMMARY_WIDTH);
        assert!(short.ends_with('…') && short.starts_with("Returns the first"));
        assert_eq!(
            summary("Absolute value.\nOf a number. More", None),
            "Absolute value."
        );
        assert_eq!(summary("", Some(10)), "");
    }

    #[test]
    fn help_starts_with_its_first_line_and_lists_every_command() {
        let help = help();
        assert!(help.starts_with("Commands:\n"), "{help}");
        for command in Command::ALL {
            let line = format!("  {}{}", command.name(), command.usage());
            assert!(help.contains(&line), "{line} in {help}");
            assert_eq!(Command::named(command.name()), Some(command));
        }
        assert_eq!(Command::named("\\quit"), Some(Command::Quit));
        assert_eq!(Command::named("\\zz"), None);
        // Continued lines line up under the first.
        assert!(
            help.contains("\n                      and where its schema came from\n"),
            "{help}"
        );
    }
}
