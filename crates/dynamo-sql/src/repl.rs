//! The interactive REPL, in the manner of datafusion-cli.

use std::io::Write;
use std::path::PathBuf;

use datafusion::prelude::SessionContext;
use rustyline::Editor;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;

use crate::error::CliError;
use crate::exec::run_text;
use crate::helper::{SqlHelper, colour_enabled};
use crate::settings::Settings;

const PROMPT: &str = "dynamo-sql> ";
const CONTINUATION: &str = "         -> ";

fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".dynamo_sql_history"))
}

/// Reads statements until `\q` or end of input. Errors are printed and the
/// loop goes on; Ctrl-C cancels the statement being typed or run.
pub async fn run(ctx: &SessionContext, mut settings: Settings) -> Result<(), CliError> {
    // At a terminal: the elapsed time after each statement, plans for a person.
    settings.timing = true;
    let colour = colour_enabled();
    let mut editor: Editor<SqlHelper, DefaultHistory> =
        Editor::new().map_err(|e| CliError::Setup(e.to_string()))?;
    editor.set_helper(Some(SqlHelper::new(ctx.clone(), colour)));
    let history = history_file();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "dynamo-sql {} — SQL over DynamoDB. \\? for help, \\q to quit.",
        env!("CARGO_PKG_VERSION")
    );
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            PROMPT
        } else {
            CONTINUATION
        };
        match editor.readline(prompt) {
            Ok(line) => {
                let trimmed = line.trim();
                if buffer.is_empty() && trimmed.starts_with('\\') {
                    let _ = editor.add_history_entry(trimmed);
                    if matches!(trimmed, "\\q" | "\\quit") {
                        break;
                    }
                    execute(ctx, trimmed, &mut settings, colour).await;
                    continue;
                }
                if trimmed.is_empty() && buffer.is_empty() {
                    continue;
                }
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                if trimmed.ends_with(';') {
                    let _ = editor.add_history_entry(buffer.as_str());
                    execute(ctx, &buffer, &mut settings, colour).await;
                    buffer.clear();
                }
            }
            Err(ReadlineError::Interrupted) => buffer.clear(),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(CliError::Setup(format!("reading input: {e}"))),
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

async fn execute(ctx: &SessionContext, text: &str, settings: &mut Settings, colour: bool) {
    let (stats, result) = {
        let stats = settings.stats;
        let run = run_text(ctx, text, settings);
        tokio::select! {
            result = run => (stats, Some(result)),
            _ = tokio::signal::ctrl_c() => (stats, None),
        }
    };
    match result {
        Some(Ok(outcomes)) => {
            for o in outcomes {
                if stats {
                    println!("{}", o.stats);
                    if o.writes.writes > 0 {
                        println!("{}", o.writes);
                    }
                }
                let rows = format!(
                    "{} row{} fetched.",
                    o.rows,
                    if o.rows == 1 { "" } else { "s" }
                );
                if settings.timing {
                    println!("{rows} Elapsed {:.3} seconds.\n", o.elapsed.as_secs_f64());
                } else {
                    println!("{rows}\n");
                }
            }
        }
        Some(Err(e)) if colour => eprintln!("\x1b[1;31mError:\x1b[0m {e}"),
        Some(Err(e)) => eprintln!("Error: {e}"),
        None => eprintln!("{}", crate::exec::interrupted(settings).await),
    }
    let _ = settings.output.flush();
    let _ = std::io::stdout().flush();
}
