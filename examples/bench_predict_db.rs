//! Benchmark of a purchase model run through PostgreSQL (`bash bench/predict/db.sh`; results in
//! BENCHMARKS.md): a generated account (`domain::predict::SyntheticAccount`, BENCH_FOLLOWERS,
//! default 1M, over BENCH_DAYS, default 180) is loaded into a fresh database — followers, events
//! (clicks, views, texts, scans, follows seen by the callback), orders, the weekly campaigns with
//! their recipients and link clicks, quiz results — with COPY, then analysed, and
//! `app::predictions::run_purchase_model` runs end to end as the job would: three paged passes,
//! training, judging, and (when trusted) writing every subscribed follower's score. Prints the
//! load, each step's wall time, the peak RSS of the run and the verdict with both AUCs.
//! Not a test: it only measures.

use std::collections::HashMap;
use std::time::Instant;

use secrecy::SecretString;
use tagcast::domain::account::AccountId;
use tagcast::domain::predict::fact::{DAY, FactKind};
use tagcast::domain::predict::{Regime, SyntheticAccount};

mod common;

use common::{copy_in, env_or, ts};

/// Followers generated and loaded per round of COPYs.
const CHUNK: u32 = 25_000;

/// Tables loaded, and the columns the COPYs fill.
const TABLES: [&str; 6] = [
    "followers (openid, subscribed, subscribed_at, first_seen_at, last_seen_at)",
    "events (dedupe_key, openid, kind, event_key, occurred_at, payload)",
    "orders (id, openid, amount_cents, occurred_at)",
    "campaign_recipients (campaign_id, openid)",
    "campaign_clicks (code, campaign_id, openid, clicked_at)",
    "quiz_answers (openid, quiz_id, tags, scores, finished_at)",
];

fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tagcast_bench_predict".into());
    let followers: u32 = env_or("BENCH_FOLLOWERS", 1_000_000);
    let days: u32 = env_or("BENCH_DAYS", 180);
    let seed: u64 = env_or("BENCH_SEED", 42);
    let url = SecretString::from(url);
    tagcast::store::prepare_database(&url).await?;
    let pool = tagcast::store::connect_pool(&url, 8).await?;
    let account = SyntheticAccount::new(followers, days, seed, Regime::Behaviour);
    println!("bench_predict_db: {followers} followers, {days} days, seed {seed}");

    let loaded: i64 = pool.get().await?.query_one("SELECT count(*) FROM followers", &[]).await?.get(0);
    if loaded == i64::from(followers) {
        // BENCH_KEEP_DB=1 left it from an earlier run: the same account, so runs compare.
        println!("reusing the {loaded} followers already loaded");
    } else {
        let started = Instant::now();
        let counts = load(&pool, &account).await?;
        println!(
            "loaded in {:.1} s: {} followers, {} events, {} orders, {} campaign recipients, {} link clicks, {} quiz results",
            started.elapsed().as_secs_f64(),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5]
        );
        let started = Instant::now();
        pool.get()
            .await?
            .batch_execute(
                "VACUUM ANALYZE followers, events, orders, campaigns, campaign_recipients, campaign_clicks, quiz_answers",
            )
            .await?;
        println!("VACUUM ANALYZE: {:.1} s", started.elapsed().as_secs_f64());
    }

    // Peak RSS from here on: writing 5 to clear_refs resets VmHWM to the current RSS.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = memory_kib("VmRSS:");
    let now = chrono::DateTime::from_timestamp(account.now(), 0).ok_or("now")?;
    let started = Instant::now();
    let outcome = tagcast::app::predictions::run_purchase_model(&pool, AccountId::FIRST, now, "bench").await?;
    let total = started.elapsed();
    println!("run_purchase_model: {:.1} s in all (target ≤ 300 s)", total.as_secs_f64());
    for (phase, took) in &outcome.phases {
        println!("  {phase:<20} {:>8.1} s", took.as_secs_f64());
    }
    let peak = memory_kib("VmHWM:");
    println!(
        "peak RSS during the run: {} MiB ({} MiB above the {} MiB before it)",
        peak / 1024,
        peak.saturating_sub(rss_before) / 1024,
        rss_before / 1024
    );
    let client = pool.get().await?;
    let run = client.query_one("SELECT verdict, figures FROM prediction_runs WHERE id = $1", &[&outcome.run]).await?;
    let figures: serde_json::Value = run.get(1);
    println!(
        "verdict {}; {} scores written; AUC model {} baseline {}; test rows {}, test buyers {}, training buyers {}",
        run.get::<_, Option<String>>(0).unwrap_or_default(),
        outcome.scored,
        figures["model"]["auc"],
        figures["baseline"]["auc"],
        figures["test_rows"],
        figures["test_positives"],
        figures["train_positives"],
    );
    Ok(())
}

