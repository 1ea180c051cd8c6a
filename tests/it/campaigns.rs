//! Campaigns end to end (issue 6): the API of CONTRACT.md §4, the calls that reach the mock
//! WeChat for each audience, MASSSENDJOBFINISH, caps, approvals, durability and A/B splits.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tagcast::mock_wechat::MassAudience;

use crate::support::app::{TestApp, event, now, spawn_app_with, text_message};

/// Mass APIs paced far above WeChat's 60/min, so tests do not wait on the limiter.
fn fast(vars: &mut HashMap<String, String>) {
    vars.insert(
        "TAGCAST_WECHAT_RATE_LIMITS".into(),
        "default=2000,/cgi-bin/message/mass/send=200,/cgi-bin/message/mass/sendall=200,/cgi-bin/message/mass/preview=200"
            .into(),
    );
}

async fn spawn(customize: impl FnOnce(&mut HashMap<String, String>)) -> TestApp {
    spawn_app_with(|vars| {
        fast(vars);
        customize(vars);
    })
    .await
}

/// `n` followers on the mock, imported the way `tagcast sync` imports them.
async fn followers(app: &TestApp, n: usize) -> Vec<String> {
    let openids = app.wechat.seed_followers(n);
    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("sync");
    openids
}

/// Tags `openids` with `path` the way followers get tags: a keyword rule they trigger.
async fn tag_by_keyword(app: &TestApp, path: &str, keyword: &str, openids: &[String]) {
    let (status, body) = app.api_post("/rules", json!({"on": "keyword", "key": keyword, "add": [path]})).await;
    assert_eq!(status, 201, "{body}");
    for (i, openid) in openids.iter().enumerate() {
        let response =
            app.push(&text_message(openid, keyword, 7_000_000 + i as u64 + rand::random::<u32>() as u64)).await;
        assert_eq!(response.status(), 200);
    }
    app.run_pending_jobs().await;
}

async fn create_tag(app: &TestApp, body: Value) {
    let (status, body) = app.api_post("/tags", body).await;
    assert_eq!(status, 201, "{body}");
}

async fn create_segment(app: &TestApp, expr: &str) -> i64 {
    let (status, body) = app.api_post("/segments", json!({"name": "s", "expr": expr})).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("id")
}

async fn create_campaign(app: &TestApp, body: Value) -> i64 {
    let (status, body) = app.api_post("/campaigns", body).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["status"], "draft");
    body["id"].as_i64().expect("id")
}

fn text(content: &str) -> Value {
    json!({"type": "text", "content": content})
}

async fn send(app: &TestApp, id: i64) -> (u16, Value) {
    app.api_post(&format!("/campaigns/{id}/send"), json!({})).await
}

