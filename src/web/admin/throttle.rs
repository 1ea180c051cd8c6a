//! Login throttling: after [`MAX_FAILURES`] wrong passwords for one username from one address
//! within [`WINDOW`], that pair is refused for [`LOCKOUT`] without checking the password.
//!
//! In memory, per process: a restart forgets, and each instance counts on its own. That bounds
//! guessing to a few attempts per quarter hour per instance, which argon2id's cost and the
//! 8-character minimum make hopeless, without a table that an attacker could fill.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most, so a flood of made-up usernames cannot grow memory without bound.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_at: Instant,
    locked_until: Option<Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<(String, Option<IpAddr>), Failures>>,
}

impl LoginThrottle {
    fn key(username: &str, ip: Option<IpAddr>) -> (String, Option<IpAddr>) {
        (username.trim().to_lowercase(), ip)
    }

    /// Whether this pair is locked out now.
    pub fn is_locked(&self, username: &str, ip: Option<IpAddr>) -> bool {
        let failures = self.failures.lock().expect("no panics while holding the lock");
        failures.get(&Self::key(username, ip)).and_then(|f| f.locked_until).is_some_and(|until| Instant::now() < until)
    }

    /// Counts a wrong password; returns whether the pair is now locked out.
    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>) -> bool {
        let now = Instant::now();
        let mut failures = self.failures.lock().expect("no panics while holding the lock");
        if failures.len() >= MAX_ENTRIES {
            failures.retain(|_, f| {
                now.duration_since(f.first_at) < WINDOW || f.locked_until.is_some_and(|until| now < until)
            });
        }
        let entry =
            failures.entry(Self::key(username, ip)).or_insert(Failures { count: 0, first_at: now, locked_until: None });
        let lock_over = entry.locked_until.is_some_and(|until| now >= until);
        if lock_over || now.duration_since(entry.first_at) >= WINDOW {
            *entry = Failures { count: 0, first_at: now, locked_until: None };
        }
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.locked_until = Some(now + LOCKOUT);
        }
        entry.locked_until.is_some()
    }

    /// A correct password clears the count.
    pub fn record_success(&self, username: &str, ip: Option<IpAddr>) {
        self.failures.lock().expect("no panics while holding the lock").remove(&Self::key(username, ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fifth_failure_locks_the_pair_and_only_that_pair() {
        let throttle = LoginThrottle::default();
        let ip = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..MAX_FAILURES - 1 {
            assert!(!throttle.record_failure("alice", ip));
        }
        assert!(!throttle.is_locked("alice", ip));
        assert!(throttle.record_failure("Alice", ip));
        assert!(throttle.is_locked("alice", ip));
        assert!(!throttle.is_locked("alice", Some(IpAddr::from([10, 0, 0, 1]))));
        assert!(!throttle.is_locked("bob", ip));
    }

    #[test]
    fn a_success_clears_the_count() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.record_failure("alice", None);
        }
        throttle.record_success("alice", None);
        assert!(!throttle.record_failure("alice", None));
    }
}
