//! Signing in and out.

use std::sync::Arc;

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use serde::Deserialize;

use super::{AdminError, AdminUser, CsrfForm, SESSION_SIGNED_IN_AT, SESSION_USER, csrf_token, render, see_other};
use super::{AdminState, throttle};

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: Option<String>,
}

/// The sign-in form; a signed-in user goes straight to the board.
pub async fn login_page(session: Session) -> Result<HttpResponse, AdminError> {
    if session.get::<String>(SESSION_USER).ok().flatten().is_some() {
        return Ok(see_other("/admin"));
    }
    render(&LoginPage { csrf: csrf_token(&session), username: String::new(), error: None })
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

/// Checks the password (argon2id, through [`crate::accounts::Authenticator`]) unless the
/// username and address are locked out, then starts a fresh session.
pub async fn log_in(
    req: HttpRequest,
    session: Session,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Result<HttpResponse, AdminError> {
    let ip = req.peer_addr().map(|a| a.ip());
    let username = form.username.trim().to_owned();
    let again = |error: String| {
        render(&LoginPage { csrf: csrf_token(&session), username: username.clone(), error: Some(error) })
            .map(|r| with_status(r, actix_web::http::StatusCode::UNAUTHORIZED))
    };
    if state.throttle.is_locked(&username, ip) {
        tracing::warn!(admin.username = %username, "sign-in refused: too many failures");
        return again(locked_message());
    }
    let client = pool.get().await?;
    let admin = state.users.verify(&client, &username, &form.password).await.map_err(|error| {
        tracing::error!(error = ?error, "checking an admin password failed");
        AdminError::Internal
    })?;
    let Some(admin) = admin else {
        let locked = state.throttle.record_failure(&username, ip);
        tracing::info!(admin.username = %username, locked, "sign-in failed");
        return again(if locked { locked_message() } else { "用户名或密码不正确。".to_owned() });
    };
    state.throttle.record_success(&username, ip);
    // A new session id and a new CSRF token: nothing from before sign-in carries over.
    session.renew();
    session.clear();
    session.insert(SESSION_USER, &admin.username).map_err(|_| AdminError::Internal)?;
    session.insert(SESSION_SIGNED_IN_AT, chrono::Utc::now().timestamp()).map_err(|_| AdminError::Internal)?;
    csrf_token(&session);
    tracing::info!(admin.username = %admin.username, "signed in");
    Ok(see_other("/admin"))
}

fn locked_message() -> String {
    format!("失败次数过多（{} 次），请 {} 分钟后再试。", throttle::MAX_FAILURES, throttle::LOCKOUT.as_secs() / 60)
}

fn with_status(mut response: HttpResponse, status: actix_web::http::StatusCode) -> HttpResponse {
    *response.status_mut() = status;
    response
}

#[derive(Deserialize)]
pub struct Empty {}

/// Ends the session (a POST with the CSRF token, so another site cannot sign a user out).
pub async fn log_out(user: AdminUser, CsrfForm(_): CsrfForm<Empty>) -> Result<HttpResponse, AdminError> {
    tracing::info!(admin.username = %user.username, "signed out");
    user.session.purge();
    Ok(see_other("/admin/login"))
}
