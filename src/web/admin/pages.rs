//! 标签, 规则, 测验, 人群, 审计 and 用户: the configuration pages. Each handler prepares plain
//! view rows so the templates only display; a refused form is shown again with its message.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};
use crate::app::audience::index::AudienceIndex;
use crate::app::tagging::{self, TaggingError};
use crate::domain::admin::AdminRole;
use crate::domain::clock::Clock;
use crate::domain::expr;
use crate::domain::quiz::QuizSpec;
use crate::domain::rule::{RuleSpec, Trigger};
use crate::domain::tag::{TagPath, TagPathError};
use crate::store;

/// Rows per page of every list that grows.
pub const PAGE: i64 = 50;

/// How the pages show a time: Beijing time, to the minute.
pub fn show_time(at: DateTime<Utc>) -> String {
    crate::domain::calendar::beijing_minute(at)
}

fn show_opt_time(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), show_time)
}

/// Records what a page changed; after the change, since the domain functions own their transactions.
pub async fn audit(
    pool: &Pool,
    actor: &str,
    action: &str,
    kind: &str,
    id: &str,
    detail: serde_json::Value,
) -> Result<(), AdminError> {
    let client = pool.get().await?;
    store::audit::record(&client, actor, action, kind, id, &detail).await?;
    Ok(())
}

fn refused(response: Result<HttpResponse, AdminError>) -> Result<HttpResponse, AdminError> {
    response.map(|mut r| {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        r
    })
}

/// A domain refusal as a sentence for the operator, or the error page for the rest.
fn tagging_message(error: TaggingError) -> Result<String, AdminError> {
    match error {
        TaggingError::Pool(e) => Err(AdminError::Pool(e)),
        TaggingError::Query(e) => Err(AdminError::Query(e)),
        TaggingError::TagExists(path) => Ok(format!("标签「{path}」已存在。")),
        TaggingError::SensitiveTag(path) => {
            Ok(format!("「{path}」是敏感标签，只有管理员可以删除（删除后重建即等于取消敏感）。请联系管理员。"))
        }
        TaggingError::WeChatTagLimit => {
            Ok("微信每个账号最多 100 个标签，已用完：请取消勾选「同步到微信」，创建仅本地使用的标签。".to_owned())
        }
        other => Ok(other.to_string()),
    }
}

// ---------------------------------------------------------------- 标签

/// A tag path's problem in the operator's words.
pub fn tag_path_problem(raw: &str, error: &TagPathError) -> String {
    match error {
        TagPathError::Empty => "请填写标签路径，如「肤质/油性」。".to_owned(),
        TagPathError::EmptyLevel { level, .. } => format!("「{raw}」的第 {level} 级是空的。"),
        TagPathError::TooDeep { levels, .. } => {
            format!("「{raw}」有 {levels} 级，微信标签最多 3 级（大类/子类/细项）。")
        }
        TagPathError::TooLongForWeChat { bytes, .. } => {
            format!("「{raw}」共 {bytes} 字节，微信标签名最多 30 字节（约 10 个汉字），请缩短。")
        }
        TagPathError::ControlCharacter { .. } => format!("「{raw}」含有控制字符。"),
    }
}

/// [`RuleSpec::validate`]'s sentences in the operator's words; others pass through.
fn rule_problem(message: &str) -> String {
    if message.contains("must add or remove a tag") {
        "规则至少要做一件事：打上或移除标签、回复文字，或开始测验。".to_owned()
    } else if message.starts_with("`key` must not be empty") {
        "请填写 key。".to_owned()
    } else if message.starts_with("`reply` must not be empty") {
        "回复文字不能只有空格。".to_owned()
    } else if message.ends_with("is both added and removed") {
        format!("同一个标签不能既打上又移除：{message}")
    } else if message.contains("geofence") || message.contains("place on Earth") || message.contains("radius") {
        format!("位置规则的 key 应为「纬度,经度,半径公里」，如 39.9,116.4,5（{message}）")
    } else {
        message.to_owned()
    }
}

pub struct TagView {
    pub id: i64,
    pub is_tag: bool,
    pub depth: usize,
    pub name: String,
    pub path: String,
    pub members: i64,
    pub created: String,
    pub last_used: String,
    pub sensitive: bool,
    pub dynamic: Option<String>,
    pub mirrored: bool,
    pub warnings: Vec<String>,
    pub health: Vec<&'static str>,
}

