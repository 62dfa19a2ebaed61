//! Output formats: an aligned table, CSV with a header, a JSON array, or NDJSON.
//!
//! Numbers print their exact value (decimals are never rounded through floats),
//! booleans print `true`/`false`, NULL is an empty CSV field and `null` in JSON.
//! Binary values print as base64, as the AWS CLI shows DynamoDB `B` values.

use std::io::Write;
use std::sync::Arc;

use base64::Engine as _;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{
    JsonArray, LineDelimited, WriterBuilder as JsonWriterBuilder,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::CliError;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned table (the default).
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// Prints the batches of one statement.
pub struct Printer {
    format: Format,
    schema: SchemaRef,
    buffered: Vec<RecordBatch>,
    wrote_any: bool,
    /// Rows a table shows at most.
    maxrows: Option<usize>,
    /// Tables one line per column.
    expanded: bool,
}

impl Printer {
    /// A printer for results of `schema`.
    pub fn new(format: Format, schema: SchemaRef) -> Self {
        Self {
            format,
            schema,
            buffered: Vec::new(),
            wrote_any: false,
            maxrows: None,
            expanded: false,
        }
    }

    /// This printer, its tables showing at most `maxrows` rows (a note
    /// says how many there were) and, when `expanded`, one line per column.
    pub fn with_view(mut self, maxrows: Option<usize>, expanded: bool) -> Self {
        self.maxrows = maxrows;
        self.expanded = expanded;
        self
    }

    /// Prints (or buffers, for formats that need every row) one batch.
    pub fn push(&mut self, batch: RecordBatch, out: &mut impl Write) -> Result<(), CliError> {
        let batch = printable(&batch, self.format)?;
        match self.format {
            Format::Table | Format::Json => self.buffered.push(batch),
            Format::Csv => {
                let mut w = CsvWriterBuilder::new()
                    .with_header(!self.wrote_any)
                    .build(&mut *out);
                w.write(&batch)?;
            }
            Format::Ndjson => {
                let mut w = JsonWriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, LineDelimited>(&mut *out);
                w.write(&batch)?;
                w.finish()?;
            }
        }
        self.wrote_any = true;
        Ok(())
    }

    /// Prints what was buffered, or the header of an empty result.
    pub fn finish(self, out: &mut impl Write) -> Result<(), CliError> {
        if self.schema.fields().is_empty() {
            // DDL and other statements without columns print nothing.
            return Ok(());
        }
        let empty = || -> Result<RecordBatch, CliError> {
            printable(
                &RecordBatch::new_empty(Arc::clone(&self.schema)),
                self.format,
            )
        };
        match self.format {
            Format::Table => {
                let total: usize = self.buffered.iter().map(RecordBatch::num_rows).sum();
                let shown = self.maxrows.map_or(total, |m| m.min(total));
                let batches = if self.buffered.is_empty() {
                    vec![empty()?]
                } else {
                    first_rows(&self.buffered, shown)
                };
                if self.expanded {
                    write!(out, "{}", expanded(&batches)?).map_err(io_err)?;
                } else {
                    writeln!(out, "{}", pretty_format_batches(&batches)?).map_err(io_err)?;
                }
                if shown < total {
                    writeln!(
                        out,
                        "({total} rows, showing {shown}: --maxrows or \\set maxrows N shows more)"
                    )
                    .map_err(io_err)?;
                }
            }
            Format::Json => {
                let mut w = JsonWriterBuilder::new()
                    .with_explicit_nulls(true)
                    .build::<_, JsonArray>(&mut *out);
                for b in &self.buffered {
                    w.write(b)?;
                }
                // Prints `[]` when there were no rows.
                w.finish()?;
                writeln!(out).map_err(io_err)?;
            }
            Format::Csv if !self.wrote_any => {
                let mut w = CsvWriterBuilder::new().with_header(true).build(&mut *out);
                w.write(&empty()?)?;
            }
            Format::Csv | Format::Ndjson => {}
        }
        out.flush().map_err(io_err)
    }
}

/// The first `n` rows of `batches` (at least one batch, maybe empty).
fn first_rows(batches: &[RecordBatch], n: usize) -> Vec<RecordBatch> {
    let mut left = n;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    if out.is_empty()
        && let Some(b) = batches.first()
    {
        out.push(b.slice(0, 0));
    }
    out
}

/// Rows one column per line, as psql's `\x` shows them:
///
/// ```text
/// -[ RECORD 1 ]-----------
/// userId    | 123015
/// eventTime | 1762013385
/// ```
pub fn expanded(batches: &[RecordBatch]) -> Result<String, CliError> {
    let Some(schema) = batches.first().map(RecordBatch::schema) else {
        return Ok(String::new());
    };
    let width = schema
        .fields()
        .iter()
        .map(|f| f.name().chars().count())
        .max()
        .unwrap_or(0);
    let options = FormatOptions::default();
    let mut text = String::new();
    let mut record = 0;
    for b in batches {
        let formatters: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<_, _>>()?;
        for row in 0..b.num_rows() {
            record += 1;
            let head = format!("-[ RECORD {record} ]");
            text.push_str(&format!("{head:-<w$}\n", w = width + 3 + 10));
            for (field, f) in schema.fields().iter().zip(&formatters) {
                let value = f.value(row).try_to_string()?;
                text.push_str(&format!("{:<width$} | {value}\n", field.name()));
            }
        }
    }
    if record == 0 {
        text.push_str("(0 rows)\n");
    }
    Ok(text)
}

fn io_err(e: std::io::Error) -> CliError {
    CliError::Io {
        what: "writing output".to_string(),
        source: e,
    }
}

/// Rewrites the columns a format cannot print natively: binary becomes base64
/// text everywhere, and lists and structs become text in CSV.
fn printable(batch: &RecordBatch, format: Format) -> Result<RecordBatch, CliError> {
    let needs = |dt: &DataType| {
        matches!(
            dt,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        ) || (format == Format::Csv && dt.is_nested())
    };
    if !batch.schema().fields().iter().any(|f| needs(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !needs(field.data_type()) {
            fields.push(field.as_ref().clone());
            columns.push(Arc::clone(column));
            continue;
        }
        let text: StringArray = match field.data_type() {
            DataType::Binary => column
                .as_binary::<i32>()
                .iter()
                .map(|v| v.map(|b| base64::engine::general_purpose::STANDARD.encode(b)))
                .collect(),
            _ => {
                let fmt = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
                (0..column.len())
                    .map(|i| {
                        if column.is_null(i) {
                            Ok(None)
                        } else {
                            Ok(Some(fmt.value(i).try_to_string()?))
                        }
                    })
                    .collect::<Result<_, ArrowError>>()?
            }
        };
        fields.push(Field::new(
            field.name(),
            DataType::Utf8,
            field.is_nullable(),
        ));
        columns.push(Arc::new(text));
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;

    fn batch(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(values.to_vec())),
                Arc::new(StringArray::from_iter(
                    values.iter().map(|v| (v % 2 == 0).then(|| format!("n{v}"))),
                )),
            ],
        )
        .expect("batch")
    }

    fn print(p: Printer, batches: Vec<RecordBatch>) -> String {
        let mut p = p;
        let mut out = Vec::new();
        for b in batches {
            p.push(b, &mut out).expect("push");
        }
        p.finish(&mut out).expect("finish");
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn maxrows_shows_the_first_rows_and_says_how_many_there_were() {
        let b = batch(&[1, 2, 3]);
        let p = Printer::new(Format::Table, b.schema()).with_view(Some(2), false);
        let text = print(p, vec![b.clone(), batch(&[4, 5])]);
        assert!(
            text.contains("| 2  |") && !text.contains("| 3  |"),
            "{text}"
        );
        assert!(
            text.ends_with("(5 rows, showing 2: --maxrows or \\set maxrows N shows more)\n"),
            "{text}"
        );
        // Other formats print every row.
        let p = Printer::new(Format::Csv, b.schema()).with_view(Some(1), false);
        assert_eq!(print(p, vec![b]).lines().count(), 4);
    }

    #[test]
    fn expanded_rows_are_one_column_per_line() {
        let b = batch(&[1, 2]);
        let text = expanded(&[b]).expect("expanded");
        assert_eq!(
            text,
            "-[ RECORD 1 ]----\nid   | 1\nname | \n-[ RECORD 2 ]----\nid   | 2\nname | n2\n"
        );
    }
}
