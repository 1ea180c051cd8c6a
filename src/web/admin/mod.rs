//! `/admin`: the operators' pages, server-rendered with askama in Simplified Chinese.
//!
//! Sessions live in an encrypted, signed cookie (actix-session's cookie store: HttpOnly,
//! SameSite=Strict) holding a random session id, the username, the sign-in time and the CSRF
//! token. The id must name a live row of `admin_sessions` whose user is enabled, read together
//! with the user's row and roles on every request: signing out, disabling a user or changing
//! their role on any account or their password ends the session at once, on every instance. The
//! row also holds the account chosen in the switcher; every page works on that account only. Every form posts a CSRF token that
//! [`CsrfForm`] checks before a handler runs. Pages call the same domain and store functions as
//! the JSON API; no SQL here.

mod auth;
mod board;
mod campaigns;
mod charts;
mod confirm;
mod error;
mod followers;
mod pages;
mod phone;
mod playbook;
mod simulator;

pub use board::warm_up as warm_up_board;
use std::sync::Arc;

use actix_session::config::{BrowserSession, CookieContentSecurity};
use actix_session::storage::CookieSessionStore;
use actix_session::{Session, SessionExt, SessionMiddleware};
use actix_web::cookie::{Key, SameSite};
use actix_web::middleware::DefaultHeaders;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

pub use auth::Empty;
pub use error::AdminError;
pub use simulator::SimulatorTarget;

use crate::app::accounts::{Accounts, LiveAccount};
use crate::app::admins::{Authenticator, Holdings};
use crate::domain::account::AccountId;
use crate::domain::admin::AdminRole;
use crate::wechat::api::ApiClient;

/// A session older than this must sign in again, whatever the browser keeps.
const SESSION_HOURS: i64 = 12;
/// The largest form accepted (a playbook pasted into the import box), as README documents;
/// a larger one is refused with 413 before it is read further.
pub const MAX_FORM_BYTES: usize = 512 * 1024;

const SESSION_ID: &str = "sid";
const SESSION_USER: &str = "user";
const SESSION_SIGNED_IN_AT: &str = "signed_in_at";
const SESSION_CSRF: &str = "csrf";
const SESSION_FLASH: &str = "flash";

/// What the admin pages share across workers.
pub struct AdminState {
    pub api: Option<ApiClient>,
    pub users: Authenticator,
    pub simulator: SimulatorTarget,
    pub board: board::BoardCache,
    pub tag_members: board::TagMembersCache,
    pub strategies: campaigns::StrategiesCache,
}

impl AdminState {
    pub fn new(api: Option<ApiClient>, users: Authenticator, simulator: SimulatorTarget) -> Arc<Self> {
        Arc::new(Self {
            api,
            users,
            simulator,
            board: board::BoardCache::default(),
            tag_members: board::TagMembersCache::default(),
            strategies: campaigns::StrategiesCache::default(),
        })
    }
}

/// The cookie key: derived from `TAGCAST_SESSION_KEY` so that every instance and every restart
/// accepts the same sessions, or random when it is unset (sessions then end with the process).
pub fn session_key(secret: Option<&str>) -> Key {
    match secret {
        Some(secret) => {
            use blake2::{Blake2b512, Digest};
            // Key::from needs 64 bytes; a keyed hash stretches any configured secret to that.
            let mut hasher = Blake2b512::new();
            hasher.update(b"tagcast admin session cookie v1");
            hasher.update(secret.as_bytes());
            Key::from(&hasher.finalize())
        }
        None => Key::generate(),
    }
}

