//! Followers (wechat-api.md §8): the store every other family reads, deterministic seeding, and
//! `user/get`, `user/info`, `user/info/batchget`.
//!
//! Storage is built for a million followers: a `Vec` in subscription order (which is also the
//! `user/get` order) and an openid → position map sharing the same `Arc<str>`, so each openid is
//! stored once. Tags and mass jobs refer to followers by position (`u32`).
//!
//! Rules:
//! - `user/get` pages 10,000 subscribed followers (configurable); `next_openid` is the last
//!   openid of the page; the call after the last page answers `count: 0`, no `data`, and an empty
//!   `next_openid`; a `next_openid` that is no follower of the account is 40003;
//! - `unionid` is in `user/info` (subscribed or not) only for followers given one
//!   ([`super::MockWeChat::set_unionid`]: the account bound to an Open Platform account);
//! - `user/info` answers only `subscribe: 0` and `openid` for someone who unsubscribed, and never
//!   nickname, avatar, sex or location (the 2021-12-27 change); `language` is empty; unknown or
//!   missing openid 40003;
//! - `user/info/batchget` takes 1..=100 entries (else 40032, the code of the other list-size
//!   refusals, as the doc gives none) and refuses the whole call with 40003 if any openid is not
//!   known to the account.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::error::{ApiResult, INVALID_OPENID, INVALID_OPENID_LIST_SIZE, fail};
use super::state::{ApiRequest, State, str_field};

/// `subscribe_scene` values (§8.2) with the share of seeded followers (percent) that get each.
const SCENES: [(&str, u64); 12] = [
    ("ADD_SCENE_SEARCH", 30),
    ("ADD_SCENE_QR_CODE", 25),
    ("ADD_SCENE_PROFILE_CARD", 15),
    ("ADD_SCENE_ACCOUNT_MIGRATION", 5),
    ("ADD_SCENE_PROFILE_LINK", 5),
    ("ADD_SCENE_PROFILE_ITEM", 5),
    ("ADD_SCENE_WECHAT_ADVERTISEMENT", 5),
    ("ADD_SCENE_PAID", 3),
    ("ADD_SCENE_REPRINT", 3),
    ("ADD_SCENE_LIVESTREAM", 2),
    ("ADD_SCENE_CHANNELS", 1),
    ("ADD_SCENE_OTHERS", 1),
];
/// Scene of followers added one at a time.
const DEFAULT_SCENE: u8 = 0;
/// Max entries of `user/info/batchget` (§8.3).
const BATCHGET_MAX: usize = 100;
/// Seeded subscribe times fall within this many seconds before now.
const YEAR_SECS: u64 = 365 * 86_400;
/// Openids are 28 characters of this alphabet, like WeChat's.
const OPENID_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// One follower, current or former.
pub(super) struct Follower {
    pub openid: Arc<str>,
    pub subscribed: bool,
    pub subscribe_time: i64,
    /// When they last unsubscribed (kept after a re-subscribe, for datacube).
    pub unsubscribe_time: Option<i64>,
    /// Index into the scene table.
    pub scene: u8,
    /// Tag ids in the order added; at most 20 through the API.
    pub tags: Vec<i64>,
    /// Set when the account is bound to an Open Platform account (§8.2).
    pub unionid: Option<Arc<str>>,
    /// Beijing month (`yyyymm`) that `mass_in_month` counts.
    pub mass_month: u32,
    /// Mass messages received in `mass_month` (service accounts allow 4).
    pub mass_in_month: u8,
}

impl Follower {
    /// The `subscribe_scene` string.
    pub fn scene_name(&self) -> &'static str {
        SCENES.get(usize::from(self.scene)).map_or("ADD_SCENE_OTHERS", |(name, _)| name)
    }
}

/// Every follower the account ever had.
#[derive(Default)]
pub(super) struct Followers {
    list: Vec<Follower>,
    index: HashMap<Arc<str>, u32>,
    subscribed: usize,
    /// How many followers `seed` made so far: the next one's sequence number.
    seeded: u64,
}

impl Followers {
    /// Position of a follower, current or former.
    pub fn index_of(&self, openid: &str) -> Option<u32> {
        self.index.get(openid).copied()
    }

    /// Position of a current follower.
    pub fn subscribed_index(&self, openid: &str) -> Option<u32> {
        self.index_of(openid).filter(|&i| self.at(i).subscribed)
    }

