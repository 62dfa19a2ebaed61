//! Progress of a long read: after a statement has run for a second, one
//! line on standard error, updated in place — items read, pages, read
//! capacity so far, items per second, and for reads with an estimate
//! (a Scan's is DescribeTable's item count) how far along it is. Cleared
//! when the result prints. Shown only when standard output and standard
//! error are both terminals: never in a pipe, a file or a script's log.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::physical_plan::ExecutionPlan;
use dynamo_datafusion::exec::ReadStats;
use dynamo_datafusion::write::WriteStats;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a statement runs before its progress shows.
const SHOW_AFTER: Duration = Duration::from_secs(1);
/// How often the line is updated.
const EVERY: Duration = Duration::from_millis(200);

/// True when progress may be drawn: both outputs are terminals.
pub fn enabled() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// The progress of a write statement: items written so far and their capacity.
pub fn write_line(stats: &WriteStats) -> String {
    format!(
        "{} items written · {:.1} WCU",
        grouped(stats.items_written as f64),
        stats.consumed_wcu
    )
}

/// The line for `stats` after `elapsed`:
/// `45,200 items read · 23 pages · 88.5 RCU · 12,400 items/s · 60% of ~75,000 · ~3 s left`.
pub fn line(stats: &ReadStats, elapsed: Duration) -> String {
    if stats.reads == 0 {
        // The reads run elsewhere (a cluster's executors): their figures
        // are not here, the time is.
        return format!(
            "running on the cluster · {}",
            duration(elapsed.as_secs_f64())
        );
    }
    let secs = elapsed.as_secs_f64().max(1e-3);
    let read = stats.items_scanned as f64;
    let rate = read / secs;
    let mut text = format!(
        "{} items read · {} page{} · {:.1} RCU · {} items/s",
        grouped(read),
        stats.pages,
        if stats.pages == 1 { "" } else { "s" },
        stats.consumed_rcu,
        grouped(rate)
    );
    let expected = stats.estimated_items;
    if expected >= 1.0 && read < expected {
        text.push_str(&format!(
            " · {:.0}% of ~{}",
            100.0 * read / expected,
            grouped(expected)
        ));
        if rate > 0.0 {
            let left = (expected - read) / rate;
            text.push_str(&format!(" · ~{} left", duration(left)));
        }
    }
    text
}

/// `12,345`.
fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `3 s`, `2 min 5 s`.
fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

/// A progress line watching one running plan; cleared when dropped.
pub struct Progress {
    bar: ProgressBar,
    /// Set, under its lock, when the line is cleared: the watcher draws only
    /// while holding the lock and finding it unset, so nothing is drawn
    /// after the line is cleared (a statement cancelled with Ctrl-C leaves
    /// no line behind).
    cleared: Arc<std::sync::Mutex<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Watches `plan`'s reads, drawing after [`SHOW_AFTER`].
    pub fn watch(plan: Arc<dyn ExecutionPlan>) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
            bar.set_style(style);
        }
        let cleared = Arc::new(std::sync::Mutex::new(false));
        let (shown, done) = (bar.clone(), Arc::clone(&cleared));
        let start = Instant::now();
        let task = tokio::spawn(async move {
            tokio::time::sleep(SHOW_AFTER).await;
            {
                let cleared = done.lock().unwrap_or_else(|p| p.into_inner());
                if *cleared {
                    return;
                }
                shown.set_draw_target(ProgressDrawTarget::stderr());
                shown.enable_steady_tick(Duration::from_millis(100));
            }
            loop {
                {
                    let cleared = done.lock().unwrap_or_else(|p| p.into_inner());
                    if *cleared {
                        return;
                    }
                    let mut text = line(&ReadStats::of_plan(&plan), start.elapsed());
                    let writes = WriteStats::of_plan(&plan);
                    if writes.writes > 0 {
                        text = format!("{} · {text}", write_line(&writes));
                    }
                    shown.set_message(text);
                }
                tokio::time::sleep(EVERY).await;
            }
        });
        Self { bar, cleared, task }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        let mut cleared = self.cleared.lock().unwrap_or_else(|p| p.into_inner());
        *cleared = true;
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(scanned: usize, pages: usize, rcu: f64, estimated: f64) -> ReadStats {
        ReadStats {
            items_scanned: scanned,
            pages,
            consumed_rcu: rcu,
            estimated_items: estimated,
            reads: 1,
            ..ReadStats::default()
        }
    }

    #[test]
    fn the_line_says_what_was_read_how_fast_and_how_far() {
        assert_eq!(
            line(&stats(45_200, 23, 88.5, 75_000.0), Duration::from_secs(4)),
            "45,200 items read · 23 pages · 88.5 RCU · 11,300 items/s · 60% of ~75,000 · ~3 s left"
        );
        // No estimate, or read past it: no share, no time left.
        assert_eq!(
            line(&stats(1, 1, 0.5, 0.0), Duration::from_secs(2)),
            "1 items read · 1 page · 0.5 RCU · 0 items/s"
        );
        assert_eq!(
            line(&stats(2_000, 2, 1.0, 1_500.0), Duration::from_secs(1)),
            "2,000 items read · 2 pages · 1.0 RCU · 2,000 items/s"
        );
        assert_eq!(duration(125.0), "2 min 5 s");
        // Reads on a cluster: no figures here, only the time.
        let remote = ReadStats::default();
        assert_eq!(
            line(&remote, Duration::from_secs(3)),
            "running on the cluster · 3 s"
        );
    }
}
