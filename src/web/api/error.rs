//! The one error shape of the JSON API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::audience::AudienceError;
use crate::tagging::TaggingError;

/// A refusal: HTTP status, a snake_case code callers branch on, and a sentence for people.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More fields for the `error` object, for callers that act on them (`position` of an
    /// invalid expression).
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: serde_json::Map::new() }
    }
    /// Adds a field to the `error` object.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
    /// `400 invalid_expression`, with the 1-based column as `position` (and in the message).
    pub fn invalid_expression(error: &crate::domain::expr::ExprError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_expression", error.to_string()).with("position", error.position)
    }
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }
    /// A page size: `default` when absent, else checked to be 1 to `max`.
    pub fn page_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, Self> {
        let limit = limit.unwrap_or(default);
        if (1..=max).contains(&limit) {
            Ok(limit)
        } else {
            Err(Self::invalid_request(format!("`limit` must be 1 to {max}")))
        }
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send `Authorization: Bearer <TAGCAST_API_TOKEN>` or HTTP Basic with an admin user",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is not answering; try again")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = serde_json::Map::new();
        error.insert("code".to_owned(), self.code.into());
        error.insert("message".to_owned(), self.message.clone().into());
        for (key, value) in &self.extra {
            error.insert(key.clone(), value.clone());
        }
        HttpResponse::build(self.status).json(serde_json::json!({ "error": error }))
    }
}

impl From<TaggingError> for ApiError {
    fn from(error: TaggingError) -> Self {
        let message = error.to_string();
        match error {
            TaggingError::TagExists(_) => Self::conflict("tag_exists", message),
            TaggingError::WeChatTagLimit | TaggingError::LocalTagLimit => Self::unprocessable("tag_limit", message),
            TaggingError::InvalidRule(_) => Self::invalid_request(message),
            TaggingError::UnknownQuiz(_) => Self::unprocessable("unknown_quiz", message),
            TaggingError::InvalidQuiz(_) => Self::unprocessable("invalid_quiz", message),
            TaggingError::NoSuchTag => Self::not_found(message),
            TaggingError::InvalidWhen(ref expr) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_expression", message).with("position", expr.position)
            }
            TaggingError::Pool(_) | TaggingError::Query(_) => {
                tracing::error!(error = %error, "API call failed on the database");
                Self::internal()
            }
        }
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        tracing::error!(%error, "no database connection for an API call");
        Self::internal()
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(error: tokio_postgres::Error) -> Self {
        tracing::error!(%error, "API call failed on the database");
        Self::internal()
    }
}

impl From<AudienceError> for ApiError {
    fn from(error: AudienceError) -> Self {
        tracing::error!(error = %error, source = ?std::error::Error::source(&error), "API call failed on the database");
        Self::internal()
    }
}
