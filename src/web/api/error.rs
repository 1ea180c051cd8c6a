//! The one error shape of the JSON API.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::app::audience::AudienceError;
use crate::app::tagging::TaggingError;

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
    /// Sent as `Retry-After` (whole seconds, rounded up).
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: serde_json::Map::new(), retry_after: None }
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
    /// `401 locked` with `Retry-After`: this username from this address failed too often. Still a
    /// 401, as the login page answers: the credentials are refused, only the wait is new.
    pub fn locked(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "locked", message);
        error.retry_after = Some(retry_after);
        error
    }
    /// `429 too_many_requests` with `Retry-After`: sign-in attempts are throttled.
    pub fn too_many_requests(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message);
        error.retry_after = Some(retry_after);
        error
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

    /// A failure on the database: `400 invalid_request` when PostgreSQL refused a value the
    /// caller sent (a NUL character, a number or date out of its range), else logged and
    /// `503 unavailable`. `error` is searched down its chain of causes.
    pub fn database(error: &(dyn std::error::Error + 'static), doing: &str) -> Self {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(code) = e.downcast_ref::<tokio_postgres::Error>().and_then(tokio_postgres::Error::code) {
                if let Some(what) = refused_value(code) {
                    return Self::invalid_request(format!("a value {what}"));
                }
            }
            cause = e.source();
        }
        tracing::error!(error = %error, source = ?error.source(), "{doing} failed on the database");
        Self::internal()
    }
}

/// The body of every non-2xx answer (CONTRACT.md §4); [`ApiError::error_response`] writes it.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the JSON that `error_response` builds")]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// `code` is what callers branch on; some codes add fields (`position`, `tag`, `frees_at`, ...).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the JSON that `error_response` builds")]
pub struct ErrorDetail {
    /// snake_case: `invalid_request`, `unauthorized`, `not_found`, `tag_exists`, ...
    #[schema(pattern = "^[a-z_]+$")]
    code: String,
    message: String,
}

/// `Retry-After` in whole seconds, never 0 (which would invite an immediate retry).
pub fn retry_after_secs(after: std::time::Duration) -> u64 {
    after.as_secs() + u64::from(after.subsec_nanos() > 0)
}

/// The SQLSTATEs by which PostgreSQL refuses a value itself rather than failing.
fn refused_value(code: &tokio_postgres::error::SqlState) -> Option<&'static str> {
    use tokio_postgres::error::SqlState;
    Some(match code {
        c if *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE || *c == SqlState::UNTRANSLATABLE_CHARACTER => {
            "contains a character that cannot be stored (such as NUL)"
        }
        c if *c == SqlState::NUMERIC_VALUE_OUT_OF_RANGE => "is a number out of range",
        c if *c == SqlState::DATETIME_FIELD_OVERFLOW || *c == SqlState::DATETIME_VALUE_OUT_OF_RANGE => {
            "is a date out of range"
        }
        c if *c == SqlState::STRING_DATA_RIGHT_TRUNCATION => "is too long",
        _ => return None,
    })
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
        let mut response = HttpResponse::build(self.status);
        if let Some(after) = self.retry_after {
            response.insert_header((actix_web::http::header::RETRY_AFTER, retry_after_secs(after).to_string()));
        }
        response.json(serde_json::json!({ "error": error }))
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
            TaggingError::SensitiveTag(_) | TaggingError::SensitivityAdminOnly(_) => Self::forbidden(message),
            TaggingError::InvalidWhen(ref expr) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_expression", message).with("position", expr.position)
            }
            TaggingError::Pool(_) | TaggingError::Query(_) => Self::database(&error, "API call"),
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
        Self::database(&error, "API call")
    }
}

impl From<AudienceError> for ApiError {
    fn from(error: AudienceError) -> Self {
        Self::database(&error, "API call")
    }
}
