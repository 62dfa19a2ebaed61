//! The request format of `dynamo.connector`, parsed and validated before
//! anything is sent to DynamoDB:
//!
//! ```json
//! {"inputs": {"tableName": "UserEngagement", "operation": "query",
//!             "keyCondition": "userId = :userId", "filterExpression": "engagementScore > :minScore",
//!             "expressionAttributeValues": {":userId": {"S": "123456"}, ":minScore": {"N": "50"}}},
//!  "config": {}}
//! ```

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Map, Value};

use crate::dynamo_json::from_dynamo_json;
use crate::error::{ConnectorError, Result};

/// Fields accepted in `inputs`.
pub const INPUT_FIELDS: &[&str] = &[
    "tableName",
    "operation",
    "keyCondition",
    "filterExpression",
    "expressionAttributeValues",
    "expressionAttributeNames",
    "projection",
    "indexName",
    "limit",
    "consistentRead",
    "scanIndexForward",
    "nextToken",
    "sql",
];

/// Fields accepted in `config`.
pub const CONFIG_FIELDS: &[&str] = &["maxItems", "maxBytes", "maxScanned", "maxCapacity"];

/// Default cap on items per response.
pub const DEFAULT_MAX_ITEMS: usize = 1_000;
/// Default cap on item bytes (as JSON) per response.
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;
/// Default cap on items DynamoDB evaluates for one `scan` or `query` response.
pub const DEFAULT_MAX_SCANNED: usize = 10_000;

/// A DynamoDB read operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOperation {
    /// Scan.
    Scan,
    /// Query (needs a key condition).
    Query,
}

/// A Scan or Query, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadRequest {
    /// Table name.
    pub table_name: String,
    /// Scan or Query.
    pub operation: ReadOperation,
    /// KeyConditionExpression (Query only).
    pub key_condition: Option<String>,
    /// FilterExpression.
    pub filter_expression: Option<String>,
    /// ExpressionAttributeValues.
    pub values: HashMap<String, AttributeValue>,
    /// ExpressionAttributeNames.
    pub names: HashMap<String, String>,
    /// ProjectionExpression.
    pub projection: Option<String>,
    /// Index to read.
    pub index_name: Option<String>,
    /// DynamoDB's `Limit`: items the one request of the response may
    /// evaluate (a filter applies after it).
    pub limit: Option<u32>,
    /// Strongly consistent reads.
    pub consistent_read: bool,
    /// Query direction.
    pub scan_index_forward: bool,
    /// Where to continue.
    pub next_token: Option<String>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// A DynamoDB read.
    Read(Box<ReadRequest>),
    /// SQL over the client's tables.
    Sql(String),
}

/// Response caps from `config`.
///
/// A cap the caller set is exact: an answer is cut inside a page. A cap left
/// to its default (`None`) ends an answer only at a page boundary, at the
/// first page that reaches it, so a read paged with the defaults sends the
/// requests DynamoDB's own paging sends and reads each item once.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// Items per response (default [`DEFAULT_MAX_ITEMS`]).
    pub max_items: Option<usize>,
    /// Item bytes (as JSON) per response, at least one item returned
    /// (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: Option<usize>,
    /// Items DynamoDB evaluates for one `scan` or `query` response (default
    /// [`DEFAULT_MAX_SCANNED`]).
    pub max_scanned: Option<usize>,
    /// Read capacity units one `scan` or `query` response may consume; for
    /// `sql`, the statement's ceiling: refused before reading when its
    /// estimate is above, stopped when its reads consume more.
    pub max_capacity: Option<f64>,
}

impl Limits {
    /// The item cap in force, the caller's or the default.
    pub fn items(&self) -> usize {
        self.max_items.unwrap_or(DEFAULT_MAX_ITEMS)
    }

    /// The byte cap in force, the caller's or the default.
    pub fn bytes(&self) -> usize {
        self.max_bytes.unwrap_or(DEFAULT_MAX_BYTES)
    }

