//! The `Items` of a Scan or Query answer, from their JSON text straight into
//! the column builders: no `HashMap` or `String` per attribute on the way.
//!
//! Scalars go through the same [`Column::append`] as SDK items, so both paths
//! accept and convert exactly the same values. Whatever this walk does not
//! expect — a value that does not fit, a malformed answer — makes it give up
//! (`None`); the caller then decodes the page the slow way, which either
//! succeeds identically or names the problem.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;

use super::builder::{Column, Kind, NOT_A_COLUMN, Record, Val};
use super::cursor::Cursor;
use crate::value::dynamo_json::from_dynamo_json;
use crate::value::number::{fast_decimal128, fast_i64};

impl Record<'_> {
    /// Appends every item of a JSON array, at most `max` of them; the rows appended.
    pub(super) fn append_json_items(&mut self, text: &str, max: Option<usize>) -> Option<usize> {
        let mut cur = Cursor::new(text);
        cur.expect(b'[')?;
        let mut rows = 0;
        if cur.eat(b']') {
            return cur.at_end().then_some(0);
        }
        loop {
            if max == Some(rows) {
                return Some(rows);
            }
            self.append_json(&mut cur)?;
            rows += 1;
            if !cur.eat(b',') {
                cur.expect(b']')?;
                return cur.at_end().then_some(rows);
            }
        }
    }

    /// Appends one row from a JSON object of DynamoDB JSON values.
    fn append_json(&mut self, cur: &mut Cursor) -> Option<()> {
        cur.expect(b'{')?;
        self.rows += 1;
        if !cur.eat(b'}') {
            let mut position = 0;
            loop {
                let name = cur.string()?;
                cur.expect(b':')?;
                let column = match self.order.get(position) {
                    Some(&c) if c != NOT_A_COLUMN && self.index.name(c) == name => Some(c),
                    _ => self.column_of(&name),
                };
                match self.order.get_mut(position) {
                    Some(seen) => *seen = column.unwrap_or(NOT_A_COLUMN),
                    None => self.order.push(column.unwrap_or(NOT_A_COLUMN)),
                }
                position += 1;
                match column {
                    // The same attribute twice: let the full parse decide.
                    Some(c) if self.filled[c] == self.rows => return None,
                    Some(c) => {
                        self.columns[c].append_json(cur)?;
                        self.filled[c] = self.rows;
                    }
                    // A key a struct column has no field for: the full
                    // parse names it (the column must widen).
                    None if self.map_of.is_some() => return None,
                    None => match self.extra.as_mut().filter(|e| e.takes(&name)) {
                        Some(extra) => {
                            let start = cur.position();
                            cur.skip_value()?;
                            let json: serde_json::Value =
                                serde_json::from_str(cur.since(start)).ok()?;
                            extra.push(&name, from_dynamo_json(&json, &name).ok()?);
                        }
                        None => cur.skip_unread()?,
                    },
                }
                if !cur.eat(b',') {
                    cur.expect(b'}')?;
                    break;
                }
            }
        }
        self.fill_missing().ok()
    }
}

impl Column<'_> {
    /// Appends one DynamoDB JSON value (`{"S": "x"}`, `{"L": [...]}`, ...).
    fn append_json(&mut self, cur: &mut Cursor) -> Option<()> {
        let start = cur.position();
        cur.expect(b'{')?;
        let tag = cur.tag()?;
        cur.expect(b':')?;
        match (tag, &mut self.kind) {
            // The common cases, straight into the builder; the same
            // conversions as `Column::append`, which handles the rest.
            (b"S", Kind::Strings(b)) => b.append_value(&*cur.string()?),
            (b"N", Kind::Int(b, None)) => {
                let n = cur.string()?;
                match fast_i64(&n) {
                    Some(x) => b.append_value(x),
                    None => self.append(Some(Val::Num(&n)), None).ok()?,
                }
            }
            (b"N", Kind::Decimal128(b, p, s)) => {
                let n = cur.string()?;
                match fast_decimal128(&n, *p, *s) {
                    Some(x) => b.append_value(x),
                    None => self.append(Some(Val::Num(&n)), None).ok()?,
                }
            }
            (b"S", _) => {
                let s = cur.string()?;
                self.append(Some(Val::Str(&s)), None).ok()?;
            }
            (b"N", _) => {
                let n = cur.string()?;
                self.append(Some(Val::Num(&n)), None).ok()?;
            }
            (b"B", _) => {
                let bytes = base64(cur)?;
                self.append(Some(Val::Bin(&bytes)), None).ok()?;
            }
            (b"BOOL", _) => {
                let b = AttributeValue::Bool(cur.boolean()?);
                self.append(Some(Val::Attr(&b)), None).ok()?;
            }
            (b"NULL", _) => {
                cur.boolean()?;
                self.append(None, None).ok()?;
            }
            (b"L", Kind::List { .. }) => self.append_list(cur, None)?,
            (b"SS" | b"NS" | b"BS", Kind::List { .. }) => self.append_list(cur, Some(tag[0]))?,
            (
                b"M",
                Kind::Struct {
                    validity, record, ..
                },
            ) => {
                record.append_json(cur)?;
                validity.append_non_null();
            }
            _ => {
                // Documents in JSON columns, and values that do not fit (for
                // the message): through an SDK value.
                cur.skip_value()?;
                cur.expect(b'}')?;
                let json: serde_json::Value = serde_json::from_str(cur.since(start)).ok()?;
                let attr = from_dynamo_json(&json, "value").ok()?;
                return self.append(Val::Attr(&attr).present(), Some(&attr)).ok();
            }
        }
        cur.expect(b'}')
    }

    /// Appends a list (`set` = `b'S'`, `b'N'` or `b'B'` for a set's plain members).
    fn append_list(&mut self, cur: &mut Cursor, set: Option<u8>) -> Option<()> {
        let Kind::List {
            offsets,
            validity,
            child,
            ..
        } = &mut self.kind
        else {
            return None;
        };
        cur.expect(b'[')?;
        let mut members = 0usize;
        if !cur.eat(b']') {
            loop {
                match set {
                    None => child.append_json(cur)?,
                    Some(b'S') => child.append(Some(Val::Str(&cur.string()?)), None).ok()?,
                    Some(b'N') => child.append(Some(Val::Num(&cur.string()?)), None).ok()?,
                    Some(_) => child.append(Some(Val::Bin(&base64(cur)?)), None).ok()?,
                }
                members += 1;
                if !cur.eat(b',') {
                    cur.expect(b']')?;
                    break;
                }
            }
        }
        let end = offsets.last()?.checked_add(i32::try_from(members).ok()?)?;
        offsets.push(end);
        validity.append_non_null();
        Some(())
    }
}

/// A `B` value: its base64 text, decoded.
fn base64(cur: &mut Cursor) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(cur.string()?.as_bytes())
        .ok()
}
