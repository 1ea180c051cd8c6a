//! 标签: the tag tree with its counts and merge suggestions; create, rename, mark sensitive, delete.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{audit, refused, show_opt_time, show_time, tag_path_problem, tagging_message};
use crate::app::tagging::{self, TaggingError};
use crate::domain::clock::Clock;
use crate::domain::expr;
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::ownership::Owned;
use crate::web::admin::confirm::{ConfirmForm, Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render, see_other};

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
    /// The tree of levels a new tag can sit under.
    parents: Vec<super::ParentOption>,
    /// Changes on their way to WeChat, and the ones it refused.
    sync: super::tag_sync::SyncView,
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
    /// The level chosen in the picker to put the new tag under (empty: a top-level tag).
    #[serde(default)]
    parent: String,
}

impl TagForm {
    /// The path to create: the typed one under the chosen parent, unless it is typed in full.
    fn full_path(&self) -> String {
        let typed = self.path.trim().trim_start_matches('/');
        let parent = self.parent.trim().trim_end_matches('/');
        if parent.is_empty() || typed == parent || typed.starts_with(&format!("{parent}/")) {
            typed.to_owned()
        } else {
            format!("{parent}/{typed}")
        }
    }
}

/// How long a tag must exist before the page judges how it is used: a tag created today has
/// had no chance to reach anyone yet.
const HEALTH_WINDOW_DAYS: i64 = 30;

