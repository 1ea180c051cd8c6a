//! Benchmark of audiences (bench/segments/run.sh runs it in release): generates followers, tags,
//! clicks and orders with COPY, then times
//! - the in-memory audience index: its build, its memory, and segment counts of random 3-term and
//!   10-term expressions (p50/p99 over BENCH_EXPRS each, catch-up with the database included),
//!   and listing every member of a broad segment (what a campaign's audience resolution needs);
//! - the same counts by SQL (the fallback while the index builds), over BENCH_SQL_EXPRS each,
//! - re-evaluating dynamic tags after one order (`audience::record_orders`, p50/p99),
//! - the scheduled pass over every follower (`audience::refresh_dynamic_tags`), first fill and
//!   steady state,
//!
//! and prints this process's peak memory. Not a test: it only measures. Defaults are the issue's
//! scale (1M followers, 50 tags, 5M events); shrink with BENCH_FOLLOWERS/BENCH_EVENTS.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;
use tagcast::domain::clock::Clock;
use tagcast::domain::expr::{CmpOp, Expr, Window};
use tagcast::domain::order::Order;
use tagcast::domain::tag::TagPath;

mod common;

use common::{copy_in, env_or, peak_rss_kib, percentile, ts};

const FIRST: tagcast::domain::account::AccountId = tagcast::domain::account::AccountId::FIRST;

const DAY: i64 = 86_400;
const KEYS: [&str; 10] = ["SKIN_TEST", "NEW", "SALE", "CART", "MOM_BABY", "VIP_DAY", "COUPON", "LIVE", "FAQ", "SHOP"];

fn openid(n: usize) -> String {
    format!("o_bench_{n:08}")
}

fn tag_path(i: usize) -> String {
    format!("压测/标签{i:02}")
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.1} ms p99={:.1} ms max={:.1} ms",
        samples.len(),
        percentile(&samples, 0.50).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn random_window(rng: &mut StdRng) -> Window {
    match rng.gen_range(0..5) {
        0 => Window::Hours(24),
        1 => Window::Days(7),
        2 => Window::Days(30),
        3 => Window::Days(90),
        _ => Window::All,
    }
}

fn random_op(rng: &mut StdRng) -> CmpOp {
    [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge][rng.gen_range(0..6)]
}

fn random_term(rng: &mut StdRng, tags: usize) -> Expr {
    match rng.gen_range(0..20) {
        0..=9 => Expr::Tag(TagPath::parse(&tag_path(rng.gen_range(0..tags))).expect("path")),
        10..=13 => Expr::Clicked {
            key: KEYS[rng.gen_range(0..KEYS.len())].to_owned(),
            window: random_window(rng),
            op: if rng.gen_bool(0.7) { CmpOp::Ge } else { random_op(rng) },
            count: rng.gen_range(1..3),
        },
        14..=16 => Expr::Orders { window: random_window(rng), op: random_op(rng), count: rng.gen_range(0..4) },
        _ => Expr::Spent { window: random_window(rng), op: random_op(rng), cents: rng.gen_range(0..200_000) },
    }
}

