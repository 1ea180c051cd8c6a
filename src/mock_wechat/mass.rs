//! Mass send (wechat-api.md §9): `message/mass/sendall|send|preview|get|delete|speed/get|
//! speed/set`, the jobs they create ([`MassJob`]) and the quotas that decide who receives them.
//!
//! A job's audience is computed when it is sent (the tag's members, every current follower, or
//! the openid list ∩ current followers); a moment later (the callback delay) the job finishes
//! and `callback.rs` pushes MASSSENDJOBFINISH. Counts follow WeChat's definitions:
//! `TotalCount` = the target (for `send`, the distinct openids given), `FilterCount` = who is
//! left after filtering (non-followers in a `send` list, followers already at their monthly
//! limit), `SentCount` = `FilterCount` − `ErrorCount`, `ErrorCount` = 0 unless steered (see
//! "How a job ends" below).
//!
//! Rules, and choices where the doc is silent:
//! - service account: each follower receives at most 4 mass messages per Beijing calendar month;
//!   the rest are filtered out of that job (not refused); `send` allowed;
//! - subscription account: `send` 48001; after one job not injected to fail on a Beijing day,
//!   sendall answers 45028 until midnight; no per-follower monthly limit;
//! - `clientmsgid` longer than 64 bytes 45067; the same `clientmsgid` less than a minute after
//!   its first use 45066 (no `msg_id`: the caller must wait and ask again), then within 24 h of
//!   its first use 45065 with the existing `msg_id` in the answer. Only the first use starts the
//!   clock (a refused repeat does not). Without a `clientmsgid` the key is a digest of audience
//!   and content, as WeChat derives one, so an identical send is 45066/45065 too;
//! - JSON types as the reference's examples show them: `filter.tag_id`, `send_ignore_reprint`,
//!   `speed`, `mass/delete`'s `msg_id` and `article_idx` numbers, `is_to_all` a boolean, else
//!   47001; `mass/get`'s `msg_id` also as a string of digits (its example sends it so);
//! - content: unknown `msgtype` 40008; empty text 44004, text over 2048 bytes 45002 (see
//!   `misc.rs` for the number); missing `media_id` (mpnews, voice, mpvideo, `images.media_ids`)
//!   40007; missing `wxcard.card_id` 40035. An mpnews `media_id` (sendall, send and preview)
//!   must be a draft in this mock's draft box (`media.rs`), else 40007; other media ids are not
//!   checked against uploads;
//! - an mpnews job publishes one article per article of its draft at the time of the send:
//!   one `ArticleUrlResult` item each (`ArticleIdx` 1..n), and datacube `msgid`s
//!   `<msg_data_id>_1` .. `<msg_data_id>_n`;
//! - sendall: no `filter`, or `is_to_all: false` without `tag_id`, 40035; unknown tag 45159;
//!   `send`: fewer than 2 or more than 10,000 openids 40130;
//! - preview: `towxname` wins over `touser`; a `touser` that is not a current follower 43004
//!   (unknown openid 40003); previews are recorded, count toward no send quota (only toward the
//!   preview API's own 100/day), and create no job;
//! - get/delete: unknown `msg_id` 40035; only mpnews/mpvideo jobs that finished successfully
//!   can be deleted (else 40035); `article_idx` 1..n deletes that article only (its URL stops
//!   working; the job stays `SEND_SUCCESS`), 0 or absent the whole job, beyond n 40035; a `url`
//!   names the job of any of its articles; `speed/set` outside 0..=4 45083, without `speed` 45084;
//! - the API's daily call quotas (sendall 100/day, preview 100/day) and 60/min are enforced by
//!   `quota.rs` before these handlers run.
//!
//! How a job ends (§9.8, §9.9): `send success` unless steered. A [`MassOutcome`] queued with
//! `MockWeChat::set_next_mass_outcome` (or `fail_next_mass_job`) is taken by the next job
//! created: a `Status` other than `send success` (`send fail`, `err(n)`) delivers to nobody and
//! pushes zero Filter/Sent/Error counts (as the reference's `err(30003)` example does); with
//! `send success`, `error_count` of the followers left after filtering are not reached
//! (`ErrorCount`; they are not counted toward their monthly 4, and `mass_recipients` leaves them
//! out), so `FilterCount = SentCount + ErrorCount`. Its `CopyrightCheckResult` items and
//! `CheckState` are pushed as given (default: no items, `CheckState` 1). Mass-send protection
//! (`MockWeChat::set_mass_protection`) applies to `is_to_all: true` sends only, as the reference
//! says: the call is accepted as usual, and the job ends `err(40001)` when the admin rejects it or
//! `err(40002)` when nobody confirms; that verdict wins over a queued outcome (which the job still
//! takes). The 30 minutes the admin has are not waited for: the verdict comes after the usual
//! callback delay.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::wechat::message::CopyrightCheckItem;

