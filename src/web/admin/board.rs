//! 看板: the data board of SEED.md §5. Figures are computed at most once a minute and shared by
//! every viewer, so a board refresh costs nothing at a million followers; WeChat's datacube
//! figures are asked with a short timeout and left out when WeChat is slow or refuses. Computing
//! them takes seconds at that size, so once there are figures nobody waits for new ones: a view
//! of figures older than a minute shows them (with their time) and starts one recount behind it.
//! Each account has its own figures and cache: the board shows the account the user works on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{Days, Utc};
use deadpool_postgres::{GenericClient, Pool};

use super::{AdminError, AdminState, AdminUser, Layout, charts, render};
use crate::app::accounts::Accounts;
use crate::domain::account::AccountId;
use crate::domain::clock::Clock;
use crate::store;
use crate::wechat::api::ApiClient;

/// How long computed figures are shown before they are computed again.
const FRESH_FOR: Duration = Duration::from_secs(60);
/// The board never waits longer than this on WeChat's statistics.
const DATACUBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Days of subscribe/unsubscribe history charted.
const FLOW_DAYS: u64 = 30;

type MemberCounts = Arc<HashMap<i64, i64>>;

/// Followers per tag, counted at most once a minute: counting is a pass over every tag
/// membership (half a second at 5M), too slow for every view of the tags page. Once counted,
/// views never wait: counts older than a minute, or from before a change, are shown while one
/// recount runs behind them.
#[derive(Default)]
pub struct TagMembersCache {
    inner: Arc<TagCounts>,
}

#[derive(Default)]
struct TagCounts {
    counts: Mutex<Option<(Instant, MemberCounts)>>,
    stale: std::sync::atomic::AtomicBool,
    recounting: std::sync::atomic::AtomicBool,
}

impl TagMembersCache {
    pub async fn get(&self, client: &impl GenericClient, pool: &Pool) -> Result<MemberCounts, AdminError> {
        use std::sync::atomic::Ordering;
        let current = self.inner.counts.lock().expect("no panics while holding the lock").clone();
        match current {
            Some((at, counts)) => {
                if at.elapsed() >= FRESH_FOR || self.inner.stale.load(Ordering::Acquire) {
                    self.recount_behind(pool.clone());
                }
                Ok(counts)
            }
            None => self.recount(client).await,
        }
    }

    /// Counts now and keeps the result.
    pub async fn recount(&self, client: &impl GenericClient) -> Result<MemberCounts, AdminError> {
        self.inner.stale.store(false, std::sync::atomic::Ordering::Release);
        let counts = Arc::new(store::tags::count_members_by_tag(client).await?);
        *self.inner.counts.lock().expect("no panics while holding the lock") = Some((Instant::now(), counts.clone()));
        Ok(counts)
    }

    /// After a change an operator expects to see soon (a tag created, deleted or used): the next
    /// view starts a recount.
    pub fn forget(&self) {
        self.inner.stale.store(true, std::sync::atomic::Ordering::Release);
    }

    fn recount_behind(&self, pool: Pool) {
        use std::sync::atomic::Ordering;
        if self.inner.recounting.swap(true, Ordering::AcqRel) {
            return;
        }
        let cache = Self { inner: Arc::clone(&self.inner) };
        actix_web::rt::spawn(async move {
            let recounted = match pool.get().await {
                Ok(client) => cache.recount(&client).await.map(drop),
                Err(error) => Err(error.into()),
            };
            if let Err(error) = recounted {
                tracing::warn!(error = ?error, "tag member counts could not be recounted");
            }
            cache.inner.recounting.store(false, Ordering::Release);
        });
    }
}

/// The account's tags by path with their member counts from `cache`.
pub async fn tags_with_members(
    client: &impl GenericClient,
    account: crate::domain::account::AccountId,
    pool: &Pool,
    cache: &TagMembersCache,
) -> Result<Vec<store::tags::TagRow>, AdminError> {
    let counts = cache.get(client, pool).await?;
    Ok(with_counts(store::tags::list_tag_rows(client, account).await?, &counts))
}

