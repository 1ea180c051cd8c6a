//! Sign-in throttling, shared by the login page and the API's HTTP Basic.
//!
//! - A (username, client address) pair with [`MAX_FAILURES`] wrong passwords within [`WINDOW`]
//!   is refused for [`LOCKOUT`] without checking the password.
//! - An attempt reserves its place in the pair's count before its password is checked
//!   ([`LoginThrottle::reserve`]): attempts in flight count with the failures, so a burst of
//!   parallel attempts gets no more checks than sequential ones would.
//! - IPv6 clients are counted per /64: one host usually holds a whole /64 and can pick any
//!   address in it.
//! - A username failing from many addresses is slowed down, never locked: each attempt for it
//!   waits up to [`MAX_USERNAME_DELAY`] first. Locking the username itself would let anyone who
//!   knows an admin's name lock that admin out from every address.
//!
//! In memory, per process: a restart forgets, and each instance counts on its own. Memory is
//! bounded: at most [`MAX_ENTRIES`] pairs, the oldest evicted first in O(1). Failures are only
//! recorded after a password check, and those are capped per second (see `super::gate`), so
//! evicting a pair still locked out needs more checks than the cap allows in a [`LOCKOUT`].
//! Attempts in flight are kept apart from the pairs (and never evict them), each removed when
//! its attempt ends, so they are bounded by the requests running at once.

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

/// How long a refused attempt is told to wait when the pair is not locked yet but the attempts
/// in flight would use its remaining guesses: about one password check.
const IN_FLIGHT_RETRY: Duration = Duration::from_secs(1);

type Pair = (String, Option<IpAddr>);

/// The address a pair is counted under: IPv4 (also when mapped into IPv6) as is, IPv6 by /64.
fn address_key(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(|ip| match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
        IpAddr::V4(_) => ip,
    })
}

fn pair(username: &str, ip: Option<IpAddr>) -> Pair {
    (normalize(username), address_key(ip))
}

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
    /// Attempts whose password check has not ended yet, per pair; absent at zero.
    in_flight: HashMap<Pair, u32>,
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

/// One attempt's place in its pair's count, from [`LoginThrottle::reserve`]; given back when
/// dropped, or turned into a failure or a success.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    pair: Pair,
    released: bool,
}

impl Attempt<'_> {
    /// The password was wrong (`known`: the username exists). Returns whether the pair is now
    /// locked out.
    pub fn failed(mut self, known: bool) -> bool {
        let mut state = self.throttle.state();
        release(&mut state, &self.pair);
        self.released = true;
        record_failure(&mut state, &self.pair, known)
    }

    /// The password was right: the pair's count is cleared (not the username's: other
    /// addresses' failures still count against it).
    pub fn succeeded(mut self) {
        let mut state = self.throttle.state();
        release(&mut state, &self.pair);
        self.released = true;
        state.pairs.remove(&self.pair);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.released {
            release(&mut self.throttle.state(), &self.pair);
        }
    }
}

fn release(state: &mut State, pair: &Pair) {
    if let Some(n) = state.in_flight.get_mut(pair) {
        *n -= 1;
        if *n == 0 {
            state.in_flight.remove(pair);
        }
    }
}

fn normalize(username: &str) -> String {
    username.trim().to_lowercase()
}