/// Two tags that may mean the same thing, and why the page thinks so.
pub struct MergeSuggestion {
    pub a: String,
    pub b: String,
    pub why: String,
}

#[derive(Template)]
#[template(path = "admin/tags/index.html")]
struct TagsPage {
    layout: Layout,
    rows: Vec<TagView>,
    total: usize,
    error: Option<String>,
    form: TagForm,
    similar: Vec<MergeSuggestion>,
    /// Members overlapping ≥ 90%: only when asked for (`?overlap=1`), since it is a pass over
    /// every membership.
    overlapping: Option<Vec<MergeSuggestion>>,
}

#[derive(Deserialize, Default)]
pub struct TagsQuery {
    #[serde(default)]
    overlap: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct TagForm {
    #[serde(default)]
    path: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    sensitive: Option<String>,
    #[serde(default)]
    local_only: Option<String>,
    #[serde(default)]
    when: String,
}

/// Tags as a tree: a heading row for each level that is not itself a tag.
fn tag_tree(tags: Vec<store::tags::TagRow>, now: DateTime<Utc>) -> Vec<TagView> {
    let mut rows = Vec::with_capacity(tags.len());
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        let levels: Vec<&str> = tag.path.split('/').collect();
        for depth in 0..levels.len().saturating_sub(1) {
            let prefix = levels[..=depth].join("/");
            if seen.insert(prefix.clone()) {
                rows.push(TagView {
                    id: 0,
                    is_tag: false,
                    depth,
                    name: levels[depth].to_owned(),
                    path: prefix,
                    members: 0,
                    created: String::new(),
                    last_used: String::new(),
                    sensitive: false,
                    dynamic: None,
                    mirrored: false,
                    warnings: Vec::new(),
                    health: Vec::new(),
                });
            }
        }
        seen.insert(tag.path.clone());
        let warnings = TagPath::parse(&tag.path).map(|p| p.naming_warnings()).unwrap_or_default();
        let mut health = Vec::new();
        if tag.members == 0 {
            health.push("无人使用：考虑删除或合并");
        }
        if tag.last_used_at.is_none_or(|at| now - at > chrono::Duration::days(30)) && tag.members > 0 {
            health.push("30 天未使用");
        }
        rows.push(TagView {
            id: tag.id,
            is_tag: true,
            depth: levels.len() - 1,
            name: levels.last().copied().unwrap_or_default().to_owned(),
            path: tag.path,
            members: tag.members,
            created: show_time(tag.created_at),
            last_used: show_opt_time(tag.last_used_at),
            sensitive: tag.sensitive,
            dynamic: tag.when_expr,
            mirrored: tag.mirrored,
            warnings,
            health,
        });
    }
    rows
}

async fn tags_page(
    user: &AdminUser,
    pool: &Pool,
    clock: &Clock,
    state: &AdminState,
    error: Option<String>,
    form: TagForm,
    overlap: bool,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let tags = super::board::tags_with_members(&client, pool, &state.tag_members).await?;
    let total = tags.len();
    let paths: Vec<&str> = tags.iter().map(|t| t.path.as_str()).collect();
    let similar = crate::domain::tag::similar_names(&paths)
        .into_iter()
        .map(|(a, b, why)| MergeSuggestion { a: paths[a].to_owned(), b: paths[b].to_owned(), why: why.to_owned() })
        .collect();
    let overlapping = if overlap {
        let pairs = store::campaigns::list_overlapping_tags(&client, crate::app::campaigns::MERGE_OVERLAP).await?;
        Some(
            pairs
                .into_iter()
                .map(|(a, b, common, na, nb)| MergeSuggestion {
                    why: format!(
                        "共同成员 {common} 人，占较小标签（{} 人）的 {:.0}%",
                        na.min(nb),
                        common as f64 * 100.0 / na.min(nb).max(1) as f64
                    ),
                    a,
                    b,
                })
                .collect(),
        )
    } else {
        None
    };
    render(&TagsPage {
        layout: user.layout("tags"),
        rows: tag_tree(tags, clock.now()),
        total,
        error,
        form,
        similar,
        overlapping,
    })
}

