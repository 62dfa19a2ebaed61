//! The documented normalisation both answers pass through before they are
//! compared (docs/testing.md, "Differential fuzzing"):
//!
//! - every number is its exact decimal value (`Int64` 5, `Decimal128(38, 4)`
//!   5.0000 and DuckDB's `HUGEINT` 5 are one value), floats compare within
//!   10^-9 relative (or 10^-6 absolute: a decimal average is rounded to its scale);
//! - a missing attribute and `NULL` are one NULL (both engines see NULL);
//! - sets (`SS`, `NS`) compare without regard to order, lists in order;
//! - a struct is its fields by name;
//! - rows compare as a multiset unless the statement orders them by a unique key.

use std::collections::BTreeMap;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::Value as J;

/// A value as compared.
#[derive(Debug, Clone)]
pub enum Canon {
    Null,
    Bool(bool),
    /// Exact decimal text, normalised (no exponent, no trailing zeros, no "-0").
    Num(String),
    Float(f64),
    Str(String),
    Bin(String),
    List(Vec<Canon>),
    Struct(BTreeMap<String, Canon>),
}

/// `12.5000` → `12.5`, `-0.0` → `0`, `007` → `7`.
pub fn normalise_number(text: &str) -> String {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let out = if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    };
    if neg && out != "0" {
        format!("-{out}")
    } else {
        out
    }
}

