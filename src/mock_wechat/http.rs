//! The actix side of the mock: the route table of the WeChat API, the one handler that serves
//! all of it (latency, injected failures, token check, body parsing, the call log), and the
//! registration of the `/mock/` control scope.
//!
//! Conventions shared by every API path:
//! - answers are HTTP 200 with JSON, refusals included (`{errcode, errmsg}`), as WeChat does
//!   (wechat-api.md, conventions): an unknown path is HTTP 200 with errcode 40066 ("invalid url");
//! - each path answers only the method the reference documents for it: a route that reads the
//!   query is GET (`token`, `tags/get`, `user/get`, `user/info`, `menu/get`, `menu/delete`,
//!   `sns/oauth2/access_token`), every other route is POST with a JSON body (`mass/speed/get`
//!   included: the reference shows it as POST `{}`). The reference is silent on what the wrong
//!   method gets, so the stricter reading: a GET of a POST path is 44002 (it carries no body,
//!   which is what WeChat reports for it), a POST (or anything else) to a GET path is 40066 (no
//!   API is served there under that method). The method is checked before the token;
//! - a route that takes a JSON body answers 44002 for an empty one and 47001 for one that is not
//!   a JSON object; the access token is checked before the body (41001/40014/42001/40001);
//! - a JSON body that spells non-ASCII text as `\uXXXX` escapes is 40033 (the reference: bodies
//!   "must send non-ASCII text as raw UTF-8 (a `\uXXXX`-escaped body can be rejected with
//!   40033)"; the mock takes the "can" as "is"). Escapes of ASCII (`\u0022`, control
//!   characters) are plain JSON and accepted;
//! - an injected failure answers before anything else and changes nothing, except a lost answer
//!   (`lose_next_answers`), which carries the call out and then answers 504 after a hold;
//! - every call is logged, refusals and injected failures included; `/mock/` calls are not;
//! - a call that passes the token check is charged to its path's daily and per-minute quota
//!   before its body is read (45009 / 45011 when used up; see `quota.rs`).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use super::MockWeChat;
use super::control::{self, Call, FaultKind};
use super::error::{
    ApiError, ApiResult, DATA_FORMAT_ERROR, EMPTY_POST_DATA, INVALID_CHARSET, INVALID_URL, SYSTEM_BUSY,
};
use super::state::{ApiRequest, State};
use super::{datacube, mass, media, misc, quota, tags, tokens, users};

/// Bodies up to this size are read (`mass/send` with 10,000 openids is ~350 KB).
const MAX_BODY_BYTES: usize = 16 << 20;

type Handler = fn(&mut State, &ApiRequest) -> ApiResult;

/// Whether a route needs `access_token`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Token,
    Open,
}

/// Whether a route reads a JSON body or only the query.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    Json,
    Query,
    /// A `multipart/form-data` upload (`media.rs`); not multipart is 41005, as WeChat finds no
    /// `media` in it.
    Multipart,
}

impl Input {
    /// The one HTTP method the reference documents for such a route: the query-only APIs are
    /// GET, the rest POST.
    // The catch-all keeps any body-taking input added later (an upload) POST without an edit here.
    #[allow(unreachable_patterns)]
    fn method(self) -> &'static str {
        match self {
            Self::Query => "GET",
            _ => "POST",
        }
    }
}

struct Route {
    path: &'static str,
    auth: Auth,
    input: Input,
    handler: Handler,
}

const fn route(path: &'static str, auth: Auth, input: Input, handler: Handler) -> Route {
    Route { path, auth, input, handler }
}

/// Every API path the mock serves, with its method (the conformance tests read this).
pub(super) fn routes() -> Vec<(&'static str, &'static str)> {
    ROUTES.iter().map(|r| (r.input.method(), r.path)).collect()
}