pub async fn list_tags(
    user: AdminUser,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    query: web::Query<TagsQuery>,
) -> Result<HttpResponse, AdminError> {
    tags_page(&user, &pool, &clock, &state, None, TagForm::default(), query.overlap.is_some()).await
}

pub async fn create_tag(
    user: AdminUser,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    state: web::Data<Arc<AdminState>>,
    CsrfForm(form): CsrfForm<TagForm>,
) -> Result<HttpResponse, AdminError> {
    let path = match TagPath::parse(form.path.trim()) {
        Ok(path) => path,
        Err(error) => {
            let message = format!("标签路径无效：{}", tag_path_problem(form.path.trim(), &error));
            return refused(tags_page(&user, &pool, &clock, &state, Some(message), form, false).await);
        }
    };
    if form.sensitive.is_some() && !user.role.may_change_sensitivity() {
        let message = "只有管理员可以把标签标为敏感：敏感标签决定哪些群发需要审批。请去掉勾选后创建，再请管理员标记。";
        return refused(tags_page(&user, &pool, &clock, &state, Some(message.to_owned()), form, false).await);
    }
    let when = form.when.trim();
    if !when.is_empty() {
        if let Err(error) = expr::parse(when) {
            let message = format!("动态条件第 {} 列：{}", error.position, error.message);
            return refused(tags_page(&user, &pool, &clock, &state, Some(message), form, false).await);
        }
    }
    let request = tagging::TagRequest {
        path: path.clone(),
        description: form.description.trim().to_owned(),
        sensitive: form.sensitive.is_some(),
        wechat: form.local_only.is_none(),
        when_expr: (!when.is_empty()).then(|| when.to_owned()),
    };
    match tagging::create_tag(&pool, &request, &user.username).await {
        Ok(tag) => {
            audit(&pool, &user.username, "create", "tag", &tag.path, serde_json::json!({ "sensitive": tag.sensitive }))
                .await?;
            let warnings = path.naming_warnings();
            user.flash(if warnings.is_empty() {
                format!("已创建标签「{}」。", tag.path)
            } else {
                format!("已创建标签「{}」。命名建议：{}", tag.path, warnings.join("；"))
            });
            Ok(see_other("/admin/tags"))
        }
        Err(error) => {
            let message = tagging_message(error)?;
            refused(tags_page(&user, &pool, &clock, &state, Some(message), form, false).await)
        }
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    path: String,
}

/// Renames a tag; everything that names it follows (see [`tagging::rename_tag`]).
pub async fn rename_tag(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> Result<HttpResponse, AdminError> {
    let raw = form.path.trim();
    let path = match TagPath::parse(raw) {
        Ok(path) => path,
        Err(error) => {
            user.flash(format!("未改名：{}", tag_path_problem(raw, &error)));
            return Ok(see_other("/admin/tags"));
        }
    };
    match tagging::rename_tag(&pool, *id, &path, &user.username).await {
        Ok(renamed) if renamed.from == renamed.to => user.flash("名称没有变化。"),
        Ok(renamed) => {
            state.tag_members.forget();
            let mut followed = Vec::new();
            for (n, what) in [
                (renamed.rules, "条规则"),
                (renamed.quizzes, "个测验"),
                (renamed.segments, "个人群"),
                (renamed.dynamic_tags, "个动态标签"),
                (renamed.campaigns, "个群发"),
            ] {
                if n > 0 {
                    followed.push(format!("{n} {what}"));
                }
            }
            let followed = if followed.is_empty() {
                String::new()
            } else {
                format!("引用它的 {} 已同步更新。", followed.join("、"))
            };
            let wechat = if renamed.wechat { "微信上的标签稍后改名。" } else { "" };
            user.flash(format!("已将「{}」改名为「{}」。{followed}{wechat}", renamed.from, renamed.to));
        }
        Err(TaggingError::NoSuchTag) => return Err(AdminError::NotFound),
        Err(error) => user.flash(format!("未改名：{}", tagging_message(error)?)),
    }
    Ok(see_other("/admin/tags"))
}

#[derive(Deserialize)]
pub struct SensitiveForm {
    /// `1` marks the tag sensitive, anything else unmarks it.
    #[serde(default)]
    to: String,
}

/// Marks or unmarks a tag sensitive: admins only, audited (see [`tagging::set_sensitive`]).
pub async fn set_tag_sensitive(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<SensitiveForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_change_sensitivity())?;
    let sensitive = form.to == "1";
    match tagging::set_sensitive(&pool, *id, sensitive, user.role.may_change_sensitivity(), &user.username).await {
        Ok(Some(tag)) if sensitive => {
            user.flash(format!("已将「{}」标为敏感：受众包含它的群发需另一位审批人或管理员审批。", tag.path));
        }
        Ok(Some(tag)) => {
            user.flash(format!("「{}」不再是敏感标签。已审批、受众包含它的群发，审批已失效，需重新审批。", tag.path))
        }
        Ok(None) => user.flash("没有变化。"),
        Err(TaggingError::NoSuchTag) => return Err(AdminError::NotFound),
        Err(error) => user.flash(tagging_message(error)?),
    }
    Ok(see_other("/admin/tags"))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    confirm: Option<String>,
}

pub async fn delete_tag(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    if form.confirm.is_none() {
        user.flash("未删除：请勾选「确认」后再点删除。");
        return Ok(see_other("/admin/tags"));
    }
    match tagging::delete_tag(&pool, *id, user.role.may_change_sensitivity()).await {
        Ok(tag) => {
            audit(&pool, &user.username, "delete", "tag", &tag.path, serde_json::json!({})).await?;
            state.tag_members.forget();
            user.flash(format!("已删除标签「{}」，微信上的同名标签稍后删除。", tag.path));
            Ok(see_other("/admin/tags"))
        }
        Err(TaggingError::NoSuchTag) => Err(AdminError::NotFound),
        Err(error @ TaggingError::SensitiveTag(_)) => {
            user.flash(format!("未删除：{}", tagging_message(error)?));
            Ok(see_other("/admin/tags"))
        }
        Err(error) => Err(tagging_message(error).err().unwrap_or(AdminError::Internal)),
    }
}

// ---------------------------------------------------------------- 规则

pub fn trigger_label(trigger: Trigger) -> &'static str {
    match trigger {
        Trigger::Click => "点击菜单",
        Trigger::View => "打开菜单链接",
        Trigger::Keyword => "发送关键词",
        Trigger::Subscribe => "关注（场景值）",
        Trigger::Scan => "扫码（场景值）",
        Trigger::Location => "位置在范围内",
    }
}

