//! Rendering conditions as DynamoDB expressions. Every attribute name becomes
//! `#nN` and every value `:vN`, so reserved words (`name`, `status`, `size`)
//! just work and nothing a user types can change an expression's structure.

use std::collections::HashMap;
use std::fmt::Write as _;

use aws_sdk_dynamodb::types::AttributeValue;

use super::predicate::{Atom, Cond, Path};

/// Names and values collected while rendering one request's expressions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpressionBuilder {
    names: Vec<String>,
    values: Vec<AttributeValue>,
}

impl ExpressionBuilder {
    /// The placeholder for `attribute`, reusing one already assigned.
    pub fn name(&mut self, attribute: &str) -> String {
        let idx = match self.names.iter().position(|n| n == attribute) {
            Some(i) => i,
            None => {
                self.names.push(attribute.to_string());
                self.names.len() - 1
            }
        };
        format!("#n{idx}")
    }

    /// `#n0.#n1` for a nested path.
    pub(crate) fn path(&mut self, path: &Path) -> String {
        path.iter()
            .map(|p| self.name(p))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The placeholder for a new value.
    pub fn value(&mut self, v: AttributeValue) -> String {
        self.values.push(v);
        format!(":v{}", self.values.len() - 1)
    }

    /// `ExpressionAttributeNames`, `None` when empty.
    pub fn attribute_names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| {
            self.names
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("#n{i}"), n.clone()))
                .collect()
        })
    }

    /// `ExpressionAttributeValues`, `None` when empty.
    pub fn attribute_values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| {
            self.values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!(":v{i}"), v.clone()))
                .collect()
        })
    }

    /// Values in placeholder order.
    #[cfg(test)]
    pub fn values(&self) -> &[AttributeValue] {
        &self.values
    }

    /// Renders a condition; also counts its operators (DynamoDB allows 300).
    pub(crate) fn condition(&mut self, cond: &Cond, operators: &mut usize) -> String {
        let mut out = String::new();
        self.write_cond(cond, operators, &mut out);
        out
    }

    fn write_cond(&mut self, cond: &Cond, ops: &mut usize, out: &mut String) {
        match cond {
            Cond::Atom(a) => self.write_atom(a, ops, out),
            Cond::And(parts) | Cond::Or(parts) => {
                let joiner = if matches!(cond, Cond::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                *ops += parts.len().saturating_sub(1);
                out.push('(');
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(joiner);
                    }
                    self.write_cond(p, ops, out);
                }
                out.push(')');
            }
            Cond::Not(inner) => {
                *ops += 1;
                out.push_str("(NOT ");
                self.write_cond(inner, ops, out);
                out.push(')');
            }
        }
    }

    fn write_atom(&mut self, atom: &Atom, ops: &mut usize, out: &mut String) {
        let path = self.path(atom.path());
        match atom {
            Atom::Cmp { op, value, .. } => {
                *ops += 1;
                let v = self.value(value.clone());
                let _ = write!(out, "{path} {} {v}", op.symbol());
            }
            Atom::Between { low, high, .. } => {
                *ops += 1;
                let (l, h) = (self.value(low.clone()), self.value(high.clone()));
                let _ = write!(out, "{path} BETWEEN {l} AND {h}");
            }
            Atom::In { values, .. } => {
                *ops += 1;
                let vs: Vec<String> = values.iter().map(|v| self.value(v.clone())).collect();
                let _ = write!(out, "{path} IN ({})", vs.join(", "));
            }
            Atom::IsNull { .. } => {
                // SQL NULL is both "missing" and DynamoDB's NULL type.
                *ops += 3;
                let null_type = self.value(AttributeValue::S("NULL".into()));
                let _ = write!(
                    out,
                    "(attribute_not_exists({path}) OR attribute_type({path}, {null_type}))"
                );
            }
            Atom::IsNotNull { .. } => {
                *ops += 3;
                let null_type = self.value(AttributeValue::S("NULL".into()));
                let _ = write!(
                    out,
                    "(attribute_exists({path}) AND NOT attribute_type({path}, {null_type}))"
                );
            }
            Atom::BeginsWith { prefix, .. } => {
                *ops += 1;
                let v = self.value(prefix.clone());
                let _ = write!(out, "begins_with({path}, {v})");
            }
            Atom::Contains { substring, .. } => {
                *ops += 1;
                let v = self.value(substring.clone());
                let _ = write!(out, "contains({path}, {v})");
            }
        }
    }
}

/// A `ProjectionExpression` with its placeholders.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProjectionExpression {
    /// The document paths read, in order: a top-level attribute, or a path
    /// into maps (`info`, `rating` for `info.rating`). None overlaps another.
    pub paths: Vec<Path>,
}

impl ProjectionExpression {
    /// Projects `attributes` (top-level names); `None` when there are none.
    pub fn new(attributes: Vec<String>) -> Option<Self> {
        Self::of_paths(attributes.into_iter().map(|a| vec![a]).collect())
    }

    /// Projects document `paths`; `None` when there are none.
    pub fn of_paths(paths: Vec<Path>) -> Option<Self> {
        (!paths.is_empty()).then_some(Self { paths })
    }

