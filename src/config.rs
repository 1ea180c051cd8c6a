//! Settings: the CONTRACT.md §2 variables (plus `.env`), read once and validated before anything
//! starts. A bad value becomes one `ConfigError` naming the variable; secrets are wrapped so they
//! never reach a log line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

pub use crate::domain::account::AccountType;
pub use crate::wechat::mode::MessageMode;

/// Default database when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tagcast";
/// Callback token used in demo mode, where no real account can sign requests: only the
/// in-process mock and the chat simulator sign with it.
pub const DEMO_TOKEN: &str = "tagcastdemo";

/// A configuration value that cannot be used, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
    /// The parser's error the reason was rendered from, if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl ConfigError {
    fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self { variable, reason: reason.into(), source: None }
    }

    /// A value a parser refused: its error is the reason, and stays the source.
    fn invalid(variable: &'static str, error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { variable, reason: error.to_string(), source: Some(Box::new(error)) }
    }
}

/// A `TAGCAST_ROLE` that is none of the roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `all`, `web` or `worker`, got `{got}`")]
pub struct UnknownRole {
    pub got: String,
}

/// What one `serve` process runs: several processes can share one database and split the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// HTTP and background workers.
    All,
    /// Only HTTP (callback, API, pages).
    Web,
    /// Only background workers (outbox, jobs).
    Worker,
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "web" => Ok(Self::Web),
            "worker" => Ok(Self::Worker),
            other => Err(UnknownRole { got: other.to_owned() }),
        }
    }
}

impl Role {
    pub fn serves_http(self) -> bool {
        matches!(self, Self::All | Self::Web)
    }

    pub fn runs_workers(self) -> bool {
        matches!(self, Self::All | Self::Worker)
    }
}

/// The account's WeChat credentials and callback settings.
#[derive(Debug, Clone)]
pub struct WeChatSettings {
    /// `None` means demo mode: no real account is configured.
    pub appid: Option<String>,
    pub app_secret: Option<SecretString>,
    /// Signs every callback; in demo mode [`DEMO_TOKEN`] unless `WECHAT_TOKEN` is set.
    pub token: SecretString,
    /// 43-character EncodingAESKey; when set, safe and compatible modes are accepted.
    pub encoding_aes_key: Option<SecretString>,
    /// `WECHAT_MESSAGE_MODE`: `safe` by default when the key is set, `plain` otherwise.
    pub message_mode: MessageMode,
    pub api_base: Url,
    pub account_type: AccountType,
    /// Client-side pace per WeChat API (`TAGCAST_WECHAT_RATE_LIMITS`).
    pub rate_limits: crate::wechat::api::RateLimits,
    /// How transient WeChat failures are retried (not configurable from the environment; tests
    /// shorten it).
    pub retry: crate::wechat::api::RetryPolicy,
    /// Per WeChat request (not configurable from the environment; tests shorten it to provoke
    /// timeouts).
    pub api_timeout: std::time::Duration,
}

/// What a slow or greedy client may hold of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// `TAGCAST_MAX_CONNECTIONS` (default 10,000): open connections per instance; more wait in
    /// the listen backlog until one closes.
    pub max_connections: usize,
    /// `TAGCAST_HEADER_TIMEOUT_SECS` (default 5): from accepting a connection (or the end of the
    /// previous request on it) to the end of the request's headers.
    pub header_timeout: Duration,
    /// `TAGCAST_BODY_TIMEOUT_SECS` (default 10): from the headers to the last byte of the body.
    pub body_timeout: Duration,
    /// `TAGCAST_KEEP_ALIVE_SECS` (default 5; 0 turns keep-alive off): how long an idle connection
    /// is kept for its next request. actix bounds only the first request's headers on a
    /// connection, so an instance facing clients directly, without a proxy that times every
    /// request's headers, closes that gap with 0.
    pub keep_alive: Option<Duration>,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            keep_alive: Some(Duration::from_secs(5)),
        }
    }
}

