//! HTTP: the WeChat callback, health checks and metrics, the JSON API, and the admin pages.
//! Handlers parse, call the inbox or the store, and choose status codes; no SQL here.

pub mod admin;
pub mod api;
pub mod callback;
mod health;
pub mod limits;
mod links;
pub mod metrics;
pub mod request_span;

use actix_web::web;

use crate::config::Role;

/// Registers every route; a worker-only process serves just the health checks and metrics.
pub fn configure(cfg: &mut web::ServiceConfig, role: Role, session_key: actix_web::cookie::Key) {
    cfg.route("/healthz", web::get().to(health::healthz));
    cfg.route("/readyz", web::get().to(health::readyz));
    cfg.route("/metrics", web::get().to(metrics::metrics));
    if role.serves_http() {
        cfg.service(
            web::resource("/wechat")
                .route(web::get().to(callback::verify_url))
                .route(web::post().to(callback::receive_push)),
        );
        cfg.route("/r/{link}", web::get().to(links::follow_link));
        api::configure(cfg);
        admin::configure(cfg, session_key);
    }
}
