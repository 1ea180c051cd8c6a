//! The project's own sample pushes (`tests/fixtures/pushes`, written from wechat-api.md §3, §4
//! and §9.8): one per modelled kind plus an unknown one, each parsed to the exact [`Message`]
//! this table expects. They run in every checkout, with or without `../shared`.

use std::collections::BTreeSet;

use super::*;
use crate::wechat::test_data;

const GH: &str = "gh_7a3c9e51b2d4";
const OPENID: &str = "oTgC5s1ample_Fol1ower_0001x";
const AT: i64 = 1_767_225_600;

/// Every sample is from [`OPENID`] to [`GH`] at [`AT`]; only the body differs.
fn sample(body: Inbound) -> Message {
    msg(GH, OPENID, AT, body)
}

/// `(file, message, dedupe key)` for every file in `tests/fixtures/pushes`.
pub(super) fn own_expectations() -> Vec<(&'static str, Message, String)> {
    let event_key = |event: &str| format!("e:{OPENID}:{AT}:{event}");
    let text = |content: &str, msg_id: u64| Inbound::Text {
        content: s(content),
        msg_id: Some(msg_id),
        msg_data_id: None,
        idx: None,
    };
    vec![
        ("text.xml", sample(text("我的标签", 24817350291845120)), s("m:24817350291845120")),
        (
            "text_from_article.xml",
            sample(Inbound::Text {
                content: s("留言：写得好 <b>"),
                msg_id: Some(24817350291845121),
                msg_data_id: Some(s("2247483650")),
                idx: Some(s("2")),
            }),
            s("m:24817350291845121"),
        ),
        (
            "image.xml",
            sample(Inbound::Image {
                pic_url: s("http://mmbiz.qpic.cn/sample/pic_0001"),
                media_id: Some(s("MEDIA_image_0001")),
                msg_id: Some(24817350291845122),
            }),
            s("m:24817350291845122"),
        ),
        (
            "voice.xml",
            sample(Inbound::Voice {
                media_id: s("MEDIA_voice_0001"),
                format: Some(s("amr")),
                recognition: None,
                msg_id: Some(24817350291845123),
            }),
            s("m:24817350291845123"),
        ),
        (
            "voice_recognition.xml",
            sample(Inbound::Voice {
                media_id: s("MEDIA_voice_0002"),
                format: Some(s("speex")),
                recognition: Some(s("查看我的标签")),
                msg_id: Some(24817350291845124),
            }),
            s("m:24817350291845124"),
        ),
        (
            "video.xml",
            sample(Inbound::Video {
                media_id: s("MEDIA_video_0001"),
                thumb_media_id: Some(s("MEDIA_thumb_0001")),
                msg_id: Some(24817350291845125),
            }),
            s("m:24817350291845125"),
        ),
        (
            "shortvideo.xml",
            sample(Inbound::ShortVideo {
                media_id: s("MEDIA_short_0001"),
                thumb_media_id: Some(s("MEDIA_thumb_0002")),
                msg_id: Some(24817350291845126),
            }),
            s("m:24817350291845126"),
        ),
        (
            "location.xml",
            sample(Inbound::Location {
                latitude: 31.230416,
                longitude: 121.473701,
                scale: Some(16),
                label: s("上海市黄浦区人民大道"),
                msg_id: Some(24817350291845127),
            }),
            s("m:24817350291845127"),
        ),
        (
            "link.xml",
            sample(Inbound::Link {
                title: Some(s("一篇文章")),
                description: Some(s("文章摘要")),
                url: s("https://mp.weixin.qq.com/s/sample_article_0001"),
                msg_id: Some(24817350291845128),
            }),
            s("m:24817350291845128"),
        ),
        (
            "event_subscribe.xml",
            sample(Inbound::Subscribe { event_key: None, scene: None, ticket: None }),
            event_key("subscribe"),
        ),
        (
            "event_subscribe_qrscene.xml",
            sample(Inbound::Subscribe {
                event_key: Some(s("qrscene_spring_fair")),
                scene: Some(s("spring_fair")),
                ticket: Some(s("gQsample_ticket_0001")),
            }),
            event_key("subscribe"),
        ),
        ("event_unsubscribe.xml", sample(Inbound::Unsubscribe), event_key("unsubscribe")),
        (
            "event_scan.xml",
            sample(Inbound::Scan { scene: s("4021"), ticket: Some(s("gQsample_ticket_0002")) }),
            event_key("SCAN"),
        ),
        (
            "event_location.xml",
            sample(Inbound::LocationReport { latitude: 39.908823, longitude: 116.39747, precision: Some(65.0) }),
            event_key("LOCATION"),
        ),
        ("event_click.xml", sample(Inbound::Click { key: s("MENU_MY_TAGS") }), event_key("CLICK")),
        (
            "event_view.xml",
            sample(Inbound::View { url: s("https://example.com/shop?from=menu&id=7"), menu_id: Some(s("419")) }),
            event_key("VIEW"),
        ),
        (
            "event_scancode_push.xml",
            sample(Inbound::ScanCodePush {
                key: s("MENU_SCAN"),
                scan_type: Some(s("qrcode")),
                scan_result: s("https://example.com/coupon/88"),
            }),
            event_key("scancode_push"),
        ),
        (
            "event_scancode_waitmsg.xml",
            sample(Inbound::ScanCodeWaitMsg {
                key: s("MENU_SCAN_WAIT"),
                scan_type: Some(s("barcode")),
                scan_result: s("EAN_13,6901234567892"),
            }),
            event_key("scancode_waitmsg"),
        ),
        (
            "event_pic_sysphoto.xml",
            sample(Inbound::PicSysPhoto { key: s("MENU_PHOTO"), pics: vec![s("9b2f4c1e7a5d3b6c8e0f1a2b3c4d5e6f")] }),
            event_key("pic_sysphoto"),
        ),
        (
            "event_pic_photo_or_album.xml",
            sample(Inbound::PicPhotoOrAlbum {
                key: s("MENU_ALBUM"),
                pics: vec![s("0f1e2d3c4b5a69788796a5b4c3d2e1f0"), s("11223344556677889900aabbccddeeff")],
            }),
            event_key("pic_photo_or_album"),
        ),
        (
            "event_pic_weixin.xml",
            sample(Inbound::PicWeixin { key: s("MENU_WEIXIN_ALBUM"), pics: vec![] }),
            event_key("pic_weixin"),
        ),
        (
            "event_location_select.xml",
            sample(Inbound::LocationSelect {
                key: s("MENU_WHERE"),
                latitude: 22.543099,
                longitude: 114.057868,
                scale: Some(15),
                label: s(" 深圳市福田区"),
                poiname: s(""),
            }),
            event_key("location_select"),
        ),
        (
            "event_view_miniprogram.xml",
            sample(Inbound::ViewMiniProgram { page_path: s("pages/index/index"), menu_id: Some(s("420")) }),
            event_key("view_miniprogram"),
        ),
        (
            "event_masssendjobfinish.xml",
            sample(Inbound::MassSendJobFinish {
                msg_id: 3147483652,
                status: s("send success"),
                total_count: 120,
                filter_count: 118,
                sent_count: 117,
                error_count: 1,
                copyright_check_state: Some(1),
                copyright_items: vec![],
                article_urls: vec![
                    ArticleUrl { idx: Some(1), url: s("https://mp.weixin.qq.com/s/sample_mass_1") },
                    ArticleUrl { idx: Some(2), url: s("https://mp.weixin.qq.com/s/sample_mass_2") },
                ],
            }),
            format!("{}:3147483652", event_key("MASSSENDJOBFINISH")),
        ),
        (
            "event_masssendjobfinish_refused.xml",
            sample(Inbound::MassSendJobFinish {
                msg_id: 3147483653,
                status: s("err(30003)"),
                total_count: 0,
                filter_count: 0,
                sent_count: 0,
                error_count: 0,
                copyright_check_state: None,
                copyright_items: vec![],
                article_urls: vec![],
            }),
            format!("{}:3147483653", event_key("MASSSENDJOBFINISH")),
        ),
        (
            "event_templatesendjobfinish.xml",
            sample(Inbound::TemplateSendJobFinish { msg_id: 3147483654, status: s("failed: system failed") }),
            format!("{}:3147483654", event_key("TEMPLATESENDJOBFINISH")),
        ),
        (
            "event_subscribe_msg_popup_event.xml",
            sample(Inbound::SubscribeMsgPopup {
                items: vec![
                    SubscribeMsgPopupItem {
                        template_id: s("TPL_sample_order_shipped"),
                        status: s("accept"),
                        popup_scene: Some(2),
                    },
                    SubscribeMsgPopupItem {
                        template_id: s("TPL_sample_weekly_digest"),
                        status: s("reject"),
                        popup_scene: Some(2),
                    },
                ],
            }),
            event_key("subscribe_msg_popup_event"),
        ),
        (
            "event_subscribe_msg_change_event.xml",
            sample(Inbound::SubscribeMsgChange {
                items: vec![SubscribeMsgChangeItem { template_id: s("TPL_sample_weekly_digest"), status: s("reject") }],
            }),
            event_key("subscribe_msg_change_event"),
        ),
        (
            "event_subscribe_msg_sent_event.xml",
            sample(Inbound::SubscribeMsgSent {
                items: vec![SubscribeMsgSentItem {
                    template_id: s("TPL_sample_order_shipped"),
                    msg_id: Some(3147483655),
                    error_code: Some(0),
                    error_status: Some(s("success")),
                }],
            }),
            event_key("subscribe_msg_sent_event"),
        ),
        (
            "event_freepublishjobfinish.xml",
            sample(Inbound::FreePublishJobFinish {
                publish_id: s("2247483711"),
                publish_status: 2,
                article_id: None,
                articles: vec![],
                fail_idx: vec![1, 3],
            }),
            event_key("FREEPUBLISHJOBFINISH"),
        ),
        (
            "event_freepublishjobfinish_published.xml",
            sample(Inbound::FreePublishJobFinish {
                publish_id: s("2247483712"),
                publish_status: 0,
                article_id: Some(s("sample_article_id_0001")),
                articles: vec![ArticleUrl { idx: Some(1), url: s("https://mp.weixin.qq.com/s/sample_published_1") }],
                fail_idx: vec![],
            }),
            event_key("FREEPUBLISHJOBFINISH"),
        ),
        (
            "unknown_file.xml",
            sample(Inbound::Unknown {
                msg_type: s("file"),
                event: None,
                fields: [
                    ("ToUserName", GH),
                    ("FromUserName", OPENID),
                    ("CreateTime", "1767225600"),
                    ("MsgType", "file"),
                    ("Title", "报名表.xlsx"),
                    ("Description", ""),
                    ("FileKey", "sample_file_key"),
                    ("FileMd5", "5d41402abc4b2a76b9719d911017c592"),
                    ("FileTotalLen", "24576"),
                    ("MsgId", "24817350291845129"),
                ]
                .into_iter()
                .map(|(path, value)| (s(path), s(value)))
                .collect(),
            }),
            s("m:24817350291845129"),
        ),
    ]
}

