//! 群发: the campaign list, compose, preview to test followers, the approval queue (approve,
//! 驳回), send and cancel, and one campaign's delivery counts and results. Every decision (validation, approval,
//! the cap, the quota, the plan) belongs to [`crate::app::campaigns`]; these handlers turn its
//! answers into view rows and Chinese sentences.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use serde::Deserialize;

use super::pages::{Choice, PAGE, show_time};
use super::{AdminError, AdminState, AdminUser, CsrfForm, Layout, charts, render, see_other};
use crate::app::campaigns::approval;
use crate::app::campaigns::{self, CampaignError, CampaignRequest, CampaignStats, StrategyStats};
use crate::domain::approval::Change;
use crate::domain::campaign::{self as rules, Audience, Message, Status, Variant};
use crate::store;
use crate::store::campaigns::CampaignRow;
use crate::web::api::CampaignContext;

/// Strategy figures are computed over up to 500 campaigns; shown at most a minute old.
const STRATEGIES_FRESH_FOR: Duration = Duration::from_secs(60);
/// The window the strategy comparison covers.
const STRATEGY_DAYS: i64 = 90;
/// The approval queue shows this many of the longest waiting.
const QUEUE: i64 = 100;

/// The strategy comparison, shared by every viewer of a campaign page for a minute.
#[derive(Default)]
pub struct StrategiesCache {
    figures: Mutex<Option<(Instant, Arc<Vec<StrategyStats>>)>>,
}

impl StrategiesCache {
    async fn get(&self, pool: &Pool, ctx: &CampaignContext) -> Result<Arc<Vec<StrategyStats>>, AdminError> {
        if let Some((at, figures)) = self.figures.lock().expect("no panics while holding the lock").clone() {
            if at.elapsed() < STRATEGIES_FRESH_FOR {
                return Ok(figures);
            }
        }
        let figures = Arc::new(
            campaigns::strategies(pool, &ctx.settings, STRATEGY_DAYS)
                .await
                .map_err(|e| problem(e).err_or_internal())?,
        );
        *self.figures.lock().expect("no panics while holding the lock") = Some((Instant::now(), figures.clone()));
        Ok(figures)
    }

    /// A send just finished or started: the next view should count it.
    fn forget(&self) {
        *self.figures.lock().expect("no panics while holding the lock") = None;
    }
}

// ---------------------------------------------------------------- words

/// How the pages name a status.
pub fn status_label(status: &str) -> &'static str {
    match Status::parse(status) {
        Some(Status::Draft) => "草稿",
        Some(Status::PendingApproval) => "待审批",
        Some(Status::Approved) => "已审批",
        Some(Status::Scheduled) => "已定时",
        Some(Status::Sending) => "发送中",
        Some(Status::Sent) => "已发送",
        Some(Status::Failed) => "失败",
        Some(Status::Cancelled) => "已取消",
        None => "未知",
    }
}

