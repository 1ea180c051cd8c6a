//! The root span of every request: tracing-actix-web's default fields, except that `http.target`
//! is the path without the query string. WeChat's callback query carries `signature`,
//! `msg_signature`, `timestamp`, `nonce` and the sender's `openid`, and in plaintext mode a
//! signature logged while still fresh could carry a forged push; other query strings are kept out
//! too, so no route has to be remembered here.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

/// The root span at `$level`; every field is computed only when the span is enabled.
macro_rules! request_span {
    ($level:ident, $request:expr) => {{
        let request: &ServiceRequest = $request;
        let route = || request.match_pattern().unwrap_or_else(|| "default".to_owned());
        tracing::span!(
            tracing::Level::$level,
            "HTTP request",
            http.method = %request.method(),
            http.route = %route(),
            http.flavor = ?request.version(),
            http.scheme = %request.connection_info().scheme(),
            http.host = %request.connection_info().host(),
            // Forwarding headers only from a trusted proxy (`realip_remote_addr` believes anyone's).
            http.client_ip = %crate::web::client_ip(request.request()).map(|ip| ip.to_string()).unwrap_or_default(),
            http.user_agent = %request.headers().get("User-Agent").and_then(|h| h.to_str().ok()).unwrap_or(""),
            http.target = %request.path(),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{} {}", request.method(), route()),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            request_id = request.extensions().get::<RequestId>().copied().map(tracing::field::display),
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }};
}

/// [`RootSpanBuilder`] that never records a query string.
///
/// WeChat's pushes get their span at `debug`: they come by the thousand a second, a span at the
/// default `info` level cost about as much server CPU as storing the push (issue 19's bench), and
/// the fmt subscriber prints no span of its own. What an operator needs about pushes is in the
/// callback metrics and in the warnings of the writers, which carry their own fields.
pub struct PathOnlySpan;

impl RootSpanBuilder for PathOnlySpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if request.path().starts_with("/wechat") { request_span!(DEBUG, request) } else { request_span!(INFO, request) }
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use actix_web::{App, HttpResponse, test, web};
    use tracing_actix_web::TracingLogger;

    use super::PathOnlySpan;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What this thread logs at `level` and above from now until the guard drops, as text.
    fn capture_logs_at(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(level)
            .with_ansi(false)
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
        capture_logs_at(tracing::Level::INFO)
    }

    /// Logs `handled` inside a request to `path` at `level`; what was written.
    async fn log_of_a_request(path: &'static str, level: tracing::Level) -> String {
        let (captured, _guard) = capture_logs_at(level);
        let app = test::init_service(App::new().wrap(TracingLogger::<PathOnlySpan>::new()).route(
            path,
            web::post().to(|| async {
                tracing::warn!("handled");
                HttpResponse::Ok().finish()
            }),
        ))
        .await;
        test::call_service(&app, test::TestRequest::post().uri(path).to_request()).await;
        String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8")
    }

    #[actix_web::test]
    async fn pushes_get_their_request_span_at_debug_and_other_requests_at_info() {
        let push = log_of_a_request("/wechat", tracing::Level::INFO).await;
        assert!(push.contains("handled") && !push.contains("HTTP request"), "{push}");
        let push = log_of_a_request("/wechat/shop", tracing::Level::DEBUG).await;
        assert!(push.contains("HTTP request") && push.contains("/wechat/shop"), "{push}");
        let page = log_of_a_request("/admin/tags", tracing::Level::INFO).await;
        assert!(page.contains("HTTP request") && page.contains("/admin/tags"), "{page}");
    }

    #[actix_web::test]
    async fn the_callback_query_string_never_reaches_the_log() {
        let (captured, _guard) = capture_logs_at(tracing::Level::DEBUG);
        let app = test::init_service(App::new().wrap(TracingLogger::<PathOnlySpan>::new()).route(
            "/wechat",
            web::post().to(|| async {
                tracing::info!("handled");
                HttpResponse::Forbidden().finish()
            }),
        ))
        .await;
        let query = "signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa&timestamp=1409735669&nonce=1320562132\
                     &openid=oSecretOpenId&encrypt_type=aes&msg_signature=6ad1f3d5c2a7e9b25a30732f161a50dee96bd5fb\
                     &echostr=echoSecret";
        let request = test::TestRequest::post().uri(&format!("/wechat?{query}")).to_request();
        let response = test::call_service(&app, request).await;
        assert_eq!(response.status(), 403);
        let log = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
        assert!(log.contains("handled") && log.contains("/wechat"), "the span was logged: {log}");
        for secret in ["5d197aaf", "1409735669", "1320562132", "oSecretOpenId", "6ad1f3d5", "echoSecret", "signature="]
        {
            assert!(!log.contains(secret), "{secret} leaked into {log}");
        }
    }

    #[actix_web::test]
    async fn the_logged_client_address_believes_forwarding_headers_only_from_a_trusted_proxy() {
        let (captured, _guard) = capture_logs();
        let proxies = crate::web::client_addr::TrustedProxies::parse("10.0.0.1").expect("valid");
        let app = test::init_service(
            App::new().wrap(TracingLogger::<PathOnlySpan>::new()).app_data(web::Data::new(proxies)).route(
                "/",
                web::get().to(|| async {
                    tracing::info!("handled");
                    HttpResponse::Ok().finish()
                }),
            ),
        )
        .await;
        let log = || String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
        // A client connecting directly writes an address of its choosing.
        let request = test::TestRequest::get()
            .uri("/")
            .peer_addr("203.0.113.9:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "198.51.100.66"))
            .insert_header(("forwarded", "for=198.51.100.67"))
            .insert_header(("x-real-ip", "198.51.100.68"))
            .to_request();
        test::call_service(&app, request).await;
        let logged = log();
        assert!(logged.contains("http.client_ip=203.0.113.9"), "{logged}");
        assert!(!logged.contains("198.51.100.6"), "{logged}");
        // Through the trusted proxy, what it saw.
        let request = test::TestRequest::get()
            .uri("/")
            .peer_addr("10.0.0.1:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "1.1.1.1, 198.51.100.70"))
            .to_request();
        test::call_service(&app, request).await;
        let logged = log();
        assert!(logged.contains("http.client_ip=198.51.100.70"), "{logged}");
    }
}
