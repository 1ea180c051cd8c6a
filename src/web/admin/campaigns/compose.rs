//! 新建群发: the compose form (audience, message, A/B variants, a scheduled time in Beijing
//! time) and creating the draft. An mpnews message is picked from the account's WeChat drafts
//! (the local list `tagcast sync` and the hourly `refresh_drafts` keep); image, voice and video
//! still take a typed media_id.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::reach::ReachView;
use super::{Problem, problem};
use crate::app::campaigns::{self, CampaignRequest};
use crate::domain::campaign::{self as rules, Audience, Message, Variant};
use crate::store;
use crate::web::admin::pages::Choice;
use crate::web::admin::phone::PhoneView;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};
use crate::web::api::CampaignContext;

/// Message kinds the compose form offers, as the API names them.
const KINDS: [(&str, &str); 5] = [
    ("text", "文字"),
    ("mpnews", "图文（从草稿箱选择）"),
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
    /// The picked draft's media_id (mpnews).
    #[serde(default)]
    draft: String,
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
    #[serde(default)]
    variant_draft_1: String,
    #[serde(default)]
    variant_draft_2: String,
    #[serde(default)]
    variant_draft_3: String,
    #[serde(default)]
    variant_draft_4: String,
    /// `datetime-local`, Beijing time.
    #[serde(default)]
    send_at: String,
    /// `count` (计算人数): show the audience's size and re-render, creating nothing.
    #[serde(default)]
    action: String,
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

    /// The draft picked for each variant (mpnews).
    fn variant_drafts(&self) -> [&str; rules::MAX_VARIANTS] {
        [&self.variant_draft_1, &self.variant_draft_2, &self.variant_draft_3, &self.variant_draft_4]
    }

    /// What a variant sends: its picked draft for mpnews, else its typed body.
    fn variant_content(&self, index: usize) -> &str {
        if self.kind == "mpnews" { self.variant_drafts()[index] } else { self.variants()[index].1 }
    }
}

pub struct VariantInput {
    pub index: usize,
    pub name: String,
    pub body: String,
    /// Drafts to pick for this variant (mpnews).
    pub drafts: Vec<Choice>,
}

/// A draft as the picker shows it.
pub struct DraftChoice {
    pub media_id: String,
    pub title: String,
    pub cover_url: String,
    pub article_count: i32,
    /// Beijing time.
    pub updated_at: String,
    pub selected: bool,
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
    drafts: Vec<DraftChoice>,
    variants: Vec<VariantInput>,
    variants_open: bool,
    send_at: String,
    error: Option<String>,
    /// After 计算人数: who the send would reach now.
    reach: Option<ReachView>,
    /// The message as typed, drawn as a follower's phone shows it.
    phone: PhoneView,
}

async fn compose_page(
    user: &AdminUser,
    pool: &Pool,
    form: &ComposeForm,
    error: Option<String>,
    reach: Option<ReachView>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let tags = store::tags::list_tag_rows(&client, user.account)
        .await?
        .into_iter()
        .map(|t| Choice {
            selected: form.tag == t.path,
            label: if t.sensitive { format!("{}（敏感，需审批）", t.path) } else { t.path.clone() },
            value: t.path,
        })
        .collect();
    let segments = store::segments::list_segments(&client, user.account, None, 200)
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
    let listed = store::drafts::list_drafts(&client, user.account).await?;
    let drafts = listed
        .iter()
        .map(|d| DraftChoice {
            media_id: d.media_id.clone(),
            title: d.title.clone(),
            cover_url: d.cover_url.clone(),
            article_count: d.article_count,
            updated_at: crate::domain::calendar::beijing_minute(d.updated_at),
            selected: form.draft == d.media_id,
        })
        .collect();
    let variants_open = form.variants().iter().any(|(name, body)| !name.is_empty() || !body.is_empty());
    let variants = form
        .variants()
        .iter()
        .zip(form.variant_drafts())
        .enumerate()
        .map(|(i, ((name, body), picked))| VariantInput {
            index: i + 1,
            name: (*name).to_owned(),
            body: (*body).to_owned(),
            drafts: listed
                .iter()
                .map(|d| Choice {
                    value: d.media_id.clone(),
                    label: format!("{}（{} 篇）", d.title, d.article_count),
                    selected: picked == d.media_id,
                })
                .collect(),
        })
        .collect();
    let account_name = user.live_account().map(|a| a.display_name.clone()).unwrap_or_default();
    let phone = phone_of(&account_name, form, &listed);
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
        drafts,
        variants,
        variants_open,
        send_at: form.send_at.clone(),
        error,
        reach,
        phone,
    })
    .map(|mut r| {
        *r.status_mut() = status;
        r
    })
}

/// The main message as the form holds it; before anything is typed, a hint in the bubble.
fn phone_of(account: &str, form: &ComposeForm, drafts: &[store::drafts::DraftRow]) -> PhoneView {
    let kind = if form.kind.is_empty() { "text" } else { form.kind.as_str() };
    let media_id = if kind == "mpnews" { form.draft.as_str() } else { form.content.trim() };
    if kind == "text" && form.content.trim().is_empty() || kind != "text" && media_id.is_empty() {
        let hint = Message::Text {
            content: "（写好内容后，这里显示粉丝在手机上看到的样子）".to_owned()
        };
        return PhoneView { shape: "media", ..PhoneView::of(account, &hint, None) };
    }
    match message_of(kind, if kind == "mpnews" { media_id } else { &form.content }) {
        Ok(message) => {
            let draft = drafts.iter().find(|d| kind == "mpnews" && d.media_id == media_id);
            PhoneView::of(account, &message, draft)
        }
        Err(_) => PhoneView::of(account, &Message::Text { content: form.content.clone() }, None),
    }
}