/// Every API path the mock serves.
const ROUTES: &[Route] = &[
    route("/cgi-bin/token", Auth::Open, Input::Query, tokens::get_token),
    route("/cgi-bin/stable_token", Auth::Open, Input::Json, tokens::stable_token),
    route("/cgi-bin/tags/create", Auth::Token, Input::Json, tags::create),
    route("/cgi-bin/tags/get", Auth::Token, Input::Query, tags::get),
    route("/cgi-bin/tags/update", Auth::Token, Input::Json, tags::update),
    route("/cgi-bin/tags/delete", Auth::Token, Input::Json, tags::delete),
    route("/cgi-bin/tags/members/batchtagging", Auth::Token, Input::Json, tags::batch_tagging),
    route("/cgi-bin/tags/members/batchuntagging", Auth::Token, Input::Json, tags::batch_untagging),
    route("/cgi-bin/tags/getidlist", Auth::Token, Input::Json, tags::id_list),
    route("/cgi-bin/user/tag/get", Auth::Token, Input::Json, tags::members),
    route("/cgi-bin/user/get", Auth::Token, Input::Query, users::user_get),
    route("/cgi-bin/user/info", Auth::Token, Input::Query, users::user_info),
    route("/cgi-bin/user/info/batchget", Auth::Token, Input::Json, users::user_info_batchget),
    route("/cgi-bin/message/mass/sendall", Auth::Token, Input::Json, mass::sendall),
    route("/cgi-bin/message/mass/send", Auth::Token, Input::Json, mass::send),
    route("/cgi-bin/message/mass/preview", Auth::Token, Input::Json, mass::preview),
    route("/cgi-bin/message/mass/get", Auth::Token, Input::Json, mass::get),
    route("/cgi-bin/message/mass/delete", Auth::Token, Input::Json, mass::delete),
    route("/cgi-bin/message/mass/speed/get", Auth::Token, Input::Json, mass::speed_get),
    route("/cgi-bin/message/mass/speed/set", Auth::Token, Input::Json, mass::speed_set),
    route("/cgi-bin/message/custom/send", Auth::Token, Input::Json, misc::custom_send),
    route("/cgi-bin/menu/create", Auth::Token, Input::Json, misc::menu_create),
    route("/cgi-bin/menu/get", Auth::Token, Input::Query, misc::menu_get),
    route("/cgi-bin/menu/delete", Auth::Token, Input::Query, misc::menu_delete),
    route("/sns/oauth2/access_token", Auth::Open, Input::Query, misc::oauth_access_token),
    route("/cgi-bin/draft/add", Auth::Token, Input::Json, media::draft_add),
    route("/cgi-bin/draft/get", Auth::Token, Input::Json, media::draft_get),
    route("/cgi-bin/draft/update", Auth::Token, Input::Json, media::draft_update),
    route("/cgi-bin/draft/delete", Auth::Token, Input::Json, media::draft_delete),
    route("/cgi-bin/draft/count", Auth::Token, Input::Query, media::draft_count),
    route("/cgi-bin/draft/batchget", Auth::Token, Input::Json, media::draft_batchget),
    route("/cgi-bin/material/add_material", Auth::Token, Input::Multipart, media::add_material),
    route("/cgi-bin/material/get_materialcount", Auth::Token, Input::Query, media::material_count),
    route("/cgi-bin/material/batchget_material", Auth::Token, Input::Json, media::batchget_material),
    route("/cgi-bin/media/upload", Auth::Token, Input::Multipart, media::media_upload),
    route("/cgi-bin/media/uploadimg", Auth::Token, Input::Multipart, media::upload_img),
    route("/datacube/getusersummary", Auth::Token, Input::Json, datacube::user_summary),
    route("/datacube/getusercumulate", Auth::Token, Input::Json, datacube::user_cumulate),
    route("/datacube/getupstreammsg", Auth::Token, Input::Json, datacube::upstream_msg),
    route("/datacube/getarticlesummary", Auth::Token, Input::Json, datacube::article_summary),
    route("/datacube/getarticletotal", Auth::Token, Input::Json, datacube::article_total),
    route("/datacube/getarticletotaldetail", Auth::Token, Input::Json, datacube::article_total_detail),
    route("/datacube/getarticleread", Auth::Token, Input::Json, datacube::article_read),
    route("/datacube/getarticleshare", Auth::Token, Input::Json, datacube::article_share),
    route("/cgi-bin/openapi/quota/get", Auth::Token, Input::Json, quota::quota_get),
    route("/cgi-bin/clear_quota", Auth::Token, Input::Json, quota::clear_quota),
    route("/cgi-bin/clear_quota/v2", Auth::Open, Input::Json, quota::clear_quota_v2),
];

/// Whether the mock serves `path` (what `openapi/quota/get` accepts).
pub(super) fn serves(path: &str) -> bool {
    ROUTES.iter().any(|r| r.path == path)
}

