//! SQL predicates → a small tree of DynamoDB-expressible conditions.
//!
//! A condition is only produced when DynamoDB evaluates it exactly as SQL does
//! on every item where SQL's answer is not NULL: the column must hold exactly
//! one DynamoDB type (strictly decoded), the literal must become a value of that
//! type without loss, and any cast on the column must be lossless and
//! order-preserving. Everything else stays with DataFusion.

use std::cmp::Ordering;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Like, Operator};
use serde::{Deserialize, Serialize};

use crate::schema::infer::ENCODING_METADATA_KEY;
use crate::schema::time::{bad_time_is_null, time_format_of};
pub(crate) use crate::value::compare_values;
use crate::value::number::ExactNumber;
use crate::value::time::TimeFormat;

/// The one DynamoDB scalar type a column's values have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScalarKind {
    S,
    N,
    B,
    Bool,
}

/// An attribute, top-level or nested in maps: `info.address.city`.
pub(crate) type Path = Vec<String>;

/// Comparison operators DynamoDB shares with SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// The operator with its operands swapped (`5 < a` is `a > 5`).
    fn flipped(self) -> Self {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// One condition DynamoDB evaluates exactly like SQL on non-NULL answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Atom {
    Cmp {
        path: Path,
        op: CmpOp,
        #[serde(with = "crate::value::wire::one")]
        value: AttributeValue,
    },
    /// `low <= a <= high`; only built when `low <= high`.
    Between {
        path: Path,
        #[serde(with = "crate::value::wire::one")]
        low: AttributeValue,
        #[serde(with = "crate::value::wire::one")]
        high: AttributeValue,
    },
    /// At most [`super::MAX_BATCH_KEYS`] distinct values; only lists of at most
    /// [`MAX_IN_VALUES`] go to a FilterExpression (longer ones serve keys).
    In {
        path: Path,
        #[serde(with = "crate::value::wire::many")]
        values: Vec<AttributeValue>,
    },
    IsNull {
        path: Path,
    },
    IsNotNull {
        path: Path,
    },
    BeginsWith {
        path: Path,
        #[serde(with = "crate::value::wire::one")]
        prefix: AttributeValue,
    },
    Contains {
        path: Path,
        #[serde(with = "crate::value::wire::one")]
        substring: AttributeValue,
    },
}

impl Atom {
    pub(crate) fn path(&self) -> &Path {
        match self {
            Atom::Cmp { path, .. }
            | Atom::Between { path, .. }
            | Atom::In { path, .. }
            | Atom::IsNull { path }
            | Atom::IsNotNull { path }
            | Atom::BeginsWith { path, .. }
            | Atom::Contains { path, .. } => path,
        }
    }

    /// True when the atom is NULL (so rejects the row) whenever the attribute is missing.
    pub(crate) fn rejects_missing(&self) -> bool {
        !matches!(self, Atom::IsNull { .. })
    }
}

/// A condition tree DynamoDB can evaluate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Cond {
    Atom(Atom),
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
}

impl Cond {
    /// Every attribute path the condition reads.
    pub(crate) fn paths(&self, out: &mut Vec<Path>) {
        match self {
            Cond::Atom(a) => out.push(a.path().clone()),
            Cond::And(v) | Cond::Or(v) => v.iter().for_each(|c| c.paths(out)),
            Cond::Not(c) => c.paths(out),
        }
    }
}

/// A translation of a SQL predicate into a DynamoDB condition.
///
/// Always a *superset*: every item for which SQL says TRUE satisfies `cond`.
/// When `exact`, the two also agree on every item where SQL is not NULL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Translated {
    pub cond: Cond,
    pub exact: bool,
}

impl Translated {
    /// The same translation, only a superset when `relaxed`.
    pub(crate) fn relaxed_if(self, relaxed: bool) -> Self {
        Self {
            exact: self.exact && !relaxed,
            ..self
        }
    }
}

/// DynamoDB's limit on values in one `IN`.
pub(crate) const MAX_IN_VALUES: usize = 100;

/// Translates predicates against one table schema.
pub(crate) struct Translator<'a> {
    pub schema: &'a SchemaRef,
}

