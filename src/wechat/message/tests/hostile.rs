//! Malformed and hostile bodies: refused with the right [`ParseError`], never a panic.

use proptest::prelude::*;

use super::*;

fn all_entry_points(xml: &str) -> [Result<(), ParseError>; 3] {
    [parse(xml).map(|_| ()), flatten(xml).map(|_| ()), parse_envelope(xml).map(|_| ())]
}

#[test]
fn doctype_and_entity_declarations_are_refused_everywhere() {
    let billion_laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&lol3;</Content></xml>"#;
    let xxe = r#"<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>&xxe;</ToUserName></xml>"#;
    let lowercase = "<!doctype xml><xml><ToUserName>gh</ToUserName></xml>";
    let entity_only = "<xml><!EnTiTy x \"y\"></xml>";
    let after_cdata = "<xml><A><![CDATA[ok]]></A></xml><!DOCTYPE x>";
    let behind_comment = "<!-- <![CDATA[ --><!DOCTYPE x [<!ENTITY a \"b\">]><xml/><!-- ]]> -->";
    let behind_pi = "<?pi <![CDATA[ ?><!DOCTYPE x><xml/><?pi ]]> ?>";
    let behind_attribute = "<xml a=\"<![CDATA[\"><!DOCTYPE x>]]></xml>";
    let after_stray_lt = "<xml>< <!DOCTYPE x></xml>";
    for xml in [
        billion_laughs,
        xxe,
        lowercase,
        entity_only,
        after_cdata,
        behind_comment,
        behind_pi,
        behind_attribute,
        after_stray_lt,
    ] {
        for result in all_entry_points(xml) {
            assert!(matches!(result, Err(ParseError::Doctype)), "{xml}: {result:?}");
        }
    }
}