/// Everything tagcast reads from its environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// May carry a password, hence secret.
    pub database_url: SecretString,
    pub bind: SocketAddr,
    pub wechat: WeChatSettings,
    pub admin_password: Option<SecretString>,
    pub api_token: Option<SecretString>,
    /// `TAGCAST_METRICS_TOKEN`: when set, `/metrics` wants `Authorization: Bearer <it>`.
    pub metrics_token: Option<SecretString>,
    /// `TAGCAST_METRICS_BIND`: a listener of its own for `/metrics` (and the health checks),
    /// which the main listener then no longer serves.
    pub metrics_bind: Option<SocketAddr>,
    /// How long a client may take to send a request, and how many may be connected at once.
    pub http_limits: HttpLimits,
    /// `TAGCAST_SESSION_KEY`: signs and encrypts admin session cookies. Unset: a random key per
    /// start, so sessions end at a restart and are not shared between instances.
    pub session_key: Option<SecretString>,
    /// `TAGCAST_SECRET_KEY` (and `TAGCAST_SECRET_KEY_PREVIOUS` during a rotation): seals the
    /// secrets of accounts created in the console. Required once any account has stored secrets.
    pub secret_key: Option<std::sync::Arc<crate::app::accounts::sealing::Sealer>>,
    pub playbook: Option<PathBuf>,
    pub monthly_tag_cap: u32,
    /// Orders this long after a campaign's delivery count as its conversions
    /// (`TAGCAST_CONVERSION_WINDOW_HOURS`, default 72).
    pub conversion_window: Duration,
    /// `TAGCAST_MASS_RESULT_WAIT_SECS` (default 1800): see `CampaignSettings::result_wait`.
    pub mass_result_wait: Duration,
    /// `None` turns the replay check off (`TAGCAST_REPLAY_WINDOW_SECS=0`).
    pub replay_window: Option<Duration>,
    /// `TAGCAST_ROLE`.
    pub role: Role,
    /// HTTP worker threads (`TAGCAST_HTTP_WORKERS`); each stores its own pushes.
    pub http_workers: usize,
    /// A quiz untouched this long is abandoned (`TAGCAST_QUIZ_EXPIRY_MINS`).
    pub quiz_expiry: Duration,
    /// The in-memory audience index (`TAGCAST_AUDIENCE_INDEX`, `on` or `off`).
    pub audience_index: crate::app::audience::index::IndexSettings,
    /// `TAGCAST_TRUSTED_PROXIES`: peers whose `X-Forwarded-For`/`X-Real-IP` name the client.
    pub trusted_proxies: crate::web::client_addr::TrustedProxies,
    /// `TAGCAST_PASSWORD_CHECKS` and `TAGCAST_PASSWORD_CHECKS_PER_SEC`: the bound on argon2id.
    pub password_checks: crate::app::admins::GateSettings,
    /// Not a variable: the clock segments and dynamic tags are evaluated at. Always the system
    /// clock when read from the environment; tests replace it with one they move.
    pub clock: crate::domain::clock::Clock,
}

