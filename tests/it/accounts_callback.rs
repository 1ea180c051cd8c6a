//! Several accounts through the callback, the tagging engine, the outbox and sync: each account's
//! pushes are checked with its own token and key, its followers (whose openids may be the same
//! strings as another account's) carry only its own tags and events, erasure stays inside one
//! account, an outage of one account's WeChat does not hold up another's tag changes, and the
//! same person (unionid) is shown across accounts.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use serde_json::json;
use tagcast::app::accounts::AccountInput;
use tagcast::app::tagging;
use tagcast::domain::account::AccountId;
use tagcast::domain::rule::RuleSpec;
use tagcast::wechat::crypto::MsgCrypt;
use tagcast::wechat::message::Envelope;
use tagcast::wechat::signature;

use crate::admin_pages::{Browser, PASSWORD};
use crate::support::accounts::OtherAccount;
use crate::support::app::{TestApp, event, fresh_nonce, now, spawn_app, text_message};

fn click_rule(key: &str, add: &[&str]) -> RuleSpec {
    serde_json::from_value(json!({"on": "click", "key": key, "add": add})).expect("rule")
}

/// A rule of `account`, created as the console would for a user working on it.
async fn create_rule_on(app: &TestApp, account: AccountId, spec: &RuleSpec) {
    tagging::create_rule(&app.jobs.pool, account, spec, "test").await.expect("rule stored");
}

/// The tag paths `openid` carries in `account`, sorted.
async fn tags_in(app: &TestApp, account: AccountId, openid: &str) -> Vec<String> {
    let rows = app
        .query(
            "SELECT t.path FROM follower_tags f JOIN tags t ON t.id = f.tag_id
             WHERE f.openid = $1 AND t.account_id = $2 ORDER BY t.path",
            &[&openid, &account.get()],
        )
        .await;
    rows.iter().map(|r| r.get(0)).collect()
}

async fn count_for(app: &TestApp, sql: &str, account: AccountId) -> i64 {
    app.query(sql, &[&account.get()]).await[0].get(0)
}

fn successful_calls(wechat: &tagcast::mock_wechat::MockWeChat, path: &str) -> Vec<serde_json::Value> {
    wechat.calls().into_iter().filter(|c| c.path == path && c.errcode == 0).map(|c| c.body).collect()
}

/// POSTs a plaintext push signed with `token` to `path`.
async fn push_signed(app: &TestApp, path: &str, token: &str, xml: &str) -> reqwest::Response {
    let ts = now().to_string();
    let nonce = fresh_nonce();
    let sig = signature::sign(&[token, &ts, &nonce]);
    app.http
        .post(format!("{}{path}?signature={sig}&timestamp={ts}&nonce={nonce}", app.address))
        .header("content-type", "text/xml")
        .body(xml.to_owned())
        .send()
        .await
        .expect("request sent")
}

/// POSTs `xml` in safe mode (encrypted with `crypt`, `msg_signature` under `token`) to `path`.
async fn push_safe(app: &TestApp, path: &str, token: &str, crypt: &MsgCrypt, xml: &str) -> reqwest::Response {
    let ts = now().to_string();
    let nonce = fresh_nonce();
    let encrypt = crypt.encrypt(xml.as_bytes());
    let sig = signature::sign(&[token, &ts, &nonce]);
    let msg_sig = signature::sign(&[token, &ts, &nonce, &encrypt]);
    let body = Envelope { to_user: Some("gh_safe".to_owned()), encrypt: Some(encrypt) }.to_xml();
    app.http
        .post(format!(
            "{}{path}?signature={sig}&timestamp={ts}&nonce={nonce}&encrypt_type=aes&msg_signature={msg_sig}",
            app.address
        ))
        .header("content-type", "text/xml")
        .body(body)
        .send()
        .await
        .expect("request sent")
}

/// An account with only callback credentials (no WeChat client), in `mode`.
async fn callback_only_account(
    app: &TestApp,
    name: &str,
    token: Option<&str>,
    aes_key: Option<&str>,
    mode: &str,
) -> AccountId {
    let input = AccountInput {
        name: name.to_owned(),
        display_name: format!("回调 {name}"),
        kind: "service".to_owned(),
        appid: None,
        app_secret: None,
        token: token.map(|t| SecretString::from(t.to_owned())),
        encoding_aes_key: aes_key.map(|k| SecretString::from(k.to_owned())),
        message_mode: mode.to_owned(),
        api_base: None,
    };
    app.jobs.accounts.create(&input, "test").await.unwrap_or_else(|e| panic!("account {name}: {e}")).id
}