fn strategy_label(kind: &str) -> &'static str {
    match kind {
        "all" => "全员群发",
        "tag" => "单个标签",
        "segment" => "人群（组合条件）",
        _ => "其他",
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// A refusal of the campaign domain as a sentence for the page, or the error page for what the
/// user cannot fix.
enum Problem {
    Say(String),
    Fail(AdminError),
}

impl Problem {
    fn err_or_internal(self) -> AdminError {
        match self {
            Self::Fail(error) => error,
            Self::Say(message) => {
                tracing::error!(message, "a campaign figure could not be computed");
                AdminError::Internal
            }
        }
    }
}

fn problem(error: CampaignError) -> Problem {
    let say = |s: String| Problem::Say(s);
    match error {
        CampaignError::Invalid(message) => say(invalid_problem(&message)),
        CampaignError::NotFound => Problem::Fail(AdminError::NotFound),
        CampaignError::UnknownTag(path) => say(format!("标签「{path}」不存在，请先在「标签」页创建。")),
        CampaignError::UnknownSegment(id) => say(format!("人群 #{id} 不存在。")),
        CampaignError::WrongStatus { status, action } => {
            let action = match action {
                "sent" => "发送",
                "approved" => "审批",
                "rejected" => "驳回",
                "cancelled" => "取消",
                other => other,
            };
            say(format!("该群发当前为「{}」，不能{action}。", status_label(&status)))
        }
        CampaignError::NeedsApproval(tags) => {
            say(format!("受众包含敏感标签（{tags}），需由创建人以外的审批人或管理员审批后才能发送。已放入审批队列。"))
        }
        CampaignError::PreviewReachesSensitive { openids, tags } => say(format!(
            "未预览：{openids} 带有本群发涉及的敏感标签（{tags}）。审批通过之前，只能预览给不带这些标签的粉丝（如测试粉丝）。"
        )),
        CampaignError::FrequencyCap { tag, cap, frees_at } => say(format!(
            "标签「{tag}」近 30 天已群发 {cap} 次，达到上限（TAGCAST_MONTHLY_TAG_CAP）；{} 之后可再发。",
            show_time(frees_at)
        )),
        CampaignError::ApprovalLapsed { tags, changes } => say(format!(
            "审批已失效：{}。受众包含敏感标签（{tags}），已放回审批队列，需重新审批后才能发送。",
            lapse_text(&changes)
        )),
        CampaignError::NotCreatorOrApprover { creator, approver } => {
            say(format!("该群发已审批：只有创建人（{creator}）或审批人（{approver}）可以发送。请联系他们发送。"))
        }
        CampaignError::ChangedSinceShown => {
            say("未审批：你查看之后，该群发或它涉及的标签、人群有了变化。请重新查看后再审批。".to_owned())
        }
        CampaignError::SelfApproval => say("不能审批自己创建的群发：请另一位审批人或管理员审批。".to_owned()),
        CampaignError::MachineReviewer { actor } => {
            say(format!("「{actor}」是系统身份，不能审批或驳回群发：请由审批人或管理员本人登录操作。"))
        }
        CampaignError::EmptyAudience => say("受众中没有已关注的粉丝，无法发送。".to_owned()),
        CampaignError::AudienceTooSmall(_) => say("受众人数太少：微信按 openid 列表群发至少需要 2 位粉丝。".to_owned()),
        CampaignError::QuotaExhausted { next } => {
            say(format!("订阅号每天只能群发一次，今天的次数已用完；{} 起可再发。", show_time(next)))
        }
        CampaignError::WeChat(source) => say(format!("微信拒绝了预览：{source}")),
        CampaignError::NoAccount => say("没有配置微信公众号，无法预览。".to_owned()),
        CampaignError::Pool(e) => Problem::Fail(AdminError::Pool(e)),
        CampaignError::Query(e) => Problem::Fail(AdminError::Query(e)),
    }
}

/// [`crate::app::campaigns`]'s validation sentences in the operator's words; others pass through.
fn invalid_problem(message: &str) -> String {
    if message.starts_with("`name`") {
        "群发名称需 1–100 个字。".to_owned()
    } else if message.contains("`content` must not be empty") {
        "请填写群发内容。".to_owned()
    } else if message.contains("over 2,000 characters") {
        "文字内容最多 2,000 字。".to_owned()
    } else if message.contains("`media_id` must not be empty") {
        "请填写素材的 media_id。".to_owned()
    } else if message.starts_with("at most") {
        format!("最多 {} 个对比方案。", rules::MAX_VARIANTS)
    } else if message.contains("every variant needs") {
        "每个对比方案都需要名称。".to_owned()
    } else if message.contains("subscription account") {
        "订阅号每天只能群发一次，而每个 A/B 方案都是一次单独的群发：订阅号不能使用对比方案。".to_owned()
    } else if message.starts_with("`reason` is required") {
        "驳回需填写原因：告诉创建人需要修改什么。".to_owned()
    } else if message.starts_with("`reason` must be at most") {
        format!("驳回原因最多 {} 字。", approval::MAX_REASON_CHARS)
    } else if message.contains("`openids` must list") {
        "请填写 1–10 个测试粉丝的 openid。".to_owned()
    } else if message.starts_with("a preview makes") {
        format!(
            "预览对每位测试粉丝的每条消息各调用一次微信，一次最多 {} 次：请减少测试粉丝。",
            campaigns::MAX_PREVIEW_CALLS
        )
    } else {
        message.to_owned()
    }
}

/// What made an approval lapse, in the operator's words.
fn change_text(change: &Change) -> String {
    match change {
        Change::Audience => "受众已修改".to_owned(),
        Change::Content => "内容已修改".to_owned(),
        Change::Segment { id } => format!("人群 #{id} 的条件已修改"),
        Change::Renamed { from, to } => format!("标签「{from}」已改名为「{to}」"),
        Change::Sensitivity { path, to: true } => format!("标签「{path}」被标为敏感"),
        Change::Sensitivity { path, to: false } => format!("标签「{path}」不再是敏感标签"),
        Change::Definition { path } => format!("动态标签「{path}」的条件已修改"),
        Change::Reached { path } => format!("受众现在包含标签「{path}」"),
        Change::Unreached { path } => format!("受众不再包含标签「{path}」"),
    }
}

fn lapse_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        "受众涉及的敏感标签没有有效审批（发送请求之后才成为敏感标签，或审批来自旧版本、没有记录审批时的受众与内容）"
            .to_owned()
    } else {
        changes.iter().map(change_text).collect::<Vec<_>>().join("；")
    }
}

