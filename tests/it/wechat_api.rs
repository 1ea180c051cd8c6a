//! The WeChat API client against the mock WeChat: every call, typed errors, retries, and the
//! access token shared by every instance through PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Days, Utc};
use futures::future::join_all;
use secrecy::SecretString;
use tagcast::wechat::api::{
    ApiClient, ApiConfig, CustomMessage, ErrCode, MassMessage, MemoryTokenStore, Menu, MenuButton, RetryPolicy,
    SendAllAudience, WeChatError,
};

use crate::support::app::{APPID, SECRET, spawn_app};

fn code(result: Result<impl std::fmt::Debug, WeChatError>) -> ErrCode {
    result.expect_err("WeChat should refuse this").code().expect("an errcode")
}

#[tokio::test]
async fn tag_calls_work_and_every_tag_limit_is_a_typed_error() {
    let app = spawn_app().await;
    let api = &app.api;
    let fans = app.wechat.seed_followers(60);

    let tag = api.create_tag("肤质/油性").await.expect("create");
    assert!(tag.id >= 100);
    assert_eq!(code(api.create_tag("肤质/油性").await), ErrCode::TagNameTaken);
    assert_eq!(code(api.create_tag(&"长".repeat(11)).await), ErrCode::TagNameTooLong);
    assert_eq!(code(api.update_tag(2, "星标").await), ErrCode::ReservedTag);
    assert_eq!(code(api.delete_tag(1).await), ErrCode::ReservedTag);

    assert_eq!(code(api.batch_tag(tag.id, &fans[..51]).await), ErrCode::InvalidOpenIdList);
    assert_eq!(code(api.batch_tag(tag.id, &[]).await), ErrCode::InvalidOpenIdList);
    assert_eq!(code(api.batch_tag(999_999, &fans[..2]).await), ErrCode::InvalidTagId);
    assert_eq!(code(api.batch_tag(tag.id, &["o_nobody".to_owned()]).await), ErrCode::InvalidOpenId);
    api.batch_tag(tag.id, &fans[..50]).await.expect("tag 50");
    assert_eq!(api.user_tag_ids(&fans[0]).await.expect("ids"), vec![tag.id]);
    let listed = api.list_tags().await.expect("list");
    assert_eq!(listed.iter().find(|t| t.id == tag.id).map(|t| t.count), Some(50));
    let page = api.tag_members(tag.id, "").await.expect("members");
    assert_eq!(page.openids().len(), 50);
    assert_eq!(api.tag_members(tag.id, &page.next_openid).await.expect("end").count, 0);

    api.batch_untag(tag.id, &fans[..10]).await.expect("untag");
    assert!(api.user_tag_ids(&fans[0]).await.expect("ids").is_empty());
    api.update_tag(tag.id, "肤质/干性").await.expect("rename");
    assert_eq!(app.wechat.tags().iter().find(|t| t.0 == tag.id).map(|t| t.1.clone()).as_deref(), Some("肤质/干性"));

    // 20 tags per user.
    let mut ids = Vec::new();
    for i in 0..20 {
        let t = api.create_tag(&format!("t{i}")).await.expect("create");
        api.batch_tag(t.id, &fans[59..]).await.expect("tag");
        ids.push(t.id);
    }
    assert_eq!(code(api.batch_tag(tag.id, &fans[59..]).await), ErrCode::UserTagLimit);
    // 100 tags per account.
    for i in 20..99 {
        api.create_tag(&format!("t{i}")).await.expect("create");
    }
    assert_eq!(code(api.create_tag("one too many").await), ErrCode::TooManyTags);
    api.delete_tag(ids[0]).await.expect("delete");
    api.create_tag("room again").await.expect("room after a delete");
}

