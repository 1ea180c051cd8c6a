//! Benchmark of the WeChat API client against the in-process mock WeChat (bench/api/run.sh runs
//! it in release; results in BENCHMARKS.md). Not a test: it only measures.
//!
//! 1. Token overhead per call: `access_token()` with the token fresh in memory, next to one
//!    PostgreSQL round trip (what a token read from the shared store would cost).
//! 2. Calls per second: `user/info` for varying followers from N concurrent tasks for a fixed
//!    time, with 0 ms and 50 ms of latency added by the mock, under the default per-API pace and
//!    with the pace lifted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tagcast::app::tokens::PgTokenStore;
use tagcast::mock_wechat::{MockAccountType, MockConfig, MockWeChat};
use tagcast::wechat::api::{ApiClient, ApiConfig, RateLimits};

const APPID: &str = "wxbench000000001";
const SECRET: &str = "benchsecret";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tagcast_bench_api".into());
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 64);
    let seconds: u64 = env_or("BENCH_SECONDS", 5);

    let database_url = SecretString::from(database_url);
    tagcast::store::prepare_database(&database_url).await?;
    let pool = tagcast::store::connect_pool(&database_url, 16).await?;
    pool.get().await?.execute("DELETE FROM access_tokens", &[]).await?;

    let mock = MockWeChat::new(MockConfig {
        appid: APPID.into(),
        secret: SECRET.into(),
        account_type: MockAccountType::Service,
        callback: None,
    });
    let followers = mock.seed_followers(10_000);
    let running = mock.start(std::net::TcpListener::bind("127.0.0.1:0")?)?;
    let base = url::Url::parse(&running.url())?;
    let client_with = |limits: RateLimits| {
        let mut config = ApiConfig::new(base.clone(), APPID, SecretString::from(SECRET));
        config.rate_limits = limits;
        ApiClient::new(config, Arc::new(PgTokenStore::new(pool.clone(), APPID)))
    };

    // 1. Token overhead.
    let api = client_with(RateLimits::default());
    api.access_token().await?;
    let n = 1_000_000u32;
    let started = Instant::now();
    for _ in 0..n {
        std::hint::black_box(api.access_token().await?);
    }
    let per_token = started.elapsed() / n;
    let client = pool.get().await?;
    let statement = client.prepare("SELECT token, expires_at FROM access_tokens WHERE appid = $1").await?;
    let rounds = 2_000u32;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(client.query_opt(&statement, &[&APPID]).await?);
    }
    let per_db = started.elapsed() / rounds;
    drop(client);
    println!("token overhead per call: {per_token:?} (fresh, from memory); one DB round trip: {per_db:?}");
    println!(
        "| scenario | concurrency | latency | pace | calls | calls/s | errors | token fetches |\n|---|---|---|---|---|---|---|---|"
    );

    // 2. Throughput.
    let unlimited = RateLimits::parse("default=1000000")?;
    for (latency_ms, pace, limits) in [
        (0u64, "default (200/s per API)", RateLimits::default()),
        (0, "lifted", unlimited.clone()),
        (50, "default (200/s per API)", RateLimits::default()),
        (50, "lifted", unlimited.clone()),
    ] {
        mock.set_latency(Duration::from_millis(latency_ms));
        let api = client_with(limits);
        api.access_token().await?;
        let fetches_before = mock.token_fetches();
        let done = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let followers = Arc::new(followers.clone());
        let tasks: Vec<_> = (0..concurrency)
            .map(|t| {
                let (api, done, errors, followers) = (api.clone(), done.clone(), errors.clone(), followers.clone());
                tokio::spawn(async move {
                    let mut i = t;
                    while Instant::now() < deadline {
                        match api.user_info(&followers[i % followers.len()]).await {
                            Ok(_) => done.fetch_add(1, Ordering::Relaxed),
                            Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                        };
                        i += concurrency;
                    }
                })
            })
            .collect();
        let started = Instant::now();
        for task in tasks {
            task.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let calls = done.load(Ordering::Relaxed);
        println!(
            "| user/info | {concurrency} | {latency_ms} ms | {pace} | {calls} | {:.0} | {} | {} |",
            calls as f64 / elapsed,
            errors.load(Ordering::Relaxed),
            mock.token_fetches() - fetches_before
        );
    }
    running.handle.stop(false).await;
    Ok(())
}
