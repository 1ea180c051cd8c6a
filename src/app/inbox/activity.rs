//! What stored pushes say about each follower: seen, subscribed or unsubscribed.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::account::AccountId;
use crate::store::event_cursor::StoredEvent;
use crate::store::followers::FollowerActivity;
use crate::wechat::message::Message;

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

/// From an event's kind and raw EventKey, as stored ([`Message::kind`], [`Message::event_key`]).
fn effect<'a>(kind: &str, event_key: Option<&'a str>) -> Effect<'a> {
    match kind {
        // The QR scene without WeChat's prefix, as the parser gives it to rules.
        "subscribe" => {
            Effect::Subscribed(event_key.and_then(|key| key.strip_prefix("qrscene_")).filter(|scene| !scene.is_empty()))
        }
        "unsubscribe" => Effect::Unsubscribed,
        // Results WeChat pushes on the account's behalf, not something the follower did.
        "mass_send_job_finish" | "template_send_job_finish" | "subscribe_msg_sent" | "free_publish_job_finish" => {
            Effect::None
        }
        _ => Effect::Seen,
    }
}

/// One entry per follower, sorted by account and openid (the order rows are locked in).
pub(crate) fn follower_activity(events: &[StoredEvent]) -> Vec<FollowerActivity> {
    let mut by_openid: BTreeMap<(AccountId, &str), FollowerActivity> = BTreeMap::new();
    for event in events {
        let at = event.occurred_at;
        let (state, scene) = match effect(&event.kind, event.event_key.as_deref()) {
            Effect::None => continue,
            Effect::Seen => (None, None),
            Effect::Subscribed(scene) => (Some((true, at)), scene),
            Effect::Unsubscribed => (Some((false, at)), None),
        };
        let entry = by_openid.entry((event.account, event.openid.as_str())).or_insert_with(|| FollowerActivity {
            account: event.account,
            openid: event.openid.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, openid: &str, kind: &str, key: Option<&str>, at: i64) -> StoredEvent {
        StoredEvent {
            id,
            account: AccountId::FIRST,
            openid: openid.to_owned(),
            kind: kind.to_owned(),
            event_key: key.map(str::to_owned),
            occurred_at: DateTime::from_timestamp(at, 0).unwrap(),
            effects: None,
            received_at: DateTime::from_timestamp(at, 0).unwrap(),
            age_at_read: 0.0,
        }
    }

    #[test]
    fn the_newest_state_change_wins_and_keeps_its_scene_without_the_prefix() {
        let events = [
            event(1, "o1", "subscribe", Some("qrscene_shop"), 100),
            event(2, "o1", "unsubscribe", None, 200),
            event(3, "o1", "subscribe", Some("qrscene_ad"), 300),
            event(4, "o1", "click", Some("MENU"), 50),
            event(5, "o2", "mass_send_job_finish", None, 100),
        ];
        let activity = follower_activity(&events);
        assert_eq!(activity.len(), 1, "a job's result is no follower's activity");
        let o1 = &activity[0];
        assert_eq!(o1.state_change, Some((true, DateTime::from_timestamp(300, 0).unwrap())));
        assert_eq!(o1.scene.as_deref(), Some("ad"));
        assert_eq!(o1.first_seen_at.timestamp(), 50);
        assert_eq!(o1.last_seen_at.timestamp(), 300);
    }

    #[test]
    fn a_subscribe_with_an_empty_scene_has_none() {
        let activity = follower_activity(&[event(1, "o1", "subscribe", Some("qrscene_"), 1)]);
        assert_eq!(activity[0].scene, None);
    }
}
