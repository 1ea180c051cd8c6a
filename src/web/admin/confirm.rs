//! The second step of every destructive form: a page that names the object and what the action
//! does, whose button posts the same form again with `confirmed=1`. Server-side, so it works
//! without JavaScript and under the console's CSP, and a stray click or a replayed first post
//! changes nothing.

use actix_web::HttpResponse;
use askama::Template;
use serde::Deserialize;

use super::{AdminError, AdminUser, Layout, render};

/// What a confirmation page says and where its button posts.
pub struct Confirmation {
    /// The question, naming the object: 删除标签「肤质/油性」？
    pub title: String,
    /// What happens, one sentence each.
    pub consequences: Vec<String>,
    /// Where the button posts (the form that asked).
    pub action: String,
    /// Fields posted again as they came (besides `csrf` and `confirmed`).
    pub hidden: Vec<(String, String)>,
    /// A long text posted again, shown read-only (a quiz's source).
    pub source: Option<String>,
    /// The button's words: 确认删除, 确认覆盖.
    pub button: String,
    /// Where 取消 goes.
    pub back: String,
}

impl Confirmation {
    /// A delete's confirmation: its button says 确认删除 and posts nothing but the confirmation.
    pub fn delete(title: String, consequences: Vec<String>, action: String, back: String) -> Self {
        Self { title, consequences, action, hidden: Vec::new(), source: None, button: "确认删除".to_owned(), back }
    }
}

#[derive(Template)]
#[template(path = "admin/confirm.html")]
struct ConfirmPage {
    layout: Layout,
    c: Confirmation,
}

/// Renders the confirmation page in the nav section `active`.
pub fn confirm_page(user: &AdminUser, active: &'static str, c: Confirmation) -> Result<HttpResponse, AdminError> {
    render(&ConfirmPage { layout: user.layout(active), c })
}

/// The `confirmed` field of a destructive form: only `1`, which the confirmation page's button
/// posts, goes ahead.
#[derive(Deserialize, Default)]
pub struct ConfirmForm {
    #[serde(default)]
    confirmed: Option<String>,
}

impl ConfirmForm {
    pub fn confirmed(&self) -> bool {
        self.confirmed.as_deref() == Some("1")
    }
}