impl Translator<'_> {
    /// Translates `expr`, or `None` when no part of it can be sent to DynamoDB.
    pub(crate) fn translate(&self, expr: &Expr) -> Option<Translated> {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                let parts: Vec<Option<Translated>> =
                    vec![self.translate(left), self.translate(right)];
                let exact = parts.iter().all(|p| p.as_ref().is_some_and(|t| t.exact));
                let mut conds: Vec<Cond> = Vec::new();
                for t in parts.into_iter().flatten() {
                    match t.cond {
                        Cond::And(inner) => conds.extend(inner),
                        c => conds.push(c),
                    }
                }
                match conds.len() {
                    0 => None,
                    1 => Some(Translated {
                        cond: conds.remove(0),
                        exact,
                    }),
                    _ => Some(Translated {
                        cond: Cond::And(conds),
                        exact,
                    }),
                }
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => {
                // Both sides are needed: dropping one would lose its rows.
                let (l, r) = (self.translate(left)?, self.translate(right)?);
                let exact = l.exact && r.exact;
                let mut conds = Vec::new();
                for c in [l.cond, r.cond] {
                    match c {
                        Cond::Or(inner) => conds.extend(inner),
                        c => conds.push(c),
                    }
                }
                Some(Translated {
                    cond: Cond::Or(conds),
                    exact,
                })
            }
            // NOT of an approximation would drop rows; only exact parts are negated.
            Expr::Not(inner) => match inner.as_ref() {
                e if self.bool_column(e).is_some() => {
                    let path = self.bool_column(e)?;
                    atom(Atom::Cmp {
                        path,
                        op: CmpOp::Eq,
                        value: AttributeValue::Bool(false),
                    })
                }
                e => {
                    let t = self.translate(e)?;
                    t.exact.then(|| Translated {
                        cond: Cond::Not(Box::new(t.cond)),
                        exact: true,
                    })
                }
            },
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => self.comparison(left, *op, right),
            Expr::Between(b) => {
                if let Some((path, format, relaxed)) = self.time_column(&b.expr) {
                    if b.negated && relaxed {
                        return None;
                    }
                    let low = super::time::literal_instant(&b.low)?;
                    let high = super::time::literal_instant(&b.high)?;
                    return super::time::between_instants(path, &format, low, high, b.negated)
                        .map(|t| t.relaxed_if(relaxed));
                }
                let (path, kind) = self.column(&b.expr)?;
                let low = literal_value(&b.low, kind)?;
                let high = literal_value(&b.high, kind)?;
                if compare_values(&low, &high)? == Ordering::Greater {
                    // DynamoDB rejects such a BETWEEN; SQL's answer is simply empty.
                    return None;
                }
                let between = Cond::Atom(Atom::Between { path, low, high });
                Some(Translated {
                    cond: if b.negated {
                        Cond::Not(Box::new(between))
                    } else {
                        between
                    },
                    exact: true,
                })
            }
            Expr::InList(list) => {
                if let Some((path, format, relaxed)) = self.time_column(&list.expr) {
                    if list.negated && relaxed {
                        return None;
                    }
                    let instants = list
                        .list
                        .iter()
                        .map(super::time::literal_instant)
                        .collect::<Option<Vec<i128>>>()?;
                    return super::time::in_instants(path, &format, &instants, list.negated)
                        .map(|t| t.relaxed_if(relaxed));
                }
                let (path, kind) = self.column(&list.expr)?;
                let mut values: Vec<AttributeValue> = Vec::with_capacity(list.list.len());
                for e in &list.list {
                    let v = literal_value(e, kind)?;
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
                if values.is_empty() || values.len() > super::MAX_BATCH_KEYS {
                    return None;
                }
                let cond = Cond::Atom(Atom::In { path, values });
                Some(Translated {
                    cond: if list.negated {
                        Cond::Not(Box::new(cond))
                    } else {
                        cond
                    },
                    exact: true,
                })
            }
            Expr::IsNull(e) => {
                let (path, field) = self.any_column(e)?;
                // A value not in its time format is NULL too, yet present.
                if bad_time_is_null(&field) {
                    return None;
                }
                atom(Atom::IsNull { path })
            }
            Expr::IsNotNull(e) => {
                let (path, field) = self.any_column(e)?;
                atom(Atom::IsNotNull { path }).map(|t| t.relaxed_if(bad_time_is_null(&field)))
            }
            Expr::Like(like) => self.like(like),
            Expr::ScalarFunction(f) if f.name() == "array_has" => self.array_has(f),
            e => {
                let path = self.bool_column(e)?;
                atom(Atom::Cmp {
                    path,
                    op: CmpOp::Eq,
                    value: AttributeValue::Bool(true),
                })
            }
        }
    }

    fn comparison(&self, left: &Expr, op: Operator, right: &Expr) -> Option<Translated> {
        let op = match op {
            Operator::Eq => CmpOp::Eq,
            Operator::NotEq => CmpOp::Ne,
            Operator::Lt => CmpOp::Lt,
            Operator::LtEq => CmpOp::Le,
            Operator::Gt => CmpOp::Gt,
            Operator::GtEq => CmpOp::Ge,
            _ => return None,
        };
        let time = match (self.time_column(left), self.time_column(right)) {
            (Some(c), None) => Some((c, right, op)),
            (None, Some(c)) => Some((c, left, op.flipped())),
            _ => None,
        };
        if let Some(((path, format, relaxed), lit, op)) = time {
            let t = super::time::literal_instant(lit)?;
            return super::time::compare(path, &format, op, t).map(|t| t.relaxed_if(relaxed));
        }
        let (path, kind, lit, op) = match (self.column(left), self.column(right)) {
            (Some((p, k)), None) => (p, k, right, op),
            (None, Some((p, k))) => (p, k, left, op.flipped()),
            _ => return None,
        };
        let value = literal_value(lit, kind)?;
        if kind == ScalarKind::Bool && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return None;
        }
        atom(Atom::Cmp { path, op, value })
    }

    fn like(&self, like: &Like) -> Option<Translated> {
        if like.case_insensitive {
            return None;
        }
        let (path, kind) = self.column(&like.expr)?;
        if kind != ScalarKind::S {
            return None;
        }
        let pattern = match like.pattern.as_ref() {
            Expr::Literal(v, _) => string_literal(v)?,
            _ => return None,
        };
        let cond = if let Some((prefix, rest)) = literal_prefix(&pattern, like.escape_char) {
            // `p%` is exactly `begins_with(p)`; `p_x%` and the like only imply
            // it (a superset, re-checked), which NOT cannot be applied to.
            let exact = rest == "%";
            if like.negated && !exact {
                return None;
            }
            Translated {
                cond: Cond::Atom(Atom::BeginsWith {
                    path,
                    prefix: AttributeValue::S(prefix),
                }),
                exact,
            }
        } else if let Some(inner) = pattern
            .strip_prefix('%')
            .and_then(|p| p.strip_suffix('%'))
            .filter(|p| {
                !p.is_empty()
                    && !p.contains(['%', '_', '\\'])
                    && like.escape_char.is_none_or(|c| !p.contains(c))
            })
        {
            Translated {
                cond: Cond::Atom(Atom::Contains {
                    path,
                    substring: AttributeValue::S(inner.to_string()),
                }),
                exact: true,
            }
        } else {
            return None;
        };
        Some(Translated {
            cond: if like.negated {
                Cond::Not(Box::new(cond.cond))
            } else {
                cond.cond
            },
            exact: cond.exact,
        })
    }

    /// `array_has(list, 'x')` over a list or set of strings: DynamoDB's
    /// `contains(list, :x)` holds for every item where it is true (a superset,
    /// re-checked: never exact).
    fn array_has(&self, f: &ScalarFunction) -> Option<Translated> {
        let [list, element] = f.args.as_slice() else {
            return None;
        };
        let (path, field) = self.field_path(list)?;
        let DataType::List(item) = field.data_type() else {
            return None;
        };
        if !matches!(
            item.data_type(),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        ) || field.metadata().contains_key(ENCODING_METADATA_KEY)
        {
            return None;
        }
        let value = match element {
            Expr::Literal(v, _) => string_literal(v)?,
            _ => return None,
        };
        if value.is_empty() {
            return None;
        }
        Some(Translated {
            cond: Cond::Atom(Atom::Contains {
                path,
                substring: AttributeValue::S(value),
            }),
            exact: false,
        })
    }

    /// A boolean column used as a predicate by itself (`WHERE active`).
    fn bool_column(&self, e: &Expr) -> Option<Path> {
        match self.column(e)? {
            (path, ScalarKind::Bool) => Some(path),
            _ => None,
        }
    }

    /// A column or struct field with one DynamoDB scalar type, possibly under a
    /// lossless cast.
    pub(crate) fn column(&self, e: &Expr) -> Option<(Path, ScalarKind)> {
        let (path, field) = self.field_path(e)?;
        let kind = scalar_kind(&field)?;
        Some((path, kind))
    }

    /// A temporal column, possibly under a lossless cast: its path, its
    /// format, and whether values not in the format read as NULL (then a
    /// condition on the stored attribute is only a superset).
    fn time_column(&self, e: &Expr) -> Option<(Path, TimeFormat, bool)> {
        let (path, field) = self.field_path(e)?;
        let format = time_format_of(&field)?;
        Some((path, format, bad_time_is_null(&field)))
    }

    /// Any column or struct field (for IS [NOT] NULL, which needs no type).
    fn any_column(&self, e: &Expr) -> Option<(Path, Field)> {
        self.field_path(e)
    }

    fn field_path(&self, e: &Expr) -> Option<(Path, Field)> {
        match e {
            Expr::Column(c) => {
                let field = self.schema.field_with_name(&c.name).ok()?.clone();
                // The extra-attributes column is no attribute DynamoDB knows.
                if crate::schema::infer::is_extra_field(&field) {
                    return None;
                }
                Some((vec![c.name.clone()], field))
            }
            Expr::Cast(c) => {
                let (path, field) = self.field_path(&c.expr)?;
                lossless_cast(field.data_type(), c.field.data_type()).then_some((path, field))
            }
            Expr::ScalarFunction(f) if f.name() == "get_field" && f.args.len() == 2 => {
                let (mut path, field) = self.field_path(&f.args[0])?;
                let key = match &f.args[1] {
                    Expr::Literal(v, _) => string_literal(v)?,
                    _ => return None,
                };
                let DataType::Struct(fields) = field.data_type() else {
                    return None;
                };
                let child = fields.iter().find(|f| f.name() == &key)?.as_ref().clone();
                path.push(key);
                Some((path, child))
            }
            _ => None,
        }
    }
}

