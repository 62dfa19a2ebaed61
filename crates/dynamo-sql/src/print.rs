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
}

impl Printer {
    /// A printer for results of `schema`.
    pub fn new(format: Format, schema: SchemaRef) -> Self {
        Self {
            format,
            schema,
            buffered: Vec::new(),
            wrote_any: false,
        }
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
                let batches = if self.buffered.is_empty() {
                    vec![empty()?]
                } else {
                    self.buffered
                };
                writeln!(out, "{}", pretty_format_batches(&batches)?).map_err(io_err)?;
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