#[tokio::test]
async fn the_same_openid_in_two_accounts_keeps_its_own_tags_events_wechat_tags_and_erasure() {
    let app = spawn_app().await;
    let shop: OtherAccount = app.add_account("shop", false).await;
    let main = AccountId::FIRST;
    // Both accounts have a tag `肤质/油性`; each rule names its own account's.
    let (status, _) = app.api_post("/rules", json!({"on": "click", "key": "MENU", "add": ["肤质/油性"]})).await;
    assert_eq!(status, 201);
    create_rule_on(&app, shop.id, &click_rule("MENU", &["肤质/油性", "兴趣/护肤"])).await;
    create_rule_on(&app, shop.id, &click_rule("ONLY_SHOP", &["渠道/门店"])).await;
    assert_eq!(app.count("SELECT count(*) FROM tags WHERE path = '肤质/油性'").await, 2);
    for openid in ["o_same", "o_other"] {
        app.wechat.add_follower(openid);
        shop.wechat.add_follower(openid);
    }

    // The same openid, the same CreateTime, the same menu key: two people's two clicks.
    let click = event("o_same", "CLICK", Some("MENU"), 1_700_000_000);
    assert_eq!(app.push(&click).await.status(), 200);
    assert_eq!(app.push_to(&shop, &click).await.status(), 200);
    assert_eq!(app.push_to(&shop, &event("o_other", "CLICK", Some("ONLY_SHOP"), 1_700_000_001)).await.status(), 200);
    // A push for the main account with a key only shop's rules know does nothing there.
    assert_eq!(app.push(&event("o_other", "CLICK", Some("ONLY_SHOP"), 1_700_000_002)).await.status(), 200);

    assert_eq!(tags_in(&app, main, "o_same").await, vec!["肤质/油性"]);
    assert_eq!(tags_in(&app, shop.id, "o_same").await, vec!["兴趣/护肤", "肤质/油性"]);
    assert!(tags_in(&app, main, "o_other").await.is_empty());
    assert_eq!(tags_in(&app, shop.id, "o_other").await, vec!["渠道/门店"]);
    let events = "SELECT count(*) FROM events WHERE openid = 'o_same' AND account_id = $1";
    assert_eq!(count_for(&app, events, main).await, 1);
    assert_eq!(count_for(&app, events, shop.id).await, 1);
    assert_eq!(count_for(&app, "SELECT count(*) FROM followers WHERE account_id = $1", main).await, 2);
    assert_eq!(count_for(&app, "SELECT count(*) FROM followers WHERE account_id = $1", shop.id).await, 2);
    let (status, user) = app.api_get("/users/o_same").await;
    assert_eq!(status, 200);
    assert_eq!(user["tags"], json!(["肤质/油性"]));

    // Each account's WeChat learns its own tags, with its own client; WeChat's tag ids are the
    // account's own and may be the same numbers.
    app.run_pending_jobs().await;
    let main_tags: Vec<String> = app.wechat.tags().into_iter().map(|t| t.1).filter(|n| n != "星标组").collect();
    let shop_tags: Vec<String> = shop.wechat.tags().into_iter().map(|t| t.1).filter(|n| n != "星标组").collect();
    assert_eq!(main_tags, vec!["肤质/油性"]);
    assert_eq!(shop_tags.len(), 3, "{shop_tags:?}");
    assert_eq!(app.wechat.user_tags("o_same").len(), 1);
    assert_eq!(shop.wechat.user_tags("o_same").len(), 2);
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox").await, 0);
    let mirrored = "SELECT count(*) FROM follower_wechat_tags WHERE openid = 'o_same' AND account_id = $1";
    assert_eq!(count_for(&app, mirrored, main).await, 1);
    assert_eq!(count_for(&app, mirrored, shop.id).await, 2);
    assert_eq!(count_for(&app, "SELECT count(*) FROM wechat_tags WHERE account_id = $1", shop.id).await, 3);

    // Erasing the main account's o_same leaves shop's o_same as it was.
    let (status, _) = app.api_delete("/users/o_same").await;
    assert_eq!(status, 204);
    assert_eq!(count_for(&app, events, main).await, 0);
    assert_eq!(count_for(&app, events, shop.id).await, 1);
    assert!(tags_in(&app, main, "o_same").await.is_empty());
    assert_eq!(tags_in(&app, shop.id, "o_same").await, vec!["兴趣/护肤", "肤质/油性"]);
    assert_eq!(count_for(&app, mirrored, shop.id).await, 2);
    app.run_pending_jobs().await;
    assert!(app.wechat.user_tags("o_same").is_empty(), "the main account's WeChat tag was removed");
    assert_eq!(shop.wechat.user_tags("o_same").len(), 2, "shop's WeChat was not touched");
    // The main account no longer knows o_same; another account does, so the answer is 403.
    let (status, body) = app.api_get("/users/o_same").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(app.api_get("/users/o_nobody").await.0, 404);

    // A guessed id of shop's tag, rule or follower is refused to the main account as forbidden.
    let shop_tag: i64 =
        app.query("SELECT id FROM tags WHERE account_id = $1 AND path = '渠道/门店'", &[&shop.id.get()]).await[0]
            .get(0);
    assert_eq!(app.api_get(&format!("/tags/{shop_tag}")).await.0, 403);
    assert_eq!(app.api_delete(&format!("/tags/{shop_tag}")).await.0, 403);
    let shop_rule: i64 =
        app.query("SELECT id FROM rules WHERE account_id = $1 LIMIT 1", &[&shop.id.get()]).await[0].get(0);
    assert_eq!(app.api_delete(&format!("/rules/{shop_rule}")).await.0, 403);
    assert_eq!(count_for(&app, "SELECT count(*) FROM rules WHERE account_id = $1", shop.id).await, 2);
    let (_, tags) = app.api_get("/tags").await;
    let paths: Vec<&str> = tags.as_array().expect("list").iter().filter_map(|t| t["path"].as_str()).collect();
    assert_eq!(paths, vec!["肤质/油性"], "the main account lists only its own tags");

    // Renaming the main account's tag leaves shop's tag of the same path and its rule alone.
    let main_tag: i64 =
        app.query("SELECT id FROM tags WHERE account_id = 1 AND path = '肤质/油性'", &[]).await[0].get(0);
    let (status, _) =
        app.api_call(reqwest::Method::PATCH, &format!("/tags/{main_tag}"), Some(json!({"path": "肤质/混合"}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        count_for(&app, "SELECT count(*) FROM tags WHERE account_id = $1 AND path = '肤质/油性'", shop.id).await,
        1
    );
    assert_eq!(
        count_for(&app, "SELECT count(*) FROM rules WHERE account_id = $1 AND '肤质/油性' = ANY(add_tags)", shop.id)
            .await,
        1
    );
}

#[tokio::test]
async fn a_push_signed_for_one_account_is_refused_at_anothers_url_and_unknown_names_are_not_found() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let xml = text_message("o_wrong_door", "你好", 4242);

    // Shop's signature at the main account's URL, and the main account's at shop's.
    assert_eq!(app.push_signed_for(&shop, "/wechat", &xml).await.status(), 403);
    assert_eq!(push_signed(&app, "/wechat/shop", &app.token, &xml).await.status(), 403);
    assert_eq!(app.stored_events().await, 0);
    assert_eq!(app.stored_followers().await, 0);

    // No such account: 404, saying nothing.
    let unknown = push_signed(&app, "/wechat/nobody", &app.token, &xml).await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.expect("body").is_empty());
    let check = app.get(&format!("/wechat/nobody?{}&echostr=e1", app.signed_query(now(), "7"))).await;
    assert_eq!(check.status(), 404);

    // An account whose token is not set refuses everything.
    callback_only_account(&app, "notoken", None, None, "plain").await;
    assert_eq!(push_signed(&app, "/wechat/notoken", "", &xml).await.status(), 403);
    assert_eq!(push_signed(&app, "/wechat/notoken", &app.token, &xml).await.status(), 403);
    assert_eq!(app.stored_events().await, 0);

    // Each URL with its own token: stored as that account's.
    assert_eq!(app.push_to(&shop, &xml).await.status(), 200);
    assert_eq!(app.push(&xml).await.status(), 200);
    let rows = app.query("SELECT account_id, dedupe_key FROM events ORDER BY account_id", &[]).await;
    let stored: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, vec![(1, "m:4242".to_owned()), (shop.id.get(), format!("{}/m:4242", shop.id.get()))]);
    // The first account is also reachable by its name.
    assert_eq!(
        push_signed(&app, "/wechat/main", &app.token, &text_message("o_by_name", "hi", 4243)).await.status(),
        200
    );

    // The URL check answers under each account's own token only.
    let ts = now().to_string();
    let sig = signature::sign(&[&shop.token, &ts, "9"]);
    let good = app.get(&format!("/wechat/shop?signature={sig}&timestamp={ts}&nonce=9&echostr=e_shop")).await;
    assert_eq!(good.status(), 200);
    assert_eq!(good.text().await.expect("body"), "e_shop");
    let bad = app.get(&format!("/wechat/shop?{}&echostr=e_main", app.signed_query(now(), "10"))).await;
    assert_eq!(bad.status(), 403);
}