    /// The evaluated-items cap in force, the caller's or the default.
    pub fn scanned(&self) -> usize {
        self.max_scanned.unwrap_or(DEFAULT_MAX_SCANNED)
    }
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorRequest {
    /// What to run.
    pub inputs: Inputs,
    /// Caps.
    pub limits: Limits,
}

fn invalid(msg: impl Into<String>) -> ConnectorError {
    ConnectorError::invalid(msg)
}

/// The closest accepted name, for "did you mean".
fn suggest(unknown: &str, known: &[&str]) -> String {
    let best = known
        .iter()
        .map(|k| {
            (
                strsim::levenshtein(&unknown.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .min();
    match best {
        Some((d, k)) if d <= 3 || k.eq_ignore_ascii_case(unknown) => {
            format!("; did you mean '{k}'?")
        }
        _ => format!("; accepted: {}", known.join(", ")),
    }
}

fn check_fields(obj: &Map<String, Value>, known: &[&str], at: &str) -> Result<()> {
    for key in obj.keys() {
        if !known.contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown field '{at}.{key}'{}",
                suggest(key, known)
            )));
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(invalid(format!("inputs.{key} must not be empty")))
        }
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(format!(
            "inputs.{key} must be a string, not {}",
            kind(v)
        ))),
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid(format!(
            "inputs.{key} must be true or false, not {}",
            kind(v)
        ))),
    }
}

fn positive(v: &Value, at: &str, max: u64) -> Result<u64> {
    v.as_u64().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
        invalid(format!(
            "{at} must be a whole number from 1 to {max}, not {v}"
        ))
    })
}

/// Placeholders (`:name` or `#name`) an expression uses.
fn placeholders(expr: &str, sigil: char) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == sigil {
            let mut end = i + c.len_utf8();
            while let Some((j, d)) = chars.peek().copied() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            if end > i + 1 {
                out.insert(expr[i..end].to_string());
            }
        }
    }
    out
}

/// Parses and validates a request body.
pub fn parse_request(body: &[u8]) -> Result<ConnectorRequest> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("request is not valid JSON: {e}")))?;
    let root = value.as_object().ok_or_else(|| {
        invalid(format!(
            "request must be a JSON object with 'inputs' and 'config', not {}",
            kind(&value)
        ))
    })?;
    check_fields(root, &["inputs", "config"], "request")?;
    let limits = parse_config(root.get("config"))?;
    let inputs = match root.get("inputs") {
        Some(Value::Object(o)) => o,
        Some(v) => {
            return Err(invalid(format!(
                "inputs must be an object, not {}",
                kind(v)
            )));
        }
        None => return Err(invalid("request has no 'inputs'")),
    };
    check_fields(inputs, INPUT_FIELDS, "inputs")?;
    let operation = opt_string(inputs, "operation")?
        .ok_or_else(|| invalid("inputs.operation is required: 'scan', 'query' or 'sql'"))?;
    let inputs = match operation.as_str() {
        "scan" | "query" => Inputs::Read(Box::new(parse_read(inputs, operation == "query")?)),
        "sql" => {
            if let Some(key) = inputs
                .keys()
                .find(|k| !matches!(k.as_str(), "operation" | "sql"))
            {
                return Err(invalid(format!(
                    "inputs.{key} does not apply to operation 'sql': put everything in the SQL"
                )));
            }
            // A cap on items evaluated is for scan and query (a statement's
            // reads are capped by config.maxCapacity); say so rather than ignore it.
            let config = root.get("config").and_then(Value::as_object);
            if config.is_some_and(|c| c.contains_key("maxScanned")) {
                return Err(invalid(
                    "config.maxScanned applies to operations 'scan' and 'query'; for 'sql' use \
                     config.maxItems (rows) or config.maxCapacity (read capacity units)",
                ));
            }
            Inputs::Sql(
                opt_string(inputs, "sql")?
                    .ok_or_else(|| invalid("operation 'sql' needs inputs.sql"))?,
            )
        }
        other => {
            return Err(invalid(format!(
                "inputs.operation '{other}' is not supported{}",
                suggest(other, &["scan", "query", "sql"])
            )));
        }
    };
    Ok(ConnectorRequest { inputs, limits })
}