use super::error::{
    API_UNAUTHORIZED, ApiError, ApiResult, CLIENTMSGID_EXISTS, CLIENTMSGID_RETRIED_TOO_SOON, CLIENTMSGID_TOO_LONG,
    CONTENT_TOO_LONG, EMPTY_CONTENT, INVALID_ARGS, INVALID_MEDIA_ID, INVALID_MESSAGE_TYPE, INVALID_OPENID,
    INVALID_TAG_ID, INVALID_TOUSER_SIZE, NO_MASS_QUOTA, NO_SPEED, REQUIRE_SUBSCRIBE, SPEED_OUT_OF_RANGE, fail,
};
use super::media;
use super::misc::MAX_CONTENT_BYTES;
use super::state::{
    ApiRequest, State, beijing_date, beijing_month, bool_field, int_field, int_or_digits_field, str_field, string_list,
};

/// Mass messages one follower of a service account receives per calendar month (§9.2).
pub(super) const MONTHLY_LIMIT: u8 = 4;
/// `clientmsgid` length in bytes (§9.4).
const MAX_CLIENTMSGID_BYTES: usize = 64;
/// How long a `clientmsgid` is remembered (§9.4).
const CLIENTMSGID_WINDOW_SECS: i64 = 24 * 3600;
/// A repeat this soon after the first use is 45066, without the job's `msg_id` (§9.4, §9.7).
const CLIENTMSGID_RETRY_SECS: i64 = 60;
/// `send` takes 2..=10,000 openids (§9.5).
const MIN_TOUSER: usize = 2;
const MAX_TOUSER: usize = 10_000;
/// What `speed/get` reports as `realspeed` (万/min) for speed 0..=4 (§9.6).
const REAL_SPEEDS: [u32; 5] = [80, 60, 45, 30, 10];
/// First `msg_id` and `msg_data_id` handed out (WeChat's are of this size).
const FIRST_MSG_ID: u64 = 1_000_000_001;
const FIRST_MSG_DATA_ID: u64 = 2_247_483_001;
/// `Status` of a job that went out.
pub(super) const SEND_SUCCESS: &str = "send success";

/// Who a mass job was aimed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MassAudience {
    /// `sendall` with `is_to_all: true`.
    All,
    /// `sendall` to this tag id.
    Tag(i64),
    /// `send` to a list of this many distinct openids.
    OpenIds(usize),
}

impl fmt::Display for MassAudience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => write!(f, "all followers"),
            Self::Tag(id) => write!(f, "tag {id}"),
            Self::OpenIds(n) => write!(f, "{n} openids"),
        }
    }
}

/// Where a mass job is, as `mass/get` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum MassStatus {
    /// Accepted, not finished yet (before the callback delay ran out).
    Sending,
    /// Finished and delivered.
    SendSuccess,
    /// Finished with a `Status` other than `send success` (steered by a test, or mass-send
    /// protection).
    SendFail,
    /// Deleted by `mass/delete`.
    Delete,
}

impl MassStatus {
    /// The `msg_status` string of `mass/get`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "SENDING",
            Self::SendSuccess => "SEND_SUCCESS",
            Self::SendFail => "SEND_FAIL",
            Self::Delete => "DELETE",
        }
    }
}

