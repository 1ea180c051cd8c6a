//! 新建群发: the compose form (audience, message, A/B variants, a scheduled time in Beijing
//! time) and creating the draft.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{Problem, problem};
use crate::app::campaigns::{self, CampaignRequest};
use crate::domain::campaign::{self as rules, Audience, Message, Variant};
use crate::store;
use crate::web::admin::pages::Choice;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};
use crate::web::api::CampaignContext;

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
    accounts: web::Data<crate::app::accounts::Accounts>,
    CsrfForm(form): CsrfForm<ComposeForm>,
) -> Result<HttpResponse, AdminError> {
    let request = match request_of(&form, ctx.settings.clock.now()) {
        Ok(request) => request,
        Err(message) => return compose_page(&user, &pool, &form, Some(message)).await,
    };
    let (settings, _) = ctx.for_account(&accounts, user.account);
    match campaigns::create_campaign(&pool, &settings, &request, &user.username).await {
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
