//! Steering and watching the mock: the call log ([`Call`]), injected failures, latency, page
//! size, and the `/mock/` HTTP control surface that exposes the same knobs as `MockWeChat`'s
//! methods to scripts and to `tagcast mock-wechat`.
//!
//! Control endpoints (JSON bodies; answers are JSON; a malformed body is 400):
//! `POST /mock/seed {followers}`, `POST /mock/follow {openid}`, `POST /mock/unfollow {openid}`,
//! `POST /mock/expire_tokens`, `POST /mock/fail {path, times, errcode}` or `{path, times,
//! http_status}` or `{path, times, lose_answer_after_ms}`, `POST /mock/fail_mass {status}`,
//! `POST /mock/mass_outcome {status, error_count, copyright_items, check_state}` (all optional;
//! see `MassOutcome`), `POST /mock/mass_protection {protection: off|confirm|reject|no_answer}`,
//! `POST /mock/latency {ms}`,
//! `POST /mock/page_size {size}`, `POST /mock/callback_delay {ms}`, `POST /mock/advance
//! {seconds}`, `GET /mock/calls`, `POST /mock/reset_calls`, `POST /mock/oauth_code {openid}` →
//! `{code}`, `GET /mock/state`, `POST /mock/quota {path, daily_limit}` (sets a path's daily
//! quota) and `GET /mock/quota` (every path used today or given a limit, with the month's
//! `clear_quota` resets), `POST /mock/interaction {openid, kind}` (`message`, `click`, `follow`
//! or `scan`: opens that customer-service window), `POST /mock/draft {titles}` → `{media_id}` (a
//! draft of one article per title, for demo mode and scripts).
//!
//! Control calls are not recorded in the call log and get no latency.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{MassOutcome, MassProtection, MockWeChat};

/// WeChat's page size for `user/get` (and what SDKs assume for `user/tag/get`).
const DEFAULT_PAGE_SIZE: usize = 10_000;
/// How long after a mass send the job finishes, by default.
const DEFAULT_CALLBACK_DELAY: Duration = Duration::from_millis(50);

/// One API call as the mock received and answered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// The path, e.g. `/cgi-bin/tags/create`.
    pub path: String,
    /// The raw query string, access token included (tests compare it).
    pub query: String,
    /// The JSON body; `Null` when empty, a string when it was not JSON.
    pub body: serde_json::Value,
    /// The errcode answered (0 on success); -1 for an injected HTTP failure.
    pub errcode: i64,
    /// The HTTP status answered.
    pub status: u16,
    /// When the mock answered it (after any injected latency): benchmarks check the pace of
    /// calls from these.
    #[serde(skip)]
    pub answered_at: std::time::Instant,
}

/// What an injected failure answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultKind {
    /// HTTP 200 with this errcode.
    Errcode(i64),
    /// This HTTP status.
    Http(u16),
    /// The call is carried out, but its answer is held this long and then lost (HTTP 504): a
    /// client whose timeout is shorter sees a timeout, as when WeChat took a call whose answer
    /// never reached the caller.
    LoseAnswer(Duration),
}

/// The knobs and the log.
pub(super) struct Control {
    pub calls: Vec<Call>,
    faults: HashMap<String, VecDeque<(FaultKind, usize)>>,
    pub latency: Duration,
    pub page_size: usize,
    pub callback_delay: Duration,
}

impl Default for Control {
    fn default() -> Self {
        Self {
            calls: Vec::new(),
            faults: HashMap::new(),
            latency: Duration::ZERO,
            page_size: DEFAULT_PAGE_SIZE,
            callback_delay: DEFAULT_CALLBACK_DELAY,
        }
    }
}

impl Control {
    /// Queues `times` failures for `path`.
    pub fn inject(&mut self, path: &str, times: usize, kind: FaultKind) {
        if times > 0 {
            self.faults.entry(normalize(path)).or_default().push_back((kind, times));
        }
    }

    /// Drops the failures still queued for `path`.
    pub fn clear(&mut self, path: &str) {
        self.faults.remove(&normalize(path));
    }

    /// Takes the next injected failure for `path`, if any.
    pub fn take_fault(&mut self, path: &str) -> Option<FaultKind> {
        let queue = self.faults.get_mut(path)?;
        let (kind, left) = queue.front_mut()?;
        let kind = *kind;
        *left -= 1;
        if *left == 0 {
            queue.pop_front();
        }
        Some(kind)
    }
}