impl Settings {
    /// Reads `.env` (if present) and the process environment.
    ///
    /// # Errors
    /// The first variable whose value cannot be used.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a broken one is the operator's mistake and must be said.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                return Err(ConfigError::invalid(".env", e));
            }
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds settings from any variable source; tests pass a map.
    ///
    /// # Errors
    /// The first variable whose value cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = get("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        tokio_postgres::Config::from_str(&database_url)
            .map_err(|e| ConfigError::new("DATABASE_URL", format!("not a PostgreSQL URL ({e})")))?;
        let database_url = SecretString::from(database_url);

        let bind = parse_or("TAGCAST_BIND", get("TAGCAST_BIND"), "127.0.0.1:8080")?;

        let appid = get("WECHAT_APPID");
        let app_secret = get("WECHAT_APPSECRET").map(SecretString::from);
        if let Some(appid) = &appid {
            if !appid.starts_with("wx") || appid.len() < 6 || !appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ConfigError::new("WECHAT_APPID", "expected an AppID such as wx1234567890abcdef"));
            }
        }
        match (&appid, &app_secret) {
            (Some(_), None) => {
                return Err(ConfigError::new("WECHAT_APPSECRET", "must be set when WECHAT_APPID is set"));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new("WECHAT_APPID", "must be set when WECHAT_APPSECRET is set"));
            }
            _ => {}
        }
        let token = match get("WECHAT_TOKEN") {
            Some(token) => {
                if !(3..=32).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(ConfigError::new(
                        "WECHAT_TOKEN",
                        "must be 3 to 32 letters or digits, as WeChat's console requires",
                    ));
                }
                SecretString::from(token)
            }
            None if appid.is_some() => {
                return Err(ConfigError::new("WECHAT_TOKEN", "must be set when WECHAT_APPID is set"));
            }
            None => SecretString::from(DEMO_TOKEN),
        };
        let encoding_aes_key = match get("WECHAT_ENCODING_AES_KEY") {
            Some(key) => {
                crate::wechat::crypto::MsgCrypt::new(&key, appid.as_deref().unwrap_or_default()).map_err(|_| {
                    ConfigError::new(
                        "WECHAT_ENCODING_AES_KEY",
                        format!("must be 43 base64 characters that decode to 32 bytes (got {} characters)", key.len()),
                    )
                })?;
                if appid.is_none() {
                    return Err(ConfigError::new(
                        "WECHAT_ENCODING_AES_KEY",
                        "needs WECHAT_APPID: safe mode checks the AppID inside each message",
                    ));
                }
                Some(SecretString::from(key))
            }
            None => None,
        };
        let default_mode = if encoding_aes_key.is_some() { "safe" } else { "plain" };
        let message_mode: MessageMode = parse_or("WECHAT_MESSAGE_MODE", get("WECHAT_MESSAGE_MODE"), default_mode)?;
        if message_mode.requires_encryption() && encoding_aes_key.is_none() {
            return Err(ConfigError::new(
                "WECHAT_MESSAGE_MODE",
                "compat and safe need WECHAT_ENCODING_AES_KEY (the EncodingAESKey of the account's console); \
                 set it, or use plain",
            ));
        }
        let api_base_raw = get("WECHAT_API_BASE").unwrap_or_else(|| "https://api.weixin.qq.com".to_owned());
        let api_base = Url::parse(&api_base_raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .ok_or_else(|| ConfigError::new("WECHAT_API_BASE", format!("not an http(s) URL: `{api_base_raw}`")))?;
        let account_type = parse_or("WECHAT_ACCOUNT_TYPE", get("WECHAT_ACCOUNT_TYPE"), "service")?;
        let rate_limits = crate::wechat::api::RateLimits::parse(&get("TAGCAST_WECHAT_RATE_LIMITS").unwrap_or_default())
            .map_err(|error| ConfigError::invalid("TAGCAST_WECHAT_RATE_LIMITS", error))?;

        let admin_password = get("TAGCAST_ADMIN_PASSWORD").map(SecretString::from);
        if let Some(p) = &admin_password {
            if p.expose_secret().chars().count() < 8 {
                return Err(ConfigError::new("TAGCAST_ADMIN_PASSWORD", "must be at least 8 characters"));
            }
        }
        let api_token = get("TAGCAST_API_TOKEN").map(SecretString::from);
        if let Some(t) = &api_token {
            if t.expose_secret().len() < 16 {
                return Err(ConfigError::new("TAGCAST_API_TOKEN", "must be at least 16 characters"));
            }
        }
        let metrics_token = get("TAGCAST_METRICS_TOKEN").map(SecretString::from);
        if let Some(t) = &metrics_token {
            if t.expose_secret().len() < 16 {
                return Err(ConfigError::new("TAGCAST_METRICS_TOKEN", "must be at least 16 characters"));
            }
        }
        let metrics_bind = match get("TAGCAST_METRICS_BIND") {
            Some(text) => Some(text.trim().parse::<SocketAddr>().map_err(|_| {
                ConfigError::new(
                    "TAGCAST_METRICS_BIND",
                    format!("must be an address and port like 127.0.0.1:9090, not {text:?}"),
                )
            })?),
            None => None,
        };
        let http_limits = HttpLimits {
            max_connections: parse_or("TAGCAST_MAX_CONNECTIONS", get("TAGCAST_MAX_CONNECTIONS"), "10000")?,
            header_timeout: Duration::from_secs(parse_or(
                "TAGCAST_HEADER_TIMEOUT_SECS",
                get("TAGCAST_HEADER_TIMEOUT_SECS"),
                "5",
            )?),
            keep_alive: match parse_or::<u64>("TAGCAST_KEEP_ALIVE_SECS", get("TAGCAST_KEEP_ALIVE_SECS"), "5")? {
                0 => None,
                secs if secs <= 300 => Some(Duration::from_secs(secs)),
                _ => return Err(ConfigError::new("TAGCAST_KEEP_ALIVE_SECS", "must be between 0 and 300 seconds")),
            },
            body_timeout: Duration::from_secs(parse_or(
                "TAGCAST_BODY_TIMEOUT_SECS",
                get("TAGCAST_BODY_TIMEOUT_SECS"),
                "10",
            )?),
        };
        if !(1..=1_000_000).contains(&http_limits.max_connections) {
            return Err(ConfigError::new("TAGCAST_MAX_CONNECTIONS", "must be between 1 and 1000000"));
        }
        for (name, limit) in [
            ("TAGCAST_HEADER_TIMEOUT_SECS", http_limits.header_timeout),
            ("TAGCAST_BODY_TIMEOUT_SECS", http_limits.body_timeout),
        ] {
            if !(1..=300).contains(&limit.as_secs()) {
                return Err(ConfigError::new(name, "must be between 1 and 300 seconds"));
            }
        }
        let session_key = get("TAGCAST_SESSION_KEY").map(SecretString::from);
        if let Some(k) = &session_key {
            if k.expose_secret().len() < 32 {
                return Err(ConfigError::new("TAGCAST_SESSION_KEY", "must be at least 32 characters"));
            }
        }
        let secret_key = match get("TAGCAST_SECRET_KEY").map(SecretString::from) {
            Some(key) => {
                let previous = get("TAGCAST_SECRET_KEY_PREVIOUS").map(SecretString::from);
                let sealer = crate::app::accounts::sealing::Sealer::new(&key, previous.as_ref())
                    .map_err(|error| ConfigError::new("TAGCAST_SECRET_KEY", error.to_string()))?;
                Some(std::sync::Arc::new(sealer))
            }
            None => None,
        };
        let playbook = get("TAGCAST_PLAYBOOK").map(PathBuf::from);
        if let Some(path) = &playbook {
            if !path.is_file() {
                return Err(ConfigError::new("TAGCAST_PLAYBOOK", format!("no such file: {}", path.display())));
            }
        }
        let monthly_tag_cap: u32 = parse_or("TAGCAST_MONTHLY_TAG_CAP", get("TAGCAST_MONTHLY_TAG_CAP"), "4")?;
        if monthly_tag_cap == 0 {
            return Err(ConfigError::new("TAGCAST_MONTHLY_TAG_CAP", "must be at least 1"));
        }
        let conversion_hours: u64 =
            parse_or("TAGCAST_CONVERSION_WINDOW_HOURS", get("TAGCAST_CONVERSION_WINDOW_HOURS"), "72")?;
        if !(1..=24 * 90).contains(&conversion_hours) {
            return Err(ConfigError::new("TAGCAST_CONVERSION_WINDOW_HOURS", "must be between 1 and 2160 (90 days)"));
        }
        let result_wait_secs: u64 =
            parse_or("TAGCAST_MASS_RESULT_WAIT_SECS", get("TAGCAST_MASS_RESULT_WAIT_SECS"), "1800")?;
        if result_wait_secs > 7 * 86_400 {
            return Err(ConfigError::new("TAGCAST_MASS_RESULT_WAIT_SECS", "must be at most 604800 (7 days)"));
        }
        let replay_secs: u64 = parse_or("TAGCAST_REPLAY_WINDOW_SECS", get("TAGCAST_REPLAY_WINDOW_SECS"), "600")?;
        let role = parse_or("TAGCAST_ROLE", get("TAGCAST_ROLE"), "all")?;
        // The callback waits on PostgreSQL, which usually shares the host: half the cores for HTTP
        // measured best (bench/callback), and more threads only contend with the database.
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        let default_workers = (cores / 2).max(1).to_string();
        let http_workers: usize = parse_or("TAGCAST_HTTP_WORKERS", get("TAGCAST_HTTP_WORKERS"), &default_workers)?;
        if !(1..=256).contains(&http_workers) {
            return Err(ConfigError::new("TAGCAST_HTTP_WORKERS", "must be between 1 and 256"));
        }
        let quiz_expiry_mins: u64 = parse_or("TAGCAST_QUIZ_EXPIRY_MINS", get("TAGCAST_QUIZ_EXPIRY_MINS"), "30")?;
        if quiz_expiry_mins == 0 {
            return Err(ConfigError::new("TAGCAST_QUIZ_EXPIRY_MINS", "must be at least 1"));
        }
        let audience_index = crate::app::audience::index::IndexSettings {
            enabled: match get("TAGCAST_AUDIENCE_INDEX").as_deref().map(str::trim) {
                None | Some("on") => true,
                Some("off") => false,
                Some(_) => return Err(ConfigError::new("TAGCAST_AUDIENCE_INDEX", "must be `on` or `off`")),
            },
            ..crate::app::audience::index::IndexSettings::default()
        };

        let trusted_proxies =
            crate::web::client_addr::TrustedProxies::parse(&get("TAGCAST_TRUSTED_PROXIES").unwrap_or_default())
                .map_err(|error| ConfigError::invalid("TAGCAST_TRUSTED_PROXIES", error))?;
        let default_checks = crate::app::admins::GateSettings::default();
        let concurrent: usize = parse_or(
            "TAGCAST_PASSWORD_CHECKS",
            get("TAGCAST_PASSWORD_CHECKS"),
            &default_checks.concurrent.to_string(),
        )?;
        if !(1..=64).contains(&concurrent) {
            return Err(ConfigError::new("TAGCAST_PASSWORD_CHECKS", "must be between 1 and 64 (each holds 19 MiB)"));
        }
        let per_sec: u32 = parse_or(
            "TAGCAST_PASSWORD_CHECKS_PER_SEC",
            get("TAGCAST_PASSWORD_CHECKS_PER_SEC"),
            &default_checks.per_sec.to_string(),
        )?;
        if !(1..=10_000).contains(&per_sec) {
            return Err(ConfigError::new("TAGCAST_PASSWORD_CHECKS_PER_SEC", "must be between 1 and 10000"));
        }

        Ok(Self {
            database_url,
            bind,
            wechat: WeChatSettings {
                appid,
                app_secret,
                token,
                encoding_aes_key,
                message_mode,
                api_base,
                account_type,
                rate_limits,
                retry: crate::wechat::api::RetryPolicy::default(),
                api_timeout: crate::wechat::api::DEFAULT_TIMEOUT,
            },
            admin_password,
            api_token,
            metrics_token,
            metrics_bind,
            http_limits,
            session_key,
            secret_key,
            playbook,
            monthly_tag_cap,
            conversion_window: Duration::from_secs(conversion_hours * 3600),
            mass_result_wait: Duration::from_secs(result_wait_secs),
            replay_window: (replay_secs > 0).then(|| Duration::from_secs(replay_secs)),
            role,
            http_workers,
            quiz_expiry: Duration::from_secs(quiz_expiry_mins * 60),
            audience_index,
            trusted_proxies,
            password_checks: crate::app::admins::GateSettings { concurrent, per_sec },
            clock: crate::domain::clock::Clock::system(),
        })
    }

    /// Demo mode: no WeChat credentials, so the mock WeChat stands in for the real one.
    pub fn is_demo(&self) -> bool {
        self.wechat.appid.is_none()
    }
}

