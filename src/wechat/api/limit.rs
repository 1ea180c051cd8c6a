//! Pacing: a client-side rate limit per API, so bursts do not turn into 45009/45011 storms, and
//! the backoff schedule for answers that pass with time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// Requests per second allowed per API path; paths not listed get `default_per_sec`.
#[derive(Debug, Clone)]
pub struct RateLimits {
    pub default_per_sec: f64,
    pub per_path: HashMap<String, f64>,
}

impl Default for RateLimits {
    /// WeChat allows every mass-send API 60 calls a minute; the rest are limited per day, so a
    /// generous per-second pace only smooths bursts.
    fn default() -> Self {
        let mass =
            ["sendall", "send", "preview", "get", "delete"].map(|api| (format!("/cgi-bin/message/mass/{api}"), 1.0));
        Self { default_per_sec: 200.0, per_path: mass.into_iter().collect() }
    }
}

/// Why a `TAGCAST_WECHAT_RATE_LIMITS` spec was refused: the part at fault, as written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RateSpecError {
    /// No `=` in the part.
    #[error("`{part}` is not name=rate")]
    NotNameRate { part: String },
    #[error("`{rate}` is not a number")]
    NotANumber { rate: String },
    /// Zero, negative, infinite or NaN.
    #[error("rate for `{name}` must be above 0")]
    NotPositive { name: String, rate: f64 },
    #[error("`{name}` is neither `default` nor a path")]
    UnknownName { name: String },
}

impl RateLimits {
    /// Parses `default=200,/cgi-bin/message/mass/sendall=1`: per-second rates, by path.
    ///
    /// # Errors
    /// [`RateSpecError`]: a part that is not `name=positive number`.
    pub fn parse(spec: &str) -> Result<Self, RateSpecError> {
        let mut limits = Self::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, rate) =
                part.split_once('=').ok_or_else(|| RateSpecError::NotNameRate { part: part.to_owned() })?;
            let rate: f64 = rate.trim().parse().map_err(|_| RateSpecError::NotANumber { rate: rate.to_owned() })?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(RateSpecError::NotPositive { name: name.to_owned(), rate });
            }
            match name.trim() {
                "default" => limits.default_per_sec = rate,
                path if path.starts_with('/') => {
                    limits.per_path.insert(path.to_owned(), rate);
                }
                other => return Err(RateSpecError::UnknownName { name: other.to_owned() }),
            }
        }
        Ok(limits)
    }

    fn rate_for(&self, path: &str) -> f64 {
        self.per_path.get(path).copied().unwrap_or(self.default_per_sec)
    }
}

/// A token bucket per path holding a single call: calls are spaced `1/rate` apart, so no
/// one-second window ever sees more than the configured rate (plus the one in hand).
#[derive(Debug)]
pub(super) struct RateLimiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub(super) fn new(limits: RateLimits) -> Self {
        Self { limits, buckets: Mutex::new(HashMap::new()) }
    }

    /// Waits until a call of `path` fits the pace.
    pub(super) async fn acquire(&self, path: &str) {
        let rate = self.limits.rate_for(path);
        let burst = 1.0;
        let wait = {
            let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let now = Instant::now();
            let bucket = buckets.entry(path.to_owned()).or_insert(Bucket { tokens: burst, updated: now });
            bucket.tokens = (bucket.tokens + now.duration_since(bucket.updated).as_secs_f64() * rate).min(burst);
            bucket.updated = now;
            // Take the token now even if it is owed: later callers queue behind this one.
            bucket.tokens -= 1.0;
            if bucket.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-bucket.tokens / rate) }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// How transient failures are retried: exponential backoff with full jitter, bounded in count and time.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No new attempt starts after this much time since the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (attempt counts from 1).
    pub(super) fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        // Full jitter spreads the retries of many callers hit by the same storm.
        let jittered = rand::thread_rng().gen_range(0.5..=1.0) * ceiling.as_secs_f64();
        Duration::from_secs_f64(jittered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_spec_parses_defaults_and_paths() {
        let limits = RateLimits::parse("default=50, /cgi-bin/tags/create=2").expect("valid");
        assert_eq!(limits.default_per_sec, 50.0);
        assert_eq!(limits.rate_for("/cgi-bin/tags/create"), 2.0);
        assert_eq!(limits.rate_for("/cgi-bin/message/mass/sendall"), 1.0);
        assert_eq!(limits.rate_for("/cgi-bin/user/get"), 50.0);
        for bad in ["default", "default=0", "x=1", "/a=fast", "/a=-1"] {
            assert!(RateLimits::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rate_spec_errors_name_the_part_at_fault() {
        let error = |spec: &str| RateLimits::parse(spec).expect_err(spec);
        assert_eq!(error("default"), RateSpecError::NotNameRate { part: "default".into() });
        assert_eq!(error("/a= fast"), RateSpecError::NotANumber { rate: " fast".into() });
        assert_eq!(error("default=0"), RateSpecError::NotPositive { name: "default".into(), rate: 0.0 });
        assert_eq!(error(" x =1"), RateSpecError::UnknownName { name: "x".into() });
        assert_eq!(error("/a= fast").to_string(), "` fast` is not a number");
        assert_eq!(error("/a =-1").to_string(), "rate for `/a ` must be above 0");
        assert_eq!(error("x=1").to_string(), "`x` is neither `default` nor a path");
        assert_eq!(error("a;b").to_string(), "`a;b` is not name=rate");
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..20 {
            let d = policy.delay(attempt);
            assert!(d <= policy.max_delay, "{attempt}: {d:?}");
            assert!(d >= policy.base_delay.mul_f64(0.5).min(policy.max_delay.mul_f64(0.5)));
        }
        assert!(policy.delay(10) > policy.delay(1).mul_f64(1.0) || policy.delay(10) >= policy.max_delay.mul_f64(0.5));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_spaces_calls_beyond_the_burst() {
        let limiter = RateLimiter::new(RateLimits::parse("default=10").expect("valid"));
        let start = Instant::now();
        for _ in 0..30 {
            limiter.acquire("/x").await;
        }
        // The first at once, then one every 100 ms.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(2_850) && elapsed < Duration::from_millis(3_100), "{elapsed:?}");
    }
}
