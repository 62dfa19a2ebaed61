//! How many requests one scan keeps in flight: enough to hide DynamoDB's
//! latency, no more than throughput rewards, and fewer as soon as DynamoDB
//! throttles.
//!
//! Against the real service a 1 MB page takes on the order of 100 ms to
//! arrive while decoding it takes a few milliseconds, so a scan with two
//! requests in flight waits most of the time. The limit here is shared by
//! every partition of a scan:
//!
//! - it starts at the read's initial limit ([`initial_limit`]: every unit
//!   at once for an on-demand table, what one second of a provisioned
//!   table's capacity pays for otherwise) and is measured by *rounds*: a
//!   round ends when as many pages have arrived as the limit allowed in
//!   flight;
//! - while a round's items per second beat the best round so far by
//!   [`GAIN`], the limit grows — doubling until the first round that does
//!   not (slow start; that doubling is then undone), by one afterwards;
//! - a throttled attempt (the retry layer's signal) halves it at once —
//!   but only an attempt sent under the current limit: the throttles of
//!   attempts sent before it came down do not halve it again — and growth
//!   continues by one at a time (no more doubling);
//! - it never exceeds the scan's `max_concurrency`, and requests still wait
//!   for the read-capacity budget when one is set.
//!
//! The limit counts *requests*: a request holds its place through its
//! retries and their backoff, so a throttled request waits on its own place
//! instead of letting another request take it and be throttled in turn; a
//! lowered limit applies as places come back. (Pages waiting to be decoded
//! are bounded separately, by the partition driver.)
//!
//! [`Controller`] is the pure rule, on a clock in seconds; [`Concurrency`]
//! applies it with a semaphore whose permits follow the limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests in flight when a scan starts, where nothing says more:
/// plans made before the initial limit was part of them.
pub(crate) const INITIAL_LIMIT: usize = 16;

/// Requests in flight when a read of `units` units (segments, key
/// queries) starts: all of them — an on-demand table needs no slow start
/// below its per-partition limits, and a throttle still halves the limit —
/// but, for a provisioned table, no more than the pages one second of its
/// read capacity pays for (`capacity_pages`), so the first round does not
/// spend more than the table provisions. At least one; the scan's
/// `max_concurrency` bounds it too.
pub(crate) fn initial_limit(units: usize, capacity_pages: Option<usize>) -> usize {
    units.min(capacity_pages.unwrap_or(usize::MAX)).max(1)
}

/// Pages one second of `provisioned_rcu` read capacity units pays for, at
/// `page_bytes` per page (one read capacity unit reads 4 KB strongly
/// consistent, 8 KB eventually consistent); at least one.
pub(crate) fn capacity_pages(provisioned_rcu: u64, page_bytes: u64, consistent: bool) -> usize {
    let units_per_page =
        page_bytes.div_ceil(4_096).max(1) as f64 * if consistent { 1.0 } else { 0.5 };
    ((provisioned_rcu as f64 / units_per_page).floor() as usize).max(1)
}
/// How much faster a round must be than the best so far for the limit to grow.
const GAIN: f64 = 1.10;

/// The pure adaptive rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Controller {
    limit: usize,
    max: usize,
    slow_start: bool,
    /// The limit before the last doubling, while its effect is measured.
    doubled_from: Option<usize>,
    /// Counts the halvings: an attempt carries the generation it was sent
    /// under, and only a throttle of the current generation halves.
    generation: u64,
    best_rate: f64,
    round_start: f64,
    round_pages: usize,
    round_items: u64,
}

impl Controller {
    /// A limit of `initial` (at most `max`), at time `now`.
    pub(crate) fn new(initial: usize, max: usize, now: f64) -> Self {
        let max = max.max(1);
        Self {
            limit: initial.clamp(1, max),
            max,
            slow_start: true,
            doubled_from: None,
            generation: 0,
            best_rate: 0.0,
            round_start: now,
            round_pages: 0,
            round_items: 0,
        }
    }

    /// Requests allowed in flight now.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// The generation attempts are sent under now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// DynamoDB throttled, at `now`, an attempt sent under `generation`.
    pub(crate) fn on_throttle(&mut self, now: f64, generation: u64) {
        if generation < self.generation {
            // Sent before the limit came down: already answered.
            return;
        }
        self.generation += 1;
        self.limit = (self.limit / 2).max(1);
        self.slow_start = false;
        self.doubled_from = None;
        // Throughput is measured afresh at the lower limit.
        self.best_rate = 0.0;
        self.new_round(now);
    }