async fn campaign(app: &TestApp, id: i64) -> Value {
    let (status, body) = app.api_get(&format!("/campaigns/{id}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Runs the send job, then waits for every MASSSENDJOBFINISH to be pushed back and stored.
async fn deliver(app: &TestApp) {
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    app.run_pending_jobs().await;
}

fn mass_calls(app: &TestApp) -> Vec<(String, Value)> {
    app.wechat
        .calls()
        .into_iter()
        .filter(|c| c.path.contains("message/mass/send"))
        .map(|c| (c.path.clone(), c.body.clone()))
        .collect()
}

#[tokio::test]
async fn a_mirrored_tag_goes_by_sendall_with_its_tag_id_and_the_result_sets_counts_and_status() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 10).await;
    tag_by_keyword(&app, "肤质/油性", "油皮", &fans[..3]).await;
    let wechat_tag = app.wechat.tags().into_iter().find(|t| t.1 == "肤质/油性").expect("mirrored").0;
    let id =
        create_campaign(&app, json!({"name": "油皮新品", "audience": {"tag": "肤质/油性"}, "message": text("新品")}))
            .await;

    let (status, body) = send(&app, id).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!((body["status"].as_str(), body["recipients"].as_i64()), (Some("sending"), Some(3)));
    deliver(&app).await;

    let calls = mass_calls(&app);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(calls[0].0.ends_with("/sendall"));
    assert_eq!(calls[0].1["filter"], json!({"is_to_all": false, "tag_id": wechat_tag}));
    assert_eq!(calls[0].1["clientmsgid"], format!("tagcast-c{id}-s0"));
    // The tag was checked on WeChat right before the send.
    let paths: Vec<String> = app.wechat.calls().into_iter().map(|c| c.path).collect();
    let sendall_at = paths.iter().rposition(|p| p.ends_with("mass/sendall")).unwrap();
    assert!(paths[sendall_at - 1].ends_with("tags/get"), "{paths:?}");
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sent", "{shown}");
    assert_eq!(shown["counts"], json!({"total": 3, "filter": 3, "sent": 3, "error": 0}));
    let msg_id = app.wechat.mass_jobs()[0].msg_id as i64;
    assert_eq!(shown["wechat_msg_ids"], json!([msg_id]));
    let actions: Vec<String> = app
        .query(
            "SELECT action FROM audit_log WHERE object_kind = 'campaign' AND object_id = $1 ORDER BY id",
            &[&id.to_string()],
        )
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(actions, ["create", "send"]);
}

#[tokio::test]
async fn everyone_is_is_to_all_and_a_segment_is_openid_lists_never_to_all() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 5).await;
    let all = create_campaign(&app, json!({"name": "全员", "audience": {"all": true}, "message": text("hi")})).await;
    assert_eq!(send(&app, all).await.0, 202);
    deliver(&app).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let seg =
        create_campaign(&app, json!({"name": "新客", "audience": {"segment": segment}, "message": text("首单")})).await;
    assert_eq!(send(&app, seg).await.0, 202);
    deliver(&app).await;

    let calls = mass_calls(&app);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[0].1["filter"], json!({"is_to_all": true}));
    assert!(calls[1].0.ends_with("/mass/send"));
    assert!(calls[1].1.get("filter").is_none());
    let touser: BTreeSet<String> =
        calls[1].1["touser"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(touser, fans.iter().cloned().collect());
    assert_eq!(campaign(&app, seg).await["counts"]["sent"], 5);
    assert_eq!(campaign(&app, all).await["status"], "sent");
    // Unknown fields and a non-true `all` are refused.
    let (status, body) = app
        .api_post("/campaigns", json!({"name": "x", "audience": {"all": true}, "message": text("a"), "to": 1}))
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")));
    let (status, _) =
        app.api_post("/campaigns", json!({"name": "x", "audience": {"all": false}, "message": text("a")})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_segment_on_a_subscription_account_goes_by_a_temporary_tag_removed_afterwards() {
    let app = spawn(|vars| {
        vars.insert("WECHAT_ACCOUNT_TYPE".into(), "subscription".into());
    })
    .await;
    let fans = followers(&app, 120).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id =
        create_campaign(&app, json!({"name": "订阅号", "audience": {"segment": segment}, "message": text("x")})).await;
    assert_eq!(send(&app, id).await.0, 202);
    deliver(&app).await;

    let calls = app.wechat.calls();
    let created = calls.iter().position(|c| c.path.ends_with("tags/create")).expect("temporary tag created");
    let tagging: Vec<_> = calls.iter().filter(|c| c.path.ends_with("members/batchtagging")).collect();
    assert_eq!(tagging.len(), 3, "120 followers in calls of at most 50");
    let sendall = calls.iter().position(|c| c.path.ends_with("mass/sendall")).expect("sendall");
    let deleted = calls.iter().position(|c| c.path.ends_with("tags/delete")).expect("temporary tag removed");
    assert!(created < sendall && sendall < deleted);
    let temp = calls[sendall].body["filter"]["tag_id"].as_i64().expect("by tag");
    assert_eq!(calls[deleted].body["tag"]["id"].as_i64(), Some(temp));
    assert!(app.wechat.tags().iter().all(|t| t.0 != temp));
    assert!(calls.iter().all(|c| !c.path.ends_with("mass/send")));
    let msg_id = app.wechat.mass_jobs()[0].msg_id;
    assert_eq!(app.wechat.mass_recipients(msg_id).len(), fans.len());
    assert_eq!(campaign(&app, id).await["status"], "sent");

    // One send a day: the next is refused before anything reaches WeChat.
    let again = create_campaign(&app, json!({"name": "again", "audience": {"all": true}, "message": text("y")})).await;
    let (status, body) = send(&app, again).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("quota_exhausted")), "{body}");
    assert!(body["error"]["next_send_from"].is_string());
    assert_eq!(app.wechat.mass_jobs().len(), 1);
}

#[tokio::test]
async fn the_send_past_the_monthly_tag_cap_is_refused_and_reaches_no_one() {
    let app = spawn(|vars| {
        vars.insert("TAGCAST_MONTHLY_TAG_CAP".into(), "2".into());
    })
    .await;
    let fans = followers(&app, 4).await;
    create_tag(&app, json!({"path": "兴趣/护肤", "wechat": false})).await;
    tag_by_keyword(&app, "兴趣/护肤", "护肤", &fans).await;
    let segment = create_segment(&app, r#""兴趣/护肤" AND orders(all) = 0"#).await;
    for i in 0..2 {
        let audience = if i == 0 { json!({"tag": "兴趣/护肤"}) } else { json!({"segment": segment}) };
        let id =
            create_campaign(&app, json!({"name": format!("c{i}"), "audience": audience, "message": text("x")})).await;
        assert_eq!(send(&app, id).await.0, 202);
        deliver(&app).await;
    }
    assert_eq!(app.wechat.mass_jobs().len(), 2);
    // A local-only tag goes by openid list.
    assert!(mass_calls(&app).iter().all(|(path, _)| path.ends_with("/mass/send")));

    let third =
        create_campaign(&app, json!({"name": "c3", "audience": {"segment": segment}, "message": text("x")})).await;
    let (status, body) = send(&app, third).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("frequency_cap")), "{body}");
    assert_eq!(body["error"]["tag"], "兴趣/护肤");
    let frees_on = body["error"]["frees_on"].as_str().expect("date");
    let expected = (app.clock.now() + chrono::Duration::days(30)).date_naive().to_string();
    assert_eq!(frees_on, expected);
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.mass_jobs().len(), 2, "nothing reached WeChat");
    assert_eq!(campaign(&app, third).await["status"], "draft");

    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(send(&app, third).await.0, 202);
    deliver(&app).await;
    assert_eq!(app.wechat.mass_jobs().len(), 3);
}