#[tokio::test]
async fn follower_calls_page_and_describe_followers() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(25);
    app.wechat.set_page_size(10);
    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let page = app.api.list_followers(&next).await.expect("page");
        if page.count == 0 {
            break;
        }
        assert_eq!(page.total, Some(25));
        seen.extend(page.openids().iter().cloned());
        next = page.next_openid.clone();
    }
    assert_eq!(seen, fans);

    let info = app.api.user_info(&fans[3]).await.expect("info");
    assert!(info.is_subscribed());
    assert_eq!(info.openid, fans[3]);
    assert!(info.subscribe_time.is_some());
    app.wechat.unsubscribe(&fans[4]);
    let infos = app.api.user_infos(&fans[3..5]).await.expect("batch");
    assert_eq!(infos.len(), 2);
    assert!(infos[0].is_subscribed() && !infos[1].is_subscribed());
    assert_eq!(code(app.api.user_infos(&vec![fans[0].clone(); 101]).await), ErrCode::InvalidOpenIdList);
    assert_eq!(code(app.api.user_info("o_stranger").await), ErrCode::InvalidOpenId);
}

#[tokio::test]
async fn mass_calls_cover_sendall_send_preview_status_and_speed() {
    let app = spawn_app().await;
    let api = &app.api;
    let fans = app.wechat.seed_followers(5);
    let tag = api.create_tag("测试组").await.expect("tag");
    api.batch_tag(tag.id, &fans[..3]).await.expect("tag members");
    let text = MassMessage::Text { content: "新品上架 ✨".to_owned() };

    let accepted = api.mass_send_all(SendAllAudience::Tag(tag.id), &text, "campaign-1-0").await.expect("sendall");
    assert_eq!(
        code(api.mass_send_all(SendAllAudience::Tag(tag.id), &text, "campaign-1-0").await),
        ErrCode::ClientMsgIdRetriedTooSoon,
        "a repeat within the minute"
    );
    app.wechat.advance_time(std::time::Duration::from_secs(61));
    let again = api.mass_send_all(SendAllAudience::Tag(tag.id), &text, "campaign-1-0").await;
    match again {
        Err(WeChatError::Api { code: ErrCode::DuplicateClientMsgId, msg_id, .. }) => {
            assert_eq!(msg_id, Some(accepted.msg_id))
        }
        other => panic!("expected 45065 with the first msg_id, got {other:?}"),
    }
    assert_eq!(
        code(api.mass_send_all(SendAllAudience::Tag(tag.id), &text, &"x".repeat(65)).await),
        ErrCode::ClientMsgIdTooLong
    );
    let sendall = app.wechat.calls().into_iter().find(|c| c.path == "/cgi-bin/message/mass/sendall").expect("logged");
    assert_eq!(sendall.body["filter"]["is_to_all"], false);
    assert_eq!(sendall.body["filter"]["tag_id"], tag.id);
    assert_eq!(sendall.body["text"]["content"], "新品上架 ✨");

    let to = api.mass_send_to(&fans[..2], &text, "campaign-2-0").await.expect("send");
    assert_ne!(to.msg_id, accepted.msg_id);
    assert_eq!(code(api.mass_send_to(&fans[..1], &text, "campaign-3-0").await), ErrCode::InvalidToUserList);
    assert_eq!(
        code(
            api.mass_send_all(SendAllAudience::Tag(tag.id), &MassMessage::Mpnews { media_id: String::new() }, "c4")
                .await
        ),
        ErrCode::InvalidMediaId
    );

    api.mass_preview(&fans[0], &text).await.expect("preview");
    assert_eq!(app.wechat.previews().len(), 1);
    let status = api.mass_status(accepted.msg_id).await.expect("status");
    assert!(["SENDING", "SEND_SUCCESS"].contains(&status.msg_status.as_str()), "{status:?}");
    api.set_mass_speed(2).await.expect("speed set");
    assert_eq!(api.mass_speed().await.expect("speed").speed, 2);
    assert_eq!(code(api.set_mass_speed(9).await), ErrCode::InvalidSpeed);
}