pub struct RuleView {
    pub id: i64,
    pub on: &'static str,
    pub key: String,
    pub add: String,
    pub remove: String,
    pub reply: String,
    pub quiz: String,
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "admin/rules/index.html")]
struct RulesPage {
    layout: Layout,
    rules: Vec<RuleView>,
    triggers: Vec<Choice>,
    quizzes: Vec<Choice>,
    error: Option<String>,
    form: RuleForm,
}

#[derive(Deserialize, Default)]
pub struct RuleForm {
    #[serde(default)]
    on: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    add: String,
    #[serde(default)]
    remove: String,
    #[serde(default)]
    reply: String,
    #[serde(default)]
    start_quiz: String,
}

fn paths(list: &[TagPath]) -> String {
    list.iter().map(TagPath::as_str).collect::<Vec<_>>().join("、")
}

async fn rules_page(
    user: &AdminUser,
    pool: &Pool,
    error: Option<String>,
    form: RuleForm,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let rules = store::rules::list_rules(&client)
        .await?
        .into_iter()
        .map(|r| RuleView {
            id: r.id,
            on: trigger_label(r.spec.on),
            key: r.spec.key.clone(),
            add: paths(&r.spec.add),
            remove: paths(&r.spec.remove),
            reply: r.spec.reply.clone().unwrap_or_default(),
            quiz: r.spec.start_quiz.clone().unwrap_or_default(),
        })
        .collect();
    let mut quiz_ids: Vec<String> = store::quizzes::list_quizzes(&client).await?.into_keys().collect();
    quiz_ids.sort();
    let triggers =
        [Trigger::Click, Trigger::Keyword, Trigger::Subscribe, Trigger::Scan, Trigger::View, Trigger::Location]
            .into_iter()
            .map(|t| Choice {
                value: t.as_str().to_owned(),
                label: trigger_label(t).to_owned(),
                selected: form.on == t.as_str(),
            })
            .collect();
    let mut quizzes =
        vec![Choice {
            value: String::new(), label: "（不开始测验）".to_owned(), selected: form.start_quiz.is_empty()
        }];
    quizzes.extend(quiz_ids.into_iter().map(|id| Choice {
        selected: form.start_quiz == id,
        label: id.clone(),
        value: id,
    }));
    render(&RulesPage { layout: user.layout("rules"), rules, triggers, quizzes, error, form })
}

