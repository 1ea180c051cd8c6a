//! The tagging engine end to end: rules in through the callback, tags in the database, changes out
//! through the outbox to the mock WeChat; the tag API and its limits; self-service commands and
//! erasure; restarts and several workers.

use std::collections::HashMap;

use futures::future::join_all;
use serde_json::json;

use crate::support::app::{TestApp, event, location_message, now, spawn_app, text_message};

async fn create_rule(app: &TestApp, rule: serde_json::Value) -> i64 {
    let (status, body) = app.api_post("/rules", rule).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("rule id")
}

async fn tags_of(app: &TestApp, openid: &str) -> Vec<String> {
    let (status, body) = app.api_get(&format!("/users/{openid}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body["tags"].clone()).expect("tag list")
}

/// The WeChat tag id of a local tag (after it reached WeChat).
async fn wechat_id(app: &TestApp, path: &str) -> i64 {
    let (_, tags) = app.api_get("/tags").await;
    tags.as_array()
        .expect("list")
        .iter()
        .find(|t| t["path"] == path)
        .and_then(|t| t["wechat_tag_id"].as_i64())
        .unwrap_or_else(|| panic!("{path} has no WeChat id: {tags}"))
}

fn batch_calls(app: &TestApp, path: &str) -> Vec<serde_json::Value> {
    app.wechat.calls().into_iter().filter(|c| c.path == path && c.errcode == 0).map(|c| c.body).collect()
}

#[tokio::test]
async fn every_rule_kind_tags_the_follower_and_reaches_wechat() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(6);
    create_rule(&app, json!({"on": "click", "key": "NEW_ARRIVALS", "add": ["兴趣/新品"]})).await;
    create_rule(&app, json!({"on": "view", "key": "https://shop.example/sale", "add": ["兴趣/促销"]})).await;
    create_rule(&app, json!({"on": "keyword", "key": "营业时间", "add": ["行为/咨询"], "reply": "每天 9:00-21:00"}))
        .await;
    create_rule(
        &app,
        json!({"on": "subscribe", "key": "poster_spring", "add": ["渠道/春季海报"], "reply": "欢迎关注！"}),
    )
    .await;
    create_rule(&app, json!({"on": "scan", "key": "store_42", "add": ["渠道/门店"]})).await;
    create_rule(&app, json!({"on": "location", "key": "31.2304,121.4737,10", "add": ["地区/上海"]})).await;

    let t = now();
    assert_eq!(app.push_for_reply(&event(&fans[0], "CLICK", Some("NEW_ARRIVALS"), t)).await, "");
    app.push(&event(&fans[1], "VIEW", Some("https://shop.example/sale"), t)).await;
    assert_eq!(app.push_for_reply(&text_message(&fans[2], " 营业时间 ", 501)).await, "每天 9:00-21:00");
    assert_eq!(app.push_for_reply(&event(&fans[3], "subscribe", Some("qrscene_poster_spring"), t)).await, "欢迎关注！");
    app.push(&event(&fans[4], "SCAN", Some("store_42"), t)).await;
    app.push(&location_message(&fans[5], 31.22, 121.48, 502)).await;
    // Near misses change nothing.
    app.push(&text_message(&fans[0], "营业时间?", 503)).await;
    app.push(&location_message(&fans[0], 39.9, 116.4, 504)).await;

    let expected = ["兴趣/新品", "兴趣/促销", "行为/咨询", "渠道/春季海报", "渠道/门店", "地区/上海"];
    for (fan, path) in fans.iter().zip(expected) {
        assert_eq!(tags_of(&app, fan).await, [path], "{fan}");
    }
    assert!(
        app.wechat.calls().iter().all(|c| !c.path.contains("batchtagging")),
        "nothing reaches WeChat from the callback"
    );
    app.run_pending_jobs().await;
    for (fan, path) in fans.iter().zip(expected) {
        assert_eq!(app.wechat.user_tags(fan), [wechat_id(&app, path).await], "{fan} on WeChat");
    }
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox").await, 0);
}

#[tokio::test]
async fn a_hundred_and_twenty_clicks_go_out_in_three_batches_and_the_last_word_wins() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(120);
    create_rule(&app, json!({"on": "click", "key": "VIP_CENTER", "add": ["兴趣/会员"]})).await;
    create_rule(&app, json!({"on": "keyword", "key": "不要会员", "remove": ["兴趣/会员"]})).await;
    let t = now();
    let pushes: Vec<String> = fans.iter().map(|f| event(f, "CLICK", Some("VIP_CENTER"), t)).collect();
    for chunk in pushes.chunks(40) {
        join_all(chunk.iter().map(|xml| app.push(xml))).await;
    }
    // Fan 0 changes their mind before WeChat heard of it: add, then remove.
    app.push(&text_message(&fans[0], "不要会员", 9_000)).await;
    assert_eq!(app.count("SELECT count(*) FROM follower_tags").await, 119);

    app.run_pending_jobs().await;
    let tagging = batch_calls(&app, "/cgi-bin/tags/members/batchtagging");
    assert_eq!(tagging.len(), 3, "119 adds in batches of at most 50");
    assert!(tagging.iter().all(|c| c["openid_list"].as_array().expect("list").len() <= 50));
    let sent: usize = tagging.iter().map(|c| c["openid_list"].as_array().expect("list").len()).sum();
    assert_eq!(sent, 119);
    assert!(app.wechat.user_tags(&fans[0]).is_empty(), "WeChat ends without the removed tag");
    assert_eq!(app.wechat.user_tags(&fans[1]).len(), 1);
}

