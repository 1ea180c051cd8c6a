//! Benchmark of audiences across accounts (bench/accounts/run.sh runs it in release): the issue's
//! comparison of 100 accounts of 10,000 followers against one account of 1,000,000, in one
//! database. Generates both deployments' followers, tags, clicks and orders with COPY (the small
//! accounts share their openid strings, as accounts of one brand do), then times, per side,
//! - the in-memory audience index: building every account's, and its memory by the index's own
//!   accounting (and the process's peak resident memory);
//! - segment counts of random 3-term expressions through the index (p50/p99; the small side spreads
//!   them over its accounts), and by SQL (the fallback while an index builds).
//!
//! Not a test: it only measures. Shrink with BENCH_ACCOUNTS, BENCH_PER_ACCOUNT (the large account
//! has their product), BENCH_EVENTS_PER_FOLLOWER. BENCH_SIDE=large or small measures one side
//! only (peak memory is per process: run.sh runs each side in its own), BENCH_REUSE=1 keeps the
//! generated data.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use tagcast::app::audience::index::{AudienceIndex, IndexSettings};
use tagcast::domain::account::AccountId;
use tagcast::domain::clock::Clock;
use tagcast::domain::expr::{CmpOp, Expr, Window};
use tagcast::domain::tag::TagPath;

mod common;

use common::{copy_in, env_or, peak_rss_kib, percentile, ts};

const DAY: i64 = 86_400;
const TAGS: usize = 20;
const KEYS: [&str; 5] = ["NEW", "SALE", "CART", "VIP_DAY", "COUPON"];

fn tag_path(i: usize) -> String {
    format!("压测/标签{i:02}")
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2} ms p99={:.2} ms max={:.2} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn random_term(rng: &mut StdRng) -> Expr {
    let window = [Window::Days(7), Window::Days(30), Window::All][rng.gen_range(0..3)];
    match rng.gen_range(0..10) {
        0..=4 => Expr::Tag(TagPath::parse(&tag_path(rng.gen_range(0..TAGS))).expect("path")),
        5..=7 => Expr::Clicked { key: KEYS[rng.gen_range(0..KEYS.len())].to_owned(), window, op: CmpOp::Ge, count: 1 },
        _ => Expr::Orders { window, op: CmpOp::Ge, count: rng.gen_range(1..3) },
    }
}

fn random_expr(rng: &mut StdRng) -> Expr {
    let (a, b, c) = (random_term(rng), random_term(rng), random_term(rng));
    let ab = if rng.gen_bool(0.5) { Expr::And(Box::new(a), Box::new(b)) } else { Expr::Or(Box::new(a), Box::new(b)) };
    Expr::Or(Box::new(ab), Box::new(Expr::Not(Box::new(c))))
}

/// Followers `0..count` of `account` (openids `{prefix}{n}`), their tags, clicks and orders.
async fn generate(
    client: &deadpool_postgres::Client,
    account: AccountId,
    prefix: &str,
    count: usize,
    events_per_follower: usize,
    now: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let a = account.get();
    let openid = |n: usize| format!("{prefix}{n:08}");
    let first_seen = ts(now - 400 * DAY);
    let rows = (0..count).map(|n| format!("{a}\t{}\tt\t{first_seen}\t{first_seen}\n", openid(n)));
    copy_in(client, "followers (account_id, openid, subscribed, first_seen_at, last_seen_at)", rows).await?;
    let tag_rows = (0..TAGS).map(|i| format!("{a}\t{}\tbench\tf\n", tag_path(i)));
    copy_in(client, "tags (account_id, path, created_by, mirrored)", tag_rows).await?;
    let first_tag: i64 = client.query_one("SELECT min(id) FROM tags WHERE account_id = $1", &[&a]).await?.get(0);
    let mut r = StdRng::seed_from_u64(a as u64);
    let member_rows = (0..count).flat_map(move |n| {
        (0..TAGS)
            .filter(|i| r.gen_bool(0.25 / (1.0 + *i as f64 / 4.0)))
            .map(|i| format!("{}\t{}\tbench\n", openid(n), first_tag + i as i64))
            .collect::<Vec<_>>()
    });
    copy_in(client, "follower_tags (openid, tag_id, source)", member_rows).await?;
    let events = count * events_per_follower;
    let mut r = StdRng::seed_from_u64(1000 + a as u64);
    let click_rows = (0..events / 2).map(move |n| {
        let age = (r.gen_range(0.0f64..1.0).powi(2) * 400.0 * DAY as f64) as i64;
        format!(
            "{a}\tb:{a}:{n}\t{}\tclick\t{}\t{}\t{{}}\n",
            openid(r.gen_range(0..count)),
            KEYS[r.gen_range(0..KEYS.len())],
            ts(now - age)
        )
    });
    copy_in(client, "events (account_id, dedupe_key, openid, kind, event_key, occurred_at, payload)", click_rows)
        .await?;
    let mut r = StdRng::seed_from_u64(2000 + a as u64);
    let order_rows = (0..events - events / 2).map(move |n| {
        let age = (r.gen_range(0.0f64..1.0).powi(2) * 400.0 * DAY as f64) as i64;
        format!(
            "{a}\tord{a}-{n}\t{}\t{}\t{}\n",
            openid(r.gen_range(0..count)),
            r.gen_range(100..100_000),
            ts(now - age)
        )
    });
    copy_in(client, "orders (account_id, id, openid, amount_cents, occurred_at)", order_rows).await?;
    Ok(())
}

