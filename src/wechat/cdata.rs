//! Text inside the XML we write: passive replies (reply.rs) and inbound pushes as WeChat would
//! send them (message/write.rs). One place decides how any string becomes element content, so
//! both stay well-formed for any input and read back the same through our own parser.
//!
//! Owns: the characters XML 1.0 cannot carry ([`sanitize`] drops them) and CDATA sections
//! that survive a `]]>` inside the text. Must not: import anything outside `wechat`, or fail.

use std::borrow::Cow;

/// `text` without the characters XML 1.0 forbids: C0 controls other than tab, newline and
/// carriage return, and U+FFFE/U+FFFF (surrogates cannot occur in a Rust string). Borrowed when
/// nothing had to go, which is the common case.
///
/// Dropping is the only choice: XML 1.0 has no escape for them (`&#1;` is as ill-formed as the
/// raw byte), and the parser refuses a body holding either, so a kept one would lose the whole
/// reply or push, not one character.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_forbidden) {
        Cow::Owned(text.chars().filter(|&c| !is_forbidden(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

fn is_forbidden(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// `<name><![CDATA[value]]></name>`: see [`push_cdata`].
pub(super) fn push_cdata_element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_cdata(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// `<![CDATA[value]]>`, with `value` sanitised and every `]]>` in it written as
/// `]]]]><![CDATA[>` (end the section after `]]`, start a new one holding `>`): a reader joins
/// adjacent sections, so the text reads back whole.
pub(super) fn push_cdata(out: &mut String, value: &str) {
    out.push_str("<![CDATA[");
    let clean = sanitize(value);
    let mut parts = clean.split("]]>");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for part in parts {
        out.push_str("]]]]><![CDATA[>");
        out.push_str(part);
    }
    out.push_str("]]>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminator_is_split_across_two_sections() {
        let mut out = String::new();
        push_cdata_element(&mut out, "A", "x]]>y]]>");
        assert_eq!(out, "<A><![CDATA[x]]]]><![CDATA[>y]]]]><![CDATA[>]]></A>");
    }

    #[test]
    fn forbidden_characters_are_dropped_and_clean_text_is_borrowed() {
        assert!(matches!(sanitize("plain 文本\n"), Cow::Borrowed(_)));
        assert_eq!(sanitize("a\u{8}b\u{c}c\u{7f}\u{fffe}d\t"), "abc\u{7f}d\t");
        let mut out = String::new();
        push_cdata(&mut out, "a\0b");
        assert_eq!(out, "<![CDATA[ab]]>");
    }
}