/// `cgi-bin/x` and `/cgi-bin/x` name the same path.
pub(super) fn normalize(path: &str) -> String {
    if path.starts_with('/') { path.to_owned() } else { format!("/{path}") }
}

#[derive(Deserialize)]
struct SeedBody {
    followers: usize,
}

#[derive(Deserialize)]
struct OpenidBody {
    openid: String,
}

#[derive(Deserialize)]
struct FailBody {
    path: String,
    #[serde(default = "one")]
    times: usize,
    errcode: Option<i64>,
    http_status: Option<u16>,
    /// Carry the call out, then hold the answer this long and lose it.
    lose_answer_after_ms: Option<u64>,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
struct FailMassBody {
    status: String,
}

#[derive(Deserialize)]
struct ProtectionBody {
    protection: MassProtection,
}

#[derive(Deserialize)]
struct MillisBody {
    ms: u64,
}

#[derive(Deserialize)]
struct PageSizeBody {
    size: usize,
}

#[derive(Deserialize)]
struct AdvanceBody {
    seconds: u64,
}

/// Registers the `/mock/` scope.
pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/mock")
            .route("/seed", web::post().to(seed))
            .route("/follow", web::post().to(follow))
            .route("/unfollow", web::post().to(unfollow))
            .route("/expire_tokens", web::post().to(expire_tokens))
            .route("/fail", web::post().to(fail))
            .route("/fail_mass", web::post().to(fail_mass))
            .route("/mass_outcome", web::post().to(mass_outcome))
            .route("/mass_protection", web::post().to(mass_protection))
            .route("/latency", web::post().to(latency))
            .route("/page_size", web::post().to(page_size))
            .route("/callback_delay", web::post().to(callback_delay))
            .route("/advance", web::post().to(advance))
            .route("/calls", web::get().to(calls))
            .route("/reset_calls", web::post().to(reset_calls))
            .route("/oauth_code", web::post().to(oauth_code))
            .route("/state", web::get().to(state))
            .route("/quota", web::post().to(set_quota))
            .route("/quota", web::get().to(quota))
            .route("/interaction", web::post().to(interaction))
            .route("/draft", web::post().to(add_draft)),
    );
}

fn done() -> HttpResponse {
    HttpResponse::Ok().json(json!({"ok": true}))
}

async fn seed(mock: web::Data<MockWeChat>, body: web::Json<SeedBody>) -> HttpResponse {
    let seeded = mock.seed_followers(body.followers);
    let total = mock.state().followers.subscribed_count();
    HttpResponse::Ok().json(json!({"seeded": seeded.len(), "first": seeded.first(), "subscribed": total}))
}

async fn follow(mock: web::Data<MockWeChat>, body: web::Json<OpenidBody>) -> HttpResponse {
    mock.add_follower(&body.openid);
    done()
}

async fn unfollow(mock: web::Data<MockWeChat>, body: web::Json<OpenidBody>) -> HttpResponse {
    mock.unsubscribe(&body.openid);
    done()
}

async fn expire_tokens(mock: web::Data<MockWeChat>) -> HttpResponse {
    mock.expire_tokens();
    done()
}

async fn fail(mock: web::Data<MockWeChat>, body: web::Json<FailBody>) -> HttpResponse {
    match (body.errcode, body.http_status, body.lose_answer_after_ms) {
        (Some(code), None, None) => mock.fail_next(&body.path, body.times, code),
        (None, Some(status), None) if (100..=999).contains(&status) => {
            mock.fail_next_http(&body.path, body.times, status);
        }
        (None, None, Some(ms)) => mock.lose_next_answers(&body.path, body.times, Duration::from_millis(ms)),
        _ => {
            return HttpResponse::BadRequest()
                .json(json!({"error": "give exactly one of errcode, http_status, lose_answer_after_ms"}));
        }
    }
    done()
}

async fn fail_mass(mock: web::Data<MockWeChat>, body: web::Json<FailMassBody>) -> HttpResponse {
    mock.fail_next_mass_job(&body.status);
    done()
}

async fn mass_outcome(mock: web::Data<MockWeChat>, body: web::Json<MassOutcome>) -> HttpResponse {
    mock.set_next_mass_outcome(body.into_inner());
    done()
}

async fn mass_protection(mock: web::Data<MockWeChat>, body: web::Json<ProtectionBody>) -> HttpResponse {
    mock.set_mass_protection(body.protection);
    done()
}

async fn latency(mock: web::Data<MockWeChat>, body: web::Json<MillisBody>) -> HttpResponse {
    mock.set_latency(Duration::from_millis(body.ms));
    done()
}

