//! `POST /api/v1/events`: orders from the shop, one or up to [`MAX_BATCH`] at once, idempotent by
//! `id` (the first version of an id wins; a re-sent id is counted as a duplicate and ignored,
//! even when its other fields differ). Menu clicks and messages arrive through the callback.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};

use super::{ApiError, Caller};
use crate::app::audience;
use crate::domain::clock::Clock;
use crate::domain::order::Order;

/// Most orders per call.
pub const MAX_BATCH: usize = 1000;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The shop's order id: a re-sent id is a duplicate.
    id: String,
    openid: String,
    /// Only `order` for now.
    #[serde(rename = "type")]
    #[schema(example = "order")]
    kind: String,
    /// Yuan, at most two decimals.
    #[schema(value_type = f64, example = 129.9)]
    amount: serde_json::Number,
    occurred_at: DateTime<Utc>,
}

/// One event or an array of up to [`MAX_BATCH`].
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "describes what `record_events` parses by hand")]
pub enum EventsBody {
    One(EventBody),
    Many(Vec<EventBody>),
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EventsRecorded {
    accepted: usize,
    duplicates: usize,
}

fn to_order(index: Option<usize>, body: EventBody, now: DateTime<Utc>) -> Result<Order, ApiError> {
    let at = index.map(|i| format!("event {i}: ")).unwrap_or_default();
    if body.kind != "order" {
        return Err(ApiError::invalid_request(format!("{at}`type` must be \"order\", not {:?}", body.kind)));
    }
    Order::new(body.id, body.openid, &body.amount.to_string(), body.occurred_at, now)
        .map_err(|e| ApiError::invalid_request(format!("{at}{e}")))
}

/// Idempotent by `id` within the caller's account (`Tagcast-Account`): the orders are that
/// account's, about its followers.
#[utoipa::path(post, path = "/api/v1/events", tag = "events", request_body = EventsBody,
    responses((status = 202, body = EventsRecorded)))]
pub async fn record_events(
    pool: web::Data<Pool>,
    clock: web::Data<Clock>,
    caller: Caller,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    // One object or an array of them; parsed by hand so the error names the field at fault.
    let now = clock.now();
    let invalid = |at: String, e: serde_json::Error| ApiError::invalid_request(format!("{at}{e}"));
    let orders = match body.into_inner() {
        serde_json::Value::Array(many) => {
            if many.len() > MAX_BATCH {
                return Err(ApiError::invalid_request(format!("at most {MAX_BATCH} events per call")));
            }
            if many.is_empty() {
                return Err(ApiError::invalid_request("the array holds no events"));
            }
            let mut orders = Vec::with_capacity(many.len());
            for (i, value) in many.into_iter().enumerate() {
                let body = serde_json::from_value(value).map_err(|e| invalid(format!("event {i}: "), e))?;
                orders.push(to_order(Some(i), body, now)?);
            }
            orders
        }
        one => vec![to_order(None, serde_json::from_value(one).map_err(|e| invalid(String::new(), e))?, now)?],
    };
    let recorded = audience::record_orders(&pool, caller.account, &orders, &clock).await?;
    Ok(HttpResponse::Accepted().json(EventsRecorded { accepted: recorded.accepted, duplicates: recorded.duplicates }))
}
