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
