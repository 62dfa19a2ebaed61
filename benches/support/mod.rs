//! Helpers shared by the benchmark binaries.

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue as AV, ScalarAttributeType as T};
use dynamo_testkit::{TableSpec, create_table, put_items, table_exists};

/// Error type of the bench binaries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Command-line settings common to the benches: `--smoke` (seconds-long run for
/// CI, also `BENCH_SMOKE=1`), `--items N` (repeatable), `--runs R`.
pub struct Args {
    pub smoke: bool,
    pub items: Vec<usize>,
    pub runs: usize,
    /// `--only NAME`: run only that part of a bench that has parts.
    pub only: Option<String>,
}

impl Args {
    /// Parses the process arguments with these defaults.
    pub fn parse(
        default_items: &[usize],
        default_runs: usize,
        smoke_items: usize,
    ) -> Result<Self, BoxError> {
        let mut items = Vec::new();
        let mut runs = default_runs;
        let mut only = None;
        let mut smoke = std::env::var("BENCH_SMOKE").is_ok_and(|v| v == "1");
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            match a.as_str() {
                "--smoke" => smoke = true,
                "--items" => items.push(args.next().ok_or("--items needs a number")?.parse()?),
                "--runs" => runs = args.next().ok_or("--runs needs a number")?.parse()?,
                "--only" => only = Some(args.next().ok_or("--only needs a name")?),
                // Flags cargo passes to bench binaries.
                "--bench" | "--nocapture" => {}
                other => return Err(format!("unknown argument '{other}'").into()),
            }
        }
        if smoke {
            return Ok(Self {
                smoke,
                items: vec![smoke_items],
                runs: 1,
                only,
            });
        }
        if items.is_empty() {
            items = default_items.to_vec();
        }
        Ok(Self {
            smoke,
            items,
            runs: runs.max(1),
            only,
        })
    }
}

/// The `dynamo-sql` binary built beside the bench binaries.
pub fn dynamo_sql_binary() -> Result<std::path::PathBuf, BoxError> {
    built_binary("dynamo-sql")
}

/// `dynamo-sql` reading `endpoint` as the bench client does
/// (`dynamo_testkit::local_client`: access key id `test`, the local secret,
/// us-east-1); the caller adds the output format and the statement.
pub fn local_dynamo_sql(endpoint: &str) -> Result<std::process::Command, BoxError> {
    let mut cmd = std::process::Command::new(dynamo_sql_binary()?);
    cmd.args(["--endpoint-url", endpoint])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", dynamo_testkit::LOCAL_SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    Ok(cmd)
}

/// The workspace binary `name` built beside the bench binaries.
pub fn built_binary(name: &str) -> Result<std::path::PathBuf, BoxError> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("no target directory")?;
    let bin = dir.join(name);
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} not built: cargo build --bin {name}", bin.display()).into())
    }
}

/// Median time of `runs` calls of `f`, each checked to return `expected`
/// (items or rows).
pub async fn timed<F, Fut>(runs: usize, expected: usize, mut f: F) -> Result<Duration, BoxError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, BoxError>>,
{
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let n = f().await?;
        times.push(start.elapsed());
        if n != expected {
            return Err(format!("read {n} items, expected {expected}").into());
        }
    }
    Ok(median(times))
}

