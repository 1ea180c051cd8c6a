//! The official fixtures (`../shared/fixtures`), each parsed to the exact [`Message`] a table
//! expects. Skipped without `../shared` (see `wechat::test_data`); the project's own samples
//! (own_fixtures.rs) cover every kind in any checkout.

use std::collections::BTreeSet;

use super::*;
use crate::wechat::test_data::{read_shared, shared_path};

const VRR: &str = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc";
const COMPAT_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

/// One expectation per fixture file: the whole parsed message, and its dedupe key.
fn fixture_expectations() -> Vec<(&'static str, Message, &'static str)> {
    const MSG_ID: u64 = 1_234_567_890_123_456;
    let pics = |md5: &str| vec![s(md5)];
    vec![
        (
            "text.xml",
            msg(
                "toUser",
                "fromUser",
                1348831860,
                Inbound::Text { content: s("this is a test"), msg_id: Some(MSG_ID), msg_data_id: None, idx: None },
            ),
            "m:1234567890123456",
        ),
        (
            "text_from_article.xml",
            msg(
                "toUser",
                "fromUser",
                1348831860,
                Inbound::Text {
                    content: s("this is a test"),
                    msg_id: Some(MSG_ID),
                    msg_data_id: Some(s("xxxx")),
                    idx: Some(s("xxxx")),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "image.xml",
            msg(
                "toUser",
                "fromUser",
                1348831860,
                Inbound::Image { pic_url: s("this is a url"), media_id: Some(s("media_id")), msg_id: Some(MSG_ID) },
            ),
            "m:1234567890123456",
        ),
        (
            "voice.xml",
            msg(
                "toUser",
                "fromUser",
                1357290913,
                Inbound::Voice {
                    media_id: s("media_id"),
                    format: Some(s("Format")),
                    recognition: None,
                    msg_id: Some(MSG_ID),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "voice_recognition.xml",
            msg(
                "toUser",
                "fromUser",
                1357290913,
                Inbound::Voice {
                    media_id: s("media_id"),
                    format: Some(s("Format")),
                    recognition: Some(s("腾讯微信团队")),
                    msg_id: Some(MSG_ID),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "video.xml",
            msg(
                "toUser",
                "fromUser",
                1357290913,
                Inbound::Video {
                    media_id: s("media_id"),
                    thumb_media_id: Some(s("thumb_media_id")),
                    msg_id: Some(MSG_ID),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "shortvideo.xml",
            msg(
                "toUser",
                "fromUser",
                1357290913,
                Inbound::ShortVideo {
                    media_id: s("media_id"),
                    thumb_media_id: Some(s("thumb_media_id")),
                    msg_id: Some(MSG_ID),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "location.xml",
            msg(
                "toUser",
                "fromUser",
                1351776360,
                Inbound::Location {
                    latitude: 23.134521,
                    longitude: 113.358803,
                    scale: Some(20),
                    label: s("位置信息"),
                    msg_id: Some(MSG_ID),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "link.xml",
            msg(
                "toUser",
                "fromUser",
                1351776360,
                Inbound::Link {
                    title: Some(s("公众平台官网链接")),
                    description: Some(s("公众平台官网链接")),
                    url: s("url"),
                    msg_id: Some(MSG_ID),
                },
            ),
            "m:1234567890123456",
        ),
        (
            "event_subscribe.xml",
            msg("toUser", "FromUser", 123456789, Inbound::Subscribe { event_key: None, scene: None, ticket: None }),
            "e:FromUser:123456789:subscribe",
        ),
        (
            "event_unsubscribe.xml",
            msg("toUser", "FromUser", 123456789, Inbound::Unsubscribe),
            "e:FromUser:123456789:unsubscribe",
        ),
        (
            "event_subscribe_qrscene.xml",
            msg(
                "toUser",
                "FromUser",
                123456789,
                Inbound::Subscribe {
                    event_key: Some(s("qrscene_123123")),
                    scene: Some(s("123123")),
                    ticket: Some(s("TICKET")),
                },
            ),
            "e:FromUser:123456789:subscribe",
        ),
        (
            "event_scan.xml",
            msg("toUser", "FromUser", 123456789, Inbound::Scan { scene: s("SCENE_VALUE"), ticket: Some(s("TICKET")) }),
            "e:FromUser:123456789:SCAN",
        ),
        (
            "event_location.xml",
            msg(
                "toUser",
                "fromUser",
                123456789,
                Inbound::LocationReport { latitude: 23.137466, longitude: 113.352425, precision: Some(119.385040) },
            ),
            "e:fromUser:123456789:LOCATION",
        ),
        (
            "event_click.xml",
            msg("toUser", "FromUser", 123456789, Inbound::Click { key: s("EVENTKEY") }),
            "e:FromUser:123456789:CLICK",
        ),
        (
            "event_view.xml",
            msg("toUser", "FromUser", 123456789, Inbound::View { url: s("www.qq.com"), menu_id: Some(s("MENUID")) }),
            "e:FromUser:123456789:VIEW",
        ),
        (
            "event_scancode_push.xml",
            msg(
                "gh_e136c6e50636",
                "oMgHVjngRipVsoxg6TuX3vz6glDg",
                1408090502,
                Inbound::ScanCodePush { key: s("6"), scan_type: Some(s("qrcode")), scan_result: s("1") },
            ),
            "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090502:scancode_push",
        ),
        (
            "event_scancode_waitmsg.xml",
            msg(
                "gh_e136c6e50636",
                "oMgHVjngRipVsoxg6TuX3vz6glDg",
                1408090606,
                Inbound::ScanCodeWaitMsg { key: s("6"), scan_type: Some(s("qrcode")), scan_result: s("2") },
            ),
            "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090606:scancode_waitmsg",
        ),
        (
            "event_pic_sysphoto.xml",
            msg(
                "gh_e136c6e50636",
                "oMgHVjngRipVsoxg6TuX3vz6glDg",
                1408090651,
                Inbound::PicSysPhoto { key: s("6"), pics: pics("1b5f7c23b5bf75682a53e7b6d163e185") },
            ),
            "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090651:pic_sysphoto",
        ),
        (
            "event_pic_photo_or_album.xml",
            msg(
                "gh_e136c6e50636",
                "oMgHVjngRipVsoxg6TuX3vz6glDg",
                1408090816,
                Inbound::PicPhotoOrAlbum { key: s("6"), pics: pics("5a75aaca956d97be686719218f275c6b") },
            ),
            "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090816:pic_photo_or_album",
        ),
        (
            "event_pic_weixin.xml",
            msg(
                "gh_e136c6e50636",
                "oMgHVjngRipVsoxg6TuX3vz6glDg",
                1408090816,
                Inbound::PicWeixin { key: s("6"), pics: pics("5a75aaca956d97be686719218f275c6b") },
            ),
            "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090816:pic_weixin",
        ),
        (
            "event_location_select.xml",
            msg(
                "gh_e136c6e50636",
                "oMgHVjngRipVsoxg6TuX3vz6glDg",
                1408091189,
                Inbound::LocationSelect {
                    key: s("6"),
                    latitude: 23.0,
                    longitude: 113.0,
                    scale: Some(15),
                    label: s(" 广州市海珠区客村艺苑路 106号"),
                    poiname: s(""),
                },
            ),
            "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408091189:location_select",
        ),
        (
            "event_view_miniprogram.xml",
            msg(
                "toUser",
                "FromUser",
                123456789,
                Inbound::ViewMiniProgram { page_path: s("pages/index/index"), menu_id: Some(s("MENUID")) },
            ),
            "e:FromUser:123456789:view_miniprogram",
        ),
        (
            "event_masssendjobfinish.xml",
            msg(
                "gh_4d00ed8d6399",
                "oV5CrjpxgaGXNHIQigzNlgLTnwic",
                1481013459,
                Inbound::MassSendJobFinish {
                    msg_id: 1000001625,
                    status: s("err(30003)"),
                    total_count: 0,
                    filter_count: 0,
                    sent_count: 0,
                    error_count: 0,
                    copyright_check_state: Some(2),
                    copyright_items: [1, 2]
                        .map(|idx| CopyrightCheckItem {
                            article_idx: Some(idx),
                            user_declare_state: Some(0),
                            audit_state: Some(2),
                            original_article_url: Some(format!("Url_{idx}")),
                            original_article_type: Some(1),
                            can_reprint: Some(1),
                            need_replace_content: Some(1),
                            need_show_reprint_source: Some(1),
                        })
                        .to_vec(),
                    article_urls: vec![ArticleUrl { idx: Some(1), url: s("Url") }],
                },
            ),
            "e:oV5CrjpxgaGXNHIQigzNlgLTnwic:1481013459:MASSSENDJOBFINISH:1000001625",
        ),
        (
            "event_templatesendjobfinish.xml",
            msg(
                "gh_7f083739789a",
                "oia2TjuEGTNoeX76QEjQNrcURxG8",
                1395658920,
                Inbound::TemplateSendJobFinish { msg_id: 200163836, status: s("success") },
            ),
            "e:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658920:TEMPLATESENDJOBFINISH:200163836",
        ),
        (
            "event_templatesendjobfinish_user_block.xml",
            msg(
                "gh_7f083739789a",
                "oia2TjuEGTNoeX76QEjQNrcURxG8",
                1395658984,
                Inbound::TemplateSendJobFinish { msg_id: 200163840, status: s("failed:user block") },
            ),
            "e:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658984:TEMPLATESENDJOBFINISH:200163840",
        ),
        (
            "event_templatesendjobfinish_system_failed.xml",
            msg(
                "gh_7f083739789a",
                "oia2TjuEGTNoeX76QEjQNrcURxG8",
                1395658984,
                Inbound::TemplateSendJobFinish { msg_id: 200163840, status: s("failed: system failed") },
            ),
            "e:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658984:TEMPLATESENDJOBFINISH:200163840",
        ),
        (
            "event_subscribe_msg_popup_event.xml",
            msg(
                "gh_123456789abc",
                "otFpruAK8D-E6EfStSYonYSBZ8_4",
                1610969440,
                Inbound::SubscribeMsgPopup {
                    items: vec![
                        SubscribeMsgPopupItem { template_id: s(VRR), status: s("accept"), popup_scene: Some(2) },
                        SubscribeMsgPopupItem {
                            template_id: s("9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"),
                            status: s("reject"),
                            popup_scene: Some(2),
                        },
                    ],
                },
            ),
            "e:otFpruAK8D-E6EfStSYonYSBZ8_4:1610969440:subscribe_msg_popup_event",
        ),
        (
            "event_subscribe_msg_change_event.xml",
            msg(
                "gh_123456789abc",
                "otFpruAK8D-E6EfStSYonYSBZ8_4",
                1610969440,
                Inbound::SubscribeMsgChange {
                    items: vec![SubscribeMsgChangeItem { template_id: s(VRR), status: s("reject") }],
                },
            ),
            "e:otFpruAK8D-E6EfStSYonYSBZ8_4:1610969440:subscribe_msg_change_event",
        ),
        (
            "event_subscribe_msg_sent_event.xml",
            msg(
                "gh_123456789abc",
                "otFpruAK8D-E6EfStSYonYSBZ8_4",
                1610969468,
                Inbound::SubscribeMsgSent {
                    items: vec![SubscribeMsgSentItem {
                        template_id: s(VRR),
                        msg_id: Some(1700827132819554304),
                        error_code: Some(0),
                        error_status: Some(s("success")),
                    }],
                },
            ),
            "e:otFpruAK8D-E6EfStSYonYSBZ8_4:1610969468:subscribe_msg_sent_event",
        ),
        (
            "event_freepublishjobfinish.xml",
            msg(
                "gh_4d00ed8d6399",
                "oV5CrjpxgaGXNHIQigzNlgLTnwic",
                1481013459,
                Inbound::FreePublishJobFinish {
                    publish_id: s("2247503051"),
                    publish_status: 0,
                    article_id: Some(s("b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq4")),
                    articles: vec![ArticleUrl { idx: Some(1), url: s("ARTICLE_URL") }],
                    fail_idx: vec![],
                },
            ),
            "e:oV5CrjpxgaGXNHIQigzNlgLTnwic:1481013459:FREEPUBLISHJOBFINISH",
        ),
        (
            "request_compat_mode_sample.xml",
            msg(
                "gh_10f6c3c3ac5a",
                "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
                1409735668,
                Inbound::Text {
                    content: s("abcdteT"),
                    msg_id: Some(6054768590064713728),
                    msg_data_id: None,
                    idx: None,
                },
            ),
            "m:6054768590064713728",
        ),
    ]
}

#[test]
fn every_fixture_parses_to_its_expected_message() {
    if shared_path("fixtures").is_none() {
        return;
    }
    for (file, expected, dedupe_key) in fixture_expectations() {
        let xml = read_shared(&format!("fixtures/{file}")).expect("../shared was found above");
        let parsed = parse(&xml).unwrap_or_else(|err| panic!("{file}: {err:?}"));
        assert_eq!(parsed, expected, "{file}");
        assert_eq!(parsed.dedupe_key(), dedupe_key, "{file}");
    }
}

#[test]
fn the_fixture_table_covers_every_xml_fixture() {
    let Some(dir) = shared_path("fixtures") else { return };
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir)
        .expect("fixtures dir is readable")
        .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".xml"))
        .collect();
    let covered: BTreeSet<String> = fixture_expectations().into_iter().map(|(file, _, _)| file.to_owned()).collect();
    assert_eq!(on_disk, covered);
    assert_eq!(covered.len(), 32);
}

#[test]
fn compat_mode_sample_also_yields_its_envelope() {
    let Some(xml) = read_shared("fixtures/request_compat_mode_sample.xml") else { return };
    let envelope = parse_envelope(&xml).unwrap();
    assert_eq!(envelope.to_user.as_deref(), Some("gh_10f6c3c3ac5a"));
    assert_eq!(envelope.encrypt.as_deref(), Some(COMPAT_ENCRYPT));
}

#[test]
fn plain_fixtures_have_no_envelope_ciphertext() {
    let Some(xml) = read_shared("fixtures/text.xml") else { return };
    let envelope = parse_envelope(&xml).unwrap();
    assert_eq!(envelope.to_user.as_deref(), Some("toUser"));
    assert_eq!(envelope.encrypt, None);
}

#[test]
fn kind_equals_the_serialized_type_tag_and_json_round_trips() {
    let mut kinds = BTreeSet::new();
    let mut messages: Vec<Message> = fixture_expectations().into_iter().map(|(_, m, _)| m).collect();
    messages.push(msg(
        "gh",
        "o",
        1,
        Inbound::Unknown { msg_type: s("file"), event: None, fields: vec![(s("Title"), s("a.zip"))] },
    ));
    for message in messages {
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["body"]["type"], message.kind(), "{message:?}");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
        kinds.insert(message.kind());
    }
    // 26 modelled kinds + unknown, all distinct.
    assert_eq!(kinds.len(), 27);
}