#[tokio::test]
async fn the_tag_api_validates_warns_and_keeps_within_wechat_limits() {
    let app = spawn_app().await;
    let (status, tag) =
        app.api_post("/tags", json!({"path": " 肤质 / 油性 ", "sensitive": true, "description": "测验结果"})).await;
    assert_eq!(status, 201, "{tag}");
    assert_eq!(tag["path"], "肤质/油性");
    assert_eq!(tag["sensitive"], true);
    assert_eq!(tag["mirrored"], true);
    assert_eq!(tag["warnings"], json!([]));
    assert_eq!(tag["created_by"], "api");

    let (status, body) = app.api_post("/tags", json!({"path": "肤质/油性"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("tag_exists")));
    for bad in ["", "a//b", "a/b/c/d", "一二三四五六七八九十/一"] {
        let (status, body) = app.api_post("/tags", json!({"path": bad})).await;
        assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_tag")), "{bad}: {body}");
    }
    let (status, body) = app.api_post("/tags", json!({"path": "x", "colour": "red"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("colour"));
    let (status, body) = app.api_post("/tags", json!({"path": "A/家电类目未支付用户"})).await;
    assert_eq!(status, 201);
    assert_eq!(body["warnings"].as_array().map(Vec::len), Some(1), "naming advice is a warning: {body}");

    let unauthorized = app.http.get(format!("{}/api/v1/tags", app.address)).send().await.expect("sent");
    assert_eq!(unauthorized.status(), 401);
    let body: serde_json::Value = unauthorized.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");

    // WeChat's 100: the rest must be local-only, and work locally.
    for i in 0..98 {
        let (status, _) = app.api_post("/tags", json!({"path": format!("批量/t{i}")})).await;
        assert_eq!(status, 201);
    }
    let (status, body) = app.api_post("/tags", json!({"path": "批量/多一个"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("tag_limit")), "{body}");
    let (status, local) = app.api_post("/tags", json!({"path": "批量/多一个", "wechat": false})).await;
    assert_eq!(status, 201);
    assert_eq!(local["mirrored"], false);
    // A rule naming a new tag when WeChat is full creates it local-only; it still tags followers.
    let fans = app.wechat.seed_followers(1);
    create_rule(&app, json!({"on": "click", "key": "K", "add": ["批量/本地"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("K"), now())).await;
    assert_eq!(tags_of(&app, &fans[0]).await, ["批量/本地"]);
    app.run_pending_jobs().await;
    assert!(app.wechat.user_tags(&fans[0]).is_empty(), "local-only tags never reach WeChat");
    assert!(batch_calls(&app, "/cgi-bin/tags/create").is_empty());

    let (_, listed) = app.api_get("/tags").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(102));
    let id = listed.as_array().expect("list").iter().find(|t| t["path"] == "批量/本地").expect("listed")["id"].clone();
    assert_eq!(
        listed.as_array().expect("list").iter().find(|t| t["path"] == "批量/本地").expect("listed")["members"],
        1
    );
    let (status, _) = app.api_delete(&format!("/tags/{id}")).await;
    assert_eq!(status, 204);
    assert_eq!(app.api_delete(&format!("/tags/{id}")).await.0, 404);
    assert!(tags_of(&app, &fans[0]).await.is_empty());
}

#[tokio::test]
async fn deleting_a_mirrored_tag_deletes_it_on_wechat() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(2);
    create_rule(&app, json!({"on": "click", "key": "K", "add": ["临时/活动"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("K"), now())).await;
    app.run_pending_jobs().await;
    let wechat_tag = wechat_id(&app, "临时/活动").await;
    assert!(app.wechat.tags().iter().any(|t| t.0 == wechat_tag));
    let (_, tags) = app.api_get("/tags").await;
    let id = tags[0]["id"].as_i64().expect("id");
    assert_eq!(app.api_delete(&format!("/tags/{id}")).await.0, 204);
    app.run_pending_jobs().await;
    assert!(!app.wechat.tags().iter().any(|t| t.0 == wechat_tag), "gone on WeChat");
    assert_eq!(app.count("SELECT count(*) FROM jobs WHERE state = 'done'").await, 1);
}

/// A remove that comes long after the add (the tag's `last_used_at` is moved in the same statement
/// that locks the tag) still reaches WeChat.
#[tokio::test]
async fn a_tag_removed_a_while_after_it_was_last_used_is_removed_on_wechat_too() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(1);
    create_rule(&app, json!({"on": "click", "key": "VIP_CENTER", "add": ["兴趣/会员"]})).await;
    create_rule(&app, json!({"on": "keyword", "key": "不要会员", "remove": ["兴趣/会员"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("VIP_CENTER"), now())).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[0]).len(), 1);

    app.query("UPDATE tags SET last_used_at = now() - interval '1 hour'", &[]).await;
    app.push(&text_message(&fans[0], "不要会员", 9_001)).await;
    assert!(tags_of(&app, &fans[0]).await.is_empty());
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox WHERE NOT add").await, 1, "the remove is queued");
    app.run_pending_jobs().await;
    assert!(app.wechat.user_tags(&fans[0]).is_empty(), "removed on WeChat too");
    let used: bool = app.query("SELECT last_used_at > now() - interval '1 minute' FROM tags", &[]).await[0].get(0);
    assert!(used, "last_used_at moved");
}

/// No foreign key guards `follower_tags` and `tag_outbox` (V18): a tagging batch locks the tags it
/// names, and deleting a tag waits for it; a trigger then deletes every row naming the tag.
#[tokio::test]
async fn deleting_a_tag_waits_for_a_batch_tagging_with_it_and_leaves_no_row_naming_it() {
    use tagcast::store::tags::{TagChange, apply_tag_changes};
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(3);
    create_rule(&app, json!({"on": "click", "key": "K", "add": ["临时/活动"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("K"), now())).await;
    let (_, tags) = app.api_get("/tags").await;
    let id = tags[0]["id"].as_i64().expect("id");
    let tagging =
        |openid: &str| vec![TagChange { openid: openid.to_owned(), tag_id: id, add: true, source: "test".to_owned() }];

    let mut client = app.jobs.pool.get().await.expect("connection");
    let batch = client.transaction().await.expect("transaction");
    assert_eq!(apply_tag_changes(&batch, &tagging(&fans[1])).await.expect("tagged").len(), 1);
    let rows_naming_it = "SELECT (SELECT count(*) FROM follower_tags WHERE tag_id = $1) + (SELECT count(*) FROM tag_outbox WHERE tag_id = $1)";
    let commit_once_the_delete_waits = async {
        let waiting = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                       AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM tags%'";
        for _ in 0..100 {
            if app.count(waiting).await == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert_eq!(app.count(waiting).await, 1, "the delete waits for the batch");
        batch.commit().await.expect("committed");
    };
    let path = format!("/tags/{id}");
    let ((status, _), ()) = tokio::join!(app.api_delete(&path), commit_once_the_delete_waits);
    assert_eq!(status, 204);
    let left = app.query(rows_naming_it, &[&id]).await;
    assert_eq!(left[0].get::<_, i64>(0), 0, "the member the batch added went with the tag");

    // Once the tag is gone, a batch naming it (its rules not reloaded yet) adds nothing.
    assert!(apply_tag_changes(&client, &tagging(&fans[2])).await.expect("applied").is_empty());
    assert_eq!(app.query(rows_naming_it, &[&id]).await[0].get::<_, i64>(0), 0);

    // Whoever deletes a tag (the release before V18 relied on the cascade, an operator in psql)
    // takes its rows along.
    create_rule(&app, json!({"on": "click", "key": "K2", "add": ["临时/二"]})).await;
    app.push(&event(&fans[2], "CLICK", Some("K2"), now())).await;
    let other: i64 = app.query("SELECT id FROM tags WHERE path = '临时/二'", &[]).await[0].get(0);
    assert_eq!(app.query(rows_naming_it, &[&other]).await[0].get::<_, i64>(0), 2, "a member and its outbox row");
    app.query("DELETE FROM tags WHERE id = $1", &[&other]).await;
    assert_eq!(app.query(rows_naming_it, &[&other]).await[0].get::<_, i64>(0), 0);
}

#[tokio::test]
async fn renaming_a_tag_carries_its_rules_segments_and_campaigns_along_and_renames_it_on_wechat() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(3);
    create_rule(&app, json!({"on": "click", "key": "MAKEUP", "add": ["兴趣/美妆"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("MAKEUP"), now())).await;
    app.run_pending_jobs().await;
    let wechat_tag = wechat_id(&app, "兴趣/美妆").await;
    let (status, body) =
        app.api_post("/segments", json!({"name": "美妆新客", "expr": "\"兴趣/美妆\" AND orders(all) = 0"})).await;
    assert_eq!(status, 201, "{body}");
    let segment = body["id"].as_i64().expect("id");
    let (status, body) = app.api_post("/tags", json!({"path": "活跃/美妆粉", "when": "\"兴趣/美妆\""})).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .api_post(
            "/campaigns",
            json!({"name": "彩妆", "audience": {"tag": "兴趣/美妆"}, "message": {"type": "text", "content": "x"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let campaign = body["id"].as_i64().expect("id");
    let (_, tags) = app.api_get("/tags").await;
    let id = tags.as_array().unwrap().iter().find(|t| t["path"] == "兴趣/美妆").unwrap()["id"].as_i64().unwrap();

    let (status, body) =
        app.api_call(reqwest::Method::PATCH, &format!("/tags/{id}"), Some(json!({"path": "兴趣/彩妆"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "兴趣/彩妆");
    assert_eq!(body["members"], 1, "members keep the tag");
    let renamed = &body["renamed"];
    assert_eq!(
        (
            renamed["rules"].as_u64(),
            renamed["segments"].as_u64(),
            renamed["dynamic_tags"].as_u64(),
            renamed["campaigns"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(1)),
        "{body}"
    );
    assert_eq!(renamed["wechat"], true);
    app.run_pending_jobs().await;
    let on_wechat = app.wechat.tags().into_iter().find(|t| t.0 == wechat_tag).expect("still there");
    assert_eq!(on_wechat.1, "兴趣/彩妆", "renamed on WeChat, same id");
    assert_eq!(app.wechat.call_count("/cgi-bin/tags/update"), 1);

    // The dynamic tag's condition, rewritten, still holds for the member.
    assert_eq!(tags_of(&app, &fans[0]).await, ["兴趣/彩妆", "活跃/美妆粉"]);
    app.push(&event(&fans[1], "CLICK", Some("MAKEUP"), now())).await;
    app.run_pending_jobs().await;
    assert!(tags_of(&app, &fans[1]).await.contains(&"兴趣/彩妆".to_owned()), "the rule now adds the renamed tag");
    assert_eq!(app.count("SELECT count(*) FROM tags").await, 2, "no tag was created under the old path");
    assert!(app.wechat.user_tags(&fans[1]).contains(&wechat_tag));
    let (_, shown) = app.api_get(&format!("/segments/{segment}")).await;
    assert_eq!(shown["expr"], "\"兴趣/彩妆\" AND orders(all) = 0");
    assert_eq!(shown["members"], 2);
    let (_, shown) = app.api_get(&format!("/campaigns/{campaign}")).await;
    assert_eq!(shown["audience"], json!({"tag": "兴趣/彩妆"}));

    let (status, body) =
        app.api_call(reqwest::Method::PATCH, &format!("/tags/{id}"), Some(json!({"path": "活跃/美妆粉"}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("tag_exists")), "{body}");
    let (status, _) =
        app.api_call(reqwest::Method::PATCH, &format!("/tags/{id}"), Some(json!({"path": "a/b/c/d"}))).await;
    assert_eq!(status, 422);
    let (status, _) = app.api_call(reqwest::Method::PATCH, "/tags/999999", Some(json!({"path": "x/y"}))).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .api_call(reqwest::Method::PATCH, &format!("/tags/{id}"), Some(json!({"path": "x/y", "colour": "red"})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.count("SELECT count(*) FROM audit_log WHERE action = 'rename'").await, 1);
}

#[tokio::test]
async fn a_rename_wechat_refuses_is_kept_as_a_dead_job_and_a_busy_wechat_is_asked_again() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(1);
    create_rule(&app, json!({"on": "click", "key": "K", "add": ["活动/双11"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("K"), now())).await;
    app.run_pending_jobs().await;
    let wechat_tag = wechat_id(&app, "活动/双11").await;
    let id: i64 = app.query("SELECT id FROM tags WHERE path = '活动/双11'", &[]).await[0].get(0);
    let at = format!("/tags/{id}");
    let rename = |path: &str| app.api_call(reqwest::Method::PATCH, &at, Some(json!({"path": path})));
    let name_on_wechat = || app.wechat.tags().into_iter().find(|t| t.0 == wechat_tag).map(|t| t.1);

    // -1 (system busy) once: the client asks again and the rename gets through.
    app.wechat.fail_next("/cgi-bin/tags/update", 1, -1);
    assert_eq!(rename("活动/双十一").await.0, 200);
    app.run_pending_jobs().await;
    assert_eq!(name_on_wechat().as_deref(), Some("活动/双十一"));

    // 45157 (the name is taken on WeChat): refused for good, kept as a dead job; the local
    // rename stands and WeChat keeps the old name.
    app.wechat.fail_next("/cgi-bin/tags/update", 1, 45157);
    assert_eq!(rename("活动/大促").await.0, 200);
    app.run_pending_jobs().await;
    assert_eq!(name_on_wechat().as_deref(), Some("活动/双十一"));
    let jobs = app
        .query("SELECT state, coalesce(last_error, '') FROM jobs WHERE kind = 'rename_wechat_tag' ORDER BY id", &[])
        .await;
    let jobs: Vec<(String, String)> = jobs.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert_eq!(jobs[0].0, "done");
    assert!(jobs[1].0 == "dead" && jobs[1].1.contains("45157"), "{jobs:?}");
    assert_eq!(tags_of(&app, &fans[0]).await, ["活动/大促"]);
}

#[tokio::test]
async fn self_service_commands_list_and_delete_a_followers_tags() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(1);
    let fan = &fans[0];
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲", "兴趣/乙"]})).await;
    assert_eq!(app.push_for_reply(&text_message(fan, "我的标签", 1)).await, "你目前还没有标签。");
    app.push(&event(fan, "CLICK", Some("A"), now())).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(fan).len(), 2);
    let listed = app.push_for_reply(&text_message(fan, "我的标签", 2)).await;
    assert!(listed.starts_with("你的标签：兴趣/乙、兴趣/甲"), "{listed}");
    let reply = app.push_for_reply(&text_message(fan, "删除我的标签", 3)).await;
    assert!(reply.starts_with("已删除你的全部 2 个标签（含微信端标签）。"), "{reply}");
    assert!(reply.contains("不再根据你的互动和留言推测") && reply.contains("回复「允许推测」可恢复"), "{reply}");
    assert!(tags_of(&app, fan).await.is_empty());
    app.run_pending_jobs().await;
    assert!(app.wechat.user_tags(fan).is_empty(), "removed on WeChat too");
}

#[tokio::test]
async fn erasing_a_follower_removes_their_data_and_their_wechat_tags() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(2);
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    for fan in &fans {
        app.push(&event(fan, "CLICK", Some("A"), now())).await;
    }
    app.run_pending_jobs().await;
    assert_eq!(app.api_delete(&format!("/users/{}", fans[0])).await.0, 204);
    assert_eq!(app.api_get(&format!("/users/{}", fans[0])).await.0, 404);
    for table in ["followers", "events", "follower_tags"] {
        let n = app.count(&format!("SELECT count(*) FROM {table} WHERE openid = '{}'", fans[0])).await;
        assert_eq!(n, 0, "{table}");
    }
    app.run_pending_jobs().await;
    assert!(app.wechat.user_tags(&fans[0]).is_empty());
    assert_eq!(app.wechat.user_tags(&fans[1]).len(), 1, "others untouched");
    assert_eq!(app.api_delete("/users/o_never_seen").await.0, 404);
}

#[tokio::test]
async fn unsubscribing_keeps_tags_locally_and_a_returning_follower_gets_them_back_on_wechat() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(1);
    let fan = &fans[0];
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    let t = now();
    app.push(&event(fan, "CLICK", Some("A"), t - 30)).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(fan).len(), 1);

    app.wechat.unsubscribe(fan);
    app.push(&event(fan, "unsubscribe", None, t - 20)).await;
    let (_, user) = app.api_get(&format!("/users/{fan}")).await;
    assert_eq!(user["subscribed"], false);
    assert_eq!(user["tags"], json!(["兴趣/甲"]), "kept locally");
    app.run_pending_jobs().await;
    assert!(app.wechat.user_tags(fan).is_empty());

    app.wechat.add_follower(fan);
    app.push(&event(fan, "subscribe", None, t - 10)).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(fan), [wechat_id(&app, "兴趣/甲").await], "back on WeChat");
}

#[tokio::test]
async fn a_quiz_tags_by_score_reasks_invalid_answers_and_lets_followers_leave() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(2);
    let quiz = json!({
        "id": "mini",
        "intro": "两个问题",
        "question": [
            {"text": "出油？", "options": [{"label": "A", "text": "多", "score": {"oily": 2}}, {"label": "B", "text": "少", "score": {"dry": 2}}]},
            {"text": "年龄？", "options": [{"label": "A", "text": "25-30", "add": ["年龄/25-30岁"]}, {"label": "B", "text": "其他"}]}
        ],
        "result": [{"tag": "肤质/油性", "score": "oily", "min": 2}, {"tag": "肤质/干性", "score": "dry", "min": 2}]
    });
    let (status, body) = app.api_post("/quizzes", quiz).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.api_post("/quizzes", json!({"id": "bad id", "question": []})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_quiz")), "{body}");
    let (status, body) = app.api_post("/rules", json!({"on": "click", "key": "Q", "start_quiz": "nope"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("unknown_quiz")), "{body}");
    create_rule(&app, json!({"on": "click", "key": "Q", "start_quiz": "mini"})).await;

    let fan = &fans[0];
    let first = app.push_for_reply(&event(fan, "CLICK", Some("Q"), now())).await;
    assert!(first.starts_with("两个问题\n（1/2）出油？"), "{first}");
    let reask = app.push_for_reply(&text_message(fan, "C", 1)).await;
    assert!(reask.starts_with("请回复 A/B 中的一个选项。"), "{reask}");
    assert!(app.push_for_reply(&text_message(fan, "a", 2)).await.starts_with("（2/2）年龄？"));
    let last = app.push_for_reply(&text_message(fan, "A", 3)).await;
    assert_eq!(last, "测验完成！你的标签：年龄/25-30岁、肤质/油性");
    assert_eq!(tags_of(&app, fan).await, ["年龄/25-30岁", "肤质/油性"]);
    assert_eq!(app.count("SELECT count(*) FROM quiz_answers").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM quiz_sessions").await, 0);
    // After the quiz, text is text again.
    assert_eq!(app.push_for_reply(&text_message(fan, "A", 4)).await, "");

    let other = &fans[1];
    app.push(&event(other, "CLICK", Some("Q"), now())).await;
    app.push(&text_message(other, "B", 10)).await;
    assert_eq!(app.push_for_reply(&text_message(other, "退出", 11)).await, "已退出测验，随时可以重新开始。");
    assert!(tags_of(&app, other).await.is_empty());
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(fan).len(), 2);
}

#[tokio::test]
async fn pending_changes_survive_a_killed_server_and_reach_wechat_exactly_once() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(30);
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    // An instance that takes pushes but runs no workers, killed with its outbox full.
    let web_only = app.another_instance("web").await;
    let t = now();
    for fan in &fans {
        let response =
            app.post_to(&web_only.address, &app.signed_query(now(), fan), event(fan, "CLICK", Some("A"), t)).await;
        assert_eq!(response.status(), 200);
    }
    web_only.kill().await;
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox").await, 30);
    assert!(batch_calls(&app, "/cgi-bin/tags/members/batchtagging").is_empty());

    // After the restart, two servers' background workers drain it side by side.
    let restarted = app.another_instance("worker").await;
    let other = app.another_instance("worker").await;
    let started = std::time::Instant::now();
    while app.count("SELECT count(*) FROM tag_outbox").await > 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the workers never drained the outbox");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for call in batch_calls(&app, "/cgi-bin/tags/members/batchtagging") {
        for openid in call["openid_list"].as_array().expect("list") {
            *seen.entry(openid.as_str().expect("openid").to_owned()).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), 30);
    assert!(seen.values().all(|n| *n == 1), "a change sent twice: {seen:?}");
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox").await, 0);
    restarted.kill().await;
    other.kill().await;
}

/// A worker killed mid-round must not sit on its claimed changes for the whole lease (a minute):
/// its session ended with it, and the next round takes the changes over.
#[tokio::test]
async fn changes_claimed_by_a_worker_whose_session_died_are_sent_at_once_and_once() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(5);
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    for fan in &fans {
        assert_eq!(app.push(&event(fan, "CLICK", Some("A"), now())).await.status(), 200);
    }
    app.settle().await;
    let settings = &app.settings;
    let pool = tagcast::store::connect_pool(&settings.database_url, 1).await.expect("pool");
    let session = pool.get().await.expect("session");
    let claimed =
        tagcast::store::outbox::claim_due(&session, 100, std::time::Duration::from_secs(60)).await.expect("claim");
    assert_eq!(claimed.len(), 5);

    // While the claimer's session lives, its claim holds.
    app.run_pending_jobs().await;
    assert!(batch_calls(&app, "/cgi-bin/tags/members/batchtagging").is_empty());

    // The claimer dies (its connection goes with its process).
    drop(deadpool_postgres::Object::take(session));
    let started = std::time::Instant::now();
    while app.count("SELECT count(*) FROM tag_outbox").await > 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the dead worker's claim still holds");
        app.run_pending_jobs().await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent: Vec<String> = batch_calls(&app, "/cgi-bin/tags/members/batchtagging")
        .iter()
        .flat_map(|c| c["openid_list"].as_array().cloned().unwrap_or_default())
        .map(|o| o.as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(sent.len(), 5, "each change sent once: {sent:?}");
}

#[tokio::test]
async fn the_reconciler_repairs_drift_between_tagcast_and_wechat() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(3);
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("A"), now())).await;
    app.push(&event(&fans[1], "CLICK", Some("A"), now())).await;
    app.run_pending_jobs().await;
    let wechat_tag = wechat_id(&app, "兴趣/甲").await;
    // Someone edits tags in WeChat's console: fan 0 loses it, fan 2 gains it.
    app.api.batch_untag(wechat_tag, &fans[..1]).await.expect("untag");
    app.api.batch_tag(wechat_tag, &fans[2..3]).await.expect("tag");

    let report = tagcast::jobs::reconcile_tags::reconcile(&app.jobs).await.expect("reconcile");
    assert_eq!((report.tags_checked, report.added, report.removed), (1, 1, 1));
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[0]), [wechat_tag]);
    assert!(app.wechat.user_tags(&fans[2]).is_empty());
    let again = tagcast::jobs::reconcile_tags::reconcile(&app.jobs).await.expect("reconcile");
    assert_eq!((again.added, again.removed), (0, 0), "in step now");
}

#[tokio::test]
async fn wechat_failures_are_retried_and_a_tag_is_created_before_first_use() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(2);
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("A"), now())).await;
    // WeChat right after creating a tag may not know it yet.
    app.wechat.fail_next("/cgi-bin/tags/members/batchtagging", 1, 45159);
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[0]).len(), 1);
    assert_eq!(batch_calls(&app, "/cgi-bin/tags/create").len(), 1);

    // A longer outage: the change waits for its retry, nothing is lost.
    app.push(&event(&fans[1], "CLICK", Some("A"), now())).await;
    app.wechat.fail_next_http("/cgi-bin/tags/members/batchtagging", 50, 503);
    app.run_pending_jobs().await;
    let row = app.query("SELECT attempts, state, last_error FROM tag_outbox", &[]).await;
    assert_eq!(row.len(), 1);
    assert_eq!(row[0].get::<_, i32>(0), 1);
    assert_eq!(row[0].get::<_, String>(1), "pending");
    app.wechat.clear_failures("/cgi-bin/tags/members/batchtagging");
    app.query("UPDATE tag_outbox SET run_at = now()", &[]).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[1]).len(), 1);
}

/// While WeChat is down, a round asks to create one new tag, not each: every ask spends the
/// client's whole retry budget. The other new tags' changes wait for their retry all the same.
#[tokio::test]
async fn a_wechat_outage_costs_one_failed_tag_creation_per_round_not_one_per_new_tag() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(3);
    for (key, path) in [("A", "兴趣/甲"), ("B", "兴趣/乙"), ("C", "兴趣/丙")] {
        create_rule(&app, json!({"on": "click", "key": key, "add": [path]})).await;
    }
    for (fan, key) in fans.iter().zip(["A", "B", "C"]) {
        app.push(&event(fan, "CLICK", Some(key), now())).await;
    }
    app.wechat.fail_next_http("/cgi-bin/tags/create", 1_000, 503);
    app.run_pending_jobs().await;
    let asked: Vec<String> = app
        .wechat
        .calls()
        .into_iter()
        .filter(|c| c.path == "/cgi-bin/tags/create")
        .map(|c| c.body["tag"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(!asked.is_empty());
    assert!(asked.iter().all(|name| *name == asked[0]), "only one tag was asked for: {asked:?}");
    let rows =
        app.query("SELECT attempts, state, waits_on_wechat, last_error FROM tag_outbox ORDER BY openid", &[]).await;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!((row.get::<_, i32>(0), row.get::<_, &str>(1), row.get::<_, bool>(2)), (1, "pending", true));
        assert!(row.get::<_, &str>(3).starts_with("creating the WeChat tag"), "{:?}", row.get::<_, &str>(3));
    }

    app.wechat.clear_failures("/cgi-bin/tags/create");
    app.query("UPDATE tag_outbox SET run_at = now()", &[]).await;
    app.run_pending_jobs().await;
    for fan in &fans {
        assert_eq!(app.wechat.user_tags(fan).len(), 1, "every change arrives once WeChat is back");
    }
}

/// While WeChat is down, a round makes the calls it starts at once (8), and reschedules the rest
/// without making them; every change still arrives once WeChat is back.
#[tokio::test]
async fn a_wechat_outage_costs_the_calls_in_flight_not_one_per_batch_of_fifty() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(451);
    create_rule(&app, json!({"on": "click", "key": "VIP_CENTER", "add": ["兴趣/会员"]})).await;
    app.push(&event(&fans[450], "CLICK", Some("VIP_CENTER"), now())).await;
    app.run_pending_jobs().await;
    let pushes: Vec<String> = fans[..450].iter().map(|f| event(f, "CLICK", Some("VIP_CENTER"), now())).collect();
    for chunk in pushes.chunks(50) {
        join_all(chunk.iter().map(|xml| app.push(xml))).await;
    }
    app.wechat.fail_next_http("/cgi-bin/tags/members/batchtagging", 10_000, 503);
    app.run_pending_jobs().await;
    let lists: std::collections::HashSet<String> = app
        .wechat
        .calls()
        .into_iter()
        .filter(|c| c.path == "/cgi-bin/tags/members/batchtagging" && c.errcode != 0)
        .map(|c| c.body["openid_list"].to_string())
        .collect();
    assert_eq!(lists.len(), 8, "nine batches of 50: the eight in flight were tried, the ninth was not");
    let waiting =
        app.count("SELECT count(*) FROM tag_outbox WHERE attempts = 1 AND waits_on_wechat AND state = 'pending'").await;
    assert_eq!(waiting, 450);

    app.wechat.clear_failures("/cgi-bin/tags/members/batchtagging");
    app.query("UPDATE tag_outbox SET run_at = now()", &[]).await;
    app.run_pending_jobs().await;
    assert_eq!(app.count("SELECT count(*) FROM tag_outbox").await, 0);
    assert!(fans.iter().all(|f| app.wechat.user_tags(f).len() == 1), "every change arrived");
}

