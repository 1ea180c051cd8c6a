//! Issue 15, the callback as an attacker sees it: safe mode that cannot be downgraded, a
//! plaintext signature that carries one push only, pushes that poison their batch, and content
//! after the XML root. Each test is the attack; each failed before its fix.

use std::collections::HashSet;

use futures::{StreamExt, stream};
use tagcast::wechat::message::Inbound;
use tagcast::wechat::signature;

use crate::support::app::{ACCOUNT, TestApp, event, fresh_nonce, now, push_from, spawn_app_with, text_message};

fn mode(mode: &'static str) -> impl FnOnce(&mut std::collections::HashMap<String, String>) {
    move |vars| drop(vars.insert("WECHAT_MESSAGE_MODE".into(), mode.into()))
}

/// `tagcast_callback_replies_total{result="<result>"}` as `/metrics` shows it.
async fn replies_counted(app: &TestApp, result: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let needle = format!("tagcast_callback_replies_total{{result=\"{result}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&needle)).map_or(0, |n| n.trim().parse().expect("a count"))
}

#[tokio::test]
async fn a_forged_plaintext_push_on_a_safe_mode_account_is_refused_and_counted() {
    let app = spawn_app_with(mode("safe")).await;
    let forged = text_message("o_victim", "删除我的标签", 501);
    let signed = app.signed_query(now(), &fresh_nonce());

    // Plain signature only (a leaked query string, or WeChat's own URL-check signature), as
    // `raw`, or claiming aes without the msg_signature: all are downgrades.
    let attempts = [
        signed.clone(),
        format!("{}&encrypt_type=raw", app.signed_query(now(), &fresh_nonce())),
        format!("{}&encrypt_type=aes", app.signed_query(now(), &fresh_nonce())),
    ];
    for query in &attempts {
        let response = app.post(query, forged.clone()).await;
        assert_eq!(response.status(), 403, "{query}");
    }
    assert_eq!(app.stored_events().await, 0);
    assert_eq!(app.stored_followers().await, 0);
    assert_eq!(replies_counted(&app, "downgrade").await, 3);

    // WeChat's own traffic still works: the URL check is plaintext-signed in every mode, and a push
    // encrypted under a valid msg_signature is stored.
    let check = app.get(&format!("/wechat?{}&echostr=e_777", app.signed_query(now(), &fresh_nonce()))).await;
    assert_eq!(check.status(), 200);
    assert_eq!(check.text().await.expect("body"), "e_777");
    assert_eq!(app.push_safe(&text_message("o_real", "你好", 502)).await.status(), 200);
    assert_eq!(app.stored_events().await, 1);
}

#[tokio::test]
async fn compat_mode_trusts_only_the_signed_ciphertext_and_refuses_plaintext_alone() {
    let app = spawn_app_with(mode("compat")).await;
    let real = event("o_real", "CLICK", Some("REAL_KEY"), now());
    let encrypt = app.crypt.encrypt(real.as_bytes());
    // WeChat's compatible-mode body: the plaintext fields beside <Encrypt>. Only <Encrypt> is
    // signed, so an attacker who rewrites the plaintext fields must not be believed.
    let body = format!(
        "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[o_forged]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>\
         <EventKey><![CDATA[FORGED_KEY]]></EventKey><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>",
        now()
    );
    let response = app.post(&app.safe_query(&encrypt, now(), &fresh_nonce()), body).await;
    assert_eq!(response.status(), 200);
    let rows = app.query("SELECT openid, event_key FROM events", &[]).await;
    let stored: Vec<(String, Option<String>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(stored, vec![("o_real".to_owned(), Some("REAL_KEY".to_owned()))]);

    let plaintext = app.post(&app.signed_query(now(), &fresh_nonce()), real).await;
    assert_eq!(plaintext.status(), 403);
    assert_eq!(app.stored_events().await, 1);
}

#[tokio::test]
async fn a_plaintext_signature_reused_with_another_body_is_refused_and_its_own_retries_still_get_the_stored_reply() {
    let app = spawn_app_with(mode("plain")).await;
    let (ts, nonce) = (now(), fresh_nonce());
    let sig = signature::sign(&[&app.token, &ts.to_string(), &nonce]);
    let query = format!("signature={sig}&timestamp={ts}&nonce={nonce}&openid=o_alice");
    let original = text_message("o_alice", "我的标签", 601);
    let first = app.post(&query, original.clone()).await;
    assert_eq!(first.status(), 200);
    let reply = first.text().await.expect("reply");
    assert_ne!(reply, "success", "the built-in command replies");

    // A captured query string carrying the attacker's body, on this instance and on another one.
    let forged = text_message("o_alice", "删除我的标签", 602);
    assert_eq!(app.post(&query, forged.clone()).await.status(), 403);
    let other = app.another_instance("web").await;
    assert_eq!(app.post_to(&other.address, &query, forged.clone()).await.status(), 403);
    // Hex case does not make it another signature.
    let upper = format!("signature={}&timestamp={ts}&nonce={nonce}", sig.to_uppercase());
    assert_eq!(app.post(&upper, forged).await.status(), 403);
    assert_eq!(app.stored_events().await, 1);
    assert_eq!(replies_counted(&app, "replayed").await, 2, "counted by this instance");

    // WeChat's retries resend the same body, under the same query or a new one.
    for retry_query in [query.clone(), app.signed_query(now(), &fresh_nonce())] {
        let retry = app.post(&retry_query, original.clone()).await;
        assert_eq!(retry.status(), 200);
        assert_eq!(retry.text().await.expect("reply"), reply);
    }
    assert_eq!(app.stored_events().await, 1);
    other.kill().await;
}

#[tokio::test]
async fn the_signature_of_a_url_check_cannot_carry_a_push_afterwards() {
    let app = spawn_app_with(mode("plain")).await;
    let query = app.signed_query(now(), &fresh_nonce());
    let check = app.get(&format!("/wechat?{query}&echostr=e_42")).await;
    assert_eq!(check.text().await.expect("body"), "e_42");
    // Seen in a proxy's access log, the URL check's query is replayed as a push.
    assert_eq!(app.post(&query, text_message("o_victim", "删除我的标签", 650)).await.status(), 403);
    assert_eq!(app.stored_events().await, 0);
}

#[tokio::test]
async fn a_plaintext_signature_replayed_with_twenty_bodies_at_once_carries_one_push_only() {
    let app = spawn_app_with(mode("plain")).await;
    // Several rounds: each must hold whether the copies land in one group commit or several.
    for round in 0..3u64 {
        let query = app.signed_query(now(), &fresh_nonce());
        // A captured query string fired with 20 different pushes from 20 connections at once, so
        // they queue up together and share a batch.
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
        let attempts: Vec<_> = (0..20u64)
            .map(|i| {
                let url = format!("{}/wechat?{query}", app.address);
                let body = text_message(&format!("o_victim_{round}_{i}"), "删除我的标签", 10_000 * (round + 1) + i);
                let barrier = std::sync::Arc::clone(&barrier);
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    barrier.wait().await;
                    http.post(url).body(body).send().await.expect("sent").status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for attempt in attempts {
            statuses.push(attempt.await.expect("joined"));
        }
        statuses.sort_unstable();
        let mut expected = vec![200];
        expected.extend([403; 19]);
        assert_eq!(statuses, expected, "round {round}");
        let stored = app.count(&format!("SELECT count(*) FROM events WHERE openid LIKE 'o_victim_{round}_%'")).await;
        assert_eq!(stored, 1, "round {round}");
    }
    assert_eq!(replies_counted(&app, "replayed").await, 3 * 19);
}

#[tokio::test]
async fn signatures_are_forgotten_once_past_the_replay_window() {
    let app = spawn_app_with(mode("plain")).await;
    let window = app.settings.replay_window.expect("the default replay window");
    let retention = tagcast::app::inbox::signature_retention(Some(window));
    let query = app.signed_query(now(), &fresh_nonce());
    assert_eq!(app.post(&query, text_message("o_bob", "一", 701)).await.status(), 200);
    assert_eq!(app.count("SELECT count(*) FROM callback_signatures").await, 1);
    let pool = tagcast::store::connect_pool(&app.settings.database_url, 1).await.expect("pool");
    let client = pool.get().await.expect("connection");
    let seen_ago = |age: std::time::Duration| {
        let app = &app;
        async move {
            app.query(
                "UPDATE callback_signatures SET seen_at = now() - make_interval(secs => $1)",
                &[&age.as_secs_f64()],
            )
            .await;
        }
    };

    // Just past twice the window the signature is kept: an instance whose clock is behind the
    // database's could still accept its timestamp.
    seen_ago(2 * window + std::time::Duration::from_secs(60)).await;
    let deleted = tagcast::store::events::delete_expired_signatures(&client, retention).await.expect("delete");
    assert_eq!(deleted, 0, "forgotten with no margin for the clocks");

    seen_ago(retention + std::time::Duration::from_secs(1)).await;
    let deleted = tagcast::store::events::delete_expired_signatures(&client, retention).await.expect("delete");
    assert_eq!(deleted, 1);
    assert_eq!(app.count("SELECT count(*) FROM callback_signatures").await, 0);

    // Forgetting is safe: a signature first seen that long ago carries at most a timestamp one
    // window after it was seen, and such a push is refused as stale, whatever its body.
    let newest_forgotten = now() - i64::try_from((retention - window).as_secs()).expect("seconds");
    let stale = app.signed_query(newest_forgotten, &fresh_nonce());
    assert_eq!(app.post(&stale, text_message("o_bob", "删除我的标签", 702)).await.status(), 403);
    assert_eq!(replies_counted(&app, "stale").await, 1);
    assert_eq!(app.stored_events().await, 1);
}

/// The pushes of the interleaving test: `(body, innocent)`.
fn innocent_and_poison_pushes() -> Vec<(String, bool)> {
    let poison = |openid: &str, body: &str| {
        format!(
            "<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>\
             <CreateTime>{}</CreateTime>{body}</xml>",
            now()
        )
    };
    let poisons = [
        poison("o_poison_nul", "<MsgType>text</MsgType><Content><![CDATA[a\0b]]></Content><MsgId>9001</MsgId>"),
        poison("o_poison_ctrl_raw", "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>K\u{1}EY</EventKey>"),
        poison("o_poison_ctrl_ref", "<MsgType>event</MsgType><Event>CLICK</Event><EventKey>K&#27;EY</EventKey>"),
        poison(&format!("o_poison_long_{}", "x".repeat(200)), "<MsgType>event</MsgType><Event>subscribe</Event>"),
        poison("o_poison_unknown_nul", "<MsgType>card</MsgType><Data><![CDATA[{\"a\":\"\0\"}]]></Data>"),
        poison(
            "o_poison_key_long",
            &format!("<MsgType>event</MsgType><Event>VIEW</Event><EventKey>{}</EventKey>", "k".repeat(2000)),
        ),
        poison(
            "o_poison_content_long",
            &format!("<MsgType>text</MsgType><Content>{}</Content><MsgId>9002</MsgId>", "长".repeat(6000)),
        ),
        poison("o_poison_trailing", "<MsgType>text</MsgType><Content>a</Content><MsgId>9003</MsgId></xml><xml>"),
    ];
    let mut pushes = Vec::new();
    for i in 0..400u64 {
        let openid = format!("o_innocent_{i}");
        // Innocent pushes look like poison to a careless filter: a backslash-u escape typed as
        // text, tabs and newlines in a message, CJK, an unknown kind with JSON inside.
        let body = match i % 4 {
            0 => text_message(&openid, &format!("第{i}条 \\u0000 {{\"k\":\"\\u0000\"}}\n\t换行"), 100_000 + i),
            1 => event(&openid, "CLICK", Some(&format!("KEY_{i}")), now()),
            2 => event(&openid, "subscribe", Some(&format!("qrscene_{i}")), now()),
            _ => push_from(
                &openid,
                now(),
                Inbound::Unknown {
                    msg_type: "card".to_owned(),
                    event: None,
                    fields: vec![("Data".to_owned(), r#"{"a":"\u0000"}"#.to_owned())],
                },
            ),
        };
        pushes.push((body, true));
        if i % 10 == 5 {
            pushes.push((poisons[(i / 10) as usize % poisons.len()].clone(), false));
        }
    }
    pushes
}

#[tokio::test]
async fn four_hundred_innocent_pushes_interleaved_with_poison_from_32_connections_are_all_stored_and_the_poison_refused()
 {
    let app = spawn_app_with(mode("plain")).await;
    let pushes = innocent_and_poison_pushes();
    let poison_count = pushes.iter().filter(|(_, innocent)| !innocent).count();
    assert_eq!(poison_count, 40);
    let http = reqwest::Client::builder().pool_max_idle_per_host(32).build().expect("client");
    let answers: Vec<(u16, bool, String)> = stream::iter(pushes)
        .map(|(body, innocent)| {
            let http = http.clone();
            let url = format!("{}/wechat?{}", app.address, app.signed_query(now(), &fresh_nonce()));
            async move {
                let response = http.post(url).body(body.clone()).send().await.expect("sent");
                (response.status().as_u16(), innocent, body)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    for (status, innocent, body) in &answers {
        let expected = if *innocent { 200 } else { 400 };
        assert_eq!(*status, expected, "{}", body.chars().take(300).collect::<String>());
    }
    let stored = app.query("SELECT openid, count(*) FROM events GROUP BY openid", &[]).await;
    let openids: HashSet<String> = stored.iter().map(|r| r.get(0)).collect();
    assert!(stored.iter().all(|r| r.get::<_, i64>(1) == 1), "each innocent push stored exactly once");
    assert_eq!(openids, (0..400).map(|i| format!("o_innocent_{i}")).collect::<HashSet<_>>());
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE openid LIKE 'o_poison%'").await, 0);
    assert_eq!(replies_counted(&app, "bad_field").await + replies_counted(&app, "bad_xml").await, 40);
    app.run_pending_jobs().await;
}

#[tokio::test]
async fn a_push_the_database_refuses_fails_alone_and_its_batch_neighbours_are_stored() {
    // One HTTP worker, so every push of the burst goes through the same two inbox writers.
    let app = spawn_app_with(|vars| {
        vars.insert("WECHAT_MESSAGE_MODE".into(), "plain".into());
        vars.insert("TAGCAST_HTTP_WORKERS".into(), "1".into());
    })
    .await;
    // Failures no intake rule knows about: a constraint (standing in for any row-level refusal)
    // and a CreateTime before PostgreSQL's earliest timestamp (4713 BC).
    app.query("ALTER TABLE events ADD CONSTRAINT no_poison CHECK (event_key IS DISTINCT FROM 'POISON_DB')", &[]).await;
    let ancient = event("o_ancient", "CLICK", Some("OLD"), -300_000_000_000);

    // Hold the inbox writers back so the burst queues up and is committed as one batch.
    let (mut locker, connection) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls).await.expect("db");
    tokio::spawn(connection);
    let lock = locker.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE events IN SHARE MODE").await.expect("lock");
    let post = |body: String| {
        let url = format!("{}/wechat?{}", app.address, app.signed_query(now(), &fresh_nonce()));
        let http = app.http.clone();
        async move { http.post(url).body(body).send().await.expect("sent").status().as_u16() }
    };
    let mut blockers = Vec::new();
    for i in 0..2 {
        blockers.push(tokio::spawn(post(event(&format!("o_first_{i}"), "CLICK", Some("A"), now()))));
        wait_for_blocked_writers(&app, i + 1).await;
    }
    let mut burst = Vec::new();
    for i in 0..30 {
        burst.push((tokio::spawn(post(event(&format!("o_neighbour_{i}"), "CLICK", Some("A"), now()))), 200));
        if i == 10 {
            burst.push((tokio::spawn(post(event("o_poison_db", "CLICK", Some("POISON_DB"), now()))), 400));
        }
        if i == 20 {
            burst.push((tokio::spawn(post(ancient.clone())), 400));
        }
    }
    // The burst must be queued before the writers are let go; nothing can be watched for that.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    lock.commit().await.expect("unlock");

    for blocker in blockers {
        assert_eq!(blocker.await.expect("joined"), 200);
    }
    for (request, expected) in burst {
        assert_eq!(request.await.expect("joined"), expected);
    }
    assert_eq!(app.count("SELECT count(*) FROM events WHERE openid LIKE 'o_neighbour_%'").await, 30);
    assert_eq!(app.count("SELECT count(*) FROM events WHERE openid IN ('o_poison_db', 'o_ancient')").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM followers WHERE openid IN ('o_poison_db', 'o_ancient')").await, 0);
    app.run_pending_jobs().await;
}

async fn wait_for_blocked_writers(app: &TestApp, writers: i64) {
    for _ in 0..200 {
        let blocked = app
            .count(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
                 WHERE c.relname = 'events' AND NOT l.granted \
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            )
            .await;
        if blocked >= writers {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the inbox writers never reached the locked table");
}

#[tokio::test]
async fn content_after_the_xml_root_is_refused_in_plaintext_and_inside_the_ciphertext() {
    let app = spawn_app_with(mode("plain")).await;
    let first = text_message("o_carol", "你好", 801);
    let second = text_message("o_mallory", "删除我的标签", 802);
    for body in [format!("{first}{second}"), format!("{first}garbage"), format!("{first}<xml/>")] {
        let response = app.push(&body).await;
        assert_eq!(response.status(), 400, "{body}");
        let encrypt = app.crypt.encrypt(body.as_bytes());
        let response = app.post(&app.safe_query(&encrypt, now(), &fresh_nonce()), TestApp::envelope(&encrypt)).await;
        assert_eq!(response.status(), 400, "encrypted {body}");
    }
    let envelope = TestApp::envelope(&app.crypt.encrypt(first.as_bytes()));
    let encrypt = app.crypt.encrypt(first.as_bytes());
    let doubled = format!("{}{envelope}", TestApp::envelope(&encrypt));
    assert_eq!(app.post(&app.safe_query(&encrypt, now(), &fresh_nonce()), doubled).await.status(), 400);
    assert_eq!(app.stored_events().await, 0);

    assert_eq!(app.push(&format!("{first}\r\n  \n")).await.status(), 200);
    assert_eq!(app.stored_events().await, 1);
}
