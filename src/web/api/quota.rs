//! `/api/v1/wechat/quota`: the account's WeChat APIs stopped by a used-up daily quota (45009)
//! with the time each resumes, and `clear_quota`, WeChat's reset of the day's counts (10 per
//! Beijing month; account admins and deployment admins only; audited).

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;
use serde::Serialize;

use super::{ApiError, Caller, ErrorBody};
use crate::app::accounts::Accounts;
use crate::app::quota::{self, QuotaError, QuotaStatus};
use crate::domain::admin::AdminRole;
use crate::domain::clock::Clock;

#[derive(Serialize, utoipa::ToSchema)]
pub struct StoppedApiView {
    /// The WeChat API path, e.g. `/cgi-bin/message/mass/sendall`.
    path: String,
    /// When tagcast calls it again (RFC 3339): the next Beijing midnight.
    until: chrono::DateTime<chrono::Utc>,
    /// The same time in Beijing time, to the minute.
    resumes_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QuotaView {
    stopped: Vec<StoppedApiView>,
    /// `clear_quota` resets used this Beijing month.
    clears_this_month: i64,
    /// WeChat allows this many per Beijing month.
    clears_per_month: i64,
}

fn view(status: QuotaStatus) -> QuotaView {
    QuotaView {
        stopped: status
            .stopped
            .into_iter()
            .map(|s| StoppedApiView { path: s.path, until: s.until, resumes_at: s.resumes_at })
            .collect(),
        clears_this_month: status.clears_this_month,
        clears_per_month: quota::CLEARS_PER_MONTH,
    }
}

fn api_error(error: QuotaError) -> ApiError {
    match error {
        QuotaError::Pool(error) => ApiError::from(error),
        QuotaError::Query(error) => ApiError::from(error),
        QuotaError::NoClearsLeft => ApiError::conflict("no_clears_left", error.to_string()),
        QuotaError::NoApi => ApiError::conflict("no_credentials", error.to_string()),
        error => ApiError::new(actix_web::http::StatusCode::BAD_GATEWAY, "wechat_refused", error.to_string()),
    }
}

/// The account's stopped WeChat APIs and this month's resets.
#[utoipa::path(get, path = "/api/v1/wechat/quota", tag = "wechat",
    responses((status = 200, body = QuotaView)))]
pub async fn get_quota(
    caller: Caller,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    let Some(appid) = accounts.get(caller.account).and_then(|a| a.appid.clone()) else {
        return Ok(HttpResponse::Ok().json(view(QuotaStatus { stopped: Vec::new(), clears_this_month: 0 })));
    };
    let status = quota::status(&pool, &appid, &clock).await.map_err(api_error)?;
    Ok(HttpResponse::Ok().json(view(status)))
}

/// Resets the day's WeChat API counts (`clear_quota`) and ends every stop; spends one of the
/// month's 10 resets.
#[utoipa::path(post, path = "/api/v1/wechat/clear_quota", tag = "wechat",
    responses((status = 200, body = QuotaView), (status = 403, body = ErrorBody),
        (status = 409, description = "`no_clears_left` (10 this month) or `no_credentials`", body = ErrorBody),
        (status = 502, description = "`wechat_refused`", body = ErrorBody)))]
pub async fn clear_quota(
    caller: Caller,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    accounts: web::Data<Accounts>,
) -> Result<HttpResponse, ApiError> {
    caller.require(caller.role == AdminRole::Admin, "clear WeChat's API quota")?;
    let live = accounts.get(caller.account);
    let Some(api) = live.as_ref().and_then(|a| a.api.clone()) else { return Err(api_error(QuotaError::NoApi)) };
    quota::clear_quota(&pool, &api, caller.account, &caller.name, &clock).await.map_err(api_error)?;
    let status = quota::status(&pool, api.appid(), &clock).await.map_err(api_error)?;
    Ok(HttpResponse::Ok().json(view(status)))
}