    pub fn get(&self, openid: &str) -> Option<&Follower> {
        self.index_of(openid).map(|i| self.at(i))
    }

    pub fn at(&self, index: u32) -> &Follower {
        &self.list[index as usize]
    }

    pub fn at_mut(&mut self, index: u32) -> &mut Follower {
        &mut self.list[index as usize]
    }

    /// Every follower ever, in subscription order.
    pub fn all(&self) -> &[Follower] {
        &self.list
    }

    /// How many follow the account now.
    pub fn subscribed_count(&self) -> usize {
        self.subscribed
    }

    /// Positions of every current follower, in order.
    pub fn subscribed_indices(&self) -> Vec<u32> {
        (0..self.list.len() as u32).filter(|&i| self.at(i).subscribed).collect()
    }

    /// The openids at `indices`.
    pub fn openids_of(&self, indices: &[u32]) -> Vec<String> {
        indices.iter().map(|&i| self.at(i).openid.to_string()).collect()
    }

    /// Adds `n` seeded followers and returns their openids.
    pub fn seed(&mut self, n: usize, now: i64) -> Vec<String> {
        self.list.reserve(n);
        self.index.reserve(n);
        let mut added = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.seeded;
            self.seeded += 1;
            let openid = seeded_openid(k);
            if self.index.contains_key(openid.as_str()) {
                continue;
            }
            let ago = i64::try_from(mix(k ^ 0x5eed_0001) % YEAR_SECS).unwrap_or(0);
            let scene = pick_scene(mix(k ^ 0x5eed_0002) % 100);
            self.push(&openid, now - ago, scene);
            added.push(openid);
        }
        added
    }

    /// Subscribes `openid` now: a new follower, or a former one coming back.
    pub fn subscribe(&mut self, openid: &str, now: i64) {
        match self.index_of(openid) {
            Some(i) if self.at(i).subscribed => {}
            Some(i) => {
                let follower = self.at_mut(i);
                follower.subscribed = true;
                follower.subscribe_time = now;
                self.subscribed += 1;
            }
            None => self.push(openid, now, DEFAULT_SCENE),
        }
    }

    /// Unsubscribes a current follower; returns their position so the caller can drop their tags.
    pub fn unsubscribe(&mut self, openid: &str, now: i64) -> Option<u32> {
        let index = self.subscribed_index(openid)?;
        let follower = self.at_mut(index);
        follower.subscribed = false;
        follower.unsubscribe_time = Some(now);
        self.subscribed -= 1;
        Some(index)
    }

    /// Up to `size` current followers after position `after` (from the start when `None`).
    fn page(&self, after: Option<u32>, size: usize) -> Vec<u32> {
        let start = after.map_or(0, |a| a as usize + 1);
        (start..self.list.len()).map(|i| i as u32).filter(|&i| self.at(i).subscribed).take(size).collect()
    }

    fn push(&mut self, openid: &str, subscribe_time: i64, scene: u8) {
        let openid: Arc<str> = Arc::from(openid);
        let index = u32::try_from(self.list.len()).expect("fewer than 4 billion followers");
        self.index.insert(openid.clone(), index);
        self.list.push(Follower {
            openid,
            subscribed: true,
            subscribe_time,
            unsubscribe_time: None,
            scene,
            tags: Vec::new(),
            unionid: None,
            mass_month: 0,
            mass_in_month: 0,
        });
        self.subscribed += 1;
    }
}

/// splitmix64's finaliser: a bijection on `u64`, so distinct inputs give distinct outputs.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The k-th seeded openid: `oMock` + 23 characters. The first 11 encode all 64 bits of `mix(k)`,
/// so openids never repeat; the rest only make them look random.
fn seeded_openid(k: u64) -> String {
    let a = mix(k);
    let b = mix(a ^ 0xa5a5_a5a5_a5a5_a5a5);
    let mut openid = String::with_capacity(28);
    openid.push_str("oMock");
    for word in [a, b] {
        for chunk in 0..11 {
            openid.push(char::from(OPENID_ALPHABET[((word >> (chunk * 6)) & 63) as usize]));
        }
    }
    openid.push(char::from(OPENID_ALPHABET[(k & 63) as usize]));
    openid
}

fn pick_scene(mut percent: u64) -> u8 {
    for (i, (_, share)) in SCENES.iter().enumerate() {
        if percent < *share {
            return i as u8;
        }
        percent -= share;
    }
    (SCENES.len() - 1) as u8
}

