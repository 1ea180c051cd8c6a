//! The fault suite (issue 8): real `tagcast serve` processes on one database under mixed load,
//! killed with SIGKILL, with PostgreSQL restarted under them, with WeChat unreachable and then
//! refusing with 45011 (its minute limit), and a mass send whose sender is killed. Each test checks that nothing
//! acknowledged is lost and nothing is done twice, and prints its figures.
//!
//! These are the short versions (each well under a minute). `bash bench/faults/run.sh` runs the
//! same scenarios at length (`TAGCAST_FAULTS_SCALE=long`); BENCHMARKS.md has the figures.

mod harness;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::support::db::TestDb;
use harness::{Cluster, Load, PrivatePostgres, Scale, check_stored, p99_between};

/// The scenarios saturate the machine on their own: one at a time, or the figures mean nothing
/// and the time bounds get flaky.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Mass APIs paced far above WeChat's 60/min so the send's length is the mock's latency.
const FAST: &str = "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/sendall=200";

async fn seeded(cluster: &Cluster, n: usize) -> Vec<String> {
    cluster.mock.wechat.seed_followers(n)
}

/// What most scenarios start from: the machine to themselves, two instances on a fresh database,
/// 200,000 followers on the mock and a load generator over them.
struct TwoInstances {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    scale: Scale,
    _db: TestDb,
    cluster: Cluster,
    load: std::sync::Arc<Load>,
}

