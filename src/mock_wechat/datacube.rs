//! Statistics (wechat-api.md §18): the `datacube` calls the data board uses, with figures
//! derived deterministically from the mock's own state, so a test can predict them.
//!
//! Dates: `begin_date`/`end_date` must be `YYYY-MM-DD` (61500); `end_date` before `begin_date`,
//! a span longer than the call allows, or an `end_date` that is not before today (Beijing) is
//! 61501 ("date range error": the format is fine, the range is not). Spans, from WeChat's table:
//! `getusersummary`, `getusercumulate`, `getupstreammsg` 7 days; `getarticlesummary`,
//! `getarticletotal` 1; the newer `getarticletotaldetail`, `getarticleread`, `getarticleshare`
//! 1 (the pages give no number; 1 is what callers report, and stricter is safer for a mock).
//!
//! Figures:
//! - followers: `new_user`/`cancel_user` per Beijing day and `user_source` (mapped from
//!   `subscribe_scene`), `cumulate_user` = followers at the end of the day;
//! - upstream messages: 0.2-0.6 % of that day's followers, deterministic per day;
//! - articles: every article of an mpnews mass job that went out is one article (`msgid` =
//!   `<msg_data_id>_<idx>`, idx 1..n as in the draft). The first one's readers are 20-40 % of
//!   the job's SentCount (fixed per `msg_id`), article idx's 20-40 % divided by idx; read 60 %
//!   on the send day, 25 %, 10 % and 5 % on the next three; 3-7 % of a day's readers share,
//!   1-3 % add to favourites. `getarticlesummary` only lists an article on a day whose
//!   reads + shares + favourites reach 3, as WeChat documents.

use std::collections::BTreeMap;

use chrono::{Datelike, Days, NaiveDate};
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, DATE_FORMAT_ERROR, DATE_RANGE_ERROR, fail};
use super::mass::{JobRecord, SEND_SUCCESS};
use super::state::{ApiRequest, State, beijing_date, beijing_midnight, str_field};
use super::users::{Follower, mix};

/// Share of an article's readers who read it on the send day and the days after (percent).
const READ_CURVE: [u64; 4] = [60, 25, 10, 5];
/// `getarticletotal` follows an article for 7 days, `getarticletotaldetail` for 30.
const TOTAL_DAYS: u64 = 7;
const DETAIL_DAYS: u64 = 30;

/// The checked date range of a request, both ends included.
fn range(state: &State, req: &ApiRequest, max_days: u64) -> Result<Vec<NaiveDate>, ApiError> {
    let date = |key: &str| -> Result<NaiveDate, ApiError> {
        let text = str_field(&req.body, key).unwrap_or("");
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| ApiError::new(DATE_FORMAT_ERROR))
    };
    let (begin, end) = (date("begin_date")?, date("end_date")?);
    let today = beijing_date(state.now());
    let span = u64::try_from((end - begin).num_days()).map_err(|_| ApiError::new(DATE_RANGE_ERROR))? + 1;
    if end >= today || span > max_days {
        return fail(DATE_RANGE_ERROR);
    }
    Ok(begin.iter_days().take_while(|d| *d <= end).collect())
}

