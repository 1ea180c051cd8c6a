//! 意图: intent tags learned from what followers write (issue 21, point 4). The operator names
//! intents (each gives a tag `意图/…`), labels the messages the model is least sure of in the
//! 待标注 queue, sees each intent's cross-validated precision and recall, and tries a sentence to
//! see which words drive the reading. Every logged-in role may label and define intents.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{audit, refused, show_time};
use crate::app::intents::{self, Figures, IntentError};
use crate::store;
use crate::web::admin::confirm::{ConfirmForm, Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Empty, Layout, render, see_other};

/// Longest message 试一试 reads.
const MAX_TRY_CHARS: usize = 500;

pub struct IntentView {
    pub id: i64,
    pub name: String,
    pub tag_path: String,
    pub percent: u32,
    pub keywords: String,
    pub labelled: i64,
    pub seeded: i64,
    pub members: i64,
}

pub struct QueueView {
    /// Position in the queue: the form ids.
    pub n: usize,
    pub event: i64,
    pub text: String,
    pub at: String,
    pub guess: String,
    pub words: String,
}

pub struct ReadingView {
    pub lines: Vec<(String, String)>,
    pub words: Vec<(String, String)>,
    pub verdict: String,
}

#[derive(Template)]
#[template(path = "admin/intents/index.html")]
struct IntentsPage {
    layout: Layout,
    intents: Vec<IntentView>,
    queue: Vec<QueueView>,
    queue_total: usize,
    other_labelled: i64,
    trained: Option<String>,
    figures: Figures,
    waiting: bool,
    reading: Option<ReadingView>,
    try_text: String,
    /// The create form as typed, and what was wrong with it.
    name: String,
    keywords: String,
    percent: String,
    error: Option<String>,
}

/// The create form, or what a refused form showed.
#[derive(Default)]
struct Typed {
    name: String,
    keywords: String,
    percent: String,
    error: Option<String>,
}

/// A domain refusal becomes the page's message; a database failure stays an error.
fn message_of(error: IntentError) -> Result<String, AdminError> {
    match error {
        IntentError::Pool(e) | IntentError::Tagging(crate::app::tagging::TaggingError::Pool(e)) => {
            Err(AdminError::Pool(e))
        }
        IntentError::Query(e) | IntentError::Tagging(crate::app::tagging::TaggingError::Query(e)) => {
            Err(AdminError::Query(e))
        }
        IntentError::Join(_) => Err(AdminError::Internal),
        other => Ok(other.to_string()),
    }
}

fn percent(p: f64) -> String {
    format!("{:.0}%", p * 100.0)
}

async fn page(user: &AdminUser, pool: &Pool, typed: Typed, try_text: String) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let rows = store::intents::list_intents(&client, user.account).await?;
    let counts = store::intents::example_counts(&client, user.account).await?;
    let members: std::collections::HashMap<i64, i64> =
        store::tags::list_tags(&client, user.account).await?.into_iter().map(|t| (t.id, t.members)).collect();
    let count = |intent: Option<&str>, source: &str| -> i64 {
        counts.iter().filter(|(i, s, _)| i.as_deref() == intent && s == source).map(|(_, _, n)| n).sum()
    };
    let intents = rows
        .iter()
        .map(|r| IntentView {
            id: r.id,
            name: r.name.clone(),
            tag_path: r.tag_path.clone(),
            percent: (r.threshold * 100.0).round() as u32,
            keywords: r.keywords.join("，"),
            labelled: count(Some(&r.name), "operator"),
            seeded: count(Some(&r.name), "keyword"),
            members: members.get(&r.tag_id).copied().unwrap_or(0),
        })
        .collect();
    let model = store::intents::model(&client, user.account).await?;
    let waiting = store::jobs::is_pending(&client, user.account, crate::domain::job::JobKind::TrainIntents).await?;
    drop(client);
    let figures: Figures =
        model.as_ref().and_then(|m| serde_json::from_value(m.figures.clone()).ok()).unwrap_or_default();
    let trained = model.as_ref().map(|m| {
        let who = if m.trained_by == "system" { "系统".to_owned() } else { m.trained_by.clone() };
        format!("{}（{who}，{} 条示例）", show_time(m.trained_at), m.examples)
    });
    let (items, queue_total) =
        intents::queue(pool, user.account).await.or_else(|e| message_of(e).map(|_| (Vec::new(), 0)))?;
    let queue = items
        .into_iter()
        .enumerate()
        .map(|(n, item)| QueueView {
            n,
            event: item.event,
            text: item.text,
            at: show_time(item.occurred_at),
            guess: match item.guess {
                None => "还没有模型".to_owned(),
                Some((intent, p)) => {
                    format!("{}（{}）", intent.as_deref().unwrap_or(crate::domain::intent::OTHER), percent(p))
                }
            },
            words: item.words.join("、"),
        })
        .collect();
    let reading = if try_text.trim().is_empty() {
        None
    } else {
        let read =
            intents::read_message(pool, user.account, &try_text).await.or_else(|e| message_of(e).map(|_| None))?;
        Some(match read {
            None => ReadingView {
                lines: Vec::new(),
                words: Vec::new(),
                verdict: "还没有训练好的模型：先新建意图并标注一些消息。".to_owned(),
            },
            Some(r) => {
                let mut lines: Vec<(String, String)> =
                    r.intents.iter().map(|(n, p)| (n.clone(), percent(*p))).collect();
                lines.push((crate::domain::intent::OTHER.to_owned(), percent(r.other)));
                ReadingView {
                    lines,
                    words: r
                        .words
                        .iter()
                        .map(|(w, weight)| {
                            (w.clone(), if *weight >= 0.0 { "支持".to_owned() } else { "反对".to_owned() })
                        })
                        .collect(),
                    verdict: match r.tags {
                        Some(name) => format!("会给发送者打上「{}/{name}」标签。", intents::TAG_ROOT),
                        None => "把握不够，不会打标签。".to_owned(),
                    },
                }
            }
        })
    };
    render(&IntentsPage {
        layout: user.layout("intents"),
        intents,
        queue,
        queue_total,
        other_labelled: count(None, "operator"),
        trained,
        figures,
        waiting,
        reading,
        try_text,
        name: typed.name,
        keywords: typed.keywords,
        percent: if typed.percent.is_empty() { "80".to_owned() } else { typed.percent },
        error: typed.error,
    })
}

