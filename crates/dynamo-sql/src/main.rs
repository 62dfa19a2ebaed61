//! `dynamo-sql`: SQL over Amazon DynamoDB, as a REPL or a one-shot command.
//!
//! ```text
//! dynamo-sql mirror create|sync|follow|status ...   (Delta Lake mirrors)
//! dynamo-sql [--endpoint-url URL] [--region R] [--profile P] [-c SQL]... [-f FILE]...
//!            [--format table|csv|json|ndjson] [--maxrows N] [--stats]
//!            [--schema-cache DIR | --no-schema-cache] [--schema-ttl SECONDS] [--extra-attributes]
//! ```

mod command;
mod error;
mod exec;
mod explain;
mod helper;
mod mirror;
mod print;
mod progress;
mod repl;
mod session;
mod settings;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use dynamo_datafusion::ConnectionOptions;

use crate::print::Format;

/// SQL over Amazon DynamoDB tables, on Apache DataFusion.
///
/// Every table of the account and region is queryable by its exact
/// (case-sensitive) name. Without -c or -f, starts an interactive REPL.
#[derive(Debug, Parser)]
#[command(name = "dynamo-sql", version)]
struct Args {
    /// Keep a Delta Lake mirror of a table (`dynamo-sql mirror --help`).
    #[command(subcommand)]
    command: Option<Subcommand>,

    /// DynamoDB endpoint, e.g. http://127.0.0.1:8000 for a local server.
    #[arg(long, global = true, value_name = "URL", value_parser = dynamo_datafusion::parse_endpoint_url)]
    endpoint_url: Option<String>,

    /// AWS region (default: from the environment or profile).
    #[arg(long, global = true, value_name = "R")]
    region: Option<String>,

    /// Named profile from the AWS config and credentials files.
    #[arg(long, global = true, value_name = "P")]
    profile: Option<String>,

    /// SQL (or a backslash command) to run; may be repeated. Statements end with ';'.
    /// Any text is SQL, including text that starts with '-' (a `-- comment`).
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SQL",
        allow_hyphen_values = true
    )]
    commands: Vec<String>,

    /// File of SQL statements to run; may be repeated.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    files: Vec<PathBuf>,

    /// File of SQL statements run at startup, before the REPL or -c/-f
    /// (as datafusion-cli's --rc): declared tables, settings. May be repeated.
    #[arg(short = 'r', long = "rc", value_name = "FILE")]
    rc: Vec<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Rows a table shows at most (the rest are counted in a note); 0: all.
    #[arg(long, value_name = "N", default_value_t = 0)]
    maxrows: usize,

    /// After each statement, print what it cost in DynamoDB (requests, pages,
    /// items scanned and returned, read capacity) — on stderr with -c/-f.
    #[arg(long)]
    stats: bool,

    /// Directory of cached table schemas (default: the user's cache
    /// directory, dynamo-sql/schemas). A cached schema is used instead of
    /// sampling the table again.
    #[arg(long, value_name = "DIR", env = "DYNAMO_SQL_SCHEMA_CACHE")]
    schema_cache: Option<PathBuf>,

    /// Sample every table afresh; read and write no cached schema.
    #[arg(long, conflicts_with = "schema_cache")]
    no_schema_cache: bool,

    /// Seconds a cached schema is used before the table is sampled again.
    #[arg(long, value_name = "SECONDS", default_value_t = 86_400)]
    schema_ttl: u64,

    /// Give every table a column `_extra`: each item's attributes that have
    /// no column of their own, as a JSON object of DynamoDB JSON values.
    #[arg(long)]
    extra_attributes: bool,

    /// Run every statement on a Ballista cluster of `dynamo-ballista`
    /// processes (scheduler address, e.g. df://127.0.0.1:50050). They read
    /// DynamoDB with their own credentials; none are sent.
    #[arg(long, value_name = "df://HOST:PORT", env = "DYNAMO_SQL_CLUSTER")]
    cluster: Option<String>,
}

/// Commands besides SQL.
#[derive(Debug, clap::Subcommand)]
enum Subcommand {
    /// Delta Lake mirrors of DynamoDB tables, kept up to date from their
    /// streams: queries read them instead of the table
    /// (`OPTIONS (mirror 'PATH')`).
    #[command(subcommand)]
    Mirror(mirror::MirrorCommand),
}

fn main() -> ExitCode {
    // Threads with room for the deepest plan a statement may make
    // (`dynamo_datafusion::statement::MAX_OPERATORS`).
    dynamo_datafusion::statement::run_main(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    match main_inner(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn main_inner(args: Args) -> Result<(), error::CliError> {
    let connection = ConnectionOptions::default()
        .with_endpoint_url(args.endpoint_url)
        .with_region(args.region)
        .with_profile(args.profile);
    if let Some(Subcommand::Mirror(command)) = args.command {
        return mirror::run(command, &connection).await;
    }
    let cache = if args.no_schema_cache {
        session::SchemaCacheChoice::Off
    } else {
        session::SchemaCacheChoice::Dir(args.schema_cache)
    };
    let tables = session::TableSettings {
        schema_ttl_secs: args.schema_ttl,
        extra_attributes: args.extra_attributes,
    };
    let ctx = session::build_context(&connection, cache, tables, args.cluster.as_deref()).await?;
    let mut settings = settings::Settings::new(args.format);
    settings.stats = args.stats;
    settings.maxrows = (args.maxrows > 0).then_some(args.maxrows);
    settings.progress = progress::enabled();
    settings.readable_plans = std::io::IsTerminal::is_terminal(&std::io::stdout());
    settings.cluster = args.cluster.clone();
    for file in &args.rc {
        let text = std::fs::read_to_string(file).map_err(|e| error::CliError::Io {
            what: format!("reading {}", file.display()),
            source: e,
        })?;
        exec::run_text(&ctx, &text, &mut settings).await?;
    }
    if args.commands.is_empty() && args.files.is_empty() {
        return repl::run(&ctx, settings).await;
    }
    let report = |outcomes: Vec<exec::Outcome>, settings: &settings::Settings| {
        for o in outcomes {
            if settings.stats {
                eprintln!("{}", o.stats);
                if o.writes.writes > 0 {
                    eprintln!("{}", o.writes);
                }
            }
            if settings.timing {
                eprintln!("Time: {:.3} ms", o.elapsed.as_secs_f64() * 1e3);
            }
        }
    };
    let mut texts = args.commands.clone();
    for file in &args.files {
        texts.push(
            std::fs::read_to_string(file).map_err(|e| error::CliError::Io {
                what: format!("reading {}", file.display()),
                source: e,
            })?,
        );
    }
    for sql in &texts {
        let run = exec::run_text(&ctx, sql, &mut settings);
        let outcomes = tokio::select! {
            outcomes = run => outcomes?,
            _ = tokio::signal::ctrl_c() => {
                return Err(error::CliError::Interrupted(exec::interrupted(&settings).await));
            }
        };
        report(outcomes, &settings);
    }
    use std::io::Write as _;
    settings.output.flush().map_err(|e| error::CliError::Io {
        what: "writing output".to_string(),
        source: e,
    })?;
    Ok(())
}
