//! Backslash commands: `\dt`, `\d TABLE`, `\refresh TABLE`, `\?`, `\q`.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::temporal_conversions::timestamp_s_to_datetime;
use dynamo_datafusion::{
    DynamoSchemaProvider, DynamoTableProvider, IndexKind, IndexProjection, SchemaHistory,
    SchemaOrigin, TableMeta, is_json_field,
};

use crate::error::CliError;
use crate::print::{Format, Printer};
use crate::session::{CATALOG, SCHEMA};

/// Help text of `\?`.
pub const HELP: &str = "\
Commands:
  \\dt            list tables
  \\d TABLE       columns and types of TABLE, with its DynamoDB keys and indexes,
                 and where its schema came from
  \\refresh TABLE sample TABLE again for its schema (as ANALYZE TABLE TABLE;)
  \\?             this help
  \\q             quit
SQL statements end with ';' and may span lines. Names are case-sensitive:
SELECT userId FROM UserEngagement; quoted names (\"my-table\") work as usual.
CREATE EXTERNAL TABLE t STORED AS DYNAMODB LOCATION 'TableName' [OPTIONS (...)]
registers a table under another name or with options.
SET dynamodb.pushdown = false turns pushdown off (to compare);
SET dynamodb.scan_guard = 'error' refuses full scans of tables above
dynamodb.scan_guard_bytes. EXPLAIN shows the DynamoDB request; EXPLAIN ANALYZE
and --stats show requests, items scanned and returned, and read capacity.
Schemas are sampled once and cached (--schema-cache, --schema-ttl);
ANALYZE TABLE t; samples t again. A value the sample never saw widens its
column and the statement runs again (a Notice says so). Option
'extra_attributes' 'true' (or --extra-attributes) adds a column _extra with
every attribute that has no column of its own.";

/// Runs one backslash command.
pub async fn run(
    ctx: &SessionContext,
    line: &str,
    format: Format,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let line = line.trim().trim_end_matches(';').trim();
    let (cmd, arg) = match line.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (line, ""),
    };
    match cmd {
        "\\?" | "\\h" | "\\help" => {
            writeln!(out, "{HELP}").map_err(io)?;
            Ok(())
        }
        "\\q" | "\\quit" => Ok(()),
        "\\dt" => list_tables(ctx, format, out),
        "\\d" if arg.is_empty() => list_tables(ctx, format, out),
        "\\d" => describe(ctx, unquote(arg), format, out).await,
        "\\refresh" if arg.is_empty() => Err(CliError::Command(
            "\\refresh needs a table name: \\refresh TABLE".to_string(),
        )),
        "\\refresh" => refresh(ctx, unquote(arg), out).await,
        other => Err(CliError::Command(format!(
            "unknown command '{other}'; \\? lists the commands"
        ))),
    }
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
    roles.join(", ")
}
