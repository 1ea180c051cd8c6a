//! Benchmark of a campaign to a million-follower segment (bench/campaigns/run.sh runs it in
//! release; results in BENCHMARKS.md). Times
//! - audience resolution: every member of the segment, from the audience index (p50 and worst of
//!   BENCH_RESOLUTIONS runs) and once by SQL, the fallback while the index builds;
//! - the send request (cap, quota, resolution and the monthly-receipt estimate, in one transaction);
//! - delivery: the send job plans the openid chunks (≤ 10,000 each, recipients stored) and calls
//!   `mass/send` on the in-process mock, which answers after BENCH_LATENCY_MS, under a mass-send
//!   pace of BENCH_MASS_PACE calls a second (WeChat documents 60 a minute). Reported: the time
//!   from the first call to the last against the least the pace allows, (calls − 1) / pace, and
//!   the shortest gap between two calls, which must not be below 1 / pace.
//!
//! Checks that every member was sent exactly once. Not a test: it only measures.

use std::collections::HashSet;

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tagcast::app::audience::index::{AudienceIndex, IndexSettings};
use tagcast::app::campaigns::{CampaignRequest, CampaignSettings};
use tagcast::domain::campaign::{Audience, Message};
use tagcast::jobs::JobCtx;

mod common;

use common::{copy_in, env_or, percentile, ts};

const FIRST: tagcast::domain::account::AccountId = tagcast::domain::account::AccountId::FIRST;

