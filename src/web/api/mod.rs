//! `/api/v1`: the JSON API of CONTRACT.md §4. Bearer `TAGCAST_API_TOKEN`; errors are
//! `{"error": {"code", "message"}}`; unknown fields are refused with `400 invalid_request`.

mod error;
mod events;
mod quizzes;
mod rules;
mod segments;
mod tags;
mod users;

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, web};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

pub use error::ApiError;

/// Who may call the API.
#[derive(Clone)]
pub struct ApiAuth {
    pub token: Option<SecretString>,
}

/// The authenticated caller, named in what they create (`created_by`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Caller, ApiError> {
    let auth = req.app_data::<web::Data<ApiAuth>>().ok_or_else(ApiError::unauthorized)?;
    let given = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    let expected = auth.token.as_ref().ok_or_else(ApiError::unauthorized)?;
    if bool::from(given.trim().as_bytes().ct_eq(expected.expose_secret().as_bytes())) {
        Ok(Caller { name: "api".to_owned() })
    } else {
        Err(ApiError::unauthorized())
    }
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
            .route("/tags", web::post().to(tags::create_tag))
            .route("/tags", web::get().to(tags::list_tags))
            .route("/tags/{id}", web::get().to(tags::get_tag))
            .route("/tags/{id}", web::delete().to(tags::delete_tag))
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
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such API call"))
            })),
    );
}