/// The literal text a `LIKE` pattern starts with, up to its first unescaped
/// wildcard, and the rest of the pattern from that wildcard; `None` when it
/// starts with a wildcard or ends in a lone escape. The escape is the
/// statement's `ESCAPE` character, or backslash.
fn literal_prefix(pattern: &str, escape: Option<char>) -> Option<(String, &str)> {
    let escape = escape.unwrap_or('\\');
    let mut prefix = String::new();
    let mut chars = pattern.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == escape {
            prefix.push(chars.next()?.1);
        } else if c == '%' || c == '_' {
            return (!prefix.is_empty()).then(|| (prefix, &pattern[i..]));
        } else {
            prefix.push(c);
        }
    }
    // No wildcard at all: an equality, which the comparison rules handle.
    None
}

fn atom(a: Atom) -> Option<Translated> {
    Some(Translated {
        cond: Cond::Atom(a),
        exact: true,
    })
}

/// The DynamoDB type every value of `field` has, if exactly one.
pub(crate) fn scalar_kind(field: &Field) -> Option<ScalarKind> {
    if field.metadata().contains_key(ENCODING_METADATA_KEY) {
        // JSON or text renderings mix DynamoDB types.
        return None;
    }
    match field.data_type() {
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => Some(ScalarKind::S),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => Some(ScalarKind::N),
        DataType::Binary | DataType::BinaryView | DataType::LargeBinary => Some(ScalarKind::B),
        DataType::Boolean => Some(ScalarKind::Bool),
        // Floats round; DynamoDB compares exact decimals.
        _ => None,
    }
}