const MASS_SEND: &str = "/cgi-bin/message/mass/send";
const AUDIENCE_TAG: &str = "压测/群发";
const EXCLUDED_TAG: &str = "压测/排除";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tagcast_bench_campaigns".into());
    let followers: usize = env_or("BENCH_FOLLOWERS", 1_000_000);
    let latency_ms: u64 = env_or("BENCH_LATENCY_MS", 20);
    let pace: f64 = env_or("BENCH_MASS_PACE", 1.0);
    let resolutions: usize = env_or("BENCH_RESOLUTIONS", 5);

    let url = SecretString::from(url);
    tagcast::store::prepare_database(&url).await?;
    let pool = tagcast::store::connect_pool(&url, 16).await?;
    let (mock, running, openids, api) =
        common::mock_and_client(&pool, followers, Duration::from_millis(latency_ms), MASS_SEND, pace)?;

    // Every follower carries the audience tag, every 20th also the excluded one.
    let started = Instant::now();
    {
        let client = pool.get().await?;
        client
            .batch_execute(
                "TRUNCATE followers, tags, follower_tags, events, orders, segments, campaigns, tag_outbox, jobs CASCADE;
                 DELETE FROM access_tokens;",
            )
            .await?;
        let seen = ts(chrono::Utc::now().timestamp() - 86_400);
        copy_in(
            &client,
            "followers (openid, subscribed, first_seen_at, last_seen_at)",
            openids.iter().map(|o| format!("{o}\tt\t{seen}\t{seen}\n")),
        )
        .await?;
        copy_in(
            &client,
            "tags (path, created_by, mirrored)",
            [AUDIENCE_TAG, EXCLUDED_TAG].iter().map(|p| format!("{p}\tbench\tf\n")),
        )
        .await?;
        let ids = client.query("SELECT path, id FROM tags", &[]).await?;
        let id_of = |path: &str| ids.iter().find(|r| r.get::<_, String>(0) == path).map(|r| r.get::<_, i64>(1));
        let (audience, excluded) = (id_of(AUDIENCE_TAG).ok_or("no tag")?, id_of(EXCLUDED_TAG).ok_or("no tag")?);
        let rows = openids.iter().enumerate().flat_map(|(n, o)| {
            let mut rows = vec![format!("{o}\t{audience}\tbench\n")];
            if n % 20 == 0 {
                rows.push(format!("{o}\t{excluded}\tbench\n"));
            }
            rows
        });
        copy_in(&client, "follower_tags (openid, tag_id, source)", rows).await?;
        client.batch_execute("VACUUM ANALYZE followers, tags, follower_tags").await?;
    }
    println!("generated {followers} followers in {:.1} s", started.elapsed().as_secs_f64());

    let expr = tagcast::domain::expr::parse(&format!("\"{AUDIENCE_TAG}\" AND NOT \"{EXCLUDED_TAG}\""))?;
    let segment = {
        let client = pool.get().await?;
        tagcast::store::segments::insert_segment(&client, FIRST, "压测人群", &expr, "bench").await?
    };
    let now = chrono::Utc::now().timestamp();
    let index = AudienceIndex::new(
        pool.clone(),
        IndexSettings { wait_for_build: Duration::from_secs(600), ..Default::default() },
    );
    let started = Instant::now();
    let members = index.count(FIRST, &expr, now).await.ok_or("the index did not build")?;
    println!("audience index built in {:.1} s; the segment has {members} members", started.elapsed().as_secs_f64());

    let mut samples = Vec::new();
    for _ in 0..resolutions {
        let started = Instant::now();
        let listed = index.members(FIRST, &expr, now).await.ok_or("the index stopped answering")?;
        samples.push(started.elapsed());
        if listed.len() as i64 != members {
            return Err(format!("listed {} of {members} members", listed.len()).into());
        }
    }
    samples.sort();
    let by_sql = {
        let mut client = pool.get().await?;
        let txn = client.transaction().await?;
        let started = Instant::now();
        let listed = tagcast::store::segments::list_all_members(&txn, FIRST, &expr, now).await?;
        if listed.len() as i64 != members {
            return Err(format!("SQL listed {} of {members} members", listed.len()).into());
        }
        started.elapsed()
    };

    let interval = Duration::from_secs_f64(1.0 / pace);
    let settings = CampaignSettings {
        mass_interval: interval,
        audience_index: Some(index.clone()),
        ..CampaignSettings::default()
    };
    let ctx = JobCtx {
        pool: pool.clone(),
        api,
        accounts: common::bare_accounts(&pool).await?,
        account: tagcast::domain::account::AccountId::FIRST,
        quiz_expiry: Duration::from_secs(1800),
        clock: tagcast::domain::clock::Clock::system(),
        campaigns: settings.clone(),
        turn: tagcast::jobs::ClaimTurn::default(),
    };
    let request = CampaignRequest {
        name: "压测群发".into(),
        audience: Audience::Segment(segment.id),
        message: Message::Text { content: "压测".into() },
        variants: Vec::new(),
        send_at: None,
    };
    let campaign = tagcast::app::campaigns::create_campaign(&pool, &settings, &request, "bench").await?;
    let started = Instant::now();
    let accepted = tagcast::app::campaigns::request_send(&pool, &settings, campaign.id, "bench").await?;
    let requested = started.elapsed();
    let started = Instant::now();
    tagcast::jobs::run_pending(&ctx).await?;
    let job = started.elapsed();

    let calls: Vec<_> = mock.calls().into_iter().filter(|c| c.path == MASS_SEND && c.errcode == 0).collect();
    let mut sent = HashSet::new();
    for call in &calls {
        for openid in call.body["touser"].as_array().into_iter().flatten() {
            if !sent.insert(openid.as_str().unwrap_or_default().to_owned()) {
                return Err(format!("{openid} was sent twice").into());
            }
        }
    }
    if sent.len() != accepted.recipients {
        return Err(format!("{} of {} recipients were sent", sent.len(), accepted.recipients).into());
    }
    let span = match (calls.first(), calls.last()) {
        (Some(first), Some(last)) => last.answered_at.duration_since(first.answered_at),
        _ => return Err("no mass/send call succeeded".into()),
    };
    let shortest_gap = calls
        .windows(2)
        .map(|pair| pair[1].answered_at.duration_since(pair[0].answered_at))
        .min()
        .unwrap_or(Duration::ZERO);
    let least = interval.mul_f64(calls.len().saturating_sub(1) as f64);

    println!();
    println!("| measure | result |");
    println!("|---|---|");
    println!("| segment members | {members} |");
    println!(
        "| resolution, audience index ({resolutions} runs) | p50 {:.0} ms, worst {:.0} ms |",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 1.0))
    );
    println!("| resolution, SQL (fallback) | {:.0} ms |", ms(by_sql));
    println!("| send request (checks, resolution, monthly-receipt estimate) | {:.0} ms |", ms(requested));
    println!(
        "| send job: plan ({} recipients stored) and {} mass/send calls at {latency_ms} ms latency, pace {pace}/s | {:.1} s |",
        accepted.recipients,
        calls.len(),
        job.as_secs_f64()
    );
    println!(
        "| first call to last | {:.2} s; least the pace allows {:.2} s ({:+.1} %) |",
        span.as_secs_f64(),
        least.as_secs_f64(),
        (span.as_secs_f64() / least.as_secs_f64().max(f64::EPSILON) - 1.0) * 100.0
    );
    println!("| shortest gap between two calls | {:.1} ms (pace interval {:.1} ms) |", ms(shortest_gap), ms(interval));
    println!("| followers sent, each once | {} |", sent.len());
    running.handle.stop(false).await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