fn with_counts(mut tags: Vec<store::tags::TagRow>, counts: &HashMap<i64, i64>) -> Vec<store::tags::TagRow> {
    for tag in &mut tags {
        tag.members = counts.get(&tag.id).copied().unwrap_or(0);
    }
    tags
}

/// Every account's board figures, each computed on its own.
#[derive(Default)]
pub struct BoardCache {
    accounts: Mutex<HashMap<AccountId, Arc<AccountBoard>>>,
}

impl BoardCache {
    fn of(&self, account: AccountId) -> Arc<AccountBoard> {
        let mut accounts = self.accounts.lock().expect("no panics while holding the lock");
        Arc::clone(accounts.entry(account).or_default())
    }
}

/// One account's figures.
#[derive(Default)]
struct AccountBoard {
    figures: Mutex<Option<(Instant, Arc<Figures>)>>,
    /// A recount is under way; views in the meantime show the figures at hand.
    recounting: std::sync::atomic::AtomicBool,
    /// Held while figures are computed: a view with no figures to show waits for the
    /// computation under way (the one started at boot) instead of starting a second.
    computing: tokio::sync::Mutex<()>,
}

impl AccountBoard {
    /// The figures at hand, with when they were computed.
    fn current(&self) -> Option<(Instant, Arc<Figures>)> {
        self.figures.lock().expect("no panics while holding the lock").clone()
    }

    /// Keeps freshly computed figures for every viewer.
    fn keep(&self, figures: Figures) -> Arc<Figures> {
        let figures = Arc::new(figures);
        *self.figures.lock().expect("no panics while holding the lock") = Some((Instant::now(), Arc::clone(&figures)));
        figures
    }
}

/// Accounts with more followers than this get their board computed at start, in the
/// background: computing takes seconds there, and the first operator should not wait for it.
const WARM_UP_ABOVE: i64 = 100_000;

/// Computes, in the background at start, the board's figures of every large account, one after
/// the other (small accounts compute in well under a second when first viewed).
pub fn warm_up(pool: Pool, clock: Clock, state: Arc<AdminState>, accounts: Accounts) {
    tokio::spawn(async move {
        for live in accounts.all() {
            let account = live.id;
            let large = match pool.get().await {
                Ok(client) => match store::board::estimate_followers(&client, account).await {
                    Ok(Some(estimate)) => estimate > WARM_UP_ABOVE,
                    Ok(None) => {
                        store::board::count_followers(&client, account).await.is_ok_and(|c| c.0 > WARM_UP_ABOVE)
                    }
                    Err(_) => false,
                },
                Err(_) => false,
            };
            if !large {
                continue;
            }
            let started = Instant::now();
            let board = state.board.of(account);
            let _turn = board.computing.lock().await;
            match compute(&pool, &clock, &state, account, live.api.as_ref()).await {
                Ok(figures) => {
                    board.keep(figures);
                    tracing::info!(
                        account = account.get(),
                        duration_ms = started.elapsed().as_millis() as u64,
                        "board figures computed at start"
                    );
                }
                Err(error) => tracing::warn!(error = ?error, "the board's figures could not be computed at start"),
            }
        }
    });
}

/// One of SEED.md §5's four dimensions: what it measures, the figure, and what to adjust.
pub struct Dimension {
    pub name: &'static str,
    pub metric: &'static str,
    pub value: String,
    pub detail: String,
    pub hint: &'static str,
}

pub struct Figures {
    pub followers: i64,
    pub followers_estimated: bool,
    pub subscribes: i64,
    pub unsubscribes: i64,
    pub tagged: i64,
    pub coverage: String,
    pub tag_count: usize,
    pub flow_svg: String,
    pub tags_svg: String,
    pub dimensions: Vec<Dimension>,
    pub wechat_followers: Option<i64>,
    pub computed_at: String,
}