#[tokio::test]
async fn each_account_has_its_own_message_mode_and_key() {
    let app = spawn_app().await;
    // 43 characters of the key alphabet, not the first account's key.
    let key = "SafeAccountKeySafeAccountKeySafeAccountKey0";
    let safe = callback_only_account(&app, "safe", Some("safetoken"), Some(key), "safe").await;
    let crypt = MsgCrypt::new(key, "").expect("key");
    let xml = text_message("o_safe", "加密", 5151);

    // Safe mode refuses plaintext, even correctly signed.
    assert_eq!(push_signed(&app, "/wechat/safe", "safetoken", &xml).await.status(), 403);
    // Encrypted with its key and signed with its token: stored as its push.
    assert_eq!(push_safe(&app, "/wechat/safe", "safetoken", &crypt, &xml).await.status(), 200);
    // The first account's key does not open at the safe account's URL.
    let main_crypt = app.crypt.clone();
    let other = text_message("o_safe", "主号的密钥", 5152);
    assert_ne!(push_safe(&app, "/wechat/safe", "safetoken", &main_crypt, &other).await.status(), 200);
    // The first account stays in plain mode.
    assert_eq!(app.push(&text_message("o_plain", "明文", 5153)).await.status(), 200);

    let rows = app.query("SELECT account_id, openid FROM events ORDER BY id", &[]).await;
    let stored: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, vec![(safe.get(), "o_safe".to_owned()), (1, "o_plain".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_on_one_accounts_wechat_does_not_slow_anothers_outbox() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let (status, _) = app.api_post("/rules", json!({"on": "click", "key": "K", "add": ["主号/标签"]})).await;
    assert_eq!(status, 201);
    create_rule_on(&app, shop.id, &click_rule("K", &["门店/标签"])).await;
    let openids: Vec<String> = (0..20).map(|i| format!("o_fan_{i:02}")).collect();
    for openid in &openids {
        app.wechat.add_follower(openid);
        shop.wechat.add_follower(openid);
    }
    // A backlog on the main account bigger than a whole round's claim.
    let main_tag: i64 = app.query("SELECT id FROM tags WHERE account_id = 1", &[]).await[0].get(0);
    app.query(
        "INSERT INTO tag_outbox (openid, tag_id, add, account_id)
         SELECT 'o_backlog_' || g, $1, true, 1 FROM generate_series(1, 2500) AS g",
        &[&main_tag],
    )
    .await;
    // The main account's WeChat is down: slow, then failing.
    for path in ["/cgi-bin/tags/create", "/cgi-bin/tags/members/batchtagging"] {
        app.wechat.fail_next_http(path, 10_000, 503);
    }
    app.wechat.set_latency(Duration::from_millis(600));
    for (i, openid) in openids.iter().enumerate() {
        let click = event(openid, "CLICK", Some("K"), 1_700_000_000 + i as i64);
        assert_eq!(app.push(&click).await.status(), 200);
        assert_eq!(app.push_to(&shop, &click).await.status(), 200);
    }

    // The round takes what the consumer has queued by then.
    app.settle().await;
    let round = {
        let ctx = app.jobs.clone();
        tokio::spawn(async move { tagcast::jobs::outbox::deliver_due(&ctx).await.expect("round") })
    };
    let started = Instant::now();
    let shop_pending = format!("SELECT count(*) FROM tag_outbox WHERE account_id = {}", shop.id.get());
    while app.count(&shop_pending).await > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "shop's changes never went out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shop_done = started.elapsed();
    assert!(!round.is_finished(), "the main account's WeChat was still being tried");
    round.await.expect("round ends");
    let main_done = started.elapsed();
    assert!(shop_done < Duration::from_millis(1_500), "shop waited {shop_done:?} for the main account's outage");
    let tagged: usize = successful_calls(&shop.wechat, "/cgi-bin/tags/members/batchtagging")
        .iter()
        .map(|b| b["openid_list"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(tagged, 20);

    // The main account's claimed changes back off (its delivery may outlast the round, which
    // does not wait for it); nothing of shop's was held back with them.
    let backing_off = "SELECT count(*) FROM tag_outbox WHERE account_id = 1 AND attempts > 0";
    while app.count(backing_off).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "the main account's failure was never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backing_off = app.count(backing_off).await;
    assert!(backing_off < 2520, "{backing_off}");
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox WHERE account_id <> 1 AND attempts > 0").await, 0);

    // While the main account's WeChat stays down, shop's next changes go out at once.
    create_rule_on(&app, shop.id, &click_rule("K2", &["门店/第二"])).await;
    assert_eq!(app.push_to(&shop, &event("o_fan_00", "CLICK", Some("K2"), 1_700_001_000)).await.status(), 200);
    app.settle().await;
    let again = Instant::now();
    let ctx = app.jobs.clone();
    let second = tokio::spawn(async move { tagcast::jobs::outbox::deliver_due(&ctx).await.expect("round") });
    while app.count(&shop_pending).await > 0 {
        assert!(again.elapsed() < Duration::from_secs(10), "shop's second change never went out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.elapsed() < Duration::from_millis(1_500), "{:?} (main round took {main_done:?})", again.elapsed());
    second.await.expect("round ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_stores_unionids_and_the_follower_page_and_api_show_the_same_person_elsewhere() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", true).await;
    app.wechat.add_follower("o_alice_main");
    app.wechat.add_follower("o_bob_main");
    shop.wechat.add_follower("o_alice_shop");
    assert!(app.wechat.set_unionid("o_alice_main", "u_alice"));
    assert!(shop.wechat.set_unionid("o_alice_shop", "u_alice"));

    tagcast::app::sync::run_sync(&app.jobs.pool, &app.api, |_| {}).await.expect("main sync");
    let live = app.jobs.accounts.get(shop.id).expect("shop loaded");
    let report = tagcast::app::sync::run(&app.jobs.pool, &live, |_| {}).await.expect("shop sync");
    assert_eq!(report.followers, 1);
    let unionids =
        app.query("SELECT account_id, openid, unionid FROM followers ORDER BY account_id, openid", &[]).await;
    let unionids: Vec<(i64, String, Option<String>)> =
        unionids.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(
        unionids,
        vec![
            (1, "o_alice_main".to_owned(), Some("u_alice".to_owned())),
            (1, "o_bob_main".to_owned(), None),
            (shop.id.get(), "o_alice_shop".to_owned(), Some("u_alice".to_owned())),
        ]
    );

    // Alice has a tag in shop, and a sensitive one, which no other account's view may show.
    let (status, body) = app
        .api_call_on("shop", reqwest::Method::POST, "/tags", Some(json!({"path": "健康/孕期", "sensitive": true})))
        .await;
    assert_eq!(status, 201, "{body}");
    create_rule_on(&app, shop.id, &click_rule("VIP", &["会员/金卡", "健康/孕期"])).await;
    assert_eq!(app.push_to(&shop, &event("o_alice_shop", "CLICK", Some("VIP"), 1_700_000_000)).await.status(), 200);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id WHERE ft.openid = 'o_alice_shop'"
        )
        .await,
        2
    );

    let (status, alice) = app.api_get("/users/o_alice_main").await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["unionid"], "u_alice");
    assert_eq!(
        alice["other_accounts"],
        json!([{
            "account": "shop",
            "display_name": "测试公众号 shop",
            "openid": "o_alice_shop",
            "subscribed": true,
            "tags": ["会员/金卡"],
        }])
    );
    let (_, bob) = app.api_get("/users/o_bob_main").await;
    assert_eq!(bob["unionid"], serde_json::Value::Null);
    assert_eq!(bob["other_accounts"], json!([]));

    app.create_admin("admin", PASSWORD, "admin").await;
    let mut browser = Browser::log_in(&app, "admin", PASSWORD).await;
    let page = browser.get("/admin/followers/o_alice_main").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("u_alice"), "{}", page.body);
    assert!(page.body.contains("在其他公众号"));
    assert!(page.body.contains("测试公众号 shop"));
    assert!(page.body.contains("会员/金卡"));
    assert!(!page.body.contains("健康/孕期"), "a sensitive tag of another account shown");
    // Shop's follower is not the main account's to open.
    let page = browser.get("/admin/followers/o_alice_shop").await;
    assert_eq!(page.status, 403);
    // A follower without a unionid shows none.
    let page = browser.get("/admin/followers/o_bob_main").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("在其他公众号"));

    // An operator who holds only the main account sees nothing of shop's follower.
    let (status, body) = app
        .api_post("/admins", json!({ "username": "olga", "password": PASSWORD, "roles": { "main": "operator" } }))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, alice) = app.api_call_as(("olga", PASSWORD), reqwest::Method::GET, "/users/o_alice_main", None).await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["other_accounts"], json!([]));
    let mut operator = Browser::log_in(&app, "olga", PASSWORD).await;
    let page = operator.get("/admin/followers/o_alice_main").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("测试公众号 shop") && !page.body.contains("会员/金卡"), "{}", page.body);
}