pub async fn list_rules(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    rules_page(&user, &pool, None, RuleForm::default()).await
}

/// Tag paths typed one per line or separated by commas (either width) or 、.
fn parse_paths(text: &str) -> Result<Vec<TagPath>, String> {
    text.split(['\n', ',', '，', '、'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| TagPath::parse(p).map_err(|e| tag_path_problem(p, &e)))
        .collect()
}

pub async fn create_rule(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<RuleForm>,
) -> Result<HttpResponse, AdminError> {
    let spec = (|| -> Result<RuleSpec, String> {
        let on = Trigger::parse(&form.on).ok_or("请选择触发方式。")?;
        let reply = form.reply.trim();
        let quiz = form.start_quiz.trim();
        Ok(RuleSpec {
            on,
            key: form.key.trim().to_owned(),
            add: parse_paths(&form.add)?,
            remove: parse_paths(&form.remove)?,
            reply: (!reply.is_empty()).then(|| reply.to_owned()),
            start_quiz: (!quiz.is_empty()).then(|| quiz.to_owned()),
        })
    })();
    let spec = match spec.and_then(|s| s.validate().map(|()| s).map_err(|m| rule_problem(&m))) {
        Ok(spec) => spec,
        Err(message) => return refused(rules_page(&user, &pool, Some(message), form).await),
    };
    match tagging::create_rule(&pool, &spec, &user.username).await {
        Ok(id) => {
            audit(
                &pool,
                &user.username,
                "create",
                "rule",
                &id.to_string(),
                serde_json::to_value(&spec).unwrap_or_default(),
            )
            .await?;
            user.flash(format!("已创建规则 #{id}。"));
            Ok(see_other("/admin/rules"))
        }
        Err(error) => {
            let message = tagging_message(error)?;
            refused(rules_page(&user, &pool, Some(message), form).await)
        }
    }
}

pub async fn delete_rule(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    if !store::rules::delete_rule(&client, *id).await? {
        return Err(AdminError::NotFound);
    }
    audit(&pool, &user.username, "delete", "rule", &id.to_string(), serde_json::json!({})).await?;
    user.flash(format!("已删除规则 #{id}。"));
    Ok(see_other("/admin/rules"))
}

// ---------------------------------------------------------------- 测验

pub struct QuizView {
    pub id: String,
    pub intro: String,
    pub questions: Vec<String>,
    pub results: Vec<String>,
}

fn quiz_view(spec: &QuizSpec) -> QuizView {
    QuizView {
        id: spec.id.clone(),
        intro: spec.intro.clone(),
        questions: (0..spec.questions.len()).map(|i| spec.render_question(i)).collect(),
        results: spec
            .results
            .iter()
            .map(|r| match r.max {
                Some(max) => format!("{} 分数 {} ≥ {} 且 < {} → 打上「{}」", r.score, r.score, r.min, max, r.tag),
                None => format!("{} 分数 ≥ {} → 打上「{}」", r.score, r.min, r.tag),
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "admin/quizzes/index.html")]
struct QuizzesPage {
    layout: Layout,
    quizzes: Vec<QuizView>,
    source: String,
    format_toml: bool,
    preview: Option<QuizView>,
    problems: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct QuizQuery {
    #[serde(default)]
    edit: Option<String>,
}

#[derive(Deserialize)]
pub struct QuizForm {
    source: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    action: String,
}

const QUIZ_EXAMPLE: &str = r#"id = "skin"
intro = "回答问题，了解你的肤质"

[[question]]
text = "洗脸一小时后，T 区的感觉？"
options = [ { label = "A", text = "油光明显", score = { oily = 2 } },
            { label = "B", text = "紧绷", score = { dry = 2 } } ]

[[result]]
tag = "肤质/油性"
score = "oily"
min = 2
"#;

async fn quizzes_page(
    user: &AdminUser,
    pool: &Pool,
    source: String,
    format_toml: bool,
    preview: Option<QuizView>,
    problems: Vec<String>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let mut specs: Vec<QuizSpec> = store::quizzes::list_quizzes(&client).await?.into_values().collect();
    specs.sort_by(|a, b| a.id.cmp(&b.id));
    let quizzes = specs.iter().map(quiz_view).collect();
    render(&QuizzesPage { layout: user.layout("quizzes"), quizzes, source, format_toml, preview, problems })
}

pub async fn list_quizzes(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<QuizQuery>,
) -> Result<HttpResponse, AdminError> {
    let source = match &query.edit {
        Some(id) => {
            let client = pool.get().await?;
            let quizzes = store::quizzes::list_quizzes(&client).await?;
            let spec = quizzes.get(id).ok_or(AdminError::NotFound)?;
            toml::to_string(spec).map_err(|_| AdminError::Internal)?
        }
        None => QUIZ_EXAMPLE.to_owned(),
    };
    quizzes_page(&user, &pool, source, true, None, Vec::new()).await
}

/// Previews or saves a quiz written as TOML (the playbook's form) or JSON (the API's).
pub async fn save_quiz(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<QuizForm>,
) -> Result<HttpResponse, AdminError> {
    let format_toml = form.format != "json";
    let parsed: Result<QuizSpec, String> = if format_toml {
        toml::from_str(&form.source).map_err(|e| format!("TOML 无法解析：{e}"))
    } else {
        serde_json::from_str(&form.source).map_err(|e| format!("JSON 无法解析：{e}"))
    };
    let spec = match parsed {
        Ok(spec) => spec,
        Err(problem) => {
            return refused(quizzes_page(&user, &pool, form.source, format_toml, None, vec![problem]).await);
        }
    };
    let problems = spec.problems();
    if !problems.is_empty() || form.action == "preview" {
        let preview = Some(quiz_view(&spec));
        let page = quizzes_page(&user, &pool, form.source, format_toml, preview, problems.clone()).await;
        return if problems.is_empty() { page } else { refused(page) };
    }
    match tagging::save_quiz(&pool, &spec, &user.username).await {
        Ok(_) => {
            audit(&pool, &user.username, "save", "quiz", &spec.id, serde_json::json!({})).await?;
            user.flash(format!("已保存测验「{}」。", spec.id));
            Ok(see_other("/admin/quizzes"))
        }
        Err(error) => {
            let message = tagging_message(error)?;
            refused(quizzes_page(&user, &pool, form.source, format_toml, None, vec![message]).await)
        }
    }
}

// ---------------------------------------------------------------- 人群

/// Where an expression went wrong, split so the page can mark the offending character.
pub struct ExprProblem {
    pub position: usize,
    pub message: String,
    pub before: String,
    pub at: String,
    pub after: String,
}

fn expr_problem(text: &str, error: &expr::ExprError) -> ExprProblem {
    let chars: Vec<char> = text.chars().collect();
    let index = error.position.saturating_sub(1).min(chars.len());
    ExprProblem {
        position: error.position,
        message: error.message.clone(),
        before: chars[..index].iter().collect(),
        at: chars.get(index).map_or_else(|| "␣".to_owned(), char::to_string),
        after: chars.get(index + 1..).map(|c| c.iter().collect()).unwrap_or_default(),
    }
}

pub struct SegmentView {
    pub id: i64,
    pub name: String,
    pub expr: String,
    pub created: String,
    pub created_by: String,
}

#[derive(Template)]
#[template(path = "admin/segments/index.html")]
struct SegmentsPage {
    layout: Layout,
    segments: Vec<SegmentView>,
    next: Option<i64>,
    name: String,
    expr: String,
    count: Option<i64>,
    problem: Option<ExprProblem>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct SegmentQuery {
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

enum Counted {
    Members(i64),
    Problem(ExprProblem),
}

/// Counts through the in-memory audience index when it can answer, else with SQL, as the API does.
async fn count(pool: &Pool, index: &AudienceIndex, clock: &Clock, text: &str) -> Result<Counted, AdminError> {
    let parsed = match expr::parse(text) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(Counted::Problem(expr_problem(text, &error))),
    };
    let members =
        crate::app::audience::count_members(pool, index, &parsed, clock.unix()).await.map_err(|error| match error {
            crate::app::audience::AudienceError::Pool(e) => AdminError::Pool(e),
            crate::app::audience::AudienceError::Query(e) => AdminError::Query(e),
        })?;
    Ok(Counted::Members(members))
}

#[expect(clippy::too_many_arguments, reason = "one page's inputs, passed once")]
async fn segments_page(
    user: &AdminUser,
    pool: &Pool,
    index: &AudienceIndex,
    clock: &Clock,
    before: Option<i64>,
    name: String,
    expr_text: String,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, AdminError> {
    let (count, problem) = if expr_text.trim().is_empty() {
        (None, None)
    } else {
        match count(pool, index, clock, &expr_text).await? {
            Counted::Members(n) => (Some(n), None),
            Counted::Problem(p) => (None, Some(p)),
        }
    };
    let client = pool.get().await?;
    let rows = store::segments::list_segments(&client, before, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let segments = rows
        .into_iter()
        .map(|s| SegmentView {
            id: s.id,
            name: s.name,
            expr: s.expr,
            created: show_time(s.created_at),
            created_by: s.created_by,
        })
        .collect();
    let status = if problem.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { status };
    render(&SegmentsPage {
        layout: user.layout("segments"),
        segments,
        next,
        name,
        expr: expr_text,
        count,
        problem,
        error,
    })
    .map(|mut r| {
        *r.status_mut() = status;
        r
    })
}

pub async fn show_segments(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    query: web::Query<SegmentQuery>,
) -> Result<HttpResponse, AdminError> {
    let query = query.into_inner();
    segments_page(
        &user,
        &pool,
        &index,
        &clock,
        query.before,
        query.name.unwrap_or_default(),
        query.expr.unwrap_or_default(),
        None,
        StatusCode::OK,
    )
    .await
}

/// The live count for the page's script: `{"members": n}` or `{"position", "message"}`.
pub async fn count_segment(
    _user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    query: web::Query<SegmentQuery>,
) -> Result<HttpResponse, AdminError> {
    let text = query.expr.clone().unwrap_or_default();
    let body = match count(&pool, &index, &clock, &text).await? {
        Counted::Members(n) => serde_json::json!({ "members": n }),
        Counted::Problem(p) => serde_json::json!({ "position": p.position, "message": p.message }),
    };
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
pub struct SegmentForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expr: String,
}

pub async fn create_segment(
    user: AdminUser,
    pool: web::Data<Pool>,
    index: web::Data<AudienceIndex>,
    clock: web::Data<Clock>,
    CsrfForm(form): CsrfForm<SegmentForm>,
) -> Result<HttpResponse, AdminError> {
    let name = form.name.trim().to_owned();
    let bad = StatusCode::UNPROCESSABLE_ENTITY;
    if name.is_empty() || name.chars().count() > 100 {
        let error = Some("人群名称需 1–100 个字。".to_owned());
        return segments_page(&user, &pool, &index, &clock, None, name, form.expr, error, bad).await;
    }
    let Ok(parsed) = expr::parse(&form.expr) else {
        return segments_page(&user, &pool, &index, &clock, None, name, form.expr, None, bad).await;
    };
    let client = pool.get().await?;
    let segment = store::segments::insert_segment(&client, &name, &parsed, &user.username).await?;
    audit(
        &pool,
        &user.username,
        "create",
        "segment",
        &segment.id.to_string(),
        serde_json::json!({ "expr": segment.expr }),
    )
    .await?;
    user.flash(format!("已保存人群「{}」。", segment.name));
    Ok(see_other("/admin/segments"))
}

// ---------------------------------------------------------------- 审计

pub struct AuditView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit/index.html")]
struct AuditPage {
    layout: Layout,
    entries: Vec<AuditView>,
    actor: String,
    next: Option<i64>,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    before: Option<i64>,
}

pub async fn list_audit(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AdminError> {
    let actor = query.actor.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned);
    let filter = store::audit::AuditFilter { before_id: query.before, actor: actor.clone(), ..Default::default() };
    let client = pool.get().await?;
    let rows = store::audit::list(&client, &filter, PAGE).await?;
    let next = (rows.len() as i64 == PAGE).then(|| rows.last().map(|r| r.id)).flatten();
    let entries = rows
        .into_iter()
        .map(|e| AuditView {
            at: show_time(e.at),
            actor: e.actor,
            action: e.action,
            object: format!("{} {}", e.object_kind, e.object_id),
            detail: if e.detail == serde_json::json!({}) { String::new() } else { e.detail.to_string() },
        })
        .collect();
    render(&AuditPage { layout: user.layout("audit"), entries, actor: actor.unwrap_or_default(), next })
}

// ---------------------------------------------------------------- 用户

pub struct UserView {
    pub username: String,
    pub role: &'static str,
    pub created: String,
    pub created_by: String,
    pub disabled: bool,
    pub is_self: bool,
}

#[derive(Template)]
#[template(path = "admin/users/index.html")]
struct UsersPage {
    layout: Layout,
    users: Vec<UserView>,
    roles: Vec<Choice>,
    error: Option<String>,
    username: String,
}

#[derive(Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

async fn users_page(
    user: &AdminUser,
    pool: &Pool,
    error: Option<String>,
    form: &UserForm,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let users = store::admins::list_admins(&client)
        .await?
        .into_iter()
        .map(|a| UserView {
            is_self: a.username == user.username,
            username: a.username,
            role: a.role.label_zh(),
            created: show_time(a.created_at),
            created_by: a.created_by,
            disabled: a.disabled,
        })
        .collect();
    let roles = [AdminRole::Operator, AdminRole::Approver, AdminRole::Admin]
        .into_iter()
        .map(|r| Choice {
            value: r.as_str().to_owned(),
            label: r.label_zh().to_owned(),
            selected: form.role == r.as_str(),
        })
        .collect();
    render(&UsersPage { layout: user.layout("users"), users, roles, error, username: form.username.clone() })
}

pub async fn list_users(user: AdminUser, pool: web::Data<Pool>) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    users_page(&user, &pool, None, &UserForm::default()).await
}

pub async fn create_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<UserForm>,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    let Some(role) = AdminRole::parse(&form.role) else {
        return refused(users_page(&user, &pool, Some("请选择角色。".to_owned()), &form).await);
    };
    let username = form.username.trim();
    match crate::app::admins::create_admin(&pool, username, &form.password, role, &user.username).await {
        Ok(_) => {
            user.flash(format!("已创建用户「{username}」（{}）。", role.label_zh()));
            Ok(see_other("/admin/users"))
        }
        Err(crate::app::admins::AccountError::Invalid(reason)) => {
            let message = if reason.starts_with("password") {
                format!("密码至少 {} 个字符。", crate::domain::admin::MIN_PASSWORD_CHARS)
            } else if crate::domain::admin::is_reserved(username) {
                format!(
                    "用户名「{username}」是保留名（审计日志用 {} 记录系统自身的操作），请换一个用户名。",
                    crate::domain::admin::RESERVED_USERNAMES.join("、")
                )
            } else {
                "用户名需 1–64 个字符，只能用字母、数字和 _ - . @。".to_owned()
            };
            refused(users_page(&user, &pool, Some(message), &form).await)
        }
        Err(crate::app::admins::AccountError::Exists(name)) => {
            refused(users_page(&user, &pool, Some(format!("用户名「{name}」已被使用。")), &form).await)
        }
        Err(error) => {
            tracing::error!(error = ?error, "creating an admin user failed");
            Err(AdminError::Internal)
        }
    }
}

async fn set_disabled(
    user: AdminUser,
    pool: &Pool,
    state: &AdminState,
    username: &str,
    disabled: bool,
) -> Result<HttpResponse, AdminError> {
    user.require(user.role.may_manage_admins())?;
    if username == user.username {
        user.flash("不能停用自己的账号。");
        return Ok(see_other("/admin/users"));
    }
    let client = pool.get().await?;
    if !store::admins::set_disabled(&client, username, disabled).await? {
        return Err(AdminError::NotFound);
    }
    state.users.forget(username);
    let action = if disabled { "disable" } else { "enable" };
    audit(pool, &user.username, action, "admin", username, serde_json::json!({})).await?;
    user.flash(if disabled {
        format!("已停用「{username}」。")
    } else {
        format!("已启用「{username}」。")
    });
    Ok(see_other("/admin/users"))
}

pub async fn disable_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    username: web::Path<String>,
    CsrfForm(_): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    set_disabled(user, &pool, &state, &username, true).await
}

pub async fn enable_user(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    username: web::Path<String>,
    CsrfForm(_): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    set_disabled(user, &pool, &state, &username, false).await
}
