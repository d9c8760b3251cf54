//! Per-address throttling of failed logins.
//!
//! Failures are counted in a fixed window that starts with an address's first failure; the
//! failure that reaches the threshold blocks the address for the block duration. The table
//! holds at most `max` addresses: expired entries are dropped first, then the entry closest
//! to expiry, so an attacker with many addresses can only make the table forget, never grow.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

/// Failed-login bookkeeping for one gateway.
#[derive(Debug)]
pub(crate) struct Throttle {
    entries: HashMap<IpAddr, Entry>,
    threshold: u32,
    window: Duration,
    block: Duration,
    max: usize,
}

impl Throttle {
    pub(crate) fn new(threshold: u32, window: Duration, block: Duration, max: usize) -> Self {
        Throttle {
            entries: HashMap::new(),
            threshold: threshold.max(1),
            window,
            block,
            max: max.max(1),
        }
    }

    fn expiry(&self, e: &Entry) -> Instant {
        match e.blocked_until {
            Some(until) => until,
            None => e.window_start + self.window,
        }
    }

    /// Whether connections from `ip` are refused at `now`.
    pub(crate) fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.entries
            .get(&ip)
            .and_then(|e| e.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records one failed login from `ip`; returns true if this failure blocked it.
    pub(crate) fn record_failure(&mut self, ip: IpAddr, now: Instant) -> bool {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.max {
            self.make_room(now);
        }
        let (window, block, threshold) = (self.window, self.block, self.threshold);
        let e = self.entries.entry(ip).or_insert(Entry {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if let Some(until) = e.blocked_until {
            if now < until {
                return false;
            }
            e.blocked_until = None;
            e.failures = 0;
            e.window_start = now;
        }
        if now >= e.window_start + window {
            e.window_start = now;
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        if e.failures >= threshold {
            e.blocked_until = Some(now + block);
            e.failures = 0;
            return true;
        }
        false
    }

    fn make_room(&mut self, now: Instant) {
        let window = self.window;
        self.entries.retain(|_, e| match e.blocked_until {
            Some(until) => now < until,
            None => now < e.window_start + window,
        });
        if self.entries.len() >= self.max {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| self.expiry(e))
                .map(|(ip, _)| *ip);
            if let Some(ip) = oldest {
                self.entries.remove(&ip);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn blocks_at_threshold_within_window_and_unblocks_after() {
        let t0 = Instant::now();
        let mut t = Throttle::new(3, Duration::from_secs(60), Duration::from_secs(300), 100);
        assert!(!t.record_failure(ip(1), t0));
        assert!(!t.record_failure(ip(1), t0 + Duration::from_secs(1)));
        assert!(!t.is_blocked(ip(1), t0 + Duration::from_secs(1)));
        assert!(t.record_failure(ip(1), t0 + Duration::from_secs(2)));
        assert!(t.is_blocked(ip(1), t0 + Duration::from_secs(3)));
        assert!(!t.is_blocked(ip(2), t0 + Duration::from_secs(3)));
        assert!(t.is_blocked(ip(1), t0 + Duration::from_secs(301)));
        assert!(!t.is_blocked(ip(1), t0 + Duration::from_secs(303)));
        // After the block a fresh window starts.
        assert!(!t.record_failure(ip(1), t0 + Duration::from_secs(303)));
    }

    #[test]
    fn failures_spread_over_windows_never_block() {
        let t0 = Instant::now();
        let mut t = Throttle::new(3, Duration::from_secs(10), Duration::from_secs(300), 100);
        for i in 0..10u64 {
            // Two failures per 10 s window.
            assert!(!t.record_failure(ip(1), t0 + Duration::from_secs(i * 11)));
            assert!(!t.record_failure(ip(1), t0 + Duration::from_secs(i * 11 + 1)));
        }
        assert!(!t.is_blocked(ip(1), t0 + Duration::from_secs(200)));
    }

    #[test]
    fn table_stays_bounded_and_keeps_blocked_entries_longest() {
        let t0 = Instant::now();
        let mut t = Throttle::new(1, Duration::from_secs(10), Duration::from_secs(1000), 4);
        assert!(t.record_failure(ip(1), t0)); // blocked until t0+1000
        let mut t2 = Throttle::new(5, Duration::from_secs(10), Duration::from_secs(1000), 4);
        for n in 2..=200u8 {
            t.record_failure(ip(n), t0 + Duration::from_millis(u64::from(n)));
            t2.record_failure(ip(n), t0);
            assert!(t.len() <= 4);
            assert!(t2.len() <= 4);
        }
        // Threshold 1 blocks every address; the earliest-expiring are forgotten first, so the
        // latest blocked ones remain.
        assert!(t.is_blocked(ip(200), t0 + Duration::from_secs(1)));
        assert!(!t.is_blocked(ip(1), t0 + Duration::from_secs(1)));
    }
}
