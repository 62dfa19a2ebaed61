//! The REPL's line editing: Tab completion of SQL keywords, functions,
//! tables, the columns of the tables a statement names, and backslash
//! commands; hints from the history; colour (off without a terminal or
//! with `NO_COLOR`). History search (Ctrl-R) is rustyline's own.
//!
//! Completion reads names already in memory — the table list the catalogue
//! loaded at start, the schemas of tables already described — and never
//! calls DynamoDB: a table not described yet completes by name, its
//! columns once a statement has used it.

use std::borrow::Cow;
use std::collections::BTreeSet;

use datafusion::catalog::TableProvider;
use datafusion::prelude::SessionContext;
use dynamo_datafusion::DynamoSchemaProvider;
use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::Validator;

use crate::command::{Argument, Command};
use crate::session::{CATALOG, SCHEMA};

/// SQL keywords offered by completion (and coloured).
pub const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "LIKE",
    "ILIKE",
    "BETWEEN",
    "GROUP",
    "BY",
    "ORDER",
    "ASC",
    "DESC",
    "LIMIT",
    "OFFSET",
    "HAVING",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "AS",
    "DISTINCT",
    "UNION",
    "ALL",
    "INTERSECT",
    "EXCEPT",
    "WITH",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "CAST",
    "TRUE",
    "FALSE",
    "EXISTS",
    "EXPLAIN",
    "ANALYZE",
    "VERBOSE",
    "FORMAT",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "SET",
    "COPY",
    "TO",
    "OPTIONS",
    "CREATE",
    "EXTERNAL",
    "TABLE",
    "STORED",
    "LOCATION",
    "DYNAMODB",
    "PARQUET",
    "CSV",
    "JSON",
    "VALUES",
    "OVER",
    "PARTITION",
    "ROWS",
    "RANGE",
    "UNNEST",
    "INTERVAL",
];

/// Keywords after which a table name comes.
const BEFORE_TABLE: &[&str] = &["FROM", "JOIN", "TABLE", "INTO", "DESCRIBE"];

/// The names completion offers, as they are now.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Names {
    /// Table names, exact case.
    pub tables: Vec<String>,
    /// Each described table's columns.
    pub columns: Vec<(String, Vec<String>)>,
    /// Function names.
    pub functions: Vec<String>,
}

impl Names {
    /// What `ctx` holds in memory: no DynamoDB call.
    pub fn of(ctx: &SessionContext) -> Self {
        let mut names = Names::default();
        if let Some(schema) = ctx.catalog(CATALOG).and_then(|c| c.schema(SCHEMA)) {
            names.tables = schema.table_names();
            if let Some(dynamo) = schema.downcast_ref::<DynamoSchemaProvider>() {
                for table in &names.tables {
                    if let Some(provider) = dynamo.loaded(table) {
                        names
                            .columns
                            .push((table.clone(), columns_of(provider.as_ref())));
                    }
                }
            }
        }
        let state = ctx.state();
        let functions: BTreeSet<String> = state
            .scalar_functions()
            .keys()
            .chain(state.aggregate_functions().keys())
            .chain(state.window_functions().keys())
            .cloned()
            .collect();
        names.functions = functions.into_iter().collect();
        names
    }
}

fn columns_of(provider: &dyn TableProvider) -> Vec<String> {
    provider
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect()
}