pub async fn new_campaign(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    compose_page(&user, &pool, &ComposeForm::default(), None, None).await
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

/// The form's audience; the sentences cover what only the form can get wrong.
fn audience_of(form: &ComposeForm) -> Result<Audience, String> {
    Ok(match form.audience.as_str() {
        "tag" if form.tag.trim().is_empty() => return Err("请选择标签。".to_owned()),
        "tag" => Audience::Tag(form.tag.trim().to_owned()),
        "segment" => Audience::Segment(form.segment.trim().parse().map_err(|_| "请选择人群。".to_owned())?),
        "all" if form.confirm_all.is_none() => {
            return Err("发给全部粉丝前，请勾选「确认发给全部粉丝」。".to_owned());
        }
        "all" => Audience::All(true),
        _ => return Err("请选择受众：标签、人群或全部粉丝。".to_owned()),
    })
}

/// The form as the domain's request; the sentences cover what only the form can get wrong.
fn request_of(form: &ComposeForm, now: DateTime<Utc>) -> Result<CampaignRequest, String> {
    let audience = audience_of(form)?;
    let content = if form.kind == "mpnews" {
        if form.draft.trim().is_empty() {
            return Err("请从草稿箱中选择一篇图文。".to_owned());
        }
        form.draft.as_str()
    } else {
        form.content.as_str()
    };
    let message = message_of(&form.kind, content)?;
    let mut variants = Vec::new();
    for (i, (name, _)) in form.variants().iter().enumerate() {
        let body = form.variant_content(i);
        match (name.trim().is_empty(), body.trim().is_empty()) {
            (true, true) => {}
            (false, false) => {
                variants.push(Variant { name: name.trim().to_owned(), message: message_of(&form.kind, body)? })
            }
            (true, false) => return Err(format!("对比方案 {} 需要名称。", i + 1)),
            (false, true) if form.kind == "mpnews" => {
                return Err(format!("对比方案 {}「{}」需要从草稿箱选择一篇图文。", i + 1, name.trim()));
            }
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
    accounts: web::Data<crate::app::accounts::Accounts>,
    CsrfForm(form): CsrfForm<ComposeForm>,
) -> Result<HttpResponse, AdminError> {
    if form.action == "count" {
        return count_audience(&user, &pool, &ctx, &accounts, &form).await;
    }
    if form.action == "phone" {
        return compose_page(&user, &pool, &form, None, None).await;
    }
    let request = match request_of(&form, ctx.settings.clock.now()) {
        Ok(request) => request,
        Err(message) => return compose_page(&user, &pool, &form, Some(message), None).await,
    };
    if let Some(message) = unknown_draft(&pool, &user, &request).await? {
        return compose_page(&user, &pool, &form, Some(message), None).await;
    }
    let (settings, _) = ctx.for_account(&accounts, user.account);
    match campaigns::create_campaign(&pool, &settings, &request, &user.username).await {
        Ok(row) => {
            user.flash(format!("已创建群发「{}」（草稿）。预览无误后点「发送」。", row.name));
            Ok(see_other(&format!("/admin/campaigns/{}", row.id)))
        }
        Err(error) => match problem(error) {
            Problem::Say(message) => compose_page(&user, &pool, &form, Some(message), None).await,
            Problem::Fail(error) => Err(error),
        },
    }
}

/// A sentence when an mpnews message names no draft of the account's list: the form only
/// offers listed drafts, so this is a stale page (the list was refreshed since) or a forged post.
async fn unknown_draft(pool: &Pool, user: &AdminUser, request: &CampaignRequest) -> Result<Option<String>, AdminError> {
    let client = pool.get().await?;
    let messages = std::iter::once(&request.message).chain(request.variants.iter().map(|v| &v.message));
    for message in messages {
        if let Message::Mpnews { media_id } = message
            && store::drafts::get_draft(&client, user.account, media_id).await?.is_none()
        {
            return Ok(Some("所选草稿已不在草稿箱列表中（可能已在微信后台删除），请重新选择。".to_owned()));
        }
    }
    Ok(None)
}

/// 计算人数: the compose form again, with who its audience reaches now. Nothing is stored.
async fn count_audience(
    user: &AdminUser,
    pool: &Pool,
    ctx: &CampaignContext,
    accounts: &crate::app::accounts::Accounts,
    form: &ComposeForm,
) -> Result<HttpResponse, AdminError> {
    let audience = match audience_of(form) {
        Ok(audience) => audience,
        Err(message) => return compose_page(user, pool, form, Some(message), None).await,
    };
    let names: Vec<String> = form
        .variants()
        .iter()
        .enumerate()
        .filter(|(i, (name, _))| !name.trim().is_empty() || !form.variant_content(*i).trim().is_empty())
        .map(|(_, (name, _))| name.trim().to_owned())
        .collect();
    let (settings, _) = ctx.for_account(accounts, user.account);
    match campaigns::reach_of_draft(pool, &settings, &audience, 1 + names.len()).await {
        Ok(reach) => compose_page(user, pool, form, None, Some(ReachView::new(&reach, &names))).await,
        Err(error) => match problem(error) {
            Problem::Say(message) => compose_page(user, pool, form, Some(message), None).await,
            Problem::Fail(error) => Err(error),
        },
    }
}
