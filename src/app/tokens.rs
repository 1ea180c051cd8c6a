//! The WeChat client's `TokenStore` in PostgreSQL: every instance shares one access token per
//! AppID, and a row lock makes one process at a time fetch while the rest reuse its result.

use deadpool_postgres::Pool;

use crate::store;
use crate::store::tokens::StoredToken;
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

fn access_token(stored: StoredToken) -> AccessToken {
    AccessToken { token: stored.token.into(), expires_at: stored.expires_at }
}

impl TokenStore for PgTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<AccessToken>, WeChatError>> {
        Box::pin(async move {
            let client = self.pool.get().await.map_err(store_error)?;
            let stored = store::tokens::get_token(&client, &self.appid).await.map_err(store_error)?;
            Ok(stored.map(access_token))
        })
    }

    fn refresh<'a>(&'a self, fetch: Fetch<'a>) -> BoxFuture<'a, Result<AccessToken, WeChatError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await.map_err(store_error)?;
            store::tokens::ensure_token_row(&client, &self.appid).await.map_err(store_error)?;
            let txn = client.transaction().await.map_err(store_error)?;
            let stored = store::tokens::lock_token(&txn, &self.appid).await.map_err(store_error)?.map(access_token);
            let token = fetch(stored.clone()).await?;
            if stored.as_ref() != Some(&token) {
                store::tokens::update_token(&txn, &self.appid, &token.token, token.expires_at)
                    .await
                    .map_err(store_error)?;
            }
            txn.commit().await.map_err(store_error)?;
            Ok(token)
        })
    }
}
