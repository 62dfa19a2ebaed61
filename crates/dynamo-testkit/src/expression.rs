//! DynamoDB's expression grammar, as a checker: condition expressions
//! (FilterExpression), key conditions and projections, with `#name` and
//! `:value` placeholders. Each check panics where the text breaks the
//! grammar, naming the position and what was expected there. The fuzz
//! checks of the planner's requests use it (`dynamo_datafusion::fuzzing`).

use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Value(String),
    Word(String),
    Number(String),
    Sym(String),
}

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let word_end = |from: usize| {
            let mut j = from;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            j
        };
        match c {
            ' ' => i += 1,
            '#' | ':' => {
                let j = word_end(i + 1);
                assert!(j > i + 1, "bare '{c}' in {text:?}");
                let t: String = chars[i..j].iter().collect();
                out.push(if c == '#' {
                    Token::Name(t)
                } else {
                    Token::Value(t)
                });
                i = j;
            }
            '0'..='9' => {
                let j = word_end(i);
                out.push(Token::Number(chars[i..j].iter().collect()));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let j = word_end(i);
                out.push(Token::Word(chars[i..j].iter().collect()));
                i = j;
            }
            '<' | '>' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::Sym(format!("{c}=")));
                i += 2;
            }
            '<' if chars.get(i + 1) == Some(&'>') => {
                out.push(Token::Sym("<>".into()));
                i += 2;
            }
            '=' | '<' | '>' | '(' | ')' | ',' | '.' | '[' | ']' => {
                out.push(Token::Sym(c.to_string()));
                i += 1;
            }
            other => panic!("character {other:?} in expression {text:?}"),
        }
    }
    out
}

/// A recursive-descent parser of DynamoDB's condition-expression grammar.
struct Parser<'a> {
    toks: &'a [Token],
    pos: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "expected {what} at token {} of {:?}: {:?}",
            self.pos,
            self.text,
            self.peek()
        )
    }

    fn next(&mut self) -> Token {
        let t = self.peek().cloned().unwrap_or_else(|| self.fail("more"));
        self.pos += 1;
        t
    }

    fn sym(&mut self, s: &str) {
        if self.next() != Token::Sym(s.into()) {
            self.fail(s)
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Token::Sym(x)) if x == s)
    }

    /// condition := and (OR and)*
    fn condition(&mut self) {
        self.and();
        while self.is_word("OR") {
            self.pos += 1;
            self.and();
        }
    }

    fn and(&mut self) {
        self.not();
        while self.is_word("AND") {
            self.pos += 1;
            self.not();
        }
    }

    fn not(&mut self) {
        if self.is_word("NOT") {
            self.pos += 1;
            self.not();
        } else {
            self.primary();
        }
    }

    fn primary(&mut self) {
        if self.is_sym("(") {
            self.pos += 1;
            self.condition();
            self.sym(")");
            return;
        }
        for f in [
            "attribute_exists",
            "attribute_not_exists",
            "attribute_type",
            "begins_with",
            "contains",
        ] {
            if self.is_word(f) {
                self.pos += 1;
                self.sym("(");
                self.path();
                if !f.starts_with("attribute_") || f == "attribute_type" {
                    self.sym(",");
                    self.operand();
                }
                self.sym(")");
                return;
            }
        }
        self.operand();
        if self.is_word("BETWEEN") {
            self.between(Self::operand);
        } else if self.is_word("IN") {
            self.pos += 1;
            self.sym("(");
            let mut n = 1;
            self.operand();
            while self.is_sym(",") {
                self.pos += 1;
                self.operand();
                n += 1;
            }
            self.sym(")");
            assert!(n <= 100, "IN with {n} operands in {:?}", self.text);
        } else {
            match self.next() {
                Token::Sym(s) if ["=", "<>", "<", "<=", ">", ">="].contains(&s.as_str()) => {}
                _ => self.fail("a comparator"),
            }
            self.operand();
        }
    }

    /// `BETWEEN a AND b` after its left side, each bound read by `bound`.
    fn between(&mut self, bound: fn(&mut Self)) {
        self.pos += 1;
        bound(self);
        if !self.is_word("AND") {
            self.fail("AND of BETWEEN");
        }
        self.pos += 1;
        bound(self);
    }

    /// A value placeholder (`:v0`).
    fn value(&mut self) {
        if !matches!(self.next(), Token::Value(_)) {
            self.fail("a value placeholder");
        }
    }

    fn operand(&mut self) {
        match self.peek() {
            Some(Token::Value(_)) => self.pos += 1,
            _ if self.is_word("size") => {
                self.pos += 1;
                self.sym("(");
                self.path();
                self.sym(")");
            }
            _ => self.path(),
        }
    }

    /// path := name ('.' name | '[' number ']')*; names are placeholders.
    fn path(&mut self) {
        match self.next() {
            Token::Name(_) => {}
            _ => self.fail("an attribute name placeholder"),
        }
        loop {
            if self.is_sym(".") {
                self.pos += 1;
                match self.next() {
                    Token::Name(_) => {}
                    _ => self.fail("a name after '.'"),
                }
            } else if self.is_sym("[") {
                self.pos += 1;
                match self.next() {
                    Token::Number(_) => {}
                    _ => self.fail("a list index"),
                }
                self.sym("]");
            } else {
                return;
            }
        }
    }

    fn end(&self) {
        if self.pos != self.toks.len() {
            self.fail("the end");
        }
    }
}

