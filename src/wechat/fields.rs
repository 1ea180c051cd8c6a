//! Intake rules for the fields of a push: characters and lengths, checked before anything is
//! stored, so one malformed push is refused on its own (400) instead of failing the group commit
//! it would have joined.
//!
//! The rules:
//! * the body (and the decrypted inner XML) holds no NUL and no other C0 control character except
//!   tab, LF and CR: XML 1.0 forbids them, WeChat never sends them, and PostgreSQL cannot store a
//!   NUL in `text` or `jsonb`;
//! * `ToUserName`, `FromUserName`, `MsgType`, `Event` and `EventKey` hold no control character at
//!   all (not even one written as a character reference such as `&#9;`);
//! * `Content` of a text message may hold tab, LF and CR, no other control character;
//! * length caps in UTF-8 bytes: see the constants.
//!
//! Unknown push kinds are kept raw: only the fields above are checked in them.
//! Like the rest of `wechat`, this imports nothing else from the crate.

use super::message::{Inbound, Message};

/// Openids are 28 characters and account ids (`gh_` + 12) 15 in practice; this leaves room for
/// WeCom and open-platform ids while keeping a hostile megabyte out of every index.
pub const MAX_USER_NAME_BYTES: usize = 64;
/// The longest documented `MsgType` is `shortvideo`.
pub const MAX_MSG_TYPE_BYTES: usize = 32;
/// The longest documented `Event` is `qualification_verify_success` (28).
pub const MAX_EVENT_BYTES: usize = 64;
/// `EventKey` of a `VIEW` event is the menu URL, which WeChat caps at 1024 bytes (menu keys at 128).
pub const MAX_EVENT_KEY_BYTES: usize = 1024;
/// WeChat documents no limit on what a follower types; its client sends far less than this, and
/// the whole body is capped at 64 KiB anyway.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;

/// Why a push's fields were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    #[error("the body holds a NUL or another control character XML forbids")]
    ForbiddenCharacter,
    #[error("{0} holds a control character")]
    Control(&'static str),
    #[error("{field} is longer than {max} bytes")]
    TooLong { field: &'static str, max: usize },
}

/// Refuses a body (plaintext push, safe-mode envelope or decrypted inner XML) holding a raw NUL or
/// another C0 control character besides tab, LF and CR.
///
/// # Errors
/// [`FieldError::ForbiddenCharacter`].
pub fn check_body(xml: &str) -> Result<(), FieldError> {
    if xml.bytes().any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
        return Err(FieldError::ForbiddenCharacter);
    }
    Ok(())
}

/// Checks the fields of a parsed push against the rules of this module.
///
/// # Errors
/// The first field that breaks a rule.
pub fn check_message(message: &Message) -> Result<(), FieldError> {
    identifier("ToUserName", &message.to_user, MAX_USER_NAME_BYTES)?;
    identifier("FromUserName", &message.from_user, MAX_USER_NAME_BYTES)?;
    if let Inbound::Unknown { msg_type, event, .. } = &message.body {
        identifier("MsgType", msg_type, MAX_MSG_TYPE_BYTES)?;
        if let Some(event) = event {
            identifier("Event", event, MAX_EVENT_BYTES)?;
        }
    }
    if let Some(key) = message.event_key() {
        identifier("EventKey", key, MAX_EVENT_KEY_BYTES)?;
    }
    if let Inbound::Text { content, .. } = &message.body {
        capped("Content", content, MAX_CONTENT_BYTES)?;
        if content.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
            return Err(FieldError::Control("Content"));
        }
    }
    Ok(())
}

fn identifier(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    capped(field, value, max)?;
    if value.chars().any(char::is_control) {
        return Err(FieldError::Control(field));
    }
    Ok(())
}

fn capped(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.len() > max {
        return Err(FieldError::TooLong { field, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::message::parse;

    fn push(from: &str, body: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[{from}]]></FromUserName>\
             <CreateTime>1700000000</CreateTime>{body}</xml>"
        )
    }

    fn check(xml: &str) -> Result<(), FieldError> {
        check_body(xml)?;
        check_message(&parse(xml).expect("parses"))
    }

    #[test]
    fn documented_pushes_pass() {
        let samples = crate::wechat::test_data::project_path("pushes");
        let mut count = 0;
        for entry in std::fs::read_dir(samples).expect("tests/fixtures/pushes") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "xml") {
                let xml = std::fs::read_to_string(&path).expect("sample");
                assert_eq!(check(&xml), Ok(()), "{}", path.display());
                count += 1;
            }
        }
        assert_eq!(count, 32, "every own sample push was checked");
        let text = push("o_1", "<MsgType>text</MsgType><Content><![CDATA[第一行\n\t第二行\r\n\\u0000]]></Content>");
        assert_eq!(check(&text), Ok(()));
    }

    #[test]
    fn each_rule_refuses_its_push() {
        let text = |content: &str| push("o_1", &format!("<MsgType>text</MsgType><Content>{content}</Content>"));
        let click =
            |key: &str| push("o_1", &format!("<MsgType>event</MsgType><Event>CLICK</Event><EventKey>{key}</EventKey>"));
        let cases = [
            (text("a\0b"), FieldError::ForbiddenCharacter),
            (text("<![CDATA[a\u{1}b]]>"), FieldError::ForbiddenCharacter),
            (text("a&#27;b"), FieldError::Control("Content")),
            (text("a\u{85}b"), FieldError::Control("Content")),
            (
                text(&"字".repeat(MAX_CONTENT_BYTES / 3 + 1)),
                FieldError::TooLong { field: "Content", max: MAX_CONTENT_BYTES },
            ),
            (click("K&#10;EY"), FieldError::Control("EventKey")),
            (click("K\tEY"), FieldError::Control("EventKey")),
            (
                click(&"k".repeat(MAX_EVENT_KEY_BYTES + 1)),
                FieldError::TooLong { field: "EventKey", max: MAX_EVENT_KEY_BYTES },
            ),
            (
                push(&"o".repeat(MAX_USER_NAME_BYTES + 1), "<MsgType>event</MsgType><Event>subscribe</Event>"),
                FieldError::TooLong { field: "FromUserName", max: MAX_USER_NAME_BYTES },
            ),
            (push("o\t1", "<MsgType>event</MsgType><Event>subscribe</Event>"), FieldError::Control("FromUserName")),
            (
                push("o_1", &format!("<MsgType>{}</MsgType>", "m".repeat(MAX_MSG_TYPE_BYTES + 1))),
                FieldError::TooLong { field: "MsgType", max: MAX_MSG_TYPE_BYTES },
            ),
            (
                push("o_1", &format!("<MsgType>event</MsgType><Event>{}</Event>", "E".repeat(MAX_EVENT_BYTES + 1))),
                FieldError::TooLong { field: "Event", max: MAX_EVENT_BYTES },
            ),
        ];
        for (xml, expected) in cases {
            assert_eq!(check(&xml), Err(expected.clone()), "{expected}");
        }
    }

    #[test]
    fn unknown_kinds_keep_their_other_fields_raw() {
        let long = "x".repeat(4 * MAX_EVENT_KEY_BYTES);
        let xml = push("o_1", &format!("<MsgType>card</MsgType><Anything>{long}&#127;</Anything>"));
        assert_eq!(check(&xml), Ok(()));
    }
}
