//! Call quotas and frequency limits (wechat-api.md §6.2, §9.2, §14.2): per-path daily quotas
//! counted on Beijing days of the mock's clock, per-minute limits, `openapi/quota/get`, and the
//! two `clear_quota` APIs with their 10 resets per Beijing month.
//!
//! Rules, and choices where the reference is silent:
//! - every call of a served path that passes the access-token check is charged to its path's
//!   daily count before its handler runs, whether the handler then accepts or refuses it (WeChat
//!   counts invocations, and charging refusals is the stricter reading). Calls refused by the
//!   token check, by an injected failure, or by the quota itself (45009, 45011) are not charged;
//!   routes without a token (`cgi-bin/token`, `stable_token`, `clear_quota/v2`, OAuth) are
//!   charged before their own credential checks, as nothing else identifies the caller;
//! - daily limits (45009 once used up, until Beijing midnight): §14.2's defaults for the paths
//!   the mock serves (`cgi-bin/token` 2000, `menu/create` 1000, `menu/get` 10,000,
//!   `menu/delete` 1000, `mass/sendall` 100, `user/get` 500, `user/info` 5,000,000,
//!   `custom/send` 500,000), `mass/preview` 100 (§9.2) and `stable_token` 500,000 (§6.2). Every
//!   other path (the tags APIs, `user/info/batchget`, `user/tag/get`, `mass/send|get|delete|
//!   speed`, datacube, `quota/get`, `clear_quota`, OAuth) has no documented number and gets
//!   [`GENEROUS_DAILY`] (1,000,000); `/mock/quota` or `MockWeChat::set_daily_quota` overrides
//!   any path's limit;
//! - per-minute limits (45011, counted per calendar minute of the mock's clock): 60 for each
//!   `/cgi-bin/message/mass/*` path — the reference's "all mass APIs: 60 requests/minute" is read
//!   per API, as WeChat's quota table lists each API separately — and 10,000 for `stable_token`;
//! - `stable_token` with `force_refresh: true` (checked in `tokens.rs`, counted here): at most 20
//!   rotations per Beijing day (45009, the daily-quota code) and at least 30 s apart (45011, the
//!   frequency code); refused rotations are not counted;
//! - `openapi/quota/get {"cgi_path"}`: a path the mock does not serve (or none) 76021; the answer
//!   is `{"quota": {"daily_limit", "used", "remain"}}` for the current Beijing day;
//! - `clear_quota {"appid"}` (token) and `clear_quota/v2 {"appid", "appsecret"}` (no token;
//!   41002/41004/40013/40125 as for tokens) reset every path's daily count, not the per-minute
//!   counts nor the `force_refresh` count; an appid other than the mock's is 40013; the 11th
//!   reset of a Beijing month is 48006 and resets nothing.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::{
    APPID_MISSING, APPSECRET_MISSING, ApiError, ApiResult, CLEAR_QUOTA_USED_UP, DAILY_QUOTA_EXCEEDED, INVALID_APPID,
    INVALID_APPSECRET, INVALID_CGI_PATH, MINUTE_QUOTA_EXCEEDED, fail,
};
use super::state::{ApiRequest, State, beijing_date, beijing_month, str_field};

/// The daily limit of a path the reference gives no number for.
pub(super) const GENEROUS_DAILY: u64 = 1_000_000;
/// `clear_quota` resets per Beijing month.
pub(super) const CLEARS_PER_MONTH: u32 = 10;
/// `stable_token` forced rotations per Beijing day, and their spacing.
pub(super) const FORCE_REFRESH_PER_DAY: u32 = 20;
pub(super) const FORCE_REFRESH_SPACING_SECS: i64 = 30;

/// §14.2 (and §6.2, §9.2 for the token and preview) daily limits.
const DOCUMENTED_DAILY: &[(&str, u64)] = &[
    ("/cgi-bin/token", 2_000),
    ("/cgi-bin/stable_token", 500_000),
    ("/cgi-bin/menu/create", 1_000),
    ("/cgi-bin/menu/get", 10_000),
    ("/cgi-bin/menu/delete", 1_000),
    ("/cgi-bin/message/mass/sendall", 100),
    ("/cgi-bin/message/mass/preview", 100),
    ("/cgi-bin/user/get", 500),
    ("/cgi-bin/user/info", 5_000_000),
    ("/cgi-bin/message/custom/send", 500_000),
];

/// The per-minute limit of a path, if it has one.
fn minute_limit(path: &str) -> Option<u64> {
    if path.starts_with("/cgi-bin/message/mass/") {
        Some(60)
    } else if path == "/cgi-bin/stable_token" {
        Some(10_000)
    } else {
        None
    }
}