fn parse_config(config: Option<&Value>) -> Result<Limits> {
    let mut limits = Limits::default();
    let obj = match config {
        None | Some(Value::Null) => return Ok(limits),
        Some(Value::Object(o)) => o,
        Some(v) => {
            return Err(invalid(format!(
                "config must be an object, not {}",
                kind(v)
            )));
        }
    };
    check_fields(obj, CONFIG_FIELDS, "config")?;
    if let Some(v) = obj.get("maxItems") {
        limits.max_items = Some(positive(v, "config.maxItems", 100_000)? as usize);
    }
    if let Some(v) = obj.get("maxBytes") {
        limits.max_bytes = Some(positive(v, "config.maxBytes", 16 * 1024 * 1024)? as usize);
    }
    if let Some(v) = obj.get("maxScanned") {
        limits.max_scanned = Some(positive(v, "config.maxScanned", 1_000_000)? as usize);
    }
    if let Some(v) = obj.get("maxCapacity") {
        limits.max_capacity = Some(
            v.as_f64()
                .filter(|x| x.is_finite() && *x > 0.0 && *x <= 1_000_000.0)
                .ok_or_else(|| {
                    invalid(format!(
                        "config.maxCapacity must be a number of read capacity units above 0 and up to 1000000, not {v}"
                    ))
                })?,
        );
    }
    Ok(limits)
}

fn parse_read(obj: &Map<String, Value>, query: bool) -> Result<ReadRequest> {
    if obj.contains_key("sql") {
        return Err(invalid("inputs.sql applies to operation 'sql' only"));
    }
    let table_name =
        opt_string(obj, "tableName")?.ok_or_else(|| invalid("inputs.tableName is required"))?;
    let table_ok = (3..=255).contains(&table_name.len())
        && table_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !table_ok {
        return Err(invalid(format!(
            "inputs.tableName '{table_name}' is not a DynamoDB table name (3-255 characters of a-z A-Z 0-9 _ - .)"
        )));
    }
    let key_condition = opt_string(obj, "keyCondition")?;
    match (query, &key_condition) {
        (true, None) => {
            return Err(invalid(
                "operation 'query' needs inputs.keyCondition, e.g. \"userId = :userId\"",
            ));
        }
        (false, Some(_)) => {
            return Err(invalid(
                "operation 'scan' does not take inputs.keyCondition: use operation 'query', or put the condition in filterExpression",
            ));
        }
        _ => {}
    }
    if !query && obj.contains_key("scanIndexForward") {
        return Err(invalid(
            "inputs.scanIndexForward applies to operation 'query' only",
        ));
    }
    let values = match obj.get("expressionAttributeValues") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                if !k.starts_with(':') || k.len() < 2 {
                    return Err(invalid(format!(
                        "expressionAttributeValues key '{k}' must start with ':'"
                    )));
                }
                let av = from_dynamo_json(v, &format!("expressionAttributeValues[\"{k}\"]"))
                    .map_err(invalid)?;
                Ok((k.clone(), av))
            })
            .collect::<Result<_>>()?,
        Some(v) => {
            return Err(invalid(format!(
                "inputs.expressionAttributeValues must be an object, not {}",
                kind(v)
            )));
        }
    };
    let names = match obj.get("expressionAttributeNames") {
        None | Some(Value::Null) => HashMap::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                if !k.starts_with('#') || k.len() < 2 {
                    return Err(invalid(format!(
                        "expressionAttributeNames key '{k}' must start with '#'"
                    )));
                }
                match v.as_str() {
                    Some(s) if !s.is_empty() => Ok((k.clone(), s.to_string())),
                    _ => Err(invalid(format!(
                        "expressionAttributeNames[\"{k}\"] must be a non-empty string"
                    ))),
                }
            })
            .collect::<Result<_>>()?,
        Some(v) => {
            return Err(invalid(format!(
                "inputs.expressionAttributeNames must be an object, not {}",
                kind(v)
            )));
        }
    };
    let filter_expression = opt_string(obj, "filterExpression")?;
    let projection = opt_string(obj, "projection")?;
    check_placeholders(
        &key_condition,
        &filter_expression,
        &projection,
        &values,
        &names,
    )?;
    let limit = obj
        .get("limit")
        .filter(|v| !v.is_null())
        .map(|v| positive(v, "inputs.limit", 1_000_000).map(|n| n as u32))
        .transpose()?;
    Ok(ReadRequest {
        table_name,
        operation: if query {
            ReadOperation::Query
        } else {
            ReadOperation::Scan
        },
        key_condition,
        filter_expression,
        values,
        names,
        projection,
        index_name: opt_string(obj, "indexName")?,
        limit,
        consistent_read: opt_bool(obj, "consistentRead")?.unwrap_or(false),
        scan_index_forward: opt_bool(obj, "scanIndexForward")?.unwrap_or(true),
        next_token: opt_string(obj, "nextToken")?,
    })
}