fn ymd(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

/// `user_source` code of `getusersummary` for a follower's `subscribe_scene`.
fn user_source(follower: &Follower) -> u32 {
    match follower.scene_name() {
        "ADD_SCENE_SEARCH" => 1,
        "ADD_SCENE_PROFILE_CARD" => 17,
        "ADD_SCENE_QR_CODE" => 30,
        "ADD_SCENE_PAID" => 51,
        "ADD_SCENE_PROFILE_LINK" => 57,
        "ADD_SCENE_WECHAT_ADVERTISEMENT" => 100,
        "ADD_SCENE_REPRINT" => 161,
        "ADD_SCENE_CHANNELS" => 200,
        "ADD_SCENE_LIVESTREAM" => 201,
        _ => 0,
    }
}

/// Followers at the end of each day.
fn cumulate(state: &State, days: &[NaiveDate]) -> Vec<u64> {
    let ends: Vec<i64> = days.iter().map(|d| beijing_midnight(*d + Days::new(1))).collect();
    let mut counts = vec![0u64; days.len()];
    for follower in state.followers.all() {
        let stop = if follower.subscribed { i64::MAX } else { follower.unsubscribe_time.unwrap_or(i64::MAX) };
        for (count, &end) in counts.iter_mut().zip(&ends) {
            if follower.subscribe_time < end && stop >= end {
                *count += 1;
            }
        }
    }
    counts
}

/// `POST /datacube/getusersummary`: new and cancelled followers per day and source.
pub(super) fn user_summary(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 7)?;
    let (first, last) = (days[0], days[days.len() - 1]);
    let mut rows: BTreeMap<(NaiveDate, u32), (u64, u64)> = BTreeMap::new();
    for follower in state.followers.all() {
        let subscribed = beijing_date(follower.subscribe_time);
        if (first..=last).contains(&subscribed) {
            rows.entry((subscribed, user_source(follower))).or_default().0 += 1;
        }
        if let Some(left) = follower.unsubscribe_time.map(beijing_date).filter(|d| (first..=last).contains(d)) {
            rows.entry((left, user_source(follower))).or_default().1 += 1;
        }
    }
    for day in &days {
        if !rows.keys().any(|(d, _)| d == day) {
            rows.insert((*day, 0), (0, 0));
        }
    }
    let list: Vec<Value> = rows
        .into_iter()
        .map(|((day, source), (new, cancel))| {
            json!({"ref_date": ymd(day), "user_source": source, "new_user": new, "cancel_user": cancel})
        })
        .collect();
    Ok(json!({"list": list}))
}

/// `POST /datacube/getusercumulate`: followers at the end of each day.
pub(super) fn user_cumulate(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 7)?;
    let counts = cumulate(state, &days);
    let list: Vec<Value> =
        days.iter().zip(counts).map(|(d, n)| json!({"ref_date": ymd(*d), "cumulate_user": n})).collect();
    Ok(json!({"list": list}))
}

/// `POST /datacube/getupstreammsg`: messages followers sent per day.
pub(super) fn upstream_msg(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 7)?;
    let counts = cumulate(state, &days);
    let list: Vec<Value> = days
        .iter()
        .zip(counts)
        .map(|(day, followers)| {
            let seed = mix(u64::from(day.num_days_from_ce().unsigned_abs()));
            let users = followers * (2 + seed % 5) / 1000;
            let count = users + users * (seed % 60) / 100;
            json!({"ref_date": ymd(*day), "msg_type": 1, "msg_user": users, "msg_count": count})
        })
        .collect();
    Ok(json!({"list": list}))
}

/// One article's activity on one day.
#[derive(Default, Clone, Copy)]
struct Activity {
    read_user: u64,
    read_count: u64,
    share_user: u64,
    share_count: u64,
    fav_user: u64,
    fav_count: u64,
}

impl Activity {
    fn add(self, other: Self) -> Self {
        Self {
            read_user: self.read_user + other.read_user,
            read_count: self.read_count + other.read_count,
            share_user: self.share_user + other.share_user,
            share_count: self.share_count + other.share_count,
            fav_user: self.fav_user + other.fav_user,
            fav_count: self.fav_count + other.fav_count,
        }
    }
}

/// A mass-sent article.
struct Article<'a> {
    record: &'a JobRecord,
    data_id: u64,
    /// 1-based position in the draft.
    idx: u64,
    published: NaiveDate,
}