/// `name` as SQL must spell it: quoted unless it is a plain identifier
/// that is no keyword (names are case-sensitive and not normalised here).
pub fn sql_name(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(name));
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The completions of the word before `pos` in `line`: where it starts,
/// and the candidates (what replaces it).
pub fn complete(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let before = &line[..pos.min(line.len())];
    let start = word_start(before);
    let word = &before[start..];
    let head = before[..start].trim_end();
    // A backslash command, or its argument.
    if before.trim_start().starts_with('\\') {
        if head.is_empty() {
            let commands = Command::ALL.iter().map(|c| c.name().to_string());
            return (start, prefixed(commands, word, true));
        }
        let command = before.split_whitespace().next().unwrap_or("");
        let args: Vec<String> = match Command::named(command).map(Command::argument) {
            Some(Argument::Table) => names.tables.iter().map(|t| sql_name(t)).collect(),
            Some(Argument::Function) => names.functions.clone(),
            Some(Argument::Words(words)) => words.iter().map(|w| w.to_string()).collect(),
            Some(Argument::None) | None => Vec::new(),
        };
        return (start, prefixed(args.into_iter(), word, false));
    }
    let previous = head
        .rsplit(|c: char| c.is_whitespace() || c == ',' || c == '(')
        .next()
        .unwrap_or("");
    let tables = names.tables.iter().map(|t| sql_name(t));
    if BEFORE_TABLE
        .iter()
        .any(|k| k.eq_ignore_ascii_case(previous))
    {
        return (start, prefixed(tables, word, false));
    }
    // Columns of the tables this statement names.
    let named: Vec<&(String, Vec<String>)> = names
        .columns
        .iter()
        .filter(|(table, _)| mentions(line, table))
        .collect();
    let mut candidates: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for (_, columns) in named {
        for c in columns {
            if seen.insert(c.clone()) {
                candidates.push(sql_name(c));
            }
        }
    }
    let lower = word.chars().all(|c| !c.is_ascii_uppercase());
    let keywords = KEYWORDS.iter().map(|k| {
        if lower && !word.is_empty() {
            k.to_ascii_lowercase()
        } else {
            k.to_string()
        }
    });
    candidates.extend(keywords);
    candidates.extend(names.functions.iter().cloned());
    candidates.extend(tables);
    (start, prefixed(candidates.into_iter(), word, false))
}

/// Where the word ending at the end of `before` starts: identifier
/// characters, with a leading `\\`; inside an open double quote, at
/// the quote.
fn word_start(before: &str) -> usize {
    if before.matches('"').count() % 2 == 1 {
        return before.rfind('"').unwrap_or(0);
    }
    let mut start = before.len();
    for (i, c) in before.char_indices().rev() {
        if c.is_alphanumeric() || c == '_' {
            start = i;
        } else {
            if c == '\\' {
                start = i;
            }
            break;
        }
    }
    start
}

/// The candidates starting with `word` (case-insensitively and ignoring
/// a leading quote, unless `exact`), each once, in order; quoted when the
/// word is.
fn prefixed(candidates: impl Iterator<Item = String>, word: &str, exact: bool) -> Vec<String> {
    let bare = word.trim_start_matches('"').to_ascii_lowercase();
    let mut seen = BTreeSet::new();
    candidates
        .filter(|c| {
            if exact {
                c.starts_with(word)
            } else {
                c.trim_start_matches('"')
                    .to_ascii_lowercase()
                    .starts_with(&bare)
            }
        })
        .map(|c| {
            if word.starts_with('"') && !c.starts_with('"') {
                format!("\"{c}\"")
            } else {
                c
            }
        })
        .filter(|c| seen.insert(c.clone()))
        .collect()
}

/// True when `line` names `table` (as a word, plain or quoted).
fn mentions(line: &str, table: &str) -> bool {
    line.match_indices(table).any(|(i, _)| {
        let before = line[..i].chars().next_back();
        let after = line[i + table.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        boundary(before) && boundary(after)
    })
}

/// rustyline's helper: completion, history hints, colour.
pub struct SqlHelper {
    ctx: SessionContext,
    hinter: HistoryHinter,
    colour: bool,
}

impl SqlHelper {
    /// A helper completing from `ctx`; colours when `colour`.
    pub fn new(ctx: SessionContext, colour: bool) -> Self {
        Self {
            ctx,
            hinter: HistoryHinter::new(),
            colour,
        }
    }
}

impl Completer for SqlHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, candidates) = complete(line, pos, &Names::of(&self.ctx));
        Ok((
            start,
            candidates
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for SqlHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

impl Highlighter for SqlHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.colour {
            return Cow::Borrowed(line);
        }
        Cow::Owned(colour_keywords(line))
    }

    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        if self.colour {
            Cow::Owned(format!("\x1b[1;32m{prompt}\x1b[0m"))
        } else {
            Cow::Borrowed(prompt)
        }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.colour {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        self.colour
    }
}

