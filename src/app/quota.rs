//! WeChat's daily API quotas and the customer-service window, as tagcast lives with them.
//!
//! - [`PgQuotaStops`]: the client's [`QuotaStops`] in PostgreSQL, so a 45009 met by one process
//!   stops that API for every process until Beijing midnight (on the application's clock).
//! - [`clear_quota`]: the operator's reset (WeChat's `clear_quota`, 10 per Beijing month): an
//!   account or deployment admin's act, audited, counted per month.
//! - [`status`]: the stopped APIs with the time each resumes, and this month's resets, for the
//!   board and `/metrics`.
//! - [`send_custom`]: the only way tagcast may send a customer-service message. No production
//!   code sends one today (self-service answers and quiz results are passive replies to the push
//!   that asked); anything that does later must go through this guard, which refuses a follower
//!   with no interaction in the window WeChat allows (§10) instead of spending a call on 45015.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::domain::account::AccountId;
use crate::domain::calendar;
use crate::domain::clock::Clock;
use crate::store;
use crate::wechat::api::quota::quota_resumes_at;
use crate::wechat::api::token::BoxFuture;
use crate::wechat::api::{ApiClient, CustomMessage, ErrCode, QuotaStops, WeChatError};

/// WeChat's `clear_quota` resets per Beijing month (wechat-api.md §14.2).
pub const CLEARS_PER_MONTH: i64 = 10;

/// What a campaign page says while its sends wait for the quota: this, then the resume time.
pub const QUOTA_WAIT_NOTE: &str = "今日接口额度已用完";

/// How long a process trusts its copy of the stops: every call checks them, and a query per
/// WeChat call would double the database work of a send; a stop another process records is seen
/// this much later at most (and that process's 45009 was one call).
const STOPS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// A process's copy of the stops: when it was read, and each stopped path with its end.
type StopsCopy = Option<(std::time::Instant, Vec<(String, DateTime<Utc>)>)>;

/// The stops of one AppID in PostgreSQL, with a short-lived copy in memory.
pub struct PgQuotaStops {
    pool: Pool,
    appid: String,
    clock: Clock,
    /// When the copy was read, and the stops (path, until) it holds.
    copy: std::sync::Mutex<StopsCopy>,
}

impl PgQuotaStops {
    pub fn new(pool: Pool, appid: impl Into<String>, clock: Clock) -> Self {
        Self { pool, appid: appid.into(), clock, copy: std::sync::Mutex::new(None) }
    }

    fn copy(&self) -> std::sync::MutexGuard<'_, StopsCopy> {
        self.copy.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stops as stored now; `None` when the database did not answer.
    async fn read(&self) -> Option<Vec<(String, DateTime<Utc>)>> {
        let client =
            self.pool.get().await.inspect_err(|error| tracing::warn!(%error, "quota stops unreadable")).ok()?;
        let stops = store::api_quota::list_stops(&client, Some(&self.appid), self.clock.now())
            .await
            .inspect_err(|error| tracing::warn!(%error, "quota stops unreadable"))
            .ok()?;
        Some(stops.into_iter().map(|s| (s.path, s.until)).collect())
    }
}

impl QuotaStops for PgQuotaStops {
    fn stopped_until(&self, path: &str) -> BoxFuture<'_, Option<DateTime<Utc>>> {
        let path = path.to_owned();
        Box::pin(async move {
            let fresh = self.copy().as_ref().filter(|(at, _)| at.elapsed() < STOPS_FRESH_FOR).map(|(_, s)| s.clone());
            let stops = match fresh {
                Some(stops) => stops,
                // Unreadable: call WeChat anyway, which refuses if the quota is still used up.
                None => {
                    let stops = self.read().await?;
                    *self.copy() = Some((std::time::Instant::now(), stops.clone()));
                    stops
                }
            };
            let now = self.clock.now();
            stops.into_iter().find(|(p, until)| *p == path && *until > now).map(|(_, until)| until)
        })
    }

    fn forget(&self) {
        *self.copy() = None;
    }

    fn stop(&self, path: &str) -> BoxFuture<'_, DateTime<Utc>> {
        let path = path.to_owned();
        Box::pin(async move {
            let now = self.clock.now();
            let until = quota_resumes_at(now);
            let stored = match self.pool.get().await {
                Ok(client) => {
                    store::api_quota::stop(&client, &self.appid, &path, until, now).await.map_err(|e| e.to_string())
                }
                Err(error) => Err(error.to_string()),
            };
            if let Err(error) = stored {
                tracing::warn!(%error, path, "could not record the quota stop; other processes will meet 45009 themselves");
            }
            if let Some((_, stops)) = self.copy().as_mut() {
                stops.retain(|(p, _)| *p != path);
                stops.push((path, until));
            }
            until
        })
    }
}

