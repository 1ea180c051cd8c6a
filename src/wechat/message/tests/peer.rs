//! The peer SDKs' sample pushes (`../shared/peer-vectors/messages.jsonl`): each flattens to its
//! `expected` map and parses to the kind the docs give it. Skipped without `../shared`.

use std::collections::BTreeMap;

use super::*;
use crate::wechat::test_data;

/// Kinds the test expects, written independently of `classify`.
fn documented_kind(msg_type: &str, event: Option<&str>) -> Option<&'static str> {
    let msg_type = msg_type.to_ascii_lowercase();
    if msg_type == "event" {
        return match event?.to_ascii_lowercase().as_str() {
            "subscribe" => Some("subscribe"),
            "unsubscribe" => Some("unsubscribe"),
            "scan" => Some("scan"),
            "location" => Some("location_report"),
            "click" => Some("click"),
            "view" => Some("view"),
            "scancode_push" => Some("scan_code_push"),
            "scancode_waitmsg" => Some("scan_code_wait_msg"),
            "pic_sysphoto" => Some("pic_sys_photo"),
            "pic_photo_or_album" => Some("pic_photo_or_album"),
            "pic_weixin" => Some("pic_weixin"),
            "location_select" => Some("location_select"),
            "view_miniprogram" => Some("view_mini_program"),
            "masssendjobfinish" => Some("mass_send_job_finish"),
            "templatesendjobfinish" => Some("template_send_job_finish"),
            "subscribe_msg_popup_event" => Some("subscribe_msg_popup"),
            "subscribe_msg_change_event" => Some("subscribe_msg_change"),
            "subscribe_msg_sent_event" => Some("subscribe_msg_sent"),
            "freepublishjobfinish" => Some("free_publish_job_finish"),
            _ => None,
        };
    }
    match msg_type.as_str() {
        "text" => Some("text"),
        "image" => Some("image"),
        "voice" => Some("voice"),
        "video" => Some("video"),
        "shortvideo" => Some("short_video"),
        "location" => Some("location"),
        "link" => Some("link"),
        _ => None,
    }
}

const ORDINARY: [&str; 7] = ["text", "image", "voice", "video", "short_video", "location", "link"];

#[test]
fn every_peer_vector_flattens_exactly_and_parses_as_documented() {
    let Some(data) = test_data::read_shared("peer-vectors/messages.jsonl") else { return };
    let (mut lines, mut typed, mut unknown, mut envelopes, mut rejected) = (0, 0, 0, 0, 0);
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        lines += 1;
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
        let id = v["id"].as_str().expect("id");
        let platform = v["platform"].as_str().expect("platform");
        let msg_type = v["msg_type"].as_str().unwrap_or("");
        let event = v["event"].as_str();
        let features: Vec<&str> =
            v["features"].as_array().expect("features").iter().filter_map(|f| f.as_str()).collect();
        let xml = v["xml"].as_str().expect("xml");
        let expected: BTreeMap<String, String> = v["expected"]
            .as_object()
            .expect("expected")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
            .collect();

        // flatten == expected, with no path emitted twice.
        let flat = flatten(xml).unwrap_or_else(|err| panic!("{id}: flatten failed: {err:?}"));
        let flat_map: BTreeMap<String, String> = flat.iter().cloned().collect();
        assert_eq!(flat_map.len(), flat.len(), "{id}: duplicate paths");
        assert_eq!(flat_map, expected, "{id}: flatten");

        let has = |feature: &str| features.contains(&feature);
        if has("encrypted_envelope") || has("compat_mode_plaintext_plus_encrypt") {
            envelopes += 1;
            let envelope = parse_envelope(xml).unwrap_or_else(|err| panic!("{id}: {err:?}"));
            assert_eq!(envelope.encrypt.as_ref(), expected.get("Encrypt"), "{id}: Encrypt");
            assert_eq!(envelope.to_user.as_ref(), expected.get("ToUserName"), "{id}");
        }

        let parsed = parse(xml);
        let documented = documented_kind(msg_type, event);
        if !expected.contains_key("FromUserName") {
            // Safe-mode envelopes are not attributable pushes.
            assert!(matches!(parsed, Err(ParseError::MissingField(_))), "{id}: {parsed:?}");
            rejected += 1;
            continue;
        }
        let parsed = parsed.unwrap_or_else(|err| panic!("{id}: parse failed: {err:?}"));
        assert_eq!(Some(&parsed.from_user), expected.get("FromUserName"), "{id}");
        assert_eq!(Some(&parsed.to_user), expected.get("ToUserName"), "{id}");
        assert_eq!(parsed.create_time.to_string(), expected["CreateTime"], "{id}: CreateTime");
        match documented {
            Some(kind) => {
                typed += 1;
                assert_eq!(parsed.kind(), kind, "{id} ({platform})");
                let expected_id = expected
                    .get("MsgId")
                    .or_else(|| expected.get("MsgID"))
                    .map(|id| id.parse::<u64>().expect("integer MsgId"));
                let wants_id = ORDINARY.contains(&kind) || kind.ends_with("send_job_finish");
                assert_eq!(parsed.msg_id(), expected_id.filter(|_| wants_id), "{id}: msg_id");
                // Ordinary messages have no EventKey (msg-162/163 carry a stray one).
                let expected_key =
                    expected.get("EventKey").map(String::as_str).filter(|k| !k.is_empty() && !ORDINARY.contains(&kind));
                assert_eq!(parsed.event_key(), expected_key, "{id}: event_key");
                if let Inbound::Text { content, .. } = &parsed.body {
                    assert_eq!(Some(content), expected.get("Content"), "{id}: content");
                }
                let key = parsed.dedupe_key();
                match parsed.msg_id() {
                    Some(msg_id) if ORDINARY.contains(&kind) => {
                        assert_eq!(key, format!("m:{msg_id}"))
                    }
                    _ => assert!(
                        key.starts_with(&format!("e:{}:{}:", parsed.from_user, parsed.create_time)),
                        "{id}: {key}"
                    ),
                }
            }
            None => {
                unknown += 1;
                let Inbound::Unknown { msg_type: got_type, event: got_event, fields } = &parsed.body else {
                    panic!("{id}: expected Unknown, got {:?}", parsed.body);
                };
                assert_eq!(fields, &flat, "{id}: Unknown fields are flatten");
                assert_eq!(Some(got_type), expected.get("MsgType"), "{id}");
                assert_eq!(got_event.as_ref(), expected.get("Event"), "{id}");
                assert_eq!(parsed.kind(), "unknown");
            }
        }
    }
    assert_eq!(lines, 198, "every line of messages.jsonl is processed");
    assert_eq!(typed + unknown + rejected, 198);
    assert_eq!(envelopes, 16, "13 encrypted envelopes + 3 compat-mode bodies");
    // 111 modelled (mp and WeCom), 74 Unknown, 13 safe-mode envelopes without a sender.
    assert_eq!((typed, unknown, rejected), (111, 74, 13));
}

#[test]
fn lowercase_scan_and_capitalised_event_msg_type_are_accepted() {
    let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>\
               <CreateTime>1</CreateTime><MsgType>Event</MsgType><Event>scan</Event>\
               <EventKey><![CDATA[qrscene_42]]></EventKey></xml>";
    let parsed = parse(xml).unwrap();
    assert_eq!(parsed.body, Inbound::Scan { scene: s("42"), ticket: None });
    assert_eq!(parsed.dedupe_key(), "e:o:1:SCAN");
}
