//! Signing in and out.

use std::sync::Arc;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{AdminError, CsrfForm, SESSION_ID, SESSION_SIGNED_IN_AT, SESSION_USER, csrf_token, render};
use super::{AdminState, SESSION_HOURS, new_session_id, see_other, session_id_hash};
use crate::app::admins::{LOCKOUT, MAX_FAILURES, SignIn};
use crate::store;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: Option<String>,
}

/// The sign-in form; a signed-in user goes straight to the board.
pub async fn login_page(session: Session) -> Result<HttpResponse, AdminError> {
    if session.get::<String>(SESSION_ID).ok().flatten().is_some() {
        return Ok(see_other("/admin"));
    }
    render(&LoginPage { csrf: csrf_token(&session), username: String::new(), error: None })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// Checks the password through [`crate::app::admins::Authenticator::sign_in`] (the throttle and
/// the bound on checks the API's HTTP Basic shares), then starts a fresh session with a row in
/// `admin_sessions`.
pub async fn log_in(
    req: HttpRequest,
    session: Session,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AdminError> {
    let ip = crate::web::client_ip(&req);
    let username = crate::domain::admin::normalize_username(&form.username);
    let again = |status: StatusCode, error: String| {
        render(&LoginPage { csrf: csrf_token(&session), username: username.clone(), error: Some(error) })
            .map(|r| with_status(r, status))
    };
    let outcome = state.users.sign_in(&pool, &username, &form.password, ip).await.map_err(|error| {
        tracing::error!(error = ?error, "checking an admin password failed");
        AdminError::Internal
    })?;
    let admin = match outcome {
        SignIn::Ok(admin) => admin,
        SignIn::Wrong { locked } => {
            tracing::info!(admin.username = %username, locked, "sign-in failed");
            let message = if locked { locked_message() } else { "用户名或密码不正确。".to_owned() };
            return again(StatusCode::UNAUTHORIZED, message);
        }
        SignIn::Locked { .. } => {
            tracing::warn!(admin.username = %username, "sign-in refused: too many failures");
            return again(StatusCode::UNAUTHORIZED, locked_message());
        }
        SignIn::Busy { retry_after } => {
            tracing::warn!(admin.username = %username, "sign-in refused: no password check free");
            let seconds = crate::web::api::retry_after_secs(retry_after);
            let mut page =
                again(StatusCode::TOO_MANY_REQUESTS, format!("同时登录的请求过多，请等待 {seconds} 秒后重新提交。"))?;
            if let Ok(value) = seconds.to_string().parse() {
                page.headers_mut().insert(actix_web::http::header::RETRY_AFTER, value);
            }
            return Ok(page);
        }
    };
    let client = pool.get().await?;
    // A sign-in is rare enough to sweep the sessions that have expired since the last one.
    store::admin_sessions::delete_expired_sessions(&client).await?;
    let sid = new_session_id();
    let hours = i32::try_from(SESSION_HOURS).expect("12 fits");
    if !store::admin_sessions::insert_session(&client, &session_id_hash(&sid), &admin.username, hours).await? {
        // Disabled between the password check and now.
        return again(StatusCode::UNAUTHORIZED, "用户名或密码不正确。".to_owned());
    }
    // A new session id and a new CSRF token: nothing from before sign-in carries over.
    session.renew();
    session.clear();
    session.insert(SESSION_ID, &sid).map_err(|_| AdminError::Internal)?;
    session.insert(SESSION_USER, &admin.username).map_err(|_| AdminError::Internal)?;
    session.insert(SESSION_SIGNED_IN_AT, chrono::Utc::now().timestamp()).map_err(|_| AdminError::Internal)?;
    csrf_token(&session);
    tracing::info!(admin.username = %admin.username, "signed in");
    Ok(see_other("/admin"))
}

fn locked_message() -> String {
    format!("失败次数过多（{MAX_FAILURES} 次），请 {} 分钟后再试。", LOCKOUT.as_secs() / 60)
}

fn with_status(mut response: HttpResponse, status: StatusCode) -> HttpResponse {
    *response.status_mut() = status;
    response
}

/// A form that carries nothing but its CSRF token (sign out, retry).
#[derive(Deserialize)]
pub struct Empty {}

/// Ends the session on the server (its row goes, so a copy of the cookie stops working) and in
/// the browser. A POST with the CSRF token, so another site cannot sign a user out.
/// Needs no account: a user whose roles were all revoked can still sign out.
pub async fn log_out(
    session: Session,
    pool: web::Data<Pool>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AdminError> {
    let sid = session.get::<String>(SESSION_ID).ok().flatten().ok_or(AdminError::NotSignedIn)?;
    store::admin_sessions::delete_session(&pool.get().await?, &session_id_hash(&sid)).await?;
    let username = session.get::<String>(SESSION_USER).ok().flatten().unwrap_or_default();
    tracing::info!(admin.username = %username, "signed out");
    session.purge();
    Ok(see_other("/admin/login"))
}