/// After a long outage the failed changes' backoff has grown to minutes; the first call WeChat
/// answers again pulls them forward, except a change that has failed too often in a row.
#[tokio::test]
async fn changes_held_back_by_a_wechat_outage_go_out_once_wechat_answers_again() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(4);
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    app.push(&event(&fans[0], "CLICK", Some("A"), now())).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[0]).len(), 1);

    app.wechat.fail_next_http("/cgi-bin/tags/members/batchtagging", 50, 503);
    app.push(&event(&fans[1], "CLICK", Some("A"), now())).await;
    app.push(&event(&fans[2], "CLICK", Some("A"), now())).await;
    app.run_pending_jobs().await;
    let waiting: i64 = app.query("SELECT count(*) FROM tag_outbox WHERE waits_on_wechat", &[]).await[0].get(0);
    assert_eq!(waiting, 2, "both failed on WeChat's trouble");
    // As after a long outage: backoffs of a minute and more.
    app.query("UPDATE tag_outbox SET attempts = 6, run_at = now() + interval '1 hour' WHERE openid = $1", &[&fans[1]])
        .await;
    app.query("UPDATE tag_outbox SET attempts = 9, run_at = now() + interval '1 hour' WHERE openid = $1", &[&fans[2]])
        .await;
    app.wechat.clear_failures("/cgi-bin/tags/members/batchtagging");

    app.push(&event(&fans[3], "CLICK", Some("A"), now())).await;
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[3]).len(), 1);
    assert_eq!(app.wechat.user_tags(&fans[1]).len(), 1, "pulled forward once WeChat answered");
    assert!(app.wechat.user_tags(&fans[2]).is_empty(), "nine failures in a row: it keeps its backoff");
    let left: Vec<String> = app.query("SELECT openid FROM tag_outbox", &[]).await.iter().map(|r| r.get(0)).collect();
    assert_eq!(left, vec![fans[2].clone()]);
}

