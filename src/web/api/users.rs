//! `/api/v1/users/{openid}`: one follower of the caller's account, and their erasure (PIPL). The
//! same openid in another account is another person: neither shown nor erased here.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{ApiError, Caller, ErrorBody};
use crate::app::accounts::Accounts;
use crate::app::tagging;
use crate::store;
use crate::store::ownership::Owned;

/// The same person as a follower of another account of this deployment (same `unionid`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct OtherAccountView {
    /// The account's name (`Tagcast-Account`).
    account: String,
    display_name: String,
    /// Their openid there (openids differ between accounts).
    openid: String,
    subscribed: bool,
    /// Tag paths they carry there.
    tags: Vec<String>,
}

/// A follower as the API shows them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserView {
    openid: String,
    subscribed: bool,
    /// Tag paths.
    tags: Vec<String>,
    subscribed_at: Option<DateTime<Utc>>,
    unsubscribed_at: Option<DateTime<Utc>>,
    subscribe_scene: Option<String>,
    first_seen_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    /// WeChat's id of the person across the accounts bound to one Open Platform account, once
    /// `tagcast sync` has read it; `null` otherwise.
    unionid: Option<String>,
    /// The same person (same `unionid`) in this deployment's other accounts, read-only; empty
    /// without a `unionid`.
    other_accounts: Vec<OtherAccountView>,
}

#[utoipa::path(get, path = "/api/v1/users/{openid}", tag = "users", params(("openid" = String, Path)),
    responses((status = 200, body = UserView), (status = 403, description = "`forbidden`: a follower of another account", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_user(
    pool: web::Data<Pool>,
    accounts: web::Data<Accounts>,
    caller: Caller,
    openid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let Some(follower) = store::followers::get_follower(&client, caller.account, &openid).await? else {
        drop(client);
        return Err(caller.missing(&pool, Owned::Follower, &openid, "no such follower").await);
    };
    let tags = store::tags::list_follower_tag_paths(&client, caller.account, &[openid.as_str()])
        .await?
        .remove(openid.as_str())
        .unwrap_or_default();
    let elsewhere = match &follower.unionid {
        Some(unionid) => store::followers::list_same_person_elsewhere(&client, caller.account, unionid).await?,
        None => Vec::new(),
    };
    let other_accounts = elsewhere
        .into_iter()
        // Only accounts the caller holds: another account's followers are that account's objects.
        .filter(|e| caller.holds(e.account))
        .filter_map(|e| {
            let account = accounts.get(e.account)?;
            Some(OtherAccountView {
                account: account.name.clone(),
                display_name: account.display_name.clone(),
                openid: e.openid,
                subscribed: e.subscribed,
                tags: e.tags,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(UserView {
        openid: follower.openid,
        subscribed: follower.subscribed,
        tags,
        subscribed_at: follower.subscribed_at,
        unsubscribed_at: follower.unsubscribed_at,
        subscribe_scene: follower.subscribe_scene,
        first_seen_at: follower.first_seen_at,
        last_seen_at: follower.last_seen_at,
        unionid: follower.unionid,
        other_accounts,
    }))
}

/// Erases the follower's data in the caller's account and removes their WeChat tags there.
#[utoipa::path(delete, path = "/api/v1/users/{openid}", tag = "users", params(("openid" = String, Path)),
    responses((status = 204, description = "erased"), (status = 403, description = "`forbidden`: a follower of another account", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn erase_user(
    pool: web::Data<Pool>,
    caller: Caller,
    openid: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if tagging::erase_follower(&pool, caller.account, &openid).await? {
        tracing::info!(user.openid = %openid, account = %caller.account, by = %caller.name, "follower erased");
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(caller.missing(&pool, Owned::Follower, &openid, "no such follower").await)
    }
}