impl Validator for SqlHelper {}

impl rustyline::Helper for SqlHelper {}

/// `line` with SQL keywords in bold blue, outside quotes.
pub fn colour_keywords(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 16);
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let flush = |word: &mut String, out: &mut String| {
        if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word)) {
            out.push_str(&format!("\x1b[1;34m{word}\x1b[0m"));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in line.chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_alphanumeric() || c == '_' => word.push(c),
            None => {
                flush(&mut word, &mut out);
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

/// True when colour may be used: a terminal, and no `NO_COLOR`.
pub fn colour_enabled() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
        && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            tables: vec![
                "UserEngagement".into(),
                "Inventory".into(),
                "my-table".into(),
            ],
            columns: vec![
                (
                    "UserEngagement".into(),
                    vec![
                        "userId".into(),
                        "eventTime".into(),
                        "engagementScore".into(),
                        "user name".into(),
                    ],
                ),
                ("Inventory".into(), vec!["sku".into(), "price".into()]),
            ],
            functions: vec!["abs".into(), "avg".into(), "count".into(), "upper".into()],
        }
    }

    fn at_end(line: &str) -> (usize, Vec<String>) {
        complete(line, line.len(), &names())
    }

    #[test]
    fn tables_after_from_and_join_exact_case_and_quoted_when_needed() {
        assert_eq!(
            at_end("SELECT * FROM Us"),
            (14, vec!["UserEngagement".to_string()])
        );
        assert_eq!(
            at_end("select * from i"),
            (14, vec!["Inventory".to_string()])
        );
        assert_eq!(
            at_end("SELECT * FROM a JOIN my"),
            (21, vec!["\"my-table\"".to_string()])
        );
        assert_eq!(
            at_end("SELECT * FROM \"my"),
            (14, vec!["\"my-table\"".to_string()])
        );
    }

    #[test]
    fn columns_of_the_tables_the_statement_names_then_keywords_and_functions() {
        let (start, got) = complete("SELECT u FROM UserEngagement", 8, &names());
        assert_eq!(start, 7);
        assert_eq!(
            got,
            vec![
                "userId",
                "\"user name\"",
                "using",
                "union",
                "unnest",
                "upper",
                "UserEngagement"
            ]
        );
        // A column of a table the statement does not name is not offered.
        let (_, got) = complete("SELECT pr FROM UserEngagement", 9, &names());
        assert!(got.is_empty(), "{got:?}");
        let (_, got) = complete("SELECT pr FROM Inventory", 9, &names());
        assert_eq!(got, vec!["price"]);
        // Keywords keep the case typed.
        let (_, got) = at_end("SELECT count(*) FROM Inventory GRO");
        assert_eq!(got, vec!["GROUP"]);
        let (_, got) = at_end("select count(*) from Inventory whe");
        assert_eq!(got, vec!["where", "when"]);
        let (_, got) = at_end("SELECT av");
        assert_eq!(got, vec!["avg"]);
    }

    #[test]
    fn backslash_commands_and_their_arguments() {
        assert_eq!(at_end("\\ti"), (0, vec!["\\timing".to_string()]));
        assert_eq!(
            at_end("\\d"),
            (0, vec!["\\dt".to_string(), "\\d".to_string()])
        );
        assert_eq!(at_end("\\d Inv"), (3, vec!["Inventory".to_string()]));
        assert_eq!(at_end("\\format n"), (8, vec!["ndjson".to_string()]));
        assert_eq!(at_end("\\h up"), (3, vec!["upper".to_string()]));
    }

    #[test]
    fn keywords_are_coloured_outside_quotes_only() {
        assert_eq!(
            colour_keywords("select 'from' FROM t"),
            "\x1b[1;34mselect\x1b[0m 'from' \x1b[1;34mFROM\x1b[0m t"
        );
    }
}
