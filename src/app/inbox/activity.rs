//! What a batch of pushes says about each follower: seen, subscribed or unsubscribed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::account::AccountId;
use crate::store::followers::FollowerActivity;
use crate::wechat::message::{Inbound, Message};

/// The time WeChat says the follower acted; absurd CreateTimes fall back to now.
pub(crate) fn occurred_at(message: &Message) -> DateTime<Utc> {
    DateTime::from_timestamp(message.create_time, 0).unwrap_or_else(Utc::now)
}

enum Effect<'a> {
    /// Not a follower's own action (job results pushed on the account's behalf).
    None,
    Seen,
    Subscribed(Option<&'a str>),
    Unsubscribed,
}

fn effect(message: &Message) -> Effect<'_> {
    match &message.body {
        Inbound::Subscribe { scene, .. } => Effect::Subscribed(scene.as_deref()),
        Inbound::Unsubscribe => Effect::Unsubscribed,
        // Results WeChat pushes on the account's behalf, not something the follower did.
        Inbound::MassSendJobFinish { .. }
        | Inbound::TemplateSendJobFinish { .. }
        | Inbound::SubscribeMsgSent { .. }
        | Inbound::FreePublishJobFinish { .. } => Effect::None,
        _ => Effect::Seen,
    }
}

/// One entry per follower, sorted by account and openid (the order rows are locked in).
pub(crate) fn follower_activity<'a>(
    messages: impl IntoIterator<Item = (AccountId, &'a Message)>,
) -> Vec<FollowerActivity> {
    let mut by_openid: BTreeMap<(AccountId, &str), FollowerActivity> = BTreeMap::new();
    for (account, message) in messages {
        let at = occurred_at(message);
        let (state, scene) = match effect(message) {
            Effect::None => continue,
            Effect::Seen => (None, None),
            Effect::Subscribed(scene) => (Some((true, at)), scene),
            Effect::Unsubscribed => (Some((false, at)), None),
        };
        let entry = by_openid.entry((account, message.from_user.as_str())).or_insert_with(|| FollowerActivity {
            account,
            openid: message.from_user.clone(),
            first_seen_at: at,
            last_seen_at: at,
            state_change: None,
            scene: None,
        });
        entry.first_seen_at = entry.first_seen_at.min(at);
        entry.last_seen_at = entry.last_seen_at.max(at);
        if let Some(change) = state {
            if entry.state_change.is_none_or(|(_, previous)| change.1 >= previous) {
                entry.state_change = Some(change);
                entry.scene = scene.map(str::to_owned);
            }
        }
    }
    by_openid.into_values().collect()
}