/// Parses all of `text` by `rule`; panics where it breaks DynamoDB's grammar.
fn check_with(text: &str, rule: impl FnOnce(&mut Parser)) {
    let toks = tokens(text);
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        text,
    };
    rule(&mut p);
    p.end();
}

/// A condition (FilterExpression) in DynamoDB's grammar.
pub fn check_condition(text: &str) {
    check_with(text, |p| p.condition());
}

/// A KeyConditionExpression: `pk = :v [AND sort-key condition]`.
pub fn check_key_condition(text: &str) {
    check_with(text, key_condition);
}

fn key_condition(p: &mut Parser) {
    p.path();
    p.sym("=");
    p.value();
    if p.is_word("AND") {
        p.pos += 1;
        if p.is_word("begins_with") {
            p.pos += 1;
            p.sym("(");
            p.path();
            p.sym(",");
            p.value();
            p.sym(")");
        } else {
            p.path();
            if p.is_word("BETWEEN") {
                // Key conditions compare with values only.
                p.between(Parser::value);
            } else {
                match p.next() {
                    Token::Sym(s) if ["=", "<", "<=", ">", ">="].contains(&s.as_str()) => {}
                    _ => p.fail("a sort-key comparator (not <>)"),
                }
                p.value();
            }
        }
    }
}

/// A ProjectionExpression: paths separated by commas.
pub fn check_projection(text: &str) {
    check_with(text, |p| {
        p.path();
        while p.is_sym(",") {
            p.pos += 1;
            p.path();
        }
    });
}

/// The `#name` and `:value` placeholders `text` uses.
pub fn placeholders(text: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut names, mut values) = (BTreeSet::new(), BTreeSet::new());
    for token in tokens(text) {
        match token {
            Token::Name(n) => {
                names.insert(n);
            }
            Token::Value(v) => {
                values.insert(v);
            }
            _ => {}
        }
    }
    (names, values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_key_conditions_and_projections_parse() {
        check_condition(
            "(#n0 = :v0 OR attribute_not_exists(#n1)) AND NOT #n2.#n3[2] BETWEEN :v1 AND :v2",
        );
        check_condition("size(#n0) >= :v0 AND #n1 IN (:v1, :v2) AND contains(#n2, :v3)");
        check_key_condition("#n0 = :v0 AND begins_with(#n1, :v1)");
        check_key_condition("#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2");
        check_projection("#n0, #n1.#n2, #n3[0]");
        let (names, values) = placeholders("#n0 = :v0 AND #n1 < :v10");
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["#n0", "#n1"]);
        assert_eq!(values.into_iter().collect::<Vec<_>>(), [":v0", ":v10"]);
    }

    #[test]
    #[should_panic(expected = "sort-key comparator")]
    fn a_key_condition_never_compares_with_not_equal() {
        check_key_condition("#n0 = :v0 AND #n1 <> :v1");
    }

    #[test]
    #[should_panic]
    fn an_unbalanced_condition_is_refused() {
        check_condition("(#n0 = :v0");
    }
}
