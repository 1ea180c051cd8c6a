//! Audiences, campaigns and background work with several accounts (issue 17): two accounts whose
//! followers share openid strings never mix in a segment, a send, a quota or a pace; an object of
//! one account asked for on another is forbidden; one account's backlog does not hold another's
//! job; the audience index costs what the followers do, not what the accounts do.

use std::time::Duration;

use serde_json::json;
use tagcast::app::audience::index::{AudienceIndex, IndexSettings};
use tagcast::app::campaigns::{self, CampaignRequest, CampaignSettings};
use tagcast::domain::account::AccountId;
use tagcast::domain::campaign::{Audience, Message};
use tagcast::domain::expr;
use tagcast::domain::job::{Job, RefreshDynamicTags};

use crate::support::accounts::OtherAccount;
use crate::support::app::{TestApp, spawn_app};

/// Followers of `account` as rows, subscribed: the same strings may be another account's too.
/// Written as an import does, so the account's audience index rebuilds.
async fn seed(app: &TestApp, account: AccountId, openids: &[&str]) {
    for openid in openids {
        app.query(
            "INSERT INTO followers (account_id, openid, subscribed, subscribed_at, first_seen_at, last_seen_at)
             VALUES ($1, $2, true, now(), now(), now())",
            &[&account.get(), openid],
        )
        .await;
    }
    let client = app.jobs.pool.get().await.expect("pool");
    tagcast::store::audience_feed::bump_epoch(&client, account).await.expect("epoch");
}

/// An order of `account`'s follower `openid`.
async fn order(app: &TestApp, account: AccountId, id: &str, openid: &str) {
    app.query(
        "INSERT INTO orders (account_id, id, openid, amount_cents, occurred_at) VALUES ($1, $2, $3, 1000, now())",
        &[&account.get(), &id, &openid],
    )
    .await;
}

fn settings_of(app: &TestApp, account: AccountId) -> CampaignSettings {
    app.jobs.campaigns.for_account(&app.jobs.accounts, account)
}

async fn segment_of(app: &TestApp, account: AccountId, text: &str) -> i64 {
    let client = app.jobs.pool.get().await.expect("pool");
    let parsed = expr::parse(text).expect("parses");
    tagcast::store::segments::insert_segment(&client, account, "人群", &parsed, "tester").await.expect("segment").id
}

async fn campaign_of(app: &TestApp, account: AccountId, segment: i64, name: &str) -> i64 {
    let request = CampaignRequest {
        name: name.to_owned(),
        audience: Audience::Segment(segment),
        message: Message::Text { content: format!("{name} 上新") },
        variants: Vec::new(),
        send_at: None,
    };
    campaigns::create_campaign(&app.jobs.pool, &settings_of(app, account), &request, "tester")
        .await
        .expect("created")
        .id
}

async fn count_by_sql(app: &TestApp, account: AccountId, text: &str) -> i64 {
    let mut client = app.jobs.pool.get().await.expect("pool");
    let txn = client.transaction().await.expect("txn");
    let count = tagcast::store::segments::count_members(&txn, account, &expr::parse(text).unwrap(), app.clock.unix())
        .await
        .expect("count");
    txn.commit().await.expect("commit");
    count
}

fn index_of(app: &TestApp) -> AudienceIndex {
    AudienceIndex::new(
        app.jobs.pool.clone(),
        IndexSettings { wait_for_build: Duration::from_secs(20), ..IndexSettings::default() },
    )
}

