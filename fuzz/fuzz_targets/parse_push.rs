//! Arbitrary bytes as a push body: every XML entry point of `wechat::message` must return
//! (never panic, hang or blow up memory), and a body that parses must give a usable message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tagcast::wechat::message::{Inbound, flatten, parse, parse_envelope};

fuzz_target!(|data: &[u8]| {
    // The callback refuses a body that is not UTF-8 before any parser sees it.
    let Ok(xml) = std::str::from_utf8(data) else {
        return;
    };
    let flat = flatten(xml);
    let _ = parse_envelope(xml);
    let Ok(message) = parse(xml) else {
        return;
    };

    // Every stored push needs a dedupe key (WeChat retries, wechat-api.md §5) and a kind.
    assert!(!message.dedupe_key().is_empty(), "empty dedupe key for {message:?}");
    assert!(!message.kind().is_empty(), "empty kind for {message:?}");
    let _ = message.msg_id();
    let _ = message.event_key();

    // The push is stored as JSON; `kind()` is documented to equal the serialized `type` tag.
    let json = serde_json::to_string(&message).unwrap_or_else(|err| panic!("{message:?}: {err}"));
    let value: serde_json::Value = serde_json::from_str(&json).expect("serde_json reads its own output");
    assert_eq!(value["body"]["type"], message.kind(), "{json}");

    // Unknown keeps the whole body: its fields are exactly `flatten` of it.
    if let Inbound::Unknown { fields, .. } = &message.body {
        match &flat {
            Ok(flat) => assert_eq!(fields, flat, "Unknown.fields differ from flatten"),
            Err(err) => panic!("parse gave Unknown but flatten failed: {err:?}"),
        }
    }
});
