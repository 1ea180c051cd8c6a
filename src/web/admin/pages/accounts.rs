//! 公众号: the deployment's Official Accounts (deployment admins only). Secrets are write-only: the
//! page says whether each is set and offers an empty input to replace it; the first account's
//! credentials come from the environment variables and are shown read-only.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use secrecy::SecretString;
use serde::Deserialize;

use super::refused;
use crate::app::accounts::{AccountInput, Accounts, LiveAccount, SaveError};
use crate::domain::account::AccountType;
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Layout, render, see_other};

pub struct AccountRowView {
    pub name: String,
    pub display_name: String,
    pub kind: &'static str,
    pub appid: String,
    pub callback_url: String,
    pub from_env: bool,
    pub app_secret: &'static str,
    pub token: &'static str,
    pub encoding_aes_key: &'static str,
}

fn set(is_set: bool) -> &'static str {
    if is_set { "已设置" } else { "未设置" }
}

fn row_view(req: &HttpRequest, account: &LiveAccount) -> AccountRowView {
    let env = |is_set: bool| if account.from_env { "由环境变量设置" } else { set(is_set) };
    AccountRowView {
        name: account.name.clone(),
        display_name: account.display_name.clone(),
        kind: account.kind.label(),
        appid: account.appid.clone().unwrap_or_else(|| "—".to_owned()),
        callback_url: crate::web::api::callback_url(req, account),
        from_env: account.from_env,
        app_secret: env(account.secrets_set.app_secret),
        token: env(account.secrets_set.token),
        encoding_aes_key: env(account.secrets_set.encoding_aes_key),
    }
}

/// What the form shows back: every field but the secrets.
#[derive(Deserialize, Default, Clone)]
pub struct AccountForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    appid: String,
    #[serde(default)]
    app_secret: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    encoding_aes_key: String,
    #[serde(default)]
    message_mode: String,
    #[serde(default)]
    api_base: String,
}

impl AccountForm {
    fn of(account: &LiveAccount) -> Self {
        Self {
            name: account.name.clone(),
            display_name: account.display_name.clone(),
            kind: account.kind.as_str().to_owned(),
            appid: account.appid.clone().unwrap_or_default(),
            message_mode: account.message_mode.as_str().to_owned(),
            api_base: account.api_base.clone().unwrap_or_default(),
            ..Self::default()
        }
    }

    /// The form without the secrets typed: a refused form never sends them back to the browser.
    fn shown(&self) -> Self {
        Self { app_secret: String::new(), token: String::new(), encoding_aes_key: String::new(), ..self.clone() }
    }

    fn input(&self) -> AccountInput {
        let secret = |v: &str| (!v.trim().is_empty()).then(|| SecretString::from(v.trim().to_owned()));
        let text = |v: &str| (!v.trim().is_empty()).then(|| v.trim().to_owned());
        AccountInput {
            name: self.name.trim().to_owned(),
            display_name: self.display_name.clone(),
            kind: self.kind.clone(),
            appid: text(&self.appid),
            app_secret: secret(&self.app_secret),
            token: secret(&self.token),
            encoding_aes_key: secret(&self.encoding_aes_key),
            message_mode: if self.message_mode.is_empty() { "plain".to_owned() } else { self.message_mode.clone() },
            api_base: text(&self.api_base),
        }
    }
}

