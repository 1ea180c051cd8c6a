//! What the benchmarks in `examples/` share: environment knobs, bulk loading with COPY,
//! percentiles and peak memory. Each example uses a part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::SinkExt;
use secrecy::SecretString;
use tagcast::app::tokens::PgTokenStore;
use tagcast::mock_wechat::{MockAccountType, MockConfig, MockWeChat, RunningMock};
use tagcast::wechat::api::{ApiClient, ApiConfig, RateLimits};

pub const APPID: &str = "wxbench000000001";
pub const SECRET: &str = "benchsecret";

/// A running mock WeChat, its handle, its followers' openids, and a client for it.
pub type MockAndClient = (MockWeChat, RunningMock, Vec<String>, ApiClient);

/// The in-process mock WeChat of a service account with `followers` seeded (their openids are
/// returned) and `latency` on every call, and tagcast's client for it, paced at `pace` calls a
/// second on `paced_path`.
pub fn mock_and_client(
    pool: &deadpool_postgres::Pool,
    followers: usize,
    latency: Duration,
    paced_path: &str,
    pace: f64,
) -> Result<MockAndClient, Box<dyn std::error::Error>> {
    let mock = MockWeChat::new(MockConfig {
        appid: APPID.into(),
        secret: SECRET.into(),
        account_type: MockAccountType::Service,
        callback: None,
    });
    let openids = mock.seed_followers(followers);
    let running = mock.start(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    mock.set_latency(latency);
    let mut config = ApiConfig::new(url::Url::parse(&running.url())?, APPID, SecretString::from(SECRET));
    config.rate_limits = RateLimits::parse(&format!("{paced_path}={pace}"))?;
    let api = ApiClient::new(config, std::sync::Arc::new(PgTokenStore::new(pool.clone(), APPID)));
    Ok((mock, running, openids, api))
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Streams `rows` (already COPY text lines) into `COPY <target> FROM STDIN` in ~1 MiB chunks.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    target: &str,
    rows: impl Iterator<Item = String>,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(&format!("COPY {target} FROM STDIN")).await?;
    futures_util::pin_mut!(sink);
    let mut chunk = String::with_capacity(1 << 20);
    for row in rows {
        chunk.push_str(&row);
        if chunk.len() >= 1 << 20 {
            sink.send(VecDeque::from(std::mem::take(&mut chunk).into_bytes())).await?;
        }
    }
    if !chunk.is_empty() {
        sink.send(VecDeque::from(chunk.into_bytes())).await?;
    }
    sink.finish().await
}

pub fn ts(unix: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0).expect("in range").to_rfc3339()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A registry whose first account has no credentials: the benches hand `JobCtx` the mock's client
/// themselves, and a job of the first account uses it whatever the registry holds.
pub async fn bare_accounts(
    pool: &deadpool_postgres::Pool,
) -> Result<tagcast::app::accounts::Accounts, Box<dyn std::error::Error>> {
    let env = tagcast::app::accounts::EnvAccount {
        appid: None,
        app_secret: None,
        token: secrecy::SecretString::from("bench".to_owned()),
        encoding_aes_key: None,
        message_mode: tagcast::wechat::mode::MessageMode::Plain,
        kind: tagcast::domain::account::AccountType::Service,
        api_base: url::Url::parse(tagcast::app::accounts::DEFAULT_API_BASE)?,
    };
    Ok(tagcast::app::accounts::Accounts::load(pool.clone(), None, env, Default::default()).await?)
}