/// One mass job (sendall or send) as the mock ran it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MassJob {
    /// The `msg_id` answered and pushed as `MsgID`.
    pub msg_id: u64,
    /// The `msg_data_id` answered for mpnews (the datacube `msgid` prefix).
    pub msg_data_id: Option<u64>,
    /// Who it was aimed at.
    pub audience: MassAudience,
    /// The `msgtype` sent (`text`, `mpnews`, `image`, ...).
    pub msgtype: String,
    /// The `clientmsgid` the caller sent, if any.
    pub clientmsgid: Option<String>,
    /// `TotalCount`: users in the target.
    pub total: u64,
    /// `FilterCount`: users left after filtering (≈ sent + error).
    pub filter: u64,
    /// `SentCount`.
    pub sent: u64,
    /// `ErrorCount`.
    pub error: u64,
    /// Where the job is (`mass/get`'s `msg_status`).
    pub status: MassStatus,
    /// The `Status` pushed in MASSSENDJOBFINISH: `send success`, `send fail` or `err(n)`.
    pub result: String,
    /// Mock time the job was accepted, unix seconds.
    pub created_at: i64,
    /// The article URLs pushed in `ArticleUrlResult`, article 1 first (mpnews only).
    pub article_urls: Vec<String>,
    /// Titles of the draft's articles when it was sent (mpnews only).
    pub articles: Vec<String>,
    /// Articles deleted one by one with `mass/delete` and `article_idx` (1-based).
    pub deleted_articles: Vec<u32>,
    /// `CopyrightCheckResult` items pushed.
    pub copyright_items: Vec<CopyrightCheckItem>,
    /// `CopyrightCheckResult.CheckState` pushed.
    pub check_state: u32,
    /// How many times MASSSENDJOBFINISH was POSTed.
    pub callback_attempts: u32,
    /// Whether one of those attempts got HTTP 200.
    pub callback_delivered: bool,
    /// The request body.
    pub request: Value,
}

/// How the next mass job ends, chosen ahead by a test or the control surface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MassOutcome {
    /// The `Status` pushed; `None` is `send success`. Anything else (`send fail`, `err(30003)`)
    /// delivers to nobody.
    pub status: Option<String>,
    /// With `send success`: how many of the followers left after filtering are not reached
    /// (`ErrorCount`), at most all of them.
    pub error_count: u64,
    /// `CopyrightCheckResult.ResultList` items, pushed as given.
    pub copyright_items: Vec<CopyrightCheckItem>,
    /// `CopyrightCheckResult.CheckState`; `None` pushes 1 (no original found).
    pub check_state: Option<u32>,
}

/// The account's API mass-send protection (群发保护, §9.9) and what its admin does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MassProtection {
    /// Off: sends to all go out as usual.
    #[default]
    Off,
    /// On, and the admin confirms every send to all in time.
    Confirm,
    /// On, and the admin rejects: the job ends `err(40001)`.
    Reject,
    /// On, and nobody confirms within 30 minutes: the job ends `err(40002)`.
    NoAnswer,
}

impl MassProtection {
    /// The `Status` a send to all ends with under this setting, when it does not go out.
    fn verdict(self) -> Option<&'static str> {
        match self {
            Self::Off | Self::Confirm => None,
            Self::Reject => Some("err(40001)"),
            Self::NoAnswer => Some("err(40002)"),
        }
    }
}

/// A job plus who received it.
pub(super) struct JobRecord {
    pub job: MassJob,
    pub recipients: Vec<u32>,
}

/// What a finished job pushes.
pub(super) struct Finished {
    pub msg_id: u64,
    pub result: String,
    pub total: u64,
    pub filter: u64,
    pub sent: u64,
    pub error: u64,
    pub article_urls: Vec<String>,
    pub copyright_items: Vec<CopyrightCheckItem>,
    pub check_state: u32,
}

/// Every job and the mass-send settings.
pub(super) struct Mass {
    pub jobs: Vec<JobRecord>,
    /// Dedupe key → (msg_id, accepted at).
    keys: HashMap<String, (u64, i64)>,
    next_msg_id: u64,
    next_data_id: u64,
    speed: u8,
    /// How the next jobs end, oldest first.
    pub next_outcomes: VecDeque<MassOutcome>,
    /// The account's mass-send protection.
    pub protection: MassProtection,
}

