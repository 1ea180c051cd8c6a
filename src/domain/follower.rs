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

/// A follower's command to list their tags (CONTRACT.md §3).
pub const MY_TAGS: &str = "我的标签";
/// A follower's command to remove all their tags (PIPL: a self-service way to delete). It also
/// refuses profiling (PIPL art. 24): no intent tag and no purchase score until [`ALLOW_GUESSES`].
pub const DELETE_MY_TAGS: &str = "删除我的标签";
/// A follower's command to allow intent tags and purchase scores again.
pub const ALLOW_GUESSES: &str = "允许推测";
/// Every follower command: none of them is a message to learn an intent from.
pub const COMMANDS: [&str; 3] = [MY_TAGS, DELETE_MY_TAGS, ALLOW_GUESSES];
