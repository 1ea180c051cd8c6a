//! `/wechat` and `/wechat/{account}`: the URL check (GET) and every push WeChat delivers (POST),
//! in plaintext, compatible and safe modes (CONTRACT.md §3). `/wechat` is the first account's;
//! each account's URL checks with that account's token, key and mode (from the registry, which
//! is in memory: no query per push), so a push signed for one account is refused at another's.
//!
//! Order of checks: message mode (compat and safe refuse a push that is not encrypted under a
//! `msg_signature`), query parameters, replay window, signature, body size and encoding, XML,
//! decryption, field rules ([`crate::wechat::fields`]), and in plaintext mode that the signature
//! has not carried another push. A request that fails any of them gets 400 or 403 and nothing is
//! stored; once a push is stored the answer is always 200.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::app::accounts::{Accounts, LiveAccount};
use crate::app::inbox::{Inbox, InboxError};
use crate::wechat::crypto::{CryptoError, MsgCrypt};
use crate::wechat::fields::{self, FieldError};
use crate::wechat::message::{self, Message, ParseError};
use crate::wechat::mode::MessageMode;
use crate::wechat::signature;

/// WeChat documents no limit; real pushes are a few KiB, so anything larger is not WeChat.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// WeChat gives up after 5 s; answer (even with an error) before that so it retries cleanly.
const STORE_DEADLINE: Duration = Duration::from_millis(4_000);

/// What the callback needs, shared by every worker. Each account's token, key and message mode
/// come from the registry ([`Accounts`]) on every request.
pub struct CallbackState {
    pub replay_window: Option<Duration>,
    pub inbox: Inbox,
    pub metrics: std::sync::Arc<crate::app::metrics::Metrics>,
}

/// The query string WeChat signs its requests with.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    signature: Option<String>,
    timestamp: Option<String>,
    nonce: Option<String>,
    echostr: Option<String>,
    encrypt_type: Option<String>,
    msg_signature: Option<String>,
}