impl Default for Mass {
    fn default() -> Self {
        Self {
            jobs: Vec::new(),
            keys: HashMap::new(),
            next_msg_id: FIRST_MSG_ID,
            next_data_id: FIRST_MSG_DATA_ID,
            speed: 0,
            next_outcomes: VecDeque::new(),
            protection: MassProtection::Off,
        }
    }
}

impl Mass {
    pub fn find(&self, msg_id: u64) -> Option<&JobRecord> {
        self.jobs.iter().find(|j| j.job.msg_id == msg_id)
    }

    fn find_mut(&mut self, msg_id: u64) -> Option<&mut JobRecord> {
        self.jobs.iter_mut().find(|j| j.job.msg_id == msg_id)
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }
}

/// The `msgtype` of a mass message after checking its body has what that type needs.
fn checked_msgtype(body: &Value) -> Result<&str, ApiError> {
    // 0/1 in the reference's example, so a number like the other flags it shows as numbers.
    int_field(body, "send_ignore_reprint")?;
    let msgtype = str_field(body, "msgtype").unwrap_or("");
    let part = |key: &str| body.get(key).unwrap_or(&Value::Null);
    let (present, code) = match msgtype {
        "text" if str_field(part("text"), "content").is_some_and(|c| c.len() > MAX_CONTENT_BYTES) => {
            return fail(CONTENT_TOO_LONG);
        }
        "text" => (str_field(part("text"), "content").is_some(), EMPTY_CONTENT),
        "mpnews" | "voice" | "mpvideo" => (str_field(part(msgtype), "media_id").is_some(), INVALID_MEDIA_ID),
        "image" => {
            let ids = string_list(part("images"), "media_ids", INVALID_MEDIA_ID)?.unwrap_or_default();
            (!ids.is_empty() && ids.iter().all(|id| !id.is_empty()), INVALID_MEDIA_ID)
        }
        "wxcard" => (str_field(part("wxcard"), "card_id").is_some(), INVALID_ARGS),
        _ => return fail(INVALID_MESSAGE_TYPE),
    };
    if present { Ok(msgtype) } else { fail(code) }
}

/// The key a send is deduplicated by: its `clientmsgid`, else a digest of audience and content.
fn dedupe_key(body: &Value, msgtype: &str, audience: &str) -> Result<String, ApiError> {
    if let Some(id) = str_field(body, "clientmsgid") {
        if id.len() > MAX_CLIENTMSGID_BYTES {
            return fail(CLIENTMSGID_TOO_LONG);
        }
        return Ok(format!("client:{id}"));
    }
    let content_key = if msgtype == "image" { "images" } else { msgtype };
    let mut hasher = DefaultHasher::new();
    (audience, msgtype, body.get(content_key).map(Value::to_string)).hash(&mut hasher);
    Ok(format!("auto:{:016x}", hasher.finish()))
}

/// 45066 (no `msg_id`) when the key was first used less than a minute ago, 45065 with the
/// existing `msg_id` when within 24 h: a client that retries a send whose answer it lost learns
/// the job's id only after waiting out the minute (§9.4).
fn check_duplicate(state: &State, key: &str, now: i64) -> Result<(), ApiError> {
    match state.mass.keys.get(key) {
        Some(&(_, at)) if now - at < CLIENTMSGID_RETRY_SECS => fail(CLIENTMSGID_RETRIED_TOO_SOON),
        Some(&(msg_id, at)) if now - at < CLIENTMSGID_WINDOW_SECS => {
            Err(ApiError::new(CLIENTMSGID_EXISTS).with("msg_id", msg_id))
        }
        _ => Ok(()),
    }
}