impl Article<'_> {
    fn msgid(&self) -> String {
        format!("{}_{}", self.data_id, self.idx)
    }

    fn title(&self) -> String {
        let titles = &self.record.job.articles;
        usize::try_from(self.idx - 1)
            .ok()
            .and_then(|i| titles.get(i))
            .cloned()
            .unwrap_or_else(|| format!("Mock article {}", self.data_id))
    }

    /// Days since publishing, if `day` is not before it.
    fn age(&self, day: NaiveDate) -> Option<u64> {
        u64::try_from((day - self.published).num_days()).ok()
    }

    /// Activity on the `age`-th day after publishing.
    fn on(&self, age: u64) -> Activity {
        let job = &self.record.job;
        // Article 1 keeps the figure it had before drafts had several articles.
        let seed = if self.idx == 1 { mix(job.msg_id) } else { mix(job.msg_id ^ (self.idx << 40)) };
        let readers = job.sent * (20 + seed % 21) / 100 / self.idx;
        let share = usize::try_from(age).ok().and_then(|i| READ_CURVE.get(i)).copied().unwrap_or(0);
        let read_user = readers * share / 100;
        let share_user = read_user * (3 + mix(job.msg_id ^ 1) % 5) / 100;
        let fav_user = read_user * (1 + mix(job.msg_id ^ 2) % 3) / 100;
        Activity {
            read_user,
            read_count: read_user + read_user / 5,
            share_user,
            share_count: share_user + share_user / 4,
            fav_user,
            fav_count: fav_user,
        }
    }

    /// Activity from publishing through the `age`-th day.
    fn until(&self, age: u64) -> Activity {
        (0..=age).map(|a| self.on(a)).fold(Activity::default(), Activity::add)
    }
}

/// Every article of every mpnews mass job that went out.
fn articles(state: &State) -> Vec<Article<'_>> {
    state
        .mass
        .jobs
        .iter()
        .filter(|r| r.job.result == SEND_SUCCESS)
        .filter_map(|record| Some((record, record.job.msg_data_id?)))
        .flat_map(|(record, data_id)| {
            let published = beijing_date(record.job.created_at);
            let count = record.job.articles.len().max(1) as u64;
            (1..=count).map(move |idx| Article { record, data_id, idx, published })
        })
        .collect()
}

/// The old per-day article fields.
fn legacy_fields(row: &mut Value, a: Activity) {
    row["int_page_read_user"] = a.read_user.into();
    row["int_page_read_count"] = a.read_count.into();
    row["ori_page_read_user"] = (a.read_user / 10).into();
    row["ori_page_read_count"] = (a.read_count / 10).into();
    row["share_user"] = a.share_user.into();
    row["share_count"] = a.share_count.into();
    row["add_to_fav_user"] = a.fav_user.into();
    row["add_to_fav_count"] = a.fav_count.into();
}

/// Readers split by scene, the parts adding up to the `全部` entry.
fn read_sources(read_user: u64) -> Value {
    let part = |percent: u64| read_user * percent / 100;
    let named = [("公众号消息", part(70)), ("聊天会话", part(10)), ("朋友圈", part(8)), ("公众号主页", part(5))];
    let rest = read_user - named.iter().map(|(_, n)| n).sum::<u64>();
    let mut sources = vec![json!({"scene_desc": "全部", "user_count": read_user})];
    sources.extend(named.iter().map(|(scene, n)| json!({"scene_desc": scene, "user_count": n})));
    sources.push(json!({"scene_desc": "其他", "user_count": rest}));
    Value::Array(sources)
}

/// `POST /datacube/getarticlesummary` (old): each article's activity on the day.
pub(super) fn article_summary(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 1)?;
    let mut list = Vec::new();
    for day in &days {
        for article in articles(state) {
            let Some(age) = article.age(*day) else { continue };
            let a = article.on(age);
            if a.read_user + a.share_user + a.share_count + a.fav_count < 3 {
                continue;
            }
            let mut row = json!({"ref_date": ymd(*day), "msgid": article.msgid(), "title": article.title()});
            legacy_fields(&mut row, a);
            list.push(row);
        }
    }
    Ok(json!({"list": list}))
}