/// WeChat's `FilterCount` is how many were left *after* its filters (the monthly 4, refusals),
/// so the filtered-out are the rest of `TotalCount`.
fn filtered_out(total: i64, filter_count: i64) -> i64 {
    (total - filter_count).max(0)
}

fn audience_text(audience: &Audience, segment_name: Option<&str>) -> String {
    match (audience, segment_name) {
        (Audience::Tag(path), _) => format!("标签「{path}」"),
        (Audience::Segment(id), Some(name)) => format!("人群「{name}」（#{id}）"),
        (Audience::Segment(id), None) => format!("人群 #{id}"),
        (Audience::All(_), _) => "全部粉丝".to_owned(),
    }
}

fn message_text(message: &Message) -> (&'static str, String) {
    match message {
        Message::Text { content } => ("文字", content.clone()),
        Message::Mpnews { media_id } => ("图文", media_id.clone()),
        Message::Image { media_id } => ("图片", media_id.clone()),
        Message::Voice { media_id } => ("语音", media_id.clone()),
        Message::Mpvideo { media_id } => ("视频", media_id.clone()),
    }
}

// ---------------------------------------------------------------- 列表

pub struct CampaignListRow {
    pub id: i64,
    pub name: String,
    pub audience: String,
    pub status: &'static str,
    pub status_code: String,
    pub created: String,
    pub created_by: String,
    /// (total, filtered out, sent, failed) once WeChat reported.
    pub counts: Option<(i64, i64, i64, i64)>,
}

#[derive(Template)]
#[template(path = "admin/campaigns/index.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<CampaignListRow>,
    waiting: usize,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    before: Option<i64>,
}

async fn list_rows(client: &impl GenericClient, rows: Vec<CampaignRow>) -> Result<Vec<CampaignListRow>, AdminError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let counts = store::campaigns::list_counts(client, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let audience = campaigns::audience_of(&r).map_or_else(|_| "？".to_owned(), |a| audience_text(&a, None));
            CampaignListRow {
                counts: counts.iter().find(|c| c.0 == r.id).map(|c| (c.1, filtered_out(c.1, c.2), c.3, c.4)),
                id: r.id,
                name: r.name,
                audience,
                status: status_label(&r.status),
                status_code: r.status,
                created: show_time(r.created_at),
                created_by: r.created_by,
            }
        })
        .collect())
}

pub async fn list_campaigns(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let rows = store::campaigns::list_campaigns(&client, query.before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let waiting =
        store::campaigns::list_campaigns_in_status(&client, Status::PendingApproval.as_str(), QUEUE).await?.len();
    let rows = list_rows(&client, rows).await?;
    render(&ListPage { layout: user.layout("campaigns"), rows, waiting, next })
}

// ---------------------------------------------------------------- 新建

/// Message kinds the compose form offers, as the API names them.
const KINDS: [(&str, &str); 5] = [
    ("text", "文字"),
    ("mpnews", "图文（media_id）"),
    ("image", "图片（media_id）"),
    ("voice", "语音（media_id）"),
    ("mpvideo", "视频（media_id）"),
];

#[derive(Deserialize, Default)]
pub struct ComposeForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    segment: String,
    #[serde(default)]
    confirm_all: Option<String>,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    variant_name_1: String,
    #[serde(default)]
    variant_body_1: String,
    #[serde(default)]
    variant_name_2: String,
    #[serde(default)]
    variant_body_2: String,
    #[serde(default)]
    variant_name_3: String,
    #[serde(default)]
    variant_body_3: String,
    #[serde(default)]
    variant_name_4: String,
    #[serde(default)]
    variant_body_4: String,
    /// `datetime-local`, Beijing time.
    #[serde(default)]
    send_at: String,
}

impl ComposeForm {
    fn variants(&self) -> [(&str, &str); rules::MAX_VARIANTS] {
        [
            (&self.variant_name_1, &self.variant_body_1),
            (&self.variant_name_2, &self.variant_body_2),
            (&self.variant_name_3, &self.variant_body_3),
            (&self.variant_name_4, &self.variant_body_4),
        ]
    }
}

pub struct VariantInput {
    pub index: usize,
    pub name: String,
    pub body: String,
}

#[derive(Template)]
#[template(path = "admin/campaigns/new.html")]
struct ComposePage {
    layout: Layout,
    name: String,
    audience: String,
    confirm_all: bool,
    tags: Vec<Choice>,
    segments: Vec<Choice>,
    kinds: Vec<Choice>,
    content: String,
    variants: Vec<VariantInput>,
    variants_open: bool,
    send_at: String,
    error: Option<String>,
}