#[tokio::test]
async fn custom_messages_menus_oauth_and_statistics() {
    let app = spawn_app().await;
    let api = &app.api;
    let fans = app.wechat.seed_followers(3);
    app.wechat.open_interaction(&fans[0], tagcast::mock_wechat::Interaction::Message);

    api.send_custom(&fans[0], &CustomMessage::Text { content: "您好".to_owned() }).await.expect("custom");
    assert_eq!(app.wechat.custom_messages().len(), 1);
    app.wechat.unsubscribe(&fans[1]);
    assert_eq!(
        code(api.send_custom(&fans[1], &CustomMessage::Text { content: "x".to_owned() }).await),
        ErrCode::OutOfResponseWindow
    );

    let button = |name: &str, key: &str| MenuButton {
        name: name.to_owned(),
        kind: Some("click".to_owned()),
        key: Some(key.to_owned()),
        url: None,
        sub_button: Vec::new(),
    };
    let menu = Menu { button: vec![button("肤质测试", "SKIN_TEST"), button("会员", "VIP_CENTER")] };
    api.create_menu(&menu).await.expect("menu");
    let stored = api.get_menu().await.expect("menu get");
    assert!(stored.to_string().contains("SKIN_TEST"), "{stored}");
    let too_wide = Menu { button: (0..4).map(|i| button(&format!("b{i}"), "K")).collect() };
    assert!(matches!(code(api.create_menu(&too_wide).await), ErrCode::InvalidMenu(40016)));

    let oauth_code = app.wechat.oauth_code(&fans[2]);
    assert_eq!(api.oauth_exchange(&oauth_code).await.expect("oauth").openid, fans[2]);
    assert_eq!(code(api.oauth_exchange(&oauth_code).await), ErrCode::CodeUsed);

    let end = Utc::now().date_naive() - Days::new(1);
    let begin = end - Days::new(6);
    assert!(!api.user_summary(begin, end).await.expect("summary").is_empty());
    assert_eq!(api.user_cumulate(begin, end).await.expect("cumulate").len(), 7);
    api.upstream_messages(begin, end).await.expect("upstream");
    api.article_totals(end, end).await.expect("article totals");
    api.article_reads(end, end).await.expect("article reads");
    api.article_shares(end, end).await.expect("article shares");
    api.article_summaries(end, end).await.expect("article summaries");
    assert_eq!(code(api.user_summary(begin - Days::new(7), end).await), ErrCode::InvalidDateRange);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_token_and_refresh_it_once_when_it_expires() {
    let app = spawn_app().await;
    let first = app.api.clone();
    let second = app.api_of_another_instance().await;
    app.wechat.seed_followers(10);

    let calls = (0..200).map(|i| {
        let api = if i % 2 == 0 { first.clone() } else { second.clone() };
        async move { api.list_tags().await }
    });
    assert!(join_all(calls).await.iter().all(Result::is_ok));
    assert_eq!(app.wechat.token_fetches(), 1, "one token for both instances");

    app.wechat.expire_tokens();
    let calls = (0..200).map(|i| {
        let api = if i % 2 == 0 { first.clone() } else { second.clone() };
        async move { api.list_followers("").await }
    });
    let results = join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "{:?}", results.iter().find(|r| r.is_err()));
    assert_eq!(app.wechat.token_fetches(), 2, "exactly one refresh after expiry");
    let stored = app.count("SELECT fetch_count FROM access_tokens").await;
    assert_eq!(stored, 2);
}

#[tokio::test]
async fn a_fresh_token_is_read_from_memory_without_touching_the_database() {
    let app = spawn_app().await;
    let token = app.api.access_token().await.expect("token");
    // Any trip to the store would now fail: only the in-memory copy can answer.
    app.query("DROP TABLE access_tokens", &[]).await;
    for _ in 0..1000 {
        assert_eq!(app.api.access_token().await.expect("served from memory"), token);
    }
    app.api.list_tags().await.expect("calls still carry the cached token");
    assert_eq!(app.wechat.token_fetches(), 1);
}

fn quick_client(base: String) -> ApiClient {
    let mut config = ApiConfig::new(url::Url::parse(&base).expect("url"), APPID, SecretString::from(SECRET));
    config.retry = RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(5),
    };
    ApiClient::new(config, Arc::new(MemoryTokenStore::default()))
}

