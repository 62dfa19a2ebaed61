//! SDK values inside serialized plans: each `AttributeValue` travels as its
//! DynamoDB JSON (`{"N": "12.5"}`, `{"B": "base64"}`), so numbers keep their
//! exact digits and binary its bytes. For `#[serde(with = "…")]` on plan
//! fields; self-describing formats (JSON) only, as DynamoDB JSON is.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::value::dynamo_json::{from_dynamo_json, to_dynamo_json};

/// A value borrowed for serializing.
struct Out<'a>(&'a AttributeValue);

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        to_dynamo_json(self.0).serialize(s)
    }
}

/// A value read back.
struct In(AttributeValue);

impl<'de> Deserialize<'de> for In {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        from_dynamo_json(&json, "plan")
            .map(In)
            .map_err(D::Error::custom)
    }
}

/// One value.
pub(crate) mod one {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &AttributeValue, s: S) -> Result<S::Ok, S::Error> {
        Out(v).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AttributeValue, D::Error> {
        In::deserialize(d).map(|v| v.0)
    }
}

/// A list of values.
pub(crate) mod many {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(v: &[AttributeValue], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(Out))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<AttributeValue>, D::Error> {
        Ok(Vec::<In>::deserialize(d)?
            .into_iter()
            .map(|v| v.0)
            .collect())
    }
}

/// Lists of values.
pub(crate) mod nested {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        v: &[Vec<AttributeValue>],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|list| list.iter().map(Out).collect::<Vec<_>>()),
        )
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Vec<AttributeValue>>, D::Error> {
        Ok(Vec::<Vec<In>>::deserialize(d)?
            .into_iter()
            .map(|list| list.into_iter().map(|v| v.0).collect())
            .collect())
    }
}

/// A key: `(attribute, value)` pairs in key order.
pub(crate) mod key {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        k: &[(String, AttributeValue)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(k.iter().map(|(n, v)| (n, Out(v))))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, AttributeValue)>, D::Error> {
        Ok(Vec::<(String, In)>::deserialize(d)?
            .into_iter()
            .map(|(n, v)| (n, v.0))
            .collect())
    }
}

/// A list of keys.
pub(crate) mod keys {
    use super::*;

    /// One key borrowed for serializing.
    struct KeyOut<'a>(&'a [(String, AttributeValue)]);

    impl Serialize for KeyOut<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            key::serialize(self.0, s)
        }
    }

    /// One key read back.
    struct KeyIn(Vec<(String, AttributeValue)>);

    impl<'de> Deserialize<'de> for KeyIn {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            key::deserialize(d).map(KeyIn)
        }
    }

    pub(crate) fn serialize<S: Serializer>(
        keys: &[Vec<(String, AttributeValue)>],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(keys.iter().map(|k| KeyOut(k)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<Vec<(String, AttributeValue)>>, D::Error> {
        Ok(Vec::<KeyIn>::deserialize(d)?
            .into_iter()
            .map(|k| k.0)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::primitives::Blob;
    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "one")]
        one: AttributeValue,
        #[serde(with = "many")]
        many: Vec<AttributeValue>,
        #[serde(with = "keys")]
        keys: Vec<Vec<(String, AttributeValue)>>,
    }

    #[test]
    fn values_round_trip_exactly_through_dynamodb_json() {
        let h = Holder {
            one: AttributeValue::N("12345678901234567890123456789012345678".into()),
            many: vec![
                AttributeValue::B(Blob::new(vec![0, 255, 7])),
                AttributeValue::Ss(vec!["a".into(), "b".into()]),
                AttributeValue::Null(true),
            ],
            keys: vec![vec![
                ("pk".into(), AttributeValue::S("x".into())),
                ("sk".into(), AttributeValue::N("-1.50".into())),
            ]],
        };
        let text = serde_json::to_string(&h).expect("serialize");
        assert!(
            text.contains(r#"{"N":"12345678901234567890123456789012345678"}"#),
            "{text}"
        );
        let back: Holder = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, h);
    }

    #[test]
    fn a_value_that_is_not_dynamodb_json_is_refused() {
        let bad = r#"{"one":{"Q":"1"},"many":[],"keys":[]}"#;
        let err = serde_json::from_str::<Holder>(bad).expect_err("unknown tag");
        assert!(err.to_string().contains("Q"), "{err}");
    }
}