#[tokio::test]
async fn a_segment_counts_and_a_send_reaches_only_its_own_accounts_followers() {
    let app = spawn_app().await;
    let shop: OtherAccount = app.add_account("shop", false).await;
    // The same openid strings in both accounts: as far as WeChat is concerned, different people.
    seed(&app, AccountId::FIRST, &["o_same_1", "o_same_2", "o_same_3"]).await;
    seed(&app, shop.id, &["o_same_1", "o_same_2", "o_shop_only"]).await;
    order(&app, shop.id, "shop-order-1", "o_same_1").await;
    let tag_row = app
        .query(
            "INSERT INTO tags (account_id, path, mirrored, created_by) VALUES ($1, 'VIP', false, 'tester') RETURNING id",
            &[&shop.id.get()],
        )
        .await;
    let vip: i64 = tag_row[0].get(0);
    app.query("INSERT INTO follower_tags (openid, tag_id, source) VALUES ('o_same_2', $1, 'manual')", &[&vip]).await;

    for (text, first, other) in [("orders(all) >= 1", 0, 1), ("\"VIP\"", 0, 1), ("orders(all) = 0", 3, 2)] {
        assert_eq!(count_by_sql(&app, AccountId::FIRST, text).await, first, "{text} in the first account, by SQL");
        assert_eq!(count_by_sql(&app, shop.id, text).await, other, "{text} in shop, by SQL");
        let index = index_of(&app);
        let parsed = expr::parse(text).unwrap();
        assert_eq!(index.count(AccountId::FIRST, &parsed, app.clock.unix()).await, Some(first), "{text}, index");
        assert_eq!(index.count(shop.id, &parsed, app.clock.unix()).await, Some(other), "{text} in shop, index");
    }

    // A send in shop goes out through shop's WeChat, to shop's followers only.
    let segment = segment_of(&app, shop.id, "orders(all) = 0 OR orders(all) >= 1").await;
    let id = campaign_of(&app, shop.id, segment, "shop").await;
    let accepted =
        campaigns::request_send(&app.jobs.pool, &settings_of(&app, shop.id), id, "tester").await.expect("accepted");
    assert_eq!(accepted.recipients, 3);
    app.run_pending_jobs().await;
    assert_eq!(shop.wechat.mass_jobs().len(), 1, "shop's WeChat made the send");
    assert!(app.wechat.mass_jobs().is_empty(), "the first account's WeChat saw no mass job");
    let receipts = |account: AccountId| {
        let app = &app;
        async move {
            app.query("SELECT count(*) FROM follower_mass_receipts WHERE account_id = $1", &[&account.get()]).await[0]
                .get::<_, i64>(0)
        }
    };
    // WeChat's MASSSENDJOBFINISH comes to shop's callback URL and finishes shop's campaign.
    shop.wechat.wait_for_callbacks().await;
    let client = app.jobs.pool.get().await.expect("pool");
    let row = tagcast::store::campaigns::get_campaign(&client, shop.id, id).await.expect("read").expect("shop's");
    assert_eq!(row.status, "sent", "{row:?}");
    assert!(tagcast::store::campaigns::get_campaign(&client, AccountId::FIRST, id).await.expect("read").is_none());
    drop(client);
    assert_eq!(receipts(shop.id).await, 3);
    assert_eq!(receipts(AccountId::FIRST).await, 0, "the first account's quota is untouched");
    // The first account does not see shop's campaign or segment.
    let (status, body) = app.api_get("/campaigns").await;
    assert_eq!(status, 200);
    assert_eq!(body["campaigns"].as_array().map(Vec::len), Some(0), "{body}");
}

#[tokio::test]
async fn a_campaign_or_segment_of_another_account_is_forbidden_not_missing() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    seed(&app, shop.id, &["o_1", "o_2"]).await;
    let segment = segment_of(&app, shop.id, "orders(all) = 0").await;
    let id = campaign_of(&app, shop.id, segment, "shop").await;

    // Asked for on the first account (the API's default account): shop holds them.
    for (method, path) in [
        (reqwest::Method::GET, format!("/campaigns/{id}")),
        (reqwest::Method::POST, format!("/campaigns/{id}/send")),
        (reqwest::Method::POST, format!("/campaigns/{id}/cancel")),
        (reqwest::Method::GET, format!("/segments/{segment}")),
        (reqwest::Method::GET, format!("/segments/{segment}/members")),
    ] {
        let body = (method == reqwest::Method::POST).then(|| json!({}));
        let (status, answer) = app.api_call(method.clone(), &path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
    }
    // A campaign of the first account naming shop's segment is refused the same way.
    let (status, answer) = app
        .api_post(
            "/campaigns",
            json!({"name": "借用", "audience": {"segment": segment}, "message": {"type": "text", "content": "hi"}}),
        )
        .await;
    assert_eq!(status, 403, "{answer}");
    // An id nobody holds stays 404.
    let (status, _) = app.api_get("/campaigns/999999").await;
    assert_eq!(status, 404);
    assert_eq!(shop.wechat.mass_jobs().len(), 0);
    assert_eq!(app.count("SELECT count(*) FROM campaigns WHERE status <> 'draft'").await, 0, "nothing was sent");
}