#[tokio::test]
async fn a_sensitive_audience_needs_approval_by_someone_other_than_its_creator() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 3).await;
    create_tag(&app, json!({"path": "敏感/价格敏感", "sensitive": true})).await;
    tag_by_keyword(&app, "敏感/价格敏感", "便宜", &fans).await;
    app.create_admin("olga", "operator-pass-1", "operator").await;
    app.create_admin("amy", "approver-pass-1", "approver").await;
    let olga = ("olga", "operator-pass-1");
    let amy = ("amy", "approver-pass-1");
    let body = json!({"name": "折扣", "audience": {"tag": "敏感/价格敏感"}, "message": text("折扣")});
    let (status, created) = app.api_call_as(olga, reqwest::Method::POST, "/campaigns", Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();

    let (status, refused) = app.api_call_as(olga, reqwest::Method::POST, &format!("/campaigns/{id}/send"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (409, Some("needs_approval")), "{refused}");
    assert_eq!(campaign(&app, id).await["status"], "pending_approval");
    let (status, _) = app.api_call_as(olga, reqwest::Method::POST, &format!("/campaigns/{id}/approve"), None).await;
    assert_eq!(status, 403, "operators cannot approve");

    // An approver cannot approve their own campaign either.
    let (_, own) = app.api_call_as(amy, reqwest::Method::POST, "/campaigns", Some(body)).await;
    let own = own["id"].as_i64().unwrap();
    let (status, body) = app.api_call_as(amy, reqwest::Method::POST, &format!("/campaigns/{own}/approve"), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("self_approval")));

    let (status, body) = app.api_call_as(amy, reqwest::Method::POST, &format!("/campaigns/{id}/approve"), None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("approved")), "{body}");
    assert!(app.wechat.mass_jobs().is_empty());
    let (status, body) = app.api_call_as(olga, reqwest::Method::POST, &format!("/campaigns/{id}/send"), None).await;
    assert_eq!(status, 202, "{body}");
    deliver(&app).await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    let (status, _) = app.api_call_as(amy, reqwest::Method::POST, &format!("/campaigns/{own}/cancel"), None).await;
    assert_eq!(status, 200);

    let rows = app
        .query("SELECT actor, action, object_id FROM audit_log WHERE object_kind = 'campaign' ORDER BY id", &[])
        .await;
    let log: Vec<(String, String, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    let (id, own) = (id.to_string(), own.to_string());
    let expected = [
        ("olga", "create", &id),
        ("olga", "send", &id),
        ("amy", "create", &own),
        ("amy", "approve", &id),
        ("olga", "send", &id),
        ("amy", "cancel", &own),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).clone())).collect();
    assert_eq!(log, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_send_resumes_and_every_follower_receives_the_segment_once() {
    let mut app = spawn(|_| {}).await;
    let fans = followers(&app, 30_000).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id =
        create_campaign(&app, json!({"name": "大促", "audience": {"segment": segment}, "message": text("x")})).await;
    let (status, body) = send(&app, id).await;
    assert_eq!((status, body["recipients"].as_i64()), (202, Some(30_000)));
    // Slow calls, so the kill lands between the first accepted call and the last.
    app.wechat.set_latency(Duration::from_millis(150));

    let jobs = app.jobs.clone();
    let worker = tokio::spawn(async move { tagcast::jobs::run_pending(&jobs).await });
    let started = Instant::now();
    while app.wechat.mass_jobs().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "no call reached WeChat");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    worker.abort();
    let _ = worker.await;
    let sent_before_kill = app.wechat.mass_jobs().len();
    assert!(sent_before_kill < 3, "killed before the end");
    // WeChat's result for the call made before the kill still reaches the running server,
    // perhaps before anyone recorded which campaign the job belongs to.
    app.wechat.wait_for_callbacks().await;

    app.restart().await;
    app.wechat.set_latency(Duration::ZERO);
    // The killed process's transaction may take a moment to roll back and free the job.
    let started = Instant::now();
    while campaign(&app, id).await["status"] != "sent" {
        assert!(started.elapsed() < Duration::from_secs(30), "the send never resumed");
        deliver(&app).await;
        // The call in flight at the kill reached WeChat: repeated at once it meets 45066.
        app.pass_the_clientmsgid_minute().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut received: HashMap<String, usize> = HashMap::new();
    for job in app.wechat.mass_jobs() {
        for openid in app.wechat.mass_recipients(job.msg_id) {
            *received.entry(openid).or_default() += 1;
        }
    }
    assert_eq!(received.len(), fans.len());
    assert!(received.values().all(|n| *n == 1), "someone received it twice");
    assert_eq!(app.wechat.mass_jobs().len(), 3);
    let shown = campaign(&app, id).await;
    assert_eq!((shown["status"].as_str(), shown["counts"]["sent"].as_i64()), (Some("sent"), Some(30_000)), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_send_survives_a_restart_and_fires_once_across_two_servers() {
    let mut app = spawn(|_| {}).await;
    followers(&app, 6).await;
    let send_at = app.clock.now() + chrono::Duration::hours(1);
    let id = create_campaign(
        &app,
        json!({"name": "定时", "audience": {"all": true}, "message": text("早安"), "send_at": send_at.to_rfc3339()}),
    )
    .await;
    let (status, body) = send(&app, id).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("scheduled")), "{body}");
    app.run_pending_jobs().await;
    assert!(app.wechat.mass_jobs().is_empty(), "not before its time");

    app.restart().await;
    let other = app.another_instance("worker").await;
    app.clock.advance(chrono::Duration::hours(2));
    app.run_pending_jobs().await;
    let started = Instant::now();
    loop {
        app.wechat.wait_for_callbacks().await;
        if campaign(&app, id).await["status"] == "sent" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the scheduled send never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.run_pending_jobs().await;
    other.kill().await;
    assert_eq!(app.wechat.mass_jobs().len(), 1, "sent exactly once");
    assert_eq!(mass_calls(&app).len(), 1);
}

#[tokio::test]
async fn ab_variants_split_the_audience_deterministically_and_disjointly() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 300).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id = create_campaign(
        &app,
        json!({"name": "AB", "audience": {"segment": segment}, "message": text("A 文案"),
               "variants": [{"name": "B", "message": text("B 文案")}]}),
    )
    .await;
    let (status, body) = app.api_post(&format!("/campaigns/{id}/preview"), json!({"openids": [fans[0]]})).await;
    assert_eq!((status, body["results"][0]["ok"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(app.wechat.previews().len(), 2, "each variant previewed");
    // Six test followers by two messages would be twelve calls while the caller waits.
    let (status, body) = app.api_post(&format!("/campaigns/{id}/preview"), json!({"openids": &fans[..6]})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    assert_eq!(app.wechat.previews().len(), 2);
    assert!(app.wechat.mass_jobs().is_empty());

    assert_eq!(send(&app, id).await.0, 202);
    deliver(&app).await;
    let jobs = app.wechat.mass_jobs();
    assert_eq!(jobs.len(), 2);
    let mut seen = BTreeSet::new();
    for job in &jobs {
        let content = job.request["text"]["content"].as_str().unwrap();
        let variant = usize::from(content.starts_with('B'));
        for openid in app.wechat.mass_recipients(job.msg_id) {
            assert_eq!(tagcast::domain::campaign::variant_of(id, &openid, 2), variant);
            assert!(seen.insert(openid), "disjoint");
        }
        assert!(matches!(job.audience, MassAudience::OpenIds(n) if n > 100), "{:?}", job.audience);
    }
    assert_eq!(seen.len(), fans.len());
    let shown = campaign(&app, id).await;
    assert_eq!(shown["stats"]["recipients"], 300);
}

fn order(id: &str, openid: &str) -> Value {
    json!({"id": id, "openid": openid, "type": "order", "amount": 99.5, "occurred_at": chrono::Utc::now().to_rfc3339()})
}

#[tokio::test]
async fn clicks_conversions_and_unsubscribes_land_on_the_right_campaign() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 6).await;
    tag_by_keyword(&app, "兴趣/彩妆", "彩妆", &fans[..3]).await;
    let first =
        create_campaign(&app, json!({"name": "彩妆", "audience": {"tag": "兴趣/彩妆"}, "message": text("x")})).await;
    let (status, link) =
        app.api_post(&format!("/campaigns/{first}/links"), json!({"url": "https://shop.example/lip?x=1"})).await;
    assert_eq!(status, 201, "{link}");
    let path = link["path"].as_str().unwrap().to_owned();
    assert_eq!(send(&app, first).await.0, 202);
    deliver(&app).await;

    // A click from inside WeChat goes through silent OAuth first.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("{}{path}", app.address);
    let response = no_redirects.get(&url).header("user-agent", "Mozilla/5.0 MicroMessenger/8.0").send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("https://open.weixin.qq.com/connect/oauth2/authorize?"), "{location}");
    assert!(location.contains("scope=snsapi_base") && location.ends_with("#wechat_redirect"), "{location}");
    // WeChat sends the follower back with a code that names them.
    let code = app.wechat.oauth_code(&fans[2]);
    let response = no_redirects.get(format!("{url}?code={code}&state=tc")).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "https://shop.example/lip?x=1");
    // Outside WeChat: recorded, not attributed.
    assert_eq!(no_redirects.get(&url).send().await.unwrap().status(), 302);
    assert_eq!(no_redirects.get(format!("{}/r/nope", app.address)).send().await.unwrap().status(), 404);

    let (status, _) = app.api_post("/events", order("o-1", &fans[1])).await;
    assert_eq!(status, 202);
    let second = create_campaign(&app, json!({"name": "全员", "audience": {"all": true}, "message": text("y")})).await;
    assert_eq!(send(&app, second).await.0, 202);
    deliver(&app).await;
    // After the second send, an order and an unsubscribe belong to it (the last to reach them).
    assert_eq!(app.api_post("/events", order("o-2", &fans[4])).await.0, 202);
    assert_eq!(app.api_post("/events", order("o-3", &fans[1])).await.0, 202);
    assert_eq!(app.push(&event(&fans[5], "unsubscribe", None, now() + 2)).await.status(), 200);

    let a = campaign(&app, first).await["stats"].clone();
    assert_eq!(
        (a["recipients"].as_i64(), a["clicks"].as_i64(), a["anonymous_clicks"].as_i64()),
        (Some(3), Some(2), Some(1)),
        "{a}"
    );
    assert_eq!(
        (a["clickers"].as_i64(), a["conversions"].as_i64(), a["unsubscribes"].as_i64()),
        (Some(1), Some(1), Some(0)),
        "{a}"
    );
    let b = campaign(&app, second).await["stats"].clone();
    assert_eq!(
        (b["recipients"].as_i64(), b["conversions"].as_i64(), b["unsubscribes"].as_i64()),
        (Some(6), Some(2), Some(1)),
        "{b}"
    );
    assert_eq!(b["conversion_rate"].as_f64(), Some(2.0 / 6.0));

    let (status, body) = app.api_get("/campaigns/strategies").await;
    assert_eq!(status, 200, "{body}");
    let strategies = body["strategies"].as_array().unwrap();
    let all = strategies.iter().find(|s| s["strategy"] == "all").unwrap();
    let tag = strategies.iter().find(|s| s["strategy"] == "tag").unwrap();
    assert_eq!((all["campaigns"].as_i64(), tag["campaigns"].as_i64()), (Some(1), Some(1)));
    assert_eq!(tag["click_rate"].as_f64(), Some(2.0 / 3.0));

    let (status, health) = app.api_get("/tags/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["low_click_tags"], json!([]));
    let (status, list) = app.api_get("/campaigns?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(list["campaigns"][0]["id"].as_i64(), Some(second));
    assert_eq!(list["next"].as_i64(), Some(second));
}

#[tokio::test]
async fn tag_health_names_low_click_tags_and_near_duplicate_pairs() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 40).await;
    tag_by_keyword(&app, "地区/广东", "广东", &fans[..30]).await;
    tag_by_keyword(&app, "地区/广州", "广州", &fans[..28]).await;
    tag_by_keyword(&app, "兴趣/健身", "健身", &fans[20..]).await;
    let id =
        create_campaign(&app, json!({"name": "广东", "audience": {"tag": "地区/广东"}, "message": text("x")})).await;
    assert_eq!(send(&app, id).await.0, 202);
    deliver(&app).await;
    let (_, link) = app.api_post(&format!("/campaigns/{id}/links"), json!({"url": "https://shop.example/"})).await;
    // One click in thirty recipients: 3.3%.
    let code = app.wechat.oauth_code(&fans[0]);
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = format!("{}{}?code={code}&state=tc", app.address, link["path"].as_str().unwrap());
    assert_eq!(no_redirects.get(url).send().await.unwrap().status(), 302);

    let (status, health) = app.api_get("/tags/health").await;
    assert_eq!(status, 200, "{health}");
    let low = health["low_click_tags"].as_array().unwrap();
    assert_eq!(low.len(), 1, "{health}");
    assert_eq!(low[0]["path"], "地区/广东");
    let pairs = health["overlapping_tags"].as_array().unwrap();
    assert_eq!(pairs.len(), 1, "{health}");
    assert_eq!(pairs[0]["tags"], json!(["地区/广东", "地区/广州"]));
}

