//! Lossless JSON text for DynamoDB values, used for heterogeneous columns.
//!
//! The mapping: `S` → JSON string, `N` → JSON number written with its exact
//! decimal digits (never through `f64`), `B` → base64 string, `BOOL` →
//! `true`/`false`, `NULL` → `null`, `SS`/`NS`/`BS`/`L` → array, `M` → object
//! with keys sorted so the text is deterministic.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;

use crate::value::number::ExactNumber;

/// Renders `value` as JSON text.
pub fn to_json_text(value: &AttributeValue) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

/// Appends the JSON text of `value` to `out`.
pub(crate) fn write_json(value: &AttributeValue, out: &mut String) {
    match value {
        AttributeValue::S(s) => write_json_string(s, out),
        AttributeValue::N(n) => write_number(n, out),
        AttributeValue::B(b) => write_json_string(
            &base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
            out,
        ),
        AttributeValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttributeValue::Null(_) => out.push_str("null"),
        AttributeValue::Ss(v) => write_array(v.iter(), out, |s, o| write_json_string(s, o)),
        AttributeValue::Ns(v) => write_array(v.iter(), out, |n, o| write_number(n, o)),
        AttributeValue::Bs(v) => write_array(v.iter(), out, |b, o| {
            write_json_string(
                &base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
                o,
            )
        }),
        AttributeValue::L(v) => write_array(v.iter(), out, write_json),
        AttributeValue::M(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                write_json(&m[k], out);
            }
            out.push('}');
        }
        _ => out.push_str("null"),
    }
}

fn write_array<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    out: &mut String,
    mut each: impl FnMut(&'a T, &mut String),
) {
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(item, out);
    }
    out.push(']');
}

fn write_number(n: &str, out: &mut String) {
    match ExactNumber::parse(n) {
        Ok(x) => out.push_str(&x.to_string()),
        // DynamoDB only sends valid numbers; keep anything else visible as text.
        Err(_) => write_json_string(n, out),
    }
}

/// Appends `s` as a JSON string literal.
pub(crate) fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A short DynamoDB-JSON rendering of a value for error messages, valid
/// DynamoDB JSON unless shortened: `{"N": "6.18"}`, `{"S": "text"}`.
pub(crate) fn describe_value(value: &AttributeValue) -> String {
    let rendered = crate::value::dynamo_json::to_dynamo_json(value);
    let (tag, inner) = match rendered.as_object().and_then(|o| o.iter().next()) {
        Some((tag, inner)) => (tag.clone(), inner.to_string()),
        None => ("NULL".to_string(), "true".to_string()),
    };
    let mut body = inner;
    const MAX: usize = 80;
    if body.len() > MAX {
        let cut = (0..=MAX)
            .rev()
            .find(|i| body.is_char_boundary(*i))
            .unwrap_or(0);
        body.truncate(cut);
        body.push('…');
    }
    format!("{{\"{tag}\": {body}}}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::Blob;
    use std::collections::HashMap;

    #[test]
    fn every_type_renders_losslessly() {
        let m = AttributeValue::M(HashMap::from([
            ("z".to_string(), AttributeValue::N("1.50".into())),
            ("a".to_string(), AttributeValue::S("q\"uote\n".into())),
            (
                "l".to_string(),
                AttributeValue::L(vec![
                    AttributeValue::Null(true),
                    AttributeValue::Bool(false),
                    AttributeValue::B(Blob::new(vec![0u8, 255])),
                ]),
            ),
            (
                "ns".to_string(),
                AttributeValue::Ns(vec!["12345678901234567890123456789012345678".into()]),
            ),
        ]));
        assert_eq!(
            to_json_text(&m),
            r#"{"a":"q\"uote\n","l":[null,false,"AP8="],"ns":[12345678901234567890123456789012345678],"z":1.5}"#
        );
    }

    #[test]
    fn messages_show_dynamodb_json() {
        assert_eq!(
            describe_value(&AttributeValue::N("6.18".into())),
            r#"{"N": "6.18"}"#
        );
        assert_eq!(
            describe_value(&AttributeValue::Ns(vec!["1".into()])),
            r#"{"NS": ["1"]}"#
        );
        assert_eq!(
            describe_value(&AttributeValue::Bool(true)),
            r#"{"BOOL": true}"#
        );
        let m = AttributeValue::M(HashMap::from([("k".into(), AttributeValue::S("v".into()))]));
        assert_eq!(describe_value(&m), r#"{"M": {"k":{"S":"v"}}}"#);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let s = AttributeValue::S("x".repeat(500));
        let d = describe_value(&s);
        assert!(
            d.starts_with("{\"S\": \"xxx") && d.ends_with("…}") && d.len() < 100,
            "{d}"
        );
    }
}