/// Registers `/admin` and its static files.
pub fn configure(cfg: &mut web::ServiceConfig, key: Key) {
    let session = SessionMiddleware::builder(CookieSessionStore::default(), key)
        .cookie_name("tagcast_admin".to_owned())
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Strict)
        // Served over plain HTTP on 127.0.0.1 in demo mode; behind TLS the proxy sets HSTS.
        .cookie_secure(false)
        .cookie_path("/admin".to_owned())
        .cookie_content_security(CookieContentSecurity::Private)
        .session_lifecycle(BrowserSession::default())
        .build();
    let headers = DefaultHeaders::new()
        .add((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data: https://mmbiz.qpic.cn http://mmbiz.qpic.cn; script-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "same-origin"))
        .add(("Cache-Control", "no-store"));
    cfg.service(
        web::scope("/admin")
            .wrap(session)
            .wrap(headers)
            .app_data(web::PayloadConfig::new(MAX_FORM_BYTES))
            .app_data(web::QueryConfig::default().error_handler(|_, _| AdminError::BadRequest.into()))
            .app_data(web::PathConfig::default().error_handler(|_, _| AdminError::NotFound.into()))
            .route("/static/admin.css", web::get().to(static_css))
            .route("/static/admin.js", web::get().to(static_js))
            .route("/login", web::get().to(auth::login_page))
            .route("/login", web::post().to(auth::log_in))
            .route("/logout", web::post().to(auth::log_out))
            .route("/account", web::post().to(switch_account))
            .route("/accounts", web::get().to(pages::list_accounts))
            .route("/accounts", web::post().to(pages::create_account))
            .route("/accounts/{name}", web::get().to(pages::edit_account))
            .route("/accounts/{name}", web::post().to(pages::update_account))
            .route("", web::get().to(board::show_board))
            .route("/", web::get().to(board::show_board))
            .route("/quota/clear", web::post().to(board::clear_quota))
            .route("/tags", web::get().to(pages::list_tags))
            .route("/tags", web::post().to(pages::create_tag))
            .route("/tags/sync/retry", web::post().to(pages::retry_refused))
            .route("/tags/{id}/delete", web::post().to(pages::delete_tag))
            .route("/tags/{id}/rename", web::post().to(pages::rename_tag))
            .route("/tags/{id}/sensitive", web::post().to(pages::set_tag_sensitive))
            .route("/rules", web::get().to(pages::list_rules))
            .route("/rules", web::post().to(pages::create_rule))
            .route("/rules/{id}/delete", web::post().to(pages::delete_rule))
            .route("/quizzes", web::get().to(pages::list_quizzes))
            .route("/quizzes", web::post().to(pages::save_quiz))
            .route("/quizzes/form", web::post().to(pages::save_quiz_form))
            .route("/quizzes/{id}/delete", web::post().to(pages::delete_quiz))
            .route("/segments", web::get().to(pages::show_segments))
            .route("/segments", web::post().to(pages::create_segment))
            .route("/segments/count", web::get().to(pages::count_segment))
            .route("/segments/{id}/delete", web::post().to(pages::delete_segment))
            .route("/campaigns", web::get().to(campaigns::list_campaigns))
            .route("/campaigns", web::post().to(campaigns::create_campaign))
            .route("/campaigns/new", web::get().to(campaigns::new_campaign))
            .route("/campaigns/approvals", web::get().to(campaigns::list_approvals))
            .route("/campaigns/{id}", web::get().to(campaigns::show_campaign))
            .route("/campaigns/{id}/preview", web::post().to(campaigns::preview_campaign))
            .route("/campaigns/{id}/approve", web::post().to(campaigns::approve_campaign))
            .route("/campaigns/{id}/reject", web::post().to(campaigns::reject_campaign))
            .route("/campaigns/{id}/send", web::post().to(campaigns::send_campaign))
            .route("/campaigns/{id}/cancel", web::post().to(campaigns::cancel_campaign))
            .route("/campaigns/{id}/delete", web::post().to(campaigns::delete_campaign))
            .route("/followers", web::get().to(followers::search_followers))
            .route("/followers/export", web::get().to(followers::export_followers))
            .route("/followers/{openid}", web::get().to(followers::show_follower))
            .route("/followers/{openid}/erase", web::post().to(followers::erase_follower))
            .route("/predictions", web::get().to(pages::predictions_page))
            .route("/predictions/train", web::post().to(pages::train_now))
            .route("/intents", web::get().to(pages::intents::intents_page))
            .route("/intents", web::post().to(pages::intents::create_intent))
            .route("/intents/label", web::post().to(pages::intents::label))
            .route("/intents/seed", web::post().to(pages::intents::seed))
            .route("/intents/train", web::post().to(pages::intents::train))
            .route("/intents/{id}", web::post().to(pages::intents::update_intent))
            .route("/intents/{id}/delete", web::post().to(pages::intents::delete_intent))
            .route("/predictions/high-potential", web::post().to(pages::save_high_potential))
            .route("/testers", web::get().to(pages::list_testers))
            .route("/testers", web::post().to(pages::add_tester))
            .route("/testers/{openid}/remove", web::post().to(pages::remove_tester))
            .route("/audit", web::get().to(pages::list_audit))
            .route("/users", web::get().to(pages::list_users))
            .route("/users", web::post().to(pages::create_user))
            .route("/users/{username}/disable", web::post().to(pages::disable_user))
            .route("/users/{username}/enable", web::post().to(pages::enable_user))
            .route("/users/{username}/roles", web::post().to(pages::set_user_roles))
            .route("/playbook", web::get().to(playbook::show_playbook))
            .route("/playbook/export", web::get().to(playbook::export_playbook))
            .route("/playbook/import", web::post().to(playbook::import_playbook))
            .route("/simulator", web::get().to(simulator::show_simulator))
            .route("/simulator", web::post().to(simulator::simulate))
            .route("/simulator/reset", web::post().to(simulator::reset_simulator))
            .default_service(web::to(|| async { Err::<HttpResponse, _>(AdminError::NotFound) })),
    );
}

async fn static_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../templates/static/admin.css"))
}

