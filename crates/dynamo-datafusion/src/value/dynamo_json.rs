//! DynamoDB JSON (`{"S": "x"}`, `{"N": "12.5"}`, …) ↔ SDK values. Lossless:
//! numbers stay the exact decimal strings DynamoDB sends, binary is base64.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use serde_json::{Map, Value};

/// Renders a value as DynamoDB JSON.
pub fn to_dynamo_json(v: &AttributeValue) -> Value {
    let b64 =
        |b: &Blob| Value::String(base64::engine::general_purpose::STANDARD.encode(b.as_ref()));
    let one = |tag: &str, v: Value| {
        let mut m = Map::new();
        m.insert(tag.to_string(), v);
        Value::Object(m)
    };
    match v {
        AttributeValue::S(s) => one("S", Value::String(s.clone())),
        AttributeValue::N(n) => one("N", Value::String(n.clone())),
        AttributeValue::B(b) => one("B", b64(b)),
        AttributeValue::Bool(b) => one("BOOL", Value::Bool(*b)),
        AttributeValue::Null(_) => one("NULL", Value::Bool(true)),
        AttributeValue::Ss(v) => one("SS", v.iter().map(|s| Value::String(s.clone())).collect()),
        AttributeValue::Ns(v) => one("NS", v.iter().map(|s| Value::String(s.clone())).collect()),
        AttributeValue::Bs(v) => one("BS", v.iter().map(b64).collect()),
        AttributeValue::L(v) => one("L", v.iter().map(to_dynamo_json).collect()),
        AttributeValue::M(m) => one("M", Value::Object(item_to_json(m))),
        _ => one("NULL", Value::Bool(true)),
    }
}

/// Renders an item as a JSON object of DynamoDB JSON values.
pub fn item_to_json(item: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    let mut keys: Vec<&String> = item.keys().collect();
    keys.sort();
    keys.into_iter()
        .map(|k| (k.clone(), to_dynamo_json(&item[k])))
        .collect()
}

/// Parses an item, a JSON object of DynamoDB JSON values (the inverse of
/// [`item_to_json`]); errors name the attribute.
pub fn item_from_json(
    object: &Map<String, Value>,
) -> Result<HashMap<String, AttributeValue>, String> {
    object
        .iter()
        .map(|(name, v)| Ok((name.clone(), from_dynamo_json(v, name)?)))
        .collect()
}

/// Parses the text of a JSON array of items (the `Items` of a Scan or Query
/// answer); errors say which item and why.
pub fn items_from_json_text(text: &str) -> Result<Vec<HashMap<String, AttributeValue>>, String> {
    let values: Vec<Value> =
        serde_json::from_str(text).map_err(|e| format!("the items are not a JSON array: {e}"))?;
    values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let object = value
                .as_object()
                .ok_or_else(|| format!("item {i} is not a JSON object"))?;
            item_from_json(object)
        })
        .collect()
}