fn parse_or<T>(variable: &'static str, value: Option<String>, default: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let raw = value.unwrap_or_else(|| default.to_owned());
    raw.trim().parse().map_err(|e| ConfigError {
        variable,
        reason: format!("cannot use `{raw}`: {e}"),
        source: Some(Box::new(e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_give_demo_mode_on_localhost() {
        let s = settings(&[]).expect("defaults are valid");
        assert!(s.is_demo());
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.monthly_tag_cap, 4);
        assert_eq!(s.replay_window, Some(Duration::from_secs(600)));
        assert_eq!(s.wechat.token.expose_secret(), DEMO_TOKEN);
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("DATABASE_URL", "mysql:/x y")], "DATABASE_URL"),
            (&[("TAGCAST_BIND", "localhost")], "TAGCAST_BIND"),
            (
                &[
                    ("WECHAT_APPID", "wx1234567890"),
                    ("WECHAT_APPSECRET", "s"),
                    ("WECHAT_TOKEN", "tok"),
                    ("WECHAT_ENCODING_AES_KEY", &"A".repeat(42)),
                ],
                "WECHAT_ENCODING_AES_KEY",
            ),
            (&[("WECHAT_APPID", "wx1234567890")], "WECHAT_APPSECRET"),
            (&[("WECHAT_API_BASE", "not a url")], "WECHAT_API_BASE"),
            (&[("WECHAT_ACCOUNT_TYPE", "enterprise")], "WECHAT_ACCOUNT_TYPE"),
            (&[("TAGCAST_MONTHLY_TAG_CAP", "0")], "TAGCAST_MONTHLY_TAG_CAP"),
            (&[("TAGCAST_REPLAY_WINDOW_SECS", "-5")], "TAGCAST_REPLAY_WINDOW_SECS"),
            (&[("WECHAT_TOKEN", "has space")], "WECHAT_TOKEN"),
            (&[("TAGCAST_WECHAT_RATE_LIMITS", "default=fast")], "TAGCAST_WECHAT_RATE_LIMITS"),
            (&[("TAGCAST_ROLE", "everything")], "TAGCAST_ROLE"),
            (&[("TAGCAST_HTTP_WORKERS", "0")], "TAGCAST_HTTP_WORKERS"),
            (&[("TAGCAST_QUIZ_EXPIRY_MINS", "0")], "TAGCAST_QUIZ_EXPIRY_MINS"),
            (&[("TAGCAST_METRICS_TOKEN", "short")], "TAGCAST_METRICS_TOKEN"),
            (&[("TAGCAST_METRICS_BIND", "9090")], "TAGCAST_METRICS_BIND"),
            (&[("TAGCAST_MAX_CONNECTIONS", "0")], "TAGCAST_MAX_CONNECTIONS"),
            (&[("TAGCAST_HEADER_TIMEOUT_SECS", "0")], "TAGCAST_HEADER_TIMEOUT_SECS"),
            (&[("TAGCAST_BODY_TIMEOUT_SECS", "3600")], "TAGCAST_BODY_TIMEOUT_SECS"),
            (&[("TAGCAST_KEEP_ALIVE_SECS", "301")], "TAGCAST_KEEP_ALIVE_SECS"),
            (&[("WECHAT_MESSAGE_MODE", "secure")], "WECHAT_MESSAGE_MODE"),
            (&[("WECHAT_MESSAGE_MODE", "safe")], "WECHAT_MESSAGE_MODE"),
            (&[("WECHAT_MESSAGE_MODE", "compat")], "WECHAT_MESSAGE_MODE"),
            (&[("TAGCAST_TRUSTED_PROXIES", "10.0.0.1, nginx")], "TAGCAST_TRUSTED_PROXIES"),
            (&[("TAGCAST_PASSWORD_CHECKS", "0")], "TAGCAST_PASSWORD_CHECKS"),
            (&[("TAGCAST_PASSWORD_CHECKS_PER_SEC", "none")], "TAGCAST_PASSWORD_CHECKS_PER_SEC"),
        ];
        for (vars, variable) in cases {
            let err = settings(vars).expect_err(variable);
            assert_eq!(err.variable, *variable, "{err}");
            assert!(err.to_string().starts_with(variable));
        }
    }

    #[test]
    fn a_parser_refusal_reads_as_before_and_stays_the_source() {
        let source = |err: &ConfigError| std::error::Error::source(err).expect("the parser's error").to_string();
        let err = settings(&[("WECHAT_ACCOUNT_TYPE", "enterprise")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "WECHAT_ACCOUNT_TYPE: cannot use `enterprise`: expected `service` or `subscription`, got `enterprise`"
        );
        let inner = std::error::Error::source(&err).expect("source");
        let unknown = inner.downcast_ref::<crate::domain::account::UnknownAccountType>().expect("typed");
        assert_eq!(unknown.got, "enterprise");
        let err = settings(&[("WECHAT_MESSAGE_MODE", "secure")]).unwrap_err();
        assert_eq!(source(&err), "expected `plain`, `compat` or `safe`, got `secure`");
        let err = settings(&[("TAGCAST_ROLE", "everything")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TAGCAST_ROLE: cannot use `everything`: expected `all`, `web` or `worker`, got `everything`"
        );
        let err = settings(&[("TAGCAST_WECHAT_RATE_LIMITS", "default=fast")]).unwrap_err();
        assert_eq!(err.to_string(), "TAGCAST_WECHAT_RATE_LIMITS: `fast` is not a number");
        assert_eq!(source(&err), "`fast` is not a number");
        let err = settings(&[("TAGCAST_TRUSTED_PROXIES", "10.0.0.1, nginx")]).unwrap_err();
        assert_eq!(err.to_string(), "TAGCAST_TRUSTED_PROXIES: `nginx` is neither an IP address nor a CIDR network");
        assert!(settings(&[("TAGCAST_MONTHLY_TAG_CAP", "0")]).unwrap_err().source.is_none());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = settings(&[
            ("WECHAT_APPID", "wx1234567890"),
            ("WECHAT_APPSECRET", "topsecretvalue"),
            ("WECHAT_TOKEN", "tokenvalue"),
            ("WECHAT_ENCODING_AES_KEY", &"A".repeat(43)),
        ])
        .expect("valid");
        let debug = format!("{s:?}");
        assert!(!debug.contains("topsecretvalue") && !debug.contains("tokenvalue") && !debug.contains(&"A".repeat(43)));
        assert!(!s.is_demo());
    }

    #[test]
    fn message_mode_defaults_to_safe_exactly_when_a_key_is_set() {
        let account = [("WECHAT_APPID", "wx1234567890"), ("WECHAT_APPSECRET", "s"), ("WECHAT_TOKEN", "tok")];
        let key = "A".repeat(43);
        let with_key = [&account[..], &[("WECHAT_ENCODING_AES_KEY", key.as_str())]].concat();
        assert_eq!(settings(&account).expect("valid").wechat.message_mode, MessageMode::Plain);
        assert_eq!(settings(&with_key).expect("valid").wechat.message_mode, MessageMode::Safe);
        let plain_with_key = [&with_key[..], &[("WECHAT_MESSAGE_MODE", "plain")]].concat();
        assert_eq!(settings(&plain_with_key).expect("valid").wechat.message_mode, MessageMode::Plain);
        let compat = [&with_key[..], &[("WECHAT_MESSAGE_MODE", "compat")]].concat();
        assert_eq!(settings(&compat).expect("valid").wechat.message_mode, MessageMode::Compat);
    }

    #[test]
    fn zero_replay_window_turns_the_check_off() {
        assert_eq!(settings(&[("TAGCAST_REPLAY_WINDOW_SECS", "0")]).expect("valid").replay_window, None);
    }
}