#[tokio::test]
async fn a_follower_at_wechats_twenty_tags_does_not_hold_up_the_batch() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(3);
    // Fan 0 already carries 20 tags on WeChat (made in the console).
    for i in 0..20 {
        let id = app.wechat.create_tag(&format!("控制台{i}")).expect("tag");
        app.wechat.tag_followers(id, &fans[..1]);
    }
    create_rule(&app, json!({"on": "click", "key": "A", "add": ["兴趣/甲"]})).await;
    let t = now();
    for fan in &fans {
        app.push(&event(fan, "CLICK", Some("A"), t)).await;
    }
    app.run_pending_jobs().await;
    assert_eq!(app.wechat.user_tags(&fans[1]).len(), 1);
    assert_eq!(app.wechat.user_tags(&fans[2]).len(), 1);
    assert_eq!(app.wechat.user_tags(&fans[0]).len(), 20);
    let dead = app.query("SELECT openid, last_error FROM tag_outbox WHERE state = 'dead'", &[]).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].get::<_, String>(0), fans[0]);
    assert!(dead[0].get::<_, String>(1).contains("45059"), "{}", dead[0].get::<_, String>(1));
    assert_eq!(tags_of(&app, &fans[0]).await, ["兴趣/甲"], "kept locally");
}

#[tokio::test]
async fn an_abandoned_quiz_expires_and_its_follower_is_free_again() {
    let app = spawn_app().await;
    let fans = app.wechat.seed_followers(1);
    let quiz = json!({
        "id": "q1",
        "question": [{"text": "选一个", "options": [{"label": "A", "text": "甲", "add": ["测验/甲"]}, {"label": "B", "text": "乙"}]}]
    });
    assert_eq!(app.api_post("/quizzes", quiz).await.0, 201);
    create_rule(&app, json!({"on": "click", "key": "Q", "start_quiz": "q1"})).await;
    create_rule(&app, json!({"on": "keyword", "key": "A", "reply": "关键词 A"})).await;
    app.push(&event(&fans[0], "CLICK", Some("Q"), now())).await;
    // Left alone longer than TAGCAST_QUIZ_EXPIRY_MINS (30 by default).
    app.query("UPDATE quiz_sessions SET updated_at = now() - interval '31 minutes'", &[]).await;
    assert_eq!(app.push_for_reply(&text_message(&fans[0], "A", 1)).await, "关键词 A", "the answer is plain text again");
    assert!(tags_of(&app, &fans[0]).await.is_empty());
    // The workers' sweep removes the stale session.
    app.run_pending_jobs().await;
    assert_eq!(app.count("SELECT count(*) FROM quiz_sessions").await, 0);
}