/// The shared stops of `appid`, for [`ApiClient::with_quota_stops`].
pub fn stops_for(pool: &Pool, appid: &str, clock: &Clock) -> Arc<dyn QuotaStops> {
    Arc::new(PgQuotaStops::new(pool.clone(), appid, clock.clone()))
}

/// A stopped API, as the board and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedApi {
    pub appid: String,
    pub path: String,
    pub until: DateTime<Utc>,
    /// `until` in Beijing time, to the minute.
    pub resumes_at: String,
}

/// An account's quota state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaStatus {
    pub stopped: Vec<StoppedApi>,
    /// `clear_quota` resets this Beijing month.
    pub clears_this_month: i64,
}

fn shown(stop: store::api_quota::ApiStop) -> StoppedApi {
    StoppedApi {
        resumes_at: calendar::beijing_minute(stop.until),
        appid: stop.appid,
        path: stop.path,
        until: stop.until,
    }
}

/// The Beijing month around `now`, as `[start, next start)`.
fn month_of(now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let first = calendar::beijing_month(now);
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap_or(first);
    let start = |d: chrono::NaiveDate| calendar::from_beijing(d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    (start(first), start(next))
}

/// `appid`'s stopped APIs and this month's resets.
///
/// # Errors
/// The database failed.
pub async fn status(pool: &Pool, appid: &str, clock: &Clock) -> Result<QuotaStatus, QuotaError> {
    let client = pool.get().await?;
    let now = clock.now();
    let stopped = store::api_quota::list_stops(&client, Some(appid), now).await?.into_iter().map(shown).collect();
    let (from, to) = month_of(now);
    let clears_this_month = store::api_quota::count_clears(&client, appid, from, to).await?;
    Ok(QuotaStatus { stopped, clears_this_month })
}

/// Every AppID's stopped APIs (for `/metrics`).
///
/// # Errors
/// The database failed.
pub async fn all_stopped(pool: &Pool, clock: &Clock) -> Result<Vec<StoppedApi>, QuotaError> {
    let client = pool.get().await?;
    Ok(store::api_quota::list_stops(&client, None, clock.now()).await?.into_iter().map(shown).collect())
}

/// Why a reset or a customer-service message was refused; the message is for the operator.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error(
        "本月的接口额度清零次数已用完（{CLEARS_PER_MONTH}/{CLEARS_PER_MONTH}），下月 1 日（北京时间）起可再清零；在此之前请等待每日零点自动恢复"
    )]
    NoClearsLeft,
    #[error("该公众号尚未配置 AppID 和 AppSecret，无法调用微信接口；请先在「公众号」页填写")]
    NoApi,
    #[error("微信拒绝了清零：{}", crate::wechat::errcode_zh::describe(.0))]
    WeChat(WeChatError),
    #[error(
        "该粉丝 48 小时内没有给公众号发过消息（1 分钟内也没有点击菜单、关注或扫码），微信不允许主动发送客服消息；请等粉丝下次互动后再发"
    )]
    OutsideWindow,
    #[error("微信说这位粉丝本次互动可接收的客服消息已用完（发消息后 48 小时内 5 条）；请等粉丝再次互动")]
    WindowUsedUp,
    #[error("数据库暂时不可用，请稍后重试")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("数据库暂时不可用，请稍后重试")]
    Query(#[from] tokio_postgres::Error),
}

