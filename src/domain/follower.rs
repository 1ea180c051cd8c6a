//! Who counts as a follower of the account.

/// The simulator's followers carry this prefix on a real account (WeChat's openids never do: they
/// are 28 characters of base64 starting with `o`). They are test followers: they take the real
/// callback path and may receive previews, but they never count in segments, campaign audiences
/// or the board. The store's `not_test_follower!` writes the same rule in SQL.
pub const TEST_OPENID_PREFIX: &str = "test_";

/// Whether `openid` belongs to a simulated test follower.
pub fn is_test_follower(openid: &str) -> bool {
    openid.starts_with(TEST_OPENID_PREFIX)
}