#[tokio::test]
async fn a_refused_send_by_temporary_tag_fails_the_campaign_and_removes_the_tag() {
    let app = spawn(|vars| {
        vars.insert("WECHAT_ACCOUNT_TYPE".into(), "subscription".into());
    })
    .await;
    followers(&app, 3).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id = create_campaign(&app, json!({"name": "x", "audience": {"segment": segment}, "message": text("x")})).await;
    app.wechat.fail_next("/cgi-bin/message/mass/sendall", 1, 48001);
    assert_eq!(send(&app, id).await.0, 202);
    deliver(&app).await;

    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    assert!(shown["last_error"].as_str().unwrap().contains("48001"), "{shown}");
    assert!(app.wechat.mass_jobs().is_empty());
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/create"), 1);
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/delete"), 1);
    assert!(app.wechat.tags().iter().all(|t| !t.1.starts_with("tc-tmp-")));
}

#[tokio::test]
async fn ab_results_name_a_winner_only_when_the_difference_is_significant() {
    let app = spawn(|_| {}).await;
    followers(&app, 400).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id = create_campaign(
        &app,
        json!({"name": "AB", "audience": {"segment": segment}, "message": text("A"),
               "variants": [{"name": "B", "message": text("B")}]}),
    )
    .await;
    assert_eq!(send(&app, id).await.0, 202);
    deliver(&app).await;
    let rows = app
        .query("SELECT openid, variant FROM campaign_recipients WHERE campaign_id = $1 ORDER BY openid", &[&id])
        .await;
    let (a, b): (Vec<_>, Vec<_>) =
        rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i32>(1))).partition(|(_, v)| *v == 0);
    // A tenth of A orders, half of B: far beyond chance at these sizes.
    let mut orders = Vec::new();
    for (i, (openid, _)) in a.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        orders.push(order(&format!("a-{i}"), openid));
    }
    for (i, (openid, _)) in b.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        orders.push(order(&format!("b-{i}"), openid));
    }
    assert_eq!(app.api_post("/events", Value::Array(orders)).await.0, 202);

    let stats = campaign(&app, id).await["stats"].clone();
    let verdict = &stats["ab_test"];
    assert_eq!(verdict["conversions"]["winner"], 1, "{stats}");
    let test = &verdict["conversions"]["against_control"][0];
    assert!(test["z"].as_f64().unwrap() > 5.0 && test["p_value"].as_f64().unwrap() < 0.001, "{test}");
    // Nobody clicked: nothing to tell apart, no winner.
    assert_eq!(verdict["clicks"]["winner"], Value::Null, "{stats}");
    assert_eq!(stats["variants"][1]["conversions"].as_i64(), Some(b.len().div_ceil(2) as i64));
}

