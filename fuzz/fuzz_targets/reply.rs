//! Arbitrary strings into a text reply: the XML must always be well-formed, read back through
//! `flatten` to the sanitised values, and (when it names both parties) parse as a text push.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use tagcast::wechat::message::{Inbound, flatten, parse};
use tagcast::wechat::reply::{Reply, sanitize};

fuzz_target!(|input: (String, String, String, i64)| {
    let (content, to_user, from_user, create_time) = input;
    let xml = Reply::Text { content: content.clone() }.to_xml(&to_user, &from_user, create_time);

    let fields = flatten(&xml).unwrap_or_else(|err| panic!("{xml:?} does not flatten: {err:?}"));
    let map: BTreeMap<&str, &str> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (to, from, time, text) =
        (sanitize(&to_user), sanitize(&from_user), create_time.to_string(), sanitize(&content));
    let expected = BTreeMap::from([
        ("ToUserName", &*to),
        ("FromUserName", &*from),
        ("CreateTime", &*time),
        ("MsgType", "text"),
        ("Content", &*text),
    ]);
    assert_eq!(map, expected, "{xml:?}");
    assert_eq!(fields.len(), 5, "{xml:?}");

    // Our own reply, fed back as a push, must be a text message with the same content
    // (parse refuses blank parties, so only check when both have visible text).
    if to.trim().is_empty() || from.trim().is_empty() {
        return;
    }
    let message = parse(&xml).unwrap_or_else(|err| panic!("{xml:?} does not parse: {err:?}"));
    assert_eq!(message.to_user, to, "{xml:?}");
    assert_eq!(message.from_user, from, "{xml:?}");
    assert_eq!(message.create_time, create_time);
    match &message.body {
        Inbound::Text { content: got, .. } => assert_eq!(got, &*text, "{xml:?}"),
        other => panic!("{xml:?} parsed as {other:?}"),
    }
});