/// Registers app data, the `/mock/` scope and the API fallback.
pub(super) fn configure(mock: MockWeChat, cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(mock))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(web::JsonConfig::default().limit(MAX_BODY_BYTES));
    control::configure(cfg);
    cfg.default_service(web::to(serve_api));
}

/// What the API answers: a status and a JSON or text body.
struct Answer {
    status: u16,
    body: Body,
    errcode: i64,
    /// How long to wait before answering (a lost answer's hold).
    hold: std::time::Duration,
}

/// An answer's body: WeChat's JSON, or plain text for an injected HTTP failure.
enum Body {
    Json(Value),
    Text(String),
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        let errcode = body.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        Self { status, body: Body::Json(body), errcode, hold: std::time::Duration::ZERO }
    }

    fn refusal(state: &mut State, status: u16, error: &ApiError) -> Self {
        let rid = state.next_rid();
        Self::json(status, error.body(&rid))
    }

    fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self.body {
            Body::Json(json) => {
                HttpResponse::build(status).content_type("application/json; encoding=utf-8").body(json.to_string())
            }
            Body::Text(text) => HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(text),
        }
    }
}

/// Serves every path outside `/mock/`.
async fn serve_api(request: HttpRequest, body: web::Bytes, mock: web::Data<MockWeChat>) -> HttpResponse {
    let latency = mock.state().control.latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (answer, finishing) = {
        let mut state = mock.state();
        let answer = handle(&mut state, request.method().as_str(), request.path(), request.query_string(), &body);
        let finishing = std::mem::take(&mut state.finishing);
        // Counted before the lock is released: a job anyone can see is one `wait_for_callbacks`
        // waits for (counted after, a test could see the job, find nothing pending, and move on
        // while its result was still to come).
        mock.count_pending_finishes(finishing.len());
        (answer, finishing)
    };
    mock.spawn_finishes(finishing);
    if !answer.hold.is_zero() {
        tokio::time::sleep(answer.hold).await;
    }
    answer.into_response()
}

/// Answers one API call and logs it.
fn handle(state: &mut State, method: &str, path: &str, query: &str, raw: &[u8]) -> Answer {
    let answer = match ROUTES.iter().find(|r| r.path == path) {
        None => Answer::refusal(state, 200, &ApiError::new(INVALID_URL)),
        Some(route) if method != route.input.method() => {
            let code = if route.input.method() == "POST" && method == "GET" { EMPTY_POST_DATA } else { INVALID_URL };
            Answer::refusal(state, 200, &ApiError::new(code))
        }
        Some(route) => match state.control.take_fault(path) {
            Some(FaultKind::Errcode(code)) => Answer::refusal(state, 200, &ApiError::new(code)),
            Some(FaultKind::Http(status)) => Answer {
                status,
                body: Body::Text(format!("mock injected HTTP {status}")),
                errcode: SYSTEM_BUSY,
                hold: std::time::Duration::ZERO,
            },
            Some(FaultKind::LoseAnswer(hold)) => {
                let done = run(state, route, query, raw);
                Answer {
                    status: 504,
                    body: Body::Text(format!("mock lost the answer (errcode {} was given)", done.errcode)),
                    // The log says what the mock did, which is what tests ask about.
                    errcode: done.errcode,
                    hold,
                }
            }
            None => run(state, route, query, raw),
        },
    };
    state.control.calls.push(Call {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        body: logged_body(raw),
        errcode: answer.errcode,
        status: answer.status,
        answered_at: std::time::Instant::now(),
    });
    answer
}

