//! 测验: the quizzes, previewed or saved from TOML or JSON. Editing starts from the live quiz, a
//! new one from an empty skeleton under an unused id; saving over an existing quiz shows what
//! changes and waits for a confirmation, and deleting one confirms too.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::quiz_form::{self, QuizFormView};
use super::{audit, refused, tagging_message};
use crate::app::tagging::{self, QuizRemoval};
use crate::domain::quiz::QuizSpec;
use crate::store;
use crate::store::ownership::Owned;
use crate::web::admin::confirm::{ConfirmForm, Confirmation, confirm_page};
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

pub struct QuizView {
    pub id: String,
    pub intro: String,
    pub questions: Vec<String>,
    pub results: Vec<String>,
}

fn result_text(r: &crate::domain::quiz::QuizResult) -> String {
    let rule = match r.max {
        Some(max) => format!("「{}」分 ≥ {} 且 < {} → 打上「{}」", r.score, r.min, max, r.tag),
        None => format!("「{}」分 ≥ {} → 打上「{}」", r.score, r.min, r.tag),
    };
    let message = r.message.trim();
    if message.is_empty() { rule } else { format!("{rule}，并回复：{message}") }
}

fn quiz_view(spec: &QuizSpec) -> QuizView {
    QuizView {
        id: spec.id.clone(),
        intro: spec.intro.clone(),
        questions: (0..spec.questions.len()).map(|i| spec.render_question(i)).collect(),
        results: spec.results.iter().map(result_text).collect(),
    }
}

/// The editor, when the page shows one.
pub struct Editor {
    /// 编辑测验「skin」 or 新建测验.
    pub heading: String,
    pub source: String,
    pub format_toml: bool,
    /// The same quiz as fields; `None` when the operator works in TOML or JSON.
    pub form: Option<QuizFormView>,
}