    /// A page of `items` arrived at `now`.
    pub(crate) fn on_page(&mut self, now: f64, items: u64) {
        self.round_pages += 1;
        self.round_items += items;
        if self.round_pages < self.limit {
            return;
        }
        let elapsed = now - self.round_start;
        let rate = if elapsed > 0.0 {
            self.round_items as f64 / elapsed
        } else {
            f64::INFINITY
        };
        let before = self.limit;
        if rate >= self.best_rate * GAIN {
            self.limit = if self.slow_start {
                self.limit * 2
            } else {
                self.limit + 1
            }
            .min(self.max);
        } else if self.slow_start {
            // Growth stopped: no more doubling; a doubling that bought
            // nothing is undone, and growth goes on by one from there.
            self.slow_start = false;
            if let Some(from) = self.doubled_from {
                self.limit = from;
            }
        }
        self.doubled_from = (self.slow_start && self.limit > before).then_some(before);
        self.best_rate = self.best_rate.max(rate);
        self.new_round(now);
    }

    fn new_round(&mut self, now: f64) {
        self.round_start = now;
        self.round_pages = 0;
        self.round_items = 0;
    }
}

/// The shared limit of one scan: a request holds a [`Permit`] from before it
/// is sent until its page has been handed on.
#[derive(Debug)]
pub(crate) struct Concurrency {
    epoch: Instant,
    controller: Mutex<Controller>,
    semaphore: Arc<Semaphore>,
    /// Permits to retire as they come back (the limit came down).
    retire: AtomicUsize,
    in_flight: AtomicUsize,
    reached: AtomicUsize,
    /// The controller's generation, readable without its lock.
    generation: AtomicU64,
}

/// One attempt's place in flight.
#[derive(Debug)]
pub(crate) struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    owner: Arc<Concurrency>,
    generation: u64,
}

impl Permit {
    /// The generation of the limit this attempt was sent under.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.owner.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(permit) = self.permit.take() else {
            return;
        };
        // Retire it instead of returning it while the limit is lower than the permits.
        let retired = self
            .owner
            .retire
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if retired {
            permit.forget();
        }
    }
}

impl Concurrency {
    /// `initial` requests in flight at first, at most `max` (at least one).
    pub(crate) fn new(initial: usize, max: usize) -> Arc<Self> {
        let controller = Controller::new(initial, max, 0.0);
        Arc::new(Self {
            epoch: Instant::now(),
            semaphore: Arc::new(Semaphore::new(controller.limit())),
            controller: Mutex::new(controller),
            retire: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            reached: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        })
    }

