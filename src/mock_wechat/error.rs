//! The `{errcode, errmsg}` answers of the mock: one [`ApiError`] per refusal, with the errcode
//! and the English `errmsg` WeChat uses, plus the few extra fields some refusals carry (45065's
//! existing `msg_id`).
//!
//! Owns the errcode vocabulary (wechat-api.md §6.4, §7, §9.7, §12, §14); it decides nothing about
//! when a code applies.

use serde_json::{Map, Value};

/// A refusal: WeChat answers it with HTTP 200 and `{"errcode": code, "errmsg": "... rid: ..."}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ApiError {
    /// WeChat's errcode.
    pub code: i64,
    /// Extra top-level fields of the answer (45065 carries the existing `msg_id`).
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// A refusal with `code` and nothing else.
    pub fn new(code: i64) -> Self {
        Self { code, extra: Map::new() }
    }

    /// Adds a top-level field to the answer.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// The answer body; `rid` is the request id WeChat appends to every `errmsg`.
    pub fn body(&self, rid: &str) -> Value {
        let mut body = Map::new();
        body.insert("errcode".into(), self.code.into());
        body.insert("errmsg".into(), format!("{} rid: {rid}", errmsg(self.code)).into());
        body.extend(self.extra.clone());
        Value::Object(body)
    }
}

/// What every handler returns: the success body, or a refusal.
pub(super) type ApiResult = Result<Value, ApiError>;

/// Shorthand for `Err(ApiError::new(code))`.
pub(super) fn fail<T>(code: i64) -> Result<T, ApiError> {
    Err(ApiError::new(code))
}

/// System busy (§14.1).
pub(super) const SYSTEM_BUSY: i64 = -1;
/// AppSecret wrong, or the access token is not the latest (§6.4).
pub(super) const INVALID_CREDENTIAL: i64 = 40001;
pub(super) const INVALID_GRANT_TYPE: i64 = 40002;
pub(super) const INVALID_OPENID: i64 = 40003;
pub(super) const INVALID_MEDIA_TYPE: i64 = 40004;
pub(super) const INVALID_FILE_TYPE: i64 = 40005;
pub(super) const INVALID_MEDIA_SIZE: i64 = 40006;
pub(super) const INVALID_MEDIA_ID: i64 = 40007;
pub(super) const INVALID_MESSAGE_TYPE: i64 = 40008;
pub(super) const INVALID_APPID: i64 = 40013;
pub(super) const INVALID_ACCESS_TOKEN: i64 = 40014;
pub(super) const INVALID_BUTTON_SIZE: i64 = 40016;
pub(super) const INVALID_BUTTON_TYPE: i64 = 40017;
pub(super) const INVALID_BUTTON_NAME_SIZE: i64 = 40018;
pub(super) const INVALID_BUTTON_KEY_SIZE: i64 = 40019;
pub(super) const INVALID_BUTTON_URL_SIZE: i64 = 40020;
pub(super) const INVALID_SUB_BUTTON_SIZE: i64 = 40023;
pub(super) const INVALID_SUB_BUTTON_TYPE: i64 = 40024;
pub(super) const INVALID_SUB_BUTTON_NAME_SIZE: i64 = 40025;
pub(super) const INVALID_SUB_BUTTON_KEY_SIZE: i64 = 40026;
pub(super) const INVALID_SUB_BUTTON_URL_SIZE: i64 = 40027;
pub(super) const INVALID_CODE: i64 = 40029;
pub(super) const INVALID_OPENID_LIST_SIZE: i64 = 40032;
/// A JSON body with `\uXXXX` escapes of non-ASCII text (wechat-api.md conventions, §14.1).
pub(super) const INVALID_CHARSET: i64 = 40033;
pub(super) const INVALID_ARGS: i64 = 40035;
pub(super) const INVALID_URL: i64 = 40066;
pub(super) const INVALID_APPSECRET: i64 = 40125;
pub(super) const INVALID_TOUSER_SIZE: i64 = 40130;
pub(super) const CODE_BEEN_USED: i64 = 40163;
pub(super) const ACCESS_TOKEN_MISSING: i64 = 41001;
pub(super) const APPID_MISSING: i64 = 41002;
pub(super) const APPSECRET_MISSING: i64 = 41004;
pub(super) const CODE_MISSING: i64 = 41008;
pub(super) const MEDIA_DATA_MISSING: i64 = 41005;
pub(super) const ACCESS_TOKEN_EXPIRED: i64 = 42001;
pub(super) const REQUIRE_SUBSCRIBE: i64 = 43004;
pub(super) const EMPTY_POST_DATA: i64 = 44002;
pub(super) const EMPTY_CONTENT: i64 = 44004;
pub(super) const TOO_MANY_ARTICLES: i64 = 45008;
pub(super) const OUT_OF_RESPONSE_WINDOW: i64 = 45015;
pub(super) const NO_MASS_QUOTA: i64 = 45028;
pub(super) const TOO_MANY_TAGS: i64 = 45056;
pub(super) const TAG_HAS_TOO_MANY_FANS: i64 = 45057;
pub(super) const RESERVED_TAG: i64 = 45058;
pub(super) const USER_HAS_TOO_MANY_TAGS: i64 = 45059;
pub(super) const CLIENTMSGID_EXISTS: i64 = 45065;
pub(super) const CLIENTMSGID_RETRIED_TOO_SOON: i64 = 45066;
pub(super) const CLIENTMSGID_TOO_LONG: i64 = 45067;
pub(super) const SPEED_OUT_OF_RANGE: i64 = 45083;
pub(super) const NO_SPEED: i64 = 45084;
pub(super) const INVALID_TAG_NAME: i64 = 45157;
pub(super) const TAG_NAME_TOO_LONG: i64 = 45158;
pub(super) const INVALID_TAG_ID: i64 = 45159;
pub(super) const MENU_NOT_EXIST: i64 = 46002;
pub(super) const DATA_FORMAT_ERROR: i64 = 47001;
pub(super) const API_UNAUTHORIZED: i64 = 48001;
pub(super) const DATE_FORMAT_ERROR: i64 = 61500;
pub(super) const DATE_RANGE_ERROR: i64 = 61501;
// Quotas, the customer-service window and content limits (§6.2, §10, §14).
pub(super) const CONTENT_TOO_LONG: i64 = 45002;
pub(super) const TITLE_TOO_LONG: i64 = 45003;
pub(super) const DESCRIPTION_TOO_LONG: i64 = 45004;
pub(super) const DAILY_QUOTA_EXCEEDED: i64 = 45009;
pub(super) const MINUTE_QUOTA_EXCEEDED: i64 = 45011;
pub(super) const CUSTOM_QUOTA_EXCEEDED: i64 = 45047;
pub(super) const CLEAR_QUOTA_USED_UP: i64 = 48006;
pub(super) const INVALID_CGI_PATH: i64 = 76021;