/// What the page notes about a tag's use; each note is true of the tag as it stands.
fn health_notes(tag: &store::tags::TagRow, now: DateTime<Utc>) -> Vec<&'static str> {
    let window = chrono::Duration::days(HEALTH_WINDOW_DAYS);
    if now - tag.created_at < window {
        return Vec::new();
    }
    let idle = tag.last_used_at.is_none_or(|at| now - at >= window);
    match (tag.members, idle) {
        (0, true) => vec!["创建 30 天以上，30 天内没有粉丝打上、目前无人使用：考虑删除或合并"],
        (0, false) => vec!["目前没有粉丝带有此标签（30 天内曾有粉丝打上）"],
        (_, true) => vec!["30 天内没有粉丝新打上此标签"],
        _ => Vec::new(),
    }
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
        let health = health_notes(&tag, now);
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
    let tags = crate::web::admin::board::tags_with_members(&client, user.account, pool, &state.tag_members).await?;
    let total = tags.len();
    let paths: Vec<&str> = tags.iter().map(|t| t.path.as_str()).collect();
    let similar = crate::domain::tag::similar_names(&paths)
        .into_iter()
        .map(|(a, b, why)| MergeSuggestion { a: paths[a].to_owned(), b: paths[b].to_owned(), why: why.to_owned() })
        .collect();
    let overlapping = if overlap {
        let pairs =
            store::campaigns::list_overlapping_tags(&client, user.account, crate::app::campaigns::MERGE_OVERLAP)
                .await?;
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
    let parents = super::tag_picker::parents(
        &tags
            .iter()
            .map(|t| super::TagOption { path: t.path.clone(), label: String::new(), members: 0 })
            .collect::<Vec<_>>(),
    );
    let sync = super::tag_sync::view(store::outbox::sync_health(&client, user.account).await?, clock.now());
    render(&TagsPage {
        sync,
        parents,
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
    let full = form.full_path();
    let path = match TagPath::parse(&full) {
        Ok(path) => path,
        Err(error) => {
            let message = format!("标签路径无效：{}", tag_path_problem(&full, &error));
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
            let message = format!("动态条件第 {} 列：{}", error.position, error.kind);
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
    match tagging::create_tag(&pool, user.account, &request, &user.username).await {
        Ok(tag) => {
            audit(&pool, &user, "create", "tag", &tag.path, serde_json::json!({ "sensitive": tag.sensitive })).await?;
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
    match tagging::rename_tag(&pool, user.account, *id, &path, &user.username).await {
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
        Err(TaggingError::NoSuchTag) => return Err(user.missing(&pool, Owned::Tag, &id.to_string()).await),
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
    let may = user.role.may_change_sensitivity();
    match tagging::set_sensitive(&pool, user.account, *id, sensitive, may, &user.username).await {
        Ok(Some(tag)) if sensitive => {
            user.flash(format!("已将「{}」标为敏感：受众包含它的群发需另一位审批人或管理员审批。", tag.path));
        }
        Ok(Some(tag)) => {
            user.flash(format!("「{}」不再是敏感标签。已审批、受众包含它的群发，审批已失效，需重新审批。", tag.path))
        }
        Ok(None) => user.flash("没有变化。"),
        Err(TaggingError::NoSuchTag) => return Err(user.missing(&pool, Owned::Tag, &id.to_string()).await),
        Err(error) => user.flash(tagging_message(error)?),
    }
    Ok(see_other("/admin/tags"))
}

/// Where the tag at `path` is named: rules that add or remove it, quizzes that give it, saved
/// segments and dynamic tags whose condition names it. A few dozen rows each; read only when a
/// delete asks for its confirmation.
async fn uses_of(
    client: &impl deadpool_postgres::GenericClient,
    account: crate::domain::account::AccountId,
    path: &str,
) -> Result<Vec<String>, AdminError> {
    let mut uses = Vec::new();
    for rule in store::rules::list_rules(client, account).await? {
        if rule.spec.add.iter().chain(&rule.spec.remove).any(|p| p.as_str() == path) {
            uses.push(format!("规则 #{}（{} {}）", rule.id, rule.spec.on.label_zh(), rule.spec.key));
        }
    }
    let mut quizzes: Vec<_> = store::quizzes::list_quizzes(client, account).await?.into_values().collect();
    quizzes.sort_by(|a, b| a.id.cmp(&b.id));
    for quiz in quizzes.iter().filter(|q| q.tag_paths().any(|p| p.as_str() == path)) {
        uses.push(format!("测验「{}」", quiz.id));
    }
    let quoted = format!("\"{path}\"");
    for (id, _) in store::segments::list_segments_mentioning(client, account, &quoted).await? {
        uses.push(format!("人群 #{id}"));
    }
    for tag in store::tags::list_tag_rows(client, account).await? {
        if tag.when_expr.as_deref().is_some_and(|when| when.contains(&quoted)) {
            uses.push(format!("动态标签「{}」", tag.path));
        }
    }
    Ok(uses)
}

pub async fn delete_tag(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    if !form.confirmed() {
        let client = pool.get().await?;
        let tags =
            crate::web::admin::board::tags_with_members(&client, user.account, &pool, &state.tag_members).await?;
        let Some(tag) = tags.into_iter().find(|t| t.id == id) else {
            drop(client);
            return Err(user.missing(&pool, Owned::Tag, &id.to_string()).await);
        };
        let mut consequences = vec![format!("{} 位粉丝身上的这个标签会被移除（人数每分钟更新）。", tag.members)];
        if tag.mirrored {
            consequences.push("微信上的同名标签也会删除，粉丝在微信里的这个标签随之消失。".to_owned());
        }
        let uses = uses_of(&client, user.account, &tag.path).await?;
        if uses.is_empty() {
            consequences.push("没有规则、测验、人群或动态标签用到它。".to_owned());
        } else {
            consequences.push(format!(
                "下面这些地方写到了它，删除后不会自动修改（规则和测验仍会按名字重新打上它，人群和动态标签会少算这些人）：{}。如只想换个名字，请用「改名」。",
                uses.join("、")
            ));
        }
        if tag.sensitive {
            consequences.push("这是敏感标签：只有管理员可以删除。".to_owned());
        }
        consequences.push("删除后无法恢复；同名标签可以重建，但已移除的粉丝不会回来。".to_owned());
        return confirm_page(
            &user,
            "tags",
            Confirmation::delete(
                format!("删除标签「{}」？", tag.path),
                consequences,
                format!("/admin/tags/{id}/delete"),
                "/admin/tags".to_owned(),
            ),
        );
    }
    match tagging::delete_tag(&pool, user.account, id, user.role.may_change_sensitivity()).await {
        Ok(tag) => {
            audit(&pool, &user, "delete", "tag", &tag.path, serde_json::json!({})).await?;
            state.tag_members.forget();
            user.flash(format!("已删除标签「{}」，微信上的同名标签稍后删除。", tag.path));
            Ok(see_other("/admin/tags"))
        }
        Err(TaggingError::NoSuchTag) => Err(user.missing(&pool, Owned::Tag, &id.to_string()).await),
        Err(error @ TaggingError::SensitiveTag(_)) => {
            user.flash(format!("未删除：{}", tagging_message(error)?));
            Ok(see_other("/admin/tags"))
        }
        Err(error) => Err(tagging_message(error).err().unwrap_or(AdminError::Internal)),
    }
}
