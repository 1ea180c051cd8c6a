//! access tokens (wechat-api.md §6): `GET /cgi-bin/token`, `POST /cgi-bin/stable_token`, and
//! the check every other API call goes through.
//!
//! Rules:
//! - a token lives 7200 s; `expires_in` of `stable_token` is what is left of it;
//! - every `cgi-bin/token` call mints a new token, and the previous one keeps working for 5
//!   minutes only (WeChat's overlap); used after that it answers 40001 ("not latest");
//! - `stable_token` returns the current stable token while it is valid; `force_refresh: true`
//!   mints a new one and the old one answers 40001 at once. The two chains never invalidate each
//!   other. `force_refresh` is allowed 20 times per Beijing day (45009 after) and 30 s apart
//!   (45011 sooner), counted in `quota.rs`;
//! - missing token 41001, never issued 40014, expired (or `expire_tokens`) 42001;
//! - credentials: grant_type other than `client_credential` 40002, missing appid 41002, missing
//!   secret 41004, wrong appid 40013, wrong secret 40125.
//!
//! Must not: know any other API; the HTTP layer calls [`Tokens::check`] before a handler runs.

use std::collections::HashMap;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::json;

use super::error::{
    ACCESS_TOKEN_EXPIRED, ACCESS_TOKEN_MISSING, APPID_MISSING, APPSECRET_MISSING, ApiError, ApiResult,
    INVALID_ACCESS_TOKEN, INVALID_APPID, INVALID_APPSECRET, INVALID_CREDENTIAL, INVALID_GRANT_TYPE, fail,
};
use super::state::{ApiRequest, State, bool_field, str_field};

/// How long a token lives (§6.1).
pub(super) const TOKEN_TTL_SECS: i64 = 7200;
/// How long a replaced `cgi-bin/token` token keeps working (§6.1).
pub(super) const OVERLAP_SECS: i64 = 300;
/// Real tokens are 130-160 characters; clients must reserve 512.
const TOKEN_LEN: usize = 136;

/// Every token ever issued and which ones are current.
#[derive(Default)]
pub(super) struct Tokens {
    records: HashMap<String, TokenRecord>,
    latest_plain: Option<String>,
    stable: Option<String>,
    /// How many tokens were minted (both chains).
    pub issued: usize,
}

struct TokenRecord {
    expires_at: i64,
    /// Set when a newer token replaced this one: valid until then, 40001 after.
    replaced_until: Option<i64>,
    /// `expire_tokens` was called after it was issued.
    forced_expiry: bool,
}

impl Tokens {
    /// Whether `token` may call an API now.
    ///
    /// # Errors
    /// 41001 missing, 40014 never issued, 42001 expired, 40001 replaced.
    pub fn check(&self, token: Option<&str>, now: i64) -> Result<(), ApiError> {
        let Some(token) = token else { return fail(ACCESS_TOKEN_MISSING) };
        let Some(record) = self.records.get(token) else { return fail(INVALID_ACCESS_TOKEN) };
        if record.forced_expiry || now >= record.expires_at {
            return fail(ACCESS_TOKEN_EXPIRED);
        }
        match record.replaced_until {
            Some(until) if now >= until => fail(INVALID_CREDENTIAL),
            _ => Ok(()),
        }
    }

    /// Every token issued so far is expired from now on.
    pub fn expire_all(&mut self) {
        for record in self.records.values_mut() {
            record.forced_expiry = true;
        }
    }

    /// The current stable token and its remaining seconds, if it still works.
    fn current_stable(&self, now: i64) -> Option<(String, i64)> {
        let token = self.stable.as_ref()?;
        self.check(Some(token), now).ok()?;
        let record = self.records.get(token)?;
        Some((token.clone(), record.expires_at - now))
    }

    /// Mints and records a token.
    fn mint(&mut self, now: i64) -> String {
        self.issued += 1;
        let prefix = format!("MOCK{}_", self.issued);
        let random: String =
            rand::thread_rng().sample_iter(&Alphanumeric).take(TOKEN_LEN - prefix.len()).map(char::from).collect();
        let token = prefix + &random;
        let record = TokenRecord { expires_at: now + TOKEN_TTL_SECS, replaced_until: None, forced_expiry: false };
        self.records.insert(token.clone(), record);
        token
    }