/// `POST /cgi-bin/message/mass/sendall`.
pub(super) fn sendall(state: &mut State, req: &ApiRequest) -> ApiResult {
    let body = &req.body;
    let Some(filter) = body.get("filter").filter(|f| f.is_object()) else { return fail(INVALID_ARGS) };
    let tag_id = if bool_field(filter, "is_to_all")?.unwrap_or(false) {
        None
    } else {
        match int_field(filter, "tag_id")? {
            Some(id) => Some(id),
            None => return fail(INVALID_ARGS),
        }
    };
    let msgtype = checked_msgtype(body)?;
    media::check_mpnews(state, body)?;
    let (audience, candidates) = match tag_id {
        None => (MassAudience::All, state.followers.subscribed_indices()),
        Some(id) => match state.tags.get(id) {
            Some(tag) => (MassAudience::Tag(id), tag.members.iter().copied().collect()),
            None => return fail(INVALID_TAG_ID),
        },
    };
    let now = state.now();
    let key = dedupe_key(body, msgtype, &audience.to_string())?;
    check_duplicate(state, &key, now)?;
    if !state.is_service() {
        let today = beijing_date(now);
        let sent_today =
            state.mass.jobs.iter().any(|j| j.job.result == SEND_SUCCESS && beijing_date(j.job.created_at) == today);
        if sent_today {
            return fail(NO_MASS_QUOTA);
        }
    }
    let total = candidates.len();
    Ok(create_job(state, audience, candidates, total, msgtype.to_owned(), key, body.clone()))
}

/// `POST /cgi-bin/message/mass/send` (service accounts only).
pub(super) fn send(state: &mut State, req: &ApiRequest) -> ApiResult {
    if !state.is_service() {
        return fail(API_UNAUTHORIZED);
    }
    let body = &req.body;
    let touser = string_list(body, "touser", INVALID_TOUSER_SIZE)?.unwrap_or_default();
    if !(MIN_TOUSER..=MAX_TOUSER).contains(&touser.len()) {
        return fail(INVALID_TOUSER_SIZE);
    }
    let msgtype = checked_msgtype(body)?;
    media::check_mpnews(state, body)?;
    let mut distinct = touser.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let now = state.now();
    let key = dedupe_key(body, msgtype, &distinct.join(","))?;
    check_duplicate(state, &key, now)?;
    let mut seen = std::collections::HashSet::with_capacity(touser.len());
    let candidates: Vec<u32> = touser
        .iter()
        .filter(|openid| seen.insert(openid.as_str()))
        .filter_map(|openid| state.followers.subscribed_index(openid))
        .collect();
    let audience = MassAudience::OpenIds(distinct.len());
    Ok(create_job(state, audience, candidates, distinct.len(), msgtype.to_owned(), key, body.clone()))
}

