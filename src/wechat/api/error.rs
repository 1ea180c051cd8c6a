//! WeChat's error codes as a type, and the client's error.

use std::fmt;

/// How a [`WeChatError::QuotaExhausted`] reads: stored as the `last_error` of what waits for the
/// quota, so a reset (`clear_quota`) can find the waits and end them.
pub const QUOTA_EXHAUSTED_PREFIX: &str = "WeChat's daily quota of ";

/// A WeChat `errcode`, named where tagcast acts on it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrCode {
    /// -1: system busy; retry later.
    SystemBusy,
    /// 40001: AppSecret wrong, or the access token is invalid / not the latest.
    InvalidCredential,
    /// 40002: invalid grant_type.
    InvalidGrantType,
    /// 40003: invalid openid (not a follower, or another account's).
    InvalidOpenId,
    /// 40007: invalid media_id.
    InvalidMediaId,
    /// 40013: invalid AppID.
    InvalidAppId,
    /// 40014: malformed access token.
    InvalidAccessToken,
    /// 40016–40027: the menu breaks a rule (button count, type, name, key or url length).
    InvalidMenu(i64),
    /// 40032: openid list empty or longer than the call allows.
    InvalidOpenIdList,
    /// 40125: invalid AppSecret.
    InvalidAppSecret,
    /// 40130: mass-send list shorter than 2 or longer than 10,000 openids.
    InvalidToUserList,
    /// 40163: OAuth code already used.
    CodeUsed,
    /// 40164 / 61004: caller IP not on the account's whitelist.
    IpNotWhitelisted,
    /// 41001: access token missing.
    MissingAccessToken,
    /// 42001: access token expired.
    AccessTokenExpired,
    /// 43004: the user does not follow the account.
    NotFollowing,
    /// 45009: the API's daily quota is used up.
    DailyQuotaExceeded,
    /// 45011: per-minute frequency limit.
    MinuteQuotaExceeded,
    /// 45015: outside the 48 h customer-service window.
    OutOfResponseWindow,
    /// 45028: no mass-send quota left.
    NoMassSendQuota,
    /// 45047: customer-service message quota for the window used up.
    CustomQuotaExceeded,
    /// 48006: `clear_quota` used 10 times this month.
    ClearQuotaUsedUp,
    /// 76021: `openapi/quota/get` does not know the path.
    InvalidCgiPath,
    /// 45056: the account already has 100 tags.
    TooManyTags,
    /// 45057: the tag has more than 100,000 followers and cannot be deleted.
    TagTooLargeToDelete,
    /// 45058: reserved tags 0, 1 and 2 cannot be changed.
    ReservedTag,
    /// 45059: the user already carries 20 tags.
    UserTagLimit,
    /// 45065: the same clientmsgid was sent within 24 h (the answer carries the job's msg_id).
    DuplicateClientMsgId,
    /// 45066: the same clientmsgid retried within a minute.
    ClientMsgIdRetriedTooSoon,
    /// 45067: clientmsgid longer than 64 bytes.
    ClientMsgIdTooLong,
    /// 45083 / 45084: mass-send speed out of range / not set.
    InvalidSpeed,
    /// 45157: tag name invalid or taken.
    TagNameTaken,
    /// 45158: tag name longer than 30 bytes.
    TagNameTooLong,
    /// 45159: invalid tag id.
    InvalidTagId,
    /// 47001: WeChat could not parse the request body.
    MalformedRequest,
    /// 48001: the API is not authorised for this account (type or verification).
    ApiUnauthorized,
    /// 49003: the openid does not belong to this AppID.
    OpenIdNotOfThisApp,
    /// 61500 / 61501: datacube date out of range / span too long.
    InvalidDateRange,
    /// Any other code, kept as WeChat sent it.
    Other(i64),
}

