//! The stateful mock of the WeChat Official Account API (CONTRACT.md §6): what
//! `tagcast mock-wechat`, demo mode and the tests talk to instead of `api.weixin.qq.com`.
//!
//! Owns the public face of the mock: [`MockConfig`], [`MockWeChat`] (start it, seed it, steer it,
//! inspect it) and the records it hands out ([`Call`], [`MassJob`]). The behaviour lives in the
//! sibling files, one per API family (`tokens`, `tags`, `users`, `mass`, `media`, `misc`,
//! `datacube`), the callback push in `callback`, fault injection and the call log in `control`,
//! and the actix wiring in `http`. All state sits in one `std::sync::Mutex` that is never held across an
//! `.await`.
//!
//! Must not: use anything from the rest of the crate except the `wechat` protocol module
//! (signatures and the safe-mode cipher, to sign and encrypt the pushes it sends), and never talk
//! to the real WeChat.
//!
//! Decisions where WeChat's documentation is silent are listed in the module docs of the file
//! that implements them; the summary:
//! - reserved tags 0, 1, 2 can't be edited or deleted (45058); only 2 (星标组) is listed by
//!   `tags/get` and can be tagged; 0 and 1 are 45159 for tagging; none counts toward the 100;
//! - a token replaced by a newer `/cgi-bin/token` call answers 40001 after its 5-minute overlap,
//!   an expired one 42001, a never-issued one 40014;
//! - `FilterCount` is WeChat's "left after filtering" (≈ SentCount + ErrorCount): followers over
//!   the service account's 4-per-month limit are in TotalCount but in neither FilterCount nor
//!   SentCount.

mod callback;
mod control;
mod datacube;
mod error;
mod http;
mod mass;
mod media;
mod misc;
mod quota;
mod state;
mod tags;
mod tokens;
mod users;

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use serde::Serialize;

pub use control::Call;
pub use mass::{MassAudience, MassJob, MassOutcome, MassProtection, MassStatus};
pub use misc::Interaction;
pub use quota::QuotaUsage;

use state::State;

/// Which kind of Official Account the mock plays; it decides the mass-send rules (wechat-api.md
/// §9.1, §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MockAccountType {
    /// 服务号: `mass/send` allowed; each follower receives at most 4 mass messages per month.
    Service,
    /// 订阅号/公众号: no `mass/send` (48001); one successful mass send per day (45028).
    Subscription,
}

/// Where the mock pushes event XML (MASSSENDJOBFINISH), signed like WeChat signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackTarget {
    /// The callback URL, e.g. `http://127.0.0.1:8080/wechat`; the signature goes in its query.
    pub url: String,
    /// The callback Token both sides sign with.
    pub token: String,
    /// When set, pushes are sent in safe mode (`encrypt_type=aes`), encrypted for the mock's appid.
    pub encoding_aes_key: Option<String>,
    /// The account's original id (`gh_...`): the pushes' `ToUserName`.
    pub account_id: String,
}

/// What the mock pretends to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockConfig {
    /// The AppID `cgi-bin/token` insists on (40013 otherwise).
    pub appid: String,
    /// The AppSecret `cgi-bin/token` insists on (40125 otherwise).
    pub secret: String,
    /// Service or subscription account: decides the mass-send rules.
    pub account_type: MockAccountType,
    /// Where MASSSENDJOBFINISH goes; `None` sends nothing (the job still finishes).
    pub callback: Option<CallbackTarget>,
}

/// A started mock: where it listens and how to stop it.
#[derive(Clone)]
pub struct RunningMock {
    /// The bound address (the real port when the listener was bound to port 0).
    pub addr: SocketAddr,
    /// Stops the actix server: `handle.stop(true).await`.
    pub handle: actix_web::dev::ServerHandle,
}