async fn page_size(mock: web::Data<MockWeChat>, body: web::Json<PageSizeBody>) -> HttpResponse {
    mock.set_page_size(body.size);
    done()
}

async fn callback_delay(mock: web::Data<MockWeChat>, body: web::Json<MillisBody>) -> HttpResponse {
    mock.set_callback_delay(Duration::from_millis(body.ms));
    done()
}

async fn advance(mock: web::Data<MockWeChat>, body: web::Json<AdvanceBody>) -> HttpResponse {
    mock.advance_time(Duration::from_secs(body.seconds));
    HttpResponse::Ok().json(json!({"now": mock.now()}))
}

async fn calls(mock: web::Data<MockWeChat>) -> HttpResponse {
    HttpResponse::Ok().json(mock.calls())
}

async fn reset_calls(mock: web::Data<MockWeChat>) -> HttpResponse {
    mock.clear_calls();
    done()
}

#[derive(Deserialize)]
struct DraftBody {
    titles: Vec<String>,
}

/// A draft needs 1 to 8 articles, as `draft/add` does; anything else is 400.
async fn add_draft(mock: web::Data<MockWeChat>, body: web::Json<DraftBody>) -> HttpResponse {
    if body.titles.is_empty() || body.titles.len() > super::media::MAX_ARTICLES {
        return HttpResponse::BadRequest().json(json!({"error": "titles: 1 to 8 article titles"}));
    }
    let titles: Vec<&str> = body.titles.iter().map(String::as_str).collect();
    HttpResponse::Ok().json(json!({"media_id": mock.add_draft(&titles)}))
}

async fn oauth_code(mock: web::Data<MockWeChat>, body: web::Json<OpenidBody>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"code": mock.oauth_code(&body.openid)}))
}

async fn state(mock: web::Data<MockWeChat>) -> HttpResponse {
    let tags: Vec<_> =
        mock.tags().into_iter().map(|(id, name, count)| json!({"id": id, "name": name, "count": count})).collect();
    let jobs = mock.mass_jobs();
    let state = mock.state();
    let body = json!({
        "appid": state.config.appid,
        "account_type": state.config.account_type,
        "now": state.now(),
        "followers": {"subscribed": state.followers.subscribed_count(), "ever": state.followers.all().len()},
        "tags": tags,
        "mass_jobs": jobs,
        "custom_messages": state.custom_messages.len(),
        "previews": state.previews.len(),
        "drafts": state.media.drafts.len(),
        "menu": state.menu,
        "token_fetches": state.tokens.issued,
        "calls": state.control.calls.len(),
    });
    drop(state);
    HttpResponse::Ok().json(body)
}

#[derive(Deserialize)]
struct QuotaBody {
    path: String,
    daily_limit: u64,
}

async fn set_quota(mock: web::Data<MockWeChat>, body: web::Json<QuotaBody>) -> HttpResponse {
    mock.set_daily_quota(&body.path, body.daily_limit);
    HttpResponse::Ok().json(mock.quota_usage(&body.path))
}

async fn quota(mock: web::Data<MockWeChat>) -> HttpResponse {
    let state = mock.state();
    let now = state.now();
    let body = json!({
        "paths": state.quotas.all_usage(now),
        "clears_this_month": state.quotas.clears_this_month(now),
    });
    drop(state);
    HttpResponse::Ok().json(body)
}

#[derive(Deserialize)]
struct InteractionBody {
    openid: String,
    kind: super::Interaction,
}

async fn interaction(mock: web::Data<MockWeChat>, body: web::Json<InteractionBody>) -> HttpResponse {
    mock.open_interaction(&body.openid, body.kind);
    HttpResponse::Ok().json(json!({"sends_left": mock.custom_sends_left(&body.openid)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injected_failures_are_used_in_order_then_run_out() {
        let mut control = Control::default();
        control.inject("cgi-bin/tags/create", 2, FaultKind::Errcode(45009));
        control.inject("/cgi-bin/tags/create", 1, FaultKind::Http(502));
        control.inject("/cgi-bin/tags/create", 0, FaultKind::Http(500));
        let path = "/cgi-bin/tags/create";
        assert_eq!(control.take_fault(path), Some(FaultKind::Errcode(45009)));
        assert_eq!(control.take_fault(path), Some(FaultKind::Errcode(45009)));
        assert_eq!(control.take_fault(path), Some(FaultKind::Http(502)));
        assert_eq!(control.take_fault(path), None);
        assert_eq!(control.take_fault("/cgi-bin/tags/get"), None);
    }
}