    /// Marks `token` as replaced, working for `grace` more seconds.
    fn replace(&mut self, token: Option<String>, now: i64, grace: i64) {
        if let Some(record) = token.and_then(|t| self.records.get_mut(&t)) {
            let until = (now + grace).min(record.expires_at);
            record.replaced_until = Some(record.replaced_until.map_or(until, |u| u.min(until)));
        }
    }
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid=APPID&secret=APPSECRET`.
pub(super) fn get_token(state: &mut State, req: &ApiRequest) -> ApiResult {
    check_credentials(state, req.param("grant_type"), req.param("appid"), req.param("secret"))?;
    let now = state.now();
    let previous = state.tokens.latest_plain.take();
    state.tokens.replace(previous, now, OVERLAP_SECS);
    let token = state.tokens.mint(now);
    state.tokens.latest_plain = Some(token.clone());
    Ok(json!({"access_token": token, "expires_in": TOKEN_TTL_SECS}))
}

/// `POST /cgi-bin/stable_token {grant_type, appid, secret, force_refresh}`.
pub(super) fn stable_token(state: &mut State, req: &ApiRequest) -> ApiResult {
    let body = &req.body;
    check_credentials(state, str_field(body, "grant_type"), str_field(body, "appid"), str_field(body, "secret"))?;
    let now = state.now();
    let force = bool_field(body, "force_refresh")?.unwrap_or(false);
    if let Some((token, left)) = state.tokens.current_stable(now).filter(|_| !force) {
        return Ok(json!({"access_token": token, "expires_in": left}));
    }
    if force {
        state.quotas.force_refresh(now)?;
    }
    let previous = state.tokens.stable.take();
    state.tokens.replace(previous, now, 0);
    let token = state.tokens.mint(now);
    state.tokens.stable = Some(token.clone());
    Ok(json!({"access_token": token, "expires_in": TOKEN_TTL_SECS}))
}

fn check_credentials(
    state: &State,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Result<(), ApiError> {
    if grant_type != Some("client_credential") {
        return fail(INVALID_GRANT_TYPE);
    }
    let Some(appid) = appid else { return fail(APPID_MISSING) };
    let Some(secret) = secret else { return fail(APPSECRET_MISSING) };
    if appid != state.config.appid {
        return fail(INVALID_APPID);
    }
    if secret != state.config.secret {
        return fail(INVALID_APPSECRET);
    }
    Ok(())
}

/// The token of a request, for the HTTP layer's check.
pub(super) fn token_of(req: &ApiRequest) -> Option<&str> {
    req.param("access_token")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_token_works_for_the_overlap_then_is_not_latest() {
        let mut tokens = Tokens::default();
        let first = tokens.mint(1000);
        tokens.replace(Some(first.clone()), 1000, OVERLAP_SECS);
        assert_eq!(tokens.check(Some(&first), 1000 + OVERLAP_SECS - 1), Ok(()));
        assert_eq!(tokens.check(Some(&first), 1000 + OVERLAP_SECS).unwrap_err().code, INVALID_CREDENTIAL);
    }

    #[test]
    fn expiry_wins_over_replacement_and_unknown_tokens_are_invalid() {
        let mut tokens = Tokens::default();
        let token = tokens.mint(0);
        assert_eq!(tokens.check(Some(&token), TOKEN_TTL_SECS).unwrap_err().code, ACCESS_TOKEN_EXPIRED);
        assert_eq!(tokens.check(Some("nope"), 0).unwrap_err().code, INVALID_ACCESS_TOKEN);
        assert_eq!(tokens.check(None, 0).unwrap_err().code, ACCESS_TOKEN_MISSING);
        tokens.expire_all();
        assert_eq!(tokens.check(Some(&token), 1).unwrap_err().code, ACCESS_TOKEN_EXPIRED);
        assert_eq!(token.len(), TOKEN_LEN);
    }
}