/// True when casting `from` to `to` keeps every value and its order.
fn lossless_cast(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let int_digits = |dt: &DataType| -> Option<i32> {
        Some(match dt {
            Int8 | UInt8 => 3,
            Int16 | UInt16 => 5,
            Int32 | UInt32 => 10,
            Int64 => 19,
            Decimal128(p, s) | Decimal256(p, s) => i32::from(*p) - i32::from(*s),
            _ => return None,
        })
    };
    let scale = |dt: &DataType| match dt {
        Decimal128(_, s) | Decimal256(_, s) => i32::from(*s),
        _ => 0,
    };
    match (from, to) {
        (a, b) if a == b => true,
        (Utf8 | Utf8View | LargeUtf8, Utf8 | Utf8View | LargeUtf8) => true,
        (Binary | BinaryView | LargeBinary, Binary | BinaryView | LargeBinary) => true,
        (Int8 | Int16 | Int32 | Int64, Int16 | Int32 | Int64) => int_digits(from) <= int_digits(to),
        // Instants keep their order in a finer unit or another zone.
        (Timestamp(a, _), Timestamp(b, _)) => unit_rank(*a) <= unit_rank(*b),
        (Date32, Date64 | Timestamp(_, _)) => true,
        (_, Decimal128(_, _) | Decimal256(_, _)) => match (int_digits(from), int_digits(to)) {
            (Some(fi), Some(ti)) => fi <= ti && scale(from) <= scale(to),
            _ => false,
        },
        _ => false,
    }
}

