//! What a query cost in DynamoDB, summed over every read in its plan.

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;

use crate::exec::DynamoExec;

/// DynamoDB work done by an executed plan.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReadStats {
    /// DynamoDB requests sent, retries included.
    pub requests: usize,
    /// Of these, retries after throttling or faults.
    pub retries: usize,
    /// Pages read.
    pub pages: usize,
    /// Items DynamoDB returned (after its filter).
    pub items_returned: usize,
    /// Items DynamoDB evaluated (`ScannedCount`).
    pub items_scanned: usize,
    /// Read capacity units consumed.
    pub consumed_rcu: f64,
    /// The most requests one read had in flight at once.
    pub max_in_flight: usize,
    /// DynamoDB reads (scan nodes) in the plan run by this process; 0 when
    /// the reads ran elsewhere (a cluster's executors) or there were none.
    pub reads: usize,
    /// Items the reads were estimated to evaluate before they were sent
    /// (for a read a join's keys narrowed, the narrowed read's estimate).
    pub estimated_items: f64,
    /// Read capacity units the reads were estimated to consume (likewise).
    pub estimated_rcu: f64,
    /// Values of temporal columns not in their format, read as NULL
    /// because the table asked (`on_bad_time = 'null'`).
    pub bad_time_values: usize,
}

impl ReadStats {
    /// Sums the metrics of every [`DynamoExec`] in an executed `plan`.
    pub fn of_plan(plan: &Arc<dyn ExecutionPlan>) -> Self {
        let mut stats = Self::default();
        for read in reads_in(plan) {
            stats.absorb(&Self::of_read(&read));
        }
        stats
    }

    /// [`Self::of_plan`] per DynamoDB table read, in the order first met.
    ///
    /// ```
    /// # fn f(plan: &std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan>) {
    /// for (table, stats) in dynamo_datafusion::exec::ReadStats::by_table(plan) {
    ///     println!("{table}: {:.1} RCU", stats.consumed_rcu);
    /// }
    /// # }
    /// ```
    pub fn by_table(plan: &Arc<dyn ExecutionPlan>) -> Vec<(String, Self)> {
        let mut out: Vec<(String, Self)> = Vec::new();
        for read in reads_in(plan) {
            let one = Self::of_read(&read);
            let table = read.scan_plan().table();
            match out.iter_mut().find(|(t, _)| t == table) {
                Some((_, stats)) => stats.absorb(&one),
                None => out.push((table.to_string(), one)),
            }
        }
        out
    }

    /// Adds `other`'s counts to these.
    fn absorb(&mut self, other: &Self) {
        self.requests += other.requests;
        self.retries += other.retries;
        self.pages += other.pages;
        self.items_returned += other.items_returned;
        self.items_scanned += other.items_scanned;
        self.consumed_rcu += other.consumed_rcu;
        self.max_in_flight = self.max_in_flight.max(other.max_in_flight);
        self.reads += other.reads;
        self.estimated_items += other.estimated_items;
        self.estimated_rcu += other.estimated_rcu;
        self.bad_time_values += other.bad_time_values;
    }

    /// One read's counts and estimate.
    fn of_read(read: &DynamoExec) -> Self {
        let mut stats = Self::default();
        if let Some(m) = read.metrics() {
            let count = |name: &str| m.sum_by_name(name).map(|v| v.as_usize()).unwrap_or(0);
            stats.reads = 1;
            stats.requests = count("requests");
            stats.retries = count("retries");
            stats.pages = count("pages");
            stats.items_scanned = count("scanned_count");
            stats.items_returned = m.output_rows().unwrap_or(0);
            stats.consumed_rcu = count("consumed_rcu_milli") as f64 / 1000.0;
            stats.max_in_flight = count("max_in_flight");
            stats.bad_time_values = count("bad_time_values");
            if let Some(e) = read.estimate() {
                stats.estimated_items = e.items;
                stats.estimated_rcu = e.rcu;
            }
        }
        stats
    }
}

/// Every DynamoDB read in `plan`, parents before children, first child
/// first (clones share their node's metrics).
pub(crate) fn reads_in(plan: &Arc<dyn ExecutionPlan>) -> Vec<DynamoExec> {
    let mut found = Vec::new();
    let mut visit = vec![Arc::clone(plan)];
    while let Some(node) = visit.pop() {
        if let Some(exec) = (node.as_ref() as &dyn std::any::Any).downcast_ref::<DynamoExec>() {
            found.push(exec.clone());
        }
        visit.extend(node.children().into_iter().rev().cloned());
    }
    found
}

/// A warning for each full Scan in `plan` estimated above `warn_rcu` read
/// capacity units, said before it reads.
pub(crate) fn scan_warnings(plan: &Arc<dyn ExecutionPlan>, warn_rcu: f64) -> Vec<String> {
    let mut out = Vec::new();
    for exec in reads_in(plan) {
        let plan = exec.scan_plan();
        if let Some(e) = plan.estimate().filter(|e| e.rcu > warn_rcu)
            && exec.operation() == "Scan"
        {
            out.push(format!(
                "this query Scans all of table '{}': about {:.0} items, {:.1} RCU (~${} at \
                 {} per million RRU). A condition on a key reads less; SET dynamodb.max_rcu \
                 refuses queries above a ceiling (warning threshold: dynamodb.warn_rcu = {warn_rcu})",
                plan.table(),
                e.items,
                e.rcu,
                e.usd_text(plan.price_per_million_rru()),
                plan.price_per_million_rru(),
            ));
        }
    }
    out
}

impl std::fmt::Display for ReadStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.reads == 0 {
            return write!(f, "DynamoDB: no request from this process");
        }
        write!(
            f,
            "DynamoDB: {} request{}{}, {} page{}, {} items scanned, {} returned, {:.1} RCU \
             (estimated {:.0} items, {:.1} RCU){}",
            self.requests,
            if self.requests == 1 { "" } else { "s" },
            match self.retries {
                0 => String::new(),
                n => format!(" ({n} retried)"),
            },
            self.pages,
            if self.pages == 1 { "" } else { "s" },
            self.items_scanned,
            self.items_returned,
            self.consumed_rcu,
            self.estimated_items,
            self.estimated_rcu,
            match self.max_in_flight {
                0 | 1 => String::new(),
                n => format!(", up to {n} requests in flight"),
            }
        )
    }
}