impl ErrCode {
    /// Names a raw `errcode`.
    pub fn from_code(code: i64) -> Self {
        match code {
            -1 => Self::SystemBusy,
            40001 => Self::InvalidCredential,
            40002 => Self::InvalidGrantType,
            40003 => Self::InvalidOpenId,
            40007 => Self::InvalidMediaId,
            40013 => Self::InvalidAppId,
            40014 => Self::InvalidAccessToken,
            40016..=40027 => Self::InvalidMenu(code),
            40032 => Self::InvalidOpenIdList,
            40125 => Self::InvalidAppSecret,
            40130 => Self::InvalidToUserList,
            40163 => Self::CodeUsed,
            40164 | 61004 => Self::IpNotWhitelisted,
            41001 => Self::MissingAccessToken,
            42001 => Self::AccessTokenExpired,
            43004 => Self::NotFollowing,
            45009 => Self::DailyQuotaExceeded,
            45011 => Self::MinuteQuotaExceeded,
            45015 => Self::OutOfResponseWindow,
            45028 => Self::NoMassSendQuota,
            45047 => Self::CustomQuotaExceeded,
            48006 => Self::ClearQuotaUsedUp,
            76021 => Self::InvalidCgiPath,
            45056 => Self::TooManyTags,
            45057 => Self::TagTooLargeToDelete,
            45058 => Self::ReservedTag,
            45059 => Self::UserTagLimit,
            45065 => Self::DuplicateClientMsgId,
            45066 => Self::ClientMsgIdRetriedTooSoon,
            45067 => Self::ClientMsgIdTooLong,
            45083 | 45084 => Self::InvalidSpeed,
            45157 => Self::TagNameTaken,
            45158 => Self::TagNameTooLong,
            45159 => Self::InvalidTagId,
            47001 => Self::MalformedRequest,
            48001 => Self::ApiUnauthorized,
            49003 => Self::OpenIdNotOfThisApp,
            61500 | 61501 => Self::InvalidDateRange,
            other => Self::Other(other),
        }
    }

    /// The raw `errcode`.
    pub fn code(self) -> i64 {
        match self {
            Self::SystemBusy => -1,
            Self::InvalidCredential => 40001,
            Self::InvalidGrantType => 40002,
            Self::InvalidOpenId => 40003,
            Self::InvalidMediaId => 40007,
            Self::InvalidAppId => 40013,
            Self::InvalidAccessToken => 40014,
            Self::InvalidOpenIdList => 40032,
            Self::InvalidAppSecret => 40125,
            Self::InvalidToUserList => 40130,
            Self::CodeUsed => 40163,
            Self::IpNotWhitelisted => 40164,
            Self::MissingAccessToken => 41001,
            Self::AccessTokenExpired => 42001,
            Self::NotFollowing => 43004,
            Self::DailyQuotaExceeded => 45009,
            Self::MinuteQuotaExceeded => 45011,
            Self::OutOfResponseWindow => 45015,
            Self::NoMassSendQuota => 45028,
            Self::CustomQuotaExceeded => 45047,
            Self::ClearQuotaUsedUp => 48006,
            Self::InvalidCgiPath => 76021,
            Self::TooManyTags => 45056,
            Self::TagTooLargeToDelete => 45057,
            Self::ReservedTag => 45058,
            Self::UserTagLimit => 45059,
            Self::DuplicateClientMsgId => 45065,
            Self::ClientMsgIdRetriedTooSoon => 45066,
            Self::ClientMsgIdTooLong => 45067,
            Self::InvalidSpeed => 45083,
            Self::TagNameTaken => 45157,
            Self::TagNameTooLong => 45158,
            Self::InvalidTagId => 45159,
            Self::MalformedRequest => 47001,
            Self::ApiUnauthorized => 48001,
            Self::OpenIdNotOfThisApp => 49003,
            Self::InvalidDateRange => 61500,
            Self::InvalidMenu(code) | Self::Other(code) => code,
        }
    }
}