#[test]
fn every_own_sample_parses_to_its_expected_message() {
    for (file, expected, dedupe_key) in own_expectations() {
        let xml = test_data::project_fixture(&format!("pushes/{file}"));
        let parsed = parse(&xml).unwrap_or_else(|err| panic!("{file}: {err:?}"));
        assert_eq!(parsed, expected, "{file}");
        assert_eq!(parsed.dedupe_key(), dedupe_key, "{file}");
    }
}

#[test]
fn the_own_table_covers_every_sample_and_every_kind() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(test_data::project_path("pushes"))
        .expect("tests/fixtures/pushes is readable")
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".xml"))
        .collect();
    let table = own_expectations();
    let covered: BTreeSet<String> = table.iter().map(|(file, _, _)| (*file).to_owned()).collect();
    assert_eq!(on_disk, covered);
    let kinds: BTreeSet<&str> = table.iter().map(|(_, message, _)| message.kind()).collect();
    // 26 modelled kinds + unknown.
    assert_eq!(kinds.len(), 27, "{kinds:?}");
}

#[test]
fn a_compat_mode_body_yields_both_its_envelope_and_its_plaintext_push() {
    let body = test_data::project_fixture("crypto/compat_mode_click.xml");
    let vector: serde_json::Value =
        serde_json::from_str(&test_data::project_fixture("crypto/safe_mode_click.json")).expect("JSON");
    let envelope = parse_envelope(&body).unwrap();
    assert_eq!(envelope.to_user.as_deref(), Some(GH));
    assert_eq!(envelope.encrypt.as_deref(), vector["encrypt"].as_str());
    assert_eq!(parse(&body).unwrap(), sample(Inbound::Click { key: s("MENU_MY_TAGS") }));
}

#[test]
fn plain_samples_have_no_envelope_ciphertext() {
    let envelope = parse_envelope(&test_data::project_fixture("pushes/text.xml")).unwrap();
    assert_eq!(envelope, Envelope { to_user: Some(s(GH)), encrypt: None });
}
