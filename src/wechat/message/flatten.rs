//! [`flatten`]: every leaf element of a body as `(path, text)`, the lossless view of a push kind
//! we do not model. Builds a small element tree (names, text, children), then walks it.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::events::Event;

use super::guard::{reject_doctype, strip_bom, trim_xml_whitespace};
use super::{MAX_DEPTH, ParseError};

/// Every leaf element of a body as `(path, text)`, in document order: the lossless view of a
/// push kind we do not model, and the format of the peer vectors' `expected` maps.
///
/// Path = element names below `<xml>` joined by `.`; an `item` element, and any element with a
/// same-named sibling, gets its 0-based position among those siblings (`PicList.item[0]`,
/// `SubscribeMsgPopupEvent.List[1].TemplateId`). Text: CDATA verbatim, text outside CDATA
/// trimmed, entities decoded, an empty element gives `""`. Elements with child elements give no
/// entry of their own (their stray text is dropped); attributes are ignored.
///
/// # Errors
/// [`ParseError`] for malformed XML, a DTD, a root other than `<xml>`, nesting deeper than
/// [`MAX_DEPTH`], or any element or text after the root.
pub fn flatten(xml: &str) -> Result<Vec<(String, String)>, ParseError> {
    let xml = strip_bom(xml);
    reject_doctype(xml)?;
    let nodes = build_tree(xml)?;
    let mut out = Vec::new();
    let mut path = String::new();
    if let Some(root) = nodes.first() {
        emit_children(&nodes, &root.children, &mut path, &mut out);
    }
    Ok(out)
}

struct Node {
    name: String,
    text: String,
    children: Vec<usize>,
}

/// Reads the whole document into an arena; `nodes[0]` is the root `<xml>` element.
fn build_tree(xml: &str) -> Result<Vec<Node>, ParseError> {
    let mut reader = Reader::from_str(xml);
    let mut nodes: Vec<Node> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut root_closed = false;
    loop {
        let event = reader.read_event()?;
        let is_start = matches!(event, Event::Start(_));
        match event {
            Event::Start(start) | Event::Empty(start) => {
                if root_closed {
                    return Err(ParseError::TrailingContent);
                }
                if open.is_empty() && start.name().as_ref() != b"xml" {
                    return Err(ParseError::NotXmlRoot);
                }
                if open.len() >= MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
                let name = reader.decoder().decode(start.name().as_ref())?.into_owned();
                let id = nodes.len();
                nodes.push(Node { name, text: String::new(), children: Vec::new() });
                if let Some(&parent) = open.last() {
                    nodes[parent].children.push(id);
                }
                if is_start {
                    open.push(id);
                } else if open.is_empty() {
                    root_closed = true;
                }
            }
            Event::End(_) => {
                // quick-xml checks that end names match their start tags.
                open.pop();
                if open.is_empty() {
                    root_closed = true;
                }
            }
            Event::Text(text) => {
                let trimmed = trim_xml_whitespace(&text);
                if trimmed.is_empty() {
                    continue;
                }
                let Some(&current) = open.last() else {
                    return Err(if root_closed { ParseError::TrailingContent } else { ParseError::NotXmlRoot });
                };
                let raw = std::str::from_utf8(trimmed).map_err(quick_xml::encoding::EncodingError::Utf8)?;
                let unescaped = quick_xml::escape::unescape(raw)?;
                nodes[current].text.push_str(&unescaped);
            }
            Event::CData(cdata) => {
                let Some(&current) = open.last() else {
                    return Err(if root_closed { ParseError::TrailingContent } else { ParseError::NotXmlRoot });
                };
                nodes[current].text.push_str(&cdata.decode()?);
            }
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(&unclosed) = open.last() {
        let name = nodes[unclosed].name.clone();
        return Err(ParseError::Syntax(quick_xml::Error::IllFormed(quick_xml::errors::IllFormedError::MissingEndTag(
            name,
        ))));
    }
    if nodes.is_empty() {
        return Err(ParseError::NoRoot);
    }
    Ok(nodes)
}

/// Depth is bounded by [`MAX_DEPTH`], so the recursion is too.
fn emit_children(nodes: &[Node], children: &[usize], path: &mut String, out: &mut Vec<(String, String)>) {
    let mut totals: HashMap<&str, (usize, usize)> = HashMap::with_capacity(children.len());
    for &child in children {
        totals.entry(nodes[child].name.as_str()).or_default().0 += 1;
    }
    for &child in children {
        let node = &nodes[child];
        let Some((total, seen)) = totals.get_mut(node.name.as_str()) else {
            continue; // unreachable: every child name was counted above
        };
        let (total, index) = (*total, *seen);
        *seen += 1;
        let restore = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&node.name);
        if node.name == "item" || total > 1 {
            path.push('[');
            path.push_str(&index.to_string());
            path.push(']');
        }
        if node.children.is_empty() {
            out.push((path.clone(), node.text.clone()));
        } else {
            emit_children(nodes, &node.children, path, out);
        }
        path.truncate(restore);
    }
}