/// WeChat's English `errmsg` for a code (our wording where we never saw WeChat's).
pub(super) fn errmsg(code: i64) -> &'static str {
    match code {
        SYSTEM_BUSY => "system error",
        0 => "ok",
        INVALID_CREDENTIAL => "invalid credential, access_token is invalid or not latest",
        INVALID_GRANT_TYPE => "invalid grant_type",
        INVALID_OPENID => "invalid openid",
        INVALID_MEDIA_TYPE => "invalid media type",
        INVALID_FILE_TYPE => "invalid file type",
        INVALID_MEDIA_SIZE => "invalid media size",
        INVALID_MEDIA_ID => "invalid media_id",
        INVALID_MESSAGE_TYPE => "invalid message type",
        INVALID_APPID => "invalid appid",
        INVALID_ACCESS_TOKEN => "invalid access_token",
        INVALID_BUTTON_SIZE => "invalid button size",
        INVALID_BUTTON_TYPE => "invalid button type",
        INVALID_BUTTON_NAME_SIZE => "invalid button name size",
        INVALID_BUTTON_KEY_SIZE => "invalid button key size",
        INVALID_BUTTON_URL_SIZE => "invalid button url size",
        INVALID_SUB_BUTTON_SIZE => "invalid sub button size",
        INVALID_SUB_BUTTON_TYPE => "invalid sub button type",
        INVALID_SUB_BUTTON_NAME_SIZE => "invalid sub button name size",
        INVALID_SUB_BUTTON_KEY_SIZE => "invalid sub button key size",
        INVALID_SUB_BUTTON_URL_SIZE => "invalid sub button url size",
        INVALID_CODE => "invalid code",
        INVALID_OPENID_LIST_SIZE => "invalid openid list size",
        INVALID_CHARSET => "invalid charset. please check your request, if include \\uxxxx will create fail!",
        INVALID_ARGS => "invalid args",
        INVALID_URL => "invalid url",
        INVALID_APPSECRET => "invalid appsecret",
        INVALID_TOUSER_SIZE => "invalid openid list size, at least two openid and at most 10000",
        CODE_BEEN_USED => "code been used",
        ACCESS_TOKEN_MISSING => "access_token missing",
        APPID_MISSING => "appid missing",
        APPSECRET_MISSING => "appsecret missing",
        CODE_MISSING => "missing code",
        MEDIA_DATA_MISSING => "media data missing",
        ACCESS_TOKEN_EXPIRED => "access_token expired",
        REQUIRE_SUBSCRIBE => "require subscribe",
        EMPTY_POST_DATA => "empty post data",
        EMPTY_CONTENT => "empty content",
        TOO_MANY_ARTICLES => "article size out of limit",
        DAILY_QUOTA_EXCEEDED => "reach max api daily quota limit",
        MINUTE_QUOTA_EXCEEDED => "api minute-quota reach limit",
        OUT_OF_RESPONSE_WINDOW => "response out of time limit or subscription is canceled",
        NO_MASS_QUOTA => "has no masssend quota",
        TOO_MANY_TAGS => "too many tags now, no need to add new",
        TAG_HAS_TOO_MANY_FANS => "can't delete the tag that has too many fans",
        RESERVED_TAG => "can't modify sys tag",
        USER_HAS_TOO_MANY_TAGS => "user has too many tags",
        CLIENTMSGID_EXISTS => "clientmsgid exist",
        CLIENTMSGID_RETRIED_TOO_SOON => "clientmsgid retry too fast, please retry after 1 minute",
        CLIENTMSGID_TOO_LONG => "clientmsgid size out of limit",
        SPEED_OUT_OF_RANGE => "the speed out of range",
        NO_SPEED => "no speed message",
        INVALID_TAG_NAME => "invalid tag name",
        TAG_NAME_TOO_LONG => "tag name too long",
        INVALID_TAG_ID => "invalid tag id",
        MENU_NOT_EXIST => "menu no exist",
        DATA_FORMAT_ERROR => "data format error",
        API_UNAUTHORIZED => "api unauthorized",
        DATE_FORMAT_ERROR => "invalid date format",
        DATE_RANGE_ERROR => "invalid date range",
        CONTENT_TOO_LONG => "content size out of limit",
        TITLE_TOO_LONG => "title size out of limit",
        DESCRIPTION_TOO_LONG => "description size out of limit",
        CUSTOM_QUOTA_EXCEEDED => "reach max customer service message quota limit",
        CLEAR_QUOTA_USED_UP => "forbid to clear quota because of reaching the limit",
        INVALID_CGI_PATH => "invalid cgi_path",
        _ => "mock injected error",
    }
}