/// The counters.
#[derive(Default)]
pub(super) struct Quotas {
    /// Limits set through the control surface, by path.
    overrides: HashMap<String, u64>,
    /// Calls charged per path on one Beijing day.
    daily: HashMap<String, (NaiveDate, u64)>,
    /// Calls charged per path in one minute (unix seconds / 60).
    minute: HashMap<String, (i64, u64)>,
    /// Forced `stable_token` rotations: the day, how many, the last one's time.
    force_refresh: Option<(NaiveDate, u32, i64)>,
    /// `clear_quota` resets: the Beijing month (`yyyymm`) and how many.
    clears: (u32, u32),
}

/// One path's usage today, as the control surface and `quota/get` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuotaUsage {
    pub path: String,
    pub daily_limit: u64,
    pub used: u64,
    pub remain: u64,
}

impl Quotas {
    /// The daily limit of `path`.
    pub fn daily_limit(&self, path: &str) -> u64 {
        self.overrides.get(path).copied().unwrap_or_else(|| {
            DOCUMENTED_DAILY.iter().find(|(p, _)| *p == path).map_or(GENEROUS_DAILY, |(_, limit)| *limit)
        })
    }

    /// Sets the daily limit of `path`.
    pub fn set_daily_limit(&mut self, path: &str, limit: u64) {
        self.overrides.insert(path.to_owned(), limit);
    }

    /// Calls of `path` charged on the Beijing day of `now`.
    pub fn used(&self, path: &str, now: i64) -> u64 {
        match self.daily.get(path) {
            Some((day, used)) if *day == beijing_date(now) => *used,
            _ => 0,
        }
    }

    /// `path`'s usage today.
    pub fn usage(&self, path: &str, now: i64) -> QuotaUsage {
        let daily_limit = self.daily_limit(path);
        let used = self.used(path, now);
        QuotaUsage { path: path.to_owned(), daily_limit, used, remain: daily_limit.saturating_sub(used) }
    }

    /// Usage of every path called today or given a limit, by path.
    pub fn all_usage(&self, now: i64) -> Vec<QuotaUsage> {
        let mut paths: Vec<&String> = self.daily.keys().chain(self.overrides.keys()).collect();
        paths.sort();
        paths.dedup();
        paths.into_iter().map(|p| self.usage(p, now)).collect()
    }

    /// Charges one call of `path`, or refuses it (45009 daily, 45011 per minute) without charging.
    pub fn charge(&mut self, path: &str, now: i64) -> Result<(), ApiError> {
        let used = self.used(path, now);
        if used >= self.daily_limit(path) {
            return fail(DAILY_QUOTA_EXCEEDED);
        }
        let minute = now.div_euclid(60);
        let in_minute = match self.minute.get(path) {
            Some((m, n)) if *m == minute => *n,
            _ => 0,
        };
        if minute_limit(path).is_some_and(|limit| in_minute >= limit) {
            return fail(MINUTE_QUOTA_EXCEEDED);
        }
        self.daily.insert(path.to_owned(), (beijing_date(now), used + 1));
        if minute_limit(path).is_some() {
            self.minute.insert(path.to_owned(), (minute, in_minute + 1));
        }
        Ok(())
    }

    /// Allows one forced `stable_token` rotation now, or refuses it (45009 after 20 today, 45011
    /// within 30 s of the last).
    pub fn force_refresh(&mut self, now: i64) -> Result<(), ApiError> {
        let today = beijing_date(now);
        let (count, last) = match self.force_refresh {
            Some((day, count, last)) if day == today => (count, Some(last)),
            Some((_, _, last)) => (0, Some(last)),
            None => (0, None),
        };
        if count >= FORCE_REFRESH_PER_DAY {
            return fail(DAILY_QUOTA_EXCEEDED);
        }
        if last.is_some_and(|last| now - last < FORCE_REFRESH_SPACING_SECS) {
            return fail(MINUTE_QUOTA_EXCEEDED);
        }
        self.force_refresh = Some((today, count + 1, now));
        Ok(())
    }

    /// `clear_quota` resets used this Beijing month.
    pub fn clears_this_month(&self, now: i64) -> u32 {
        if self.clears.0 == beijing_month(now) { self.clears.1 } else { 0 }
    }

    /// Resets every daily count, or 48006 when the month's resets are used up.
    fn clear(&mut self, now: i64) -> Result<(), ApiError> {
        let used = self.clears_this_month(now);
        if used >= CLEARS_PER_MONTH {
            return fail(CLEAR_QUOTA_USED_UP);
        }
        self.clears = (beijing_month(now), used + 1);
        self.daily.clear();
        Ok(())
    }
}

/// `POST /cgi-bin/openapi/quota/get {"cgi_path"}`.
pub(super) fn quota_get(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(path) = str_field(&req.body, "cgi_path") else { return fail(INVALID_CGI_PATH) };
    if !super::http::serves(path) {
        return fail(INVALID_CGI_PATH);
    }
    let usage = state.quotas.usage(path, state.now());
    Ok(json!({
        "errcode": 0,
        "errmsg": "ok",
        "quota": {"daily_limit": usage.daily_limit, "used": usage.used, "remain": usage.remain},
    }))
}