#[tokio::test]
async fn the_read_rate_comes_from_datacube_by_msg_data_id_once_the_day_is_over() {
    let app = spawn(|_| {}).await;
    followers(&app, 200).await;
    let draft = app.wechat.add_draft(&["春季新品"]);
    let id = create_campaign(
        &app,
        json!({"name": "图文", "audience": {"all": true}, "message": {"type": "mpnews", "media_id": draft}}),
    )
    .await;
    assert_eq!(send(&app, id).await.0, 202);
    deliver(&app).await;
    let shown = campaign(&app, id).await;
    assert_eq!(shown["msg_data_ids"].as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown["stats"]["read_rate"], Value::Null, "no figures before the day is over");

    app.wechat.advance_time(Duration::from_secs(86_400));
    app.clock.advance(chrono::Duration::days(1));
    let fetch = || async { tagcast::jobs::fetch_article_reads::run(&app.jobs).await.expect("fetch") };
    fetch().await;
    fetch().await;
    // The day's token has expired on the mock (42001, refreshed and asked again); count answers.
    let answered = app.wechat.calls().into_iter().filter(|c| c.path.contains("datacube") && c.errcode == 0).count();
    assert_eq!(answered, 1, "a finished day is asked for once");
    let read_rate = campaign(&app, id).await["stats"]["read_rate"].as_f64().expect("a read rate");
    // The mock's readers are 20-40 % of SentCount, 60 % of them on the send day.
    assert!((0.1..=0.25).contains(&read_rate), "{read_rate}");
}

