//! The bounded cost of argon2id checks: at most [`GateSettings::concurrent`] at once per
//! process, and at most [`GateSettings::per_sec`] a second for usernames that do not exist
//! (which also never wait for a free check).
//!
//! Each check holds 19 MiB for tens of milliseconds. Before this gate, every anonymous attempt
//! got a blocking thread of its own, so a flood of wrong passwords grew memory with the number
//! of attempts in flight. A check waits at most [`WAIT`] for a permit and is refused after that
//! (the caller answers 429 with `Retry-After`). The permit moves into the blocking task, so a
//! client that hangs up does not free its slot while its hash is still running.
//!
//! Bounding the checks bounds the peak; the settled figure needs one more step. glibc's malloc
//! serves a 19 MiB block by `mmap` only until the first such block is freed: then it raises its
//! threshold and keeps later blocks in per-thread arenas, each holding on to 19 MiB once the check
//! is over (mallopt(3), M_MMAP_THRESHOLD: the dynamic threshold). A fixed threshold keeps
//! allocations of 16 MiB and more on `mmap`, returned to the OS on free; smaller ones are unchanged.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

/// How long an attempt waits for a free check before it is refused.
pub const WAIT: Duration = Duration::from_secs(2);

/// `TAGCAST_PASSWORD_CHECKS` and `TAGCAST_PASSWORD_CHECKS_PER_SEC`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateSettings {
    /// Checks running at once. More than the cores adds no throughput, only memory and latency.
    pub concurrent: usize,
    /// Checks a second for unknown usernames (and the budget known ones draw from first).
    pub per_sec: u32,
}

impl Default for GateSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self { concurrent: cores.clamp(1, 4), per_sec: 20 }
    }
}

/// What `/metrics` shows of password checks.
#[derive(Debug, Clone, Default)]
pub struct PasswordMetrics {
    running: Gauge,
    /// The most ever running at once since start: the bound, made visible.
    running_max: Gauge,
    max_seen: Arc<AtomicI64>,
    outcomes: Family<OutcomeLabel, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

impl PasswordMetrics {
    /// Adds the password-check gauges and counters to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register("tagcast_password_checks_running", "argon2id checks running now", self.running.clone());
        registry.register(
            "tagcast_password_checks_running_max",
            "The most argon2id checks that ever ran at once in this process",
            self.running_max.clone(),
        );
        registry.register(
            "tagcast_password_checks",
            "Sign-in password checks, by outcome (checked, busy: no free check within the wait, \
             rate: the per-second cap for unknown usernames was spent)",
            self.outcomes.clone(),
        );
    }

    fn count(&self, outcome: &'static str) {
        self.outcomes.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    fn started(&self) {
        let now = self.running.inc() + 1;
        let max = self.max_seen.fetch_max(now, Ordering::Relaxed).max(now);
        self.running_max.set(max);
    }
}

/// Decrements the running gauge when the blocking check ends, however it ends.
struct Running(PasswordMetrics);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.dec();
    }
}

/// Refill-as-you-go token bucket: `per_sec` tokens a second, holding at most `per_sec`.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Why a check was not run; the caller answers 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub retry_after: Duration,
}

/// Shared by every HTTP worker of a process (it lives in the `Authenticator`).
#[derive(Debug)]
pub struct PasswordGate {
    settings: GateSettings,
    permits: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
    metrics: PasswordMetrics,
}

/// Large allocations from `mmap`, always (see the module's comment).
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only sets a malloc parameter under malloc's own lock.
            let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20) };
            if set != 1 {
                tracing::warn!("could not fix malloc's mmap threshold: memory after password checks may stay high");
            }
        });
    }
}

impl PasswordGate {
    pub fn new(settings: GateSettings, metrics: PasswordMetrics) -> Self {
        return_large_blocks_to_the_os();
        Self {
            permits: Arc::new(Semaphore::new(settings.concurrent.max(1))),
            bucket: Mutex::new(Bucket { tokens: f64::from(settings.per_sec), at: Instant::now() }),
            settings,
            metrics,
        }
    }

    /// Takes a token when one is left.
    fn take_token(&self) -> bool {
        let rate = f64::from(self.settings.per_sec);
        let mut bucket = self.bucket.lock().expect("no panics while holding the lock");
        let now = Instant::now();
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Runs `check` (an argon2id verification) on a blocking thread under a permit.
    ///
    /// `known` says whether the username exists: an unknown one is refused once this second's
    /// budget is spent or when no check is free at once, so made-up names cannot keep the CPU
    /// busy nor queue ahead of anybody; an existing one waits up to [`WAIT`] for a permit, so its
    /// owner can still sign in during such a flood.
    ///
    /// # Errors
    /// [`Busy`] when the budget is spent or no check is free (unknown names), or no permit came
    /// within [`WAIT`] (existing names).
    pub async fn run<F>(&self, known: bool, check: F) -> Result<bool, Busy>
    where
        F: FnOnce() -> bool + Send + 'static,
    {
        if !self.take_token() && !known {
            self.metrics.count("rate");
            return Err(Busy { retry_after: Duration::from_secs(1) });
        }
        let permit = if known {
            tokio::time::timeout(WAIT, Arc::clone(&self.permits).acquire_owned()).await.ok().and_then(Result::ok)
        } else {
            // Made-up names never queue: a queue of them would sit between a real user and
            // their check (measured: a sign-in waited 1.2 s behind a flood's first second).
            Arc::clone(&self.permits).try_acquire_owned().ok()
        };
        // The semaphore is never closed: no permit means none came free in time.
        let Some(permit) = permit else {
            self.metrics.count("busy");
            return Err(Busy { retry_after: if known { WAIT } else { Duration::from_secs(1) } });
        };
        self.metrics.started();
        let running = Running(self.metrics.clone());
        let result = tokio::task::spawn_blocking(move || {
            // Tuple fields drop in order: the gauge goes down before the permit frees the slot.
            let _held = (running, permit);
            check()
        })
        .await;
        self.metrics.count("checked");
        // A check that panicked is a failed check.
        Ok(result.unwrap_or(false))
    }

    /// The number of checks running now (tests and metrics).
    pub fn running(&self) -> i64 {
        self.metrics.running.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn never_more_than_the_configured_checks_run_and_the_rest_are_refused() {
        let gate =
            Arc::new(PasswordGate::new(GateSettings { concurrent: 2, per_sec: 1000 }, PasswordMetrics::default()));
        let attempts = (0..12).map(|_| {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                gate.run(true, || {
                    std::thread::sleep(Duration::from_millis(900));
                    true
                })
                .await
            })
        });
        let results = futures_util::future::join_all(attempts).await;
        let refused = results.iter().filter(|r| matches!(r, Ok(Err(_)))).count();
        assert!(refused >= 6, "12 checks of 0.9 s on 2 permits within 2 s: {refused} refused");
        assert_eq!(gate.metrics.running_max.get(), 2);
        assert_eq!(gate.running(), 0);
    }

    #[tokio::test]
    async fn unknown_names_are_refused_once_the_second_s_budget_is_spent_known_ones_are_not() {
        let gate = PasswordGate::new(GateSettings { concurrent: 2, per_sec: 3 }, PasswordMetrics::default());
        for _ in 0..3 {
            assert_eq!(gate.run(false, || false).await, Ok(false));
        }
        // (Sequential: a check is always free here, so only the budget refuses.)
        assert!(gate.run(false, || false).await.is_err());
        assert_eq!(gate.run(true, || true).await, Ok(true));
    }
}
