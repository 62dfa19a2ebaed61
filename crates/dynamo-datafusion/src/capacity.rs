//! A read-capacity budget: a token bucket in RCU, fed by the `ConsumedCapacity`
//! each response reports and shared by every partition of a query.
//!
//! The cost of a request is known only from its response, so the bucket goes
//! into debt: a request may start while the balance is not negative, its cost
//! is charged when it returns, and the next request waits until the debt is
//! paid back at the configured rate. Over a sustained read the consumed rate
//! converges on the limit; pages are sized so that one page costs a fraction
//! of a second of budget, which keeps the rate steady.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds of budget one page should cost at most.
const PAGE_SECONDS: f64 = 0.2;
/// Items in the first page of a limited read, before the cost per item is known.
const FIRST_PAGE_ITEMS: i32 = 10;
/// Largest `Limit` a limited read sets.
const MAX_PAGE_ITEMS: i32 = 10_000;

/// The pure token bucket, on a clock in seconds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TokenBucket {
    /// RCU per second.
    rate: f64,
    /// Largest positive balance (a short idle time earns no large burst).
    burst: f64,
    /// Current balance; negative while in debt.
    tokens: f64,
    /// Clock reading of the last refill.
    last: f64,
    /// Smoothed RCU per item evaluated, once a page has reported it.
    per_item: Option<f64>,
}

impl TokenBucket {
    /// A bucket for `rate` RCU/s, empty (balance 0) at time `now`.
    pub(crate) fn new(rate: f64, now: f64) -> Self {
        Self {
            rate,
            burst: rate * PAGE_SECONDS,
            tokens: 0.0,
            last: now,
            per_item: None,
        }
    }

    fn refill(&mut self, now: f64) {
        if now > self.last {
            self.tokens = (self.tokens + (now - self.last) * self.rate).min(self.burst);
            self.last = now;
        }
    }

    /// Seconds to wait before the next request may start (0 when it may start now).
    pub(crate) fn wait(&mut self, now: f64) -> f64 {
        self.refill(now);
        if self.tokens >= 0.0 {
            0.0
        } else {
            -self.tokens / self.rate
        }
    }

    /// Charges a response's consumed capacity for `evaluated` items.
    pub(crate) fn charge(&mut self, now: f64, units: f64, evaluated: u64) {
        self.refill(now);
        self.tokens -= units.max(0.0);
        if evaluated > 0 && units > 0.0 {
            let sample = units / evaluated as f64;
            self.per_item = Some(match self.per_item {
                Some(p) => 0.7 * p + 0.3 * sample,
                None => sample,
            });
        }
    }

    /// `Limit` for the next page: about [`PAGE_SECONDS`] of budget.
    pub(crate) fn page_items(&self) -> i32 {
        match self.per_item {
            None => FIRST_PAGE_ITEMS,
            Some(p) => {
                let items = (self.rate * PAGE_SECONDS / p).floor();
                (items as i32).clamp(1, MAX_PAGE_ITEMS)
            }
        }
    }
}

/// A read-capacity limit shared by the partitions of one query.
#[derive(Debug)]
pub struct CapacityLimiter {
    epoch: Instant,
    bucket: Mutex<TokenBucket>,
}

impl CapacityLimiter {
    /// A limiter for `rcu_per_second` (must be positive).
    pub fn new(rcu_per_second: f64) -> Self {
        Self {
            epoch: Instant::now(),
            bucket: Mutex::new(TokenBucket::new(rcu_per_second, 0.0)),
        }
    }

    /// The configured rate in RCU per second.
    pub fn rate(&self) -> f64 {
        self.lock().rate
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        // The bucket holds plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request may start.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let now = self.now();
                self.lock().wait(now)
            };
            if wait <= 0.0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }

    /// Charges what a response reported.
    pub fn charge(&self, units: f64, evaluated: u64) {
        let now = self.now();
        self.lock().charge(now, units, evaluated);
    }

    /// `Limit` for the next page.
    pub fn page_items(&self) -> i32 {
        self.lock().page_items()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a sustained read against the bucket on a virtual clock:
    /// requests of `latency` seconds, each evaluating `Limit` items of
    /// `item_rcu` (rounded up to DynamoDB's 0.5 RCU steps).
    fn sustained(rate: f64, item_rcu: f64, latency: f64, seconds: f64) -> f64 {
        let mut b = TokenBucket::new(rate, 0.0);
        let (mut now, mut consumed) = (0.0, 0.0);
        let mut last_end = 0.0;
        while now < seconds {
            now += b.wait(now);
            let items = b.page_items();
            let cost = ((items as f64 * item_rcu) * 2.0).ceil() / 2.0;
            now += latency;
            b.charge(now, cost, items as u64);
            consumed += cost;
            last_end = now;
        }
        consumed / last_end
    }

    #[test]
    fn sustained_rate_stays_within_ten_percent_of_the_limit() {
        for (rate, item_rcu, latency) in [
            (50.0, 0.025, 0.005),
            (20.0, 0.05, 0.010),
            (500.0, 0.025, 0.002),
            (5.0, 0.5, 0.020),
            (100.0, 2.0, 0.050),
        ] {
            let measured = sustained(rate, item_rcu, latency, 30.0);
            let ratio = measured / rate;
            assert!(
                (0.9..=1.1).contains(&ratio),
                "rate {rate}, item {item_rcu} RCU: measured {measured:.2} RCU/s ({ratio:.3}x)"
            );
        }
    }

    #[test]
    fn debt_makes_the_next_request_wait() {
        let mut b = TokenBucket::new(10.0, 0.0);
        assert_eq!(b.wait(0.0), 0.0);
        b.charge(0.0, 5.0, 100);
        assert!((b.wait(0.0) - 0.5).abs() < 1e-9);
        assert!((b.wait(0.25) - 0.25).abs() < 1e-9);
        assert_eq!(b.wait(0.5), 0.0);
        // Idle time earns at most the burst.
        assert_eq!(b.wait(100.0), 0.0);
        b.charge(100.0, 2.0 + 2.0, 1);
        assert!(b.wait(100.0) > 0.0);
    }

    #[test]
    fn pages_are_sized_from_the_observed_cost_per_item() {
        let mut b = TokenBucket::new(100.0, 0.0);
        assert_eq!(b.page_items(), FIRST_PAGE_ITEMS);
        b.charge(0.0, 0.5, 10);
        // 100 RCU/s · 0.2 s / 0.05 RCU per item.
        assert_eq!(b.page_items(), 400);
        let mut slow = TokenBucket::new(1.0, 0.0);
        slow.charge(0.0, 4.0, 1);
        assert_eq!(slow.page_items(), 1);
    }
}