async fn compose_page(
    user: &AdminUser,
    pool: &Pool,
    form: &ComposeForm,
    error: Option<String>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let tags = store::tags::list_tag_rows(&client)
        .await?
        .into_iter()
        .map(|t| Choice {
            selected: form.tag == t.path,
            label: if t.sensitive { format!("{}（敏感，需审批）", t.path) } else { t.path.clone() },
            value: t.path,
        })
        .collect();
    let segments = store::segments::list_segments(&client, None, 200)
        .await?
        .into_iter()
        .map(|s| Choice {
            selected: form.segment == s.id.to_string(),
            label: format!("#{} {}", s.id, s.name),
            value: s.id.to_string(),
        })
        .collect();
    let kind = if form.kind.is_empty() { "text" } else { form.kind.as_str() };
    let kinds = KINDS
        .iter()
        .map(|(value, label)| Choice {
            value: (*value).to_owned(),
            label: (*label).to_owned(),
            selected: kind == *value,
        })
        .collect();
    let variants_open = form.variants().iter().any(|(name, body)| !name.is_empty() || !body.is_empty());
    let variants = form
        .variants()
        .iter()
        .enumerate()
        .map(|(i, (name, body))| VariantInput { index: i + 1, name: (*name).to_owned(), body: (*body).to_owned() })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    render(&ComposePage {
        layout: user.layout("campaigns"),
        name: form.name.clone(),
        audience: if form.audience.is_empty() { "tag".to_owned() } else { form.audience.clone() },
        confirm_all: form.confirm_all.is_some(),
        tags,
        segments,
        kinds,
        content: form.content.clone(),
        variants,
        variants_open,
        send_at: form.send_at.clone(),
        error,
    })
    .map(|mut r| {
        *r.status_mut() = status;
        r
    })
}

pub async fn new_campaign(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    compose_page(&user, &pool, &ComposeForm::default(), None).await
}

fn message_of(kind: &str, body: &str) -> Result<Message, String> {
    let body = body.trim().to_owned();
    Ok(match kind {
        "text" | "" => Message::Text { content: body },
        "mpnews" => Message::Mpnews { media_id: body },
        "image" => Message::Image { media_id: body },
        "voice" => Message::Voice { media_id: body },
        "mpvideo" => Message::Mpvideo { media_id: body },
        _ => return Err("请选择消息类型。".to_owned()),
    })
}

/// A `datetime-local` value read as Beijing time.
fn parse_send_at(text: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .map_err(|_| format!("定时发送时间「{text}」无法识别，请按 2026-05-20 09:30 的格式填写。"))?;
    let at = crate::domain::calendar::from_beijing(local);
    if at <= now {
        return Err("定时发送时间已过：留空即立即发送，或选择将来的时间。".to_owned());
    }
    Ok(Some(at))
}

/// The form as the domain's request; the sentences cover what only the form can get wrong.
fn request_of(form: &ComposeForm, now: DateTime<Utc>) -> Result<CampaignRequest, String> {
    let audience = match form.audience.as_str() {
        "tag" if form.tag.trim().is_empty() => return Err("请选择标签。".to_owned()),
        "tag" => Audience::Tag(form.tag.trim().to_owned()),
        "segment" => Audience::Segment(form.segment.trim().parse().map_err(|_| "请选择人群。".to_owned())?),
        "all" if form.confirm_all.is_none() => {
            return Err("发给全部粉丝前，请勾选「确认发给全部粉丝」。".to_owned());
        }
        "all" => Audience::All(true),
        _ => return Err("请选择受众：标签、人群或全部粉丝。".to_owned()),
    };
    let message = message_of(&form.kind, &form.content)?;
    let mut variants = Vec::new();
    for (i, (name, body)) in form.variants().iter().enumerate() {
        match (name.trim().is_empty(), body.trim().is_empty()) {
            (true, true) => {}
            (false, false) => {
                variants.push(Variant { name: name.trim().to_owned(), message: message_of(&form.kind, body)? })
            }
            (true, false) => return Err(format!("对比方案 {} 需要名称。", i + 1)),
            (false, true) => return Err(format!("对比方案 {}「{}」需要内容。", i + 1, name.trim())),
        }
    }
    Ok(CampaignRequest {
        name: form.name.clone(),
        audience,
        message,
        variants,
        send_at: parse_send_at(&form.send_at, now)?,
    })
}