impl fmt::Display for ErrCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code())
    }
}

/// A request's URL carries the access token, and the token call's the AppSecret: a transport
/// error keeps neither, so no log line or error page can show them.
impl From<reqwest::Error> for WeChatError {
    fn from(error: reqwest::Error) -> Self {
        Self::Transport(error.without_url())
    }
}

/// What a WeChat API call failed with.
#[derive(Debug, thiserror::Error)]
pub enum WeChatError {
    /// Without its URL (see the `From` below).
    #[error("request to WeChat failed")]
    Transport(#[source] reqwest::Error),
    #[error("WeChat answered HTTP {0}")]
    Http(u16),
    #[error("WeChat answered errcode {code}: {message}")]
    Api {
        code: ErrCode,
        message: String,
        /// 45065 names the mass-send job that already used the clientmsgid.
        msg_id: Option<i64>,
    },
    #[error("cannot read WeChat's answer")]
    Decode(#[source] serde_json::Error),
    #[error("the shared access-token store failed")]
    TokenStore(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The path's daily quota is used up (45009 now, or earlier by any process): not called
    /// again before `until`, the next Beijing midnight.
    #[error("{QUOTA_EXHAUSTED_PREFIX}{path} is used up until {until}")]
    QuotaExhausted { path: String, until: chrono::DateTime<chrono::Utc> },
    #[error("gave up after {attempts} attempts")]
    RetriesExhausted {
        attempts: u32,
        #[source]
        last: Box<WeChatError>,
    },
}

impl WeChatError {
    /// The WeChat error code, if WeChat answered with one.
    pub fn code(&self) -> Option<ErrCode> {
        match self {
            Self::Api { code, .. } => Some(*code),
            Self::RetriesExhausted { last, .. } => last.code(),
            Self::QuotaExhausted { .. } => Some(ErrCode::DailyQuotaExceeded),
            _ => None,
        }
    }

    /// 40001, 40014 and 42001 mean our cached access token is no longer valid: refresh once and retry.
    pub fn is_stale_token(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrCode::InvalidCredential | ErrCode::InvalidAccessToken | ErrCode::AccessTokenExpired)
        )
    }

    /// Busy and minute-limit answers, 5xx and timeouts pass with time; anything else would fail
    /// the same way again. A used-up daily quota (45009) is not transient: it passes only at
    /// Beijing midnight, which [`WeChatError::quota_resumes_at`] names, so callers wait for it
    /// instead of retrying. The client giving up on a transient error leaves it transient: an
    /// outage longer than the client's own retries is for the caller's later retry, not a verdict.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::RetriesExhausted { last, .. } => last.is_transient(),
            Self::Transport(e) => e.is_timeout() || e.is_connect() || e.is_request(),
            Self::Http(status) => *status >= 500 || *status == 429,
            Self::Api { code, .. } => {
                matches!(code, ErrCode::SystemBusy | ErrCode::MinuteQuotaExceeded)
            }
            _ => false,
        }
    }

    /// When a used-up daily quota lets the call through again (the next Beijing midnight).
    pub fn quota_resumes_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Self::QuotaExhausted { until, .. } => Some(*until),
            Self::RetriesExhausted { last, .. } => last.quota_resumes_at(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transport_error_never_carries_the_access_token_or_the_secret() {
        // Port 9 (discard) is closed here, so the request fails at connect, as in an outage.
        let sent = reqwest::Client::new()
            .get("http://127.0.0.1:9/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=TOPSECRET&access_token=TOKEN123")
            .send()
            .await;
        let error = WeChatError::from(sent.expect_err("nothing listens on port 9"));
        for shown in [format!("{error}"), format!("{error:?}"), format!("{:?}", std::error::Error::source(&error))] {
            assert!(!shown.contains("TOPSECRET") && !shown.contains("TOKEN123"), "{shown}");
        }
        assert!(error.is_transient(), "still an outage to retry");
    }
}
