//! User tags (wechat-api.md §7): `tags/create|get|update|delete`, `tags/members/batchtagging|
//! batchuntagging`, `tags/getidlist` and `user/tag/get`, with WeChat's limits.
//!
//! Rules, and what we chose where the doc is silent:
//! - created tags get ids from 100 upwards, never reused after a delete;
//! - reserved ids 0, 1, 2 can't be updated or deleted (45058). Only 2 (`星标组`, the star group)
//!   exists as a tag: `tags/get` lists it first (as WeChat does) and it can be tagged. 0 and 1
//!   (the legacy "ungrouped" and blacklist groups) are not tags here: tagging them is 45159;
//! - at most 100 created tags (45056); the star group doesn't count;
//! - names: empty or whitespace only (ASCII or full-width `　` spaces alike) 45157, the code the
//!   reference gives an invalid name; longer than 30 UTF-8 bytes 45158, the same as another tag's (the star
//!   group's included) 45157; renaming a tag to its own name is accepted;
//! - `tagid` and `tag.id` must be JSON numbers, as the reference shows them (a numeric string is
//!   47001, see `state::int_field`);
//! - unknown tag id: 45159 for every call (the doc names it for batch* only);
//! - batch calls: 0 or more than 50 openids 40032, then unknown tag 45159, then any openid that is
//!   not a current follower 40003, then (tagging) any follower who would pass 20 tags 45059.
//!   Everything is checked before anything changes, so a refused call changes nothing;
//! - a tag with more than 100,000 members can't be deleted (45057);
//! - `user/tag/get` pages members in follower order like `user/get` (same page size), answers
//!   `count: 0` with an empty `next_openid` after the last page, 40003 for a `next_openid` that is
//!   no follower;
//! - a follower who unsubscribes loses their tags (see `State::unsubscribe`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::error::{
    ApiError, ApiResult, INVALID_OPENID, INVALID_OPENID_LIST_SIZE, INVALID_TAG_ID, INVALID_TAG_NAME, RESERVED_TAG,
    TAG_HAS_TOO_MANY_FANS, TAG_NAME_TOO_LONG, TOO_MANY_TAGS, USER_HAS_TOO_MANY_TAGS, fail,
};
use super::state::{ApiRequest, State, int_field, str_field, string_list};
use super::users::page_body;

/// The star group, the one reserved tag `tags/get` lists.
pub(super) const STAR_TAG_ID: i64 = 2;
const STAR_TAG_NAME: &str = "星标组";
/// Ids that can never be changed (§7).
const RESERVED_IDS: [i64; 3] = [0, 1, 2];
/// First id a created tag gets.
const FIRST_TAG_ID: i64 = 100;
/// Created tags per account (§7).
pub(super) const MAX_TAGS: usize = 100;
/// Tag name length in UTF-8 bytes.
pub(super) const MAX_NAME_BYTES: usize = 30;
/// Tags per follower.
pub(super) const MAX_TAGS_PER_USER: usize = 20;
/// Openids per batch call.
pub(super) const MAX_BATCH: usize = 50;
/// Members above which a tag can't be deleted.
pub(super) const MAX_DELETABLE_MEMBERS: usize = 100_000;

/// One tag and its members (follower positions, so paging follows follower order).
pub(super) struct Tag {
    pub name: String,
    pub members: BTreeSet<u32>,
}

/// Every tag of the account, by id.
pub(super) struct Tags {
    map: BTreeMap<i64, Tag>,
    next_id: i64,
}

impl Default for Tags {
    fn default() -> Self {
        let star = Tag { name: STAR_TAG_NAME.to_owned(), members: BTreeSet::new() };
        Self { map: BTreeMap::from([(STAR_TAG_ID, star)]), next_id: FIRST_TAG_ID }
    }
}

impl Tags {
    /// What `tags/get` lists, by id.
    pub fn list(&self) -> impl Iterator<Item = (i64, &Tag)> {
        self.map.iter().map(|(&id, tag)| (id, tag))
    }