/// An expression of exactly `terms` leaves, combined at random with AND/OR and some NOTs.
fn random_expr(rng: &mut StdRng, terms: usize, tags: usize) -> Expr {
    let mut parts: Vec<Expr> = (0..terms).map(|_| random_term(rng, tags)).collect();
    while parts.len() > 1 {
        let i = rng.gen_range(0..parts.len() - 1);
        let b = parts.remove(i + 1);
        let a = parts.remove(i);
        let mut joined =
            if rng.gen_bool(0.6) { Expr::And(Box::new(a), Box::new(b)) } else { Expr::Or(Box::new(a), Box::new(b)) };
        if rng.gen_bool(0.15) {
            joined = Expr::Not(Box::new(joined));
        }
        parts.insert(i, joined);
    }
    parts.pop().expect("one left")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tagcast_bench_segments".into());
    let followers: usize = env_or("BENCH_FOLLOWERS", 1_000_000);
    let tags: usize = env_or("BENCH_TAGS", 50);
    let events: usize = env_or("BENCH_EVENTS", 5_000_000);
    let exprs: usize = env_or("BENCH_EXPRS", 100);
    let reevaluations: usize = env_or("BENCH_REEVALUATIONS", 200);
    let reuse = std::env::var("BENCH_REUSE").is_ok_and(|v| v == "1");
    let mut rng = StdRng::seed_from_u64(env_or("BENCH_SEED", 5));

    let url = SecretString::from(url);
    tagcast::store::prepare_database(&url).await?;
    let pool = tagcast::store::connect_pool(&url, 8).await?;
    let clock = Clock::system();
    let now = clock.unix();
    let mut client = pool.get().await?;

    let loaded: i64 = client.query_one("SELECT count(*) FROM followers", &[]).await?.get(0);
    if !(reuse && loaded > 0) {
        let started = Instant::now();
        client
            .batch_execute(
                "TRUNCATE followers, tags, follower_tags, events, orders, segments, tag_outbox, jobs CASCADE",
            )
            .await?;
        let first_seen = ts(now - 400 * DAY);
        let mut r = StdRng::seed_from_u64(1);
        let rows = (0..followers).map(|n| {
            let subscribed = if r.gen_bool(0.95) { "t" } else { "f" };
            format!("{}\t{subscribed}\t{first_seen}\t{first_seen}\n", openid(n))
        });
        copy_in(&client, "followers (openid, subscribed, first_seen_at, last_seen_at)", rows).await?;
        let tag_rows = (0..tags).map(|i| format!("{}\tbench\t{}\n", tag_path(i), if i < 20 { "t" } else { "f" }));
        copy_in(&client, "tags (path, created_by, mirrored)", tag_rows).await?;
        let first_tag: i64 = client.query_one("SELECT min(id) FROM tags", &[]).await?.get(0);
        // Tag i is carried by about 25%/(1 + i/4) of followers: a few broad tags, many narrow ones.
        let mut r = StdRng::seed_from_u64(2);
        let member_rows = (0..followers).flat_map(move |n| {
            let mut rows = Vec::new();
            for i in 0..tags {
                if r.gen_bool(0.25 / (1.0 + i as f64 / 4.0)) {
                    rows.push(format!("{}\t{}\tbench\n", openid(n), first_tag + i as i64));
                }
            }
            rows
        });
        copy_in(&client, "follower_tags (openid, tag_id, source)", member_rows).await?;
        // Half clicks, half orders, over the last 400 days, more of them recent.
        let mut r = StdRng::seed_from_u64(3);
        let click_rows = (0..events / 2).map(move |n| {
            let age = (r.gen_range(0.0f64..1.0).powi(2) * 400.0 * DAY as f64) as i64;
            format!(
                "b:{n}\t{}\tclick\t{}\t{}\t{{}}\n",
                openid(r.gen_range(0..followers)),
                KEYS[r.gen_range(0..KEYS.len())],
                ts(now - age)
            )
        });
        copy_in(&client, "events (dedupe_key, openid, kind, event_key, occurred_at, payload)", click_rows).await?;
        // The generated events stand for history the tagging consumer has long applied; the index
        // reads only events below its mark (issue 19), so the mark moves past them.
        client
            .batch_execute(
                "UPDATE event_cursors SET mark = (SELECT coalesce(max(id), 0) FROM events), holes = '{}'
                 WHERE name = 'tagging'",
            )
            .await?;
        let mut r = StdRng::seed_from_u64(4);
        let order_rows = (0..events - events / 2).map(move |n| {
            let age = (r.gen_range(0.0f64..1.0).powi(2) * 400.0 * DAY as f64) as i64;
            format!("ord{n}\t{}\t{}\t{}\n", openid(r.gen_range(0..followers)), r.gen_range(100..100_000), ts(now - age))
        });
        copy_in(&client, "orders (id, openid, amount_cents, occurred_at)", order_rows).await?;
        client.batch_execute("VACUUM ANALYZE followers, tags, follower_tags, events, orders").await?;
        println!(
            "generated {followers} followers, {tags} tags, {events} events in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    let rss_before = peak_rss_kib().unwrap_or(0);
    let started = Instant::now();
    let index = tagcast::app::audience::index::AudienceIndex::new(
        pool.clone(),
        tagcast::app::audience::index::IndexSettings { wait_for_build: Duration::from_secs(600), ..Default::default() },
    );
    let probe = Expr::Orders { window: Window::All, op: CmpOp::Ge, count: 0 };
    let everyone = index.count(FIRST, &probe, clock.unix()).await.ok_or("the index did not build")?;
    let rss_after = peak_rss_kib().unwrap_or(0);
    println!(
        "audience index built in {:.1} s ({everyone} subscribed followers); peak memory grew by {:.0} MiB",
        started.elapsed().as_secs_f64(),
        (rss_after.saturating_sub(rss_before)) as f64 / 1024.0
    );
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        // One expression, timed again and again (for a profiler).
        let expr = tagcast::domain::expr::parse(&only).map_err(|e| format!("{e:?}"))?;
        let mut samples = Vec::new();
        for _ in 0..env_or("BENCH_REPEAT", 50usize) {
            let started = Instant::now();
            index.count(FIRST, &expr, clock.unix()).await.ok_or("the index stopped answering")?;
            samples.push(started.elapsed());
        }
        report(&format!("index: `{expr}`"), samples);
        return Ok(());
    }
    let sql_exprs: usize = env_or("BENCH_SQL_EXPRS", 20);
    for terms in [3, 10] {
        let shapes: Vec<Expr> = (0..exprs).map(|_| random_expr(&mut rng, terms, tags)).collect();
        let mut samples = Vec::with_capacity(exprs);
        let mut members = 0;
        for expr in &shapes {
            let started = Instant::now();
            members += index.count(FIRST, expr, clock.unix()).await.ok_or("the index stopped answering")?;
            samples.push(started.elapsed());
        }
        let mut slowest: Vec<(Duration, &Expr)> = samples.iter().copied().zip(&shapes).collect();
        slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
        for (took, expr) in slowest.iter().take(3) {
            println!("  slowest: {:.1} ms  {expr}", took.as_secs_f64() * 1e3);
        }
        report(
            &format!("index: segment count, {terms} terms (mean members {})", members / exprs.max(1) as i64),
            samples,
        );
        let mut samples = Vec::with_capacity(sql_exprs);
        for expr in shapes.iter().take(sql_exprs) {
            // One moment for both: an event crossing a window's edge in between would differ.
            let now = clock.unix();
            let started = Instant::now();
            let txn = client.transaction().await?;
            let by_sql = tagcast::store::segments::count_members(&txn, FIRST, expr, now).await?;
            txn.commit().await?;
            samples.push(started.elapsed());
            let by_index = index.count(FIRST, expr, now).await.ok_or("the index stopped answering")?;
            if by_sql != by_index {
                return Err(format!("index and SQL disagree on {expr}: {by_index} vs {by_sql}").into());
            }
        }
        report(&format!("SQL (fallback): segment count, {terms} terms, same expressions"), samples);
    }
    let broad = Expr::Or(
        Box::new(Expr::Tag(TagPath::parse(&tag_path(0)).expect("path"))),
        Box::new(Expr::Orders { window: Window::Days(90), op: CmpOp::Ge, count: 1 }),
    );
    let started = Instant::now();
    let listed = index.members(FIRST, &broad, clock.unix()).await.ok_or("the index stopped answering")?;
    println!(
        "index: every member of `{broad}` listed: {} openids in {:.0} ms",
        listed.len(),
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(listed);

    // Dynamic tags as the sample playbook has them, plus a click tag; filled once.
    let mut sql = String::new();
    for (path, when) in [
        ("压测/VIP", "orders(all) >= 3"),
        ("压测/90天未复购", "orders(90d) = 0 AND orders(all) >= 1"),
        ("压测/爱逛新品", r#"clicked("NEW", 7d) >= 2"#),
    ] {
        writeln!(
            sql,
            "INSERT INTO tags (path, when_expr, created_by) VALUES ('{path}', '{when}', 'bench') ON CONFLICT (account_id, path) DO UPDATE SET when_expr = EXCLUDED.when_expr;"
        )?;
    }
    client.batch_execute(&sql).await?;
    let started = Instant::now();
    let (added, removed) = tagcast::app::audience::refresh_dynamic_tags(&pool, FIRST, &clock, None).await?;
    println!(
        "scheduled pass (time-dependent tags), first fill: {:.2} s, +{added} -{removed}",
        started.elapsed().as_secs_f64()
    );
    for tag in tagcast::app::audience::load_dynamic_tags(&client, FIRST).await? {
        let started = Instant::now();
        let (added, removed) = tagcast::app::audience::refresh_dynamic_tags(&pool, FIRST, &clock, Some(tag.id)).await?;
        println!("fill of {}: {:.2} s, +{added} -{removed}", tag.path, started.elapsed().as_secs_f64());
    }
    let started = Instant::now();
    let (added, removed) = tagcast::app::audience::refresh_dynamic_tags(&pool, FIRST, &clock, None).await?;
    println!(
        "scheduled pass (time-dependent tags), steady state: {:.2} s, +{added} -{removed}",
        started.elapsed().as_secs_f64()
    );

    let mut samples = Vec::with_capacity(reevaluations);
    for n in 0..reevaluations {
        let order = Order::new(
            format!("bench-live-{}-{n}", rng.r#gen::<u64>()),
            openid(rng.gen_range(0..followers)),
            "99.9",
            clock.now(),
            clock.now(),
        )?;
        let started = Instant::now();
        tagcast::app::audience::record_orders(&pool, FIRST, &[order], &clock).await?;
        samples.push(started.elapsed());
    }
    report("one order stored + dynamic tags re-evaluated (commit included)", samples);

    // The re-evaluation alone, as the engine runs it after a click (rolled back).
    let dynamic = tagcast::app::audience::load_dynamic_tags(&client, FIRST).await?;
    let triggers = tagcast::app::audience::Triggers { ordered: true, clicked: vec!["NEW"], ..Default::default() };
    let mut samples = Vec::with_capacity(reevaluations);
    for _ in 0..reevaluations {
        let one = openid(rng.gen_range(0..followers));
        let txn = client.transaction().await?;
        let started = Instant::now();
        tagcast::app::audience::reevaluate(&txn, FIRST, &dynamic, &[one.as_str()], &triggers, clock.unix()).await?;
        samples.push(started.elapsed());
        txn.rollback().await?;
    }
    report("dynamic tags re-evaluated for one follower (no commit)", samples);
    client.batch_execute("DELETE FROM tag_outbox").await?;

    match peak_rss_kib() {
        Some(kib) => println!("peak memory of this process: {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak memory: unknown (no /proc/self/status)"),
    }
    Ok(())
}
