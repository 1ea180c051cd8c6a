//! The ceiling for `bench/callback`: a bare actix-web 4 server with the same crate versions as
//! tagcast, answering `POST /wechat` with a fixed `success` and doing nothing else (no signature
//! check, no XML, no database). Whatever wrk measures against it is the most this machine can do
//! for that request shape, client included.
//!
//! Usage: `cargo run --release --example bare_actix -- [ADDR]` (default `127.0.0.1:18081`).
//! Worker count is actix's default (one per core), as in `tagcast serve`.

use actix_web::http::header::ContentType;
use actix_web::{App, HttpResponse, HttpServer, web};

/// Reads the body (as tagcast must) and throws it away.
async fn wechat(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::plaintext()).body("success")
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::plaintext()).body("ok")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    HttpServer::new(|| {
        App::new()
            .app_data(web::PayloadConfig::new(64 * 1024))
            .route("/wechat", web::post().to(wechat))
            .route("/healthz", web::get().to(healthz))
    })
    .bind(&bind)?
    .run()
    .await
}