/// Needs the `Tagcast-Account` header (engineer C): the same refusal, asked from shop's side.
#[tokio::test]
async fn a_campaign_of_the_first_account_is_forbidden_when_asked_on_another() {
    let app = spawn_app().await;
    let _shop = app.add_account("shop", false).await;
    seed(&app, AccountId::FIRST, &["o_1", "o_2"]).await;
    let segment = segment_of(&app, AccountId::FIRST, "orders(all) = 0").await;
    let id = campaign_of(&app, AccountId::FIRST, segment, "main").await;
    let (status, body) = app.api_call_on("shop", reqwest::Method::GET, &format!("/campaigns/{id}"), None).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app.api_call_on("shop", reqwest::Method::GET, &format!("/segments/{segment}"), None).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn one_accounts_backlog_delays_anothers_job_by_one_claim_at_most() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    {
        let client = app.jobs.pool.get().await.expect("pool");
        // Thousands of due jobs of the first account, all older than shop's one.
        client
            .execute(
                "INSERT INTO jobs (account_id, kind, payload, run_at)
                 SELECT 1, 'refresh_dynamic_tags', '{}'::jsonb, now() - interval '1 hour' FROM generate_series(1, 3000)",
                &[],
            )
            .await
            .expect("backlog");
        tagcast::store::jobs::enqueue(&client, shop.id, &Job::RefreshDynamicTags(RefreshDynamicTags { tag_id: None }))
            .await
            .expect("shop's job");
    }
    let shop_done = || async {
        app.query("SELECT count(*) FROM jobs WHERE account_id = $1 AND state = 'done'", &[&shop.id.get()]).await[0]
            .get::<_, i64>(0)
    };
    let mut claims = 0;
    while shop_done().await == 0 {
        tagcast::jobs::run_next_job(&app.jobs).await.expect("a job ran");
        claims += 1;
        assert!(claims <= 2, "shop's job waited for {claims} claims");
    }
    // And the turn goes back to the first account afterwards.
    tagcast::jobs::run_next_job(&app.jobs).await.expect("a job ran");
    let first_done = app.count("SELECT count(*) FROM jobs WHERE account_id = 1 AND state = 'done'").await;
    assert!(first_done >= 1, "{first_done}");
}

/// A long send of one account yields the worker after each WeChat call: another account's job
/// queued meanwhile runs before the send's next call.
#[tokio::test]
async fn a_long_send_makes_one_call_per_job_and_lets_other_accounts_in_between() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let fans: Vec<String> = (0..40).map(|i| format!("o_fan_{i:02}")).collect();
    let refs: Vec<&str> = fans.iter().map(String::as_str).collect();
    seed(&app, AccountId::FIRST, &refs).await;
    let client = app.jobs.pool.get().await.expect("pool");
    // Five variants: five calls.
    let segment = segment_of(&app, AccountId::FIRST, "orders(all) = 0").await;
    let request = CampaignRequest {
        name: "长群发".into(),
        audience: Audience::Segment(segment),
        message: Message::Text { content: "v0".into() },
        variants: (1..5)
            .map(|i| tagcast::domain::campaign::Variant {
                name: format!("v{i}"),
                message: Message::Text { content: format!("v{i}") },
            })
            .collect(),
        send_at: None,
    };
    let settings = settings_of(&app, AccountId::FIRST);
    let id = campaigns::create_campaign(&app.jobs.pool, &settings, &request, "tester").await.expect("created").id;
    campaigns::request_send(&app.jobs.pool, &settings, id, "tester").await.expect("accepted");
    tagcast::store::jobs::enqueue(&client, shop.id, &Job::RefreshDynamicTags(RefreshDynamicTags { tag_id: None }))
        .await
        .expect("shop's job");
    tagcast::jobs::run_next_job(&app.jobs).await.expect("first claim");
    tagcast::jobs::run_next_job(&app.jobs).await.expect("second claim");
    let shop_done = app.count("SELECT count(*) FROM jobs WHERE account_id <> 1 AND state = 'done'").await;
    assert_eq!(shop_done, 1, "shop's job ran within two claims");
    let calls_made = app.wechat.mass_jobs().len();
    assert!(calls_made <= 1, "one call per send job run, {calls_made} made");
    app.run_pending_jobs().await;
    assert!(app.wechat.mass_jobs().len() >= 5, "the send carried on: {}", app.wechat.mass_jobs().len());
}

