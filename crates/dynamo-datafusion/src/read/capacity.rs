//! A read-capacity budget: a token bucket in RCU, fed by the `ConsumedCapacity`
//! each response reports and shared by every partition of a query.
//!
//! The cost of a request is known only from its response, so a request may
//! start while the balance is not negative; it reserves its estimated cost
//! (what recent pages cost) when it starts, and the reservation is replaced by
//! the reported cost when it returns. The bucket may so go into debt, and the
//! next request waits until the debt is paid back at the configured rate.
//! Reserving at the start keeps concurrent segments from all starting on the
//! same positive balance. Pages are sized so that one page costs a fraction of
//! a second of budget, which keeps the rate steady.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Seconds of budget one page should cost at most.
const PAGE_SECONDS: f64 = 0.2;
/// Items in the first page of a limited read, before the cost per item is known.
const FIRST_PAGE_ITEMS: i32 = 10;
/// Largest `Limit` a limited read sets.
const MAX_PAGE_ITEMS: i32 = 10_000;
/// The least a read costs (an eventually consistent read of up to 4 KB).
const MIN_REQUEST_RCU: f64 = 0.5;

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

    /// Starts a request if the balance allows: `Ok(reserved RCU)`, or
    /// `Err(seconds to wait)`.
    pub(crate) fn try_start(&mut self, now: f64) -> Result<f64, f64> {
        self.refill(now);
        // A debt that rounding left (1e-12 RCU) is no debt.
        if self.tokens < -1e-9 {
            return Err(-self.tokens / self.rate);
        }
        let estimate = match self.per_item {
            Some(p) => p * f64::from(self.page_items()),
            None => MIN_REQUEST_RCU,
        };
        self.tokens -= estimate;
        Ok(estimate)
    }

    /// Starts a request of a known cost (`units`) if the balance allows:
    /// `Ok(units)`, or `Err(seconds to wait)`.
    pub(crate) fn try_start_units(&mut self, now: f64, units: f64) -> Result<f64, f64> {
        self.refill(now);
        if self.tokens < -1e-9 {
            return Err(-self.tokens / self.rate);
        }
        self.tokens -= units;
        Ok(units)
    }

    /// Replaces a request's reservation by the capacity its response reported
    /// for `evaluated` items.
    pub(crate) fn finish(&mut self, now: f64, reserved: f64, units: f64, evaluated: u64) {
        self.refill(now);
        self.tokens += reserved - units.max(0.0);
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

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        // The bucket holds plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.bucket.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until a request may start; returns the RCU it reserved.
    pub async fn acquire(&self) -> f64 {
        loop {
            let start = {
                let now = self.now();
                self.lock().try_start(now)
            };
            match start {
                Ok(reserved) => return reserved,
                Err(wait) => tokio::time::sleep(Duration::from_secs_f64(wait)).await,
            }
        }
    }

    /// Waits until a request of a known cost (`units`, e.g. a write's
    /// capacity units by the item's size) may start; returns the reservation.
    pub async fn acquire_units(&self, units: f64) -> f64 {
        loop {
            let start = {
                let now = self.now();
                self.lock().try_start_units(now, units)
            };
            match start {
                Ok(reserved) => return reserved,
                Err(wait) => tokio::time::sleep(Duration::from_secs_f64(wait)).await,
            }
        }
    }

    /// Settles a request: its reservation is replaced by what the response
    /// reported (`units` RCU for `evaluated` items).
    pub fn settle(&self, reserved: f64, units: f64, evaluated: u64) {
        let now = self.now();
        self.lock().finish(now, reserved, units, evaluated);
    }

    /// `Limit` for the next page.
    pub fn page_items(&self) -> i32 {
        self.lock().page_items()
    }

    /// The budget, in RCU per second.
    #[cfg(test)]
    pub(crate) fn rate(&self) -> f64 {
        self.lock().rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates a sustained read against the bucket on a virtual clock:
    /// requests of `latency` seconds, each evaluating `Limit` items of
    /// `item_rcu` (rounded up to DynamoDB's 0.5 RCU steps).
    ///
    /// `workers` concurrent segments share the bucket; the simulation steps
    /// through events in time order.
    fn sustained(rate: f64, item_rcu: f64, latency: f64, seconds: f64, workers: usize) -> f64 {
        let mut b = TokenBucket::new(rate, 0.0);
        let mut consumed = 0.0;
        let mut last_end: f64 = 0.0;
        /// A request in flight: reserved RCU, its cost, items it evaluates.
        type InFlight = Option<(f64, f64, u64)>;
        // (time the worker is next free, its request in flight)
        let mut free: Vec<(f64, InFlight)> = vec![(0.0, None); workers];
        loop {
            let (i, _) = free
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
                .expect("workers");
            let now = free[i].0;
            if let Some((reserved, cost, items)) = free[i].1.take() {
                b.finish(now, reserved, cost, items);
                consumed += cost;
                last_end = last_end.max(now);
            }
            if now >= seconds {
                if free.iter().all(|w| w.1.is_none()) {
                    break;
                }
                free[i].0 = f64::INFINITY;
                continue;
            }
            match b.try_start(now) {
                Ok(reserved) => {
                    let items = b.page_items();
                    let cost = ((items as f64 * item_rcu) * 2.0).ceil() / 2.0;
                    free[i] = (now + latency, Some((reserved, cost, items as u64)));
                }
                Err(wait) => free[i].0 = now + wait,
            }
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
            for workers in [1, 4, 16] {
                let measured = sustained(rate, item_rcu, latency, 30.0, workers);
                let ratio = measured / rate;
                assert!(
                    (0.9..=1.1).contains(&ratio),
                    "rate {rate}, item {item_rcu} RCU, {workers} segments: \
                     measured {measured:.2} RCU/s ({ratio:.3}x)"
                );
            }
        }
    }

    #[test]
    fn writes_reserve_their_known_cost_and_wait_out_the_debt() {
        let mut b = TokenBucket::new(10.0, 0.0);
        assert_eq!(b.try_start_units(0.0, 3.0), Ok(3.0));
        let wait = b.try_start_units(0.0, 3.0).expect_err("in debt");
        assert!((wait - 0.3).abs() < 1e-9, "{wait}");
        assert_eq!(b.try_start_units(0.3, 3.0), Ok(3.0));
    }

    #[test]
    fn reservations_and_debt_make_the_next_request_wait() {
        let mut b = TokenBucket::new(10.0, 0.0);
        let first = b
            .try_start(0.0)
            .expect("an empty bucket lets one request start");
        assert_eq!(first, MIN_REQUEST_RCU);
        // A second segment cannot start on the same balance.
        let wait = b.try_start(0.0).expect_err("reserved");
        assert!((wait - 0.05).abs() < 1e-9, "{wait}");
        // The response cost 5 RCU: 0.5 s of debt from then.
        b.finish(0.0, first, 5.0, 100);
        assert!((b.try_start(0.25).expect_err("in debt") - 0.25).abs() < 1e-9);
        assert!(b.try_start(0.5).is_ok());
        // Idle time earns at most the burst (0.2 s of budget).
        let mut idle = TokenBucket::new(10.0, 0.0);
        assert!(idle.try_start(100.0).is_ok());
        idle.finish(100.0, MIN_REQUEST_RCU, 4.0, 1);
        assert!(idle.try_start(100.0).is_err());
    }

    #[test]
    fn pages_are_sized_from_the_observed_cost_per_item() {
        let mut b = TokenBucket::new(100.0, 0.0);
        assert_eq!(b.page_items(), FIRST_PAGE_ITEMS);
        b.finish(0.0, 0.0, 0.5, 10);
        // 100 RCU/s · 0.2 s / 0.05 RCU per item.
        assert_eq!(b.page_items(), 400);
        let mut slow = TokenBucket::new(1.0, 0.0);
        slow.finish(0.0, 0.0, 4.0, 1);
        assert_eq!(slow.page_items(), 1);
    }
}
