//! The access token: one per account, shared by every tagcast process.
//!
//! WeChat hands out one valid token per account; a process that fetches its own knocks out the
//! others' (40001). So the token lives in a [`TokenStore`] every process shares (PostgreSQL in
//! production), only one process fetches at a time (the store's lock), and within a process
//! concurrent callers share one in-flight fetch. While the cached token is fresh, getting it is a
//! read of memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::WeChatError;

/// Refresh this long before WeChat's expiry, so no call carries a token about to lapse.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An access token and when WeChat says it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Arc<str>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token itself.
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

impl AccessToken {
    /// Still usable for at least [`REFRESH_MARGIN`] at `now`.
    pub fn is_fresh(&self, now: DateTime<Utc>) -> bool {
        self.expires_at - now > chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default()
    }
}

/// A boxed future, as the store trait must be object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Fetches a new token from WeChat, given the stored one (if any) and the token a caller found stale.
pub type Fetch<'a> =
    Box<dyn FnOnce(Option<AccessToken>) -> BoxFuture<'a, Result<AccessToken, WeChatError>> + Send + 'a>;

/// Where every process keeps the account's token.
pub trait TokenStore: Send + Sync {
    /// The stored token, if any.
    fn load(&self) -> BoxFuture<'_, Result<Option<AccessToken>, WeChatError>>;

    /// Holds the store's exclusive lock (other processes wait), hands `fetch` the token stored now,
    /// stores what it returns and returns it. `fetch` decides whether the stored one is good enough.
    fn refresh<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<AccessToken, WeChatError>>;
}

/// A store for one process only (the mock, tools, unit tests).
#[derive(Default)]
pub struct MemoryTokenStore {
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<AccessToken>, WeChatError>> {
        Box::pin(async move { Ok(self.token.lock().await.clone()) })
    }

    fn refresh<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<AccessToken, WeChatError>> {
        Box::pin(async move {
            let mut slot = self.token.lock().await;
            let token = fetch(slot.clone()).await?;
            *slot = Some(token.clone());
            Ok(token)
        })
    }
}

/// The process's view of the shared token: a cache in memory in front of the store.
pub(super) struct TokenCache {
    cached: RwLock<Option<AccessToken>>,
    /// Callers that find the cache stale queue here, so one of them refreshes and the rest reuse it.
    in_flight: tokio::sync::Mutex<()>,
    store: Arc<dyn TokenStore>,
}

impl TokenCache {
    pub(super) fn new(store: Arc<dyn TokenStore>) -> Self {
        Self { cached: RwLock::new(None), in_flight: tokio::sync::Mutex::new(()), store }
    }

    fn cached(&self) -> Option<AccessToken> {
        self.cached.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn remember(&self, token: &AccessToken) {
        *self.cached.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(token.clone());
    }

    /// A fresh token that is not `stale` (the one a call was just refused with).
    pub(super) async fn get<'a, F>(&'a self, stale: Option<&'a str>, fetch: F) -> Result<AccessToken, WeChatError>
    where
        F: FnOnce() -> BoxFuture<'a, Result<AccessToken, WeChatError>> + Send + 'a,
    {
        let usable = |t: &AccessToken| t.is_fresh(Utc::now()) && stale != Some(&*t.token);
        if let Some(token) = self.cached().filter(usable) {
            return Ok(token);
        }
        let _turn = self.in_flight.lock().await;
        // Whoever held the turn before us may have refreshed already.
        if let Some(token) = self.cached().filter(usable) {
            return Ok(token);
        }
        if let Some(token) = self.store.load().await?.filter(usable) {
            self.remember(&token);
            return Ok(token);
        }
        let stale_owned = stale.map(str::to_owned);
        let token = self
            .store
            .refresh(Box::new(move |stored: Option<AccessToken>| {
                Box::pin(async move {
                    // Another process may have refreshed while we waited for the lock.
                    if let Some(current) =
                        stored.as_ref().filter(|t| t.is_fresh(Utc::now()) && stale_owned.as_deref() != Some(&*t.token))
                    {
                        return Ok(current.clone());
                    }
                    fetch().await
                })
            }))
            .await?;
        self.remember(&token);
        Ok(token)
    }
}
