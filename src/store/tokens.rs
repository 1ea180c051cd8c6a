//! `access_tokens`: the shared home of the account's WeChat access token. Implements the WeChat
//! client's `TokenStore` with a row lock, so one process at a time fetches and the rest reuse it.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use crate::wechat::api::token::{BoxFuture, Fetch};
use crate::wechat::api::{AccessToken, TokenStore, WeChatError};

/// The token store in PostgreSQL, for one AppID.
pub struct PgTokenStore {
    pool: Pool,
    appid: String,
}

impl PgTokenStore {
    pub fn new(pool: Pool, appid: impl Into<String>) -> Self {
        Self { pool, appid: appid.into() }
    }
}

fn store_error(error: impl std::error::Error + Send + Sync + 'static) -> WeChatError {
    WeChatError::TokenStore(Box::new(error))
}

fn token_of(row: &tokio_postgres::Row) -> Option<AccessToken> {
    let token: Option<String> = row.get(0);
    let expires_at: Option<DateTime<Utc>> = row.get(1);
    Some(AccessToken { token: token?.into(), expires_at: expires_at? })
}

const SELECT: &str = "SELECT token, expires_at FROM access_tokens WHERE appid = $1";
const ENSURE_ROW: &str = "INSERT INTO access_tokens (appid) VALUES ($1) ON CONFLICT (appid) DO NOTHING";
const SELECT_FOR_UPDATE: &str = "SELECT token, expires_at FROM access_tokens WHERE appid = $1 FOR UPDATE";
const UPDATE: &str = "
    UPDATE access_tokens SET token = $2, expires_at = $3, fetched_at = now(), fetch_count = fetch_count + 1
    WHERE appid = $1";

impl TokenStore for PgTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<AccessToken>, WeChatError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(store_error)?;
            let statement = client.prepare_cached(SELECT).await.map_err(store_error)?;
            let row = client.query_opt(&statement, &[&self.appid]).await.map_err(store_error)?;
            Ok(row.as_ref().and_then(token_of))
        })
    }

    fn refresh<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<AccessToken, WeChatError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await.map_err(store_error)?;
            client.execute(ENSURE_ROW, &[&self.appid]).await.map_err(store_error)?;
            let txn = client.transaction().await.map_err(store_error)?;
            // Other processes wanting a token wait here until this one has stored its fetch.
            let row = txn.query_one(SELECT_FOR_UPDATE, &[&self.appid]).await.map_err(store_error)?;
            let stored = token_of(&row);
            let token = fetch(stored.clone()).await?;
            if stored.as_ref() != Some(&token) {
                txn.execute(UPDATE, &[&self.appid, &&*token.token, &token.expires_at]).await.map_err(store_error)?;
            }
            txn.commit().await.map_err(store_error)?;
            Ok(token)
        })
    }
}