#[derive(Template)]
#[template(path = "admin/quizzes/index.html")]
struct QuizzesPage {
    layout: Layout,
    quizzes: Vec<QuizView>,
    editor: Option<Editor>,
    preview: Option<QuizView>,
    problems: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct QuizQuery {
    #[serde(default)]
    edit: Option<String>,
    #[serde(default)]
    new: Option<String>,
}

#[derive(Deserialize)]
pub struct QuizForm {
    source: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    action: String,
    /// `1` from the confirmation page's button.
    #[serde(default)]
    confirmed: Option<String>,
    /// The fingerprint of the stored quiz the confirmation showed the changes against.
    #[serde(default)]
    over: String,
}

/// A new quiz's starting point: the shape of a quiz with nothing filled in, so saving it as it is
/// is refused rather than creating a sample quiz by accident.
fn skeleton(id: &str) -> String {
    format!(
        r#"id = "{id}"
intro = ""

[[question]]
text = ""
options = [ {{ label = "A", text = "", score = {{ }} }},
            {{ label = "B", text = "", score = {{ }} }} ]

# 结果：某项分数达到 min 的粉丝被打上 tag，例如
# [[result]]
# tag = "肤质/油性"
# score = "oily"
# min = 2
"#
    )
}

/// The first `quiz-N` no quiz of the account uses (ids are unique per account).
fn fresh_id(taken: &HashMap<String, QuizSpec>) -> String {
    (1..).map(|n| format!("quiz-{n}")).find(|id| !taken.contains_key(id)).expect("some number is free")
}

/// Identifies a stored quiz's content, so a confirmation applies only to the version it showed.
fn fingerprint(spec: &QuizSpec) -> String {
    use blake2::{Blake2b512, Digest};
    let bytes = serde_json::to_vec(spec).expect("a quiz serialises to JSON");
    hex::encode(&Blake2b512::digest(&bytes)[..16])
}

/// What saving `new` over `old` changes, one sentence each.
fn differences(old: &QuizSpec, new: &QuizSpec) -> Vec<String> {
    let mut lines = Vec::new();
    if old.intro != new.intro {
        lines.push(format!("开场白：「{}」改为「{}」", old.intro, new.intro));
    }
    let options = |q: &crate::domain::quiz::Question| {
        q.options.iter().map(|o| format!("{} {}", o.label, o.text)).collect::<Vec<_>>().join(" / ")
    };
    for i in 0..old.questions.len().max(new.questions.len()) {
        let n = i + 1;
        match (old.questions.get(i), new.questions.get(i)) {
            (Some(before), None) => lines.push(format!("删除第 {n} 题：「{}」", before.text)),
            (None, Some(after)) => lines.push(format!("新增第 {n} 题：「{}」（{}）", after.text, options(after))),
            (Some(before), Some(after)) if before != after => {
                if before.text != after.text {
                    lines.push(format!("第 {n} 题题目：「{}」改为「{}」", before.text, after.text));
                }
                if before.options != after.options {
                    lines.push(format!("第 {n} 题选项或计分：原为 {}，改为 {}", options(before), options(after)));
                }
            }
            _ => {}
        }
    }
    let before: Vec<String> = old.results.iter().map(result_text).collect();
    let after: Vec<String> = new.results.iter().map(result_text).collect();
    for gone in before.iter().filter(|r| !after.contains(r)) {
        lines.push(format!("删除结果：{gone}"));
    }
    for added in after.iter().filter(|r| !before.contains(r)) {
        lines.push(format!("新增结果：{added}"));
    }
    lines
}

async fn quizzes_page(
    user: &AdminUser,
    pool: &Pool,
    editor: Option<Editor>,
    preview: Option<QuizView>,
    problems: Vec<String>,
) -> Result<HttpResponse, AdminError> {
    let client = pool.get().await?;
    let mut specs: Vec<QuizSpec> = store::quizzes::list_quizzes(&client, user.account).await?.into_values().collect();
    specs.sort_by(|a, b| a.id.cmp(&b.id));
    let quizzes = specs.iter().map(quiz_view).collect();
    render(&QuizzesPage { layout: user.layout("quizzes"), quizzes, editor, preview, problems })
}

/// The list; with `?edit=ID` the editor holds that quiz as stored, with `?new=1` an empty quiz
/// under an unused id.
pub async fn list_quizzes(
    user: AdminUser,
    pool: web::Data<Pool>,
    query: web::Query<QuizQuery>,
) -> Result<HttpResponse, AdminError> {
    let editor = match (&query.edit, &query.new) {
        (Some(id), _) => {
            let client = pool.get().await?;
            let quizzes = store::quizzes::list_quizzes(&client, user.account).await?;
            let Some(spec) = quizzes.get(id) else {
                drop(client);
                return Err(user.missing(&pool, Owned::Quiz, id).await);
            };
            let source = toml::to_string(spec).map_err(|_| AdminError::Internal)?;
            let form = Some(quiz_form::view_of(spec, false));
            Some(Editor { heading: format!("编辑测验「{id}」"), source, format_toml: true, form })
        }
        (None, Some(_)) => {
            let quizzes = store::quizzes::list_quizzes(&pool.get().await?, user.account).await?;
            let id = fresh_id(&quizzes);
            let blank = QuizSpec { id: id.clone(), intro: String::new(), questions: Vec::new(), results: Vec::new() };
            let form = Some(quiz_form::view_of(&blank, false));
            Some(Editor { heading: "新建测验".to_owned(), source: skeleton(&id), format_toml: true, form })
        }
        (None, None) => None,
    };
    quizzes_page(&user, &pool, editor, None, Vec::new()).await
}

/// Previews or saves a quiz written as TOML (the playbook's form) or JSON (the API's). Saving
/// over a stored quiz that differs first shows the differences and asks.
pub async fn save_quiz(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<QuizForm>,
) -> Result<HttpResponse, AdminError> {
    save_from(&user, &pool, form).await
}

async fn save_from(user: &AdminUser, pool: &Pool, form: QuizForm) -> Result<HttpResponse, AdminError> {
    let format_toml = form.format != "json";
    let parsed: Result<QuizSpec, String> = if format_toml {
        toml::from_str(&form.source).map_err(|e| crate::domain::parse_zh::toml_error(&form.source, &e))
    } else {
        serde_json::from_str(&form.source).map_err(|e| crate::domain::parse_zh::json_error(&e))
    };
    let editor = |heading: &str| {
        Some(Editor { heading: heading.to_owned(), source: form.source.clone(), format_toml, form: None })
    };
    let spec = match parsed {
        Ok(spec) => spec,
        Err(problem) => {
            return refused(quizzes_page(user, pool, editor("编辑测验"), None, vec![problem]).await);
        }
    };
    let heading = format!("编辑测验「{}」", spec.id);
    let problems = spec.problems();
    if !problems.is_empty() || form.action == "preview" {
        let preview = Some(quiz_view(&spec));
        let page = quizzes_page(user, pool, editor(&heading), preview, problems.clone()).await;
        return if problems.is_empty() { page } else { refused(page) };
    }
    let stored = store::quizzes::list_quizzes(&pool.get().await?, user.account).await?;
    if let Some(old) = stored.get(&spec.id) {
        if *old == spec {
            user.flash(format!("测验「{}」没有变化，无需保存。", spec.id));
            return Ok(see_other("/admin/quizzes"));
        }
        let current = fingerprint(old);
        let confirmed = form.confirmed.as_deref() == Some("1");
        if !confirmed || form.over != current {
            let mut consequences = Vec::new();
            if confirmed {
                consequences
                    .push("你确认之后，这个测验又被别人修改过；下面是与最新版本的差异，请再确认一次。".to_owned());
            }
            consequences.push(format!(
                "测验「{}」已存在（现有 {} 题、{} 个结果）：保存会用下面的内容整体覆盖它，保存后 {} 题、{} 个结果。",
                spec.id,
                old.questions.len(),
                old.results.len(),
                spec.questions.len(),
                spec.results.len()
            ));
            consequences.extend(differences(old, &spec));
            return confirm_page(
                user,
                "quizzes",
                Confirmation {
                    title: format!("覆盖测验「{}」？", spec.id),
                    consequences,
                    action: "/admin/quizzes".to_owned(),
                    hidden: vec![
                        ("format".to_owned(), if format_toml { "toml" } else { "json" }.to_owned()),
                        ("action".to_owned(), "save".to_owned()),
                        ("over".to_owned(), current),
                    ],
                    source: Some(form.source.clone()),
                    button: "确认覆盖".to_owned(),
                    back: format!("/admin/quizzes?edit={}", spec.id),
                },
            );
        }
    }
    match tagging::save_quiz(pool, user.account, &spec, &user.username).await {
        Ok(_) => {
            let detail = serde_json::json!({ "questions": spec.questions.len(), "results": spec.results.len() });
            audit(pool, user, "save", "quiz", &spec.id, detail).await?;
            user.flash(format!("已保存测验「{}」。", spec.id));
            Ok(see_other("/admin/quizzes"))
        }
        Err(error) => {
            let message = tagging_message(error)?;
            refused(quizzes_page(user, pool, editor(&heading), None, vec![message]).await)
        }
    }
}

/// The form editor's post: 再加一题 redraws with another empty question; 预览 and problems redraw
/// the form as typed; 保存 takes the TOML editor's path with the quiz the form describes.
pub async fn save_quiz_form(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let action = pairs.iter().find(|(k, _)| k == "action").map_or("", |(_, v)| v.as_str());
    let id = pairs.iter().find(|(k, _)| k == "id").map_or("", |(_, v)| v.trim());
    let heading = if id.is_empty() { "编辑测验".to_owned() } else { format!("编辑测验「{id}」") };
    let redraw = |more: bool| Editor {
        heading: heading.clone(),
        source: String::new(),
        format_toml: true,
        form: Some(quiz_form::view_from_form(&pairs, more)),
    };
    if action == "more" {
        return quizzes_page(&user, &pool, Some(redraw(true)), None, Vec::new()).await;
    }
    let spec = match quiz_form::spec_of(&pairs) {
        Ok(spec) => spec,
        Err(problems) => return refused(quizzes_page(&user, &pool, Some(redraw(false)), None, problems).await),
    };
    let problems = spec.problems();
    if !problems.is_empty() || action != "save" {
        let page = quizzes_page(&user, &pool, Some(redraw(false)), Some(quiz_view(&spec)), problems.clone()).await;
        return if problems.is_empty() { page } else { refused(page) };
    }
    let source = toml::to_string(&spec).map_err(|_| AdminError::Internal)?;
    let form =
        QuizForm { source, format: "toml".to_owned(), action: "save".to_owned(), confirmed: None, over: String::new() };
    save_from(&user, &pool, form).await
}

/// Deletes a quiz after a confirmation; refused while a rule starts it.
pub async fn delete_quiz(
    user: AdminUser,
    pool: web::Data<Pool>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let starters = |rules: &[i64]| {
        let ids: Vec<String> = rules.iter().map(|r| format!("#{r}")).collect();
        format!("未删除：规则 {} 会开始测验「{id}」。请先在「规则」页删除或修改这些规则。", ids.join("、"))
    };
    if !form.confirmed() {
        let client = pool.get().await?;
        let Some(spec) = store::quizzes::list_quizzes(&client, user.account).await?.remove(&id) else {
            drop(client);
            return Err(user.missing(&pool, Owned::Quiz, &id).await);
        };
        let rules: Vec<i64> = store::rules::list_rules(&client, user.account)
            .await?
            .into_iter()
            .filter(|r| r.spec.start_quiz.as_deref() == Some(id.as_str()))
            .map(|r| r.id)
            .collect();
        if !rules.is_empty() {
            user.flash(starters(&rules));
            return Ok(see_other("/admin/quizzes"));
        }
        let sessions = store::quizzes::count_sessions_in(&client, user.account, &id).await?;
        let consequences = vec![
            format!("测验「{id}」（{} 题、{} 个结果）会被删除，无法恢复。", spec.questions.len(), spec.results.len()),
            format!("正在答题的 {sessions} 位粉丝会退出测验，之后的回复不再当作答案。"),
            "已完成测验的粉丝打上的标签不受影响。".to_owned(),
            "如果配置文件里还有这个测验，再次导入会重新创建它。".to_owned(),
        ];
        return confirm_page(
            &user,
            "quizzes",
            Confirmation::delete(
                format!("删除测验「{id}」？"),
                consequences,
                format!("/admin/quizzes/{id}/delete"),
                "/admin/quizzes".to_owned(),
            ),
        );
    }
    match tagging::delete_quiz(&pool, user.account, &id, &user.username).await {
        Ok(QuizRemoval::Deleted { sessions_ended }) => {
            user.flash(if sessions_ended > 0 {
                format!("已删除测验「{id}」，{sessions_ended} 位正在答题的粉丝已退出。")
            } else {
                format!("已删除测验「{id}」。")
            });
        }
        Ok(QuizRemoval::StartedByRules(rules)) => user.flash(starters(&rules)),
        Ok(QuizRemoval::Missing) => return Err(user.missing(&pool, Owned::Quiz, &id).await),
        Err(error) => return Err(tagging_message(error).err().unwrap_or(AdminError::Internal)),
    }
    Ok(see_other("/admin/quizzes"))
}
