//! `/api/v1`: the JSON API of CONTRACT.md §4. Bearer `TAGCAST_API_TOKEN` or HTTP Basic with an admin user; errors are
//! `{"error": {"code", "message"}}`; unknown fields are refused with `400 invalid_request`.

mod accounts;
mod admins;
mod campaigns;
mod drafts;
mod error;
mod events;
pub mod openapi;
mod quizzes;
mod quota;
mod rules;
mod segments;
mod tags;
mod users;

use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine as _;
use deadpool_postgres::Pool;
use futures_util::future::LocalBoxFuture;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub use accounts::callback_url;
pub use campaigns::CampaignContext;
pub use error::{ApiError, ErrorBody, retry_after_secs};

use crate::app::accounts::Accounts;
use crate::app::admins::{Authenticator, LOCKOUT, MAX_FAILURES, SignIn};
use crate::domain::account::AccountId;
use crate::domain::admin::AdminRole;
use crate::store;

/// Who may call the API: the bearer token, or an admin user by HTTP Basic.
#[derive(Clone)]
pub struct ApiAuth {
    pub token: Option<SecretString>,
    pub users: Authenticator,
}

/// The header naming the account a call works on; absent, the first account (so the clients of
/// a single-account deployment keep working unchanged).
pub const ACCOUNT_HEADER: &str = "Tagcast-Account";

/// The authenticated caller, named in what they create (`created_by`) and in the audit log.
/// A caller without a role on the account the call names is refused before the handler runs.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    /// The role on [`Caller::account`].
    pub role: AdminRole,
    /// The account the call works on; every object it names must belong to it.
    pub account: AccountId,
    /// Every account the caller holds a role on, and whether they are the deployment admin (the
    /// bearer token or `admins.role = 'admin'`: manages accounts and users).
    holdings: crate::app::admins::Holdings,
}

impl Caller {
    /// Whether the caller holds any role on `account`.
    pub fn holds(&self, account: AccountId) -> bool {
        self.holdings.role_on(account).is_some()
    }

    /// `403 forbidden` unless the caller's role allows `allowed`.
    pub fn require(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("the role `{}` may not {what}", self.role.as_str())))
        }
    }

    /// `403 forbidden` unless the caller is a deployment admin.
    pub fn require_deployment_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.holdings.deployment_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("only a deployment admin may {what}")))
        }
    }
}

impl Caller {
    /// The answer for an object `key` of `kind` not found in the caller's account: `403` when
    /// another account holds it (whatever the caller's roles there), `404` otherwise.
    pub async fn missing(
        &self,
        pool: &Pool,
        kind: crate::store::ownership::Owned,
        key: &str,
        not_found: impl Into<String>,
    ) -> ApiError {
        let elsewhere = match pool.get().await {
            Ok(client) => crate::store::ownership::held_by_another_account(&client, kind, key, self.account).await,
            Err(error) => return ApiError::from(error),
        };
        match elsewhere {
            Ok(true) => ApiError::forbidden(
                "this object belongs to another account; name that account in the `Tagcast-Account` header",
            ),
            Ok(false) => ApiError::not_found(not_found),
            Err(error) => ApiError::from(error),
        }
    }
}

/// Who is calling, before any account is chosen: the bearer token or a signed-in user.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    /// `None` for the bearer token, which acts as a deployment admin.
    user: Option<crate::app::admins::Admin>,
}

impl Identity {
    /// What the caller holds, read fresh (a role revoked a moment ago no longer counts).
    pub async fn holdings(&self, pool: &Pool) -> Result<crate::app::admins::Holdings, ApiError> {
        let Some(user) = &self.user else {
            return Ok(crate::app::admins::Holdings { deployment_admin: true, roles: Vec::new() });
        };
        let client = pool.get().await?;
        let row = store::admins::find_by_username(&client, &user.username).await?;
        let Some(row) = row.filter(|r| !r.disabled) else { return Err(ApiError::unauthorized()) };
        let roles = store::admins::roles_of(&client, row.id).await?;
        Ok(crate::app::admins::Holdings { deployment_admin: row.role == AdminRole::Admin, roles })
    }
}

