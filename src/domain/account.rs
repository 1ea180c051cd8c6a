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

impl FromStr for AccountType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "service" => Ok(Self::Service),
            "subscription" => Ok(Self::Subscription),
            other => Err(format!("expected `service` or `subscription`, got `{other}`")),
        }
    }
}
