//! `/r/{link}`: a campaign's short link. Records the click and redirects (302) to the target.
//! Inside WeChat's browser, the first visit goes through web OAuth (`snsapi_base`, silent) and
//! comes back with a `code` that names the follower, so the click is attributed to them;
//! elsewhere the click is recorded without a follower.

use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::Pool;
use serde::Deserialize;

use crate::app::campaigns;
use crate::domain::clock::Clock;
use crate::web::api::CampaignContext;

/// The `state` WeChat hands back after OAuth; its presence means "do not ask again".
const OAUTH_STATE: &str = "tc";

#[derive(Deserialize)]
pub struct Return {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
}

fn in_wechat(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.contains("MicroMessenger"))
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found().insert_header((actix_web::http::header::LOCATION, location)).finish()
}

#[tracing::instrument(skip_all, fields(link = %link))]
pub async fn follow_link(
    req: HttpRequest,
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<crate::app::accounts::Accounts>,
    link: web::Path<String>,
    query: web::Query<Return>,
) -> HttpResponse {
    let client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "no database connection for a short link");
            return HttpResponse::ServiceUnavailable().body("try again");
        }
    };
    let target = crate::store::campaigns::get_link(&client, &link).await;
    drop(client);
    let (target, account) = match target {
        Ok(Some((_, url, account))) => (url, account),
        Ok(None) => return HttpResponse::NotFound().content_type("text/plain").body("no such link"),
        Err(error) => {
            tracing::error!(%error, "reading a short link failed");
            return HttpResponse::ServiceUnavailable().body("try again");
        }
    };
    // An openid is per AppID: the follower is asked through the campaign's own account.
    let (_, api) = ctx.for_account(&accounts, account);
    let mut openid = None;
    if let (Some(code), Some(api)) = (&query.code, &api) {
        match api.oauth_exchange(code).await {
            Ok(grant) => openid = Some(grant.openid),
            Err(error) => tracing::info!(%error, "OAuth code refused; the click stays anonymous"),
        }
    } else if query.state.is_none() && in_wechat(&req) {
        if let Some(api) = &api {
            let info = req.connection_info();
            let back = format!("{}://{}/r/{}", info.scheme(), info.host(), link.as_str());
            let mut authorize =
                url::Url::parse("https://open.weixin.qq.com/connect/oauth2/authorize").expect("a valid URL");
            authorize
                .query_pairs_mut()
                .append_pair("appid", api.appid())
                .append_pair("redirect_uri", &back)
                .append_pair("response_type", "code")
                .append_pair("scope", "snsapi_base")
                .append_pair("state", OAUTH_STATE);
            authorize.set_fragment(Some("wechat_redirect"));
            return redirect(authorize.as_str());
        }
    }
    if let Err(error) = campaigns::record_click(&pool, &clock, &link, openid.as_deref()).await {
        // The follower still gets where they were going.
        tracing::error!(error = ?error, "recording a click failed");
    }
    redirect(&target)
}
