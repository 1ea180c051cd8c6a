//! The mock's draft box and materials over HTTP (issue 18): uploads with WeChat's types and
//! sizes, drafts with their article limits and paging, mpnews sends that must name a draft,
//! one published article per draft article, and `mass/delete` by `article_idx`.

use std::time::Duration;

use serde_json::{Value, json};
use tagcast::mock_wechat::{MassStatus, MockWeChat, RunningMock};

const APPID: &str = "wxmedia000000001";
const SECRET: &str = "mediasecret";

struct Mock {
    mock: MockWeChat,
    running: RunningMock,
    http: reqwest::Client,
    token: String,
}

impl Mock {
    async fn start() -> Self {
        let (mock, running) = crate::support::mock_api::start_service_mock(APPID, SECRET);
        let mut m = Self { mock, running, http: reqwest::Client::new(), token: String::new() };
        m.renew_token().await;
        m
    }

    /// A new token (the old one expires when the mock's clock is moved on).
    async fn renew_token(&mut self) {
        let url =
            format!("{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}", self.running.url());
        let answer: Value = self.http.get(url).send().await.unwrap().json().await.unwrap();
        self.token = answer["access_token"].as_str().expect("a token").to_owned();
    }

    fn url(&self, path: &str, query: &str) -> String {
        format!("{}{path}?access_token={}{query}", self.running.url(), self.token)
    }

    async fn call(&self, path: &str, body: Value) -> Value {
        self.http.post(self.url(path, "")).json(&body).send().await.unwrap().json().await.unwrap()
    }

