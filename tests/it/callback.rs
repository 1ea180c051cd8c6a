//! `/wechat`: URL check, signatures, replay window, every bad input, safe and compatible modes,
//! durable storage and exactly-once handling of retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deadpool_postgres::Client;
use futures::future::join_all;
use tagcast::app::inbox::{
    DecideFuture, Decided, Dispatcher, Handler, HandlerFuture, InMemory, InTransaction, Received,
};
use tagcast::wechat::crypto::MsgCrypt;
use tagcast::wechat::message::{self, Envelope, Inbound};
use tagcast::wechat::reply::Reply;
use tagcast::wechat::signature;

use crate::support::app::{
    ACCOUNT, AES_KEY, TestApp, event, now, spawn_app, spawn_app_dispatching, spawn_app_with, text_message,
};
use crate::support::shared::{project_path, shared_fixture, shared_path};

#[tokio::test]
async fn url_check_echoes_echostr_only_under_a_valid_signature() {
    let app = spawn_app().await;
    let good = app.get(&format!("/wechat?{}&echostr=e_12345", app.signed_query(now(), "99"))).await;
    assert_eq!(good.status(), 200);
    assert_eq!(good.text().await.unwrap(), "e_12345");

    let bad_sig = format!("signature={}&timestamp={}&nonce=99&echostr=e_1", "0".repeat(40), now());
    assert_eq!(app.get(&format!("/wechat?{bad_sig}")).await.status(), 403);
    let no_echo = app.get(&format!("/wechat?{}", app.signed_query(now(), "99"))).await;
    assert_eq!(no_echo.status(), 400);
    let no_sig = app.get(&format!("/wechat?timestamp={}&nonce=1&echostr=x", now())).await;
    assert_eq!(no_sig.status(), 400);
}

#[tokio::test]
async fn stale_timestamps_are_rejected_unless_the_window_is_off() {
    let app = spawn_app().await;
    let stale = now() - 601;
    let body = text_message("o_stale", "hi", 1);
    assert_eq!(app.post(&app.signed_query(stale, "1"), body.clone()).await.status(), 403);
    assert_eq!(app.post(&app.signed_query(now() + 601, "1"), body.clone()).await.status(), 403);
    assert_eq!(app.get(&format!("/wechat?{}&echostr=x", app.signed_query(stale, "1"))).await.status(), 403);
    assert_eq!(app.post(&app.signed_query(now() - 590, "1"), body.clone()).await.status(), 200);

    let open = spawn_app_with(|v| drop(v.insert("TAGCAST_REPLAY_WINDOW_SECS".into(), "0".into()))).await;
    assert_eq!(open.post(&open.signed_query(1_409_735_669, "1"), body).await.status(), 200);
    assert_eq!(open.stored_events().await, 1);
}

#[tokio::test]
async fn plaintext_push_is_stored_with_its_follower_before_success_is_answered() {
    let app = spawn_app().await;
    let response = app.push(&text_message("o_alice", "你好 😀", 777)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");

    let rows = app.query("SELECT dedupe_key, openid, kind, payload FROM events", &[]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "m:777");
    assert_eq!(rows[0].get::<_, String>(1), "o_alice");
    assert_eq!(rows[0].get::<_, String>(2), "text");
    assert!(rows[0].get::<_, serde_json::Value>(3).to_string().contains("你好 😀"));
    let follower = app.query("SELECT subscribed FROM followers WHERE openid = 'o_alice'", &[]).await;
    assert!(follower[0].get::<_, bool>(0));
}

#[tokio::test]
async fn safe_mode_push_is_verified_decrypted_and_stored() {
    let app = spawn_app().await;
    let response = app.push_safe(&event("o_bob", "CLICK", Some("SKIN_TEST"), now())).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");
    let rows = app.query("SELECT kind, event_key FROM events WHERE openid = 'o_bob'", &[]).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "click");
    assert_eq!(rows[0].get::<_, Option<String>>(1).as_deref(), Some("SKIN_TEST"));
}

