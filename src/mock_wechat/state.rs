//! Everything the mock remembers, in one [`State`] behind the `Mutex` of `MockWeChat`, plus the
//! mock's clock and the small helpers every handler uses to read a request.
//!
//! Owns the clock (wall time plus the offset `advance_time` adds, and Beijing-time calendar days
//! and months, which is how WeChat counts quotas) and the operations that touch more than one
//! family (unsubscribing drops tags; unchecked tagging for test set-up). Must not do I/O: the
//! lock is held while any of this runs.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};
use serde_json::Value;

use super::control::Control;
use super::error::{ApiError, DATA_FORMAT_ERROR, fail};
use super::mass::Mass;
use super::media::Media;
use super::misc::{OAuth, Windows};
use super::quota::Quotas;
use super::tags::Tags;
use super::tokens::Tokens;
use super::users::Followers;
use super::{MockAccountType, MockConfig};

/// WeChat's day and month boundaries are Beijing time (UTC+8).
const BEIJING_OFFSET_SECS: i32 = 8 * 3600;

/// The mock's memory.
pub(super) struct State {
    pub config: MockConfig,
    /// Added to the wall clock by `advance_time`.
    pub clock_offset_secs: i64,
    pub base_url: Option<String>,
    pub tokens: Tokens,
    pub followers: Followers,
    pub tags: Tags,
    pub mass: Mass,
    /// `(touser, body)` of every accepted customer-service message.
    pub custom_messages: Vec<(String, Value)>,
    /// Every accepted preview body.
    pub previews: Vec<Value>,
    /// The stored menu, as `menu/get` shows it under `menu`.
    pub menu: Option<Value>,
    pub oauth: OAuth,
    pub control: Control,
    /// Daily and per-minute call counts, `clear_quota` resets.
    pub quotas: Quotas,
    /// Customer-service windows opened by followers' interactions.
    pub windows: Windows,
    /// The draft box and the materials (`media.rs`).
    pub media: Media,
    /// Mass jobs created by the call in hand; the HTTP layer spawns their finish after unlocking.
    pub finishing: Vec<u64>,
    /// Sequence behind the `rid` of error messages.
    rid_seq: u64,
}

impl State {
    pub fn new(config: MockConfig) -> Self {
        Self {
            config,
            clock_offset_secs: 0,
            base_url: None,
            tokens: Tokens::default(),
            followers: Followers::default(),
            tags: Tags::default(),
            mass: Mass::default(),
            custom_messages: Vec::new(),
            previews: Vec::new(),
            menu: None,
            oauth: OAuth::default(),
            control: Control::default(),
            quotas: Quotas::default(),
            windows: Windows::default(),
            media: Media::default(),
            finishing: Vec::new(),
            rid_seq: 0,
        }
    }

    /// The mock's time, unix seconds.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp().saturating_add(self.clock_offset_secs)
    }

    /// Whether the mock plays a service account.
    pub fn is_service(&self) -> bool {
        self.config.account_type == MockAccountType::Service
    }

    /// A fresh request id for an `errmsg`, shaped like WeChat's.
    pub fn next_rid(&mut self) -> String {
        self.rid_seq += 1;
        format!("{:08x}-{:08x}-{:08x}", self.now(), self.rid_seq, 0x6d6f636b)
    }

    /// The follower leaves: unsubscribed, untagged.
    pub fn unsubscribe(&mut self, openid: &str, now: i64) {
        if let Some(index) = self.followers.unsubscribe(openid, now) {
            let tags = std::mem::take(&mut self.followers.at_mut(index).tags);
            for id in tags {
                if let Some(tag) = self.tags.get_mut(id) {
                    tag.members.remove(&index);
                }
            }
        }
    }

    /// Tags subscribed followers with `tag_id` ignoring the per-call and per-user limits.
    pub fn tag_unchecked(&mut self, tag_id: i64, openids: &[String]) -> usize {
        let Some(tag) = self.tags.get_mut(tag_id) else { return 0 };
        let mut tagged = 0;
        for openid in openids {
            let Some(index) = self.followers.subscribed_index(openid) else { continue };
            let follower = self.followers.at_mut(index);
            if !follower.tags.contains(&tag_id) {
                follower.tags.push(tag_id);
            }
            tag.members.insert(index);
            tagged += 1;
        }
        tagged
    }

    /// Takes `tag_id` off followers, as an operator does in WeChat's own console.
    pub fn untag_unchecked(&mut self, tag_id: i64, openids: &[String]) {
        for openid in openids {
            let Some(index) = self.followers.subscribed_index(openid) else { continue };
            self.followers.at_mut(index).tags.retain(|&t| t != tag_id);
            if let Some(tag) = self.tags.get_mut(tag_id) {
                tag.members.remove(&index);
            }
        }
    }
}

/// One API request as the handlers see it.
pub(super) struct ApiRequest {
    /// Query parameters (the first value of each name).
    pub query: HashMap<String, String>,
    /// The JSON body; `Null` for routes that take none.
    pub body: Value,
}

