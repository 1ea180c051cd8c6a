//! The writer against the parser: every sample the other tests parse (the project's own, the
//! official fixtures and the peer vectors when `../shared` is there) reads back from
//! [`Message::to_xml`] as the same [`Message`]; plus the layouts callers rely on and text no
//! sample holds.

use proptest::prelude::*;

use super::own_fixtures::own_expectations;
use super::*;
use crate::wechat::test_data;

/// parse → write → parse is the identity, and writing is stable.
fn assert_round_trips(label: &str, xml: &str) {
    let Ok(parsed) = parse(xml) else { return };
    let written = parsed.to_xml();
    let again = parse(&written).unwrap_or_else(|err| panic!("{label}: {err:?} in {written}"));
    assert_eq!(again, parsed, "{label}: {written}");
    assert_eq!(again.to_xml(), written, "{label}");
}

#[test]
fn every_own_sample_round_trips() {
    for (file, expected, _) in own_expectations() {
        assert_round_trips(file, &test_data::project_fixture(&format!("pushes/{file}")));
        // The table's messages too: they are what a hand-built push looks like.
        assert_eq!(parse(&expected.to_xml()).unwrap(), expected, "{file}");
    }
}

#[test]
fn every_official_fixture_round_trips() {
    let Some(dir) = test_data::shared_path("fixtures") else { return };
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures dir is readable") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|ext| ext == "xml") {
            let xml = std::fs::read_to_string(&path).expect("fixture");
            assert!(parse(&xml).is_ok(), "{}", path.display());
            assert_round_trips(&path.display().to_string(), &xml);
            count += 1;
        }
    }
    assert_eq!(count, 32);
}

#[test]
fn every_attributable_peer_vector_round_trips() {
    let Some(data) = test_data::read_shared("peer-vectors/messages.jsonl") else { return };
    let mut count = 0;
    for line in data.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
        let xml = v["xml"].as_str().expect("xml");
        if parse(xml).is_ok() {
            assert_round_trips(v["id"].as_str().expect("id"), xml);
            count += 1;
        }
    }
    // 111 typed + 74 Unknown; the 13 safe-mode envelopes have no sender to write.
    assert_eq!(count, 185);
}

#[test]
fn a_hand_built_push_has_the_documented_layout() {
    let click = msg("gh_1", "o_1", 1_700_000_000, Inbound::Click { key: s("K") });
    assert_eq!(
        click.to_xml(),
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>\
         <EventKey><![CDATA[K]]></EventKey></xml>"
    );
    let text = msg("gh_1", "o_1", 5, Inbound::Text { content: s("hi"), msg_id: Some(7), msg_data_id: None, idx: None });
    assert!(
        text.to_xml()
            .ends_with("<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>7</MsgId></xml>")
    );
    let envelope = Envelope { to_user: Some(s("gh_1")), encrypt: Some(s("abc=")) };
    assert_eq!(
        envelope.to_xml(),
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>"
    );
    assert_eq!(parse_envelope(&envelope.to_xml()).unwrap(), envelope);
}

#[test]
fn an_unknown_push_gets_its_header_from_the_message() {
    let fields =
        vec![(s("Data"), s("{\"a\":1}")), (s("A.item[0].B"), s("x")), (s("C[0]"), s("1")), (s("C[1]"), s("2"))];
    let card = msg("gh_1", "o_1", 9, Inbound::Unknown { msg_type: s("card"), event: None, fields: fields.clone() });
    let parsed = parse(&card.to_xml()).unwrap();
    let header = [("ToUserName", "gh_1"), ("FromUserName", "o_1"), ("CreateTime", "9"), ("MsgType", "card")];
    let mut expected: Vec<(String, String)> = header.iter().map(|(k, v)| (s(k), s(v))).collect();
    expected.extend(fields);
    assert_eq!(parsed, msg("gh_1", "o_1", 9, Inbound::Unknown { msg_type: s("card"), event: None, fields: expected }));

    // A header the fields hold with another value, or an Event the message lacks, gives way.
    let stale = vec![(s("FromUserName"), s("o_old")), (s("Event"), s("x")), (s("Bad name"), s("dropped"))];
    let card = msg("gh_1", "o_1", 9, Inbound::Unknown { msg_type: s("card"), event: None, fields: stale });
    let Inbound::Unknown { fields, event, .. } = parse(&card.to_xml()).unwrap().body else { panic!("not unknown") };
    assert_eq!(event, None);
    assert!(fields.contains(&(s("FromUserName"), s("o_1"))), "{fields:?}");
    assert!(!fields.iter().any(|(path, _)| path == "Event" || path.contains("Bad")), "{fields:?}");
}

#[test]
fn a_scene_that_starts_with_the_prefix_survives_the_scan_writer() {
    let scan = msg("gh", "o", 1, Inbound::Scan { scene: s("qrscene_x"), ticket: None });
    assert_eq!(parse(&scan.to_xml()).unwrap(), scan);
    let follow = msg("gh", "o", 1, Inbound::Subscribe { event_key: None, scene: Some(s("42")), ticket: None });
    let Inbound::Subscribe { event_key, scene, .. } = parse(&follow.to_xml()).unwrap().body else { panic!() };
    assert_eq!((event_key.as_deref(), scene.as_deref()), (Some("qrscene_42"), Some("42")));
}

proptest! {
    #[test]
    fn any_text_and_key_read_back_minus_forbidden_characters(
        content in any::<String>(),
        key in "[ -~]{0,8}(\\]\\]>)?[ -~]{0,8}",
        openid in "[A-Za-z0-9_-]{1,28}",
        create_time in any::<i64>(),
    ) {
        let clean = crate::wechat::cdata::sanitize(&content).into_owned();
        let text = Inbound::Text { content: content.clone(), msg_id: Some(1), msg_data_id: None, idx: None };
        let parsed = parse(&msg("gh", &openid, create_time, text).to_xml()).unwrap();
        prop_assert_eq!(parsed.create_time, create_time);
        let is_text = matches!(&parsed.body, Inbound::Text { content, .. } if *content == clean);
        prop_assert!(is_text, "{:?}", parsed.body);

        let click = msg("gh", &openid, create_time, Inbound::Click { key: key.clone() });
        prop_assert_eq!(parse(&click.to_xml()).unwrap(), click);
    }
}
