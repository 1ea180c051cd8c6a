//! The checks every entry point runs before (or while) parsing a body that came straight off
//! the network: no byte-order mark, no DTD anywhere in markup position, root `<xml>` with
//! nothing after it.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::ParseError;

pub(super) fn strip_bom(xml: &str) -> &str {
    xml.strip_prefix('\u{feff}').unwrap_or(xml)
}

/// Refuses `<!DOCTYPE` / `<!ENTITY` (any case) in markup position, before any parser runs.
///
/// One linear pass that tokenises exactly as quick-xml 0.37 does up to its first error: CDATA
/// sections, comments, processing instructions and tags (with their quoted attribute values)
/// are skipped whole, so a follower who *types* `<!DOCTYPE html>` (WeChat wraps it in CDATA) is
/// not refused, while a declaration hidden behind a CDATA-looking string inside a comment, PI or
/// attribute is still found. A construct that never ends stops the scan: the parser stops with
/// an error at the same place. The scan must never skip more than the parser does: a DOCTYPE
/// the serde path reads between two pieces of an element's text makes quick-xml's deserializer
/// panic (`unreachable!` in `read_text`), besides defining entities.
pub(super) fn reject_doctype(xml: &str) -> Result<(), ParseError> {
    let bytes = xml.as_bytes();
    let skip_past = |from: usize, end: &str| xml.get(from..)?.find(end).map(|p| from + p + end.len());
    let mut pos = 0;
    while let Some(offset) = xml.get(pos..).and_then(|rest| rest.find('<')) {
        let at = pos + offset;
        let markup = &bytes[at..];
        let next = if markup.starts_with(b"<![CDATA[") {
            skip_past(at + 9, "]]>")
        } else if markup.starts_with(b"<!--") {
            skip_past(at + 4, "-->")
        } else if markup.starts_with(b"<?") {
            // quick-xml ends a PI at the first `?>` counted from its own `?`, so `<?>` is one
            // (malformed) PI, not the start of one that runs to a later `?>`.
            skip_past(at + 1, "?>")
        } else if is_declaration(markup) {
            return Err(ParseError::Doctype);
        } else if markup.starts_with(b"<!") {
            Some(at + 2)
        } else {
            tag_end(bytes, at + 1)?
        };
        match next {
            Some(next) => pos = next,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Whether `markup` starts with `<!DOCTYPE` or `<!ENTITY`, in any case.
fn is_declaration(markup: &[u8]) -> bool {
    let Some(word) = markup.strip_prefix(b"<!") else {
        return false;
    };
    let starts_with_ci = |w: &[u8]| word.len() >= w.len() && word[..w.len()].eq_ignore_ascii_case(w);
    starts_with_ci(b"DOCTYPE") || starts_with_ci(b"ENTITY")
}

/// Index just past the `>` closing a tag whose `<` is at `from - 1`, found as quick-xml finds
/// it: the first `>` outside a quoted value. A `<` does not end a tag (quick-xml reads
/// `<a <![CDATA[>` as one start tag), so nothing inside a tag may be skipped as CDATA, a comment
/// or a PI. A declaration after such a `<` is refused all the same, though quick-xml would take
/// it for part of the tag: WeChat never sends a `<` inside a tag.
/// Progress is guaranteed: the result is always greater than `from - 1`, the tag's `<`.
fn tag_end(bytes: &[u8], from: usize) -> Result<Option<usize>, ParseError> {
    let Some(tag) = bytes.get(from..) else {
        return Ok(None);
    };
    let mut quote: Option<u8> = None;
    for (i, &b) in tag.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Ok(Some(from + i + 1)),
            (None, b'<') if is_declaration(&tag[i..]) => return Err(ParseError::Doctype),
            _ => {}
        }
    }
    Ok(None)
}

/// serde ignores the root element's name (WeChat's is always `<xml>`) and stops reading at its end
/// tag, so this checks both: the root is `<xml>`, and nothing but whitespace, comments or
/// processing instructions follows it. `<xml>..</xml><xml>..</xml>` would otherwise be stored as
/// its first document while a logger, a proxy or an older parser sees the second.
pub(super) fn check_root(xml: &str) -> Result<(), ParseError> {
    let mut reader = Reader::from_str(xml);
    loop {
        match reader.read_event()? {
            Event::Start(start) => {
                if start.name().as_ref() != b"xml" {
                    return Err(ParseError::NotXmlRoot);
                }
                let end = start.to_end().into_owned();
                reader.read_to_end(end.name())?;
                return check_epilogue(&mut reader);
            }
            Event::Empty(start) => {
                if start.name().as_ref() != b"xml" {
                    return Err(ParseError::NotXmlRoot);
                }
                return check_epilogue(&mut reader);
            }
            Event::Text(text) if is_xml_whitespace(&text) => {}
            Event::Text(_) | Event::CData(_) | Event::End(_) => {
                return Err(ParseError::NotXmlRoot);
            }
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => return Err(ParseError::NoRoot),
        }
    }
}

/// What may follow the root element: XML's `Misc` (whitespace, comments, PIs), as [`flatten`] allows.
fn check_epilogue(reader: &mut Reader<&[u8]>) -> Result<(), ParseError> {
    loop {
        match reader.read_event()? {
            Event::Eof => return Ok(()),
            Event::Text(text) if is_xml_whitespace(&text) => {}
            Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(ParseError::Doctype),
            _ => return Err(ParseError::TrailingContent),
        }
    }
}

fn is_xml_whitespace(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

pub(super) fn trim_xml_whitespace(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}