impl Canon {
    /// Rows sort by this text (floats rounded, sets sorted) for multiset
    /// comparison.
    fn key(&self) -> String {
        match self {
            Canon::Null => "∅".into(),
            Canon::Bool(b) => format!("b{b}"),
            Canon::Num(n) => format!(
                "n{}",
                n.parse::<f64>().map_or(n.clone(), |f| format!("{f:.6e}"))
            ),
            Canon::Float(f) => format!("n{f:.6e}"),
            Canon::Str(s) => format!("s{s}"),
            Canon::Bin(b) => format!("x{b}"),
            Canon::List(v) => format!(
                "[{}]",
                v.iter().map(Canon::key).collect::<Vec<_>>().join(",")
            ),
            Canon::Struct(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", v.key()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Canon::Num(n) => n.parse().ok(),
            Canon::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Equal under the normalisation.
    pub fn same(&self, other: &Canon) -> bool {
        match (self, other) {
            (Canon::Null, Canon::Null) => true,
            (Canon::Bool(a), Canon::Bool(b)) => a == b,
            (Canon::Num(a), Canon::Num(b)) => a == b,
            (Canon::Float(_), Canon::Num(_) | Canon::Float(_))
            | (Canon::Num(_), Canon::Float(_)) => {
                let (a, b) = (
                    self.as_f64().unwrap_or(f64::NAN),
                    other.as_f64().unwrap_or(f64::NAN),
                );
                (a.is_nan() && b.is_nan())
                    || a == b
                    || (a - b).abs() <= 1e-6
                    || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
            }
            (Canon::Str(a), Canon::Str(b)) | (Canon::Bin(a), Canon::Bin(b)) => a == b,
            (Canon::List(a), Canon::List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
            }
            (Canon::Struct(a), Canon::Struct(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka == kb && va.same(vb))
            }
            _ => false,
        }
    }

    /// A set's elements in a fixed order.
    fn sorted(self) -> Canon {
        match self {
            Canon::List(mut v) => {
                v.sort_by_key(Canon::key);
                Canon::List(v)
            }
            other => other,
        }
    }

    /// Short text for reports.
    pub fn show(&self) -> String {
        match self {
            Canon::Null => "NULL".into(),
            Canon::Bool(b) => b.to_string(),
            Canon::Num(n) => n.clone(),
            Canon::Float(f) => format!("{f}"),
            Canon::Str(s) => format!("{s:?}"),
            Canon::Bin(b) => format!("x'{b}'"),
            Canon::List(v) => format!(
                "[{}]",
                v.iter().map(Canon::show).collect::<Vec<_>>().join(", ")
            ),
            Canon::Struct(m) => format!(
                "{{{}}}",
                m.iter()
                    .map(|(k, v)| format!("{k}: {}", v.show()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// One value of the oracle's answer (`tests/oracle/duckdb_oracle.py`'s CANON).
pub fn from_json(v: &J) -> Result<Canon, String> {
    let J::Object(m) = v else {
        return if v.is_null() {
            Ok(Canon::Null)
        } else {
            Err(format!("unexpected oracle value {v}"))
        };
    };
    let (tag, inner) = m.iter().next().ok_or("empty oracle value")?;
    Ok(match (tag.as_str(), inner) {
        ("bool", J::Bool(b)) => Canon::Bool(*b),
        ("n", J::String(n)) => Canon::Num(normalise_number(n)),
        ("f", J::Number(f)) => Canon::Float(f.as_f64().ok_or("float")?),
        ("f", J::String(f)) => Canon::Float(f.parse().map_err(|_| format!("float {f}"))?),
        ("s", J::String(s)) => Canon::Str(s.clone()),
        ("b", J::String(b)) => Canon::Bin(b.clone()),
        ("l", J::Array(v)) => Canon::List(v.iter().map(from_json).collect::<Result<_, _>>()?),
        ("m", J::Object(o)) => Canon::Struct(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), from_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        _ => return Err(format!("unexpected oracle value {v}")),
    })
}

/// One value of an Arrow array.
fn from_arrow(a: &ArrayRef, row: usize) -> Result<Canon, String> {
    if a.is_null(row) {
        return Ok(Canon::Null);
    }
    let one = a.slice(row, 1);
    Ok(match a.data_type() {
        DataType::Null => Canon::Null,
        DataType::Boolean => Canon::Bool(
            one.as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or("bool")?
                .value(0),
        ),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let options = FormatOptions::default();
            let f = ArrayFormatter::try_new(one.as_ref(), &options).map_err(|e| e.to_string())?;
            Canon::Num(normalise_number(&f.value(0).to_string()))
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            let f = cast(&one, &DataType::Float64).map_err(|e| e.to_string())?;
            Canon::Float(f.as_primitive::<Float64Type>().value(0))
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let s = cast(&one, &DataType::Utf8).map_err(|e| e.to_string())?;
            Canon::Str(
                s.as_any()
                    .downcast_ref::<StringArray>()
                    .ok_or("utf8")?
                    .value(0)
                    .to_string(),
            )
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => {
            let b = cast(&one, &DataType::Binary).map_err(|e| e.to_string())?;
            let b = b.as_any().downcast_ref::<BinaryArray>().ok_or("binary")?;
            Canon::Bin(super::model::hex(b.value(0)))
        }
        DataType::List(_) | DataType::LargeList(_) => {
            let values = match one.data_type() {
                DataType::List(_) => one.as_list::<i32>().value(0),
                _ => one.as_list::<i64>().value(0),
            };
            Canon::List(
                (0..values.len())
                    .map(|i| from_arrow(&values, i))
                    .collect::<Result<_, _>>()?,
            )
        }
        DataType::Struct(fields) => {
            let s = one.as_struct();
            Canon::Struct(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| Ok((f.name().clone(), from_arrow(c, 0)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        other => return Err(format!("no normalisation for {other}")),
    })
}

/// The project's answer, normalised.
pub fn rows_of_batches(batches: &[RecordBatch]) -> Result<Vec<Vec<Canon>>, String> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(
                b.columns()
                    .iter()
                    .map(|c| from_arrow(c, r))
                    .collect::<Result<Vec<_>, _>>()?,
            );
        }
    }
    Ok(out)
}

/// Compares two answers; `Err` describes the first difference.
pub fn compare(
    mut ours: Vec<Vec<Canon>>,
    mut theirs: Vec<Vec<Canon>>,
    ordered: bool,
    sets: &[bool],
) -> Result<(), String> {
    for rows in [&mut ours, &mut theirs] {
        for row in rows.iter_mut() {
            for (i, v) in row.iter_mut().enumerate() {
                if sets.get(i).copied().unwrap_or(false) {
                    *v = std::mem::replace(v, Canon::Null).sorted();
                }
            }
        }
        if !ordered {
            rows.sort_by(|a, b| {
                let ka: Vec<String> = a.iter().map(Canon::key).collect();
                let kb: Vec<String> = b.iter().map(Canon::key).collect();
                ka.cmp(&kb)
            });
        }
    }
    if ours.len() != theirs.len() {
        return Err(format!(
            "{} rows from the project, {} from DuckDB{}",
            ours.len(),
            theirs.len(),
            first_difference(&ours, &theirs)
        ));
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if a.len() != b.len() || !a.iter().zip(b).all(|(x, y)| x.same(y)) {
            return Err(format!(
                "row {i} differs: project {} / DuckDB {}",
                show_row(a),
                show_row(b)
            ));
        }
    }
    Ok(())
}

fn show_row(r: &[Canon]) -> String {
    format!(
        "({})",
        r.iter().map(Canon::show).collect::<Vec<_>>().join(", ")
    )
}

/// The first rows only one side has (for reports).
fn first_difference(ours: &[Vec<Canon>], theirs: &[Vec<Canon>]) -> String {
    let missing = |a: &[Vec<Canon>], b: &[Vec<Canon>]| {
        a.iter()
            .filter(|r| {
                !b.iter()
                    .any(|s| s.len() == r.len() && s.iter().zip(r.iter()).all(|(x, y)| x.same(y)))
            })
            .take(3)
            .map(|r| show_row(r))
            .collect::<Vec<_>>()
    };
    let (only_ours, only_theirs) = (missing(ours, theirs), missing(theirs, ours));
    format!(
        "; only in the project: {}; only in DuckDB: {}",
        if only_ours.is_empty() {
            "-".into()
        } else {
            only_ours.join(" ")
        },
        if only_theirs.is_empty() {
            "-".into()
        } else {
            only_theirs.join(" ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_normalise_to_one_text() {
        assert_eq!(normalise_number("12.5000"), "12.5");
        assert_eq!(normalise_number("-0.000"), "0");
        assert_eq!(normalise_number("007"), "7");
        assert_eq!(normalise_number("-0.0100"), "-0.01");
        assert_eq!(normalise_number("100"), "100");
    }

    #[test]
    fn sets_compare_without_order_and_lists_with_it() {
        let l = |v: &[i64]| Canon::List(v.iter().map(|i| Canon::Num(i.to_string())).collect());
        assert!(
            compare(
                vec![vec![l(&[1, 2])]],
                vec![vec![l(&[2, 1])]],
                false,
                &[true]
            )
            .is_ok()
        );
        assert!(
            compare(
                vec![vec![l(&[1, 2])]],
                vec![vec![l(&[2, 1])]],
                false,
                &[false]
            )
            .is_err()
        );
        assert!(compare(vec![vec![l(&[1])]], vec![], false, &[false]).is_err());
    }
}