/// Units from coarse to fine.
fn unit_rank(unit: datafusion::arrow::datatypes::TimeUnit) -> u8 {
    use datafusion::arrow::datatypes::TimeUnit::*;
    match unit {
        Second => 0,
        Millisecond => 1,
        Microsecond => 2,
        Nanosecond => 3,
    }
}

fn string_literal(v: &ScalarValue) -> Option<String> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => Some(s.clone()),
        _ => None,
    }
}

/// The DynamoDB value of a literal compared with a column of `kind`, when exact.
pub(crate) fn literal_value(e: &Expr, kind: ScalarKind) -> Option<AttributeValue> {
    let v = match e {
        Expr::Literal(v, _) => v,
        _ => return None,
    };
    match kind {
        ScalarKind::S => string_literal(v).map(AttributeValue::S),
        ScalarKind::Bool => match v {
            ScalarValue::Boolean(Some(b)) => Some(AttributeValue::Bool(*b)),
            _ => None,
        },
        ScalarKind::B => match v {
            ScalarValue::Binary(Some(b))
            | ScalarValue::BinaryView(Some(b))
            | ScalarValue::LargeBinary(Some(b))
            | ScalarValue::FixedSizeBinary(_, Some(b)) => {
                Some(AttributeValue::B(Blob::new(b.clone())))
            }
            _ => None,
        },
        ScalarKind::N => {
            let text = match v {
                ScalarValue::Int8(Some(x)) => x.to_string(),
                ScalarValue::Int16(Some(x)) => x.to_string(),
                ScalarValue::Int32(Some(x)) => x.to_string(),
                ScalarValue::Int64(Some(x)) => x.to_string(),
                ScalarValue::UInt8(Some(x)) => x.to_string(),
                ScalarValue::UInt16(Some(x)) => x.to_string(),
                ScalarValue::UInt32(Some(x)) => x.to_string(),
                ScalarValue::UInt64(Some(x)) => x.to_string(),
                ScalarValue::Decimal128(Some(x), _, s) => decimal_text(&x.to_string(), *s),
                ScalarValue::Decimal256(Some(x), _, s) => decimal_text(&x.to_string(), *s),
                // Float literals are binary fractions, not the decimals typed.
                _ => return None,
            };
            // DynamoDB numbers: 38 significant digits, exponent -130..=125.
            let n = ExactNumber::parse(&text).ok()?;
            n.fits_dynamodb().then(|| AttributeValue::N(n.to_string()))
        }
    }
}