/// Loads the account with COPY, the secondary indexes dropped meanwhile and built again after
/// (the same indexes, built once rather than row by row). Returns the rows per table.
async fn load(
    pool: &deadpool_postgres::Pool,
    account: &SyntheticAccount,
) -> Result<[u64; 6], Box<dyn std::error::Error>> {
    let client = pool.get().await?;
    // The weekly campaigns the generator delivers, each with one tracked link.
    let campaign_times: Vec<i64> =
        (0..i64::from(account.days) / 7).map(|w| account.start() + (7 * w + 3) * DAY + 20 * 3600).collect();
    let mut campaign_of = HashMap::new();
    for (w, at) in campaign_times.iter().enumerate() {
        let id: i64 = client
            .query_one(
                "INSERT INTO campaigns (name, audience, message, status, created_by, send_requested_at)
                 VALUES ($1, '{\"all\": true}', '{\"type\": \"text\", \"content\": \"压测\"}', 'sent', 'bench', $2)
                 RETURNING id",
                &[&format!("周四群发 {w}"), &chrono::DateTime::from_timestamp(*at, 0)],
            )
            .await?
            .get(0);
        client
            .execute(
                "INSERT INTO campaign_links (code, campaign_id, url) VALUES ($1, $2, 'https://example.com/')",
                &[&format!("c{id}"), &id],
            )
            .await?;
        campaign_of.insert(*at, id);
    }
    let secondary: Vec<(String, String)> = client
        .query(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i
             WHERE i.schemaname = 'public'
               AND i.tablename IN ('events', 'orders', 'campaign_recipients', 'campaign_clicks', 'quiz_answers')
               AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for (name, _) in &secondary {
        client.batch_execute(&format!("DROP INDEX {name}")).await?;
    }

    let vocab = account.vocabulary();
    let name = |id| vocab.name(id).unwrap_or_default().to_owned();
    let mut counts = [0u64; 6];
    let mut first = 0;
    while first < account.followers {
        let last = (first + CHUNK).min(account.followers);
        let mut rows: [Vec<String>; 6] = Default::default();
        for i in first..last {
            let follower = account.follower(i);
            let openid = format!("oBench{i:08}");
            let mut followed = account.start();
            for (n, fact) in follower.facts.iter().enumerate() {
                let at = ts(fact.at);
                let event = |kind: &str, key: Option<String>| {
                    let key = key.unwrap_or_else(|| "\\N".to_owned());
                    format!("b{i}.{n}\t{openid}\t{kind}\t{key}\t{at}\t{{}}\n")
                };
                match fact.kind {
                    FactKind::Follow { scene } => {
                        followed = fact.at;
                        // Follows before the history began came in with `sync`: no event.
                        if fact.at >= account.start() {
                            rows[1].push(event(
                                "subscribe",
                                Some(format!("qrscene_{}", scene.map(name).unwrap_or_default())),
                            ));
                        }
                    }
                    FactKind::Scan { scene } => rows[1].push(event("scan", Some(name(scene)))),
                    FactKind::MenuClick { key } => rows[1].push(event("click", Some(name(key)))),
                    FactKind::ArticleView { key } => rows[1].push(event("view", Some(name(key)))),
                    FactKind::Text => rows[1].push(event("text", None)),
                    FactKind::Order { amount_fen } => rows[2].push(format!("b{i}.{n}\t{openid}\t{amount_fen}\t{at}\n")),
                    FactKind::Delivery => {
                        if let Some(id) = campaign_of.get(&fact.at) {
                            rows[3].push(format!("{id}\t{openid}\n"));
                        }
                    }
                    FactKind::LinkClick => {
                        let sent = campaign_times.iter().rev().find(|t| **t <= fact.at);
                        if let Some(id) = sent.and_then(|t| campaign_of.get(t)) {
                            rows[4].push(format!("c{id}\t{id}\t{openid}\t{at}\n"));
                        }
                    }
                    FactKind::QuizTag { tag } => {
                        rows[5].push(format!("{openid}\tskin\t{{{}}}\t{{}}\t{at}\n", name(tag)));
                    }
                }
            }
            let seen = ts(followed);
            rows[0].push(format!("{openid}\tt\t{seen}\t{seen}\t{seen}\n"));
        }
        for (n, table) in TABLES.iter().enumerate() {
            counts[n] += copy_in(&client, table, std::mem::take(&mut rows[n]).into_iter()).await?;
        }
        first = last;
    }
    let started = Instant::now();
    for (_, definition) in &secondary {
        client.batch_execute(definition).await?;
    }
    println!("secondary indexes built again in {:.1} s", started.elapsed().as_secs_f64());
    Ok(counts)
}
