//! The oracle process: DuckDB behind `tests/oracle/duckdb_oracle.py`, spoken
//! to in JSON lines over its standard input and output.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value as J, json};

use super::canon::{Canon, from_json};

pub struct Oracle {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Oracle {
    /// Starts the oracle with the project's Python (`PROJECT_PYTHON`, set by
    /// scripts/test.sh, with the pinned DuckDB package).
    pub fn start() -> Oracle {
        let python = std::env::var("PROJECT_PYTHON").unwrap_or_else(|_| {
            panic!(
                "PROJECT_PYTHON is not set: run scripts/test.sh (or scripts/fuzz-sql.sh), \
                 or set it to a Python with the packages of python/requirements.txt"
            )
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/duckdb_oracle.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the DuckDB oracle with {python}: {e}"));
        let input = child.stdin.take().expect("stdin");
        let output = BufReader::new(child.stdout.take().expect("stdout"));
        Oracle {
            child,
            input,
            output,
        }
    }

    fn ask(&mut self, request: &J) -> Result<J, String> {
        writeln!(self.input, "{request}").map_err(|e| format!("oracle write: {e}"))?;
        self.input
            .flush()
            .map_err(|e| format!("oracle flush: {e}"))?;
        let mut line = String::new();
        self.output
            .read_line(&mut line)
            .map_err(|e| format!("oracle read: {e}"))?;
        if line.is_empty() {
            return Err("the oracle process ended".into());
        }
        let answer: J = serde_json::from_str(&line).map_err(|e| format!("oracle answer: {e}"))?;
        if answer["ok"] == J::Bool(true) {
            Ok(answer)
        } else {
            Err(answer["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string())
        }
    }

    /// Loads a table (see `Table::oracle_load`); panics if DuckDB refuses it.
    pub fn load(&mut self, request: &J) {
        if let Err(e) = self.ask(request) {
            panic!("the oracle could not load {}: {e}", request["table"]);
        }
    }

    /// DuckDB's answer, normalised; `Err` when DuckDB refuses the statement.
    pub fn query(&mut self, sql: &str) -> Result<Vec<Vec<Canon>>, String> {
        let answer = self.ask(&json!({"op": "query", "sql": sql}))?;
        answer["rows"]
            .as_array()
            .ok_or("rows")?
            .iter()
            .map(|row| {
                row.as_array()
                    .ok_or_else(|| "row".to_string())?
                    .iter()
                    .map(from_json)
                    .collect()
            })
            .collect()
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