/// Why a callback request was refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// `/wechat/{name}` for no account: answered 404 with no detail.
    #[error("")]
    UnknownAccount,
    #[error("this account has no callback token set")]
    NoToken,
    #[error("missing query parameter `{0}`")]
    MissingParameter(&'static str),
    #[error("`timestamp` is not a number")]
    BadTimestamp,
    #[error("`timestamp` is outside the replay window")]
    Stale,
    #[error("signature does not match")]
    BadSignature,
    #[error("this account accepts only encrypted pushes (encrypt_type=aes with msg_signature)")]
    Downgrade,
    #[error("unknown `encrypt_type`")]
    UnknownEncryptType,
    #[error("safe mode is not configured for this account (it has no EncodingAESKey)")]
    SafeModeOff,
    #[error("body is larger than 64 KiB")]
    TooLarge,
    #[error("body could not be read")]
    Body(#[source] actix_web::Error),
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is not a WeChat push")]
    Parse(#[from] ParseError),
    #[error("encrypted body has no `Encrypt`")]
    NoEncrypt,
    #[error("cannot decrypt the push")]
    Decrypt(#[from] CryptoError),
    #[error("a field of the push breaks WeChat's rules: {0}")]
    Field(#[from] FieldError),
    #[error("the push could not be stored")]
    Store(#[from] InboxError),
}

impl CallbackError {
    /// The `result` label of `tagcast_callback_replies`.
    fn metric_result(&self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::Stale => "stale",
            Self::BadSignature | Self::NoToken => "bad_signature",
            Self::MissingParameter(_) | Self::BadTimestamp | Self::UnknownEncryptType | Self::SafeModeOff => {
                "bad_request"
            }
            Self::Body(_) => "bad_request",
            Self::TooLarge => "too_large",
            Self::NotUtf8 | Self::Parse(_) | Self::NoEncrypt => "bad_xml",
            Self::Decrypt(_) => "bad_encryption",
            Self::Downgrade => "downgrade",
            Self::Field(_) | Self::Store(InboxError::Unstorable(_)) => "bad_field",
            Self::Store(InboxError::Replayed) => "replayed",
            Self::Store(_) => "unavailable",
        }
    }
}

impl ResponseError for CallbackError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::UnknownAccount => StatusCode::NOT_FOUND,
            Self::Stale | Self::BadSignature | Self::NoToken | Self::Downgrade | Self::Store(InboxError::Replayed) => {
                StatusCode::FORBIDDEN
            }
            Self::Store(InboxError::Unstorable(_)) => StatusCode::BAD_REQUEST,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self, Self::UnknownAccount) {
            // Answered before the body is read: the connection cannot carry another request
            // after an unread body, so say it closes rather than let the client reuse it.
            return HttpResponse::NotFound().force_close().finish();
        }
        HttpResponse::build(self.status_code()).content_type(ContentType::plaintext()).body(self.to_string())
    }
}

fn required<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, CallbackError> {
    value.as_deref().ok_or(CallbackError::MissingParameter(name))
}

impl CallbackState {
    fn check_timestamp(&self, timestamp: &str) -> Result<(), CallbackError> {
        let sent: i64 = timestamp.parse().map_err(|_| CallbackError::BadTimestamp)?;
        if let Some(window) = self.replay_window {
            let skew = chrono::Utc::now().timestamp().abs_diff(sent);
            if skew > window.as_secs() {
                return Err(CallbackError::Stale);
            }
        }
        Ok(())
    }

    /// Checks the plain three-part signature that every WeChat request carries.
    fn check_signature(&self, token: &SecretString, query: &CallbackQuery) -> Result<(), CallbackError> {
        let timestamp = required(&query.timestamp, "timestamp")?;
        let nonce = required(&query.nonce, "nonce")?;
        let given = required(&query.signature, "signature")?;
        self.check_timestamp(timestamp)?;
        if signature::verify(token.expose_secret(), timestamp, nonce, given) {
            Ok(())
        } else {
            Err(CallbackError::BadSignature)
        }
    }
}

/// The account whose URL this is (`/wechat` is the first's), and its callback token.
fn endpoint(accounts: &Accounts, req: &HttpRequest) -> Result<(Arc<LiveAccount>, SecretString), CallbackError> {
    let account = match req.match_info().get("account") {
        Some(name) => accounts.by_name(name).ok_or(CallbackError::UnknownAccount)?,
        None => accounts.first(),
    };
    let token = account.token.clone().ok_or(CallbackError::NoToken)?;
    Ok((account, token))
}

/// `GET /wechat[/{account}]`: WeChat checks the URL by asking us to echo `echostr` under a valid
/// signature.
#[tracing::instrument(skip_all)]
pub async fn verify_url(
    req: HttpRequest,
    state: web::Data<CallbackState>,
    accounts: web::Data<Accounts>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, CallbackError> {
    let (account, token) = endpoint(&accounts, &req)?;
    state.check_signature(&token, &query)?;
    let echostr = required(&query.echostr, "echostr")?;
    // In plain mode a signature could carry a push: one seen on a URL check (in a proxy's log, say)
    // must not carry one later. A database failure does not stop the check, which WeChat needs.
    if account.message_mode == MessageMode::Plain {
        let signature = query.signature.as_deref().and_then(|s| hex::decode(s).ok()).unwrap_or_default();
        if let Err(error) = state.inbox.claim_signature(&signature).await {
            tracing::warn!(%error, "could not claim the URL check's signature");
        }
    }
    Ok(HttpResponse::Ok().content_type(ContentType::plaintext()).body(echostr.to_owned()))
}

/// `POST /wechat[/{account}]`: one push from WeChat.
#[tracing::instrument(level = "debug", skip_all, fields(account, event.kind, user.openid, retry))]
pub async fn receive_push(
    req: HttpRequest,
    state: web::Data<CallbackState>,
    accounts: web::Data<Accounts>,
    query: web::Query<CallbackQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, CallbackError> {
    let started = std::time::Instant::now();
    let mut kind = "none";
    let outcome = match endpoint(&accounts, &req) {
        Ok((account, token)) => {
            tracing::Span::current().record("account", account.name.as_str());
            store_push(&state, &account, &token, &query, payload, &mut kind).await
        }
        Err(error) => Err(error),
    };
    let result = match &outcome {
        Ok((_, true)) => "ok",
        Ok((_, false)) => "dup",
        Err(error) => error.metric_result(),
    };
    state.metrics.callback.observe(kind, result, started.elapsed());
    outcome.map(|(response, _)| response)
}

/// The work of [`receive_push`]: the answer, and whether the push was new. `kind` is set once
/// the push is parsed.
async fn store_push(
    state: &CallbackState,
    account: &LiveAccount,
    token: &SecretString,
    query: &CallbackQuery,
    payload: web::Payload,
    kind: &mut &'static str,
) -> Result<(HttpResponse, bool), CallbackError> {
    let mode = account.message_mode;
    let encrypted = match query.encrypt_type.as_deref() {
        Some("aes") => true,
        _ if mode.requires_encryption() => return Err(CallbackError::Downgrade),
        None | Some("raw") => false,
        Some(_) => return Err(CallbackError::UnknownEncryptType),
    };
    if mode.requires_encryption() && query.msg_signature.is_none() {
        return Err(CallbackError::Downgrade);
    }
    // WeChat sends the plain signature in every mode; safe mode adds msg_signature over the ciphertext.
    if !encrypted || query.signature.is_some() {
        state.check_signature(token, query)?;
    }
    let body = payload.to_bytes_limited(MAX_BODY_BYTES).await.map_err(|_| CallbackError::TooLarge)?;
    let body = body.map_err(CallbackError::Body)?;
    let text = std::str::from_utf8(&body).map_err(|_| CallbackError::NotUtf8)?;
    fields::check_body(text)?;

    let (message, crypt) = if encrypted {
        let crypt = account.crypt.as_ref().ok_or(CallbackError::SafeModeOff)?;
        (open_safe_mode(state, token, crypt, query, text)?, Some(crypt))
    } else {
        (message::parse(text)?, None)
    };
    fields::check_message(&message)?;
    // The plain signature covers timestamp and nonce, not the body: it may carry one push only.
    // check_signature found it to be 40 hex digits.
    let claimed_signature = match (encrypted, query.signature.as_deref()) {
        (false, Some(signature)) => hex::decode(signature).ok(),
        _ => None,
    };
    *kind = message.kind();
    let span = tracing::Span::current();
    span.record("event.kind", *kind);
    span.record("user.openid", message.from_user.as_str());

    let stored = state.inbox.submit(account.id, message, claimed_signature, STORE_DEADLINE).await?;
    span.record("retry", !stored.first_time);
    let response = match (stored.reply, crypt) {
        (None, _) => HttpResponse::Ok().content_type(ContentType::plaintext()).body("success"),
        (Some(xml), None) => HttpResponse::Ok().content_type(ContentType::xml()).body(xml),
        (Some(xml), Some(crypt)) => {
            // Both parameters were checked present by open_safe_mode.
            let timestamp = query.timestamp.as_deref().unwrap_or_default();
            let nonce = query.nonce.as_deref().unwrap_or_default();
            let sealed = crypt.seal(token.expose_secret(), xml.as_bytes(), timestamp, nonce);
            HttpResponse::Ok().content_type(ContentType::xml()).body(sealed)
        }
    };
    Ok((response, stored.first_time))
}

/// Verifies `msg_signature` over the ciphertext, then decrypts and parses the inner push.
fn open_safe_mode(
    state: &CallbackState,
    token: &SecretString,
    crypt: &MsgCrypt,
    query: &CallbackQuery,
    body: &str,
) -> Result<Message, CallbackError> {
    let timestamp = required(&query.timestamp, "timestamp")?;
    let nonce = required(&query.nonce, "nonce")?;
    let msg_signature = required(&query.msg_signature, "msg_signature")?;
    state.check_timestamp(timestamp)?;
    let envelope = message::parse_envelope(body)?;
    let encrypt = envelope.encrypt.ok_or(CallbackError::NoEncrypt)?;
    if !signature::verify_msg(token.expose_secret(), timestamp, nonce, &encrypt, msg_signature) {
        return Err(CallbackError::BadSignature);
    }
    // In compatible mode the plaintext fields beside <Encrypt> are covered by no signature: only
    // the decrypted message is read.
    let plain = crypt.decrypt(&encrypt)?;
    let plain = std::str::from_utf8(&plain).map_err(|_| CallbackError::NotUtf8)?;
    fields::check_body(plain)?;
    Ok(message::parse(plain)?)
}