/// The `user/info` object of a follower.
fn info(follower: &Follower) -> Value {
    let mut info = if follower.subscribed {
        subscribed_info(follower)
    } else {
        json!({"subscribe": 0, "openid": &*follower.openid})
    };
    if let Some(unionid) = &follower.unionid {
        info["unionid"] = Value::from(&**unionid);
    }
    info
}

fn subscribed_info(follower: &Follower) -> Value {
    json!({
        "subscribe": 1,
        "openid": &*follower.openid,
        "language": "",
        "subscribe_time": follower.subscribe_time,
        "remark": "",
        "groupid": 0,
        "tagid_list": follower.tags,
        "subscribe_scene": follower.scene_name(),
        "qr_scene": 0,
        "qr_scene_str": "",
    })
}

/// `GET /cgi-bin/user/get?next_openid=`.
pub(super) fn user_get(state: &mut State, req: &ApiRequest) -> ApiResult {
    let followers = &state.followers;
    let after = match req.param("next_openid") {
        None => None,
        Some(openid) => match followers.index_of(openid) {
            Some(i) => Some(i),
            None => return fail(INVALID_OPENID),
        },
    };
    let page = followers.page(after, state.control.page_size);
    let total = followers.subscribed_count();
    Ok(page_body(Some(total), &followers.openids_of(&page)))
}

/// The paged answer of `user/get` (with `total`) and `user/tag/get` (without).
pub(super) fn page_body(total: Option<usize>, openids: &[String]) -> Value {
    let mut body = match openids.last() {
        None => json!({"count": 0, "next_openid": ""}),
        Some(last) => json!({"count": openids.len(), "data": {"openid": openids}, "next_openid": last}),
    };
    if let Some(total) = total {
        body["total"] = total.into();
    }
    body
}

/// `GET /cgi-bin/user/info?openid=&lang=`.
pub(super) fn user_info(state: &mut State, req: &ApiRequest) -> ApiResult {
    match req.param("openid").and_then(|o| state.followers.get(o)) {
        Some(follower) => Ok(info(follower)),
        None => fail(INVALID_OPENID),
    }
}

/// `POST /cgi-bin/user/info/batchget {"user_list": [{"openid", "lang"}]}`.
pub(super) fn user_info_batchget(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(entries) = req.body.get("user_list").and_then(Value::as_array) else {
        return fail(INVALID_OPENID_LIST_SIZE);
    };
    if entries.is_empty() || entries.len() > BATCHGET_MAX {
        return fail(INVALID_OPENID_LIST_SIZE);
    }
    let mut infos = Vec::with_capacity(entries.len());
    for entry in entries {
        match str_field(entry, "openid").and_then(|o| state.followers.get(o)) {
            Some(follower) => infos.push(info(follower)),
            None => return fail(INVALID_OPENID),
        }
    }
    Ok(json!({"user_info_list": infos}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_openids_look_like_wechat_openids_and_never_repeat() {
        let mut followers = Followers::default();
        let openids = followers.seed(50_000, 1_700_000_000);
        assert_eq!(openids.len(), 50_000);
        assert!(openids.iter().all(|o| o.len() == 28 && o.starts_with("oMock")));
        let unique: std::collections::HashSet<_> = openids.iter().collect();
        assert_eq!(unique.len(), openids.len());
        assert_eq!(followers.subscribed_count(), 50_000);
    }

    #[test]
    fn seeding_is_deterministic_and_continues_the_sequence() {
        let (mut a, mut b) = (Followers::default(), Followers::default());
        let first = a.seed(3, 0);
        let second = a.seed(2, 0);
        let all = b.seed(5, 0);
        assert_eq!([first, second].concat(), all);
    }

    #[test]
    fn seeded_subscribe_times_fall_in_the_past_year_and_scenes_vary() {
        let mut followers = Followers::default();
        followers.seed(1000, 1_700_000_000);
        let times: Vec<i64> = followers.all().iter().map(|f| f.subscribe_time).collect();
        assert!(times.iter().all(|&t| t <= 1_700_000_000 && t > 1_700_000_000 - 365 * 86_400));
        let scenes: std::collections::HashSet<_> = followers.all().iter().map(Follower::scene_name).collect();
        assert!(scenes.len() >= 8, "{scenes:?}");
    }
}