impl RunningMock {
    /// `http://addr`: what `WECHAT_API_BASE` should be set to.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The mock WeChat API. Cheap to clone: every clone shares the same state, so a test keeps one
/// clone to steer and inspect while the server holds another.
#[derive(Clone)]
pub struct MockWeChat {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Sends the callback pushes; shared so connections are reused.
    http: reqwest::Client,
    /// The runtime `start` ran on: callback pushes are spawned there, not on an actix worker
    /// (whose runtime dies with the server).
    runtime: OnceLock<tokio::runtime::Handle>,
    /// How many job-finish tasks are still running; [`MockWeChat::wait_for_callbacks`] waits for 0.
    pending: tokio::sync::watch::Sender<usize>,
}

impl MockWeChat {
    /// A mock with no followers, the reserved tags, no tokens and an empty call log.
    pub fn new(config: MockConfig) -> Self {
        let (pending, _) = tokio::sync::watch::channel(0);
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::new(config)),
                http: reqwest::Client::new(),
                runtime: OnceLock::new(),
                pending,
            }),
        }
    }

    /// Serves the API on `listener` (bind port 0 in tests) and returns at once: the actix server
    /// is spawned on the current tokio runtime, which also runs the callback pushes. Signals are
    /// not handled: stop it with the returned handle (or by ending the runtime).
    ///
    /// # Errors
    /// When called outside a tokio runtime, or when the listener can't be used.
    pub fn start(&self, listener: TcpListener) -> std::io::Result<RunningMock> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let addr = listener.local_addr()?;
        let mock = self.clone();
        let server = actix_web::HttpServer::new(move || {
            let mock = mock.clone();
            actix_web::App::new().configure(move |cfg| mock.configure(cfg))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        runtime.spawn(server);
        let _ = self.inner.runtime.set(runtime);
        self.state().base_url = Some(format!("http://{addr}"));
        Ok(RunningMock { addr, handle })
    }

    /// Registers the whole mock (API, `/mock/` control surface, the 404 fallback) on an actix
    /// `ServiceConfig`, for embedding it in another app. Prefer [`MockWeChat::start`]: callback
    /// pushes need the runtime it records (without it they run on the worker's runtime).
    pub fn configure(&self, cfg: &mut actix_web::web::ServiceConfig) {
        http::configure(self.clone(), cfg);
    }

    /// `http://addr` once [`MockWeChat::start`] ran.
    pub fn base_url(&self) -> Option<String> {
        self.state().base_url.clone()
    }

    /// Adds `n` subscribed followers with deterministic openids (`oMock` + 23 characters; the
    /// k-th follower ever seeded always gets the same one), subscribe times spread over the past
    /// year and a plausible `subscribe_scene`. Returns the new openids. 100,000 take well under a
    /// second; 1,000,000 are fine.
    pub fn seed_followers(&self, n: usize) -> Vec<String> {
        let mut state = self.state();
        let now = state.now();
        state.followers.seed(n, now)
    }

    /// Adds a subscribed follower now, or re-subscribes an unsubscribed one (new subscribe time).
    /// Following opens a customer-service window (3 sends within a minute), as on WeChat.
    pub fn add_follower(&self, openid: &str) {
        let mut state = self.state();
        let now = state.now();
        state.followers.subscribe(openid, now);
        state.windows.open(openid, Interaction::Follow, now);
    }

    /// Gives a follower (current or former) a unionid, as WeChat does once the account is bound
    /// to an Open Platform account: `user/info` and `user/info/batchget` then return it. False
    /// when the mock has no such follower.
    pub fn set_unionid(&self, openid: &str, unionid: &str) -> bool {
        let mut state = self.state();
        let Some(index) = state.followers.index_of(openid) else { return false };
        state.followers.at_mut(index).unionid = Some(std::sync::Arc::from(unionid));
        true
    }

    /// The follower unsubscribes: `user/info` answers `subscribe: 0`, they leave `user/get`, and
    /// lose every tag (tag counts drop), as on WeChat.
    pub fn unsubscribe(&self, openid: &str) {
        let mut state = self.state();
        let now = state.now();
        state.unsubscribe(openid, now);
    }

    /// Points the MASSSENDJOBFINISH pushes somewhere else (tests learn tagcast's port only after
    /// the mock is already running); `None` stops pushing.
    pub fn set_callback(&self, callback: Option<CallbackTarget>) {
        self.state().config.callback = callback;
    }

    /// Every token issued so far answers 42001 on its next use; the next `stable_token` call
    /// issues a new one.
    pub fn expire_tokens(&self) {
        self.state().tokens.expire_all();
    }

    /// The next `times` calls of `path` (e.g. `/cgi-bin/tags/create`) answer HTTP 200 with
    /// `{errcode, errmsg}` and do nothing else. Queued behind earlier injections for that path.
    pub fn fail_next(&self, path: &str, times: usize, errcode: i64) {
        self.state().control.inject(path, times, control::FaultKind::Errcode(errcode));
    }

    /// The next `times` calls of `path` answer with HTTP `status` (e.g. 502) and a plain-text body.
    pub fn fail_next_http(&self, path: &str, times: usize, status: u16) {
        self.state().control.inject(path, times, control::FaultKind::Http(status));
    }

    /// The next `times` calls of `path` are carried out (a mass job is created, a tag is made),
    /// but each answer is held for `hold` and then lost (HTTP 504): with `hold` longer than the
    /// caller's timeout, the caller sees a timeout for a call WeChat took.
    pub fn lose_next_answers(&self, path: &str, times: usize, hold: Duration) {
        self.state().control.inject(path, times, control::FaultKind::LoseAnswer(hold));
    }

    /// Drops the failures still queued for `path`.
    pub fn clear_failures(&self, path: &str) {
        self.state().control.clear(path);
    }

    /// Added to every API call (not to `/mock/` control calls) before it is handled.
    pub fn set_latency(&self, latency: Duration) {
        self.state().control.latency = latency;
    }

    /// Page size of `user/get` and `user/tag/get` (WeChat's is 10,000), so tests can page cheaply.
    pub fn set_page_size(&self, size: usize) {
        self.state().control.page_size = size.max(1);
    }

    /// How long after a mass send the job finishes and MASSSENDJOBFINISH is pushed (default 50 ms).
    pub fn set_callback_delay(&self, delay: Duration) {
        self.state().control.callback_delay = delay;
    }

    /// Moves the mock's clock forward (token lifetimes, the 24 h `clientmsgid` window, daily and
    /// monthly quotas, datacube's "yesterday"). Real time keeps running on top of it.
    pub fn advance_time(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        let mut state = self.state();
        state.clock_offset_secs = state.clock_offset_secs.saturating_add(secs);
    }

    /// The mock's current time, unix seconds (wall clock plus [`MockWeChat::advance_time`]).
    pub fn now(&self) -> i64 {
        self.state().now()
    }

    /// The next mass job finishes with this `Status` (e.g. `err(30003)` or `send fail`) instead of
    /// `send success`: nothing is delivered and `mass/get` answers `SEND_FAIL`.
    pub fn fail_next_mass_job(&self, status: &str) {
        self.set_next_mass_outcome(MassOutcome { status: Some(status.to_owned()), ..MassOutcome::default() });
    }

    /// Queues how the next mass job (behind any queued before) ends: its `Status`, how many of
    /// its followers are not reached (`ErrorCount`), its `CopyrightCheckResult`.
    pub fn set_next_mass_outcome(&self, outcome: MassOutcome) {
        self.state().mass.next_outcomes.push_back(outcome);
    }

    /// Sets the account's mass-send protection (群发保护): under `Reject` or `NoAnswer` every
    /// `is_to_all` send is accepted and then ends `err(40001)` / `err(40002)`.
    pub fn set_mass_protection(&self, protection: MassProtection) {
        self.state().mass.protection = protection;
    }

    /// `(method, path)` of every API call the mock serves.
    pub fn api_routes(&self) -> Vec<(&'static str, &'static str)> {
        http::routes()
    }

    /// Every API call so far, oldest first, including refused and injected ones.
    pub fn calls(&self) -> Vec<Call> {
        self.state().control.calls.clone()
    }

    /// How many calls of `path` were made (leading `/` optional).
    pub fn call_count(&self, path: &str) -> usize {
        let path = control::normalize(path);
        self.state().control.calls.iter().filter(|c| c.path == path).count()
    }

    /// Forgets the call log (not the token count).
    pub fn clear_calls(&self) {
        self.state().control.calls.clear();
    }

    /// How many tokens were issued: every `cgi-bin/token` call plus every `stable_token` call
    /// that minted a new one (one returning the current token issues nothing).
    pub fn token_fetches(&self) -> usize {
        self.state().tokens.issued
    }

    /// What `tags/get` lists: `(id, name, member count)` by id, including the reserved
    /// `(2, "星标组", n)`.
    pub fn tags(&self) -> Vec<(i64, String, usize)> {
        self.state().tags.list().map(|(id, tag)| (id, tag.name.clone(), tag.members.len())).collect()
    }

    /// The tag ids of a follower, in the order they were added (empty for strangers).
    pub fn user_tags(&self, openid: &str) -> Vec<i64> {
        let state = self.state();
        state.followers.get(openid).map(|f| f.tags.clone()).unwrap_or_default()
    }

    /// Creates a tag without the API's call log (still refusing what `tags/create` refuses);
    /// returns its id. For arranging tests.
    ///
    /// # Errors
    /// The errcode `tags/create` would answer (45157, 45158, 45056).
    pub fn create_tag(&self, name: &str) -> Result<i64, i64> {
        self.state().tags.create(name).map_err(|e| e.code)
    }

    /// Tags followers without the 50-per-call and 20-per-user limits, for arranging tests (a tag
    /// with 100,001 members, say). Unknown or unsubscribed openids are skipped; returns how many
    /// were tagged.
    pub fn tag_followers(&self, tag_id: i64, openids: &[String]) -> usize {
        let mut state = self.state();
        state.tag_unchecked(tag_id, openids)
    }

    /// Takes a tag off followers outside any API call: an operator editing them in WeChat's console.
    pub fn untag_followers(&self, tag_id: i64, openids: &[String]) {
        self.state().untag_unchecked(tag_id, openids);
    }

    /// Every mass job (sendall and send), oldest first.
    pub fn mass_jobs(&self) -> Vec<MassJob> {
        self.state().mass.jobs.iter().map(|j| j.job.clone()).collect()
    }

    /// The openids a mass job was delivered to (after filtering), in follower order.
    pub fn mass_recipients(&self, msg_id: u64) -> Vec<String> {
        let state = self.state();
        state.mass.find(msg_id).map(|j| state.followers.openids_of(&j.recipients)).unwrap_or_default()
    }

    /// Adds a draft to the draft box, one article per title (each with its own thumb material),
    /// without the call log; returns its media_id. For arranging tests and demo mode.
    pub fn add_draft(&self, titles: &[&str]) -> String {
        let mut state = self.state();
        let now = state.now();
        state.media.seed_draft(titles, now)
    }

    /// The draft box: `(media_id, article titles)`, by media_id.
    pub fn drafts(&self) -> Vec<(String, Vec<String>)> {
        self.state().media.drafts.iter().map(|(id, d)| (id.clone(), d.titles())).collect()
    }

    /// Removes a draft as someone in WeChat's console would; whether it was there.
    pub fn delete_draft(&self, media_id: &str) -> bool {
        self.state().media.drafts.remove(media_id).is_some()
    }

    /// Adds a permanent material of `kind` (`image`, `voice`, `video`, `thumb`) without the call
    /// log; returns its media_id.
    pub fn add_material(&self, kind: &str, name: &str) -> String {
        let mut state = self.state();
        let now = state.now();
        state.media.add_material(kind, name, now).media_id
    }

    /// Every customer-service message accepted by `message/custom/send`: `(touser, whole body)`.
    pub fn custom_messages(&self) -> Vec<(String, serde_json::Value)> {
        self.state().custom_messages.clone()
    }

    /// Every request body accepted by `message/mass/preview`.
    pub fn previews(&self) -> Vec<serde_json::Value> {
        self.state().previews.clone()
    }

    /// The menu `menu/create` last stored, as `menu/get` returns it under `menu`.
    pub fn menu(&self) -> Option<serde_json::Value> {
        self.state().menu.clone()
    }

    /// Issues a one-time web-OAuth `code` for `openid` (`sns/oauth2/access_token` exchanges it
    /// once within 5 minutes; then 40163).
    pub fn oauth_code(&self, openid: &str) -> String {
        let mut state = self.state();
        let now = state.now();
        state.oauth.issue(openid, now)
    }

    /// Waits until every mass job has finished and its MASSSENDJOBFINISH push was delivered or
    /// given up on, so tests never sleep.
    pub async fn wait_for_callbacks(&self) {
        let mut pending = self.inner.pending.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// `openid` interacted with the account now (sent a message, clicked a menu, scanned a
    /// code): opens the customer-service window that interaction opens (wechat-api.md §10). The
    /// mock cannot see pushes a test sends straight to tagcast, so the test tells it here.
    pub fn open_interaction(&self, openid: &str, what: Interaction) {
        let mut state = self.state();
        let now = state.now();
        state.windows.open(openid, what, now);
    }

    /// Customer-service sends `openid` may still receive now, over its open windows.
    pub fn custom_sends_left(&self, openid: &str) -> u32 {
        let state = self.state();
        state.windows.left(openid, state.now())
    }

    /// Sets `path`'s daily call quota (e.g. `/cgi-bin/message/mass/sendall` to 2, so a test
    /// meets 45009 after two calls).
    pub fn set_daily_quota(&self, path: &str, limit: u64) {
        self.state().quotas.set_daily_limit(&control::normalize(path), limit);
    }

    /// `path`'s daily limit and the calls charged to it on the mock's current Beijing day.
    pub fn quota_usage(&self, path: &str) -> QuotaUsage {
        let state = self.state();
        state.quotas.usage(&control::normalize(path), state.now())
    }

    /// `clear_quota` resets used in the mock's current Beijing month.
    pub fn quota_clears_this_month(&self) -> u32 {
        let state = self.state();
        state.quotas.clears_this_month(state.now())
    }

    /// The state, even if a panicking test poisoned the lock: a mock should keep answering.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