#[tokio::test]
async fn a_subscription_accounts_daily_send_and_pace_do_not_hold_another_accounts_send() {
    let app = spawn_app().await;
    let news = app.add_account("news", true).await;
    // The same openid strings in both accounts, known to news's WeChat (its temporary tag needs them).
    let fans = news.wechat.seed_followers(2);
    let fans: Vec<&str> = fans.iter().map(String::as_str).collect();
    seed(&app, news.id, &fans).await;
    seed(&app, AccountId::FIRST, &fans).await;
    let news_segment = segment_of(&app, news.id, "orders(all) = 0").await;
    let first_segment = segment_of(&app, AccountId::FIRST, "orders(all) = 0").await;

    // news sends today, using its one send of the day.
    let id = campaign_of(&app, news.id, news_segment, "news-1").await;
    campaigns::request_send(&app.jobs.pool, &settings_of(&app, news.id), id, "tester").await.expect("news sends");
    app.run_pending_jobs().await;
    assert_eq!(news.wechat.mass_jobs().len(), 1);
    let again = campaign_of(&app, news.id, news_segment, "news-2").await;
    let refused = campaigns::request_send(&app.jobs.pool, &settings_of(&app, news.id), again, "tester").await;
    assert!(matches!(refused, Err(campaigns::CampaignError::QuotaExhausted { .. })), "{refused:?}");

    // news's pace is far ahead (as if it had queued many calls): the first account's is its own.
    app.query(
        "INSERT INTO account_mass_pace (account_id, next_at) VALUES ($1, now() + interval '1 hour')
         ON CONFLICT (account_id) DO UPDATE SET next_at = excluded.next_at",
        &[&news.id.get()],
    )
    .await;
    let first = campaign_of(&app, AccountId::FIRST, first_segment, "main").await;
    campaigns::request_send(&app.jobs.pool, &settings_of(&app, AccountId::FIRST), first, "tester")
        .await
        .expect("the first account's send is not the subscription account's quota");
    let started = std::time::Instant::now();
    app.run_pending_jobs().await;
    assert!(started.elapsed() < Duration::from_secs(10), "waited on another account's pace: {:?}", started.elapsed());
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    assert_eq!(news.wechat.mass_jobs().len(), 1, "nothing more went out for news");
}

#[tokio::test]
async fn the_audience_index_costs_what_the_followers_do_not_what_the_accounts_do() {
    let app = spawn_app().await;
    const SMALL_ACCOUNTS: usize = 10;
    const EACH: usize = 200;
    let mut accounts = Vec::new();
    for n in 0..SMALL_ACCOUNTS {
        accounts.push(app.add_account(&format!("small{n}"), false).await);
    }
    let seed_many = |account: AccountId, count: usize, prefix: String| {
        let app = &app;
        async move {
            app.query(
                "INSERT INTO followers (account_id, openid, subscribed, subscribed_at, first_seen_at, last_seen_at)
                 SELECT $1, $2 || lpad(g::text, 8, '0'), true, now(), now(), now() FROM generate_series(1, $3::int) g",
                &[&account.get(), &prefix, &(count as i32)],
            )
            .await;
        }
    };
    for account in &accounts {
        seed_many(account.id, EACH, "o_small_".to_owned()).await;
    }
    seed_many(AccountId::FIRST, SMALL_ACCOUNTS * EACH, "o_large_".to_owned()).await;

    let index = index_of(&app);
    let everyone = expr::parse("orders(all) = 0").unwrap();
    assert_eq!(index.count(AccountId::FIRST, &everyone, app.clock.unix()).await, Some((SMALL_ACCOUNTS * EACH) as i64));
    for account in &accounts {
        assert_eq!(index.count(account.id, &everyone, app.clock.unix()).await, Some(EACH as i64));
    }
    let memory = index.memory().await;
    assert_eq!(memory.len(), SMALL_ACCOUNTS + 1, "only the accounts counted are built");
    let large = memory.iter().find(|m| m.account == AccountId::FIRST).expect("the first account").bytes;
    let small: usize = memory.iter().filter(|m| m.account != AccountId::FIRST).map(|m| m.bytes).sum();
    // Same followers in total: within a small factor, whatever the number of accounts.
    let ratio = small as f64 / large as f64;
    assert!((0.5..2.0).contains(&ratio), "ten small accounts take {small} bytes, one large {large}");
}