#[derive(Deserialize, Default)]
pub struct TryQuery {
    #[serde(default)]
    text: String,
}

pub async fn intents_page(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<TryQuery>,
) -> Result<HttpResponse, AdminError> {
    let text: String = query.into_inner().text.chars().take(MAX_TRY_CHARS).collect();
    page(&user, &pool, Typed::default(), text).await
}

#[derive(Deserialize, Default)]
pub struct IntentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    keywords: String,
    #[serde(default)]
    percent: String,
    /// The 同步到微信 checkbox of the create form.
    #[serde(default)]
    wechat: Option<String>,
}

/// The threshold as the operator types it: a whole percentage 1–100.
fn threshold_of(percent: &str) -> Result<f64, String> {
    match percent.trim().trim_end_matches(['%', '％']).trim().parse::<u32>() {
        Ok(p @ 1..=100) => Ok(f64::from(p) / 100.0),
        _ => Err(format!(
            "「打标签所需把握」要填 1 到 100 的整数（例如 80 表示八成把握才打标签），现在是「{}」",
            percent.trim()
        )),
    }
}

pub async fn create_intent(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<IntentForm>,
) -> Result<HttpResponse, AdminError> {
    let typed = |error: String| Typed {
        name: form.name.clone(),
        keywords: form.keywords.clone(),
        percent: form.percent.clone(),
        error: Some(error),
    };
    let parsed = threshold_of(&form.percent)
        .and_then(|t| intents::parse_keywords(&form.keywords).map(|k| (t, k)).map_err(|e| e.to_string()));
    let (threshold, keywords) = match parsed {
        Ok(ok) => ok,
        Err(problem) => return refused(page(&user, &pool, typed(problem), String::new()).await),
    };
    let wechat = form.wechat.is_some();
    match intents::create_intent(&pool, user.account, &form.name, &keywords, threshold, wechat, &user.username).await {
        Ok(row) => {
            let detail = serde_json::json!({ "tag": row.tag_path, "threshold": threshold, "keywords": keywords });
            audit(&pool, &user, "create", "intent", &row.name, detail).await?;
            user.flash(format!(
                "已新建意图「{}」，标签为「{}」。下一步：在下方「待标注」里为它标注消息，或填写关键词后点「用关键词生成示例」。",
                row.name, row.tag_path
            ));
            Ok(see_other("/admin/intents"))
        }
        Err(error) => {
            let problem = message_of(error)?;
            refused(page(&user, &pool, typed(problem), String::new()).await)
        }
    }
}

pub async fn update_intent(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<IntentForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let parsed = threshold_of(&form.percent)
        .and_then(|t| intents::parse_keywords(&form.keywords).map(|k| (t, k)).map_err(|e| e.to_string()));
    let result = match parsed {
        Ok((threshold, keywords)) => {
            intents::update_intent(&pool, user.account, id, threshold, &keywords, &user.username)
                .await
                .map(|()| (threshold, keywords))
                .map_err(message_of)
        }
        Err(problem) => Err(Ok(problem)),
    };
    match result {
        Ok((threshold, keywords)) => {
            let detail = serde_json::json!({ "threshold": threshold, "keywords": keywords });
            audit(&pool, &user, "update", "intent", &id.to_string(), detail).await?;
            user.flash(format!("已保存：把握达到 {} 才打标签。", percent(threshold)));
            Ok(see_other("/admin/intents"))
        }
        Err(problem) => {
            let typed = Typed { error: Some(problem?), ..Typed::default() };
            refused(page(&user, &pool, typed, String::new()).await)
        }
    }
}