/// `POST /cgi-bin/clear_quota {"appid"}` (with access token).
pub(super) fn clear_quota(state: &mut State, req: &ApiRequest) -> ApiResult {
    match str_field(&req.body, "appid") {
        None => return fail(APPID_MISSING),
        Some(appid) if appid != state.config.appid => return fail(INVALID_APPID),
        Some(_) => {}
    }
    let now = state.now();
    state.quotas.clear(now)?;
    Ok(ok())
}

/// `POST /cgi-bin/clear_quota/v2 {"appid", "appsecret"}` (no access token).
pub(super) fn clear_quota_v2(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(appid) = str_field(&req.body, "appid") else { return fail(APPID_MISSING) };
    let Some(secret) = str_field(&req.body, "appsecret") else { return fail(APPSECRET_MISSING) };
    if appid != state.config.appid {
        return fail(INVALID_APPID);
    }
    if secret != state.config.secret {
        return fail(INVALID_APPSECRET);
    }
    let now = state.now();
    state.quotas.clear(now)?;
    Ok(ok())
}

fn ok() -> Value {
    json!({"errcode": 0, "errmsg": "ok"})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-05-01T15:59:00Z: 23:59 in Beijing.
    const BEFORE_MIDNIGHT: i64 = 1_714_579_140;

    #[test]
    fn a_daily_quota_runs_out_and_comes_back_at_beijing_midnight() {
        let mut quotas = Quotas::default();
        quotas.set_daily_limit("/cgi-bin/tags/get", 2);
        assert!(quotas.charge("/cgi-bin/tags/get", BEFORE_MIDNIGHT).is_ok());
        assert!(quotas.charge("/cgi-bin/tags/get", BEFORE_MIDNIGHT).is_ok());
        let refused = quotas.charge("/cgi-bin/tags/get", BEFORE_MIDNIGHT + 59).unwrap_err();
        assert_eq!(refused.code, DAILY_QUOTA_EXCEEDED);
        assert_eq!(quotas.used("/cgi-bin/tags/get", BEFORE_MIDNIGHT), 2, "a refused call is not charged");
        assert!(quotas.charge("/cgi-bin/tags/get", BEFORE_MIDNIGHT + 60).is_ok());
    }

    #[test]
    fn mass_paths_allow_sixty_a_minute_each() {
        let mut quotas = Quotas::default();
        let start = 1_714_579_200;
        for _ in 0..60 {
            assert!(quotas.charge("/cgi-bin/message/mass/get", start).is_ok());
        }
        assert_eq!(quotas.charge("/cgi-bin/message/mass/get", start + 59).unwrap_err().code, MINUTE_QUOTA_EXCEEDED);
        assert!(quotas.charge("/cgi-bin/message/mass/send", start + 59).is_ok(), "each API has its own 60");
        assert!(quotas.charge("/cgi-bin/message/mass/get", start + 60).is_ok());
        assert_eq!(quotas.daily_limit("/cgi-bin/message/mass/sendall"), 100);
        assert_eq!(quotas.daily_limit("/cgi-bin/tags/create"), GENEROUS_DAILY);
    }

    #[test]
    fn forced_rotations_are_spaced_and_counted() {
        let mut quotas = Quotas::default();
        let mut now = BEFORE_MIDNIGHT + 60;
        assert!(quotas.force_refresh(now).is_ok());
        assert_eq!(quotas.force_refresh(now + 29).unwrap_err().code, MINUTE_QUOTA_EXCEEDED);
        for _ in 1..FORCE_REFRESH_PER_DAY {
            now += FORCE_REFRESH_SPACING_SECS;
            assert!(quotas.force_refresh(now).is_ok());
        }
        assert_eq!(quotas.force_refresh(now + 60).unwrap_err().code, DAILY_QUOTA_EXCEEDED);
        assert!(quotas.force_refresh(now + 86_400).is_ok(), "a new Beijing day");
    }

    #[test]
    fn ten_clears_a_month() {
        let mut quotas = Quotas::default();
        quotas.charge("/cgi-bin/user/get", BEFORE_MIDNIGHT).unwrap();
        for _ in 0..CLEARS_PER_MONTH {
            assert!(quotas.clear(BEFORE_MIDNIGHT).is_ok());
        }
        assert_eq!(quotas.used("/cgi-bin/user/get", BEFORE_MIDNIGHT), 0);
        assert_eq!(quotas.clear(BEFORE_MIDNIGHT).unwrap_err().code, CLEAR_QUOTA_USED_UP);
        // 2024-06-01 in Beijing.
        assert!(quotas.clear(1_717_171_200).is_ok());
    }
}