impl ApiRequest {
    /// A query parameter, `None` when absent or empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Beijing calendar date of a unix time.
pub(super) fn beijing_date(unix: i64) -> NaiveDate {
    let offset = FixedOffset::east_opt(BEIJING_OFFSET_SECS).expect("+8h is a valid offset");
    DateTime::from_timestamp(unix, 0).unwrap_or_default().with_timezone(&offset).date_naive()
}

/// Beijing calendar month of a unix time as `yyyymm`: the service account's monthly window.
pub(super) fn beijing_month(unix: i64) -> u32 {
    let date = beijing_date(unix);
    u32::try_from(date.year()).unwrap_or(0) * 100 + date.month()
}

/// Unix time of Beijing midnight starting `date`.
pub(super) fn beijing_midnight(date: NaiveDate) -> i64 {
    date.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp() - i64::from(BEIJING_OFFSET_SECS)
}

/// Reads a string field; `None` when absent, not a string, or empty.
pub(super) fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads an integer field the reference shows as a JSON number (`tagid`, `tag.id`,
/// `filter.tag_id`, `speed`, `mass/delete`'s `msg_id`): `Ok(None)` when absent or null, 47001
/// when it is there as anything but an integer, a numeric string included. The reference is
/// silent on what a string gets; 47001 ("data format error") is the stricter reading of a body
/// that does not have the documented shape.
pub(super) fn int_field(value: &Value, key: &str) -> Result<Option<i64>, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).map_or_else(|| fail(DATA_FORMAT_ERROR), Ok),
        Some(_) => fail(DATA_FORMAT_ERROR),
    }
}

/// Reads an integer field whose reference example is a string of digits (`mass/get`'s
/// `{"msg_id":"201053012"}`); a number is taken too, since the same id is a number everywhere
/// else. Anything else 47001, as [`int_field`].
pub(super) fn int_or_digits_field(value: &Value, key: &str) -> Result<Option<i64>, ApiError> {
    match value.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(Some).map_or_else(|_| fail(DATA_FORMAT_ERROR), Ok)
        }
        _ => int_field(value, key),
    }
}

/// Reads a boolean field the reference shows as `true`/`false` (`filter.is_to_all`,
/// `force_refresh`): `Ok(None)` when absent or null, 47001 for `0`/`1`, `"true"` or anything
/// else that is not a JSON boolean (the stricter reading; the reference is silent).
pub(super) fn bool_field(value: &Value, key: &str) -> Result<Option<bool>, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => fail(DATA_FORMAT_ERROR),
    }
}

/// Reads an array of strings; `Err(code)` when present but not all strings, `Ok(None)` when absent.
pub(super) fn string_list(value: &Value, key: &str, code: i64) -> Result<Option<Vec<String>>, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => match items.iter().map(|v| v.as_str().map(str::to_owned)).collect() {
            Some(list) => Ok(Some(list)),
            None => fail(code),
        },
        Some(_) => fail(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_days_start_at_sixteen_utc() {
        // 2024-05-01T15:59:59Z is still 23:59:59 on 1 May in Beijing; a second later it is 2 May.
        assert_eq!(beijing_date(1_714_579_199), NaiveDate::from_ymd_opt(2024, 5, 1).unwrap());
        assert_eq!(beijing_date(1_714_579_200), NaiveDate::from_ymd_opt(2024, 5, 2).unwrap());
        assert_eq!(beijing_midnight(NaiveDate::from_ymd_opt(2024, 5, 2).unwrap()), 1_714_579_200);
        assert_eq!(beijing_month(1_714_579_200), 202_405);
    }

    #[test]
    fn numbers_and_booleans_must_have_the_documented_json_type() {
        let v = serde_json::json!({"a": 7, "b": "201053012", "c": "x", "f": 1.5, "t": true, "n": null, "one": 1});
        assert_eq!(int_field(&v, "a"), Ok(Some(7)));
        assert_eq!(int_field(&v, "missing"), Ok(None));
        assert_eq!(int_field(&v, "n"), Ok(None));
        assert_eq!(int_field(&v, "b").unwrap_err().code, DATA_FORMAT_ERROR);
        assert_eq!(int_field(&v, "f").unwrap_err().code, DATA_FORMAT_ERROR);
        assert_eq!(int_or_digits_field(&v, "b"), Ok(Some(201_053_012)));
        assert_eq!(int_or_digits_field(&v, "a"), Ok(Some(7)));
        assert_eq!(int_or_digits_field(&v, "c").unwrap_err().code, DATA_FORMAT_ERROR);
        assert_eq!(bool_field(&v, "t"), Ok(Some(true)));
        assert_eq!(bool_field(&v, "one").unwrap_err().code, DATA_FORMAT_ERROR);
        assert_eq!(bool_field(&v, "b").unwrap_err().code, DATA_FORMAT_ERROR);
    }
}
