//! All SQL lives here, one file per table group. Store functions take
//! `&impl deadpool_postgres::GenericClient`, so a pooled client or a transaction both work;
//! nothing here knows about HTTP or WeChat's wire format.

/// SQL for "`$openid` is not a simulated test follower" ([`crate::domain::follower`]), as a
/// literal so statements that use it stay literals (and `prepare_cached` keys).
macro_rules! not_test_follower {
    ($openid:literal) => {
        concat!("NOT starts_with(", $openid, ", 'test_')")
    };
}

pub mod accounts;
pub mod admin_sessions;
pub mod admins;
pub mod api_quota;
pub mod approvals;
pub mod audience_feed;
pub mod audit;
pub mod board;
pub mod campaigns;
pub mod database;
pub mod drafts;
pub mod event_cursor;
pub mod events;
pub mod followers;
pub mod intents;
pub mod jobs;
pub mod ops;
pub mod orders;
pub mod outbox;
pub mod ownership;
pub mod predictions;
pub mod quizzes;
pub mod rules;
pub mod segments;
pub mod sync;
pub mod tags;
pub mod test_followers;
pub mod tokens;

pub use database::{DatabaseError, build_pool, connect_pool, prepare_database};

#[cfg(test)]
mod tests {
    #[test]
    fn the_sql_rule_for_test_followers_is_the_domain_rule() {
        let expected = format!("NOT starts_with(f.openid, '{}')", crate::domain::follower::TEST_OPENID_PREFIX);
        assert_eq!(not_test_follower!("f.openid"), expected);
    }
}
