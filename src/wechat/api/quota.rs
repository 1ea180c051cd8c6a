//! Daily quotas (wechat-api.md §14.2): once WeChat answers 45009 for a path, that path is
//! stopped until the next Beijing midnight, when WeChat resets its count. Retrying before then
//! only spends calls on refusals, so the client refuses the path itself in the meantime
//! ([`super::WeChatError::QuotaExhausted`]) and the callers wait instead of retrying.
//!
//! The stops live in a [`QuotaStops`] every process shares (PostgreSQL in production), so one
//! process meeting 45009 stops the path for all of them. A store that fails lets calls through:
//! WeChat still refuses them, and a broken store must not stop every API.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, Utc};

use super::token::BoxFuture;

/// Where every process keeps the account's stopped paths.
pub trait QuotaStops: Send + Sync {
    /// Until when `path` is stopped, if it is stopped now.
    fn stopped_until(&self, path: &str) -> BoxFuture<'_, Option<DateTime<Utc>>>;

    /// `path` met 45009: stops it until the next Beijing midnight and returns that time.
    fn stop(&self, path: &str) -> BoxFuture<'_, DateTime<Utc>>;

    /// Drops what this process remembers of the stops (the quota was reset).
    fn forget(&self) {}
}

/// The next Beijing midnight after `at`: when WeChat's daily quotas start over.
pub fn next_beijing_midnight(at: DateTime<Utc>) -> DateTime<Utc> {
    let beijing = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    let tomorrow = at.with_timezone(&beijing).date_naive().succ_opt().unwrap_or_default();
    let midnight = tomorrow.and_hms_opt(0, 0, 0).expect("midnight exists");
    midnight.and_local_timezone(beijing).single().map_or(at, |m| m.with_timezone(&Utc))
}

/// A 45009 met this soon after Beijing midnight may answer a call made before it, or WeChat's
/// reset may lag our clock: the path is stopped only until this long after midnight, then tried
/// again (a quota truly used up in the new day's first minutes stops it until the next one).
const AFTER_MIDNIGHT_GRACE: chrono::Duration = chrono::Duration::minutes(10);
/// Calls resume this long after Beijing midnight, not on the second: clocks differ.
const RESET_MARGIN: chrono::Duration = chrono::Duration::minutes(1);

/// When a path that met 45009 at `now` is tried again: a minute after the next Beijing
/// midnight, or, in the first minutes of a Beijing day, at the end of [`AFTER_MIDNIGHT_GRACE`].
pub fn quota_resumes_at(now: DateTime<Utc>) -> DateTime<Utc> {
    let next = next_beijing_midnight(now);
    let grace_ends = next - chrono::Duration::days(1) + AFTER_MIDNIGHT_GRACE;
    if now < grace_ends { grace_ends } else { next + RESET_MARGIN }
}

/// Stops for one process only (tools, unit tests), on the system clock.
#[derive(Default)]
pub struct MemoryQuotaStops {
    stops: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl QuotaStops for MemoryQuotaStops {
    fn stopped_until(&self, path: &str) -> BoxFuture<'_, Option<DateTime<Utc>>> {
        let until = self.stops.lock().ok().and_then(|s| s.get(path).copied()).filter(|u| *u > Utc::now());
        Box::pin(async move { until })
    }

    fn forget(&self) {
        if let Ok(mut stops) = self.stops.lock() {
            stops.clear();
        }
    }

    fn stop(&self, path: &str) -> BoxFuture<'_, DateTime<Utc>> {
        let until = quota_resumes_at(Utc::now());
        if let Ok(mut stops) = self.stops.lock() {
            stops.insert(path.to_owned(), until);
        }
        Box::pin(async move { until })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn beijing_midnight_is_sixteen_utc() {
        assert_eq!(next_beijing_midnight(at("2026-12-07T05:00:00Z")), at("2026-12-07T16:00:00Z"));
        assert_eq!(next_beijing_midnight(at("2026-12-07T16:00:00Z")), at("2026-12-08T16:00:00Z"));
        assert_eq!(next_beijing_midnight(at("2026-12-07T15:59:59Z")), at("2026-12-07T16:00:00Z"));
    }

    #[test]
    fn a_stop_ends_a_minute_after_midnight_or_soon_when_the_day_has_just_begun() {
        assert_eq!(quota_resumes_at(at("2026-12-07T05:00:00Z")), at("2026-12-07T16:01:00Z"));
        // 00:00:00.5 Beijing: likely the answer to a call of the old day; try again at 00:10.
        assert_eq!(quota_resumes_at(at("2026-12-07T16:00:00.5Z")), at("2026-12-07T16:10:00Z"));
        assert_eq!(quota_resumes_at(at("2026-12-07T16:09:59Z")), at("2026-12-07T16:10:00Z"));
        assert_eq!(quota_resumes_at(at("2026-12-07T16:10:00Z")), at("2026-12-08T16:01:00Z"));
    }
}