#[tokio::test]
async fn the_board_counts_the_accounts_own_followers_and_its_pages_refuse_anothers_campaign() {
    use crate::admin_pages::{Browser, PASSWORD};
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    let shop = app.add_account("shop", false).await;
    seed(&app, AccountId::FIRST, &["o_same_1", "o_same_2"]).await;
    seed(&app, shop.id, &["o_same_1", "o_same_2", "o_shop_3", "o_shop_4", "o_shop_5"]).await;
    let segment = segment_of(&app, shop.id, "orders(all) = 0").await;
    let id = campaign_of(&app, shop.id, segment, "shop").await;

    let mut browser = Browser::log_in(&app, "root", PASSWORD).await;
    let board = browser.get("/admin?refresh=1").await;
    assert_eq!(board.status, reqwest::StatusCode::OK);
    assert!(board.body.contains(r#"<div class="num">2</div><div>粉丝</div>"#), "{}", board.body);
    let page = browser.get(&format!("/admin/campaigns/{id}")).await;
    assert_eq!(page.status, reqwest::StatusCode::FORBIDDEN, "{}", page.body);
    let list = browser.get("/admin/campaigns").await;
    assert!(!list.body.contains(&format!("/admin/campaigns/{id}\"")), "shop's campaign is not listed");
    let missing = browser.get("/admin/campaigns/999999").await;
    assert_eq!(missing.status, reqwest::StatusCode::NOT_FOUND);
}

/// WeChat numbers each account's mass jobs on its own: a MASSSENDJOBFINISH for msg_id 1000 of
/// one account says nothing about another account's call with the same msg_id.
#[tokio::test]
async fn a_mass_job_result_is_matched_within_its_own_account() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    seed(&app, AccountId::FIRST, &["o_1", "o_2"]).await;
    seed(&app, shop.id, &["o_1", "o_2"]).await;
    let mut ids = Vec::new();
    for account in [AccountId::FIRST, shop.id] {
        let segment = segment_of(&app, account, "orders(all) = 0").await;
        let id = campaign_of(&app, account, segment, &format!("c{}", account.get())).await;
        app.query("UPDATE campaigns SET status = 'sending' WHERE id = $1", &[&id]).await;
        let client = app.jobs.pool.get().await.expect("pool");
        client
            .execute(
                "INSERT INTO campaign_chunks (campaign_id, seq, kind, clientmsgid, state, msg_id, submitted_at)
                 VALUES ($1, 0, 'openids', $2, 'submitted', 1000, now())",
                &[&id, &format!("c{id}")],
            )
            .await
            .expect("a submitted call");
        ids.push(id);
    }
    let client = app.jobs.pool.get().await.expect("pool");
    let finish = tagcast::store::campaigns::Finish {
        msg_id: 1000,
        status: "send success",
        total: 2,
        filter: 0,
        sent: 2,
        error: 0,
        copyright: None,
    };
    let (call, _) = tagcast::store::campaigns::record_finish(&client, shop.id, &finish)
        .await
        .expect("recorded")
        .expect("shop's call");
    assert_eq!(call.0, ids[1], "shop's result names shop's campaign");
    assert!(!tagcast::store::campaigns::has_result(&client, AccountId::FIRST, 1000).await.expect("asked"));
    let first = tagcast::store::campaigns::progress(&client, ids[0]).await.expect("progress");
    assert_eq!((first.finished, first.sent), (0, 0), "the first account's call still waits for its own result");
    let other = tagcast::store::campaigns::progress(&client, ids[1]).await.expect("progress");
    assert_eq!((other.finished, other.sent), (1, 2));
    let overdue = tagcast::store::campaigns::list_overdue_results(&client, AccountId::FIRST, Duration::ZERO, 10)
        .await
        .expect("overdue");
    assert_eq!(overdue, [(ids[0], 1000)], "only the first account's own call is overdue there");
}