#[tokio::test]
async fn official_compatible_mode_sample_is_accepted() {
    // The official WXBizMsgCrypt sample: its own token, key and AppID, and a 2014 timestamp.
    let app = spawn_app_with(|v| {
        v.insert("WECHAT_TOKEN".into(), "spamtest".into());
        v.insert("WECHAT_ENCODING_AES_KEY".into(), "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG".into());
        v.insert("WECHAT_APPID".into(), "wx2c2769f8efd9abc2".into());
        v.insert("TAGCAST_REPLAY_WINDOW_SECS".into(), "0".into());
    })
    .await;
    let Some(body) = shared_fixture("request_compat_mode_sample.xml") else { return };
    let query =
        "timestamp=1409735669&nonce=1320562132&encrypt_type=aes&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa";
    let response = app.post(query, body).await;
    assert_eq!(response.status(), 200);
    let rows = app.query("SELECT dedupe_key, openid FROM events", &[]).await;
    assert_eq!(rows[0].get::<_, String>(0), "m:6054768590064713728");
    assert_eq!(rows[0].get::<_, String>(1), "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
}

#[tokio::test]
async fn every_sample_push_goes_through_safe_mode_into_the_database() {
    let app = spawn_app().await;
    // The documentation reuses placeholder ids (MsgId 1234567890123456 in every message sample), and
    // the project's own samples share sender and time, so several share a dedupe key: the first one
    // stored wins and the rest are retries of it.
    let mut first_kind: std::collections::BTreeMap<String, &'static str> = std::collections::BTreeMap::new();
    let xml_files = |dir: std::path::PathBuf| {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        files.sort();
        files
    };
    let own = xml_files(project_path("pushes"));
    assert_eq!(own.len(), 32, "own samples missing");
    let official = shared_path("fixtures").map(xml_files).unwrap_or_default();
    assert!(official.is_empty() || official.len() >= 30, "fixtures missing: {}", official.len());
    let files: Vec<_> = own.into_iter().chain(official).collect();
    for path in &files {
        let xml = std::fs::read_to_string(path).expect("fixture");
        let parsed = message::parse(&xml).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let encrypt = app.crypt.encrypt(xml.as_bytes());
        let response = app.post(&app.safe_query(&encrypt, now(), "42"), TestApp::envelope(&encrypt)).await;
        assert_eq!(response.status(), 200, "{}", path.display());
        let kind = *first_kind.entry(parsed.dedupe_key()).or_insert(parsed.kind());
        let rows = app.query("SELECT kind FROM events WHERE dedupe_key = $1", &[&parsed.dedupe_key()]).await;
        assert_eq!(rows.len(), 1, "{} not stored", path.display());
        assert_eq!(rows[0].get::<_, String>(0), kind, "{}", path.display());
    }
    assert!(first_kind.len() >= 20, "too few distinct pushes: {}", first_kind.len());
    assert_eq!(app.stored_events().await, first_kind.len() as i64);
}

/// Encrypts `plain` (already laid out and padded) with the test key, bypassing the cipher's checks.
fn raw_encrypt(padded: &[u8]) -> String {
    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::NoPadding};
    use base64::Engine;
    let key = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    )
    .decode(format!("{AES_KEY}="))
    .expect("key");
    let mut buf = padded.to_vec();
    let len = buf.len();
    cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, &key[..16])
        .expect("key size")
        .encrypt_padded_mut::<NoPadding>(&mut buf, len)
        .expect("block multiple");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

