//! `/api/v1/quizzes`.

use actix_web::{HttpResponse, web};
use deadpool_postgres::Pool;

use super::{ApiError, Caller, ErrorBody};
use crate::app::tagging;
use crate::domain::quiz::QuizSpec;
use crate::store;

/// Creates or replaces the quiz with this `id`.
#[utoipa::path(post, path = "/api/v1/quizzes", tag = "quizzes", request_body = QuizSpec,
    responses((status = 201, body = QuizSpec), (status = 422, description = "`invalid_quiz`", body = ErrorBody)))]
pub async fn save_quiz(
    pool: web::Data<Pool>,
    caller: Caller,
    body: web::Json<QuizSpec>,
) -> Result<HttpResponse, ApiError> {
    let spec = body.into_inner();
    tagging::save_quiz(&pool, caller.account, &spec, &caller.name).await?;
    Ok(HttpResponse::Created().json(spec))
}

#[utoipa::path(get, path = "/api/v1/quizzes", tag = "quizzes", responses((status = 200, body = Vec<QuizSpec>)))]
pub async fn list_quizzes(pool: web::Data<Pool>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let client = pool.get().await?;
    let mut quizzes: Vec<QuizSpec> =
        store::quizzes::list_quizzes(&client, caller.account).await?.into_values().collect();
    quizzes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(HttpResponse::Ok().json(quizzes))
}