pub async fn create_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    CsrfForm(form): CsrfForm<ComposeForm>,
) -> Result<HttpResponse, AdminError> {
    let request = match request_of(&form, ctx.settings.clock.now()) {
        Ok(request) => request,
        Err(message) => return compose_page(&user, &pool, &form, Some(message)).await,
    };
    match campaigns::create_campaign(&pool, &ctx.settings, &request, &user.username).await {
        Ok(row) => {
            user.flash(format!("已创建群发「{}」（草稿）。预览无误后点「发送」。", row.name));
            Ok(see_other(&format!("/admin/campaigns/{}", row.id)))
        }
        Err(error) => match problem(error) {
            Problem::Say(message) => compose_page(&user, &pool, &form, Some(message)).await,
            Problem::Fail(error) => Err(error),
        },
    }
}

// ---------------------------------------------------------------- 审批队列

pub struct QueueRow {
    pub id: i64,
    /// Back in the queue because its approval lapsed: why.
    pub lapsed: Option<String>,
    /// Of what the row shows, sent with the approval.
    pub fingerprint: String,
    pub name: String,
    pub audience: String,
    pub sensitive: String,
    pub message: String,
    pub created: String,
    pub created_by: String,
    pub own: bool,
}

#[derive(Template)]
#[template(path = "admin/campaigns/approvals.html")]
struct QueuePage {
    layout: Layout,
    rows: Vec<QueueRow>,
    may_approve: bool,
}

pub async fn list_approvals(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let waiting = store::campaigns::list_campaigns_in_status(&client, Status::PendingApproval.as_str(), QUEUE).await?;
    let mut rows = Vec::with_capacity(waiting.len());
    for row in waiting {
        let (sensitive, fingerprint) = match approval::covered(&client, &row).await {
            Ok(covered) => (covered.sensitive().join("、"), covered.fingerprint()),
            Err(error) => match problem(error) {
                Problem::Say(message) => (message, String::new()),
                Problem::Fail(error) => return Err(error),
            },
        };
        let audience = campaigns::audience_of(&row).map_or_else(|_| "？".to_owned(), |a| audience_text(&a, None));
        let message = serde_json::from_value::<Message>(row.message.clone())
            .map_or_else(|_| String::new(), |m| message_text(&m).1);
        let lapsed = stored_lapse(&store::approvals::get_review(&client, row.id).await?);
        rows.push(QueueRow {
            lapsed,
            fingerprint,
            id: row.id,
            own: row.created_by == user.username,
            name: row.name,
            audience,
            sensitive,
            message,
            created: show_time(row.created_at),
            created_by: row.created_by,
        });
    }
    render(&QueuePage { layout: user.layout("campaigns"), rows, may_approve: user.role.may_approve() })
}

#[derive(Deserialize)]
pub struct ApproveForm {
    /// `queue` to come back to the approval queue, else the campaign's page.
    #[serde(default)]
    back: String,
    /// The fingerprint of what the page showed: an approval is for what the approver saw.
    #[serde(default)]
    shown: Option<String>,
}

pub async fn approve_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ApproveForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_approve())?;
    let id = id.into_inner();
    let done = approval::approve(&pool, id, &user.username, form.shown.as_deref()).await;
    after_review(&user, done.map(|row| format!("已审批群发「{}」。创建人或你现在可以发送。", row.name)), &form.back, id)
}

/// Says how an approval or a rejection went, then goes back where the reviewer came from.
fn after_review(
    user: &AdminUser,
    done: Result<String, CampaignError>,
    back: &str,
    id: i64,
) -> Result<HttpResponse, AdminError> {
    match done {
        Ok(message) => user.flash(message),
        Err(error) => match problem(error) {
            Problem::Say(message) => user.flash(message),
            Problem::Fail(error) => return Err(error),
        },
    }
    Ok(see_other(&if back == "queue" {
        "/admin/campaigns/approvals".to_owned()
    } else {
        format!("/admin/campaigns/{id}")
    }))
}

/// Why a campaign's approval lapsed, as recorded when it did.
fn stored_lapse(review: &store::approvals::Review) -> Option<String> {
    review.lapsed_at.map(|at| {
        let changes: Vec<Change> =
            review.lapse.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
        format!("{}（{}）", lapse_text(&changes), show_time(at))
    })
}

#[derive(Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    reason: String,
    /// `queue` to come back to the approval queue, else the campaign's page.
    #[serde(default)]
    back: String,
}

/// 驳回: the campaign goes back to its creator as a draft, with the reason on its page.
pub async fn reject_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<RejectForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_approve())?;
    let id = id.into_inner();
    let done = approval::reject(&pool, id, &user.username, &form.reason).await;
    after_review(
        &user,
        done.map(|row| format!("已驳回群发「{}」，创建人会在群发页面看到原因。", row.name)),
        &form.back,
        id,
    )
}

// ---------------------------------------------------------------- 发送、取消

#[derive(Deserialize)]
pub struct SendForm {
    /// The status the page showed when the button was pressed: the send's idempotency key. A
    /// second press (or a reload that posts again) finds the campaign already on its way and
    /// is told so instead of being refused.
    #[serde(default)]
    shown_status: String,
}