/// Records a job, applies the monthly limit, and queues its finish.
fn create_job(
    state: &mut State,
    audience: MassAudience,
    candidates: Vec<u32>,
    total: usize,
    msgtype: String,
    key: String,
    request: Value,
) -> Value {
    let now = state.now();
    let month = beijing_month(now);
    let limited = state.is_service();
    let outcome = state.mass.next_outcomes.pop_front().unwrap_or_default();
    let protected = if audience == MassAudience::All { state.mass.protection.verdict() } else { None };
    let result = match (protected, &outcome.status) {
        (Some(verdict), _) => verdict.to_owned(),
        (None, Some(status)) => status.clone(),
        (None, None) => SEND_SUCCESS.to_owned(),
    };
    let delivers = result == SEND_SUCCESS;
    let mut recipients = Vec::with_capacity(candidates.len());
    if delivers {
        for index in candidates {
            let follower = state.followers.at_mut(index);
            if limited {
                if follower.mass_month != month {
                    follower.mass_month = month;
                    follower.mass_in_month = 0;
                }
                if follower.mass_in_month >= MONTHLY_LIMIT {
                    continue;
                }
                follower.mass_in_month += 1;
            }
            recipients.push(index);
        }
    }
    let msg_id = state.mass.next_id();
    let msg_data_id = (msgtype == "mpnews").then(|| {
        let id = state.mass.next_data_id;
        state.mass.next_data_id += 1;
        id
    });
    // The unreached are the last ones; they did not receive it, so their month is not spent.
    let unreached =
        recipients.split_off(recipients.len() - (outcome.error_count.min(recipients.len() as u64) as usize));
    if limited {
        for &index in &unreached {
            let follower = state.followers.at_mut(index);
            follower.mass_in_month = follower.mass_in_month.saturating_sub(1);
        }
    }
    // Checked by the caller: an mpnews request names a draft.
    let articles = media::check_mpnews(state, &request).unwrap_or_default();
    let article_urls = match msg_data_id.filter(|_| delivers) {
        Some(data_id) => (1..=articles.len())
            .map(|idx| {
                format!("http://mp.weixin.qq.com/s?__biz=MzMockMock==&mid={data_id}&idx={idx}&sn=mock{msg_id}#rd")
            })
            .collect(),
        None => Vec::new(),
    };
    let sent = recipients.len() as u64;
    let job = MassJob {
        msg_id,
        msg_data_id,
        audience,
        msgtype,
        clientmsgid: str_field(&request, "clientmsgid").map(str::to_owned),
        total: total as u64,
        filter: sent + unreached.len() as u64,
        sent,
        error: unreached.len() as u64,
        status: MassStatus::Sending,
        result,
        created_at: now,
        article_urls,
        articles,
        deleted_articles: Vec::new(),
        copyright_items: outcome.copyright_items,
        check_state: outcome.check_state.unwrap_or(1),
        callback_attempts: 0,
        callback_delivered: false,
        request,
    };
    state.mass.keys.insert(key, (msg_id, now));
    state.mass.jobs.push(JobRecord { job, recipients });
    state.finishing.push(msg_id);
    let mut answer = json!({"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id});
    if let Some(data_id) = msg_data_id {
        answer["msg_data_id"] = data_id.into();
    }
    answer
}

/// Finishes a job (its status becomes final) and says what to push; `None` if already final.
pub(super) fn finish(state: &mut State, msg_id: u64) -> Option<Finished> {
    let record = state.mass.find_mut(msg_id)?;
    let job = &mut record.job;
    if job.status != MassStatus::Sending {
        return None;
    }
    job.status = if job.result == SEND_SUCCESS { MassStatus::SendSuccess } else { MassStatus::SendFail };
    Some(Finished {
        msg_id,
        result: job.result.clone(),
        total: job.total,
        filter: job.filter,
        sent: job.sent,
        error: job.error,
        article_urls: job.article_urls.clone(),
        copyright_items: job.copyright_items.clone(),
        check_state: job.check_state,
    })
}

/// Records how the MASSSENDJOBFINISH push went.
pub(super) fn record_delivery(state: &mut State, msg_id: u64, attempts: u32, delivered: bool) {
    if let Some(record) = state.mass.find_mut(msg_id) {
        record.job.callback_attempts = attempts;
        record.job.callback_delivered = delivered;
    }
}

/// `POST /cgi-bin/message/mass/preview {touser | towxname, msgtype, ...}`.
pub(super) fn preview(state: &mut State, req: &ApiRequest) -> ApiResult {
    let body = &req.body;
    checked_msgtype(body)?;
    media::check_mpnews(state, body)?;
    if str_field(body, "towxname").is_none() {
        let Some(touser) = str_field(body, "touser") else { return fail(INVALID_OPENID) };
        match state.followers.get(touser) {
            None => return fail(INVALID_OPENID),
            Some(follower) if !follower.subscribed => return fail(REQUIRE_SUBSCRIBE),
            Some(_) => {}
        }
    }
    state.previews.push(body.clone());
    let msg_id = state.mass.next_id();
    Ok(json!({"errcode": 0, "errmsg": "preview success", "msg_id": msg_id}))
}

fn job_of<'a>(state: &'a mut State, body: &Value, id: Option<i64>) -> Result<&'a mut JobRecord, ApiError> {
    let id = id.and_then(|id| u64::try_from(id).ok());
    let by_url = str_field(body, "url");
    let found =
        state.mass.jobs.iter_mut().find(|j| {
            Some(j.job.msg_id) == id || by_url.is_some_and(|url| j.job.article_urls.iter().any(|u| u == url))
        });
    found.ok_or_else(|| ApiError::new(INVALID_ARGS))
}

/// `POST /cgi-bin/message/mass/get {"msg_id"}` → `{"msg_id", "msg_status"}`.
pub(super) fn get(state: &mut State, req: &ApiRequest) -> ApiResult {
    let job = &job_of(state, &req.body, int_or_digits_field(&req.body, "msg_id")?)?.job;
    Ok(json!({"msg_id": job.msg_id, "msg_status": job.status.as_str()}))
}

