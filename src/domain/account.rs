//! The kind of account tagcast serves: it decides quotas and which WeChat calls exist.

use std::str::FromStr;

/// Which kind of Official Account this is; it decides mass-send quotas and how segments are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    /// 服务号: per-follower monthly mass-send limit, may send by openid list.
    Service,
    /// 订阅号/公众号: one successful mass send a day, tag or everyone only.
    Subscription,
}

/// A value that names no [`AccountType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `service` or `subscription`, got `{got}`")]
pub struct UnknownAccountType {
    pub got: String,
}

impl FromStr for AccountType {
    type Err = UnknownAccountType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "service" => Ok(Self::Service),
            "subscription" => Ok(Self::Subscription),
            other => Err(UnknownAccountType { got: other.to_owned() }),
        }
    }
}

impl AccountType {
    /// The name stored and accepted by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Subscription => "subscription",
        }
    }

    /// What operators call it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Service => "服务号",
            Self::Subscription => "订阅号",
        }
    }
}

/// Which account a row, a request or a job belongs to. Every follower, tag, rule, quiz, segment,
/// order and campaign has one; the deployment's first account is [`AccountId::FIRST`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub i64);

impl AccountId {
    /// The account the environment variables define, and the one every row of a database from
    /// before accounts belongs to.
    pub const FIRST: Self = Self(1);

    pub fn get(self) -> i64 {
        self.0
    }

    /// The push's dedupe key as stored: the first account's keys are bare (an instance of the
    /// release before accounts must recognise the same retry), every other account's are prefixed.
    pub fn scoped_dedupe_key(self, key: &str) -> String {
        if self == Self::FIRST { key.to_owned() } else { format!("{}/{key}", self.0) }
    }
}

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What makes a valid account handle: it appears in URLs (`/wechat/{name}`) and on the command line.
pub fn valid_account_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=32).contains(&bytes.len())
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accounts_after_the_first_prefix_their_dedupe_keys() {
        assert_eq!(AccountId::FIRST.scoped_dedupe_key("m:1"), "m:1");
        assert_eq!(AccountId(7).scoped_dedupe_key("m:1"), "7/m:1");
    }

    #[test]
    fn account_names_are_url_safe_handles() {
        for good in ["main", "shop-east", "a", "brand_2"] {
            assert!(valid_account_name(good), "{good}");
        }
        for bad in ["", "Main", "-x", "上海", "a b", "a/b", &"x".repeat(33)] {
            assert!(!valid_account_name(bad), "{bad}");
        }
    }
}