async fn static_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(include_str!("../../../templates/static/admin.js"))
}

/// A signed-in admin user, read from the session and checked against `admins` on every request.
#[derive(Clone)]
pub struct AdminUser {
    pub username: String,
    /// The role on [`AdminUser::account`].
    pub role: AdminRole,
    /// The account chosen in the switcher; every page shows and changes only its objects.
    pub account: AccountId,
    /// `admins.role = 'admin'`: manages accounts and users, holds every account.
    pub deployment_admin: bool,
    /// The accounts the user holds, with the role on each (the switcher's choices).
    pub holds: Vec<(Arc<LiveAccount>, AdminRole)>,
    /// Campaigns of the account waiting for approval, for the nav badge: counted for users who
    /// may approve, else 0.
    pub pending_approvals: i64,
    session: Session,
}

/// One entry of the switcher.
pub struct AccountChoice {
    pub name: String,
    pub label: String,
    pub selected: bool,
}

impl AdminUser {
    /// `403` unless the role allows it.
    pub fn require(&self, allowed: bool) -> Result<(), AdminError> {
        if allowed { Ok(()) } else { Err(AdminError::Forbidden) }
    }

    /// `403` unless the user is a deployment admin (accounts and users).
    pub fn require_deployment_admin(&self) -> Result<(), AdminError> {
        self.require(self.deployment_admin)
    }

    /// The chosen account as the registry has it.
    pub fn live_account(&self) -> Option<&Arc<LiveAccount>> {
        self.holds.iter().find(|(a, _)| a.id == self.account).map(|(a, _)| a)
    }

    /// What `base.html` shows around every page; takes the pending flash message.
    pub fn layout(&self, active: &'static str) -> Layout {
        let flash = self.session.remove_as::<String>(SESSION_FLASH).and_then(Result::ok);
        let current = self.live_account();
        Layout {
            username: self.username.clone(),
            role_label: self.role.label_zh(),
            is_admin: self.role == AdminRole::Admin,
            deployment_admin: self.deployment_admin,
            // The account the page was shown for rides with the token: a form submitted after a
            // switch in another tab is refused instead of acting on the account chosen since.
            csrf: format!("{}.{}", csrf_token(&self.session), self.account.get()),
            flash,
            active,
            account_name: current.map(|a| a.display_name.clone()).unwrap_or_default(),
            account_kind: current.map(|a| a.kind.label()).unwrap_or_default(),
            pending_approvals: self.pending_approvals,
            accounts: self
                .holds
                .iter()
                .map(|(a, _)| AccountChoice {
                    name: a.name.clone(),
                    label: format!("{}（{}）", a.display_name, a.kind.label()),
                    selected: a.id == self.account,
                })
                .collect(),
        }
    }

    /// A message for the next page this user sees (the 303 + flash of STYLE.md §7).
    pub fn flash(&self, message: impl Into<String>) {
        // A session that cannot be written only loses the confirmation, never the change.
        let _ = self.session.insert(SESSION_FLASH, message.into());
    }
}