#[tokio::test]
async fn busy_and_quota_answers_are_retried_with_backoff_and_permanent_errors_are_not() {
    let app = spawn_app().await;
    let api = quick_client(app.wechat.base_url().expect("mock"));
    api.access_token().await.expect("token");

    for errcode in [-1, 45011] {
        app.wechat.clear_calls();
        app.wechat.fail_next("/cgi-bin/tags/get", 3, errcode);
        api.list_tags().await.unwrap_or_else(|e| panic!("{errcode}: {e}"));
        assert_eq!(app.wechat.call_count("/cgi-bin/tags/get"), 4, "{errcode}: three failures, then success");
    }

    app.wechat.clear_calls();
    app.wechat.fail_next_http("/cgi-bin/tags/get", 2, 502);
    api.list_tags().await.expect("5xx is retried");
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/get"), 3);

    app.wechat.clear_calls();
    app.wechat.fail_next("/cgi-bin/tags/get", 10, -1);
    let exhausted = api.list_tags().await.expect_err("gives up");
    assert!(matches!(exhausted, WeChatError::RetriesExhausted { attempts: 5, .. }), "{exhausted:?}");
    assert!(exhausted.is_transient(), "giving up on a busy WeChat leaves the work for a later retry");
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/get"), 5);
    app.wechat.clear_failures("/cgi-bin/tags/get");

    app.wechat.clear_calls();
    assert_eq!(code(api.user_tag_ids("o_not_a_follower").await), ErrCode::InvalidOpenId);
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/getidlist"), 1, "40003 is not retried");

    // A used-up daily quota is not retried: the API is stopped until Beijing midnight, and the
    // client refuses it itself meanwhile, naming when it resumes.
    app.wechat.fail_next("/cgi-bin/tags/create", 3, 45009);
    let stopped = api.create_tag("限额").await.expect_err("quota used up");
    let until = stopped.quota_resumes_at().expect("a resume time");
    assert_eq!(until, tagcast::wechat::api::quota::quota_resumes_at(chrono::Utc::now()));
    assert_eq!(code(Err::<(), _>(stopped)), ErrCode::DailyQuotaExceeded);
    assert!(api.create_tag("限额").await.is_err());
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/create"), 1, "one 45009, then no call until midnight");
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_the_call_succeeds() {
    let app = spawn_app().await;
    let api = quick_client(app.wechat.base_url().expect("mock"));
    api.list_tags().await.expect("first call");
    app.wechat.expire_tokens();
    api.list_tags().await.expect("refreshed and retried");
    assert_eq!(app.wechat.token_fetches(), 2);
    // A token refused again right after a refresh is not refreshed in a loop.
    app.wechat.fail_next("/cgi-bin/tags/get", 2, 40001);
    assert_eq!(code(api.list_tags().await), ErrCode::InvalidCredential);
    assert_eq!(app.wechat.token_fetches(), 3);
}

#[tokio::test]
async fn a_mass_send_through_the_mock_reports_its_counts_to_the_callback() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(8);
    let tag = app.api.create_tag("回访").await.expect("tag");
    app.api.batch_tag(tag.id, &fans[..5]).await.expect("members");
    let accepted = app
        .api
        .mass_send_all(SendAllAudience::Tag(tag.id), &MassMessage::Text { content: "hi".to_owned() }, "cb-test-1")
        .await
        .expect("accepted");
    app.wechat.wait_for_callbacks().await;
    let rows = app.query("SELECT payload FROM events WHERE kind = 'mass_send_job_finish'", &[]).await;
    assert_eq!(rows.len(), 1, "MASSSENDJOBFINISH stored through the safe-mode callback");
    let payload: serde_json::Value = rows[0].get(0);
    let body = &payload["body"];
    assert_eq!(body["msg_id"], accepted.msg_id, "{payload}");
    assert_eq!(body["total_count"], 5, "{payload}");
    assert_eq!(body["sent_count"], 5, "{payload}");
    assert_eq!(body["error_count"], 0, "{payload}");
}