pub struct Option2 {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn kinds(chosen: &str) -> Vec<Option2> {
    [AccountType::Service, AccountType::Subscription]
        .into_iter()
        .map(|k| Option2 { value: k.as_str(), label: k.label(), selected: k.as_str() == chosen })
        .collect()
}

fn modes(chosen: &str) -> Vec<Option2> {
    [("plain", "明文模式"), ("compat", "兼容模式"), ("safe", "安全模式（推荐）")]
        .into_iter()
        .map(|(value, label)| Option2 { value, label, selected: value == chosen })
        .collect()
}

#[derive(Template)]
#[template(path = "admin/accounts/index.html")]
struct AccountsPage {
    layout: Layout,
    accounts: Vec<AccountRowView>,
    form: AccountForm,
    kinds: Vec<Option2>,
    modes: Vec<Option2>,
    error: Option<String>,
    can_store_secrets: bool,
}

#[derive(Template)]
#[template(path = "admin/accounts/edit.html")]
struct EditPage {
    layout: Layout,
    account: AccountRowView,
    form: AccountForm,
    kinds: Vec<Option2>,
    modes: Vec<Option2>,
    error: Option<String>,
}

fn list_page(
    req: &HttpRequest,
    user: &AdminUser,
    accounts: &Accounts,
    form: &AccountForm,
    error: Option<String>,
) -> Result<HttpResponse, AdminError> {
    let chosen_kind = if form.kind.is_empty() { "service" } else { form.kind.as_str() };
    let chosen_mode = if form.message_mode.is_empty() { "safe" } else { form.message_mode.as_str() };
    render(&AccountsPage {
        layout: user.layout("accounts"),
        accounts: accounts.all().iter().map(|a| row_view(req, a)).collect(),
        form: form.shown(),
        kinds: kinds(chosen_kind),
        modes: modes(chosen_mode),
        error,
        can_store_secrets: accounts.can_store_secrets(),
    })
}

fn edit_page(
    req: &HttpRequest,
    user: &AdminUser,
    account: &LiveAccount,
    form: &AccountForm,
    error: Option<String>,
) -> Result<HttpResponse, AdminError> {
    render(&EditPage {
        layout: user.layout("accounts"),
        account: row_view(req, account),
        form: form.shown(),
        kinds: kinds(&form.kind),
        modes: modes(&form.message_mode),
        error,
    })
}

/// A refusal the operator can fix, or the error page for the rest.
fn message(error: SaveError) -> Result<String, AdminError> {
    match error {
        SaveError::Missing => Err(AdminError::NotFound),
        SaveError::Failed(error) => {
            tracing::error!(error = %crate::app::accounts::chain(&error), "saving an account failed");
            Err(AdminError::Internal)
        }
        other => Ok(other.to_string()),
    }
}

pub async fn list_accounts(
    req: HttpRequest,
    user: AdminUser,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    list_page(&req, &user, &accounts, &AccountForm::default(), None)
}

pub async fn create_account(
    req: HttpRequest,
    user: AdminUser,
    accounts: web::Data<Accounts>,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    match accounts.create(&form.input(), &user.username).await {
        Ok(account) => {
            user.flash(format!(
                "已添加公众号「{}」。请在微信公众平台 设置与开发 → 基本配置 → 服务器配置 中填写服务器地址 {}。",
                account.display_name,
                crate::web::api::callback_url(&req, &account)
            ));
            Ok(see_other(&format!("/admin/accounts/{}", account.name)))
        }
        Err(error) => refused(list_page(&req, &user, &accounts, &form, Some(message(error)?))),
    }
}

pub async fn edit_account(
    req: HttpRequest,
    user: AdminUser,
    accounts: web::Data<Accounts>,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    let account = accounts.by_name(&name).ok_or(AdminError::NotFound)?;
    edit_page(&req, &user, &account, &AccountForm::of(&account), None)
}

pub async fn update_account(
    req: HttpRequest,
    user: AdminUser,
    accounts: web::Data<Accounts>,
    name: web::Path<String>,
    CsrfForm(form): CsrfForm<AccountForm>,
) -> Result<HttpResponse, AdminError> {
    user.require_deployment_admin()?;
    let account = accounts.by_name(&name).ok_or(AdminError::NotFound)?;
    // The name is the callback URL's path: fixed once WeChat has been told it. The first account's
    // credentials come from the environment: only its display name is the console's.
    let form = if account.from_env {
        AccountForm { display_name: form.display_name, ..AccountForm::of(&account) }
    } else {
        AccountForm { name: account.name.clone(), ..form }
    };
    match accounts.update(account.id, &form.input(), &user.username).await {
        Ok(account) => {
            user.flash(format!("已保存公众号「{}」。", account.display_name));
            Ok(see_other(&format!("/admin/accounts/{}", account.name)))
        }
        Err(error) => refused(edit_page(&req, &user, &account, &form, Some(message(error)?))),
    }
}