    /// Waits for a place in flight.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Permit {
        let permit = Arc::clone(&self.semaphore).acquire_owned().await.ok();
        let now = self.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        self.reached.fetch_max(now, Ordering::Relaxed);
        Permit {
            permit,
            owner: Arc::clone(self),
            generation: self.generation.load(Ordering::Acquire),
        }
    }

    /// A page of `items` arrived.
    pub(crate) fn on_page(&self, items: u64) {
        self.adjust(|c, now| c.on_page(now, items));
    }

    /// DynamoDB throttled an attempt sent under `generation`.
    pub(crate) fn on_throttle(&self, generation: u64) {
        self.adjust(|c, now| c.on_throttle(now, generation));
    }

    /// The generation attempts are sent under now.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Applies `change` to the rule, and the new limit to the permits.
    fn adjust(&self, change: impl FnOnce(&mut Controller, f64)) {
        let now = self.epoch.elapsed().as_secs_f64();
        let mut c = self
            .controller
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = c.limit();
        change(&mut c, now);
        let after = c.limit();
        self.generation.store(c.generation(), Ordering::Release);
        drop(c);
        if after > before {
            // Pay back permits still to retire first, then add the rest.
            let mut grow = after - before;
            while grow > 0 {
                let cancelled = self
                    .retire
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                    .is_ok();
                if !cancelled {
                    break;
                }
                grow -= 1;
            }
            self.semaphore.add_permits(grow);
        } else if after < before {
            // Take back what is free now; the rest as it returns.
            let mut shrink = before - after;
            while shrink > 0 {
                match self.semaphore.try_acquire() {
                    Ok(p) => p.forget(),
                    Err(_) => break,
                }
                shrink -= 1;
            }
            self.retire.fetch_add(shrink, Ordering::AcqRel);
        }
    }

    /// The current limit.
    #[cfg(test)]
    pub(crate) fn limit(&self) -> usize {
        self.controller
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .limit()
    }

    /// The most requests that were in flight at once.
    pub(crate) fn reached(&self) -> usize {
        self.reached.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `rounds` rounds where throughput is `rate(limit)` items/s.
    fn simulate(
        c: &mut Controller,
        start: f64,
        rounds: usize,
        rate: impl Fn(usize) -> f64,
    ) -> Vec<usize> {
        let mut now = start;
        let mut limits = Vec::new();
        for _ in 0..rounds {
            let limit = c.limit();
            // `limit` pages of 1,000 items arrive over one round.
            let seconds = limit as f64 * 1_000.0 / rate(limit);
            for p in 0..limit {
                c.on_page(now + seconds * (p + 1) as f64 / limit as f64, 1_000);
            }
            now += seconds;
            limits.push(c.limit());
        }
        limits
    }

    #[test]
    fn latency_bound_reads_grow_to_the_cap() {
        // Each request takes 100 ms whatever the concurrency: throughput ∝ limit.
        let mut c = Controller::new(8, 64, 0.0);
        let limits = simulate(&mut c, 0.0, 6, |l| l as f64 * 10_000.0);
        assert_eq!(limits[..3], [16, 32, 64]);
        assert_eq!(c.limit(), 64, "never beyond the cap: {limits:?}");
    }

    #[test]
    fn growth_stops_where_throughput_stops_growing() {
        // The client decodes at most 100k items/s: 10 requests in flight saturate it.
        let mut c = Controller::new(4, 64, 0.0);
        let limits = simulate(&mut c, 0.0, 12, |l| (l as f64 * 10_000.0).min(100_000.0));
        let last = *limits.last().expect("rounds");
        assert!(
            (8..=17).contains(&last),
            "stops near saturation: {limits:?}"
        );
        assert_eq!(limits[10], limits[11], "and holds: {limits:?}");
    }

    #[test]
    fn throttling_halves_once_per_limit_and_growth_resumes_one_at_a_time() {
        let mut c = Controller::new(32, 64, 0.0);
        let sent = c.generation();
        c.on_throttle(0.01, sent);
        assert_eq!(c.limit(), 16);
        // The other attempts sent at 32 are throttled too: no second halving.
        for _ in 0..31 {
            c.on_throttle(0.01, sent);
        }
        assert_eq!(c.limit(), 16);
        // An attempt sent at 16 that is throttled halves again.
        c.on_throttle(0.02, c.generation());
        assert_eq!(c.limit(), 8);
        let limits = simulate(&mut c, 0.02, 3, |l| l as f64 * 10_000.0);
        assert_eq!(limits, [9, 10, 11], "additive after a throttle");
        let mut one = Controller::new(1, 64, 0.0);
        one.on_throttle(0.0, 0);
        assert_eq!(one.limit(), 1, "never below one");
    }

    #[tokio::test]
    async fn permits_follow_the_limit_both_ways() {
        let c = Concurrency::new(INITIAL_LIMIT, 64);
        let held: Vec<Permit> =
            futures::future::join_all((0..INITIAL_LIMIT).map(|_| c.acquire())).await;
        assert_eq!(c.reached(), INITIAL_LIMIT);
        // A ninth request waits.
        let c2 = Arc::clone(&c);
        let waiting = tokio::spawn(async move { c2.acquire().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        // Throttled: the limit halves; returned permits are retired, so the
        // waiting request still waits until fewer than four are in flight.
        c.on_throttle(held[0].generation());
        assert_eq!(c.limit(), INITIAL_LIMIT / 2);
        let mut held = held;
        for _ in 0..INITIAL_LIMIT / 2 {
            held.pop();
        }
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "four still in flight");
        held.pop();
        let third = waiting.await.expect("task");
        assert_eq!(c.in_flight.load(Ordering::Relaxed), INITIAL_LIMIT / 2);
        drop(third);
        drop(held);
        assert_eq!(c.semaphore.available_permits(), INITIAL_LIMIT / 2);
    }

    #[test]
    fn a_read_starts_with_every_unit_unless_provisioned_capacity_pays_for_fewer() {
        // On demand: every segment or key query at once.
        assert_eq!(initial_limit(239, None), 239);
        assert_eq!(initial_limit(0, None), 1);
        // 1,000 RCU, 1 MB pages: 128 units each eventually consistent → 7.
        let pages = capacity_pages(1_000, 1 << 20, false);
        assert_eq!(pages, 7);
        assert_eq!(initial_limit(239, Some(pages)), 7);
        assert_eq!(
            capacity_pages(1_000, 1 << 20, true),
            3,
            "consistent: 256 each"
        );
        assert_eq!(initial_limit(2, Some(pages)), 2);
        // Tiny capacity still sends one request.
        assert_eq!(capacity_pages(1, 1 << 20, false), 1);
        assert_eq!(
            capacity_pages(100, 100, false),
            200,
            "a 4 KB page costs half a unit"
        );
    }
}
