//! The time segments and dynamic tags are evaluated at. Production reads the system clock;
//! tests hold a handle to the same clock as the application and move it forward, so a
//! "30 days without an order" tag can be seen to flip without waiting 30 days.
//!
//! Only what the expression language compares with (windows in segments and dynamic tags) goes
//! through it; database defaults (`received_at`, `tagged_at`) and WeChat's timestamps do not.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// The system clock plus an offset that only tests change. Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock, unshifted.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, as the application sees it.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset_seconds.load(Ordering::Relaxed))
    }

    /// Now in unix seconds (what [`crate::domain::expr`] compares windows with).
    pub fn unix(&self) -> i64 {
        self.now().timestamp()
    }

    /// Moves this clock and every clone of it forward (or back, with a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_seconds.fetch_add(by.num_seconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_move_together() {
        let clock = Clock::system();
        let seen_by_app = clock.clone();
        let before = seen_by_app.unix();
        clock.advance(chrono::Duration::days(30));
        let after = seen_by_app.unix();
        assert!((after - before - 30 * 86_400).abs() <= 2, "{before} -> {after}");
    }
}