#[tokio::test]
async fn the_send_answer_says_how_many_followers_wechat_will_filter_for_the_monthly_limit() {
    let app = spawn(|_| {}).await;
    followers(&app, 3).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    for i in 0..5 {
        let id = create_campaign(
            &app,
            json!({"name": format!("m{i}"), "audience": {"segment": segment}, "message": text("x")}),
        )
        .await;
        let (status, body) = send(&app, id).await;
        assert_eq!(status, 202, "{body}");
        // A service account's followers receive 4 mass messages a month; the 5th is filtered.
        let expected = if i < 4 { 0 } else { 3 };
        assert_eq!(body["will_be_filtered"].as_i64(), Some(expected), "send {i}: {body}");
        deliver(&app).await;
        let counts = &campaign(&app, id).await["counts"];
        assert_eq!((counts["total"].as_i64(), counts["sent"].as_i64()), (Some(3), Some(3 - expected)), "{counts}");
    }
}

#[tokio::test]
async fn a_cancelled_scheduled_campaign_never_fires_and_gives_its_cap_slot_back() {
    let app = spawn(|vars| {
        vars.insert("TAGCAST_MONTHLY_TAG_CAP".into(), "1".into());
    })
    .await;
    let fans = followers(&app, 3).await;
    create_tag(&app, json!({"path": "兴趣/旅行", "wechat": false})).await;
    tag_by_keyword(&app, "兴趣/旅行", "旅行", &fans).await;
    let send_at = (app.clock.now() + chrono::Duration::hours(2)).to_rfc3339();
    let body = json!({"name": "later", "audience": {"tag": "兴趣/旅行"}, "message": text("x"), "send_at": send_at});
    let later = create_campaign(&app, body).await;
    assert_eq!(send(&app, later).await.1["status"], "scheduled");
    let now =
        create_campaign(&app, json!({"name": "now", "audience": {"tag": "兴趣/旅行"}, "message": text("y")})).await;
    assert_eq!(send(&app, now).await.1["error"]["code"], "frequency_cap", "the scheduled send holds the slot");

    let (status, body) = app.api_post(&format!("/campaigns/{later}/cancel"), json!({})).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));
    app.clock.advance(chrono::Duration::hours(3));
    app.run_pending_jobs().await;
    assert!(app.wechat.mass_jobs().is_empty(), "a cancelled campaign never fires");
    let (status, body) = send(&app, later).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("invalid_status")));
    assert_eq!(send(&app, now).await.0, 202);
    deliver(&app).await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_sending_at_once_keep_the_accounts_mass_send_pace_together() {
    let app = spawn_app_with(|vars| {
        vars.insert(
            "TAGCAST_WECHAT_RATE_LIMITS".into(),
            "default=2000,/cgi-bin/message/mass/send=4,/cgi-bin/message/mass/sendall=4".into(),
        );
    })
    .await;
    followers(&app, 60).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let variants: Vec<Value> =
        (1..5).map(|i| json!({"name": format!("v{i}"), "message": text(&format!("v{i}"))})).collect();
    for name in ["one", "two"] {
        let body = json!({"name": name, "audience": {"segment": segment}, "message": text(name), "variants": variants});
        let id = create_campaign(&app, body).await;
        assert_eq!(send(&app, id).await.0, 202);
    }
    // A second process: its own pool and its own client, so its own in-process limiter.
    let other = tagcast::jobs::JobCtx {
        pool: tagcast::store::connect_pool(&app.settings.database_url, 4).await.expect("pool"),
        api: app.api_of_another_instance().await,
        ..app.jobs.clone()
    };
    let started = Instant::now();
    let (a, b) = tokio::join!(tagcast::jobs::run_pending(&app.jobs), tagcast::jobs::run_pending(&other));
    a.expect("first process");
    b.expect("second process");
    let elapsed = started.elapsed();

    // Ten sends at 4 a second between them take at least 9 intervals; each process alone would
    // have let its five through in one second.
    assert_eq!(app.wechat.mass_jobs().len(), 10);
    assert!(elapsed >= Duration::from_millis(2_200), "{elapsed:?}");
}

