//! HTTP: the WeChat callback, health checks, and (with later issues) the JSON API and admin pages.
//! Handlers parse, call the inbox or the store, and choose status codes; no SQL here.

pub mod callback;
mod health;

use actix_web::web;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/wechat")
            .route(web::get().to(callback::verify_url))
            .route(web::post().to(callback::receive_push)),
    )
    .route("/healthz", web::get().to(health::healthz));
}