async fn two_instances() -> TwoInstances {
    let serial = ONE_AT_A_TIME.lock().await;
    let scale = Scale::from_env();
    let db = TestDb::create().await;
    let cluster = Cluster::start(&db.url(), 2, &[]).await;
    let followers = seeded(&cluster, 200_000).await;
    let load = Load::new(cluster.urls(), followers);
    TwoInstances { _serial: serial, scale, _db: db, cluster, load }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_on_two_instances_stores_each_push_once_and_tells_wechat_each_tag_once() {
    let TwoInstances { _serial, scale, _db, cluster, load } = two_instances().await;
    let started = Instant::now();
    load.run(scale.concurrency, scale.load).await;
    let elapsed = started.elapsed();
    let stats = load.into_stats();
    println!("FAULTS load: {}", stats.summary(elapsed));

    assert_eq!(stats.given_up, 0, "every push is answered with both instances up");
    assert_eq!(stats.acked(), stats.sent.len());
    assert!(stats.quizzes_finished > 0 && stats.retries_of_earlier > 0, "the mix ran");
    let stored = check_stored(&cluster.db().await, &stats).await;
    assert_eq!(stored, stats.sent.len(), "stored events == distinct pushes sent");
    let drained = cluster.wait_outbox_drained(Duration::from_secs(30)).await;
    let delivery = cluster.tag_delivery().await;
    println!("FAULTS load: outbox drained {drained:?} after the load; tag changes {delivery:?}");
    assert!(delivery.expected > 0);
    assert_eq!((delivery.missing, delivery.repeated, delivery.unexpected), (0, 0, 0), "{delivery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_every_few_seconds_loses_no_push_and_no_tag_change() {
    let TwoInstances { _serial, scale, _db, mut cluster, load } = two_instances().await;
    let started = Instant::now();
    let running = load.spawn_run(scale.concurrency, scale.load);
    let mut victim = 0;
    while started.elapsed() + scale.kill_every < scale.load {
        tokio::time::sleep(scale.kill_every).await;
        cluster.servers[victim].kill();
        // A supervisor notices and starts it again; meanwhile its share goes to the other.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let http = cluster.http.clone();
        cluster.servers[victim].restart(&http).await;
        victim = 1 - victim;
    }
    running.await.expect("load");
    let elapsed = started.elapsed();
    let stats = load.into_stats();
    let kills: usize = cluster.servers.iter().map(|s| s.kills).sum();
    println!("FAULTS kill: {kills} kills; {}", stats.summary(elapsed));

    assert!(kills >= 2, "the instances were killed");
    assert!(stats.transport_errors > 0, "some requests met a dead instance");
    assert_eq!(stats.given_up, 0, "WeChat's retries reach the live instance");
    assert_eq!(stats.acked(), stats.sent.len());
    let stored = check_stored(&cluster.db().await, &stats).await;
    assert_eq!(stored, stats.sent.len(), "stored events == distinct pushes sent");
    let drained = cluster.wait_outbox_drained(Duration::from_secs(40)).await;
    let delivery = cluster.tag_delivery().await;
    println!("FAULTS kill: outbox drained {drained:?} after the load; tag changes {delivery:?}");
    assert_eq!((delivery.missing, delivery.unexpected), (0, 0), "{delivery:?}");
    // A process killed between WeChat's answer and recording it leaves those changes to be sent
    // again (tagging is idempotent on WeChat); anything more would be a claim gone wrong.
    assert!(delivery.repeated <= kills * 8 * 50, "{delivery:?}");
}

/// Point 1 of issue 8: a stopped instance (SIGTERM) stops accepting, answers what it took, hands
/// its work back and exits cleanly; the balancer's retries carry its share to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_instance_answers_what_it_took_and_exits_cleanly_while_the_other_carries_on() {
    let TwoInstances { _serial, scale, _db, mut cluster, load } = two_instances().await;
    let started = Instant::now();
    let running = load.spawn_run(scale.concurrency, scale.load);
    tokio::time::sleep(scale.load / 3).await;
    let (status, took) = cluster.servers[0].terminate().await;
    running.await.expect("load");
    let stats = load.into_stats();
    println!("FAULTS sigterm: stopped in {took:?} with {status}; {}", stats.summary(started.elapsed()));

    assert!(status.success(), "a clean exit, not {status}");
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    assert_eq!(stats.given_up, 0);
    assert_eq!(stats.acked(), stats.sent.len());
    let stored = check_stored(&cluster.db().await, &stats).await;
    assert_eq!(stored, stats.sent.len());
    cluster.wait_outbox_drained(Duration::from_secs(30)).await;
    let delivery = cluster.tag_delivery().await;
    assert_eq!((delivery.missing, delivery.repeated, delivery.unexpected), (0, 0, 0), "{delivery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_mid_load_gets_fast_503s_and_keeps_every_acknowledged_push() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(pg) = PrivatePostgres::init() else {
        println!("skipped: no /usr/lib/postgresql/<major>/bin/initdb to make a private cluster with");
        return;
    };
    let scale = Scale::from_env();
    let cluster = Cluster::start(&pg.url("tagcast_faults"), 2, &[]).await;
    let followers = seeded(&cluster, 200_000).await;

    let load = Load::new(cluster.urls(), followers);
    let total = scale.load + scale.pg_down;
    let started = Instant::now();
    let running = load.spawn_run(scale.concurrency, total);
    tokio::time::sleep(scale.load / 3).await;
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| pg.stop());
    // While it is down, the API and the readiness check say so at once too (`/healthz` is
    // liveness only: the process still serves).
    let mut probes = Vec::new();
    while stopped_at.elapsed() < scale.pg_down {
        for (path, auth) in [("/readyz", false), ("/api/v1/tags", true)] {
            let mut request = cluster.http.get(format!("{}{path}", cluster.servers[probes.len() % 2].url()));
            if auth {
                request = request.bearer_auth(harness::API_TOKEN);
            }
            let t = Instant::now();
            let status = request.timeout(Duration::from_secs(10)).send().await.map(|r| r.status().as_u16());
            probes.push((path, status.ok(), t.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::task::block_in_place(|| pg.start());
    let restarted_at = Instant::now();
    running.await.expect("load");
    let stats = load.into_stats();
    println!("FAULTS postgres: down {:?}; {}", restarted_at - stopped_at, stats.summary(started.elapsed()));
    let slowest_probe = probes.iter().map(|p| p.2).max();
    println!("FAULTS postgres: {} probes while down, slowest {slowest_probe:?}", probes.len());

    for (path, status, took) in &probes {
        assert_eq!(*status, Some(503), "{path} while the database is down");
        assert!(*took < Duration::from_secs(5), "{path} took {took:?}");
    }
    assert!(stats.statuses.get(&503).copied().unwrap_or(0) > 0, "pushes were refused while it was down");
    let slowest_refusal = stats.failed_latencies.iter().max().copied().unwrap_or_default();
    assert!(slowest_refusal < Duration::from_secs(5), "a push waited {slowest_refusal:?} for an answer");
    let acked_after = stats.sent.values().flatten().filter(|t| **t > restarted_at).count();
    assert!(acked_after > 0, "pushes are stored again once it is back");
    let acked_before = stats.sent.values().flatten().filter(|t| **t < stopped_at).count();
    assert!(acked_before > 0);
    // Every push answered 200 (before, during or after the restart) is in the database.
    let stored = check_stored(&cluster.db().await, &stats).await;
    println!("FAULTS postgres: {acked_before} acknowledged before the stop, {stored} stored in all");
    let drained = cluster.wait_outbox_drained(Duration::from_secs(40)).await;
    let delivery = cluster.tag_delivery().await;
    println!("FAULTS postgres: outbox drained {drained:?} after the load; tag changes {delivery:?}");
    assert_eq!((delivery.missing, delivery.unexpected), (0, 0), "{delivery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_down_then_45011_storms_drain_the_outbox_with_nothing_lost_while_callbacks_stay_fast() {
    let TwoInstances { _serial, scale, _db, mut cluster, load } = two_instances().await;
    let total = scale.load + scale.wechat_down;
    let started = Instant::now();
    let running = load.spawn_run(scale.concurrency, total);
    tokio::time::sleep(scale.load / 3).await;
    let down_at = Instant::now();
    cluster.mock.stop().await;
    tokio::time::sleep(scale.wechat_down).await;
    cluster.mock.resume().await;
    let up_at = Instant::now();
    // Back, but refusing: the minute-limit answer, over and over. (A daily-quota 45009 is not
    // retried at all: it stops the API until Beijing midnight, tests/it/api_quota.rs.)
    cluster.mock.wechat.fail_next("/cgi-bin/tags/members/batchtagging", scale.storm_calls, 45011);
    // While the load goes on: how soon every change that failed on WeChat's trouble is through.
    let held_back_sent_after = cluster
        .wait_for_no_outbox_rows("state = 'pending' AND attempts > 0", scale.load.max(Duration::from_secs(30)))
        .await
        .map(|_| up_at.elapsed());
    running.await.expect("load");
    let load_ended = Instant::now();
    let stats = load.into_stats();
    println!("FAULTS wechat: {}", stats.summary(started.elapsed()));
    let before = p99_between(&stats, started, down_at).unwrap_or_default();
    let during = p99_between(&stats, down_at, up_at).unwrap_or_default();
    println!("FAULTS wechat: callback p99 before the outage {before:?}, during it {during:?}");

    assert_eq!(stats.given_up, 0);
    assert_eq!(stats.acked(), stats.sent.len(), "the callback never needs WeChat");
    // The callback never calls WeChat; the bound is WeChat's own patience, with the rest of the
    // test suite sharing the machine (the figures themselves are in BENCHMARKS.md).
    assert!(during < Duration::from_secs(4), "callbacks slowed to {during:?} while WeChat was down");
    let stored = check_stored(&cluster.db().await, &stats).await;
    assert_eq!(stored, stats.sent.len());
    cluster.wait_outbox_drained(Duration::from_secs(if scale.long { 300 } else { 40 })).await;
    let drained_after_load = load_ended.elapsed();
    let storm_answers =
        cluster.mock.wechat.calls().iter().filter(|c| c.path.ends_with("batchtagging") && c.errcode == 45011).count();
    let delivery = cluster.tag_delivery().await;
    println!(
        "FAULTS wechat: down {:?}; {storm_answers} calls answered 45011; every change held back by the outage \
         and the storm sent {held_back_sent_after:?} after WeChat came back; outbox empty {drained_after_load:?} \
         after the load; tag changes {delivery:?}",
        up_at - down_at,
    );
    assert!(
        held_back_sent_after.is_ok(),
        "changes held back by WeChat's trouble still waiting: {held_back_sent_after:?}"
    );
    assert!(storm_answers > 0, "the storm reached the outbox");
    let dead: i64 = cluster
        .db()
        .await
        .query_one("SELECT count(*) FROM tag_outbox WHERE state = 'dead'", &[])
        .await
        .expect("dead rows")
        .get(0);
    assert_eq!(dead, 0, "no tag change was given up");
    assert_eq!((delivery.missing, delivery.unexpected), (0, 0), "{delivery:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mass_send_split_across_two_instances_reaches_each_follower_once_when_the_sender_is_killed() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let scale = Scale::from_env();
    let db = TestDb::create().await;
    let mut cluster = Cluster::start(&db.url(), 2, &[("TAGCAST_WECHAT_RATE_LIMITS", FAST)]).await;
    let fans = seeded(&cluster, scale.mass_followers).await;
    let synced = cluster.run("sync");
    assert!(synced.success(), "tagcast sync");

    let (status, body) =
        cluster.api(Method::POST, "/segments", Some(json!({"name": "未下单", "expr": "orders(all) = 0"}))).await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_i64().expect("segment id");
    let (status, body) = cluster
        .api(
            Method::POST,
            "/campaigns",
            Some(
                json!({"name": "大促", "audience": {"segment": segment}, "message": {"type": "text", "content": "x"}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().expect("campaign id");
    // Slow calls, so the kill lands between the first accepted call and the last.
    cluster.mock.wechat.set_latency(Duration::from_millis(400));
    let (status, body) = cluster.api(Method::POST, &format!("/campaigns/{id}/send"), Some(json!({}))).await;
    assert_eq!((status, body["recipients"].as_u64()), (202, Some(fans.len() as u64)), "{body}");

    let started = Instant::now();
    let sender = loop {
        if let Some(holder) = cluster.job_holder().await {
            break holder;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no instance took the send");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let survivor = 1 - sender;
    cluster.mock.push_results_to(&cluster.servers[survivor]);
    while cluster.mock.wechat.mass_jobs().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no call reached WeChat");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.servers[sender].kill();
    let calls_before_kill = cluster.mock.wechat.mass_jobs().len();
    let expected_calls = fans.len().div_ceil(10_000);
    assert!(calls_before_kill < expected_calls, "killed before the end");
    cluster.mock.wechat.set_latency(Duration::ZERO);

    let killed_at = Instant::now();
    let db = cluster.db().await;
    let status = loop {
        // The call in flight at the kill reached WeChat: the survivor's repeat meets 45066 and
        // waits WeChat's minute, which passes here on the mock's clock.
        crate::support::app::pass_the_clientmsgid_minute(&db, &cluster.mock.wechat).await;
        let (code, shown) = cluster.api_on(survivor, Method::GET, &format!("/campaigns/{id}"), None).await;
        assert_eq!(code, 200, "{shown}");
        if shown["status"] == "sent" || shown["status"] == "failed" {
            break shown;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(45), "the send never finished: {shown}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut received: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for job in cluster.mock.wechat.mass_jobs() {
        for openid in cluster.mock.wechat.mass_recipients(job.msg_id) {
            *received.entry(openid).or_default() += 1;
        }
    }
    println!(
        "FAULTS mass: {} followers, {calls_before_kill} of {expected_calls} calls made before the sender was killed; \
         finished {:?} after the kill; {} received it, {} more than once",
        fans.len(),
        killed_at.elapsed(),
        received.len(),
        received.values().filter(|n| **n > 1).count()
    );
    assert_eq!(status["status"], "sent", "{status}");
    assert_eq!(received.len(), fans.len(), "every follower received it");
    assert!(received.values().all(|n| *n == 1), "someone received it twice");
    assert_eq!(cluster.mock.wechat.mass_jobs().len(), expected_calls);
    assert_eq!(status["counts"]["sent"].as_u64(), Some(fans.len() as u64), "{status}");
}