/// `POST /datacube/getarticletotal` (old): articles sent that day, cumulated over 7 days.
pub(super) fn article_total(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 1)?;
    let today = beijing_date(state.now());
    let mut list = Vec::new();
    for day in &days {
        for article in articles(state).into_iter().filter(|a| a.published == *day) {
            let details: Vec<Value> = stat_days(*day, today, TOTAL_DAYS)
                .map(|(age, stat_date)| {
                    let mut detail = json!({"stat_date": ymd(stat_date), "target_user": article.record.job.sent});
                    legacy_fields(&mut detail, article.until(age));
                    detail
                })
                .collect();
            list.push(
                json!({"ref_date": ymd(*day), "msgid": article.msgid(), "title": article.title(), "details": details}),
            );
        }
    }
    Ok(json!({"list": list}))
}

/// `(age, date)` of the stat days of an article published on `published`: at most `max` days,
/// and never today or later.
fn stat_days(published: NaiveDate, today: NaiveDate, max: u64) -> impl Iterator<Item = (u64, NaiveDate)> {
    (0..max).map(move |age| (age, published + Days::new(age))).take_while(move |(_, d)| *d < today)
}

/// `POST /datacube/getarticletotaldetail`: articles published that day, cumulated per stat day
/// over at most 30 days.
pub(super) fn article_total_detail(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 1)?;
    let today = beijing_date(state.now());
    let mut list = Vec::new();
    for day in &days {
        for article in articles(state).into_iter().filter(|a| a.published == *day) {
            let sent = article.record.job.sent;
            let details: Vec<Value> = stat_days(*day, today, DETAIL_DAYS)
                .map(|(age, stat_date)| {
                    let a = article.until(age);
                    let rate = if sent == 0 { 0.0 } else { a.read_user as f64 / sent as f64 };
                    json!({
                        "stat_date": ymd(stat_date),
                        "read_user": a.read_user,
                        "read_user_source": read_sources(a.read_user),
                        "share_user": a.share_user,
                        "share_user_source": [{"scene_desc": "全部", "user_count": a.share_user}],
                        "read_subscribe_user": 0,
                        "read_delivery_rate": rate,
                        "zaikan_user": a.read_user / 50,
                        "like_user": a.read_user / 25,
                        "comment_count": a.read_user / 100,
                        "collection_user": a.fav_user,
                        "praise_money": 0,
                    })
                })
                .collect();
            list.push(
                json!({"ref_date": ymd(*day), "msgid": article.msgid(), "publish_type": 0, "detail_list": details}),
            );
        }
    }
    Ok(json!({"list": list, "is_delay": false}))
}

/// `POST /datacube/getarticleread`: readers of every article read that day.
pub(super) fn article_read(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 1)?;
    let mut list = Vec::new();
    for day in &days {
        for article in articles(state) {
            let Some(a) = article.age(*day).map(|age| article.on(age)).filter(|a| a.read_user > 0) else { continue };
            list.push(json!({
                "ref_date": ymd(*day),
                "msgid": article.msgid(),
                "detail": {"read_user": a.read_user, "read_user_source": read_sources(a.read_user)},
            }));
        }
    }
    Ok(json!({"list": list, "is_delay": false}))
}

/// `POST /datacube/getarticleshare`: sharers of every article shared that day.
pub(super) fn article_share(state: &mut State, req: &ApiRequest) -> ApiResult {
    let days = range(state, req, 1)?;
    let mut list = Vec::new();
    for day in &days {
        for article in articles(state) {
            let Some(a) = article.age(*day).map(|age| article.on(age)).filter(|a| a.share_user > 0) else { continue };
            list.push(json!({
                "ref_date": ymd(*day),
                "msgid": article.msgid(),
                "detail": {
                    "share_user": a.share_user,
                    "share_user_source": [{"scene_desc": "全部", "user_count": a.share_user}],
                },
            }));
        }
    }
    Ok(json!({"list": list, "is_delay": false}))
}