impl AdminUser {
    /// The error for an object `key` of `kind` not found in the chosen account: forbidden when
    /// another account holds it, not found otherwise.
    pub async fn missing(&self, pool: &Pool, kind: crate::store::ownership::Owned, key: &str) -> AdminError {
        let client = match pool.get().await {
            Ok(client) => client,
            Err(error) => return AdminError::pool(error),
        };
        match crate::store::ownership::held_by_another_account(&client, kind, key, self.account).await {
            Ok(true) => AdminError::OtherAccount,
            Ok(false) => AdminError::NotFound,
            Err(error) => AdminError::query(error),
        }
    }
}

impl FromRequest for AdminUser {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let session = req.get_session();
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        let accounts = req.app_data::<web::Data<Accounts>>().cloned();
        Box::pin(async move {
            let sid = session.get::<String>(SESSION_ID).ok().flatten().ok_or(AdminError::NotSignedIn)?;
            let at = session.get::<i64>(SESSION_SIGNED_IN_AT).ok().flatten().unwrap_or(0);
            if chrono::Utc::now().timestamp() - at > SESSION_HOURS * 3600 {
                session.purge();
                return Err(AdminError::NotSignedIn);
            }
            let pool = pool.ok_or(AdminError::Internal)?;
            let accounts = accounts.ok_or(AdminError::Internal)?;
            let client = pool.get().await.map_err(AdminError::pool)?;
            let row = crate::store::admin_sessions::get_session_user(&client, &session_id_hash(&sid))
                .await
                .map_err(AdminError::query)?;
            let Some(row) = row else {
                session.purge();
                return Err(AdminError::NotSignedIn);
            };
            let holdings = Holdings { deployment_admin: row.role == AdminRole::Admin, roles: row.roles };
            let holds = holdings.accounts(&accounts);
            // The chosen account, unless the user no longer holds it: then the first they hold.
            let chosen = holds.iter().find(|(a, _)| a.id == row.account).or_else(|| holds.first());
            let Some((account, role)) = chosen.map(|(a, r)| (a.id, *r)) else {
                // Nothing to show and nothing to switch to: sign out, so another user can sign in here.
                crate::store::admin_sessions::delete_session(&client, &session_id_hash(&sid))
                    .await
                    .map_err(AdminError::query)?;
                session.purge();
                return Err(AdminError::NoAccount);
            };
            // One indexed count (V30's partial index): confirmation pages answer posts, so
            // every request of an approver pays it, not only GETs.
            let pending_approvals = if role.may_approve() {
                crate::store::campaigns::count_pending_approval(&client, account).await.map_err(AdminError::query)?
            } else {
                0
            };
            Ok(Self {
                username: row.username,
                role,
                account,
                deployment_admin: holdings.deployment_admin,
                holds,
                pending_approvals,
                session,
            })
        })
    }
}

#[derive(serde::Deserialize)]
pub struct SwitchForm {
    account: String,
    #[serde(default)]
    back: String,
}

/// The switcher: works on another account from now on, if the user holds it. Back to the same
/// section of the console (not the same object, which belongs to the account left).
pub async fn switch_account(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(form): CsrfForm<SwitchForm>,
) -> Result<HttpResponse, AdminError> {
    let Some((account, _)) = user.holds.iter().find(|(a, _)| a.name == form.account) else {
        tracing::warn!(admin.username = %user.username, account = %form.account, "switch to an account not held");
        return Err(AdminError::Forbidden);
    };
    let sid = user.session.get::<String>(SESSION_ID).ok().flatten().ok_or(AdminError::NotSignedIn)?;
    if !crate::store::admin_sessions::set_session_account(&pool.get().await?, &session_id_hash(&sid), account.id)
        .await?
    {
        return Err(AdminError::NotSignedIn);
    }
    user.flash(format!("已切换到公众号「{}」。", account.display_name));
    let back = form.back.as_str();
    let safe = back.starts_with("/admin") && back.bytes().all(|b| b.is_ascii_lowercase() || b == b'/');
    Ok(see_other(if safe { back } else { "/admin" }))
}

/// What `admin_sessions` stores of a session id: a hash, so the table alone opens no session.
fn session_id_hash(sid: &str) -> Vec<u8> {
    use blake2::{Blake2b, Digest, digest::consts::U32};
    Blake2b::<U32>::digest(sid.as_bytes()).to_vec()
}

