//! Sign-in throttling, shared by the login page and the API's HTTP Basic.
//!
//! - A (username, client address) pair with [`MAX_FAILURES`] wrong passwords within [`WINDOW`]
//!   is refused for [`LOCKOUT`] without checking the password.
//! - A username failing from many addresses is slowed down, never locked: each attempt for it
//!   waits up to [`MAX_USERNAME_DELAY`] first. Locking the username itself would let anyone who
//!   knows an admin's name lock that admin out from every address.
//!
//! In memory, per process: a restart forgets, and each instance counts on its own. Memory is
//! bounded: at most [`MAX_ENTRIES`] pairs, the oldest evicted first in O(1). Failures are only
//! recorded after a password check, and those are capped per second (see `super::gate`), so
//! evicting a pair still locked out needs more checks than the cap allows in a [`LOCKOUT`].

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: u32 = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Pairs kept at most, so a flood of made-up usernames cannot grow memory without bound.
const MAX_ENTRIES: usize = 100_000;
/// Failures of one username, from any address, before its attempts are slowed down.
const USERNAME_SLOW_AFTER: u32 = MAX_FAILURES;
/// Added per failure beyond [`USERNAME_SLOW_AFTER`].
const USERNAME_DELAY_STEP: Duration = Duration::from_millis(200);
/// The longest a username's attempts are delayed; its real owner waits at most this long.
pub const MAX_USERNAME_DELAY: Duration = Duration::from_secs(2);

type Pair = (String, Option<IpAddr>);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first_at: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn new(now: Instant) -> Self {
        Self { count: 0, first_at: now, locked_until: None }
    }

    /// Whether the count no longer means anything at `now` (window passed, lockout over).
    fn stale(&self, now: Instant) -> bool {
        match self.locked_until {
            Some(until) => now >= until,
            None => now.duration_since(self.first_at) >= WINDOW,
        }
    }
}

#[derive(Default)]
struct State {
    pairs: HashMap<Pair, Failures>,
    /// Pairs in the order they were counted from zero, to evict the oldest; an entry whose
    /// `first_at` no longer matches the map's was reset or removed since and is skipped.
    order: VecDeque<(Pair, Instant)>,
    /// Per username (only names that exist, so bounded by the `admins` table).
    usernames: HashMap<String, Failures>,
}

impl State {
    fn evict_oldest(&mut self) {
        while let Some((pair, first_at)) = self.order.pop_front() {
            if self.pairs.get(&pair).is_some_and(|f| f.first_at == first_at) {
                self.pairs.remove(&pair);
                return;
            }
        }
    }
}

#[derive(Default)]
pub struct LoginThrottle {
    state: Mutex<State>,
}

fn normalize(username: &str) -> String {
    username.trim().to_lowercase()
}

impl LoginThrottle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("no panics while holding the lock")
    }

    /// How much longer this pair is locked out, if it is.
    pub fn locked_for(&self, username: &str, ip: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let until = self.state().pairs.get(&(normalize(username), ip)).and_then(|f| f.locked_until)?;
        (now < until).then(|| until - now)
    }

    #[cfg(test)]
    fn is_locked(&self, username: &str, ip: Option<IpAddr>) -> bool {
        self.locked_for(username, ip).is_some()
    }

    /// How long an attempt for this (existing) username waits before its password is checked.
    pub fn username_delay(&self, username: &str) -> Duration {
        let now = Instant::now();
        let state = self.state();
        let Some(f) = state.usernames.get(&normalize(username)).filter(|f| !f.stale(now)) else {
            return Duration::ZERO;
        };
        let beyond = f.count.saturating_sub(USERNAME_SLOW_AFTER);
        (USERNAME_DELAY_STEP * beyond).min(MAX_USERNAME_DELAY)
    }

    /// Counts a wrong password; `known` says whether the username exists (only those are
    /// counted per username). Returns whether the pair is now locked out.
    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>, known: bool) -> bool {
        let now = Instant::now();
        let name = normalize(username);
        let mut state = self.state();
        if known {
            let f = state.usernames.entry(name.clone()).or_insert(Failures::new(now));
            if f.stale(now) {
                *f = Failures::new(now);
            }
            f.count = f.count.saturating_add(1);
        }
        let pair = (name, ip);
        let fresh = match state.pairs.get(&pair) {
            Some(f) => f.stale(now),
            None => true,
        };
        if fresh {
            while state.pairs.len() >= MAX_ENTRIES || state.order.len() >= 2 * MAX_ENTRIES {
                state.evict_oldest();
            }
            state.pairs.insert(pair.clone(), Failures::new(now));
            state.order.push_back((pair.clone(), now));
        }
        let entry = state.pairs.get_mut(&pair).expect("inserted above when absent");
        entry.count += 1;
        if entry.count >= MAX_FAILURES {
            entry.locked_until = Some(now + LOCKOUT);
        }
        entry.locked_until.is_some()
    }

    /// A correct password clears the pair's count (not the username's: other addresses'
    /// failures still count against it).
    pub fn record_success(&self, username: &str, ip: Option<IpAddr>) {
        self.state().pairs.remove(&(normalize(username), ip));
    }

    #[cfg(test)]
    fn pairs(&self) -> usize {
        self.state().pairs.len()
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
            assert!(!throttle.record_failure("alice", ip, true));
        }
        assert!(!throttle.is_locked("alice", ip));
        assert!(throttle.record_failure("Alice", ip, true));
        assert!(throttle.is_locked("alice", ip));
        assert!(throttle.locked_for("alice", ip).is_some_and(|d| d <= LOCKOUT && d > LOCKOUT / 2));
        assert!(!throttle.is_locked("alice", Some(IpAddr::from([10, 0, 0, 1]))));
        assert!(!throttle.is_locked("bob", ip));
    }

    #[test]
    fn a_success_clears_the_count() {
        let throttle = LoginThrottle::default();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.record_failure("alice", None, true);
        }
        throttle.record_success("alice", None);
        assert!(!throttle.record_failure("alice", None, true));
    }

    #[test]
    fn a_username_failing_from_many_addresses_is_slowed_never_locked() {
        let throttle = LoginThrottle::default();
        for i in 0..40u8 {
            throttle.record_failure("admin", Some(IpAddr::from([198, 51, 100, i])), true);
        }
        assert_eq!(throttle.username_delay("admin"), MAX_USERNAME_DELAY);
        assert!(!throttle.is_locked("admin", Some(IpAddr::from([203, 0, 113, 1]))), "another address may try");
        assert_eq!(throttle.username_delay("random-name"), Duration::ZERO);
        throttle.record_failure("ghost", None, false);
        assert!(!throttle.state().usernames.contains_key("ghost"), "unknown names are not kept per username");
    }

    #[test]
    fn when_full_the_oldest_pair_goes_first_in_constant_time() {
        let throttle = LoginThrottle::default();
        let ip = Some(IpAddr::from([198, 51, 100, 1]));
        for _ in 0..MAX_FAILURES {
            throttle.record_failure("victim-of-eviction", ip, false);
        }
        let started = Instant::now();
        for i in 0..MAX_ENTRIES + 10 {
            throttle.record_failure(&format!("u{i}"), ip, false);
        }
        assert_eq!(throttle.pairs(), MAX_ENTRIES);
        assert!(!throttle.is_locked("victim-of-eviction", ip), "the oldest pair was evicted");
        // A scan per insert once full (the old `retain`) took minutes here.
        assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    }
}
