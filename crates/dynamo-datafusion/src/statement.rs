//! Statements from text, bounded before they are parsed.
//!
//! The SQL parser nests parentheses and function calls only 50 deep, but
//! builds a chain of binary operators (`a = 1 OR a = 2 OR …`, `1 + 1 + …`)
//! iteratively, as a tree as deep as the chain is long. Everything after
//! the parser — cloning the statement, planning, optimizing, even dropping
//! it — walks that tree recursively, and a chain of a few thousand operators
//! overflows a thread's stack: the process aborts, and a server with it. So
//! the text is counted first: a statement with more than [`MAX_OPERATORS`]
//! operators is refused with a clear error. `dynamo-sql` and the connector
//! parse every statement through [`parse_statement`]; an application that
//! parses SQL itself from untrusted sources should call
//! [`check_complexity`] first.

use std::future::Future;

use datafusion::config::Dialect;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// Most operators (arithmetic, comparison, `AND`/`OR`/`NOT`, `LIKE`, `IS`,
/// `BETWEEN`, subscripts, `UNION`/`INTERSECT`/`EXCEPT`, `JOIN`) one statement
/// text may hold. The 22 TPC-H queries hold at most 70; a chain this long
/// plans within [`PLANNING_THREAD_STACK`] in a debug build.
pub const MAX_OPERATORS: usize = 1_000;

/// The stack of each thread that plans statements of up to
/// [`MAX_OPERATORS`] operators: the binaries' Tokio runtimes use it (a
/// default 2 MiB worker thread overflows on a chain of a few hundred in a
/// debug build). Memory is reserved, not used, until a deep plan needs it.
pub const PLANNING_THREAD_STACK: usize = 16 << 20;

/// A multi-threaded Tokio runtime whose threads have
/// [`PLANNING_THREAD_STACK`] of stack, for a binary that plans statements.
pub fn planning_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(PLANNING_THREAD_STACK)
        .build()
}

/// Runs a binary's async `main` on a [`planning_runtime`]; a runtime that
/// cannot start is a failed exit, its reason on standard error.
pub fn run_main(main: impl Future<Output = std::process::ExitCode>) -> std::process::ExitCode {
    match planning_runtime() {
        Ok(runtime) => runtime.block_on(main),
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The most operators that can nest a statement's tree (see the module
/// documentation) in any one statement of `sql` (statements end at `;`);
/// `None` when the text does not tokenize (the parser then says why).
pub fn count_operators(sql: &str) -> Option<usize> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql).tokenize().ok()?;
    Some(
        tokens
            .split(|t| *t == Token::SemiColon)
            .map(|statement| statement.iter().filter(|t| nests(t)).count())
            .max()
            .unwrap_or(0),
    )
}

fn nests(token: &Token) -> bool {
    match token {
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship
        | Token::Ampersand
        | Token::Pipe
        | Token::Caret
        | Token::ShiftLeft
        | Token::ShiftRight
        | Token::Arrow
        | Token::LongArrow
        | Token::DoubleColon
        | Token::LBracket => true,
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::NOT
                | Keyword::XOR
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::IS
                | Keyword::BETWEEN
                | Keyword::UNION
                | Keyword::INTERSECT
                | Keyword::EXCEPT
                | Keyword::JOIN
        ),
        _ => false,
    }
}

/// Refuses a statement text with more than [`MAX_OPERATORS`] operators.
///
/// ```
/// use dynamo_datafusion::statement::check_complexity;
///
/// assert!(check_complexity("SELECT * FROM t WHERE a = 1 OR a = 2").is_ok());
/// let chain = format!("SELECT 1{}", " + 1".repeat(5_000));
/// let e = check_complexity(&chain).unwrap_err().to_string();
/// assert!(e.contains("5000 operators"), "{e}");
/// ```
pub fn check_complexity(sql: &str) -> Result<()> {
    match count_operators(sql) {
        Some(n) if n > MAX_OPERATORS => Err(DataFusionError::Plan(format!(
            "statement too complex: it holds {n} operators, at most {MAX_OPERATORS} are accepted in one statement \
             (a chain of operators nests the plan as deep as it is long): write \
             `x = 1 OR x = 2 OR …` as `x IN (1, 2, …)`, or split the statement"
        ))),
        _ => Ok(()),
    }
}

/// Parses one statement of `sql` in `state`'s SQL dialect settings, after
/// [`check_complexity`].
pub fn parse_statement(state: &SessionState, sql: &str) -> Result<Statement> {
    check_complexity(sql)?;
    state.sql_to_statement(sql, &Dialect::Generic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_are_counted_and_lists_are_not() {
        assert_eq!(count_operators("SELECT a FROM t"), Some(0));
        assert_eq!(
            count_operators("SELECT a + 1 FROM t WHERE b = 'x' AND c LIKE 'y%' OR NOT d"),
            Some(6)
        );
        let in_list = format!(
            "SELECT k FROM t WHERE k IN ({})",
            (0..10_000)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(count_operators(&in_list), Some(0));
        // Operators inside strings and comments are text, not operators.
        assert_eq!(count_operators("SELECT '1 + 1 OR 2' -- a = b\n"), Some(0));
        assert_eq!(count_operators("SELECT 'unterminated"), None);
        // Each statement of a script counts on its own.
        assert_eq!(count_operators("SELECT 1 + 1; SELECT 1 + 1 + 1;"), Some(2));
    }

    #[test]
    fn a_chain_at_the_limit_passes_and_one_past_it_is_refused() {
        let chain = |n: usize| format!("SELECT 1{}", " + 1".repeat(n));
        assert!(check_complexity(&chain(MAX_OPERATORS)).is_ok());
        let e = check_complexity(&chain(MAX_OPERATORS + 1))
            .expect_err("past the limit")
            .to_string();
        assert!(e.contains("statement too complex"), "{e}");
        assert!(e.contains("x IN (1, 2, …)"), "{e}");
    }
}