#[tokio::test]
async fn every_bad_input_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let ts = now();
    let good_xml = text_message("o_eve", "hello", 4242);
    let good_query = app.signed_query(ts, "7");

    // (name, query, body, expected status)
    let mut cases: Vec<(&str, String, Vec<u8>, u16)> = vec![
        ("broken xml", good_query.clone(), b"<xml><ToUserName>".to_vec(), 400),
        ("not xml", good_query.clone(), b"hello".to_vec(), 400),
        ("empty body", good_query.clone(), Vec::new(), 400),
        (
            "wrong root",
            good_query.clone(),
            good_xml.replace("<xml>", "<root>").replace("</xml>", "</root>").into_bytes(),
            400,
        ),
        (
            "doctype with entity",
            good_query.clone(),
            format!("<!DOCTYPE xml [<!ENTITY x \"boom\">]>{}", good_xml.replace("hello", "&x;")).into_bytes(),
            400,
        ),
        (
            "external entity",
            good_query.clone(),
            format!("<!DOCTYPE xml [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}", good_xml.replace("hello", "&x;"))
                .into_bytes(),
            400,
        ),
        (
            "billion laughs",
            good_query.clone(),
            {
                let mut s = String::from("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">");
                for i in 1..10 {
                    s.push_str(&format!("<!ENTITY lol{i} \"{}\">", format!("&lol{};", i - 1).repeat(10)));
                }
                s.push_str("]><xml><Content>&lol9;</Content></xml>");
                s.into_bytes()
            },
            400,
        ),
        ("over 64 KiB", good_query.clone(), good_xml.replace("hello", &"a".repeat(70 * 1024)).into_bytes(), 400),
        (
            "invalid utf-8",
            good_query.clone(),
            {
                let mut b = good_xml.clone().into_bytes();
                let at = b.len() / 2;
                b[at] = 0xff;
                b
            },
            400,
        ),
        (
            "missing FromUserName",
            good_query.clone(),
            good_xml.replace("<FromUserName><![CDATA[o_eve]]></FromUserName>", "").into_bytes(),
            400,
        ),
        (
            "wrong signature",
            format!("signature={}&timestamp={ts}&nonce=7", "a".repeat(40)),
            good_xml.clone().into_bytes(),
            403,
        ),
        ("missing signature", format!("timestamp={ts}&nonce=7"), good_xml.clone().into_bytes(), 400),
        (
            "missing timestamp",
            format!("signature={}&nonce=7", signature::sign(&[&app.token, "7"])),
            good_xml.clone().into_bytes(),
            400,
        ),
        ("missing nonce", format!("signature=x&timestamp={ts}"), good_xml.clone().into_bytes(), 400),
        (
            "non-numeric timestamp",
            {
                let sig = signature::sign(&[&app.token, "abc", "7"]);
                format!("signature={sig}&timestamp=abc&nonce=7")
            },
            good_xml.clone().into_bytes(),
            400,
        ),
        ("unknown encrypt_type", format!("{good_query}&encrypt_type=rsa"), good_xml.clone().into_bytes(), 400),
    ];

    // Safe-mode cases: each signed correctly over its (bad) ciphertext.
    let mut safe = |name: &'static str, encrypt: String, status: u16| {
        cases.push((name, app.safe_query(&encrypt, ts, "8"), TestApp::envelope(&encrypt).into_bytes(), status));
    };
    safe("bad base64", "!!!not*base64!!!".to_owned(), 400);
    safe("ciphertext not a block multiple", "QUJDREVGRw==".to_owned(), 400);
    let layout = |msg: &[u8], appid: &[u8]| {
        let mut plain = b"0123456789abcdef".to_vec();
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(appid);
        plain
    };
    let mut wrong_pad = layout(good_xml.as_bytes(), crate::support::app::APPID.as_bytes());
    let n = 32 - wrong_pad.len() % 32;
    wrong_pad.extend(std::iter::repeat_n(0u8, n)); // pad bytes of 0: invalid PKCS#7
    safe("wrong padding", raw_encrypt(&wrong_pad), 400);
    let mut too_long = layout(good_xml.as_bytes(), crate::support::app::APPID.as_bytes());
    too_long[16..20].copy_from_slice(&u32::MAX.to_be_bytes());
    let n = 32 - too_long.len() % 32;
    too_long.extend(std::iter::repeat_n(n as u8, n));
    safe("length prefix past the end", raw_encrypt(&too_long), 400);
    let other_app = MsgCrypt::new(AES_KEY, "wxsomeoneelse0001").expect("key");
    safe("wrong appid", other_app.encrypt(good_xml.as_bytes()), 400);
    safe("garbage plaintext", app.crypt.encrypt(b"\xff\xfe not xml"), 400);
    let encrypt = app.crypt.encrypt(good_xml.as_bytes());
    cases.push((
        "wrong msg_signature",
        format!("{good_query}&encrypt_type=aes&msg_signature={}", "b".repeat(40)),
        TestApp::envelope(&encrypt).into_bytes(),
        403,
    ));
    cases.push((
        "missing msg_signature",
        format!("{good_query}&encrypt_type=aes"),
        TestApp::envelope(&encrypt).into_bytes(),
        400,
    ));
    cases.push((
        "envelope without Encrypt",
        app.safe_query("", ts, "8"),
        Envelope { to_user: Some(ACCOUNT.to_owned()), encrypt: None }.to_xml().into_bytes(),
        400,
    ));

    for (name, query, body, status) in cases {
        let response = app.post(&query, body).await;
        assert_eq!(response.status().as_u16(), status, "{name}");
        assert_eq!(app.stored_events().await, 0, "{name} stored an event");
        assert_eq!(app.stored_followers().await, 0, "{name} stored a follower");
    }
    // The same push, done right, is then accepted.
    assert_eq!(app.post(&good_query, good_xml).await.status(), 200);
    assert_eq!(app.stored_events().await, 1);
}