    /// The paths as text (`info.rating`), for `EXPLAIN`.
    pub fn attributes(&self) -> Vec<String> {
        self.paths.iter().map(|p| p.join(".")).collect()
    }

    /// Renders into `builder`, returning the expression text.
    pub fn render(&self, builder: &mut ExpressionBuilder) -> String {
        self.paths
            .iter()
            .map(|p| builder.path(p))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Short text of a value for `EXPLAIN` (`S:"abc"`, `N:12.5`).
pub fn display_value(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => format!("{s:?}"),
        AttributeValue::N(n) => n.clone(),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::B(b) => format!(
            "0x{}",
            b.as_ref()
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<String>()
        ),
        other => crate::value::json::to_json_text(other),
    }
}

/// `expression` with its placeholders replaced by what they stand for:
/// `#n0` by the attribute name (in backticks when it is not a plain
/// identifier), `:v0` by the value (`"123015"`, `1762000000`) — for a
/// person reading a plan; requests always carry the placeholders.
pub(crate) fn resolve_placeholders(
    expression: &str,
    names: &HashMap<String, String>,
    values: &HashMap<String, AttributeValue>,
) -> String {
    let mut out = String::with_capacity(expression.len());
    let bytes = expression.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let kind = bytes.get(i + 1).copied();
        if (c == b'#' && kind == Some(b'n')) || (c == b':' && kind == Some(b'v')) {
            let digits = bytes[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                let token = &expression[i..i + 2 + digits];
                let resolved = if c == b'#' {
                    names.get(token).map(|n| {
                        let plain = n
                            .chars()
                            .next()
                            .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                            && n.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
                        if plain { n.clone() } else { format!("`{n}`") }
                    })
                } else {
                    values.get(token).map(display_value)
                };
                if let Some(r) = resolved {
                    out.push_str(&r);
                    i += 2 + digits;
                    continue;
                }
            }
        }
        let ch = expression[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::predicate::CmpOp;

    #[test]
    fn placeholders_resolve_to_names_and_values_a_person_reads() {
        let names = HashMap::from([
            ("#n0".to_string(), "userId".to_string()),
            ("#n1".to_string(), "event time".to_string()),
        ]);
        let values = HashMap::from([(":v0".to_string(), AttributeValue::S("123015".into()))]);
        assert_eq!(
            resolve_placeholders("#n0 = :v0 AND attribute_exists(#n1)", &names, &values),
            r#"userId = "123015" AND attribute_exists(`event time`)"#
        );
    }

    #[test]
    fn placeholders_resolve_whole_tokens_only() {
        let names: HashMap<String, String> = (0..12)
            .map(|i| (format!("#n{i}"), format!("a{i}")))
            .collect();
        let values = HashMap::from([(":v1".to_string(), AttributeValue::N("7".into()))]);
        assert_eq!(
            resolve_placeholders("#n1 < :v1 AND #n11 = :v12", &names, &values),
            "a1 < 7 AND a11 = :v12",
            "#n11 is not #n1 followed by 1; an unknown placeholder stays"
        );
    }

    #[test]
    fn reserved_and_repeated_names_get_stable_placeholders() {
        let mut b = ExpressionBuilder::default();
        let p = ProjectionExpression::new(vec!["name".into(), "status".into(), "name".into()])
            .expect("non-empty");
        assert_eq!(p.render(&mut b), "#n0, #n1, #n0");
        assert_eq!(b.attribute_names().map(|m| m.len()), Some(2));
        assert!(ProjectionExpression::new(vec![]).is_none());
    }

    #[test]
    fn conditions_render_with_placeholders_and_count_operators() {
        let cond = Cond::And(vec![
            Cond::Atom(Atom::Cmp {
                path: vec!["size".into()],
                op: CmpOp::Ge,
                value: AttributeValue::N("3".into()),
            }),
            Cond::Not(Box::new(Cond::Atom(Atom::IsNull {
                path: vec!["m".into(), "status".into()],
            }))),
            Cond::Or(vec![
                Cond::Atom(Atom::BeginsWith {
                    path: vec!["name".into()],
                    prefix: AttributeValue::S("a'; DROP".into()),
                }),
                Cond::Atom(Atom::In {
                    path: vec!["size".into()],
                    values: vec![AttributeValue::N("1".into()), AttributeValue::N("2".into())],
                }),
            ]),
        ]);
        let mut b = ExpressionBuilder::default();
        let mut ops = 0;
        let text = b.condition(&cond, &mut ops);
        assert_eq!(
            text,
            "(#n0 >= :v0 AND (NOT (attribute_not_exists(#n1.#n2) OR attribute_type(#n1.#n2, :v1))) \
             AND (begins_with(#n3, :v2) OR #n0 IN (:v3, :v4)))"
        );
        assert_eq!(ops, 2 + 1 + 3 + 1 + 1 + 1 + 1);
        assert_eq!(b.values()[2], AttributeValue::S("a'; DROP".into()));
        assert_eq!(b.attribute_names().map(|m| m.len()), Some(4));
    }
}