/// A new random session id for the cookie.
fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The session's CSRF token, created on first use.
fn csrf_token(session: &Session) -> String {
    if let Ok(Some(token)) = session.get::<String>(SESSION_CSRF) {
        return token;
    }
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let _ = session.insert(SESSION_CSRF, &token);
    token
}

/// A urlencoded form whose `csrf` field matched the session's token. Every POST under `/admin`
/// takes its body through this, so no handler can forget the check.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = AdminError;
    type Future = LocalBoxFuture<'static, Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let session = req.get_session();
        let body = web::Bytes::from_request(req, payload);
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        // Switching and signing out act on the session, not on an account's objects.
        let any_account = matches!(req.path(), "/admin/account" | "/admin/logout");
        Box::pin(async move {
            let body = body.await.map_err(|error| {
                let overflow = error
                    .as_error::<actix_web::error::PayloadError>()
                    .is_some_and(|e| matches!(e, actix_web::error::PayloadError::Overflow));
                if overflow { AdminError::TooLarge } else { AdminError::BadRequest }
            })?;
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&body).map_err(|_| AdminError::BadRequest)?;
            let given = pairs.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
            let (given, shown_for) = match given.rsplit_once('.') {
                Some((token, account)) => (token, account.parse::<i64>().ok()),
                None => (given, None),
            };
            let expected = session.get::<String>(SESSION_CSRF).ok().flatten().unwrap_or_default();
            if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(AdminError::Csrf);
            }
            if let (Some(shown_for), false, Some(pool)) = (shown_for, any_account, pool) {
                let sid = session.get::<String>(SESSION_ID).ok().flatten().unwrap_or_default();
                let client = pool.get().await?;
                let current = crate::store::admin_sessions::get_session_user(&client, &session_id_hash(&sid)).await?;
                if current.is_some_and(|user| user.account.get() != shown_for) {
                    return Err(AdminError::AccountSwitched);
                }
            }
            // PostgreSQL's text cannot hold NUL: refused here, before any handler reads a field.
            if pairs.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
                return Err(AdminError::BadCharacters);
            }
            serde_urlencoded::from_bytes(&body).map(CsrfForm).map_err(|_| AdminError::BadRequest)
        })
    }
}

/// The frame of every signed-in page.
pub struct Layout {
    pub username: String,
    pub role_label: &'static str,
    /// Admin of the chosen account.
    pub is_admin: bool,
    /// Manages accounts and users.
    pub deployment_admin: bool,
    pub csrf: String,
    pub flash: Option<String>,
    /// Which nav entry is highlighted.
    pub active: &'static str,
    /// The chosen account's display name and kind (服务号/订阅号), shown on every page.
    pub account_name: String,
    pub account_kind: &'static str,
    /// The switcher's choices: the accounts the user holds.
    pub accounts: Vec<AccountChoice>,
    /// The nav badge beside 群发: campaigns waiting for this user's approval (0: no badge).
    pub pending_approvals: i64,
}

impl Layout {
    /// Where the switcher returns to: the top of the section shown.
    pub fn section(&self) -> String {
        match self.active {
            "board" | "" => "/admin".to_owned(),
            other => format!("/admin/{other}"),
        }
    }

    /// The section's name, shown beside 菜单 while the nav is folded on a phone, so the reader
    /// knows where they are without opening it.
    pub fn active_label(&self) -> &'static str {
        match self.active {
            "board" => "看板",
            "tags" => "标签",
            "rules" => "规则",
            "quizzes" => "测验",
            "segments" => "人群",
            "campaigns" => "群发",
            "followers" => "粉丝",
            "predictions" => "预测",
            "intents" => "意图",
            "simulator" => "模拟器",
            "playbook" => "配置文件",
            "audit" => "审计",
            "accounts" => "公众号",
            "users" => "用户",
            _ => "",
        }
    }
}

/// Renders a page, or the error page when the template fails.
pub fn render(page: &impl Template) -> Result<HttpResponse, AdminError> {
    let html = page.render().map_err(AdminError::Render)?;
    Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(html))
}

/// `303 See Other` to `location`: the answer to every successful form post.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header(("Location", location)).finish()
}
