//! 规则: the rules list and the form that adds one (the tags it names are created as needed).

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{Choice, ConfirmForm, audit, refused, tag_path_problem, tagging_message};
use crate::app::tagging;
use crate::domain::rule::{GeofenceError, RuleError, RuleSpec, Trigger};
use crate::domain::tag::TagPath;
use crate::store;
use crate::web::admin::confirm::{Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

/// [`RuleSpec::validate`]'s refusals in the operator's words.
fn rule_problem(error: &RuleError) -> String {
    match error {
        RuleError::Geofence(GeofenceError::NotANumber { .. }) => {
            format!("{error}：位置规则的 key 应为「纬度,经度,半径公里」，如 39.9,116.4,5。")
        }
        other => format!("{other}。"),
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
    /// Other rules on the same trigger (same `on` and key): all of them run.
    pub same_trigger: Vec<i64>,
}

/// Rules on the same trigger run together: every one adds and removes its tags, but only the
/// first reply goes out, which an operator adding a second rule rarely means.
fn same_trigger_note(others: &[i64]) -> String {
    let ids: Vec<String> = others.iter().map(|id| format!("#{id}")).collect();
    format!(
        "与规则 {} 的触发条件相同：粉丝触发时这些规则都会执行，回复只发第一条带回复的规则。如不是有意为之，请删除多余的一条。",
        ids.join("、")
    )
}

/// The ids of the other rules in `rules` on the same trigger as `rule`.
fn same_trigger_as(rules: &[crate::domain::rule::Rule], rule: &crate::domain::rule::Rule) -> Vec<i64> {
    rules
        .iter()
        .filter(|r| {
            r.id != rule.id && r.spec.on == rule.spec.on && r.spec.normalized_key() == rule.spec.normalized_key()
        })
        .map(|r| r.id)
        .collect()
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
    /// The tag tree for the add/remove pickers.
    tag_groups: Vec<super::TagGroup>,
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
    /// A tag chosen in the picker, added to those typed.
    #[serde(default)]
    add_pick: String,
    #[serde(default)]
    remove_pick: String,
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
    let stored = store::rules::list_rules(&client, user.account).await?;
    let rules = stored
        .iter()
        .map(|r| RuleView {
            same_trigger: same_trigger_as(&stored, r),
            id: r.id,
            on: r.spec.on.label_zh(),
            key: r.spec.key.clone(),
            add: paths(&r.spec.add),
            remove: paths(&r.spec.remove),
            reply: r.spec.reply.clone().unwrap_or_default(),
            quiz: r.spec.start_quiz.clone().unwrap_or_default(),
        })
        .collect();
    let mut quiz_ids: Vec<String> = store::quizzes::list_quizzes(&client, user.account).await?.into_keys().collect();
    quiz_ids.sort();
    let triggers =
        [Trigger::Click, Trigger::Keyword, Trigger::Subscribe, Trigger::Scan, Trigger::View, Trigger::Location]
            .into_iter()
            .map(|t| Choice {
                value: t.as_str().to_owned(),
                label: t.label_zh().to_owned(),
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
    drop(client);
    let tag_groups = super::tag_groups(super::tag_names(pool, user.account).await?);
    render(&RulesPage { layout: user.layout("rules"), rules, triggers, quizzes, error, form, tag_groups })
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
            add: parse_paths(&format!("{}\n{}", form.add_pick, form.add))?,
            remove: parse_paths(&format!("{}\n{}", form.remove_pick, form.remove))?,
            reply: (!reply.is_empty()).then(|| reply.to_owned()),
            start_quiz: (!quiz.is_empty()).then(|| quiz.to_owned()),
        })
    })();
    let spec = match spec.and_then(|s| s.validate().map(|()| s).map_err(|e| rule_problem(&e))) {
        Ok(spec) => spec,
        Err(message) => return refused(rules_page(&user, &pool, Some(message), form).await),
    };
    match tagging::create_rule(&pool, user.account, &spec, &user.username).await {
        Ok(id) => {
            audit(&pool, &user, "create", "rule", &id.to_string(), serde_json::to_value(&spec).unwrap_or_default())
                .await?;
            let stored = store::rules::list_rules(&pool.get().await?, user.account).await?;
            let others = stored.iter().find(|r| r.id == id).map(|r| same_trigger_as(&stored, r)).unwrap_or_default();
            user.flash(if others.is_empty() {
                format!("已创建规则 #{id}。")
            } else {
                format!("已创建规则 #{id}。注意：{}", same_trigger_note(&others))
            });
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
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let client = pool.get().await?;
    if !form.confirmed() {
        let rules = store::rules::list_rules(&client, user.account).await?;
        let Some(rule) = rules.iter().find(|r| r.id == id) else {
            drop(client);
            return Err(user.missing(&pool, crate::store::ownership::Owned::Rule, &id.to_string()).await);
        };
        let spec = &rule.spec;
        let mut does = Vec::new();
        if !spec.add.is_empty() {
            does.push(format!("打上「{}」", paths(&spec.add)));
        }
        if !spec.remove.is_empty() {
            does.push(format!("移除「{}」", paths(&spec.remove)));
        }
        if let Some(reply) = &spec.reply {
            does.push(format!("回复「{reply}」"));
        }
        if let Some(quiz) = &spec.start_quiz {
            does.push(format!("开始测验「{quiz}」"));
        }
        let consequences = vec![
            format!(
                "删除后，粉丝{}「{}」时不再{}。",
                spec.on.label_zh(),
                spec.key,
                if does.is_empty() { "触发它".to_owned() } else { does.join("、") }
            ),
            "已经打上的标签、已开始的测验不受影响。".to_owned(),
            "删除后无法恢复，需要时请重新创建。".to_owned(),
        ];
        return confirm_page(
            &user,
            "rules",
            Confirmation::delete(
                format!("删除规则 #{id}？"),
                consequences,
                format!("/admin/rules/{id}/delete"),
                "/admin/rules".to_owned(),
            ),
        );
    }
    if !store::rules::delete_rule(&client, user.account, id).await? {
        drop(client);
        return Err(user.missing(&pool, crate::store::ownership::Owned::Rule, &id.to_string()).await);
    }
    audit(&pool, &user, "delete", "rule", &id.to_string(), serde_json::json!({})).await?;
    user.flash(format!("已删除规则 #{id}。"));
    Ok(see_other("/admin/rules"))
}