#[derive(Template)]
#[template(path = "admin/board/index.html")]
struct BoardPage {
    layout: Layout,
    figures: Arc<Figures>,
    /// Read on every view (one small query): a stop must show at once, not a minute later.
    quota: Option<crate::app::quota::QuotaStatus>,
    clears_per_month: i64,
    may_clear_quota: bool,
}

/// What the board shows while its first figures are computed; it reloads itself.
#[derive(Template)]
#[template(path = "admin/board/pending.html")]
struct BoardPending {
    layout: Layout,
}

#[derive(serde::Deserialize)]
pub struct BoardQuery {
    /// `?refresh=1`: compute now instead of showing figures up to a minute old.
    #[serde(default)]
    refresh: Option<String>,
}

pub async fn show_board(
    user: AdminUser,
    query: web::Query<BoardQuery>,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, AdminError> {
    let account = user.account;
    let api = accounts.get(account).and_then(|live| live.api.clone());
    let board = state.board.of(account);
    let figures = match board.current() {
        Some((at, figures)) if query.refresh.is_none() => {
            if at.elapsed() >= FRESH_FOR {
                recount_behind(pool.clone().into_inner(), clock.clone().into_inner(), Arc::clone(&state), account, api);
            }
            figures
        }
        None if query.refresh.is_none() && board.computing.try_lock().is_err() => {
            // The first figures are being computed (at start, on a large account): say so at
            // once rather than hold the page for seconds.
            return render(&BoardPending { layout: user.layout("board") });
        }
        _ => {
            let asked = Instant::now();
            let _turn = board.computing.lock().await;
            match board.current() {
                Some((at, figures)) if at >= asked || (query.refresh.is_none() && at.elapsed() < FRESH_FOR) => figures,
                _ => board.keep(compute(&pool, &clock, &state, account, api.as_ref()).await?),
            }
        }
    };
    let quota = match accounts.get(account).and_then(|live| live.appid.clone()) {
        // The board's figures are worth showing without the quota section.
        Some(appid) => match crate::app::quota::status(&pool, &appid, &clock).await {
            Ok(status) => Some(status),
            Err(error) => {
                tracing::warn!(%error, "the quota section of the board could not be read");
                None
            }
        },
        None => None,
    };
    render(&BoardPage {
        layout: user.layout("board"),
        figures,
        quota,
        clears_per_month: crate::app::quota::CLEARS_PER_MONTH,
        may_clear_quota: may_clear_quota(&user),
    })
}

/// Resetting WeChat's daily counts spends one of 10 monthly resets: the account's admins and
/// deployment admins only.
fn may_clear_quota(user: &AdminUser) -> bool {
    user.deployment_admin || user.role == crate::domain::admin::AdminRole::Admin
}

fn quota_error(error: crate::app::quota::QuotaError) -> AdminError {
    use crate::app::quota::QuotaError;
    match error {
        QuotaError::Pool(error) => AdminError::pool(error),
        QuotaError::Query(error) => AdminError::query(error),
        _ => AdminError::Internal,
    }
}

#[derive(serde::Deserialize)]
pub struct ClearQuotaForm {
    #[serde(default)]
    confirm: Option<String>,
}

/// `POST /admin/quota/clear`: WeChat's `clear_quota` for the chosen account, audited.
pub async fn clear_quota(
    user: AdminUser,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    accounts: web::Data<Accounts>,
    super::CsrfForm(form): super::CsrfForm<ClearQuotaForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(may_clear_quota(&user))?;
    if form.confirm.is_none() {
        user.flash("未清零：请勾选「确认」后再点清零（每月只有 10 次）。");
        return Ok(super::see_other("/admin"));
    }
    let Some(api) = accounts.get(user.account).and_then(|live| live.api.clone()) else {
        user.flash(crate::app::quota::QuotaError::NoApi.to_string());
        return Ok(super::see_other("/admin"));
    };
    match crate::app::quota::clear_quota(&pool, &api, user.account, &user.username, &clock).await {
        Ok(used) => user.flash(format!(
            "已清零微信接口的今日调用次数，已停用的接口恢复调用。本月已用 {used}/{}。",
            crate::app::quota::CLEARS_PER_MONTH
        )),
        Err(error @ (crate::app::quota::QuotaError::Pool(_) | crate::app::quota::QuotaError::Query(_))) => {
            return Err(quota_error(error));
        }
        Err(error) => user.flash(error.to_string()),
    }
    Ok(super::see_other("/admin"))
}

/// Recounts the figures after the answer, unless a recount is already under way.
fn recount_behind(
    pool: Arc<Pool>,
    clock: Arc<Clock>,
    state: Arc<AdminState>,
    account: AccountId,
    api: Option<ApiClient>,
) {
    use std::sync::atomic::Ordering;
    let board = state.board.of(account);
    if board.recounting.swap(true, Ordering::AcqRel) {
        return;
    }
    actix_web::rt::spawn(async move {
        let _turn = board.computing.lock().await;
        match compute(&pool, &clock, &state, account, api.as_ref()).await {
            Ok(figures) => {
                board.keep(figures);
            }
            Err(error) => tracing::warn!(error = ?error, "the board's figures could not be recounted"),
        }
        board.recounting.store(false, Ordering::Release);
    });
}

fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 { "—".to_owned() } else { format!("{:.1}%", part as f64 * 100.0 / whole as f64) }
}

