//! Failed authentications counted per caller address: an address that fails
//! `max_failures` times within `window` is refused — without its token being
//! checked — until the window that began with its first failure ends. Session
//! tokens are 256-bit random values, so guessing one is hopeless anyway; the
//! limit keeps a guessing client from costing the store a lookup per request,
//! and a leaked-but-expired token hammered by a misconfigured client from
//! filling the log. HTTP ([`crate::http`]) and Flight SQL ([`crate::flight`])
//! share one count per address.
//!
//! Successes do not reset the count (a client with one valid token cannot
//! keep guessing others), and memory is bounded: at most [`AuthAttempts::MAX_ADDRESSES`]
//! addresses are tracked, expired ones are forgotten first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{ConnectorError, ErrorCode};

#[derive(Debug, Clone, Copy)]
struct Failures {
    first: Instant,
    count: u32,
}

/// Failed authentications per address (see the module documentation).
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use std::time::Duration;
/// use dynamo_connector::{AuthAttempts, ErrorCode};
///
/// let attempts = AuthAttempts::new(2, Duration::from_secs(60));
/// let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// attempts.failed(ip);
/// attempts.failed(ip);
/// let refused = attempts.admit(ip).unwrap_err();
/// assert_eq!(refused.code, ErrorCode::TooManyAttempts);
/// assert!(refused.retry_after_secs.is_some());
/// ```
#[derive(Debug)]
pub struct AuthAttempts {
    max_failures: u32,
    window: Duration,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

impl Default for AuthAttempts {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX_FAILURES, Self::DEFAULT_WINDOW)
    }
}

impl AuthAttempts {
    /// Failures an address may have within the window by default.
    pub const DEFAULT_MAX_FAILURES: u32 = 20;
    /// The default window, from an address's first failure.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
    /// Most addresses tracked at once.
    pub const MAX_ADDRESSES: usize = 65_536;

    /// At most `max_failures` failed authentications per address within
    /// `window` (`max_failures` 0 refuses nothing).
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Failures>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `too_many_attempts` (with the seconds left in the window) when `ip`
    /// has used up its failures; nothing is counted.
    pub fn admit(&self, ip: IpAddr) -> Result<(), ConnectorError> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut failures = self.lock();
        let Some(f) = failures.get(&ip).copied() else {
            return Ok(());
        };
        let elapsed = now.saturating_duration_since(f.first);
        if elapsed >= self.window {
            failures.remove(&ip);
            return Ok(());
        }
        if f.count < self.max_failures {
            return Ok(());
        }
        let left = (self.window - elapsed).as_secs().max(1);
        Err(ConnectorError::new(
            ErrorCode::TooManyAttempts,
            format!(
                "too many failed authentications from this address ({} within {} s): \
                 try again in {left} s with a valid session",
                f.count,
                self.window.as_secs()
            ),
        )
        .retry_after(left))
    }

    /// Counts a failed authentication of `ip`.
    pub fn failed(&self, ip: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let window = self.window;
        let mut failures = self.lock();
        if !failures.contains_key(&ip) && failures.len() >= Self::MAX_ADDRESSES {
            failures.retain(|_, f| now.saturating_duration_since(f.first) < window);
            if failures.len() >= Self::MAX_ADDRESSES {
                return;
            }
        }
        let f = failures.entry(ip).or_insert(Failures {
            first: now,
            count: 0,
        });
        if now.saturating_duration_since(f.first) >= window {
            *f = Failures {
                first: now,
                count: 0,
            };
        }
        f.count += 1;
        if f.count == self.max_failures {
            log::warn!(
                "address {ip}: {} failed authentications within {} s; refused until the window ends",
                f.count,
                window.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn an_address_is_refused_after_its_failures_and_admitted_after_the_window() {
        let attempts = AuthAttempts::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(attempts.admit(ip(1)).is_ok());
            attempts.failed(ip(1));
        }
        let e = attempts.admit(ip(1)).expect_err("refused");
        assert_eq!(e.code, ErrorCode::TooManyAttempts);
        assert_eq!(e.code.http_status(), 429);
        assert!(e.message.contains("3 within"), "{e}");
        // Another address is not refused.
        assert!(attempts.admit(ip(2)).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(attempts.admit(ip(1)).is_ok(), "the window ended");
    }

    #[test]
    fn zero_failures_allowed_turns_the_limit_off() {
        let attempts = AuthAttempts::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            attempts.failed(ip(1));
        }
        assert!(attempts.admit(ip(1)).is_ok());
    }

    #[test]
    fn memory_is_bounded_by_the_addresses_tracked() {
        let attempts = AuthAttempts::new(1, Duration::from_secs(60));
        for i in 0..(AuthAttempts::MAX_ADDRESSES as u32 + 10) {
            attempts.failed(IpAddr::V4(Ipv4Addr::from(i)));
        }
        assert_eq!(attempts.lock().len(), AuthAttempts::MAX_ADDRESSES);
    }
}