    /// A multipart upload the way WeChat's SDKs send it: the file in `media`, plus text fields.
    async fn upload(&self, path: &str, kind: &str, filename: &str, size: usize, fields: &[(&str, &str)]) -> Value {
        let boundary = "----tagcastBoundary7MA4YWxk";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        if !filename.is_empty() {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend(std::iter::repeat_n(0xffu8, size));
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.http
            .post(self.url(path, &format!("&type={kind}")))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn thumb(&self) -> String {
        let answer = self.upload("/cgi-bin/material/add_material", "thumb", "cover.jpg", 1000, &[]).await;
        answer["media_id"].as_str().unwrap_or_else(|| panic!("thumb stored: {answer}")).to_owned()
    }
}

fn errcode(answer: &Value) -> i64 {
    answer.get("errcode").and_then(Value::as_i64).unwrap_or(0)
}

fn article(title: &str, thumb: &str) -> Value {
    json!({"title": title, "author": "编辑部", "content": "<p>正文</p>", "thumb_media_id": thumb})
}

#[tokio::test]
async fn uploads_are_held_to_wechats_media_types_and_sizes() {
    let m = Mock::start().await;
    let material = "/cgi-bin/material/add_material";
    let cases: &[(&str, &str, &str, usize, i64)] = &[
        ("/cgi-bin/media/upload", "news", "a.jpg", 10, 40004),
        ("/cgi-bin/media/upload", "image", "a.txt", 10, 40005),
        ("/cgi-bin/media/upload", "image", "a.jpg", (10 << 20) + 1, 40006),
        ("/cgi-bin/media/upload", "voice", "a.mp3", (2 << 20) + 1, 40006),
        ("/cgi-bin/media/upload", "image", "", 0, 41005),
        (material, "thumb", "a.png", 10, 40005),
        (material, "thumb", "a.jpg", (64 << 10) + 1, 40006),
        (material, "video", "a.avi", 10, 40005),
        (material, "video", "a.mp4", 10, 40035),
        ("/cgi-bin/media/uploadimg", "", "a.gif", 10, 40005),
        ("/cgi-bin/media/uploadimg", "", "a.png", 1 << 20, 40006),
    ];
    for (path, kind, file, size, code) in cases {
        let answer = m.upload(path, kind, file, *size, &[]).await;
        assert_eq!(errcode(&answer), *code, "{path} {kind} {file} {size}: {answer}");
    }
    let temp = m.upload("/cgi-bin/media/upload", "thumb", "t.jpg", 64 << 10, &[]).await;
    assert_eq!((errcode(&temp), temp["type"].as_str()), (0, Some("thumb")), "{temp}");
    assert!(temp["thumb_media_id"].is_string(), "{temp}");
    let body_image = m.upload("/cgi-bin/media/uploadimg", "", "b.png", (1 << 20) - 1, &[]).await;
    assert!(body_image["url"].as_str().is_some_and(|u| u.starts_with("http")), "{body_image}");
    let video =
        m.upload(material, "video", "v.mp4", 100, &[("description", r#"{"title":"开箱","introduction":"x"}"#)]).await;
    assert!(video["media_id"].is_string(), "{video}");
    let image = m.upload(material, "image", "i.png", 100, &[]).await;
    assert!(image["url"].is_string(), "an image material has a url: {image}");

    // Temporary media and body images are no materials.
    let count = m.http.get(m.url("/cgi-bin/material/get_materialcount", "")).send().await.unwrap();
    let count: Value = count.json().await.unwrap();
    assert_eq!(count, json!({"voice_count": 0, "video_count": 1, "image_count": 1, "news_count": 0}));
    let listed =
        m.call("/cgi-bin/material/batchget_material", json!({"type": "image", "offset": 0, "count": 20})).await;
    assert_eq!(
        (listed["total_count"].as_u64(), listed["item"][0]["media_id"].clone()),
        (Some(1), image["media_id"].clone())
    );
    for page in [json!({"type": "image", "offset": 0, "count": 21}), json!({"type": "image", "offset": -1, "count": 5})]
    {
        assert_eq!(errcode(&m.call("/cgi-bin/material/batchget_material", page.clone()).await), 40035, "{page}");
    }
    let not_a_kind = json!({"type": "music", "offset": 0, "count": 5});
    assert_eq!(errcode(&m.call("/cgi-bin/material/batchget_material", not_a_kind).await), 40004);
    // A JSON body is no upload.
    let json_body = m.http.post(m.url(material, "&type=image")).json(&json!({})).send().await.unwrap();
    assert_eq!(errcode(&json_body.json().await.unwrap()), 41005);
}

#[tokio::test]
async fn drafts_need_a_cover_material_at_most_eight_articles_and_page_by_twenty() {
    let m = Mock::start().await;
    let thumb = m.thumb().await;
    let add = |articles: Vec<Value>| m.call("/cgi-bin/draft/add", json!({"articles": articles}));
    assert_eq!(errcode(&add(vec![article("无封面", "MOCK_NOPE")]).await), 40007);
    assert_eq!(errcode(&add(vec![]).await), 40035);
    assert_eq!(errcode(&add(vec![article(&"长".repeat(33), &thumb)]).await), 45003);
    assert_eq!(errcode(&add(vec![json!({"title": "t", "content": "", "thumb_media_id": thumb})]).await), 44004);
    let nine: Vec<Value> = (0..9).map(|i| article(&format!("第{i}篇"), &thumb)).collect();
    assert_eq!(errcode(&add(nine.clone()).await), 45008);
    assert!(m.mock.drafts().is_empty(), "refusals store nothing");

    let eight = add(nine[..8].to_vec()).await;
    let media_id = eight["media_id"].as_str().unwrap_or_else(|| panic!("{eight}")).to_owned();
    let got = m.call("/cgi-bin/draft/get", json!({"media_id": media_id})).await;
    assert_eq!(got["news_item"].as_array().map(Vec::len), Some(8), "{got}");
    assert!(got["news_item"][0]["thumb_url"].as_str().is_some_and(|u| !u.is_empty()), "{got}");

    let update = |index: i64, title: &str| {
        m.call(
            "/cgi-bin/draft/update",
            json!({"media_id": media_id, "index": index, "articles": article(title, &thumb)}),
        )
    };
    assert_eq!(errcode(&update(8, "越界").await), 40035);
    assert_eq!(errcode(&update(7, "改过的第八篇").await), 0);
    assert_eq!(m.mock.drafts()[0].1[7], "改过的第八篇");

    for i in 0..24 {
        m.mock.add_draft(&[&format!("草稿{i}")]);
    }
    let count = m.http.get(m.url("/cgi-bin/draft/count", "")).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(count["total_count"], 25);
    let page = |offset: i64, count: i64| {
        m.call("/cgi-bin/draft/batchget", json!({"offset": offset, "count": count, "no_content": 1}))
    };
    let second = page(20, 20).await;
    assert_eq!((second["total_count"].as_u64(), second["item_count"].as_u64()), (Some(25), Some(5)), "{second}");
    assert!(second["item"][0]["content"]["news_item"][0].get("content").is_none(), "no_content leaves bodies out");
    for (offset, count) in [(0, 0), (0, 21), (-1, 5)] {
        assert_eq!(errcode(&page(offset, count).await), 40035, "offset {offset} count {count}");
    }

    assert_eq!(errcode(&m.call("/cgi-bin/draft/delete", json!({"media_id": media_id})).await), 0);
    assert_eq!(errcode(&m.call("/cgi-bin/draft/get", json!({"media_id": media_id})).await), 40007);
    assert_eq!(errcode(&m.call("/cgi-bin/draft/delete", json!({"media_id": media_id})).await), 40007);
}

#[tokio::test]
async fn an_mpnews_send_must_name_a_draft_and_publishes_each_of_its_articles() {
    let mut m = Mock::start().await;
    let fans = m.mock.seed_followers(200);
    let news =
        |media_id: &str| json!({"filter": {"is_to_all": true}, "msgtype": "mpnews", "mpnews": {"media_id": media_id}});
    assert_eq!(errcode(&m.call("/cgi-bin/message/mass/sendall", news("made-up")).await), 40007);
    let mut to_list = news("made-up");
    to_list.as_object_mut().unwrap().remove("filter");
    to_list["touser"] = json!(fans[..2]);
    assert_eq!(errcode(&m.call("/cgi-bin/message/mass/send", to_list).await), 40007);
    let preview = json!({"touser": fans[0], "msgtype": "mpnews", "mpnews": {"media_id": "made-up"}});
    assert_eq!(errcode(&m.call("/cgi-bin/message/mass/preview", preview).await), 40007);
    assert!(m.mock.mass_jobs().is_empty() && m.mock.previews().is_empty());

    let draft = m.mock.add_draft(&["上新", "护理", "优惠"]);
    let answer = m.call("/cgi-bin/message/mass/sendall", news(&draft)).await;
    assert_eq!(errcode(&answer), 0, "{answer}");
    let (msg_id, data_id) = (answer["msg_id"].as_u64().unwrap(), answer["msg_data_id"].as_u64().unwrap());
    m.mock.wait_for_callbacks().await;
    let job = m.mock.mass_jobs().pop().unwrap();
    assert_eq!(job.articles, ["上新", "护理", "优惠"]);
    assert_eq!(job.article_urls.len(), 3);
    assert!(job.article_urls[2].contains("idx=3"), "{:?}", job.article_urls);

    m.mock.advance_time(Duration::from_secs(86_400));
    m.renew_token().await;
    let day = chrono::DateTime::from_timestamp(m.mock.now() - 86_400 + 8 * 3600, 0).unwrap().format("%Y-%m-%d");
    let range = json!({"begin_date": day.to_string(), "end_date": day.to_string()});
    let detail = m.call("/datacube/getarticletotaldetail", range).await;
    let list = detail["list"].as_array().unwrap_or_else(|| panic!("{detail}"));
    let msgids: Vec<&str> = list.iter().filter_map(|r| r["msgid"].as_str()).collect();
    assert_eq!(msgids, [format!("{data_id}_1"), format!("{data_id}_2"), format!("{data_id}_3")], "{detail}");
    let reads: Vec<u64> =
        detail["list"].as_array().unwrap().iter().map(|r| r["detail_list"][0]["read_user"].as_u64().unwrap()).collect();
    assert!(reads[0] > 0 && reads[1] > 0 && reads[2] > 0, "every article is read: {reads:?}");

    let delete = |idx: i64| m.call("/cgi-bin/message/mass/delete", json!({"msg_id": msg_id, "article_idx": idx}));
    assert_eq!(errcode(&delete(4).await), 40035, "there is no fourth article");
    assert_eq!(errcode(&delete(2).await), 0);
    let job = m.mock.mass_jobs().pop().unwrap();
    assert_eq!((job.deleted_articles.as_slice(), job.status), (&[2][..], MassStatus::SendSuccess));
    let by_url = json!({"url": job.article_urls[0], "article_idx": 0});
    assert_eq!(errcode(&m.call("/cgi-bin/message/mass/delete", by_url).await), 0);
    assert_eq!(m.mock.mass_jobs().pop().unwrap().status, MassStatus::Delete);
    m.running.handle.stop(false).await;
}
