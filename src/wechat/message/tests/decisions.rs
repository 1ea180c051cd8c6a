//! Decisions the parser makes on well-formed input: which pushes fall back to
//! [`Inbound::Unknown`], how each dedupes, what text values keep or lose.

use super::*;

#[test]
fn text_without_usable_msg_id_is_still_text_and_dedupes_on_sender_and_time() {
    for body in ["<Content>hi</Content>", "<Content>hi</Content><MsgId>12ab</MsgId>"] {
        let parsed = parse(&push("text", body)).unwrap();
        assert_eq!(parsed.body, Inbound::Text { content: s("hi"), msg_id: None, msg_data_id: None, idx: None });
        assert_eq!(parsed.msg_id(), None);
        assert_eq!(parsed.dedupe_key(), "e:o_1:1700000000:text");
    }
}

#[test]
fn known_kinds_missing_a_required_element_become_unknown() {
    let cases = [
        ("text", "<MsgId>1</MsgId>"),
        ("location", "<Location_X>north</Location_X><Location_Y>113</Location_Y><MsgId>1</MsgId>"),
        ("location", "<Location_X>NaN</Location_X><Location_Y>113</Location_Y>"),
        ("location", "<Location_X>123.5</Location_X><Location_Y>113</Location_Y>"),
        ("voice", "<Format>amr</Format>"),
        ("event", "<Event>CLICK</Event>"),
        ("event", "<Event>SCAN</Event>"),
        (
            "event",
            "<Event>MASSSENDJOBFINISH</Event><MsgID>x1</MsgID><Status>ok</Status>\
                   <TotalCount>1</TotalCount><FilterCount>1</FilterCount><SentCount>1</SentCount><ErrorCount>0</ErrorCount>",
        ),
        ("event", "<Event>MASSSENDJOBFINISH</Event><MsgID>1</MsgID><Status>ok</Status>"),
        ("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>7</MsgID>"),
        ("event", "<Event>scancode_push</Event><EventKey>k</EventKey>"),
        ("event", "<Event>location_select</Event><EventKey>k</EventKey>"),
        (
            "event",
            "<Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List><PopupScene>1</PopupScene></List></SubscribeMsgPopupEvent>",
        ),
        (
            "event",
            "<Event>FREEPUBLISHJOBFINISH</Event><PublishEventInfo><publish_status>0</publish_status></PublishEventInfo>",
        ),
        ("event", ""),
    ];
    for (msg_type, body) in cases {
        let xml = push(msg_type, body);
        let parsed = parse(&xml).unwrap_or_else(|err| panic!("{body}: {err:?}"));
        let Inbound::Unknown { msg_type: got, fields, .. } = &parsed.body else {
            panic!("{body}: expected Unknown, got {:?}", parsed.body);
        };
        assert_eq!(got, msg_type);
        assert_eq!(fields, &flatten(&xml).unwrap());
        assert_eq!(parsed.from_user, "o_1");
    }
}

#[test]
fn job_finish_events_key_on_sender_time_event_and_msg_id() {
    let xml = push("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>7</MsgID><Status>success</Status>");
    let parsed = parse(&xml).unwrap();
    assert_eq!(parsed.msg_id(), Some(7));
    assert_eq!(parsed.dedupe_key(), "e:o_1:1700000000:TEMPLATESENDJOBFINISH:7");
}

#[test]
fn unknown_pushes_dedupe_on_msg_id_unless_they_are_events() {
    let file = parse(&push("file", "<Title>a.zip</Title><MsgId>99</MsgId>")).unwrap();
    assert_eq!(file.kind(), "unknown");
    assert_eq!(file.msg_id(), Some(99));
    assert_eq!(file.dedupe_key(), "m:99");
    let card = parse(&push("event", "<Event>user_get_card</Event><MsgID>5</MsgID><EventKey>c</EventKey>")).unwrap();
    assert_eq!(card.event_key(), Some("c"));
    assert_eq!(card.dedupe_key(), "e:o_1:1700000000:user_get_card");
}