pub async fn send_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<SendForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    match campaigns::request_send(&pool, &ctx.settings, id, &user.username).await {
        Ok(accepted) => {
            state.strategies.forget();
            let filtered = if accepted.will_be_filtered > 0 {
                format!("其中 {} 位本月已收满 4 条群发，微信会过滤掉。", accepted.will_be_filtered)
            } else {
                String::new()
            };
            user.flash(match accepted.send_at.filter(|_| accepted.status == Status::Scheduled.as_str()) {
                Some(at) => format!("已定时在 {} 发送给 {} 位粉丝。{filtered}", show_time(at), accepted.recipients),
                None => {
                    format!("已开始发送给 {} 位粉丝。{filtered}微信处理完成后这里会显示送达人数。", accepted.recipients)
                }
            });
        }
        Err(CampaignError::WrongStatus { status, .. })
            if Status::parse(&form.shown_status).is_some_and(Status::may_send)
                && Status::parse(&status).is_some_and(|s| !s.may_send() && s != Status::Cancelled) =>
        {
            user.flash(format!("该群发已提交（当前：{}），没有重复发送。", status_label(&status)));
        }
        Err(error) => match problem(error) {
            Problem::Say(message) => user.flash(message),
            Problem::Fail(error) => return Err(error),
        },
    }
    Ok(see_other(&format!("/admin/campaigns/{id}")))
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn cancel_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<CancelForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    if form.confirm.is_none() {
        user.flash("未取消：请勾选「确认」后再点取消。");
        return Ok(see_other(&format!("/admin/campaigns/{id}")));
    }
    match campaigns::cancel(&pool, id, &user.username).await {
        Ok(row) => user.flash(format!("已取消群发「{}」：尚未发出的部分不会再发送。", row.name)),
        Err(error) => match problem(error) {
            Problem::Say(message) => user.flash(message),
            Problem::Fail(error) => return Err(error),
        },
    }
    Ok(see_other(&format!("/admin/campaigns/{id}")))
}

// ---------------------------------------------------------------- 详情与预览

pub struct MessageView {
    pub label: String,
    pub kind: &'static str,
    pub body: String,
}

pub struct VariantView {
    pub name: String,
    pub recipients: i64,
    pub clickers: i64,
    pub click_rate: String,
    pub conversions: i64,
    pub conversion_rate: String,
    pub unsubscribes: i64,
    /// Against the control, on clicks: the two-sided p-value, or "—".
    pub p_clicks: String,
    pub winner: bool,
}

pub struct StrategyView {
    pub label: &'static str,
    pub this: bool,
    pub campaigns: i64,
    pub recipients: i64,
    pub click_rate: String,
    pub conversion_rate: String,
    pub unsubscribe_rate: String,
}

/// The last 驳回, shown to the creator.
pub struct Rejection {
    pub by: String,
    pub at: String,
    pub reason: String,
}