#[tokio::test]
async fn a_result_wechat_never_pushes_is_read_back_with_mass_get_and_the_campaign_finishes() {
    let app = spawn(|vars| {
        vars.insert("TAGCAST_MASS_RESULT_WAIT_SECS".into(), "0".into());
    })
    .await;
    followers(&app, 4).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id =
        create_campaign(&app, json!({"name": "失联", "audience": {"segment": segment}, "message": text("hi")})).await;
    // The push is lost: nothing answers WeChat's MASSSENDJOBFINISH.
    app.wechat.set_callback(None);
    assert_eq!(send(&app, id).await.0, 202);
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    let sending = campaign(&app, id).await;
    assert_eq!(sending["status"], "sending", "{sending}");
    assert_eq!(app.wechat.call_count("/cgi-bin/message/mass/get"), 0);

    app.run_pending_jobs().await;
    let body = campaign(&app, id).await;
    assert_eq!(body["status"], "sent", "{body}");
    assert_eq!(app.wechat.call_count("/cgi-bin/message/mass/get"), 1);
    assert_eq!(body["calls"]["finished"], 1);
    assert_eq!(body["calls"]["uncounted"], 1, "mass/get says how a job ended, not how many it reached");
    assert_eq!(body["counts"]["sent"], 0);
    // Finished calls are not asked about again.
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.call_count("/cgi-bin/message/mass/get"), 1);
}

#[tokio::test]
async fn erasing_a_recipient_takes_them_out_of_calls_not_yet_made() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 5).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id =
        create_campaign(&app, json!({"name": "待发", "audience": {"segment": segment}, "message": text("hi")})).await;
    // WeChat is down for longer than the client's own retries.
    app.wechat.fail_next_http("/cgi-bin/message/mass/send", 50, 502);
    assert_eq!(send(&app, id).await.0, 202);
    app.run_pending_jobs().await;
    let waiting = campaign(&app, id).await;
    assert_eq!(waiting["calls"]["pending"], 1, "the call waits for WeChat to recover: {waiting}");

    let (status, _) = app.api_delete(&format!("/users/{}", fans[0])).await;
    assert_eq!(status, 204);
    let naming: i64 =
        app.query("SELECT count(*) FROM campaign_chunks WHERE $1 = ANY(openids)", &[&fans[0]]).await[0].get(0);
    assert_eq!(naming, 0, "no planned call names the erased follower");
    app.wechat.clear_failures("/cgi-bin/message/mass/send");
    app.query("UPDATE jobs SET run_at = now() WHERE state = 'pending'", &[]).await;
    deliver(&app).await;
    let calls = mass_calls(&app);
    let touser: BTreeSet<String> =
        calls.last().unwrap().1["touser"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert_eq!(touser, fans[1..].iter().cloned().collect());
    assert_eq!(campaign(&app, id).await["status"], "sent");
    let listed: i64 =
        app.query("SELECT count(*) FROM campaign_chunks WHERE cardinality(openids) > 0", &[]).await[0].get(0);
    assert_eq!(listed, 0, "a call made keeps no openid list: who was sent to is in campaign_recipients");
}

/// A send job that runs out of retries while WeChat is down leaves calls not made; the workers'
/// sweep gives the campaign a new job instead of leaving it `sending` for ever.
#[tokio::test]
async fn a_send_whose_job_died_in_an_outage_gets_a_new_job_and_finishes() {
    let app = spawn(|_| {}).await;
    followers(&app, 3).await;
    let segment = create_segment(&app, "orders(all) = 0").await;
    let id =
        create_campaign(&app, json!({"name": "断网", "audience": {"segment": segment}, "message": text("hi")})).await;
    app.wechat.fail_next_http("/cgi-bin/message/mass/send", 50, 502);
    assert_eq!(send(&app, id).await.0, 202);
    app.run_pending_jobs().await;
    // As if every retry had been used up during a long outage.
    app.query("UPDATE jobs SET state = 'dead' WHERE kind = 'send_campaign'", &[]).await;
    app.wechat.clear_failures("/cgi-bin/message/mass/send");
    assert_eq!(campaign(&app, id).await["calls"]["pending"], 1);

    deliver(&app).await;
    let body = campaign(&app, id).await;
    assert_eq!(body["status"], "sent", "{body}");
    assert_eq!(body["counts"]["sent"], 3);
    let jobs: i64 = app.query("SELECT count(*) FROM jobs WHERE kind = 'send_campaign'", &[]).await[0].get(0);
    assert_eq!(jobs, 2, "one new job, not one per sweep");
}

