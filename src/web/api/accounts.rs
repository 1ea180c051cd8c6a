//! `/api/v1/accounts`: the Official Accounts of the deployment. Every caller sees the accounts
//! they hold; deployment admins create and change them. Secrets are write-only: an answer says
//! whether each is set, never its value.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller, ErrorBody, Identity};
use crate::app::accounts::{AccountInput, Accounts, LiveAccount, SaveError, SecretsSet};
use crate::domain::admin::AdminRole;

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    /// The handle in `/wechat/{name}`, the `Tagcast-Account` header and `--account`.
    name: String,
    display_name: String,
    /// `service` (服务号) or `subscription` (订阅号).
    kind: &'static str,
    appid: Option<String>,
    message_mode: &'static str,
    api_base: Option<String>,
    /// Which secrets are set; their values are never returned.
    secrets: SecretsSet,
    /// The first account: its credentials come from the environment variables.
    from_environment: bool,
    /// The URL to enter as 服务器地址(URL) in the WeChat console.
    callback_url: String,
    /// The caller's role on this account.
    role: AdminRole,
}

fn view(account: &LiveAccount, role: AdminRole, req: &HttpRequest) -> AccountView {
    AccountView {
        name: account.name.clone(),
        display_name: account.display_name.clone(),
        kind: account.kind.as_str(),
        appid: account.appid.clone(),
        message_mode: account.message_mode.as_str(),
        api_base: account.api_base.clone(),
        secrets: account.secrets_set,
        from_environment: account.from_env,
        callback_url: callback_url(req, account),
        role,
    }
}

/// Where WeChat must push for `account`: WeChat reaches servers over HTTPS (or port 80) only, so
/// the scheme is https whatever this hop used.
pub fn callback_url(req: &HttpRequest, account: &LiveAccount) -> String {
    let path = if account.from_env { "/wechat".to_owned() } else { format!("/wechat/{}", account.name) };
    format!("https://{}{path}", req.connection_info().host())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,31}$")]
    name: String,
    display_name: String,
    /// `service` or `subscription`.
    kind: String,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    encoding_aes_key: Option<String>,
    /// `plain` (the default), `compat` or `safe`.
    #[serde(default)]
    message_mode: Option<String>,
    /// WeChat's API, `https://api.weixin.qq.com` when absent.
    #[serde(default)]
    api_base: Option<String>,
}

/// Fields left out keep their value; a secret left out or empty keeps the stored one.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    appid: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    encoding_aes_key: Option<String>,
    #[serde(default)]
    message_mode: Option<String>,
    #[serde(default)]
    api_base: Option<String>,
}

fn secret(value: Option<String>) -> Option<SecretString> {
    value.filter(|v| !v.is_empty()).map(SecretString::from)
}

impl From<SaveError> for ApiError {
    fn from(error: SaveError) -> Self {
        match error {
            // The checks speak to the console's operators; the API says which rule failed and quotes them.
            SaveError::Invalid(reason) => ApiError::invalid_request(format!("the account was refused: {reason}")),
            SaveError::NameTaken => ApiError::conflict("account_exists", "an account with this name exists"),
            SaveError::AppidTaken => {
                ApiError::conflict("appid_taken", "another account of this deployment has this AppID")
            }
            SaveError::NoDeploymentKey => ApiError::conflict(
                "no_deployment_key",
                "TAGCAST_SECRET_KEY is not set, so secrets cannot be stored; set it on every instance (docs/deploy.md)",
            ),
            SaveError::UpgradeUnfinished => ApiError::conflict(
                "upgrade_unfinished",
                "run `tagcast migrate --finish` once every instance runs this release, then add accounts",
            ),
            SaveError::TokenTaken => ApiError::conflict(
                "token_taken",
                "another account of this deployment has this callback token; give each account its own",
            ),
            SaveError::Missing => ApiError::not_found("no such account"),
            SaveError::Failed(error) => {
                tracing::error!(error = %crate::app::accounts::chain(&error), "saving an account failed");
                ApiError::internal()
            }
        }
    }
}

/// The accounts the caller holds (every account for a deployment admin), the first one first.
#[utoipa::path(get, path = "/api/v1/accounts", tag = "accounts",
    responses((status = 200, body = Vec<AccountView>)))]
pub async fn list_accounts(
    req: HttpRequest,
    pool: web::Data<deadpool_postgres::Pool>,
    accounts: web::Data<Accounts>,
    identity: Identity,
) -> Result<HttpResponse, ApiError> {
    let holdings = identity.holdings(&pool).await?;
    let views: Vec<AccountView> =
        holdings.accounts(&accounts).iter().map(|(account, role)| view(account, *role, &req)).collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Deployment admins only.
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = NewAccount,
    responses((status = 201, body = AccountView), (status = 403, body = ErrorBody),
        (status = 409, description = "`account_exists`, `appid_taken`, `no_deployment_key` or `upgrade_unfinished`",
            body = ErrorBody)))]
pub async fn create_account(
    req: HttpRequest,
    accounts: web::Data<Accounts>,
    caller: Caller,
    body: web::Json<NewAccount>,
) -> Result<HttpResponse, ApiError> {
    caller.require_deployment_admin("create accounts")?;
    let body = body.into_inner();
    let input = AccountInput {
        name: body.name,
        display_name: body.display_name,
        kind: body.kind,
        appid: body.appid,
        app_secret: secret(body.app_secret),
        token: secret(body.token),
        encoding_aes_key: secret(body.encoding_aes_key),
        message_mode: body.message_mode.unwrap_or_else(|| "plain".to_owned()),
        api_base: body.api_base,
    };
    let account = accounts.create(&input, &caller.name).await?;
    Ok(HttpResponse::Created().json(view(&account, AdminRole::Admin, &req)))
}

/// Deployment admins only. The first account's credentials come from the environment: only its
/// display name changes here.
#[utoipa::path(patch, path = "/api/v1/accounts/{name}", tag = "accounts", request_body = AccountChange,
    params(("name" = String, Path, description = "the account's name")),
    responses((status = 200, body = AccountView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "`appid_taken` or `no_deployment_key`", body = ErrorBody)))]
pub async fn update_account(
    req: HttpRequest,
    accounts: web::Data<Accounts>,
    caller: Caller,
    name: web::Path<String>,
    body: web::Json<AccountChange>,
) -> Result<HttpResponse, ApiError> {
    caller.require_deployment_admin("change accounts")?;
    let current =
        accounts.by_name(&name).ok_or_else(|| ApiError::not_found(format!("no account is named `{name}`")))?;
    let body = body.into_inner();
    let input = AccountInput {
        name: current.name.clone(),
        display_name: body.display_name.unwrap_or_else(|| current.display_name.clone()),
        kind: body.kind.unwrap_or_else(|| current.kind.as_str().to_owned()),
        appid: body.appid.or_else(|| current.appid.clone()),
        app_secret: secret(body.app_secret),
        token: secret(body.token),
        encoding_aes_key: secret(body.encoding_aes_key),
        message_mode: body.message_mode.unwrap_or_else(|| current.message_mode.as_str().to_owned()),
        api_base: body.api_base.or_else(|| current.api_base.clone()),
    };
    let account = accounts.update(current.id, &input, &caller.name).await?;
    Ok(HttpResponse::Ok().json(view(&account, AdminRole::Admin, &req)))
}