/// Parses DynamoDB JSON; errors say where (`at`) and why.
pub fn from_dynamo_json(v: &Value, at: &str) -> Result<AttributeValue, String> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| format!("{at} must be a DynamoDB JSON value with one type key, like {{\"S\": \"text\"}} or {{\"N\": \"12\"}}"))?;
    let (tag, inner) = obj.iter().next().ok_or_else(|| format!("{at} is empty"))?;
    let at = format!("{at}.{tag}");
    let string = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{at} must be a string"))
    };
    let number = |v: &Value| -> Result<String, String> {
        let s = v
            .as_str()
            .ok_or_else(|| format!("{at} must be a number written as a string, like \"12.5\""))?;
        valid_number(s).then(|| s.to_string()).ok_or_else(|| {
            format!("{at}: '{s}' is not a DynamoDB number (decimal digits, optional sign, fraction and exponent; at most 38 significant digits)")
        })
    };
    let blob = |v: &Value| -> Result<Blob, String> {
        let s = v
            .as_str()
            .ok_or_else(|| format!("{at} must be base64 text"))?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Blob::new)
            .map_err(|_| format!("{at} is not valid base64"))
    };
    let array = |v: &Value| {
        v.as_array()
            .cloned()
            .ok_or_else(|| format!("{at} must be an array"))
    };
    Ok(match tag.as_str() {
        "S" => AttributeValue::S(string(inner)?),
        "N" => AttributeValue::N(number(inner)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(
            inner
                .as_bool()
                .ok_or_else(|| format!("{at} must be true or false"))?,
        ),
        "NULL" => {
            if inner.as_bool() != Some(true) {
                return Err(format!("{at} must be true"));
            }
            AttributeValue::Null(true)
        }
        "SS" => AttributeValue::Ss(non_empty(
            array(inner)?.iter().map(string).collect::<Result<_, _>>()?,
            &at,
        )?),
        "NS" => AttributeValue::Ns(non_empty(
            array(inner)?.iter().map(number).collect::<Result<_, _>>()?,
            &at,
        )?),
        "BS" => AttributeValue::Bs(non_empty(
            array(inner)?.iter().map(blob).collect::<Result<_, _>>()?,
            &at,
        )?),
        "L" => AttributeValue::L(
            array(inner)?
                .iter()
                .enumerate()
                .map(|(i, e)| from_dynamo_json(e, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(
            inner
                .as_object()
                .ok_or_else(|| format!("{at} must be an object"))?
                .iter()
                .map(|(k, e)| Ok((k.clone(), from_dynamo_json(e, &format!("{at}[{k:?}]"))?)))
                .collect::<Result<_, String>>()?,
        ),
        other => {
            return Err(format!(
                "{at}: unknown DynamoDB type '{other}' (use S, N, B, BOOL, NULL, SS, NS, BS, L or M)"
            ));
        }
    })
}

fn non_empty<T>(v: Vec<T>, at: &str) -> Result<Vec<T>, String> {
    if v.is_empty() {
        Err(format!("{at}: DynamoDB sets cannot be empty"))
    } else {
        Ok(v)
    }
}

/// DynamoDB's number syntax and its 38-digit precision.
fn valid_number(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return false;
    }
    if let Some(e) = exponent {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        if e.is_empty() || e.len() > 4 || !e.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    let digits: String = int.chars().chain(frac.chars()).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len() <= 38
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_every_type() {
        let v = json!({"M": {
            "s": {"S": "x"}, "n": {"N": "12345678901234567890123456789012345678"},
            "b": {"B": "AP8="}, "t": {"BOOL": true}, "z": {"NULL": true},
            "ss": {"SS": ["a"]}, "ns": {"NS": ["-1.5E+3"]}, "bs": {"BS": ["AA=="]},
            "l": {"L": [{"S": "y"}, {"N": "0"}]}
        }});
        let av = from_dynamo_json(&v, "value").expect("valid");
        assert_eq!(to_dynamo_json(&av), v);
    }

    #[test]
    fn errors_say_where_and_why() {
        let cases = [
            (json!("x"), "value must be a DynamoDB JSON value"),
            (json!({"S": 1}), "value.S must be a string"),
            (
                json!({"N": 5}),
                "value.N must be a number written as a string",
            ),
            (json!({"N": "abc"}), "'abc' is not a DynamoDB number"),
            (
                json!({"N": "1234567890123456789012345678901234567890"}),
                "at most 38",
            ),
            (json!({"X": "1"}), "unknown DynamoDB type 'X'"),
            (json!({"SS": []}), "sets cannot be empty"),
            (json!({"L": [{"N": "x"}]}), "value.L[0].N"),
            (json!({"B": "***"}), "not valid base64"),
            (json!({"S": "a", "N": "1"}), "one type key"),
        ];
        for (v, expected) in cases {
            let err = from_dynamo_json(&v, "value").expect_err("invalid");
            assert!(err.contains(expected), "{v}: {err}");
        }
    }
}