/// Replies with how many pushes it has acted on, so a second action would show. It decides in
/// the transaction and acts (counts) only for pushes that were stored, as a handler with state
/// of its own does.
struct CountingReplier(Arc<AtomicUsize>);

impl Handler for CountingReplier {
    fn name(&self) -> &'static str {
        "counting_replier"
    }
    fn decide(&self, _messages: &[Received<'_>]) -> InMemory {
        InMemory::NeedsTransaction
    }
    fn decide_in_transaction<'a>(&'a self, _txn: &'a Client, messages: &'a [Received<'a>]) -> DecideFuture<'a> {
        Box::pin(async move {
            let mut answers = Vec::new();
            let done = self.0.load(Ordering::SeqCst);
            for (i, message) in messages.iter().enumerate() {
                if let Inbound::Text { content, .. } = &message.body {
                    if content == "fail" {
                        return Err("asked to fail".into());
                    }
                }
                let reply = Reply::Text { content: format!("acted {} ]]> <&>", done + i + 1) };
                answers.push(Decided { reply: Some(reply), ..Decided::default() });
            }
            Ok(InTransaction::answers_only(answers))
        })
    }
    fn write<'a>(
        &'a self,
        _txn: &'a Client,
        _messages: &'a [Received<'a>],
        _writes: Box<dyn std::any::Any + Send + Sync>,
        stored: &'a [bool],
    ) -> HandlerFuture<'a> {
        let acted = stored.iter().filter(|s| **s).count();
        self.0.fetch_add(acted, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

async fn counting_app() -> (TestApp, Arc<AtomicUsize>) {
    let counter = Arc::new(AtomicUsize::new(0));
    let app = spawn_app_dispatching(|_| {}, Dispatcher::default().with(CountingReplier(Arc::clone(&counter)))).await;
    (app, counter)
}

#[tokio::test]
async fn three_retries_are_acted_on_once_and_get_the_same_reply() {
    let (app, counter) = counting_app().await;
    let xml = text_message("o_retry", "营业时间", 9001);
    let query = app.signed_query(now(), "5");
    let mut replies = Vec::new();
    for _ in 0..3 {
        let response = app.post(&query, xml.clone()).await;
        assert_eq!(response.status(), 200);
        replies.push(response.text().await.unwrap());
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(replies[1], replies[2]);
    assert!(replies[0].contains("acted 1"), "{}", replies[0]);
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    assert_eq!(app.stored_events().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_are_acted_on_once_and_get_the_same_reply() {
    let (app, counter) = counting_app().await;
    for round in 0..20u64 {
        let xml = event(&format!("o_race_{round}"), "CLICK", Some("K"), now());
        // One signature per push: in plain mode it carries that push only.
        let query = app.signed_query(now(), &format!("6{round}"));
        let responses = join_all((0..3).map(|_| app.post(&query, xml.clone()))).await;
        let mut bodies = Vec::new();
        for r in responses {
            assert_eq!(r.status(), 200);
            bodies.push(r.text().await.unwrap());
        }
        assert!(bodies.iter().all(|b| b == &bodies[0]), "round {round}: {bodies:?}");
    }
    assert_eq!(counter.load(Ordering::SeqCst), 20);
    assert_eq!(app.stored_events().await, 20);
}

#[tokio::test]
async fn safe_mode_replies_are_encrypted_and_decrypt_to_the_same_reply() {
    let (app, _) = counting_app().await;
    let xml = text_message("o_safe", "hi", 31337);
    let encrypt = app.crypt.encrypt(xml.as_bytes());
    let query = app.safe_query(&encrypt, now(), "77");
    let mut plain = Vec::new();
    for _ in 0..2 {
        let body = app.post(&query, TestApp::envelope(&encrypt)).await.text().await.unwrap();
        let envelope = message::flatten(&body).expect("reply envelope is XML");
        let get = |k: &str| envelope.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone()).expect(k);
        let (enc, sig, ts, nonce) = (get("Encrypt"), get("MsgSignature"), get("TimeStamp"), get("Nonce"));
        assert!(signature::verify_msg(&app.token, &ts, &nonce, &enc, &sig));
        plain.push(String::from_utf8(app.crypt.decrypt(&enc).expect("decrypts")).expect("utf-8"));
    }
    assert_eq!(plain[0], plain[1]);
    let fields = message::flatten(&plain[0]).expect("reply is XML");
    assert!(fields.contains(&("Content".to_owned(), "acted 1 ]]> <&>".to_owned())), "{fields:?}");
    assert!(fields.contains(&("ToUserName".to_owned(), "o_safe".to_owned())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_distinct_pushes_are_all_stored() {
    let app = spawn_app().await;
    let pushes: Vec<(String, String)> = (0..200u64)
        .map(|i| {
            let xml = if i % 2 == 0 {
                text_message(&format!("o_{i}"), "hi", 10_000 + i)
            } else {
                event(&format!("o_{i}"), "CLICK", Some("MENU"), now())
            };
            (app.signed_query(now(), &i.to_string()), xml)
        })
        .collect();
    let responses = join_all(pushes.iter().map(|(query, xml)| app.post(query, xml.clone()))).await;
    assert!(responses.iter().all(|r| r.status() == 200));
    assert_eq!(app.stored_events().await, 200);
    assert_eq!(app.stored_followers().await, 200);
}

#[tokio::test]
async fn a_failing_handler_leaves_the_push_stored_and_answered_success() {
    let (app, counter) = counting_app().await;
    let response = app.push(&text_message("o_fail", "fail", 4711)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "success");
    assert_eq!(app.stored_events().await, 1);
    assert_eq!(counter.load(Ordering::SeqCst), 0);
    // Other pushes are still handled.
    let ok = app.push(&text_message("o_fail", "fine", 4712)).await.text().await.unwrap();
    assert!(ok.contains("acted 1"), "{ok}");
}

async fn follower_state(app: &TestApp, openid: &str) -> (bool, Option<String>, bool) {
    let rows = app
        .query(
            "SELECT subscribed, subscribe_scene, unsubscribed_at IS NOT NULL FROM followers WHERE openid = $1",
            &[&openid],
        )
        .await;
    (rows[0].get(0), rows[0].get(1), rows[0].get(2))
}

#[tokio::test]
async fn subscribe_state_follows_the_newest_event_whatever_order_they_arrive_in() {
    let app = spawn_app().await;
    let t = now();
    assert_eq!(app.push(&event("o_carol", "subscribe", Some("qrscene_promo7"), t - 10)).await.status(), 200);
    assert_eq!(follower_state(&app, "o_carol").await, (true, Some("promo7".to_owned()), false));

    assert_eq!(app.push(&event("o_carol", "unsubscribe", None, t - 5)).await.status(), 200);
    assert!(!follower_state(&app, "o_carol").await.0);

    // A subscribe from before the unsubscribe, delivered late, must not bring her back.
    assert_eq!(app.push(&event("o_carol", "subscribe", None, t - 20)).await.status(), 200);
    assert!(!follower_state(&app, "o_carol").await.0);

    assert_eq!(app.push(&event("o_carol", "subscribe", Some("qrscene_back"), t)).await.status(), 200);
    assert_eq!(follower_state(&app, "o_carol").await, (true, Some("back".to_owned()), true));
    assert_eq!(app.stored_events().await, 4);
}

/// A writer's transaction that took an event id and commits after the consumer has moved past
/// it (a slow batch, a quiz answer's lane) leaves a hole: the consumer must apply that event once
/// it commits, not skip it, and not apply anything twice.
#[tokio::test]
async fn an_event_committed_after_the_consumer_passed_its_id_is_applied_when_it_commits() {
    let app = spawn_app().await;
    let (late, connection) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    late.batch_execute(
        "BEGIN;
         INSERT INTO events (dedupe_key, openid, kind, occurred_at, payload, account_id, reply)
         VALUES ('1:e:o_late:1700000000:subscribe', 'o_late', 'subscribe', now(), '{}', 1, '')",
    )
    .await
    .expect("a writer's transaction, still open");

    assert_eq!(app.push(&text_message("o_after", "你好", 4_242)).await.status(), 200);
    app.settle().await;
    let known = "SELECT openid FROM followers WHERE openid IN ('o_late', 'o_after') ORDER BY openid";
    let rows: Vec<String> = app.query(known, &[]).await.iter().map(|r| r.get(0)).collect();
    assert_eq!(rows, ["o_after"], "the later push is applied, the uncommitted one is not seen");
    let holes: Vec<i64> = app.query("SELECT holes FROM event_cursors WHERE name = 'tagging'", &[]).await[0].get(0);
    assert_eq!(holes.len(), 1, "the consumer waits for the id it passed");

    late.batch_execute("COMMIT").await.expect("committed late");
    app.settle().await;
    let late_follower = app.query("SELECT subscribed FROM followers WHERE openid = 'o_late'", &[]).await;
    assert_eq!(late_follower.len(), 1, "the late event was applied");
    assert!(late_follower[0].get::<_, bool>(0));
    let holes: Vec<i64> = app.query("SELECT holes FROM event_cursors WHERE name = 'tagging'", &[]).await[0].get(0);
    assert!(holes.is_empty(), "{holes:?}");
}

/// An active follower's pushes do not rewrite their row to move `last_seen_at` by seconds: it
/// moves when a minute has passed, while a subscribe or unsubscribe is written at once.
#[tokio::test]
async fn a_followers_row_is_rewritten_for_a_state_change_or_a_minute_of_activity_not_every_push() {
    let app = spawn_app().await;
    let t = now() - 600;
    let click = |at: i64| event("o_busy", "CLICK", Some("ANY"), at);
    let row = "SELECT xmin::text, extract(epoch FROM last_seen_at)::bigint, subscribed FROM followers
               WHERE openid = 'o_busy'";
    let read = || async {
        let rows = app.query(row, &[]).await;
        (rows[0].get::<_, String>(0), rows[0].get::<_, i64>(1), rows[0].get::<_, bool>(2))
    };
    assert_eq!(app.push(&click(t)).await.status(), 200);
    let (version, last_seen, _) = read().await;
    assert_eq!(last_seen, t);

    assert_eq!(app.push(&click(t + 30)).await.status(), 200);
    assert_eq!(read().await, (version.clone(), t, true), "half a minute later: the row is left as it was");

    assert_eq!(app.push(&event("o_busy", "unsubscribe", None, t + 40)).await.status(), 200);
    let (after_unsubscribe, _, subscribed) = read().await;
    assert!(!subscribed, "a state change is written at once");
    assert_ne!(after_unsubscribe, version);

    assert_eq!(app.push(&click(t + 200)).await.status(), 200);
    assert_eq!(read().await.1, t + 200, "more than a minute on, last_seen_at moves");
}

/// A follower who leaves and comes straight back through a QR code that starts a quiz keeps the
/// new quiz: the consumer, applying the unsubscribe after the new subscribe was answered (here it
/// is held back until both are stored), ends only the session from before they left.
#[tokio::test]
async fn leaving_and_coming_back_into_a_quiz_keeps_the_new_quiz_when_the_consumer_applies_both_later() {
    let app = spawn_app().await;
    let pool = tagcast::store::connect_pool(&app.settings.database_url, 1).await.expect("pool");
    tagcast::app::playbook::apply(&pool, tagcast::app::playbook::SAMPLE_FILE, tagcast::app::playbook::SAMPLE)
        .await
        .expect("the sample applies");
    drop(pool);
    let (status, body) =
        app.api_post("/rules", serde_json::json!({"on": "subscribe", "key": "skin", "start_quiz": "skin"})).await;
    assert_eq!(status, 201, "{body}");
    let t = now() - 100;
    assert_eq!(app.push(&event("o_back", "subscribe", Some("qrscene_skin"), t)).await.status(), 200);
    let sessions = "SELECT count(*) FROM quiz_sessions WHERE openid = 'o_back'";
    assert_eq!(app.count(sessions).await, 1, "the first subscribe starts the quiz");

    let (holder, connection) = tokio_postgres::connect(&app.db_url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    holder.batch_execute("BEGIN; SELECT 1 FROM event_cursors WHERE name = 'tagging' FOR UPDATE").await.expect("held");
    assert_eq!(app.push(&event("o_back", "unsubscribe", None, t + 10)).await.status(), 200);
    let again = app.push(&event("o_back", "subscribe", Some("qrscene_skin"), t + 20)).await;
    assert_eq!(again.status(), 200);
    assert!(again.text().await.expect("body").contains("肤质"), "the quiz starts again");
    holder.batch_execute("COMMIT").await.expect("released");

    assert_eq!(app.count(sessions).await, 1, "the quiz the follower just started is still there");
    let subscribed = app.query("SELECT subscribed FROM followers WHERE openid = 'o_back'", &[]).await;
    assert!(subscribed[0].get::<_, bool>(0));
}