/// Token check, body parsing and the route's handler.
fn run(state: &mut State, route: &Route, query: &str, raw: &[u8]) -> Answer {
    let query: HashMap<String, String> =
        web::Query::<HashMap<String, String>>::from_query(query).map(web::Query::into_inner).unwrap_or_default();
    let mut req = ApiRequest { query, body: Value::Null };
    if route.auth == Auth::Token {
        let now = state.now();
        if let Err(error) = state.tokens.check(tokens::token_of(&req), now) {
            return Answer::refusal(state, 200, &error);
        }
    }
    // Charged before the body is read: a call the handler refuses still counts (quota.rs).
    let now = state.now();
    if let Err(error) = state.quotas.charge(route.path, now) {
        return Answer::refusal(state, 200, &error);
    }
    if route.input == Input::Json {
        match parse_body(raw) {
            Ok(body) => req.body = body,
            Err(error) => return Answer::refusal(state, 200, &error),
        }
    }
    if route.input == Input::Multipart {
        match media::parse_multipart(raw) {
            Some(parts) => req.body = media::parts_as_body(&parts),
            None => return Answer::refusal(state, 200, &ApiError::new(super::error::MEDIA_DATA_MISSING)),
        }
    }
    match (route.handler)(state, &req) {
        Ok(body) => Answer::json(200, body),
        Err(error) => Answer::refusal(state, 200, &error),
    }
}

/// A JSON object, or 44002 (empty) / 47001 (anything else) / 40033 (non-ASCII escaped).
fn parse_body(raw: &[u8]) -> Result<Value, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(EMPTY_POST_DATA));
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(_) if escapes_non_ascii(raw) => Err(ApiError::new(INVALID_CHARSET)),
        Ok(body) if body.is_object() => Ok(body),
        _ => Err(ApiError::new(DATA_FORMAT_ERROR)),
    }
}

/// Whether valid JSON text holds a `\uXXXX` escape of a character beyond ASCII. A backslash
/// in valid JSON only ever starts an escape, so stepping over each escape whole is enough to
/// tell `\\u00e9` (a backslash, then text) from `\u00e9`.
fn escapes_non_ascii(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            i += 1;
            continue;
        }
        if raw.get(i + 1) == Some(&b'u') {
            let hex = raw.get(i + 2..i + 6).and_then(|h| std::str::from_utf8(h).ok());
            if hex.and_then(|h| u32::from_str_radix(h, 16).ok()).is_some_and(|c| c >= 0x80) {
                return true;
            }
            i += 6;
        } else {
            i += 2;
        }
    }
    false
}

/// The body as the call log keeps it.
fn logged_body(raw: &[u8]) -> Value {
    if raw.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_paths_are_unique() {
        let mut paths: Vec<&str> = ROUTES.iter().map(|r| r.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ROUTES.len());
    }

    #[test]
    fn bodies_must_be_json_objects() {
        assert_eq!(parse_body(b"").unwrap_err().code, EMPTY_POST_DATA);
        assert_eq!(parse_body(b"  \n").unwrap_err().code, EMPTY_POST_DATA);
        assert_eq!(parse_body(b"{nope").unwrap_err().code, DATA_FORMAT_ERROR);
        assert_eq!(parse_body(b"[1]").unwrap_err().code, DATA_FORMAT_ERROR);
        assert!(parse_body(br#"{"a":1}"#).is_ok());
    }

    #[test]
    fn non_ascii_must_be_raw_utf8() {
        assert_eq!(parse_body(br#"{"name":"\u5e7f\u4e1c"}"#).unwrap_err().code, INVALID_CHARSET);
        assert_eq!(parse_body(br#"{"name":"caf\u00e9"}"#).unwrap_err().code, INVALID_CHARSET);
        assert!(parse_body("{\"name\":\"广东\"}".as_bytes()).is_ok());
        // ASCII escapes are ordinary JSON; an escaped backslash before `u` is text.
        assert!(parse_body(br#"{"a":"\u0022\n\u001f"}"#).is_ok());
        assert!(parse_body(br#"{"a":"C:\\u5e7f"}"#).is_ok());
    }

    #[test]
    fn methods_follow_the_reference() {
        let methods: HashMap<&str, &str> = routes().into_iter().map(|(m, p)| (p, m)).collect();
        for get in [
            "/cgi-bin/token",
            "/cgi-bin/tags/get",
            "/cgi-bin/user/get",
            "/cgi-bin/user/info",
            "/cgi-bin/menu/get",
            "/cgi-bin/menu/delete",
            "/sns/oauth2/access_token",
            // The official pages of these two give GET (§13 names them without a method).
            "/cgi-bin/draft/count",
            "/cgi-bin/material/get_materialcount",
        ] {
            assert_eq!(methods[get], "GET", "{get}");
        }
        assert_eq!(methods.values().filter(|m| **m == "GET").count(), 9);
        assert_eq!(methods["/cgi-bin/message/mass/speed/get"], "POST");
    }
}