pub struct PreviewResult {
    pub openid: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/campaigns/show.html")]
struct DetailPage {
    layout: Layout,
    id: i64,
    name: String,
    status: &'static str,
    status_code: String,
    audience: String,
    sensitive: Vec<String>,
    approvals: Vec<String>,
    /// 审批已失效: what changed since the approval.
    lapsed: Option<String>,
    rejection: Option<Rejection>,
    needs_approval: bool,
    messages: Vec<MessageView>,
    send_at: String,
    created: String,
    created_by: String,
    requested: String,
    delivered: String,
    last_error: Option<String>,
    /// (planned, pending, submitted, failed, finished) WeChat calls.
    calls: (i64, i64, i64, i64, i64),
    /// Finished calls whose status was read back with `mass/get`: no counts.
    uncounted: i64,
    /// (total, filtered out, sent, failed) from MASSSENDJOBFINISH.
    counts: (i64, i64, i64, i64),
    reported: bool,
    delivery_svg: String,
    stats: CampaignStats,
    click_rate: String,
    conversion_rate: String,
    unsubscribe_rate: String,
    read_rate: String,
    variants: Vec<VariantView>,
    verdict: Option<String>,
    results_svg: String,
    strategies: Vec<StrategyView>,
    strategies_svg: String,
    can_send: bool,
    can_approve: bool,
    /// Of what the page shows, sent with the approval.
    fingerprint: String,
    can_reject: bool,
    own: bool,
    may_approve: bool,
    can_cancel: bool,
    preview_openids: String,
    preview: Vec<PreviewResult>,
    preview_error: Option<String>,
}

struct PreviewOutcome {
    openids: String,
    results: Vec<PreviewResult>,
    error: Option<String>,
}

async fn detail_page(
    user: &AdminUser,
    pool: &Pool,
    ctx: &CampaignContext,
    state: &AdminState,
    id: i64,
    preview: Option<PreviewOutcome>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let row = store::campaigns::get_campaign(&client, id).await?.ok_or(AdminError::NotFound)?;
    let say = |error: CampaignError| match problem(error) {
        Problem::Say(message) => {
            tracing::warn!(campaign.id = id, message, "a stored campaign could not be read back");
            AdminError::Internal
        }
        Problem::Fail(error) => error,
    };
    let audience = campaigns::audience_of(&row).map_err(say)?;
    let segment_name = match &audience {
        Audience::Segment(sid) => store::segments::get_segment(&client, *sid).await?.map(|s| s.name),
        _ => None,
    };
    // A segment deleted (or no longer parsing) after the campaign was written names no tags:
    // sending it is refused by the domain anyway, and the page still shows what was stored.
    let standing = match approval::standing(&client, &row).await {
        Ok(standing) => Some(standing),
        Err(CampaignError::UnknownSegment(_) | CampaignError::Invalid(_)) => None,
        Err(error) => return Err(say(error)),
    };
    let sensitive: Vec<String> =
        standing.as_ref().map(|s| s.covered.sensitive().into_iter().map(str::to_owned).collect()).unwrap_or_default();
    let needs_approval = standing.as_ref().is_some_and(approval::Standing::needs_approval);
    let fingerprint = standing.as_ref().map(|s| s.covered.fingerprint()).unwrap_or_default();
    let approvals = store::approvals::list_approvals(&client, id).await?;
    let review = store::approvals::get_review(&client, id).await?;
    // Shown before anyone presses send: the approval no longer covers what would go out.
    let lapsed = match standing.as_ref().and_then(|s| s.lapsed.as_ref()) {
        Some(changes) if needs_approval => Some(lapse_text(changes)),
        _ => stored_lapse(&review),
    };
    let rejection = review.rejected_by.clone().map(|by| Rejection {
        by,
        at: review.rejected_at.map_or_else(String::new, show_time),
        reason: review.rejection_reason.clone().unwrap_or_default(),
    });
    let mut messages = Vec::new();
    let variant_names: Vec<String> =
        store::campaigns::list_variants(&client, id).await?.into_iter().map(|(_, name, _)| name).collect();
    for (i, message) in campaigns::messages_of(&client, &row).await.map_err(say)?.iter().enumerate() {
        let (kind, body) = message_text(message);
        let label = match i {
            0 if variant_names.is_empty() => "内容".to_owned(),
            0 => "对照".to_owned(),
            i => format!("方案 {i}「{}」", variant_names.get(i - 1).map_or("", String::as_str)),
        };
        messages.push(MessageView { label, kind, body });
    }
    let progress = store::campaigns::progress(&client, id).await?;
    let stats = campaigns::stats(&client, &ctx.settings, id).await.map_err(say)?;
    let group_name = |variant: i32| match variant {
        0 if variant_names.is_empty() => "本次群发".to_owned(),
        0 => "对照".to_owned(),
        v => variant_names.get(v as usize - 1).cloned().unwrap_or_else(|| format!("方案 {v}")),
    };
    let winner = stats.ab_test.as_ref().and_then(|ab| ab.clicks.winner);
    let variants: Vec<VariantView> = stats
        .variants
        .iter()
        .enumerate()
        .map(|(i, v)| VariantView {
            name: group_name(v.variant),
            recipients: v.recipients,
            clickers: v.clickers,
            click_rate: percent(v.click_rate),
            conversions: v.conversions,
            conversion_rate: percent(v.conversion_rate),
            unsubscribes: v.unsubscribes,
            p_clicks: stats
                .ab_test
                .as_ref()
                .and_then(|ab| i.checked_sub(1).and_then(|j| ab.clicks.against_control.get(j).copied().flatten()))
                .map_or_else(|| "—".to_owned(), |t| format!("{:.3}", t.p_value)),
            winner: winner == Some(v.variant),
        })
        .collect();
    let verdict = stats.ab_test.as_ref().map(|ab| match ab.clicks.winner {
        Some(w) => format!("点击率上「{}」显著胜出（p < 0.05）。", group_name(w)),
        None => "各方案的点击率差异尚不显著（p ≥ 0.05），继续观察或加大样本。".to_owned(),
    });
    let results_svg = if stats.recipients > 0 {
        let groups: Vec<(String, Vec<Option<f64>>)> = stats
            .variants
            .iter()
            .map(|v| {
                let unsubscribe_rate = (v.recipients > 0).then(|| v.unsubscribes as f64 / v.recipients as f64);
                (group_name(v.variant), vec![v.click_rate, v.conversion_rate, unsubscribe_rate])
            })
            .collect();
        charts::rate_chart(&groups, &["点击率", "转化率", "退订率"])
    } else {
        String::new()
    };
    drop(client);
    let figures = state.strategies.get(pool, ctx).await?;
    let strategies: Vec<StrategyView> = figures
        .iter()
        .map(|s| StrategyView {
            label: strategy_label(s.strategy),
            this: s.strategy == audience.kind(),
            campaigns: s.campaigns,
            recipients: s.recipients,
            click_rate: percent(s.click_rate),
            conversion_rate: percent(s.conversion_rate),
            unsubscribe_rate: percent(s.unsubscribe_rate),
        })
        .collect();
    let strategies_svg = if figures.iter().any(|s| s.recipients > 0) {
        let groups: Vec<(String, Vec<Option<f64>>)> = figures
            .iter()
            .filter(|s| s.recipients > 0)
            .map(|s| (strategy_label(s.strategy).to_owned(), vec![s.click_rate, s.conversion_rate, s.unsubscribe_rate]))
            .collect();
        charts::rate_chart(&groups, &["点击率", "转化率", "退订率"])
    } else {
        String::new()
    };
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    let own = row.created_by == user.username;
    let reported = progress.finished > 0;
    let preview = preview.unwrap_or(PreviewOutcome { openids: String::new(), results: Vec::new(), error: None });
    let page = DetailPage {
        layout: user.layout("campaigns"),
        id,
        name: row.name.clone(),
        status: status_label(&row.status),
        status_code: row.status.clone(),
        audience: audience_text(&audience, segment_name.as_deref()),
        needs_approval,
        can_approve: user.role.may_approve()
            && !own
            && status.may_approve()
            && (!sensitive.is_empty() || status == Status::PendingApproval),
        can_reject: user.role.may_approve() && status == Status::PendingApproval,
        fingerprint,
        sensitive,
        approvals: approvals.iter().map(|a| format!("{}（{}）", a.by, show_time(a.at))).collect(),
        lapsed,
        rejection,
        messages,
        send_at: row.send_at.map_or_else(|| "立即".to_owned(), show_time),
        created: show_time(row.created_at),
        created_by: row.created_by.clone(),
        requested: match (&row.send_requested_by, row.send_requested_at) {
            (Some(by), Some(at)) => format!("{by}（{}）", show_time(at)),
            _ => "—".to_owned(),
        },
        delivered: row.delivered_at.map_or_else(|| "—".to_owned(), show_time),
        last_error: row.last_error.clone(),
        calls: (progress.chunks, progress.pending, progress.submitted, progress.failed, progress.finished),
        uncounted: progress.uncounted,
        counts: (progress.total, filtered_out(progress.total, progress.filter), progress.sent, progress.error),
        reported,
        delivery_svg: if reported {
            charts::delivery_chart(progress.sent, filtered_out(progress.total, progress.filter), progress.error)
        } else {
            String::new()
        },
        click_rate: percent(stats.click_rate),
        conversion_rate: percent(stats.conversion_rate),
        unsubscribe_rate: percent(stats.unsubscribe_rate),
        read_rate: percent(stats.read_rate),
        stats,
        variants,
        verdict,
        results_svg,
        strategies,
        strategies_svg,
        can_send: status.may_send(),
        own,
        may_approve: user.role.may_approve(),
        can_cancel: status.may_cancel(),
        preview_openids: preview.openids,
        preview_error: preview.error.clone(),
        preview: preview.results,
    };
    let refused = page.preview_error.is_some();
    render(&page).map(|mut r| {
        if refused {
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        }
        r
    })
}

pub async fn show_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AdminError> {
    detail_page(&user, &pool, &ctx, &state, id.into_inner(), None).await
}

#[derive(Deserialize)]
pub struct PreviewForm {
    #[serde(default)]
    openids: String,
}

/// Sends every message of the campaign to the listed test followers through WeChat's preview,
/// and shows, per follower, whether WeChat took it.
pub async fn preview_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<PreviewForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let openids: Vec<String> = form
        .openids
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、'))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let outcome = match campaigns::preview(&pool, ctx.api.as_ref(), id, &openids, &user.username).await {
        Ok(results) => PreviewOutcome {
            openids: form.openids.clone(),
            results: results.into_iter().map(|(openid, error)| PreviewResult { openid, error }).collect(),
            error: None,
        },
        Err(error) => match problem(error) {
            Problem::Say(message) => {
                PreviewOutcome { openids: form.openids.clone(), results: Vec::new(), error: Some(message) }
            }
            Problem::Fail(error) => return Err(error),
        },
    };
    detail_page(&user, &pool, &ctx, &state, id, Some(outcome)).await
}