/// Builds the indexes of `accounts` (one count each) and times `exprs` counts spread over them.
async fn measure(
    side: &str,
    pool: &deadpool_postgres::Pool,
    accounts: &[AccountId],
    exprs: usize,
    sql_exprs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let clock = Clock::system();
    let index = AudienceIndex::new(
        pool.clone(),
        IndexSettings { wait_for_build: Duration::from_secs(600), ..IndexSettings::default() },
    );
    let rss_before = peak_rss_kib().unwrap_or(0);
    let probe = Expr::Orders { window: Window::All, op: CmpOp::Ge, count: 0 };
    let started = Instant::now();
    let mut followers = 0;
    for account in accounts {
        followers += index.count(*account, &probe, clock.unix()).await.ok_or("the index did not build")?;
    }
    let memory = index.memory().await;
    let bytes: usize = memory.iter().map(|m| m.bytes).sum();
    println!(
        "{side}: {} account(s), {followers} subscribed followers; indexes built in {:.1} s; index accounting {:.1} MiB \
         ({:.0} bytes a follower); peak memory grew by {:.0} MiB",
        accounts.len(),
        started.elapsed().as_secs_f64(),
        bytes as f64 / 1_048_576.0,
        bytes as f64 / followers.max(1) as f64,
        peak_rss_kib().unwrap_or(0).saturating_sub(rss_before) as f64 / 1024.0,
    );
    let mut rng = StdRng::seed_from_u64(7);
    let mut samples = Vec::with_capacity(exprs);
    for n in 0..exprs {
        let expr = random_expr(&mut rng);
        let account = accounts[n % accounts.len()];
        let started = Instant::now();
        index.count(account, &expr, clock.unix()).await.ok_or("the index stopped answering")?;
        samples.push(started.elapsed());
    }
    report(&format!("{side}: index segment count, 3 terms"), samples);
    let mut samples = Vec::with_capacity(sql_exprs);
    let mut client = pool.get().await?;
    for n in 0..sql_exprs {
        let expr = random_expr(&mut rng);
        let account = accounts[n % accounts.len()];
        let started = Instant::now();
        let txn = client.transaction().await?;
        tagcast::store::segments::count_members(&txn, account, &expr, clock.unix()).await?;
        txn.commit().await?;
        samples.push(started.elapsed());
    }
    report(&format!("{side}: SQL segment count, 3 terms"), samples);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tagcast_bench_accounts".into());
    let small_accounts: usize = env_or("BENCH_ACCOUNTS", 100);
    let per_account: usize = env_or("BENCH_PER_ACCOUNT", 10_000);
    let events_per_follower: usize = env_or("BENCH_EVENTS_PER_FOLLOWER", 4);
    let exprs: usize = env_or("BENCH_EXPRS", 200);
    let sql_exprs: usize = env_or("BENCH_SQL_EXPRS", 20);
    let large = small_accounts * per_account;
    let side = std::env::var("BENCH_SIDE").unwrap_or_default();
    let reuse = std::env::var("BENCH_REUSE").is_ok_and(|v| v == "1");

    let url = SecretString::from(url);
    tagcast::store::prepare_database(&url).await?;
    let pool = tagcast::store::connect_pool(&url, 8).await?;
    let now = Clock::system().unix();
    let client = pool.get().await?;
    let loaded: i64 = client.query_one("SELECT count(*) FROM accounts", &[]).await?.get(0);
    if reuse && loaded > 1 {
        let small: Vec<AccountId> = client
            .query("SELECT id FROM accounts WHERE id > 1 ORDER BY id", &[])
            .await?
            .iter()
            .map(|r| AccountId(r.get(0)))
            .collect();
        drop(client);
        return run(&pool, &side, &small, exprs, sql_exprs).await;
    }
    let started = Instant::now();
    client
        .batch_execute(
            "TRUNCATE followers, tags, follower_tags, events, orders, segments, tag_outbox, jobs CASCADE;
             DELETE FROM account_audience_epochs WHERE account_id > 1; DELETE FROM accounts WHERE id > 1;",
        )
        .await?;
    generate(&client, AccountId::FIRST, "o_large_", large, events_per_follower, now).await?;
    let mut small = Vec::with_capacity(small_accounts);
    for n in 0..small_accounts {
        let row = client
            .query_one(
                "INSERT INTO accounts (name, display_name) VALUES ($1, $2) RETURNING id",
                &[&format!("bench{n:03}"), &format!("压测公众号 {n}")],
            )
            .await?;
        let account = AccountId(row.get(0));
        generate(&client, account, "o_small_", per_account, events_per_follower, now).await?;
        small.push(account);
    }
    client.batch_execute("VACUUM ANALYZE followers, tags, follower_tags, events, orders").await?;
    println!(
        "generated 1 × {large} and {small_accounts} × {per_account} followers ({events_per_follower} events each) in \
         {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(client);
    run(&pool, &side, &small, exprs, sql_exprs).await
}

async fn run(
    pool: &deadpool_postgres::Pool,
    side: &str,
    small: &[AccountId],
    exprs: usize,
    sql_exprs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    if side != "small" {
        measure("one large account", pool, &[AccountId::FIRST], exprs, sql_exprs).await?;
    }
    if side != "large" {
        measure("many small accounts", pool, small, exprs, sql_exprs).await?;
    }
    Ok(())
}