/// Every placeholder used is defined, and every one defined is used
/// (DynamoDB rejects both, with less precise messages).
fn check_placeholders(
    key_condition: &Option<String>,
    filter: &Option<String>,
    projection: &Option<String>,
    values: &HashMap<String, AttributeValue>,
    names: &HashMap<String, String>,
) -> Result<()> {
    let exprs = [
        ("keyCondition", key_condition),
        ("filterExpression", filter),
        ("projection", projection),
    ];
    let mut used_values = BTreeSet::new();
    let mut used_names = BTreeSet::new();
    for (field, expr) in exprs {
        let Some(expr) = expr else { continue };
        for v in placeholders(expr, ':') {
            if field == "projection" {
                return Err(invalid(format!(
                    "inputs.projection cannot use value placeholder {v}"
                )));
            }
            if !values.contains_key(&v) {
                return Err(invalid(format!(
                    "placeholder {v} is used in inputs.{field} but not defined in inputs.expressionAttributeValues"
                )));
            }
            used_values.insert(v);
        }
        for n in placeholders(expr, '#') {
            if !names.contains_key(&n) {
                return Err(invalid(format!(
                    "placeholder {n} is used in inputs.{field} but not defined in inputs.expressionAttributeNames"
                )));
            }
            used_names.insert(n);
        }
    }
    let mut defined: Vec<&String> = values
        .keys()
        .filter(|k| !used_values.contains(*k))
        .collect();
    defined.sort();
    if let Some(unused) = defined.first() {
        return Err(invalid(format!(
            "inputs.expressionAttributeValues defines {unused} but no expression uses it"
        )));
    }
    let mut defined: Vec<&String> = names.keys().filter(|k| !used_names.contains(*k)).collect();
    defined.sort();
    if let Some(unused) = defined.first() {
        return Err(invalid(format!(
            "inputs.expressionAttributeNames defines {unused} but no expression uses it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<ConnectorRequest> {
        parse_request(v.to_string().as_bytes())
    }

    fn err(v: Value) -> String {
        parse(v).expect_err("invalid").message
    }

    #[test]
    fn the_seed_example_parses() {
        let r = parse(json!({"inputs": {"tableName": "UserEngagement", "operation": "query",
            "keyCondition": "userId = :userId", "filterExpression": "engagementScore > :minScore",
            "expressionAttributeValues": {":userId": {"S": "123456"}, ":minScore": {"N": "50"}}}, "config": {}}))
        .expect("valid");
        let Inputs::Read(read) = r.inputs else {
            panic!("read")
        };
        assert_eq!(read.operation, ReadOperation::Query);
        assert_eq!(read.values[":minScore"], AttributeValue::N("50".into()));
        assert_eq!(r.limits, Limits::default());
    }

    #[test]
    fn precise_messages() {
        let base = |extra: Value| {
            let mut inputs = json!({"tableName": "T_1", "operation": "scan"});
            if let (Some(i), Some(e)) = (inputs.as_object_mut(), extra.as_object()) {
                i.extend(e.clone());
            }
            json!({"inputs": inputs})
        };
        assert!(
            parse_request(b"{not json")
                .expect_err("bad")
                .message
                .contains("not valid JSON")
        );
        assert!(err(json!([])).contains("must be a JSON object"));
        assert!(err(json!({"inputs": {}, "extra": 1})).contains("unknown field 'request.extra'"));
        assert!(err(base(json!({"tablename": "x"}))).contains("did you mean 'tableName'?"));
        assert!(
            err(base(json!({"filterExpresion": "a"}))).contains("did you mean 'filterExpression'?")
        );
        assert!(
            err(json!({"inputs": {"tableName": "T_1", "operation": "scna"}}))
                .contains("did you mean 'scan'?")
        );
        assert!(err(base(json!({"limit": "10"}))).contains("inputs.limit must be a whole number"));
        assert!(err(base(json!({"consistentRead": 1}))).contains("must be true or false"));
        assert!(
            err(base(json!({"keyCondition": "a = :a"})))
                .contains("does not take inputs.keyCondition")
        );
        assert!(
            err(json!({"inputs": {"tableName": "T_1", "operation": "query"}}))
                .contains("needs inputs.keyCondition")
        );
        assert!(
            err(base(json!({"filterExpression": "a > :min"})))
                .contains(":min is used in inputs.filterExpression but not defined")
        );
        assert!(err(base(json!({"filterExpression": "#s = :v", "expressionAttributeValues": {":v": {"S": "x"}}}))).contains("#s is used"));
        assert!(
            err(base(
                json!({"expressionAttributeValues": {":v": {"S": "x"}}})
            ))
            .contains("defines :v but no expression uses it")
        );
        assert!(err(base(json!({"filterExpression": "a = :v", "expressionAttributeValues": {":v": {"N": "x1"}}}))).contains("'x1' is not a DynamoDB number"));
        assert!(err(base(json!({"tableName": "a b"}))).contains("is not a DynamoDB table name"));
        assert!(
            err(json!({"inputs": {"operation": "sql", "sql": "SELECT 1", "tableName": "T"}}))
                .contains("does not apply to operation 'sql'")
        );
        assert!(
            err(json!({"inputs": {"operation": "sql", "sql": "SELECT 1"}, "config": {"maxScanned": 5}}))
                .contains("config.maxScanned applies to operations 'scan' and 'query'; for 'sql' use")
        );
        for bad in [json!(0), json!(-1), json!("10"), json!(f64::MAX)] {
            assert!(
                err(json!({"inputs": {"operation": "scan", "tableName": "T_1"}, "config": {"maxCapacity": bad}}))
                    .contains("config.maxCapacity must be a number"),
                "{bad}"
            );
        }
        assert!(
            err(json!({"inputs": {"operation": "scan", "tableName": "T_1"}, "config": {"maxScanned": 0}}))
                .contains("config.maxScanned must be a whole number from 1 to 1000000")
        );
        let ok = parse_request(
            json!({"inputs": {"operation": "scan", "tableName": "T_1"}, "config": {"maxScanned": 50, "maxCapacity": 2.5}})
                .to_string()
                .as_bytes(),
        )
        .expect("valid caps");
        assert_eq!(
            (ok.limits.max_scanned, ok.limits.max_capacity),
            (Some(50), Some(2.5))
        );
        assert!(err(json!({"inputs": {"operation": "scan", "tableName": "T_1"}, "config": {"maxItem": 5}})).contains("did you mean 'maxItems'?"));
        assert!(err(json!({"inputs": {"operation": "scan", "tableName": "T_1"}, "config": {"maxItems": 0}})).contains("config.maxItems"));
    }

    #[test]
    fn placeholder_scanning() {
        let p = placeholders("#a = :v1 AND begins_with(#b_2, :x) OR size(#a) > :v1", ':');
        assert_eq!(p.into_iter().collect::<Vec<_>>(), vec![":v1", ":x"]);
        assert_eq!(placeholders("#a.#b[0]", '#').len(), 2);
    }
}