#[test]
fn a_repeated_known_element_falls_back_to_unknown_via_flatten() {
    let xml = push("text", "<Content>a</Content><Content>b</Content><MsgId>1</MsgId>");
    let parsed = parse(&xml).unwrap();
    let Inbound::Unknown { msg_type, fields, .. } = &parsed.body else {
        panic!("{parsed:?}");
    };
    assert_eq!(msg_type, "text");
    assert!(fields.contains(&(s("Content[0]"), s("a"))));
    assert!(fields.contains(&(s("Content[1]"), s("b"))));
    assert_eq!(parsed.dedupe_key(), "m:1");
}

#[test]
fn a_known_element_holding_markup_falls_back_to_unknown() {
    let xml = push("text", "<Content><b>bold</b></Content><MsgId>1</MsgId>");
    let parsed = parse(&xml).unwrap();
    assert!(matches!(&parsed.body, Inbound::Unknown { fields, .. } if fields.contains(&(s("Content.b"), s("bold")))));
}

#[test]
fn values_keep_cdata_verbatim_trim_bare_text_and_decode_entities() {
    let xml =
        push("text", "<Content>  <![CDATA[ two  spaces ]]>  </Content><MsgId> 5 </MsgId><Idx>a &amp; b &#x4e2d;</Idx>");
    let parsed = parse(&xml).unwrap();
    assert_eq!(
        parsed.body,
        Inbound::Text { content: s(" two  spaces "), msg_id: Some(5), msg_data_id: None, idx: Some(s("a & b 中")) }
    );
    let flat = flatten(&xml).unwrap();
    assert!(flat.contains(&(s("Content"), s(" two  spaces "))));
    assert!(flat.contains(&(s("Idx"), s("a & b 中"))));
}

#[test]
fn a_follower_typing_markup_declarations_in_cdata_is_not_refused() {
    let xml = push("text", "<Content><![CDATA[<!DOCTYPE html><!ENTITY x \"y\">]]></Content><MsgId>1</MsgId>");
    let parsed = parse(&xml).unwrap();
    assert!(matches!(&parsed.body, Inbound::Text { content, .. } if content == "<!DOCTYPE html><!ENTITY x \"y\">"));
    assert!(flatten(&xml).is_ok());
    // Inside comments, processing instructions and attribute values it is inert too.
    let inert = "<!-- <!DOCTYPE x> --><?pi <!ENTITY y?><xml a='<!DOCTYPE>'><b>1</b></xml>";
    assert_eq!(flatten(inert).unwrap(), vec![(s("b"), s("1"))]);
}

#[test]
fn subscribe_without_qrscene_prefix_keeps_the_raw_key_but_no_scene() {
    let parsed = parse(&push("event", "<Event>subscribe</Event><EventKey>last_trade_no_1</EventKey>")).unwrap();
    assert_eq!(parsed.body, Inbound::Subscribe { event_key: Some(s("last_trade_no_1")), scene: None, ticket: None });
    assert_eq!(parsed.event_key(), Some("last_trade_no_1"));
}

#[test]
fn flatten_indexes_items_and_repeated_siblings_only() {
    let xml = "<xml><A><item><X>1</X></item></A><B>1</B><B>2</B><C><List><Y/></List></C><D></D></xml>";
    assert_eq!(
        flatten(xml).unwrap(),
        vec![
            (s("A.item[0].X"), s("1")),
            (s("B[0]"), s("1")),
            (s("B[1]"), s("2")),
            (s("C.List.Y"), s("")),
            (s("D"), s("")),
        ]
    );
    assert_eq!(flatten("<xml/>").unwrap(), vec![]);
    assert_eq!(
        flatten("<?xml version=\"1.0\"?><!-- hi --><xml><a x=\"1\">v</a></xml>\n").unwrap(),
        vec![(s("a"), s("v"))]
    );
}