/// WeChat took the send but its answer never came back: the client's quick retry meets 45066
/// (no msg_id), which fails nothing; past the minute the same clientmsgid gets 45065 with the
/// job's msg_id, recorded with the counts its MASSSENDJOBFINISH (pushed long before) brought.
#[tokio::test]
async fn a_send_wechat_took_whose_answer_timed_out_ends_with_its_one_job_msg_id_and_counts() {
    let app = spawn(|vars| {
        vars.insert("TEST_WECHAT_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let fans = followers(&app, 6).await;
    tag_by_keyword(&app, "肤质/油性", "油皮", &fans[..4]).await;
    let id =
        create_campaign(&app, json!({"name": "油皮新品", "audience": {"tag": "肤质/油性"}, "message": text("新品")}))
            .await;
    app.wechat.lose_next_answers("/cgi-bin/message/mass/sendall", 1, std::time::Duration::from_millis(900));

    let (status, body) = send(&app, id).await;
    assert_eq!(status, 202, "{body}");
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    let sendall_codes = |app: &TestApp| -> Vec<i64> {
        app.wechat.calls().into_iter().filter(|c| c.path.ends_with("mass/sendall")).map(|c| c.errcode).collect()
    };
    // The first attempt was carried out (its answer lost); the client's retry came within the minute.
    assert_eq!(sendall_codes(&app), [0, 45066]);
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sending", "45066 must not fail the campaign: {shown}");
    let waiting = app
        .count(
            "SELECT count(*) FROM jobs WHERE kind = 'send_campaign' AND state = 'pending' AND attempts = 0
               AND run_at > now() + interval '50 seconds' AND last_error LIKE '%45066%'",
        )
        .await;
    assert_eq!(waiting, 1, "the send waits past the minute without spending an attempt");

    // The minute passes, on WeChat's clock and on the job's.
    app.wechat.advance_time(std::time::Duration::from_secs(61));
    app.query("UPDATE jobs SET run_at = now() WHERE state = 'pending'", &[]).await;
    deliver(&app).await;

    assert_eq!(sendall_codes(&app), [0, 45066, 45065]);
    let jobs = app.wechat.mass_jobs();
    assert_eq!(jobs.len(), 1, "exactly one job on WeChat");
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sent", "{shown}");
    assert_eq!(shown["wechat_msg_ids"], json!([jobs[0].msg_id as i64]));
    assert_eq!(shown["counts"], json!({"total": 4, "filter": 4, "sent": 4, "error": 0}));
    assert_eq!(app.wechat.mass_recipients(jobs[0].msg_id).len(), 4);
}

/// A send whose earlier attempt never reached WeChat is simply sent when asked again: the 45066
/// wait is only taken when WeChat says so.
#[tokio::test]
async fn a_send_lost_before_reaching_wechat_is_retried_at_once_and_sent_once() {
    let app = spawn(|_| {}).await;
    let fans = followers(&app, 4).await;
    tag_by_keyword(&app, "肤质/干性", "干皮", &fans[..2]).await;
    let id =
        create_campaign(&app, json!({"name": "干皮新品", "audience": {"tag": "肤质/干性"}, "message": text("新品")}))
            .await;
    app.wechat.fail_next_http("/cgi-bin/message/mass/sendall", 1, 502);
    let (status, body) = send(&app, id).await;
    assert_eq!(status, 202, "{body}");
    deliver(&app).await;
    assert_eq!(app.wechat.mass_jobs().len(), 1);
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "sent", "{shown}");
    assert_eq!(shown["counts"]["sent"], 2, "{shown}");
}

/// WeChat's 45066 proves it holds the call: a cancel while the sender waits out the minute does
/// not pretend the message stayed home. The call is still asked about, its job recorded with its
/// counts, and its tag's cap slot stays spent.
#[tokio::test]
async fn a_send_cancelled_while_waiting_out_45066_still_records_the_job_wechat_took() {
    let app = spawn(|vars| {
        vars.insert("TEST_WECHAT_TIMEOUT_MS".into(), "300".into());
    })
    .await;
    let fans = followers(&app, 5).await;
    tag_by_keyword(&app, "肤质/混合", "混合皮", &fans[..3]).await;
    let id =
        create_campaign(&app, json!({"name": "混合皮新品", "audience": {"tag": "肤质/混合"}, "message": text("新品")}))
            .await;
    app.wechat.lose_next_answers("/cgi-bin/message/mass/sendall", 1, Duration::from_millis(900));
    let (status, body) = send(&app, id).await;
    assert_eq!(status, 202, "{body}");
    app.run_pending_jobs().await;
    app.wechat.wait_for_callbacks().await;
    let slots = "SELECT count(*) FROM campaign_tag_sends WHERE campaign_id = ";
    let slots_before = app.count(&format!("{slots}{id}")).await;
    assert_eq!(slots_before, 1);

    let (status, body) = app.api_post(&format!("/campaigns/{id}/cancel"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(app.pass_the_clientmsgid_minute().await, "the held call is still being asked about");
    deliver(&app).await;

    let codes: Vec<i64> =
        app.wechat.calls().into_iter().filter(|c| c.path.ends_with("mass/sendall")).map(|c| c.errcode).collect();
    assert_eq!(codes, [0, 45066, 45065]);
    let jobs = app.wechat.mass_jobs();
    assert_eq!(jobs.len(), 1);
    let shown = campaign(&app, id).await;
    assert_eq!(shown["status"], "cancelled", "{shown}");
    assert_eq!(shown["wechat_msg_ids"], json!([jobs[0].msg_id as i64]), "{shown}");
    assert_eq!(shown["counts"]["sent"], 3, "{shown}");
    assert_eq!(app.count(&format!("{slots}{id}")).await, 1, "the slot stays spent");
}
