//! A JSON cursor over a DynamoDB answer: just enough JSON to walk the
//! `Items` array, read strings (borrowed when they hold no escapes) and skip
//! what no column asks for. Anything unexpected answers `None`, and the caller
//! falls back to a full parse that explains the problem.

use std::borrow::Cow;
use std::ops::Range;

/// Deepest nesting walked; DynamoDB documents allow 32 levels.
const MAX_DEPTH: usize = 64;

/// A position in a JSON text.
pub(super) struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    /// Byte offset of the next character.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The text from `start` to here.
    pub fn since(&self, start: usize) -> &'a str {
        &self.text[start..self.pos]
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not whitespace, without consuming it.
    pub fn peek(&mut self) -> Option<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    /// Consumes `c` if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `c`, or answers `None`.
    pub fn expect(&mut self, c: u8) -> Option<()> {
        self.eat(c).then_some(())
    }

    /// True when only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Consumes `true` or `false`.
    pub fn boolean(&mut self) -> Option<bool> {
        self.peek()?;
        let rest = &self.bytes()[self.pos..];
        if rest.starts_with(b"true") {
            self.pos += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.pos += 5;
            Some(false)
        } else {
            None
        }
    }

    /// Consumes a string, borrowed unless it holds escapes.
    pub fn string(&mut self) -> Option<Cow<'a, str>> {
        // Answers are compact: the quote is usually right here.
        if self.bytes().get(self.pos) == Some(&b'"') {
            self.pos += 1;
        } else {
            self.expect(b'"')?;
        }
        let b = self.bytes();
        let start = self.pos;
        let mut i = start + plain_run(&b[start..])?;
        if b[i] == b'"' {
            self.pos = i + 1;
            return Some(Cow::Borrowed(&self.text[start..i]));
        }
        let mut out = String::with_capacity(i - start + 16);
        out.push_str(&self.text[start..i]);
        loop {
            match b[i] {
                b'"' => {
                    self.pos = i + 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    let (c, used) = unescape(&b[i + 1..])?;
                    out.push(c);
                    i += 1 + used;
                }
                _ => return None, // a raw control character
            }
            // Quotes, backslashes and control characters are ASCII, never
            // inside a multi-byte character: the run is whole UTF-8.
            let run = plain_run(&b[i..])?;
            out.push_str(&self.text[i..i + run]);
            i += run;
        }
    }

    /// Consumes a short string without escapes: a type tag such as `"SS"`.
    pub fn tag(&mut self) -> Option<&'a [u8]> {
        self.expect(b'"')?;
        let b = self.bytes();
        let start = self.pos;
        let len = b.get(start..)?.iter().take(5).position(|&c| c == b'"')?;
        self.pos = start + len + 1;
        Some(&b[start..start + len])
    }

    /// Skips one value of any kind, checking that it is well formed.
    pub fn skip_value(&mut self) -> Option<()> {
        self.skip(0)
    }

    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.expect(b':')?;
                    self.skip(depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b'}');
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    if !self.eat(b',') {
                        return self.expect(b']');
                    }
                }
            }
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.bytes()[self.pos..]
                .starts_with(b"null")
                .then(|| self.pos += 4),
            _ => self.number(),
        }
    }

    /// Skips a value nothing reads (an attribute no column asks for): arrays
    /// and objects by their strings and nesting only.
    pub fn skip_unread(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' | b'[' => self.skip_nested(),
            _ => self.skip_value(),
        }
    }

    /// Skips an array or object quickly, following only strings and nesting:
    /// for the `Items` of an answer, which the decoder then reads in full
    /// (and refuses if malformed).
    pub fn skip_nested(&mut self) -> Option<()> {
        let b = self.bytes();
        let mut i = self.pos;
        let mut depth = 0usize;
        loop {
            match *b.get(i)? {
                b'"' => {
                    i += 1;
                    loop {
                        i += plain_run(&b[i..])?;
                        match b[i] {
                            b'"' => break,
                            b'\\' => i += 2,
                            _ => i += 1,
                        }
                    }
                }
                b'[' | b'{' => depth += 1,
                b']' | b'}' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        self.pos = i + 1;
                        return Some(());
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// Skips a JSON number (DynamoDB sends counts and capacity as numbers).
    fn number(&mut self) -> Option<()> {
        let b = self.bytes();
        let start = self.pos;
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let digits = |i: &mut usize| {
            let from = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        if !digits(&mut i) {
            return None;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.pos = i;
        Some(())
    }
}

/// Length of the run of plain string bytes at the start of `b`, up to the
/// first quote, backslash or control character (`None` when there is none:
/// the string is not closed). Eight bytes at a time.
fn plain_run(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // High bit of each byte of `v` that is below `n` (`n` <= 0x80); only
    // bytes above the first such byte can be flagged wrongly, so the lowest
    // flag is always right.
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH;
    let mut i = 0;
    for chunk in b.chunks_exact(8) {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let hits = below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            | below(x, 0x20);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b[i..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

/// The character of the escape after a backslash, and the bytes it used.
fn unescape(b: &[u8]) -> Option<(char, usize)> {
    Some(match *b.first()? {
        b'"' => ('"', 1),
        b'\\' => ('\\', 1),
        b'/' => ('/', 1),
        b'b' => ('\u{8}', 1),
        b'f' => ('\u{c}', 1),
        b'n' => ('\n', 1),
        b'r' => ('\r', 1),
        b't' => ('\t', 1),
        b'u' => {
            let hi = hex4(b.get(1..5)?)?;
            if (0xD800..0xDC00).contains(&hi) {
                // A surrogate pair: `\uD83D\uDE00`.
                if b.get(5..7)? != b"\\u" {
                    return None;
                }
                let lo = hex4(b.get(7..11)?)?;
                if !(0xDC00..0xE000).contains(&lo) {
                    return None;
                }
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                (char::from_u32(c)?, 11)
            } else {
                (char::from_u32(hi)?, 5)
            }
        }
        _ => return None,
    })
}

fn hex4(b: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(b).ok()?;
    if !text.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// Where the `Items` array of a Scan or Query answer is, when the answer is a
/// well-formed JSON object that has one; `None` leaves the answer to the SDK.
pub(crate) fn items_span(body: &str) -> Option<Range<usize>> {
    let mut cur = Cursor::new(body);
    cur.expect(b'{')?;
    let mut found = None;
    if !cur.eat(b'}') {
        loop {
            let key = cur.string()?;
            cur.expect(b':')?;
            if key == "Items" {
                if found.is_some() || cur.peek()? != b'[' {
                    return None;
                }
                let start = cur.pos;
                cur.skip_nested()?;
                found = Some(start..cur.pos);
            } else {
                cur.skip_value()?;
            }
            if !cur.eat(b',') {
                cur.expect(b'}')?;
                break;
            }
        }
    }
    cur.at_end().then_some(found)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_borrow_unless_escaped_and_unescape_exactly() {
        let mut c = Cursor::new(r#""plain" "a\"b\\c\/\n\u00e9\ud83d\ude00 tail""#);
        assert!(matches!(c.string(), Some(Cow::Borrowed("plain"))));
        assert_eq!(c.string().as_deref(), Some("a\"b\\c/\né😀 tail"));
        assert!(c.at_end());
        for bad in [
            r#""open"#,
            r#""\x""#,
            r#""\ud83d""#,
            "\"tab\there\"",
            r#""\u12""#,
        ] {
            assert_eq!(Cursor::new(bad).string(), None, "{bad}");
        }
    }

    #[test]
    fn plain_runs_stop_at_the_first_special_byte_wherever_it_is() {
        for len in 0..20 {
            for special in [b'"', b'\\', b'\n', 0x00] {
                let mut text = "é".repeat(len).into_bytes();
                let at = text.len();
                text.push(special);
                text.extend_from_slice(b"x\"\\\t");
                assert_eq!(plain_run(&text), Some(at), "{len} {special}");
            }
            assert_eq!(plain_run("a".repeat(len).as_bytes()), None);
        }
    }

    #[test]
    fn skips_every_kind_of_value_and_refuses_malformed_ones() {
        let mut c = Cursor::new(r#"{"a":[1,-2.5e+3,true,false,null,{"b":{}}],"c":[]} 7"#);
        assert_eq!(c.skip_value(), Some(()));
        assert_eq!(c.skip_value(), Some(()));
        assert!(c.at_end());
        for bad in [
            "{",
            "[1,]",
            r#"{"a" 1}"#,
            "tru",
            "-",
            "1.",
            "[1 2]",
            "{1:2}",
        ] {
            let mut c = Cursor::new(bad);
            assert!(c.skip_value().is_none() || !c.at_end(), "{bad}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(Cursor::new(&deep).skip_value(), None, "too deep");
    }

    #[test]
    fn finds_the_items_array_of_an_answer() {
        let body = r#"{"Count":2,"Items":[{"pk":{"S":"a"}},{"pk":{"S":"b"}}],"ScannedCount":2,"LastEvaluatedKey":{"pk":{"S":"b"}}}"#;
        let span = items_span(body).expect("has items");
        assert_eq!(&body[span], r#"[{"pk":{"S":"a"}},{"pk":{"S":"b"}}]"#);
        assert_eq!(items_span(r#"{"Count":0,"ScannedCount":0}"#), None);
        let tricky = r#"{"Items":[{"s":{"S":"]}\\\"[{"}}],"Count":1}"#;
        assert_eq!(
            &tricky[items_span(tricky).expect("has items")],
            r#"[{"s":{"S":"]}\\\"[{"}}]"#
        );
        for bad in [
            r#"{"Items":[],"Items":[]}"#,
            r#"{"Items":[{"a":"]"#,
            r#"{"Items":{}}"#,
            r#"{"Items":[]"#,
            r#"{"Items":[]} trailing"#,
            "<html>",
            "",
        ] {
            assert_eq!(items_span(bad), None, "{bad}");
        }
    }
}