impl LoginThrottle {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("no panics while holding the lock")
    }

    /// How much longer this pair is locked out, if it is.
    #[cfg(test)]
    fn locked_for(&self, username: &str, ip: Option<IpAddr>) -> Option<Duration> {
        locked_for(&self.state(), &pair(username, ip), Instant::now())
    }

    /// Reserves an attempt for this pair before its password is checked, or says how long to
    /// wait: refused while the pair is locked out, or while its failures and the attempts in
    /// flight reach [`MAX_FAILURES`].
    ///
    /// # Errors
    /// The time to wait before trying again.
    pub fn reserve(&self, username: &str, ip: Option<IpAddr>) -> Result<Attempt<'_>, Duration> {
        let now = Instant::now();
        let pair = pair(username, ip);
        let mut state = self.state();
        if let Some(wait) = locked_for(&state, &pair, now) {
            return Err(wait);
        }
        let failures = state.pairs.get(&pair).filter(|f| !f.stale(now)).map_or(0, |f| f.count);
        let in_flight = state.in_flight.get(&pair).copied().unwrap_or(0);
        if failures.saturating_add(in_flight) >= MAX_FAILURES {
            return Err(IN_FLIGHT_RETRY);
        }
        *state.in_flight.entry(pair.clone()).or_insert(0) += 1;
        drop(state);
        Ok(Attempt { throttle: self, pair, released: false })
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

    /// Counts a wrong password without a reservation (tests).
    #[cfg(test)]
    fn record_failure(&self, username: &str, ip: Option<IpAddr>, known: bool) -> bool {
        record_failure(&mut self.state(), &pair(username, ip), known)
    }

    #[cfg(test)]
    fn record_success(&self, username: &str, ip: Option<IpAddr>) {
        self.state().pairs.remove(&pair(username, ip));
    }

    #[cfg(test)]
    fn pairs(&self) -> usize {
        self.state().pairs.len()
    }
}

fn locked_for(state: &State, pair: &Pair, now: Instant) -> Option<Duration> {
    let until = state.pairs.get(pair).and_then(|f| f.locked_until)?;
    (now < until).then(|| until - now)
}

/// Counts a wrong password; `known` says whether the username exists (only those are counted
/// per username). Returns whether the pair is now locked out.
fn record_failure(state: &mut State, pair: &Pair, known: bool) -> bool {
    let now = Instant::now();
    if known {
        let f = state.usernames.entry(pair.0.clone()).or_insert(Failures::new(now));
        if f.stale(now) {
            *f = Failures::new(now);
        }
        f.count = f.count.saturating_add(1);
    }
    let fresh = match state.pairs.get(pair) {
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
    let entry = state.pairs.get_mut(pair).expect("inserted above when absent");
    entry.count += 1;
    if entry.count >= MAX_FAILURES {
        entry.locked_until = Some(now + LOCKOUT);
    }
    entry.locked_until.is_some()
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
    fn attempts_in_flight_count_with_the_failures_so_a_parallel_burst_gets_no_extra_guesses() {
        let throttle = LoginThrottle::default();
        let ip = Some(IpAddr::from([198, 51, 100, 1]));
        throttle.record_failure("alice", ip, true);
        let running: Vec<_> = (1..MAX_FAILURES).map(|_| throttle.reserve("alice", ip).expect("free")).collect();
        assert_eq!(throttle.reserve("Alice", ip).err(), Some(IN_FLIGHT_RETRY), "1 failure + 4 in flight = 5");
        assert!(throttle.reserve("alice", Some(IpAddr::from([198, 51, 100, 2]))).is_ok(), "another address");
        let mut running = running.into_iter();
        drop(running.next());
        let again = throttle.reserve("alice", ip).expect("an attempt that ended gives its place back");
        let locked: Vec<bool> = running.chain([again]).map(|a| a.failed(true)).collect();
        assert_eq!(locked.last(), Some(&true));
        assert!(throttle.reserve("alice", ip).err().is_some_and(|d| d > LOCKOUT / 2));
        assert!(throttle.state().in_flight.is_empty());
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let throttle = LoginThrottle::default();
        for i in 0..MAX_FAILURES {
            let ip = std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 7, 0, 0, 0, u16::try_from(i).expect("small"));
            throttle.record_failure("alice", Some(IpAddr::V6(ip)), true);
        }
        assert!(throttle.is_locked("alice", Some("2001:db8:0:7:ffff::1".parse().expect("ip"))));
        assert!(!throttle.is_locked("alice", Some("2001:db8:0:8::1".parse().expect("ip"))));
        for _ in 0..MAX_FAILURES {
            throttle.record_failure("bob", Some("::ffff:192.0.2.1".parse().expect("ip")), true);
        }
        assert!(throttle.is_locked("bob", Some(IpAddr::from([192, 0, 2, 1]))));
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