/// Computes every figure. The slow statements (each a scan of a month of events, orders or
/// every tag membership: up to a second at a million followers) run side by side on their own
/// connections, and WeChat's statistics alongside them, so the board costs its slowest part.
async fn compute(
    pool: &Pool,
    clock: &Clock,
    state: &AdminState,
    account: AccountId,
    api: Option<&ApiClient>,
) -> Result<Figures, AdminError> {
    let now = clock.now();
    let today = now.date_naive();
    let first = today.checked_sub_days(Days::new(FLOW_DAYS - 1)).unwrap_or(today);
    let since = first.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let week = now - chrono::Duration::days(7);
    let month = now - chrono::Duration::days(30);
    let followers_and_flow = async {
        let client = pool.get().await?;
        let followers = match store::board::estimate_followers(&client, account).await? {
            // The planner's figure is good to a percent or so once the table is large.
            Some(estimate) if estimate > 100_000 => (estimate, None, true),
            _ => {
                let (all, subscribed) = store::board::count_followers(&client, account).await?;
                (all, Some(subscribed), false)
            }
        };
        let flow = store::board::list_daily_flow(&client, account, since).await?;
        // New followers of days 8 to 37 ago: all of them have had their 7 days.
        let retention = store::board::retention(
            &client,
            account,
            now - chrono::Duration::days(37),
            now - chrono::Duration::days(7),
        )
        .await?;
        Ok::<_, AdminError>((followers, flow, retention))
    };
    let tags = async {
        let client = pool.get().await?;
        let counts = state.tag_members.recount(&client).await?;
        let tags = with_counts(store::tags::list_tag_rows(&client, account).await?, &counts);
        Ok::<_, AdminError>(tags)
    };
    let tagged =
        async { Ok::<_, AdminError>(store::board::count_tagged_followers(&pool.get().await?, account).await?) };
    let clickers =
        async { Ok::<_, AdminError>(store::board::count_actors(&pool.get().await?, account, "click", week).await?) };
    let buyers = async { Ok::<_, AdminError>(store::board::count_buyers(&pool.get().await?, account, month).await?) };
    let wechat = async { tokio::join!(datacube_content(api), wechat_followers(api)) };
    let (database, (content, wechat_followers)) =
        tokio::join!(async { tokio::try_join!(followers_and_flow, tags, tagged, clickers, buyers) }, wechat);
    let (((followers, subscribed, estimated), flow, (joined, day1, day7)), tags, tagged, clickers, (buyers, orders)) =
        database?;

    let base = subscribed.unwrap_or(followers);
    let subscribes = flow.iter().map(|d| d.subscribes).sum();
    let unsubscribes = flow.iter().map(|d| d.unsubscribes).sum();
    let flow_points: Vec<_> = flow.iter().map(|d| (d.day, d.subscribes, d.unsubscribes)).collect();
    let mut tags: Vec<(String, i64)> = tags.into_iter().map(|t| (t.path, t.members)).collect();
    let tag_count = tags.len();
    tags.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let dimensions = vec![
        Dimension {
            name: "用户活跃度",
            metric: "菜单点击率（近 7 天）",
            value: percent(clickers, base),
            detail: format!("{clickers} 位粉丝点击过菜单；停留时长微信不提供，暂无数据"),
            hint: "点击率偏低时，调整推送时段，把常用入口放到菜单第一层。",
        },
        Dimension {
            name: "内容匹配度",
            metric: "分享率 / 收藏率（近 7 天图文）",
            value: content.as_ref().map_or_else(|| "暂无群发数据".to_owned(), |c| percent(c.1, c.0)),
            detail: content.as_ref().map_or_else(
                || "还没有群发图文的阅读统计（来自微信数据统计接口）".to_owned(),
                |c| {
                    format!(
                        "阅读 {} 人，分享 {} 人（{}），收藏 {} 人（{}）",
                        c.0,
                        c.1,
                        percent(c.1, c.0),
                        c.2,
                        percent(c.2, c.0)
                    )
                },
            ),
            hint: "分享、收藏少说明选题不对口：按标签拆分内容，优化选题。",
        },
        Dimension {
            name: "转化效率",
            metric: "下单率（近 30 天，下单粉丝 / 粉丝）",
            value: percent(buyers, base),
            detail: format!("{buyers} 位粉丝下单 {orders} 笔；按群发收件人计算的转化：暂无群发数据"),
            hint: "转化低时，改进利益点设计（优惠券、专属价），并对未下单标签定向推送。",
        },
        Dimension {
            name: "用户留存",
            metric: "新粉丝次日 / 7 日留存（8–37 天前关注）",
            value: format!("{} / {}", percent(day1, joined), percent(day7, joined)),
            detail: format!("{joined} 位新粉丝，次日仍关注 {day1} 位，7 日后仍关注 {day7} 位"),
            hint: "留存下滑时，增加互动机制：关注回复里引导做测验、领福利。",
        },
    ];
    Ok(Figures {
        followers,
        followers_estimated: estimated,
        subscribes,
        unsubscribes,
        tagged,
        coverage: percent(tagged, base),
        tag_count,
        flow_svg: charts::flow_chart(&flow_points, first, today),
        tags_svg: charts::tag_chart(&tags),
        dimensions,
        wechat_followers,
        computed_at: crate::domain::calendar::beijing_minute(now),
    })
}

