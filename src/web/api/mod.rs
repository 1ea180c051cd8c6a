//! `/api/v1`: the JSON API of CONTRACT.md §4. Bearer `TAGCAST_API_TOKEN` or HTTP Basic with an admin user; errors are
//! `{"error": {"code", "message"}}`; unknown fields are refused with `400 invalid_request`.

mod admins;
mod campaigns;
mod error;
mod events;
mod quizzes;
mod rules;
mod segments;
mod tags;
mod users;

use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine as _;
use deadpool_postgres::Pool;
use futures_util::future::LocalBoxFuture;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub use campaigns::CampaignContext;
pub use error::ApiError;

use crate::accounts::Authenticator;
use crate::domain::admin::AdminRole;

/// Who may call the API: the bearer token, or an admin user by HTTP Basic.
#[derive(Clone)]
pub struct ApiAuth {
    pub token: Option<SecretString>,
    pub users: Authenticator,
}

/// The authenticated caller, named in what they create (`created_by`) and in the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: AdminRole,
}

impl Caller {
    /// `403 forbidden` unless the caller's role allows `allowed`.
    pub fn require(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("the role `{}` may not {what}", self.role.as_str())))
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let credentials = credentials(req);
        let auth = req.app_data::<web::Data<ApiAuth>>().cloned();
        let pool = req.app_data::<web::Data<Pool>>().cloned();
        Box::pin(async move {
            let auth = auth.ok_or_else(ApiError::unauthorized)?;
            match credentials.ok_or_else(ApiError::unauthorized)? {
                Credentials::Bearer(given) => {
                    let expected = auth.token.as_ref().ok_or_else(ApiError::unauthorized)?;
                    if bool::from(given.as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
                        Ok(Caller { name: "api".to_owned(), role: AdminRole::Admin })
                    } else {
                        Err(ApiError::unauthorized())
                    }
                }
                Credentials::Basic { username, password } => {
                    let pool = pool.ok_or_else(ApiError::internal)?;
                    let client = pool.get().await?;
                    match auth.users.verify(&client, &username, &password).await {
                        Ok(Some(admin)) => Ok(Caller { name: admin.username, role: admin.role }),
                        Ok(None) => Err(ApiError::unauthorized()),
                        Err(error) => {
                            tracing::error!(error = ?error, "checking an admin password failed");
                            Err(ApiError::internal())
                        }
                    }
                }
            }
        })
    }
}

enum Credentials {
    Bearer(String),
    Basic { username: String, password: String },
}

fn credentials(req: &HttpRequest) -> Option<Credentials> {
    let header = req.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(Credentials::Bearer(token.trim().to_owned()));
    }
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials::Basic { username: username.to_owned(), password: password.to_owned() })
}

/// Registers `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let json = web::JsonConfig::default()
        .limit(256 * 1024)
        .error_handler(|error, _| ApiError::invalid_request(error.to_string()).into());
    let query =
        web::QueryConfig::default().error_handler(|error, _| ApiError::invalid_request(error.to_string()).into());
    let path = web::PathConfig::default().error_handler(|_, _| ApiError::not_found("no such resource").into());
    cfg.service(
        web::scope("/api/v1")
            .app_data(json)
            .app_data(path)
            .app_data(query)
            .route("/admins", web::post().to(admins::create_admin))
            .route("/admins", web::get().to(admins::list_admins))
            .route("/tags", web::post().to(tags::create_tag))
            .route("/tags", web::get().to(tags::list_tags))
            .route("/tags/health", web::get().to(campaigns::tag_health))
            .route("/tags/{id}", web::get().to(tags::get_tag))
            .route("/tags/{id}", web::delete().to(tags::delete_tag))
            .route("/tags/{id}", web::patch().to(tags::rename_tag))
            .route("/rules", web::post().to(rules::create_rule))
            .route("/rules", web::get().to(rules::list_rules))
            .route("/rules/{id}", web::delete().to(rules::delete_rule))
            .route("/quizzes", web::post().to(quizzes::save_quiz))
            .route("/quizzes", web::get().to(quizzes::list_quizzes))
            .route("/users/{openid}", web::get().to(users::get_user))
            .route("/users/{openid}", web::delete().to(users::erase_user))
            .route("/events", web::post().to(events::record_events))
            .route("/segments", web::post().to(segments::create_segment))
            .route("/segments/preview", web::post().to(segments::preview_segment))
            .route("/segments/{id}", web::get().to(segments::get_segment))
            .route("/segments/{id}/members", web::get().to(segments::list_segment_members))
            .route("/campaigns", web::post().to(campaigns::create_campaign))
            .route("/campaigns", web::get().to(campaigns::list_campaigns))
            .route("/campaigns/strategies", web::get().to(campaigns::compare_strategies))
            .route("/campaigns/{id}", web::get().to(campaigns::get_campaign))
            .route("/campaigns/{id}/links", web::post().to(campaigns::create_link))
            .route("/campaigns/{id}/send", web::post().to(campaigns::send_campaign))
            .route("/campaigns/{id}/approve", web::post().to(campaigns::approve_campaign))
            .route("/campaigns/{id}/cancel", web::post().to(campaigns::cancel_campaign))
            .route("/campaigns/{id}/preview", web::post().to(campaigns::preview_campaign))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such API call"))
            })),
    );
}