pub async fn delete_intent(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let client = pool.get().await?;
    let rows = store::intents::list_intents(&client, user.account).await?;
    drop(client);
    let Some(intent) = rows.into_iter().find(|r| r.id == id) else { return Err(AdminError::NotFound) };
    if !form.confirmed() {
        return confirm_page(
            &user,
            "intents",
            Confirmation::delete(
                format!("删除意图「{}」？", intent.name),
                vec![
                    "模型不再把消息判为这个意图，也不再因此打标签；模型会自动重新训练。".to_owned(),
                    format!("标注为「{}」的消息改记为「其他」，用关键词生成的示例删除。", intent.name),
                    format!("标签「{}」和已经带着它的粉丝保留不变；不需要时到「标签」页删除。", intent.tag_path),
                ],
                format!("/admin/intents/{id}/delete"),
                "/admin/intents".to_owned(),
            ),
        );
    }
    match intents::delete_intent(&pool, user.account, id, &user.username).await {
        Ok(name) => {
            audit(&pool, &user, "delete", "intent", &name, serde_json::json!({ "tag": intent.tag_path })).await?;
            user.flash(format!("已删除意图「{name}」。"));
            Ok(see_other("/admin/intents"))
        }
        Err(IntentError::NoSuchIntent) => Err(AdminError::NotFound),
        Err(error) => {
            let typed = Typed { error: Some(message_of(error)?), ..Typed::default() };
            refused(page(&user, &pool, typed, String::new()).await)
        }
    }
}

#[derive(Deserialize, Default)]
pub struct LabelForm {
    /// The message's `events` id: its text and sender are read from there.
    #[serde(default)]
    event: i64,
    /// An intent's name, or `其他`.
    #[serde(default)]
    intent: String,
    #[serde(default)]
    skip: Option<String>,
}

/// Labels a queued message (or passes over it); the model trains again in the background.
pub async fn label(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<LabelForm>,
) -> Result<HttpResponse, AdminError> {
    let chosen = form.intent.trim();
    let result = if form.skip.is_some() {
        intents::skip(&pool, user.account, form.event).await
    } else if chosen.is_empty() {
        Err(IntentError::NoIntentChosen)
    } else {
        let intent = Some(chosen).filter(|i| *i != crate::domain::intent::OTHER);
        intents::label(&pool, user.account, form.event, intent, &user.username).await
    };
    match result {
        Ok(()) => {
            if form.skip.is_none() {
                // The event, not the sender: the audit log outlives an erasure.
                let detail = serde_json::json!({ "intent": chosen });
                audit(&pool, &user, "label", "intent_example", &form.event.to_string(), detail).await?;
                user.flash(format!("已标注为「{chosen}」，模型会在后台重新训练。"));
            } else {
                user.flash("已跳过这条留言，不会再出现在待标注里。");
            }
            Ok(see_other("/admin/intents#queue"))
        }
        Err(error) => {
            let typed = Typed { error: Some(message_of(error)?), ..Typed::default() };
            refused(page(&user, &pool, typed, String::new()).await)
        }
    }
}

/// 用关键词生成示例: weak examples from the intents' keywords and keyword rules.
pub async fn seed(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AdminError> {
    match intents::seed_from_keywords(&pool, user.account, &user.username).await {
        Ok(0) => user.flash(format!(
            "没有生成新的示例：最近 {} 条消息里没有包含意图关键词（或关键词规则）的新消息。请先给意图填写关键词。",
            intents::LOOKBACK
        )),
        Ok(added) => {
            audit(&pool, &user, "seed", "intent_example", "keywords", serde_json::json!({ "added": added })).await?;
            user.flash(format!("已从关键词生成 {added} 条示例（只算三成分量，人工标注优先），模型会在后台重新训练。"));
        }
        Err(error) => user.flash(message_of(error)?),
    }
    Ok(see_other("/admin/intents"))
}

/// 重新训练: queues a training run now.
pub async fn train(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AdminError> {
    let queued = intents::queue_training(&pool.get().await?, user.account, &user.username).await?;
    if queued {
        audit(&pool, &user, "train", "intent_model", "intents", serde_json::json!({})).await?;
        user.flash("已开始重新训练：通常几秒内完成，完成后刷新本页查看精确率和召回率。");
    } else {
        user.flash("已有一次训练在排队，请稍后刷新本页。");
    }
    Ok(see_other("/admin/intents"))
}