/// Reads, shares and favourites of the last 7 days of articles, from `getarticlesummary`.
async fn datacube_content(api: Option<&ApiClient>) -> Option<(i64, i64, i64)> {
    let api = api?;
    let end = Utc::now().date_naive().pred_opt()?;
    let begin = end.checked_sub_days(Days::new(6))?;
    let rows = match tokio::time::timeout(DATACUBE_TIMEOUT, api.article_summaries(begin, end)).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "datacube article figures unavailable");
            return None;
        }
        Err(_) => return None,
    };
    let reads: i64 = rows.iter().map(|r| r.read_user).sum();
    (reads > 0).then(|| (reads, rows.iter().map(|r| r.share_user).sum(), rows.iter().map(|r| r.add_to_fav_user).sum()))
}

/// Yesterday's follower total as WeChat counts it (`getusercumulate`).
async fn wechat_followers(api: Option<&ApiClient>) -> Option<i64> {
    let api = api?;
    let end = Utc::now().date_naive().pred_opt()?;
    match tokio::time::timeout(DATACUBE_TIMEOUT, api.user_cumulate(end, end)).await {
        Ok(Ok(rows)) => rows.last().map(|r| r.cumulate_user).filter(|n| *n > 0),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "datacube follower total unavailable");
            None
        }
        Err(_) => None,
    }
}
