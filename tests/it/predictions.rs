//! Issue 21, the purchase model end to end: a history in PostgreSQL whose purchases follow a
//! known rule (a follower who clicked the 限时特价 menu last week buys this week far more often,
//! which the order history alone cannot see), trained from the 预测 page through the job queue,
//! judged against the RFM baseline, scored, used by a threshold tag and a segment, kept true as
//! scores change, and erased with the follower.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::app::{TestApp, spawn_app};

const DAY: i64 = 86_400;
const WEEKS: usize = 14;

/// `n` followers of 14 weeks' standing; each week a follower is "hot" (clicks SALE twice) with
/// probability 1/4, and buys the following week with probability 0.4 when hot, 0.01 when not.
/// Returns, per follower, whether they were hot in the last 7 days (what today's score should see).
pub(crate) async fn seed_history(app: &TestApp, n: usize, seed: u64) -> Vec<(String, bool)> {
    let now = app.clock.unix();
    let mut rng = StdRng::seed_from_u64(seed);
    let openids: Vec<String> = (0..n).map(|i| format!("o_pred_{i:05}")).collect();
    let joined = chrono::DateTime::from_timestamp(now - (WEEKS as i64 * 7 + 3) * DAY, 0).expect("time");
    app.query(
        "INSERT INTO followers (openid, subscribed, subscribed_at, first_seen_at, last_seen_at, account_id)
         SELECT o, true, $2, $2, $2, 1 FROM unnest($1::text[]) AS o",
        &[&openids, &joined],
    )
    .await;
    let (mut click_who, mut click_at, mut order_who, mut order_at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut hot_now = Vec::new();
    for openid in &openids {
        // Week 0 is the last 7 days; week w covers (now - 7(w+1) days, now - 7w days].
        let hot: Vec<bool> = (0..=WEEKS).map(|_| rng.gen_ratio(1, 4)).collect();
        for (week, &is_hot) in hot.iter().enumerate().take(WEEKS) {
            let middle = now - (7 * week as i64) * DAY - 3 * DAY - DAY / 2;
            if is_hot {
                for k in 0..2 {
                    click_who.push(openid.clone());
                    click_at.push(chrono::DateTime::from_timestamp(middle - k * 3_600, 0).expect("time"));
                }
            }
            let chance = if hot[week + 1] { 0.4 } else { 0.01 };
            if rng.gen_bool(chance) {
                order_who.push(openid.clone());
                order_at.push(chrono::DateTime::from_timestamp(middle + 1_800, 0).expect("time"));
            }
        }
        hot_now.push((openid.clone(), hot[0]));
    }
    let keys: Vec<String> = (0..click_who.len()).map(|i| format!("t:pred:{i}")).collect();
    app.query(
        "INSERT INTO events (dedupe_key, openid, kind, event_key, occurred_at, payload, account_id)
         SELECT k, o, 'click', 'SALE', t, '{}'::jsonb, 1 FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(k, o, t)",
        &[&keys, &click_who, &click_at],
    )
    .await;
    let ids: Vec<String> = (0..order_who.len()).map(|i| format!("pred-order-{i}")).collect();
    app.query(
        "INSERT INTO orders (id, openid, amount_cents, occurred_at, account_id)
         SELECT i, o, 9900, t, 1 FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(i, o, t)",
        &[&ids, &order_who, &order_at],
    )
    .await;
    hot_now
}

async fn staff() -> TestApp {
    let app = spawn_app().await;
    app.create_admin("root", PASSWORD, "admin").await;
    app.create_admin("olivia", PASSWORD, "operator").await;
    app
}

#[tokio::test]
async fn a_model_that_beats_rfm_scores_every_follower_and_threshold_tags_follow_the_scores() {
    let app = staff().await;
    let hot_now = seed_history(&app, 2_000, 21).await;

    // Training takes a core for minutes on a large account: operators cannot start it.
    let mut olivia = Browser::log_in(&app, "olivia", PASSWORD).await;
    let page = olivia.get("/admin/predictions").await;
    assert!(page.body.contains("还没有训练过") && !page.body.contains("id=\"train-now\""), "{}", page.body);
    assert_eq!(olivia.post("/admin/predictions/train", &[]).await.status, StatusCode::FORBIDDEN);

    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/predictions").await;
    let page = root.post("/admin/predictions/train", &[]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let page = root.get("/admin/predictions").await;
    assert!(page.body.contains("已开始重新训练") && page.body.contains("训练排队或进行中"), "{}", page.body);
    app.run_pending_jobs().await;

    let run = &app.query("SELECT verdict, scored, figures FROM prediction_runs", &[]).await[0];
    let figures: serde_json::Value = run.get(2);
    assert_eq!(run.get::<_, Option<String>>(0).as_deref(), Some("trusted"), "{figures}");
    let (model_auc, baseline_auc) =
        (figures["model"]["auc"].as_f64().expect("auc"), figures["baseline"]["auc"].as_f64().expect("auc"));
    assert!(model_auc > 0.8 && model_auc - baseline_auc > 0.15, "{figures}");
    assert_eq!(run.get::<_, i32>(1), 2_000, "every subscribed follower scored");

    // Today's score sees last week's clicks: the hot followers are the likely buyers.
    let scores = app.query("SELECT openid, score FROM follower_scores", &[]).await;
    let score_of: std::collections::HashMap<String, f32> = scores.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mean = |hot: bool| {
        let picked: Vec<f32> = hot_now.iter().filter(|(_, h)| *h == hot).map(|(o, _)| score_of[o]).collect();
        picked.iter().sum::<f32>() / picked.len() as f32
    };
    assert!(mean(true) > 0.25 && mean(false) < 0.05, "hot {} cold {}", mean(true), mean(false));

    let page = root.get("/admin/predictions").await;
    for shown in ["可信", "RFM 基线", "前 10% 的提升倍数", "已为 2000 位粉丝评分", "score(purchase_7d) >= 0.6"]
    {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
    assert!(page.body.contains(&format!("{model_auc:.3}")), "the run's AUC is shown");

    // A threshold tag and a segment read the scores.
    let (status, body) = app
        .api_post("/tags", json!({"path": "购买意向/高", "when": "score(purchase_7d) >= 0.3", "wechat": false}))
        .await;
    assert_eq!(status, 201, "{body}");
    app.run_pending_jobs().await;
    let expected = app.count("SELECT count(*) FROM follower_scores WHERE score >= 0.3").await;
    assert!(expected > 100, "{expected}");
    let members = "SELECT count(*) FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.path = '购买意向/高'";
    assert_eq!(app.count(members).await, expected);
    let (status, segment) =
        app.api_post("/segments", json!({"name": "高意向", "expr": "score(purchase_7d) >= 0.3"})).await;
    assert_eq!(status, 201, "{segment}");
    assert_eq!(segment["members"].as_i64(), Some(expected));
    // The builder's count says how many of them the model expects to buy.
    let sum: f64 = app.query("SELECT sum(score::float8) FROM follower_scores WHERE score >= 0.3", &[]).await[0].get(0);
    let counted = root.get("/admin/segments/count?expr=score%28purchase_7d%29%20%3E%3D%200.3").await;
    let counted: serde_json::Value = serde_json::from_str(&counted.body).expect("json");
    assert_eq!(counted["members"].as_i64(), Some(expected), "{counted}");
    assert_eq!(counted["expected_buyers"].as_f64(), Some(sum.round()), "{counted}");
    let page = root.get("/admin/segments?expr=score%28purchase_7d%29%20%3E%3D%200.3").await;
    assert!(page.body.contains(&format!("预计其中约 {sum:.0} 人 7 天内下单")), "{}", page.body);

    // 计算人数 on the compose page says how many of the audience are expected to buy.
    root.get("/admin/campaigns/new").await;
    let form = [
        ("action", "count"),
        ("name", "高意向专享"),
        ("audience", "tag"),
        ("tag", "购买意向/高"),
        ("kind", "text"),
        ("content", "专属优惠"),
    ];
    let page = root.post("/admin/campaigns", &form).await;
    assert!(
        page.body.contains("预计下单") && page.body.contains(&format!("id=\"reach-expected\">约 {sum:.0} 人")),
        "{}",
        page.body
    );

    // A follower asking 我的标签 reads the prediction as a guess, in plain words.
    let member: String = app
        .query(
            "SELECT ft.openid FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE t.path = '购买意向/高' LIMIT 1",
            &[],
        )
        .await[0]
        .get(0);
    let reply = app.push_for_reply(&crate::support::app::text_message(&member, "我的标签", 880_001)).await;
    assert!(reply.contains("系统根据你近期的互动和留言推测的标签（只是估计，会随之更新）：购买意向/高"), "{reply}");
    assert!(!reply.contains("你的标签：购买意向/高"), "{reply}");

    // Scores change (the next run): the scheduled pass moves the tag with them.
    let dropped: String =
        app.query("SELECT openid FROM follower_scores WHERE score >= 0.3 LIMIT 1", &[]).await[0].get(0);
    app.query("UPDATE follower_scores SET score = 0.01 WHERE openid = $1", &[&dropped]).await;
    tagcast::jobs::refresh_dynamic_tags::enqueue_scheduled(&app.jobs.pool.get().await.expect("db"))
        .await
        .expect("queued");
    app.run_pending_jobs().await;
    assert_eq!(app.count(members).await, expected - 1);

    // Erasure takes the score with the follower.
    let (status, _) = app.api_delete(&format!("/users/{}", hot_now[0].0)).await;
    assert_eq!(status, 204);
    let left = app.query("SELECT count(*) FROM follower_scores WHERE openid = $1", &[&hot_now[0].0]).await;
    assert_eq!(left[0].get::<_, i64>(0), 0);
}

#[tokio::test]
async fn too_little_history_offers_no_score_and_says_what_is_missing() {
    let app = staff().await;
    seed_history(&app, 300, 5).await;
    // An earlier trusted run's scores: one written 8 days ago, one yesterday.
    app.query(
        "INSERT INTO follower_scores (account_id, model, openid, score, run_id, scored_at) VALUES
         (1, 'purchase_7d', 'o_pred_00000', 0.7, 1, now() - interval '8 days'),
         (1, 'purchase_7d', 'o_pred_00001', 0.7, 1, now() - interval '1 day')",
        &[],
    )
    .await;
    let mut root = Browser::log_in(&app, "root", PASSWORD).await;
    root.get("/admin/predictions").await;
    root.post("/admin/predictions/train", &[]).await;
    app.run_pending_jobs().await;
    let run = &app.query("SELECT verdict, scored FROM prediction_runs", &[]).await[0];
    assert_eq!(run.get::<_, Option<String>>(0).as_deref(), Some("too_little_history"));
    assert_eq!(run.get::<_, i32>(1), 0);
    // A run that is not trusted writes nothing and lets a week-old prediction go.
    let left = app.query("SELECT openid FROM follower_scores", &[]).await;
    assert_eq!(left.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>(), ["o_pred_00001"]);
    let page = root.get("/admin/predictions").await;
    assert!(page.body.contains("数据不足") && page.body.contains("历史数据还不够"), "{}", page.body);
    assert!(page.body.contains("模型还不可信，暂不提供预测标签"), "{}", page.body);
    crate::support::english::assert_no_english("the 预测 page", &page.body);
}

#[tokio::test]
async fn the_predictions_page_reads_on_a_phone_and_a_desktop_after_a_trusted_run() {
    use crate::admin_browser::{browser, chromium_missing, fits_phone_and_desktop, log_in, start_driver};
    if chromium_missing() {
        return;
    }
    let app = staff().await;
    seed_history(&app, 2_000, 34).await;
    let client = app.jobs.pool.get().await.expect("db");
    tagcast::app::predictions::queue_run(&client, tagcast::domain::account::AccountId::FIRST, "root")
        .await
        .expect("queued");
    app.run_pending_jobs().await;
    let driver = start_driver().await;
    let page = browser(&driver).await;
    page.goto(&format!("{}/admin/login", app.address)).await.expect("login page");
    log_in(&page, "root").await;
    let shows = [("#verdict", "可信"), ("#figures", "RFM 基线"), ("#usage", "预计其中约")];
    fits_phone_and_desktop(&page, &app.address, "/admin/predictions", &shows, "predictions").await;
    page.close().await.expect("closed");
}