#[tokio::test]
async fn quizzes_of_the_same_id_and_their_sessions_stay_in_their_own_account() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let quiz = |tag: &str| {
        json!({
            "id": "q1",
            "question": [{"text": "选一个", "options": [{"label": "A", "text": "甲", "add": [tag]}, {"label": "B", "text": "乙"}]}]
        })
    };
    assert_eq!(app.api_post("/quizzes", quiz("测验/主号")).await.0, 201);
    let shop_quiz: tagcast::domain::quiz::QuizSpec = serde_json::from_value(quiz("测验/门店")).expect("quiz");
    tagging::save_quiz(&app.jobs.pool, shop.id, &shop_quiz, "test").await.expect("quiz stored");
    let start: RuleSpec = serde_json::from_value(json!({"on": "click", "key": "Q", "start_quiz": "q1"})).expect("rule");
    create_rule_on(&app, shop.id, &start).await;
    assert_eq!(app.count("SELECT count(*) FROM quizzes WHERE id = 'q1'").await, 2);
    let (_, listed) = app.api_get("/quizzes").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // The quiz starts in shop only; an answer sent to the main account is just a message there.
    let started = app.push_to(&shop, &event("o_same", "CLICK", Some("Q"), 1_700_000_000)).await;
    assert!(started.text().await.expect("body").contains("选一个"));
    assert_eq!(app.push(&text_message("o_same", "A", 1)).await.text().await.expect("body"), "success");
    assert!(tags_in(&app, AccountId::FIRST, "o_same").await.is_empty());
    assert_eq!(count_for(&app, "SELECT count(*) FROM quiz_sessions WHERE account_id = $1", shop.id).await, 1);

    // Answered at shop: shop's quiz gives shop's tag.
    assert_eq!(app.push_to(&shop, &text_message("o_same", "A", 2)).await.status(), 200);
    assert_eq!(tags_in(&app, shop.id, "o_same").await, vec!["测验/门店"]);
    assert!(tags_in(&app, AccountId::FIRST, "o_same").await.is_empty());
    assert_eq!(count_for(&app, "SELECT count(*) FROM quiz_answers WHERE account_id = $1", shop.id).await, 1);
    assert_eq!(app.count("SELECT count(*) FROM quiz_sessions").await, 0);
}
