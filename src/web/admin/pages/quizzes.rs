//! 测验: the quizzes, previewed or saved from TOML or JSON.

use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{audit, refused, tagging_message};
use crate::app::tagging;
use crate::domain::quiz::QuizSpec;
use crate::store;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

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
    let mut specs: Vec<QuizSpec> = store::quizzes::list_quizzes(&client, user.account).await?.into_values().collect();
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
            let quizzes = store::quizzes::list_quizzes(&client, user.account).await?;
            let Some(spec) = quizzes.get(id) else {
                drop(client);
                return Err(user.missing(&pool, crate::store::ownership::Owned::Quiz, id).await);
            };
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
        toml::from_str(&form.source).map_err(|e| crate::domain::parse_zh::toml_error(&form.source, &e))
    } else {
        serde_json::from_str(&form.source).map_err(|e| crate::domain::parse_zh::json_error(&e))
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
    match tagging::save_quiz(&pool, user.account, &spec, &user.username).await {
        Ok(_) => {
            audit(&pool, &user, "save", "quiz", &spec.id, serde_json::json!({})).await?;
            user.flash(format!("已保存测验「{}」。", spec.id));
            Ok(see_other("/admin/quizzes"))
        }
        Err(error) => {
            let message = tagging_message(error)?;
            refused(quizzes_page(&user, &pool, form.source, format_toml, None, vec![message]).await)
        }
    }
}