#[test]
fn a_declaration_behind_a_cdata_opener_inside_a_tag_is_refused_not_a_panic() {
    // Found by `fuzz/` (parse_push): quick-xml reads `<ToUserName\r<![CDATA[>` as one start
    // tag, the guard took `<![CDATA[` for a never-closed section and stopped scanning, and
    // the DOCTYPE between two pieces of text made quick-xml's deserializer panic.
    let fuzzed = "<xml><ToUserName\r<![CDATA[>g<!doctyped>>";
    let typed = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime>\
                 <MsgType>text</MsgType><Content x <![CDATA[>a<!DOCTYPE b>c</Content></xml>";
    // `<?>` is a whole (malformed) PI to quick-xml, not one running to the last `?>`.
    let after_empty_pi = "<xml><Content>a<?><!DOCTYPE b>c</Content></xml>?>";
    for xml in [fuzzed, typed, after_empty_pi] {
        for result in all_entry_points(xml) {
            assert!(matches!(result, Err(ParseError::Doctype)), "{xml:?}: {result:?}");
        }
    }
    // A `<` inside a tag still does not hide what follows the tag's real end.
    assert_eq!(flatten("<xml><A b <![CDATA[>x</A></xml>").unwrap(), vec![(s("A"), s("x"))]);
}

#[test]
fn broken_xml_is_a_parse_error() {
    let cases = [
        "",
        "   ",
        "not xml at all",
        "<xml>",
        "<xml><ToUserName>a</xml>",
        "<xml><ToUserName>a</ToUser></xml>",
        "<xml><Content><![CDATA[never closed</Content></xml>",
        "<xml><Content>&bogus;</Content></xml>",
        "<xml><Content>&#0;</Content></xml>",
        "<xml attr='x></xml>",
        "</xml>",
        "<",
    ];
    for xml in cases {
        for result in all_entry_points(xml) {
            assert!(result.is_err(), "{xml:?} should fail");
        }
    }
}

#[test]
fn a_root_other_than_xml_is_refused() {
    let xml = "<message><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>\
               <CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content></message>";
    for result in all_entry_points(xml) {
        assert!(matches!(result, Err(ParseError::NotXmlRoot)), "{result:?}");
    }
    assert!(matches!(parse("text<xml/>"), Err(ParseError::NotXmlRoot)));
}

#[test]
fn unattributable_pushes_are_refused() {
    let without = |skip: &str| {
        let mut xml = s("<xml>");
        for (name, value) in [("ToUserName", "gh"), ("FromUserName", "o"), ("CreateTime", "1"), ("MsgType", "text")] {
            if name != skip {
                xml.push_str(&format!("<{name}>{value}</{name}>"));
            }
        }
        xml.push_str("<Content>x</Content></xml>");
        xml
    };
    for field in ["ToUserName", "FromUserName", "CreateTime", "MsgType"] {
        let result = parse(&without(field));
        assert!(matches!(result, Err(ParseError::MissingField(f)) if f == field), "{field}: {result:?}");
    }
    let blank_sender = "<xml><ToUserName>gh</ToUserName><FromUserName><![CDATA[  ]]></FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>";
    assert!(matches!(parse(blank_sender), Err(ParseError::MissingField("FromUserName"))));
    let bad_time = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName><CreateTime>yesterday</CreateTime><MsgType>text</MsgType></xml>";
    assert!(matches!(parse(bad_time), Err(ParseError::InvalidField("CreateTime"))));
    // The serde fallback path applies the same rule.
    let dup_without_sender = "<xml><ToUserName>gh</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>a</Content><Content>b</Content></xml>";
    assert!(matches!(parse(dup_without_sender), Err(ParseError::MissingField("FromUserName"))));
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_by_flatten() {
    let nested = |depth: usize| format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    let ok = format!("<xml>{}</xml>", nested(MAX_DEPTH - 1));
    assert_eq!(flatten(&ok).unwrap().len(), 1);
    let too_deep = format!("<xml>{}</xml>", nested(MAX_DEPTH));
    assert!(matches!(flatten(&too_deep), Err(ParseError::TooDeep)));
    // An unknown kind needs flatten, so it is refused too.
    let unknown = push("file", &nested(100_000));
    assert!(matches!(parse(&unknown), Err(ParseError::TooDeep)));
    // A known kind never flattens: serde skips the unknown subtree without recursing.
    let known = push("text", &format!("<Content>x</Content><Junk>{}</Junk>", nested(100_000)));
    assert!(matches!(parse(&known).unwrap().body, Inbound::Text { .. }));
}

#[test]
fn content_after_the_root_is_refused_by_flatten() {
    for xml in ["<xml><a>1</a></xml><xml/>", "<xml><a>1</a></xml>tail", "<xml/><![CDATA[x]]>"] {
        assert!(matches!(flatten(xml), Err(ParseError::TrailingContent)), "{xml}");
    }
}

#[test]
fn content_after_the_root_is_refused_by_parse_and_parse_envelope() {
    let one = push("text", "<Content>hi</Content><MsgId>1</MsgId>");
    let two = push("text", "<Content>evil</Content><MsgId>2</MsgId>");
    for xml in [
        format!("{one}{two}"),
        format!("{one}garbage"),
        format!("{one}\n<![CDATA[x]]>"),
        format!("{one}<a/>"),
        format!("{one}</xml>"),
        "<xml/><xml/>".to_owned(),
    ] {
        assert!(matches!(parse(&xml), Err(ParseError::TrailingContent | ParseError::Syntax(_))), "{xml}");
        assert!(parse_envelope(&xml).is_err(), "{xml}");
    }
    for xml in [format!("{one}\r\n  \t"), format!("{one}<!-- done --><?pi x?>\n")] {
        assert!(parse(&xml).is_ok(), "{xml}");
    }
    let envelope = "<xml><ToUserName>gh</ToUserName><Encrypt>a</Encrypt></xml><xml><Encrypt>b</Encrypt></xml>";
    assert!(matches!(parse_envelope(envelope), Err(ParseError::TrailingContent)));
}

#[test]
fn an_envelope_with_two_ciphertexts_is_refused() {
    let xml = "<xml><ToUserName>gh</ToUserName><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>";
    assert!(matches!(parse_envelope(xml), Err(ParseError::Shape(_))));
    let bom = "\u{feff}<xml><Encrypt>abc</Encrypt></xml>";
    assert_eq!(parse_envelope(bom).unwrap(), Envelope { to_user: None, encrypt: Some(s("abc")) });
}

fn xmlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(s("<xml>")),
        Just(s("</xml>")),
        Just(s("<ToUserName>gh</ToUserName>")),
        Just(s("<FromUserName><![CDATA[o]]></FromUserName>")),
        Just(s("<CreateTime>1</CreateTime>")),
        Just(s("<MsgType>text</MsgType>")),
        Just(s("<MsgType>event</MsgType>")),
        Just(s("<Event>CLICK</Event>")),
        Just(s("<Event>MASSSENDJOBFINISH</Event>")),
        Just(s("<EventKey>k</EventKey>")),
        Just(s("<MsgId>1</MsgId>")),
        Just(s("<MsgID>x</MsgID>")),
        Just(s("<Content>")),
        Just(s("</Content>")),
        Just(s("<SendPicsInfo><PicList><item>")),
        Just(s("</item></PicList></SendPicsInfo>")),
        Just(s("<SubscribeMsgPopupEvent><List>")),
        Just(s("</List></SubscribeMsgPopupEvent>")),
        Just(s("<![CDATA[")),
        Just(s("]]>")),
        Just(s("<!DOCTYPE")),
        Just(s("<!--")),
        Just(s("-->")),
        Just(s("<?pi x?>")),
        Just(s("&amp;")),
        Just(s("&#x0;")),
        Just(s("&")),
        Just(s("<a/>")),
        "[ -~\\n]{0,6}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        let _ = parse(&input);
        let _ = flatten(&input);
        let _ = parse_envelope(&input);
    }

    #[test]
    fn xml_like_strings_never_panic(input in xmlish()) {
        let _ = parse(&input);
        let _ = flatten(&input);
        let _ = parse_envelope(&input);
    }

    #[test]
    fn any_cdata_text_round_trips_through_parse(content in any::<String>()) {
        prop_assume!(!content.contains("]]>"));
        prop_assume!(!content.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r') || matches!(c, '\u{fffe}' | '\u{ffff}')));
        let xml = push("text", &format!("<Content><![CDATA[{content}]]></Content>"));
        let parsed = parse(&xml).unwrap();
        let Inbound::Text { content: got, .. } = parsed.body else { panic!("not text") };
        prop_assert_eq!(got, content);
    }
}
