//! A typed client for WeChat's HTTP API (CONTRACT.md §6 lists what the mock mirrors).
//!
//! Every call: takes the shared access token (see [`token`]), waits for its path's pace (see
//! [`limit`]), checks `errcode` even on HTTP 200, refreshes the token once on 40001/40014/42001,
//! and backs off on -1, 45011, 5xx and timeouts. A 45009 (daily quota used up) is not retried:
//! it stops the path until Beijing midnight for every process (see [`quota`]). Bodies go out as
//! raw UTF-8 JSON (WeChat refuses `\uXXXX` escapes with 40033).

mod datacube;
mod error;
pub mod limit;
mod mass;
mod media;
mod messaging;
pub mod metrics;
pub mod quota;
mod tags;
pub mod token;
mod users;

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use url::Url;

pub use datacube::*;
pub use error::{ErrCode, QUOTA_EXHAUSTED_PREFIX, WeChatError};
pub use limit::{RateLimits, RateSpecError, RetryPolicy};
pub use mass::*;
pub use media::*;
pub use messaging::*;
pub use metrics::ApiMetrics;
pub use quota::{MemoryQuotaStops, QuotaStops};
pub use tags::*;
pub use token::{AccessToken, MemoryTokenStore, TokenStore};
pub use users::*;

use limit::RateLimiter;
use token::{BoxFuture, TokenCache};

/// Which token endpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenMode {
    /// `cgi-bin/stable_token`: does not rotate on every call, independent of `cgi-bin/token`.
    #[default]
    Stable,
    /// `cgi-bin/token`: every call rotates the token (old one lives ~5 minutes).
    Classic,
}

/// How long one request may take; WeChat usually answers in well under a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the client needs to know.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub base: Url,
    pub appid: String,
    pub secret: SecretString,
    pub rate_limits: RateLimits,
    pub retry: RetryPolicy,
    /// Per request; WeChat usually answers in well under a second.
    pub timeout: Duration,
    pub token_mode: TokenMode,
    /// Where calls and token refreshes are counted (registered by the application).
    pub metrics: ApiMetrics,
}

impl ApiConfig {
    /// Defaults for everything but the account.
    pub fn new(base: Url, appid: impl Into<String>, secret: SecretString) -> Self {
        Self {
            base,
            appid: appid.into(),
            secret,
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            timeout: DEFAULT_TIMEOUT,
            token_mode: TokenMode::Stable,
            metrics: ApiMetrics::default(),
        }
    }
}

/// The WeChat API client; cheap to clone, one per process is enough.
#[derive(Clone)]
pub struct ApiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    appid: String,
    secret: SecretString,
    retry: RetryPolicy,
    token_mode: TokenMode,
    tokens: TokenCache,
    limiter: RateLimiter,
    metrics: ApiMetrics,
    quota: Arc<dyn QuotaStops>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient").field("base", &self.inner.base).field("appid", &self.inner.appid).finish()
    }
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: i64,
}

impl ApiClient {
    /// Builds the client; `store` is where the account's token is shared.
    ///
    /// # Panics
    /// If the TLS backend cannot initialise (a broken build, not a runtime condition).
    pub fn new(config: ApiConfig, store: Arc<dyn TokenStore>) -> Self {
        Self::with_quota_stops(config, store, Arc::new(MemoryQuotaStops::default()))
    }

    /// [`ApiClient::new`] with the paths stopped by 45009 shared through `quota`.
    ///
    /// # Panics
    /// As [`ApiClient::new`].
    pub fn with_quota_stops(config: ApiConfig, store: Arc<dyn TokenStore>, quota: Arc<dyn QuotaStops>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .expect("reqwest client with rustls");
        Self {
            inner: Arc::new(Inner {
                http,
                base: config.base.as_str().trim_end_matches('/').to_owned(),
                appid: config.appid,
                secret: config.secret,
                retry: config.retry,
                token_mode: config.token_mode,
                tokens: TokenCache::new(store),
                limiter: RateLimiter::new(config.rate_limits),
                metrics: config.metrics,
                quota,
            }),
        }
    }