impl FromRequest for Identity {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let credentials = credentials(req);
        let ip = crate::web::client_ip(req);
        let auth = req.app_data::<web::Data<ApiAuth>>().cloned();
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            let auth = auth.ok_or_else(ApiError::unauthorized)?;
            match credentials.ok_or_else(ApiError::unauthorized)? {
                Credentials::Bearer(given) => {
                    let expected = auth.token.as_ref().ok_or_else(ApiError::unauthorized)?;
                    if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
                        Ok(Identity { name: crate::domain::admin::API_ACTOR.to_owned(), user: None })
                    } else {
                        Err(ApiError::unauthorized())
                    }
                }
                Credentials::Basic { username, password } => {
                    let pool = pool.ok_or_else(ApiError::internal)?;
                    match auth.users.sign_in(&pool, &username, &password, ip).await {
                        Ok(SignIn::Ok(admin)) => Ok(Identity { name: admin.username.clone(), user: Some(admin) }),
                        Ok(SignIn::Wrong { locked: false }) => Err(ApiError::unauthorized()),
                        Ok(SignIn::Wrong { locked: true }) => {
                            tracing::warn!(admin.username = %username, "HTTP Basic: too many failures, pair locked");
                            Err(locked(LOCKOUT))
                        }
                        Ok(SignIn::Locked { retry_after }) => Err(locked(retry_after)),
                        Ok(SignIn::Busy { retry_after }) => Err(ApiError::too_many_requests(
                            "too many password checks at once; retry after `Retry-After` seconds",
                            retry_after,
                        )),
                        Err(error) => {
                            tracing::error!(error = ?error, "checking an admin password failed");
                            Err(ApiError::internal())
                        }
                    }
                }
            }
        })
    }
}

/// A call naming an account is refused before anything else is read when the caller holds no role
/// there: a handler extracts its body concurrently with the [`Caller`], and a malformed body must
/// not answer before the refusal does. The checked caller is kept for the handler, so the
/// credentials are checked (and counted by the throttle) once.
async fn account_gate(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage as _;
    let lists_accounts = req.method() == Method::GET && req.path() == "/api/v1/accounts";
    if !req.headers().contains_key(ACCOUNT_HEADER) || lists_accounts {
        return next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body);
    }
    let mut req = req;
    match req.extract::<Caller>().await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.call(req).await.map(actix_web::dev::ServiceResponse::map_into_boxed_body)
        }
        Err(error) => Ok(req.into_response(actix_web::ResponseError::error_response(&error))),
    }
}

/// The account a call names in [`ACCOUNT_HEADER`]; `404` for a name no account has.
fn requested_account(req: &HttpRequest) -> Result<AccountId, ApiError> {
    let Some(value) = req.headers().get(ACCOUNT_HEADER) else { return Ok(AccountId::FIRST) };
    let accounts = req.app_data::<web::Data<Accounts>>().ok_or_else(ApiError::internal)?;
    let name = value.to_str().unwrap_or_default().trim();
    accounts
        .by_name(name)
        .map(|a| a.id)
        .ok_or_else(|| ApiError::not_found(format!("no account is named `{name}` (see GET /api/v1/accounts)")))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        use actix_web::HttpMessage as _;
        if let Some(checked) = req.extensions().get::<Caller>().cloned() {
            return Box::pin(async move { Ok(checked) });
        }
        let identity = Identity::from_request(req, payload);
        let account = requested_account(req);
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            let identity = identity.await?;
            let account = account?;
            let pool = pool.ok_or_else(ApiError::internal)?;
            let holdings = identity.holdings(&pool).await?;
            let role = holdings.role_on(account).ok_or_else(|| {
                ApiError::forbidden(
                    "you hold no role on this account; ask a deployment admin, or name another account in \
                     the `Tagcast-Account` header",
                )
            })?;
            Ok(Caller { name: identity.name, role, account, holdings })
        })
    }
}

/// The answer to a locked (username, address) pair, the login page's lockout in the API's words.
fn locked(retry_after: std::time::Duration) -> ApiError {
    ApiError::locked(
        format!(
            "{MAX_FAILURES} wrong passwords for this username from this address: locked for {} minutes; \
             retry after `Retry-After` seconds",
            LOCKOUT.as_secs() / 60
        ),
        retry_after,
    )
}

enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

fn credentials(req: &HttpRequest) -> Option<Credentials> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(Credentials::Bearer(token.trim().to_owned()));
    }
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials::Basic { username: username.to_owned(), password: password.to_owned() })
}

/// One `/api/v1` call. [`routes`] is the one table both the server and the OpenAPI check read,
/// so a call cannot be served without being checked against the description.
pub struct ApiRoute {
    pub method: Method,
    /// Relative to `/api/v1`, in actix's `{param}` syntax (which OpenAPI shares).
    pub path: &'static str,
    route: actix_web::Route,
}