    pub fn get(&self, id: i64) -> Option<&Tag> {
        self.map.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Tag> {
        self.map.get_mut(&id)
    }

    /// Creates a tag as `tags/create` does.
    ///
    /// # Errors
    /// 45157, 45158, 45056.
    pub fn create(&mut self, name: &str) -> Result<i64, ApiError> {
        self.check_name(name, None)?;
        let created = self.map.keys().filter(|id| !RESERVED_IDS.contains(id)).count();
        if created >= MAX_TAGS {
            return fail(TOO_MANY_TAGS);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.map.insert(id, Tag { name: name.to_owned(), members: BTreeSet::new() });
        Ok(id)
    }

    /// Name rules; `except` is the tag being renamed.
    fn check_name(&self, name: &str, except: Option<i64>) -> Result<(), ApiError> {
        // A blank name would list as nothing in the console.
        if name.trim().is_empty() {
            return fail(INVALID_TAG_NAME);
        }
        if name.len() > MAX_NAME_BYTES {
            return fail(TAG_NAME_TOO_LONG);
        }
        if self.map.iter().any(|(&id, tag)| tag.name == name && Some(id) != except) {
            return fail(INVALID_TAG_NAME);
        }
        Ok(())
    }

    /// An existing, modifiable tag.
    fn modifiable(&self, id: Option<i64>) -> Result<i64, ApiError> {
        let Some(id) = id else { return fail(INVALID_TAG_ID) };
        if RESERVED_IDS.contains(&id) {
            return fail(RESERVED_TAG);
        }
        if self.map.contains_key(&id) { Ok(id) } else { fail(INVALID_TAG_ID) }
    }
}

/// The `tag` object of a request body (`{"tag": {...}}`).
fn tag_object(body: &Value) -> &Value {
    body.get("tag").unwrap_or(&Value::Null)
}

fn ok() -> Value {
    json!({"errcode": 0, "errmsg": "ok"})
}

/// `POST /cgi-bin/tags/create {"tag": {"name"}}` → `{"tag": {"id", "name"}}`.
pub(super) fn create(state: &mut State, req: &ApiRequest) -> ApiResult {
    let name = str_field(tag_object(&req.body), "name").unwrap_or("");
    let id = state.tags.create(name)?;
    Ok(json!({"tag": {"id": id, "name": name}}))
}

/// `GET /cgi-bin/tags/get` → `{"tags": [{"id", "name", "count"}]}`.
pub(super) fn get(state: &mut State, _req: &ApiRequest) -> ApiResult {
    let tags: Vec<Value> =
        state.tags.list().map(|(id, tag)| json!({"id": id, "name": tag.name, "count": tag.members.len()})).collect();
    Ok(json!({"tags": tags}))
}

/// `POST /cgi-bin/tags/update {"tag": {"id", "name"}}`.
pub(super) fn update(state: &mut State, req: &ApiRequest) -> ApiResult {
    let tag = tag_object(&req.body);
    let id = state.tags.modifiable(int_field(tag, "id")?)?;
    let name = str_field(tag, "name").unwrap_or("");
    state.tags.check_name(name, Some(id))?;
    if let Some(tag) = state.tags.get_mut(id) {
        tag.name = name.to_owned();
    }
    Ok(ok())
}

/// `POST /cgi-bin/tags/delete {"tag": {"id"}}`.
pub(super) fn delete(state: &mut State, req: &ApiRequest) -> ApiResult {
    let id = state.tags.modifiable(int_field(tag_object(&req.body), "id")?)?;
    if state.tags.get(id).is_some_and(|t| t.members.len() > MAX_DELETABLE_MEMBERS) {
        return fail(TAG_HAS_TOO_MANY_FANS);
    }
    if let Some(tag) = state.tags.map.remove(&id) {
        for index in tag.members {
            state.followers.at_mut(index).tags.retain(|&t| t != id);
        }
    }
    Ok(ok())
}

/// Validates a batch call: its tag id and the positions of its (current) followers.
fn batch_targets(state: &State, body: &Value) -> Result<(i64, Vec<u32>), ApiError> {
    let openids = string_list(body, "openid_list", INVALID_OPENID_LIST_SIZE)?.unwrap_or_default();
    if openids.is_empty() || openids.len() > MAX_BATCH {
        return fail(INVALID_OPENID_LIST_SIZE);
    }
    let tag_id = match int_field(body, "tagid")? {
        Some(id) if state.tags.get(id).is_some() => id,
        _ => return fail(INVALID_TAG_ID),
    };
    let mut indices = Vec::with_capacity(openids.len());
    for openid in &openids {
        match state.followers.subscribed_index(openid) {
            Some(i) => indices.push(i),
            None => return fail(INVALID_OPENID),
        }
    }
    Ok((tag_id, indices))
}

/// `POST /cgi-bin/tags/members/batchtagging {"openid_list", "tagid"}`: all or nothing.
pub(super) fn batch_tagging(state: &mut State, req: &ApiRequest) -> ApiResult {
    let (tag_id, indices) = batch_targets(state, &req.body)?;
    let over_limit = indices.iter().any(|&i| {
        let tags = &state.followers.at(i).tags;
        !tags.contains(&tag_id) && tags.len() >= MAX_TAGS_PER_USER
    });
    if over_limit {
        return fail(USER_HAS_TOO_MANY_TAGS);
    }
    for &index in &indices {
        let follower = state.followers.at_mut(index);
        if !follower.tags.contains(&tag_id) {
            follower.tags.push(tag_id);
        }
    }
    if let Some(tag) = state.tags.get_mut(tag_id) {
        tag.members.extend(indices);
    }
    Ok(ok())
}

/// `POST /cgi-bin/tags/members/batchuntagging {"openid_list", "tagid"}`: all or nothing.
pub(super) fn batch_untagging(state: &mut State, req: &ApiRequest) -> ApiResult {
    let (tag_id, indices) = batch_targets(state, &req.body)?;
    for &index in &indices {
        state.followers.at_mut(index).tags.retain(|&t| t != tag_id);
    }
    if let Some(tag) = state.tags.get_mut(tag_id) {
        for index in indices {
            tag.members.remove(&index);
        }
    }
    Ok(ok())
}

/// `POST /cgi-bin/tags/getidlist {"openid"}` → `{"tagid_list": [...]}`.
pub(super) fn id_list(state: &mut State, req: &ApiRequest) -> ApiResult {
    match str_field(&req.body, "openid").and_then(|o| state.followers.subscribed_index(o)) {
        Some(index) => Ok(json!({"tagid_list": state.followers.at(index).tags})),
        None => fail(INVALID_OPENID),
    }
}

/// `POST /cgi-bin/user/tag/get {"tagid", "next_openid"}`: one page of a tag's members.
pub(super) fn members(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(tag) = int_field(&req.body, "tagid")?.and_then(|id| state.tags.get(id)) else {
        return fail(INVALID_TAG_ID);
    };
    let page: Vec<u32> = match str_field(&req.body, "next_openid") {
        None => tag.members.iter().copied().take(state.control.page_size).collect(),
        Some(openid) => match state.followers.index_of(openid) {
            Some(after) => tag.members.range(after + 1..).copied().take(state.control.page_size).collect(),
            None => return fail(INVALID_OPENID),
        },
    };
    Ok(page_body(None, &state.followers.openids_of(&page)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_measured_in_utf8_bytes() {
        let mut tags = Tags::default();
        assert!(tags.create(&"广".repeat(10)).is_ok(), "10 CJK characters are 30 bytes");
        assert_eq!(tags.create(&"东".repeat(11)).unwrap_err().code, TAG_NAME_TOO_LONG);
        assert_eq!(tags.create(&"a".repeat(31)).unwrap_err().code, TAG_NAME_TOO_LONG);
        assert_eq!(tags.create("").unwrap_err().code, INVALID_TAG_NAME);
        assert_eq!(tags.create("   ").unwrap_err().code, INVALID_TAG_NAME);
        assert_eq!(tags.create("\t\u{3000}").unwrap_err().code, INVALID_TAG_NAME);
        assert!(tags.create(" 油性 ").is_ok(), "spaces around text are the caller's business");
        assert_eq!(tags.create(STAR_TAG_NAME).unwrap_err().code, INVALID_TAG_NAME);
    }

    #[test]
    fn ids_start_at_100_and_are_not_reused() {
        let mut tags = Tags::default();
        assert_eq!(tags.create("a").unwrap(), 100);
        tags.map.remove(&100);
        assert_eq!(tags.create("a").unwrap(), 101);
    }

    #[test]
    fn the_hundred_tag_limit_ignores_the_star_group() {
        let mut tags = Tags::default();
        for i in 0..MAX_TAGS {
            tags.create(&format!("t{i}")).unwrap();
        }
        assert_eq!(tags.create("one more").unwrap_err().code, TOO_MANY_TAGS);
        assert_eq!(tags.list().count(), MAX_TAGS + 1);
    }
}