    /// The account's AppID.
    pub fn appid(&self) -> &str {
        &self.inner.appid
    }

    /// Forgets this process's view of the paths stopped by 45009 (after `clear_quota`).
    pub fn forget_quota_stops(&self) {
        self.inner.quota.forget();
    }

    /// A fresh access token: from memory while fresh, else from the shared store, else fetched.
    ///
    /// # Errors
    /// The store failed, or WeChat refused the credentials.
    pub async fn access_token(&self) -> Result<AccessToken, WeChatError> {
        self.token_avoiding(None).await
    }

    async fn token_avoiding(&self, stale: Option<&str>) -> Result<AccessToken, WeChatError> {
        let stale_owned: Option<String> = stale.map(str::to_owned);
        let fetch = move || -> BoxFuture<'_, Result<AccessToken, WeChatError>> {
            Box::pin(async move {
                let token = self.fetch_token(false).await?;
                // stable_token keeps answering the token WeChat just refused until forced to rotate.
                if stale_owned.as_deref() == Some(&*token.token) {
                    return self.fetch_token(true).await;
                }
                Ok(token)
            })
        };
        self.inner.tokens.get(stale, fetch).await
    }

    /// The endpoint tokens come from in this client's mode.
    fn token_path(&self) -> &'static str {
        match self.inner.token_mode {
            TokenMode::Stable => "/cgi-bin/stable_token",
            TokenMode::Classic => "/cgi-bin/token",
        }
    }

    /// Asks WeChat for a token (never cached here; [`ApiClient::access_token`] is the way in).
    async fn fetch_token(&self, force_refresh: bool) -> Result<AccessToken, WeChatError> {
        let inner = &self.inner;
        let secret = inner.secret.expose_secret();
        let answer: TokenAnswer = match inner.token_mode {
            TokenMode::Stable => {
                #[derive(Serialize)]
                struct StableTokenRequest<'a> {
                    grant_type: &'a str,
                    appid: &'a str,
                    secret: &'a str,
                    force_refresh: bool,
                }
                let body =
                    StableTokenRequest { grant_type: "client_credential", appid: &inner.appid, secret, force_refresh };
                self.call_with_credentials(Method::POST, "/cgi-bin/stable_token", &[], Some(&body)).await?
            }
            TokenMode::Classic => {
                let query = [("grant_type", "client_credential"), ("appid", inner.appid.as_str()), ("secret", secret)];
                self.call_with_credentials(Method::GET, "/cgi-bin/token", &query, None::<&()>).await?
            }
        };
        tracing::info!(force_refresh, expires_in_s = answer.expires_in, "fetched a WeChat access token");
        self.inner.metrics.token_refreshes.inc();
        Ok(AccessToken {
            token: answer.access_token.into(),
            expires_at: chrono::Utc::now() + chrono::Duration::seconds(answer.expires_in.max(0)),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, WeChatError> {
        self.call(Method::GET, path, query, None::<&()>).await
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T, WeChatError> {
        self.call(Method::POST, path, &[], Some(body)).await
    }

    /// A call carrying the shared access token; a refused token is refreshed once.
    #[tracing::instrument(skip_all, fields(wechat.path = path))]
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        extra_query: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<T, WeChatError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(WeChatError::Decode)?;
        if let Some(until) = self.inner.quota.stopped_until(path).await {
            self.inner.metrics.record(path, "quota_stopped");
            return Err(WeChatError::QuotaExhausted { path: path.to_owned(), until });
        }
        let mut stale: Option<Arc<str>> = None;
        loop {
            let token = match self.token_avoiding(stale.as_deref()).await {
                Ok(token) => token,
                // The token endpoint's own daily quota (or force_refresh's 20 a day): the call
                // waits like any used-up API, without stopping `path`, whose quota is untouched.
                Err(error) if error.code() == Some(ErrCode::DailyQuotaExceeded) => {
                    let until = quota::quota_resumes_at(chrono::Utc::now());
                    tracing::warn!(%until, "WeChat's daily quota of access tokens is used up");
                    return Err(WeChatError::QuotaExhausted { path: self.token_path().to_owned(), until });
                }
                Err(error) => return Err(error),
            };
            let mut query: Vec<(&str, &str)> = Vec::with_capacity(extra_query.len() + 1);
            query.push(("access_token", &token.token));
            query.extend_from_slice(extra_query);
            match self.with_backoff(&method, path, &query, body.as_deref()).await {
                Err(error) if error.is_stale_token() && stale.is_none() => {
                    tracing::info!(errcode = ?error.code(), "access token refused; refreshing once");
                    stale = Some(Arc::clone(&token.token));
                }
                Err(error) if error.code() == Some(ErrCode::DailyQuotaExceeded) => {
                    let until = self.inner.quota.stop(path).await;
                    tracing::warn!(%until, "WeChat's daily quota of this API is used up; stopped until Beijing midnight");
                    return Err(WeChatError::QuotaExhausted { path: path.to_owned(), until });
                }
                outcome => return outcome,
            }
        }
    }

    /// A call whose credentials are in the query or body (token endpoints, OAuth).
    async fn call_with_credentials<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&impl Serialize>,
    ) -> Result<T, WeChatError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(WeChatError::Decode)?;
        self.with_backoff(&method, path, query, body.as_deref()).await
    }

    /// Sends, and on answers that pass with time backs off and tries again, within the policy.
    async fn with_backoff<T: DeserializeOwned>(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<T, WeChatError> {
        let retry = &self.inner.retry;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.inner.limiter.acquire(path).await;
            let error = match self.send_once(method.clone(), path, query, body).await {
                Ok(value) => return Ok(value),
                Err(error) if !error.is_transient() => return Err(error),
                Err(error) => error,
            };
            let delay = retry.delay(attempt);
            if attempt >= retry.max_attempts || started.elapsed() + delay > retry.max_elapsed {
                return Err(WeChatError::RetriesExhausted { attempts: attempt, last: Box::new(error) });
            }
            tracing::warn!(error = %error, attempt, delay_ms = delay.as_millis() as u64, "WeChat call failed; backing off");
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<T, WeChatError> {
        let mut request = self.inner.http.request(method, format!("{}{path}", self.inner.base)).query(query);
        if let Some(body) = body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
        }
        let outcome = Self::answer(request).await;
        let errcode = match &outcome {
            Ok(_) => std::borrow::Cow::Borrowed("0"),
            Err(WeChatError::Api { code, .. }) => code.code().to_string().into(),
            Err(WeChatError::Http(status)) => format!("http_{status}").into(),
            Err(WeChatError::Transport(_)) => "transport".into(),
            Err(_) => "decode".into(),
        };
        self.inner.metrics.record(path, &errcode);
        serde_json::from_value(outcome?).map_err(WeChatError::Decode)
    }

    /// WeChat's JSON answer, or the error it stands for (`errcode` is checked even on HTTP 200).
    async fn answer(request: reqwest::RequestBuilder) -> Result<serde_json::Value, WeChatError> {
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            return Err(WeChatError::Http(status.as_u16()));
        }
        let bytes = response.bytes().await?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(WeChatError::Decode)?;
        if let Some(code) = value.get("errcode").and_then(serde_json::Value::as_i64).filter(|c| *c != 0) {
            let message = value.get("errmsg").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
            let msg_id = value.get("msg_id").and_then(serde_json::Value::as_i64);
            return Err(WeChatError::Api { code: ErrCode::from_code(code), message, msg_id });
        }
        Ok(value)
    }
}

/// The answer of calls that return nothing but `errcode: 0`.
#[derive(Debug, serde::Deserialize)]
pub struct Ok0 {}
