//! Benchmark of the tag outbox (bench/outbox/run.sh runs it in release; results in BENCHMARKS.md):
//! N pending tag changes delivered to the in-process mock WeChat with 20 ms of added latency,
//! under a configured per-API pace. Reports changes per second and the busiest second's call
//! count, which must stay within the pace. Not a test: it only measures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tagcast::jobs::JobCtx;
use tagcast::store::tags::TagChange;

const BATCHTAGGING: &str = "/cgi-bin/tags/members/batchtagging";

mod common;

use common::env_or;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tagcast_bench_outbox".into());
    let changes: usize = env_or("BENCH_CHANGES", 20_000);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 20);
    let pace: f64 = env_or("BENCH_PACE", 100.0);

    let url = SecretString::from(url);
    tagcast::store::prepare_database(&url).await?;
    let pool = tagcast::store::connect_pool(&url, 16).await?;

    let (mock, running, followers, api) =
        common::mock_and_client(&pool, changes, Duration::from_millis(latency_ms), BATCHTAGGING, pace)?;

    let ctx = JobCtx {
        pool: pool.clone(),
        api,
        accounts: common::bare_accounts(&pool).await?,
        account: tagcast::domain::account::AccountId::FIRST,
        quiz_expiry: Duration::from_secs(1800),
        clock: tagcast::domain::clock::Clock::system(),
        campaigns: tagcast::app::campaigns::CampaignSettings::default(),
        turn: tagcast::jobs::ClaimTurn::default(),
    };

    // The pending changes, written the way the engine writes them.
    {
        let client = pool.get().await?;
        client.batch_execute("TRUNCATE tags CASCADE; DELETE FROM access_tokens;").await?;
        let path = tagcast::domain::tag::TagPath::parse("压测/标签")?;
        let tag_id = tagcast::store::tags::ensure_tags(
            &client,
            tagcast::domain::account::AccountId::FIRST,
            &[&path],
            "bench",
            100,
        )
        .await?["压测/标签"];
        for chunk in followers.chunks(5_000) {
            let batch: Vec<TagChange> = chunk
                .iter()
                .map(|openid| TagChange { openid: openid.clone(), tag_id, add: true, source: "bench".into() })
                .collect();
            tagcast::store::tags::apply_tag_changes(&client, &batch).await?;
        }
    }

    // Watch the call rate from the side while the outbox drains.
    let samples = Arc::new(std::sync::Mutex::new(vec![(Instant::now(), 0usize)]));
    let watcher = {
        let (mock, samples) = (mock.clone(), Arc::clone(&samples));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let count = mock.call_count(BATCHTAGGING);
                samples.lock().expect("samples").push((Instant::now(), count));
            }
        })
    };
    let started = Instant::now();
    tagcast::jobs::run_pending(&ctx).await?;
    let elapsed = started.elapsed();
    watcher.abort();
    let calls = mock.call_count(BATCHTAGGING);
    samples.lock().expect("samples").push((Instant::now(), calls));
    let tagged = mock.tags().iter().find(|t| t.1 == "压测/标签").map_or(0, |t| t.2);
    let busiest = busiest_second(&samples.lock().expect("samples"));
    println!(
        "| scenario | changes | latency | pace | time | changes/s | calls | busiest 1 s window | tagged on the mock |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| outbox → batchtagging | {changes} | {latency_ms} ms | {pace}/s | {:.2} s | {:.0} | {calls} | {busiest} calls | {tagged} |",
        elapsed.as_secs_f64(),
        changes as f64 / elapsed.as_secs_f64(),
    );
    running.handle.stop(false).await;
    Ok(())
}

/// The most calls counted within any one-second window of the samples.
fn busiest_second(samples: &[(Instant, usize)]) -> usize {
    let mut busiest = 0;
    for (i, (start, before)) in samples.iter().enumerate() {
        let within = samples[i..].iter().take_while(|(t, _)| t.duration_since(*start) <= Duration::from_secs(1));
        if let Some((_, after)) = within.last() {
            busiest = busiest.max(after - before);
        }
    }
    busiest
}