/// Median of measured durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// Writes `text` to `benches/results/NAME` (created if needed) and says where.
pub fn write_result(name: &str, text: &str) -> Result<(), BoxError> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// A horizontal bar chart as SVG: one group per label, one bar per series,
/// log10 scale (values below 1 are drawn at 1).
pub fn bar_chart_svg(title: &str, series: &[&str], rows: &[(String, Vec<f64>)]) -> String {
    let colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759"];
    let label_w = 330.0;
    let plot_w = 520.0;
    let bar_h = 14.0;
    let group_h = bar_h * series.len() as f64 + 10.0;
    let height = 60.0 + group_h * rows.len() as f64 + 30.0;
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0f64, f64::max)
        .log10()
        .ceil()
        .max(1.0);
    let x = |v: f64| label_w + plot_w * (v.max(1.0).log10() / max);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"15\">{}</text>\n",
        label_w + plot_w + 80.0,
        escape(title)
    );
    for (i, name) in series.iter().enumerate() {
        let lx = label_w + 160.0 * i as f64;
        s += &format!(
            "<rect x=\"{lx}\" y=\"30\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"40\">{}</text>\n",
            colors[i % colors.len()],
            lx + 16.0,
            escape(name)
        );
    }
    for (r, (label, values)) in rows.iter().enumerate() {
        let y0 = 55.0 + group_h * r as f64;
        s += &format!(
            "<text x=\"10\" y=\"{}\">{}</text>\n",
            y0 + bar_h,
            escape(label)
        );
        for (i, v) in values.iter().enumerate() {
            let y = y0 + bar_h * i as f64;
            s += &format!(
                "<rect x=\"{label_w}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{v}</text>\n",
                (x(*v) - label_w).max(1.0),
                bar_h - 2.0,
                colors[i % colors.len()],
                x(*v) + 4.0,
                y + bar_h - 3.0
            );
        }
    }
    let axis_y = height - 20.0;
    for p in 0..=(max as u32) {
        let xp = label_w + plot_w * (f64::from(p) / max);
        s += &format!("<text x=\"{xp:.1}\" y=\"{axis_y}\" text-anchor=\"middle\">1e{p}</text>\n");
    }
    s += "</svg>\n";
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

pub const COUNTRIES: [&str; 8] = ["US", "DE", "IN", "BR", "JP", "NO", "FR", "KE"];

pub fn pk(i: usize) -> String {
    format!("user#{:05}", i / 100)
}

/// A session over `provider` as table `t`, set up like `dynamo_session`'s
/// (4 partitions, case-sensitive names, exact decimal literals, `SET
/// dynamodb.*`).
pub fn bench_session(
    provider: dynamo_datafusion::DynamoTableProvider,
) -> Result<datafusion::prelude::SessionContext, BoxError> {
    let mut config = datafusion::prelude::SessionConfig::new()
        .with_target_partitions(4)
        .with_option_extension(dynamo_datafusion::DynamoConfig::default());
    config.options_mut().sql_parser.enable_ident_normalization = false;
    config.options_mut().sql_parser.parse_float_as_decimal = true;
    let ctx = datafusion::prelude::SessionContext::new_with_config(config);
    ctx.register_table("t", std::sync::Arc::new(provider))?;
    Ok(ctx)
}

/// ~200-byte items, 100 per partition, a GSI (country, score) and an LSI (amount).
pub async fn load_bench_table(client: &Client, n: usize) -> Result<String, BoxError> {
    let table = format!("bench_pushdown_{n}");
    if table_exists(client, &table).await? {
        return Ok(table);
    }
    let spec = TableSpec::new(&table, "pk", T::S)
        .sort_key("sk", T::N)
        .global_index("byCountry", ("country", T::S), Some(("score", T::N)))
        .local_index("byAmount", ("amount", T::N));
    create_table(client, &spec).await?;
    let items = (0..n)
        .map(|i| {
            HashMap::from([
                ("pk".to_string(), AV::S(pk(i))),
                ("sk".to_string(), AV::N(i.to_string())),
                (
                    "country".to_string(),
                    AV::S(COUNTRIES[(i * 7) % COUNTRIES.len()].to_string()),
                ),
                ("score".to_string(), AV::N(((i * 7919) % 1000).to_string())),
                (
                    "amount".to_string(),
                    AV::N(format!("{}.{:02}", (i * 31) % 100, i % 100)),
                ),
                ("active".to_string(), AV::Bool(i % 3 == 0)),
                ("note".to_string(), AV::S(format!("{i:0>120}"))),
            ])
        })
        .collect();
    let start = Instant::now();
    put_items(client, &table, items).await?;
    eprintln!("loaded {n} items in {:.1} s", start.elapsed().as_secs_f64());
    Ok(table)
}

/// This bench binary started again with `args` (its `--serve …` mode) in
/// its own process, which prints the loopback port it serves on: the child
/// and its endpoint URL.
pub fn serving_child(args: &[&str]) -> Result<(std::process::Child, String), BoxError> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).read_line(&mut line)?;
    let port: u16 = line.trim().parse()?;
    Ok((child, format!("http://127.0.0.1:{port}")))
}