/// `POST /cgi-bin/message/mass/delete {"msg_id" | "url", "article_idx"}`.
pub(super) fn delete(state: &mut State, req: &ApiRequest) -> ApiResult {
    let article_idx = int_field(&req.body, "article_idx")?.unwrap_or(0);
    let job = &mut job_of(state, &req.body, int_field(&req.body, "msg_id")?)?.job;
    let deletable = matches!(job.msgtype.as_str(), "mpnews" | "mpvideo")
        && matches!(job.status, MassStatus::SendSuccess | MassStatus::Delete);
    if !deletable {
        return fail(INVALID_ARGS);
    }
    match article_idx {
        0 => job.status = MassStatus::Delete,
        idx => {
            let count = job.articles.len().max(1);
            let Some(idx) = u32::try_from(idx).ok().filter(|i| (1..=count).contains(&(*i as usize))) else {
                return fail(INVALID_ARGS);
            };
            if !job.deleted_articles.contains(&idx) {
                job.deleted_articles.push(idx);
            }
        }
    }
    Ok(json!({"errcode": 0, "errmsg": "ok"}))
}

/// `POST /cgi-bin/message/mass/speed/get` → `{"speed", "realspeed"}`.
pub(super) fn speed_get(state: &mut State, _req: &ApiRequest) -> ApiResult {
    let speed = state.mass.speed;
    Ok(json!({"speed": speed, "realspeed": REAL_SPEEDS[usize::from(speed)]}))
}

/// `POST /cgi-bin/message/mass/speed/set {"speed"}`.
pub(super) fn speed_set(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(speed) = int_field(&req.body, "speed")? else { return fail(NO_SPEED) };
    match u8::try_from(speed) {
        Ok(speed) if usize::from(speed) < REAL_SPEEDS.len() => {
            state.mass.speed = speed;
            Ok(json!({"errcode": 0, "errmsg": "ok"}))
        }
        _ => fail(SPEED_OUT_OF_RANGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: Value) -> i64 {
        checked_msgtype(&body).map(|_| 0).unwrap_or_else(|e| e.code)
    }

    #[test]
    fn each_msgtype_needs_its_body() {
        assert_eq!(code(json!({"msgtype": "text", "text": {"content": "hi"}})), 0);
        assert_eq!(code(json!({"msgtype": "text", "text": {"content": ""}})), EMPTY_CONTENT);
        assert_eq!(code(json!({"msgtype": "mpnews", "mpnews": {"media_id": "m"}})), 0);
        assert_eq!(code(json!({"msgtype": "mpnews"})), INVALID_MEDIA_ID);
        assert_eq!(code(json!({"msgtype": "image", "images": {"media_ids": ["a", "b"]}})), 0);
        assert_eq!(code(json!({"msgtype": "image", "images": {"media_ids": []}})), INVALID_MEDIA_ID);
        assert_eq!(code(json!({"msgtype": "wxcard", "wxcard": {}})), INVALID_ARGS);
        assert_eq!(code(json!({"msgtype": "music"})), INVALID_MESSAGE_TYPE);
        assert_eq!(code(json!({})), INVALID_MESSAGE_TYPE);
        let reprint_as_text = json!({"msgtype": "mpnews", "mpnews": {"media_id": "m"}, "send_ignore_reprint": "0"});
        assert_eq!(code(reprint_as_text), super::super::error::DATA_FORMAT_ERROR);
    }

    #[test]
    fn without_clientmsgid_the_same_content_and_audience_give_the_same_key() {
        let body = json!({"msgtype": "text", "text": {"content": "hi"}});
        let other = json!({"msgtype": "text", "text": {"content": "ho"}});
        assert_eq!(dedupe_key(&body, "text", "tag 100").unwrap(), dedupe_key(&body, "text", "tag 100").unwrap());
        assert_ne!(dedupe_key(&body, "text", "tag 100").unwrap(), dedupe_key(&body, "text", "tag 101").unwrap());
        assert_ne!(dedupe_key(&body, "text", "tag 100").unwrap(), dedupe_key(&other, "text", "tag 100").unwrap());
        let long = json!({"clientmsgid": "x".repeat(65)});
        assert_eq!(dedupe_key(&long, "text", "").unwrap_err().code, CLIENTMSGID_TOO_LONG);
    }
}
