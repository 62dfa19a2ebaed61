//! Placeholders for DynamoDB expressions: every attribute name becomes `#nN`,
//! so reserved words (`name`, `status`, `size`) just work and nothing a user
//! types can change an expression's structure.

use std::collections::HashMap;

/// Attribute-name placeholders collected while rendering an expression.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholders {
    names: Vec<String>,
}

impl Placeholders {
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

    /// `ExpressionAttributeNames` for the request, `None` when empty.
    pub fn attribute_names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| {
            self.names
                .iter()
                .enumerate()
                .map(|(i, n)| (format!("#n{i}"), n.clone()))
                .collect()
        })
    }
}

/// A `ProjectionExpression` with its placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionExpression {
    /// The attributes read, in order.
    pub attributes: Vec<String>,
    /// `#n0, #n1, ...`
    pub expression: String,
    /// Placeholder → attribute name.
    pub names: HashMap<String, String>,
}

impl ProjectionExpression {
    /// Projects `attributes` (top-level names); `None` when there are none.
    pub fn new(attributes: Vec<String>) -> Option<Self> {
        let mut p = Placeholders::default();
        let expression = attributes
            .iter()
            .map(|a| p.name(a))
            .collect::<Vec<_>>()
            .join(", ");
        let names = p.attribute_names()?;
        Some(Self {
            attributes,
            expression,
            names,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_and_repeated_names_get_stable_placeholders() {
        let p = ProjectionExpression::new(vec!["name".into(), "status".into(), "name".into()])
            .expect("non-empty");
        assert_eq!(p.expression, "#n0, #n1, #n0");
        assert_eq!(p.names.get("#n1").map(String::as_str), Some("status"));
        assert_eq!(p.names.len(), 2);
        assert!(ProjectionExpression::new(vec![]).is_none());
    }
}