/// `unscaled * 10^-scale` as decimal text.
fn decimal_text(unscaled: &str, scale: i8) -> String {
    format!("{unscaled}E{}", -i32::from(scale))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Fields, Schema};
    use datafusion::logical_expr::{col, lit};
    use datafusion::prelude::get_field;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("n", DataType::Int64, true),
            Field::new("d", DataType::Decimal128(38, 2), true),
            Field::new("f", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("bin", DataType::Binary, true),
            crate::schema::infer::json_field("j", true),
            Field::new(
                "m",
                DataType::Struct(Fields::from(vec![Field::new("city", DataType::Utf8, true)])),
                true,
            ),
        ]))
    }

    fn tr(e: Expr) -> Option<Translated> {
        let s = schema();
        Translator { schema: &s }.translate(&e)
    }

    fn cmp(path: &str, op: CmpOp, value: AttributeValue) -> Cond {
        Cond::Atom(Atom::Cmp {
            path: path.split('.').map(String::from).collect(),
            op,
            value,
        })
    }

    #[test]
    fn comparisons_with_literals_on_either_side() {
        assert_eq!(
            tr(col("n").gt(lit(5i64))).map(|t| t.cond),
            Some(cmp("n", CmpOp::Gt, AttributeValue::N("5".into())))
        );
        assert_eq!(
            tr(lit(5i64).gt(col("n"))).map(|t| t.cond),
            Some(cmp("n", CmpOp::Lt, AttributeValue::N("5".into())))
        );
        assert_eq!(
            tr(col("s").not_eq(lit("x"))).map(|t| t.cond),
            Some(cmp("s", CmpOp::Ne, AttributeValue::S("x".into())))
        );
    }

    #[test]
    fn decimal_literals_keep_their_exact_value() {
        let e = col("d").eq(lit(ScalarValue::Decimal128(Some(-1250), 38, 2)));
        assert_eq!(
            tr(e).map(|t| t.cond),
            Some(cmp("d", CmpOp::Eq, AttributeValue::N("-12.5".into())))
        );
    }

    #[test]
    fn refusals() {
        // Floats round, JSON columns mix types, column-to-column needs no literal.
        assert!(tr(col("f").gt(lit(1.5f64))).is_none());
        assert!(tr(col("n").gt(lit(1.5f64))).is_none());
        assert!(tr(col("j").eq(lit("x"))).is_none());
        assert!(tr(col("n").eq(col("d"))).is_none());
        // Type mismatch between column and literal.
        assert!(tr(col("s").eq(lit(5i64))).is_none());
        // Booleans have no order in DynamoDB.
        assert!(tr(col("b").gt(lit(false))).is_none());
        // Lossy casts.
        assert!(
            tr(Expr::Cast(datafusion::logical_expr::Cast::new(
                Box::new(col("n")),
                DataType::Float64
            ))
            .gt(lit(1.0f64)))
            .is_none()
        );
        // BETWEEN with low > high is left to SQL (DynamoDB would reject it).
        assert!(tr(col("n").between(lit(5i64), lit(1i64))).is_none());
        // More IN values than any key read could use. (Lists beyond DynamoDB's
        // 100 translate, for keys; the planner keeps them out of filters.)
        assert!(tr(col("n").in_list((0..1001i64).map(lit).collect(), false)).is_none());
        assert!(tr(col("n").in_list((0..101i64).map(lit).collect(), false)).is_some());
    }

    #[test]
    fn and_keeps_what_it_can_or_needs_everything() {
        let and = tr(col("n").gt(lit(1i64)).and(col("f").gt(lit(1.0f64)))).expect("partial");
        assert!(!and.exact);
        assert_eq!(and.cond, cmp("n", CmpOp::Gt, AttributeValue::N("1".into())));
        assert!(tr(col("n").gt(lit(1i64)).or(col("f").gt(lit(1.0f64)))).is_none());
        let or = tr(col("n").gt(lit(1i64)).or(col("s").eq(lit("a")))).expect("both sides");
        assert!(or.exact && matches!(or.cond, Cond::Or(ref v) if v.len() == 2));
    }

    #[test]
    fn not_only_over_exact_parts() {
        let partial = col("n").gt(lit(1i64)).and(col("f").gt(lit(1.0f64)));
        assert!(tr(Expr::Not(Box::new(partial))).is_none());
        let t = tr(Expr::Not(Box::new(col("n").eq(lit(1i64))))).expect("exact inner");
        assert!(matches!(t.cond, Cond::Not(_)));
    }

    #[test]
    fn like_prefix_and_substring() {
        assert_eq!(
            tr(col("s").like(lit("ab%"))).map(|t| t.cond),
            Some(Cond::Atom(Atom::BeginsWith {
                path: vec!["s".into()],
                prefix: AttributeValue::S("ab".into())
            }))
        );
        assert!(matches!(
            tr(col("s").like(lit("%ab%"))).map(|t| t.cond),
            Some(Cond::Atom(Atom::Contains { .. }))
        ));
        // A literal prefix before other wildcards: begins_with, re-checked.
        let t = tr(col("s").like(lit("a_b%"))).expect("prefix");
        assert_eq!(
            (t.cond, t.exact),
            (
                Cond::Atom(Atom::BeginsWith {
                    path: vec!["s".into()],
                    prefix: AttributeValue::S("a".into())
                }),
                false
            )
        );
        assert!(
            tr(col("s").not_like(lit("a_b%"))).is_none(),
            "NOT of a superset"
        );
        assert!(tr(col("s").not_like(lit("ab%"))).is_some_and(|t| t.exact));
        // Escapes: `a\%b%` starts with the literal text `a%b`.
        let t = tr(col("s").like(lit("a\\%b%"))).expect("escaped");
        assert_eq!(
            (t.cond, t.exact),
            (
                Cond::Atom(Atom::BeginsWith {
                    path: vec!["s".into()],
                    prefix: AttributeValue::S("a%b".into())
                }),
                true
            )
        );
        assert!(tr(col("s").like(lit("_ab%"))).is_none());
        assert!(tr(col("s").like(lit("%ab"))).is_none());
        assert!(tr(col("s").ilike(lit("ab%"))).is_none());
        assert!(tr(col("n").like(lit("1%"))).is_none());
    }

    #[test]
    fn nulls_booleans_nested_paths_and_in_lists() {
        assert!(matches!(
            tr(col("j").is_null()).map(|t| t.cond),
            Some(Cond::Atom(Atom::IsNull { .. }))
        ));
        assert_eq!(
            tr(col("b")).map(|t| t.cond),
            Some(cmp("b", CmpOp::Eq, AttributeValue::Bool(true)))
        );
        assert_eq!(
            tr(Expr::Not(Box::new(col("b")))).map(|t| t.cond),
            Some(cmp("b", CmpOp::Eq, AttributeValue::Bool(false)))
        );
        assert_eq!(
            tr(get_field(col("m"), "city").eq(lit("Oslo"))).map(|t| t.cond),
            Some(cmp("m.city", CmpOp::Eq, AttributeValue::S("Oslo".into())))
        );
        let t = tr(col("n").in_list(vec![lit(1i64), lit(2i64), lit(1i64)], false)).expect("in");
        assert_eq!(
            t.cond,
            Cond::Atom(Atom::In {
                path: vec!["n".into()],
                values: vec![AttributeValue::N("1".into()), AttributeValue::N("2".into())]
            })
        );
    }

    #[test]
    fn values_order_like_dynamodb() {
        let n = |s: &str| AttributeValue::N(s.into());
        assert_eq!(compare_values(&n("10"), &n("9.5")), Some(Ordering::Greater));
        assert_eq!(compare_values(&n("-1E+2"), &n("-99")), Some(Ordering::Less));
        assert_eq!(
            compare_values(
                &AttributeValue::S("a".into()),
                &AttributeValue::S("B".into())
            ),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare_values(&n("1"), &AttributeValue::S("1".into())),
            None
        );
    }
}