/// Resets `appid`'s daily API counts on WeChat (`clear_quota`), ends its stops, and records and
/// audits the reset. Returns the resets used this month, this one included.
///
/// # Errors
/// [`QuotaError::NoClearsLeft`] after 10 this month (WeChat is not asked), WeChat's refusal, or
/// the database.
pub async fn clear_quota(
    pool: &Pool,
    api: &ApiClient,
    account: AccountId,
    actor: &str,
    clock: &Clock,
) -> Result<i64, QuotaError> {
    let appid = api.appid().to_owned();
    let now = clock.now();
    let (from, to) = month_of(now);
    let used = store::api_quota::count_clears(&pool.get().await?, &appid, from, to).await?;
    if used >= CLEARS_PER_MONTH {
        return Err(QuotaError::NoClearsLeft);
    }
    // Counted before WeChat is asked: a reset WeChat made is never lost to a database failure
    // after it (the month has only 10). Only a refusal WeChat answered gives it back.
    let mut client = pool.get().await?;
    let clear = store::api_quota::record_clear(&client, &appid, actor, now).await?;
    match api.clear_quota().await {
        Ok(()) => {}
        // WeChat counts more resets than we know of: ours stays counted.
        Err(error) if error.code() == Some(ErrCode::ClearQuotaUsedUp) => return Err(QuotaError::NoClearsLeft),
        Err(error @ WeChatError::Api { .. }) => {
            store::api_quota::forget_clear(&client, clear).await?;
            return Err(QuotaError::WeChat(error));
        }
        // No answer: WeChat may have made the reset; it stays counted.
        Err(error) => return Err(QuotaError::WeChat(error)),
    }
    let txn = client.transaction().await?;
    let ended = store::api_quota::clear_stops(&txn, &appid).await?;
    // What waited for midnight goes now: the reset was spent to get it out today.
    let prefixes = [QUOTA_WAIT_NOTE, crate::wechat::api::QUOTA_EXHAUSTED_PREFIX];
    let resumed = store::api_quota::resume_quota_waits(&txn, account, &prefixes).await?;
    let used = used + 1;
    let detail =
        serde_json::json!({ "appid": appid, "stops_ended": ended, "waits_resumed": resumed, "used_this_month": used });
    store::audit::record(&txn, Some(account), actor, "clear_quota", "wechat_quota", &appid, &detail).await?;
    txn.commit().await?;
    api.forget_quota_stops();
    tracing::info!(account = account.get(), used, "WeChat API quota cleared");
    Ok(used)
}

/// The kinds of push that open the 48-hour window: the follower sent a message.
const MESSAGE_KINDS: &[&str] = &["text", "image", "voice", "video", "short_video", "location", "link"];
/// The kinds that open a one-minute window: a click or scancode menu, a follow, a QR scan.
const EVENT_KINDS: &[&str] = &["click", "scan_code_push", "scan_code_wait_msg", "subscribe", "scan"];

/// Sends a customer-service message only within the window the follower's last interaction
/// opened (wechat-api.md §10): a message within 48 h, or a click, follow or scan within a minute.
///
/// # Errors
/// [`QuotaError::OutsideWindow`] (WeChat is not asked), [`QuotaError::WindowUsedUp`] when WeChat
/// says the window's sends are used (45047), WeChat's other refusals, or the database.
pub async fn send_custom(
    pool: &Pool,
    api: &ApiClient,
    account: AccountId,
    openid: &str,
    message: &CustomMessage,
    clock: &Clock,
) -> Result<(), QuotaError> {
    let client = pool.get().await?;
    let now = clock.now();
    let message_at = store::api_quota::last_interaction(&client, account, openid, MESSAGE_KINDS).await?;
    let event_at = store::api_quota::last_interaction(&client, account, openid, EVENT_KINDS).await?;
    drop(client);
    let open = message_at.is_some_and(|at| now - at < chrono::Duration::hours(48))
        || event_at.is_some_and(|at| now - at < chrono::Duration::minutes(1));
    if !open {
        return Err(QuotaError::OutsideWindow);
    }
    match api.send_custom(openid, message).await {
        Ok(()) => Ok(()),
        Err(error) if error.code() == Some(ErrCode::OutOfResponseWindow) => Err(QuotaError::OutsideWindow),
        Err(error) if error.code() == Some(ErrCode::CustomQuotaExceeded) => Err(QuotaError::WindowUsedUp),
        Err(error) => Err(QuotaError::WeChat(error)),
    }
}