fn call<F, Args>(method: Method, path: &'static str, handler: F) -> ApiRoute
where
    F: actix_web::Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    // On the route, so the gate runs only for a call that exists (others answer 404 or 405 as before).
    let route = web::method(method.clone()).to(handler).wrap(actix_web::middleware::from_fn(account_gate));
    ApiRoute { route, method, path }
}

/// Every call of `/api/v1`. Literal paths come before the `{id}` paths they would match.
pub fn routes() -> Vec<ApiRoute> {
    use Method as M;
    vec![
        call(M::GET, "/accounts", accounts::list_accounts),
        call(M::POST, "/accounts", accounts::create_account),
        call(M::PATCH, "/accounts/{name}", accounts::update_account),
        call(M::POST, "/admins", admins::create_admin),
        call(M::GET, "/admins", admins::list_admins),
        call(M::PUT, "/admins/{username}/roles", admins::set_roles),
        call(M::POST, "/tags", tags::create_tag),
        call(M::GET, "/tags", tags::list_tags),
        call(M::GET, "/tags/health", campaigns::tag_health),
        call(M::GET, "/tags/{id}", tags::get_tag),
        call(M::DELETE, "/tags/{id}", tags::delete_tag),
        call(M::PATCH, "/tags/{id}", tags::rename_tag),
        call(M::POST, "/rules", rules::create_rule),
        call(M::GET, "/rules", rules::list_rules),
        call(M::DELETE, "/rules/{id}", rules::delete_rule),
        call(M::POST, "/quizzes", quizzes::save_quiz),
        call(M::GET, "/quizzes", quizzes::list_quizzes),
        call(M::GET, "/users/{openid}", users::get_user),
        call(M::DELETE, "/users/{openid}", users::erase_user),
        call(M::POST, "/events", events::record_events),
        call(M::POST, "/segments", segments::create_segment),
        call(M::POST, "/segments/preview", segments::preview_segment),
        call(M::GET, "/segments/{id}", segments::get_segment),
        call(M::GET, "/segments/{id}/members", segments::list_segment_members),
        call(M::POST, "/campaigns", campaigns::create_campaign),
        call(M::GET, "/campaigns", campaigns::list_campaigns),
        call(M::GET, "/campaigns/strategies", campaigns::compare_strategies),
        call(M::GET, "/campaigns/{id}", campaigns::get_campaign),
        call(M::POST, "/campaigns/{id}/links", campaigns::create_link),
        call(M::POST, "/campaigns/{id}/send", campaigns::send_campaign),
        call(M::POST, "/campaigns/{id}/approve", campaigns::approve_campaign),
        call(M::POST, "/campaigns/{id}/reject", campaigns::reject_campaign),
        call(M::POST, "/campaigns/{id}/cancel", campaigns::cancel_campaign),
        call(M::POST, "/campaigns/{id}/preview", campaigns::preview_campaign),
        call(M::GET, "/wechat/quota", quota::get_quota),
        call(M::POST, "/wechat/clear_quota", quota::clear_quota),
        call(M::GET, "/drafts", drafts::list_drafts),
    ]
}

/// Registers `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(256 * 1024)
        .error_handler(|error, _| ApiError::invalid_request(error.to_string()).into());
    let query =
        web::QueryConfig::default().error_handler(|error, _| ApiError::invalid_request(error.to_string()).into());
    let path = web::PathConfig::default().error_handler(|_, _| ApiError::not_found("no such resource").into());
    let mut scope = web::scope("/api/v1")
        .app_data(json)
        .app_data(path)
        .app_data(query)
        .route("/openapi.json", web::get().to(openapi::serve));
    // One resource per path, in the table's order, so a known path asked with another method
    // answers 405 with `Allow` rather than falling through to "no such API call".
    let mut paths: Vec<(&'static str, Vec<ApiRoute>)> = Vec::new();
    for call in routes() {
        match paths.iter_mut().find(|(path, _)| *path == call.path) {
            Some((_, calls)) => calls.push(call),
            None => paths.push((call.path, vec![call])),
        }
    }
    for (path, calls) in paths {
        let allow = calls.iter().map(|c| c.method.as_str()).collect::<Vec<_>>().join(", ");
        let mut resource = web::resource(path);
        for call in calls {
            resource = resource.route(call.route);
        }
        scope = scope.service(resource.default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                let mut response = actix_web::ResponseError::error_response(&ApiError::new(
                    actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("this call takes {allow}"),
                ));
                if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(actix_web::http::header::ALLOW, value);
                }
                response
            }
        })));
    }
    cfg.service(scope.default_service(web::to(|| async {
        Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such API call"))
    })));
}
