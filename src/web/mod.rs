//! HTTP: the WeChat callback, health checks and metrics, the JSON API, and the admin pages.
//! Handlers parse, call the inbox or the store, and choose status codes; no SQL here.

pub mod admin;
pub mod api;
pub mod callback;
pub mod client_addr;
mod health;
pub mod limits;
mod links;
pub mod metrics;
pub mod request_span;

use actix_web::web;

/// Registers every route; a worker-only process (`serves_http` false) serves just the health
/// checks and metrics.
pub fn configure(cfg: &mut web::ServiceConfig, serves_http: bool, session_key: actix_web::cookie::Key) {
    cfg.route("/healthz", web::get().to(health::healthz));
    cfg.route("/readyz", web::get().to(health::readyz));
    cfg.route("/metrics", web::get().to(metrics::metrics));
    if serves_http {
        cfg.service(
            web::resource("/wechat")
                .route(web::get().to(callback::verify_url))
                .route(web::post().to(callback::receive_push)),
        );
        cfg.service(
            web::resource("/wechat/{account}")
                .route(web::get().to(callback::verify_url))
                .route(web::post().to(callback::receive_push)),
        );
        cfg.route("/r/{link}", web::get().to(links::follow_link));
        api::configure(cfg);
        admin::configure(cfg, session_key);
    }
}

/// The client's address for throttling: the TCP peer, or what a trusted proxy says it saw
/// (see [`crate::web::client_addr`]). Without the setting in `app_data`, the peer.
pub fn client_ip(req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    let Some(proxies) = req.app_data::<web::Data<crate::web::client_addr::TrustedProxies>>() else {
        return peer;
    };
    if proxies.is_empty() {
        return peer;
    }
    let headers = req.headers();
    // Lossily: a header that is not UTF-8 is still there, and must not make way for X-Real-IP.
    let forwarded_for: Vec<std::borrow::Cow<'_, str>> =
        headers.get_all("x-forwarded-for").map(|v| String::from_utf8_lossy(v.as_bytes())).collect();
    let real_ip = headers.get("x-real-ip").map(|v| String::from_utf8_lossy(v.as_bytes()));
    proxies.client_ip(peer, &forwarded_for, real_ip.as_deref())
}
