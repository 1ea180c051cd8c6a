//! [`Message`] → the XML body WeChat would POST, and [`Envelope`] → the safe-mode body: the
//! inverse of [`super::parse`] and [`super::parse_envelope`], so the mock, demo mode, the
//! simulator and the tests send pushes written one way instead of by hand.
//!
//! Owns: the element layout of each push kind (wechat-api.md §3, §4, §9.8), in the order the
//! docs show. Text is CDATA written by `wechat::cdata` (the same helper as passive replies);
//! numbers are bare, as WeChat writes them.
//!
//! The promise, checked by the round-trip tests: for any `Message` that [`super::parse`]
//! returned, `parse(&message.to_xml())` returns it again. For a `Message` built by hand the XML
//! is always well-formed; values XML cannot carry (forbidden characters, non-finite numbers) are
//! dropped or written as they print, so such a message may read back differently.

use std::fmt::Display;

use super::kind::documented_name;
use super::{Envelope, Inbound, Message};
use crate::wechat::cdata::{push_cdata, push_cdata_element};

impl Message {
    /// This push as WeChat sends it in plaintext mode (and encrypts it in safe mode).
    ///
    /// [`Inbound::Unknown`] is written from its `fields` (the [`super::flatten`] paths, rebuilt
    /// into elements), with the header elements taken from the message: a header the fields
    /// lack is added in front, one they hold with another value is overwritten, and an `Event`
    /// is dropped when the message has none. A field whose path has a part that is not an XML
    /// name is left out, so the output stays well-formed.
    pub fn to_xml(&self) -> String {
        let mut out = Out(String::with_capacity(320));
        out.0.push_str("<xml>");
        match &self.body {
            Inbound::Unknown { msg_type, event, fields } => {
                self.write_unknown(&mut out, msg_type, event.as_deref(), fields);
            }
            body => {
                self.write_header(&mut out);
                write_body(&mut out, body);
            }
        }
        out.0.push_str("</xml>");
        out.0
    }

    /// `ToUserName`, `FromUserName`, `CreateTime`, `MsgType` and, for events, `Event`.
    fn write_header(&self, out: &mut Out) {
        out.text("ToUserName", &self.to_user);
        out.text("FromUserName", &self.from_user);
        out.num("CreateTime", self.create_time);
        let name = self.body.known_kind().map_or("", documented_name);
        if is_ordinary(&self.body) {
            out.text("MsgType", name);
        } else {
            out.text("MsgType", "event");
            out.text("Event", name);
        }
    }

    fn write_unknown(&self, out: &mut Out, msg_type: &str, event: Option<&str>, fields: &[(String, String)]) {
        let create_time = self.create_time.to_string();
        let headers = [
            ("ToUserName", Some(self.to_user.as_str())),
            ("FromUserName", Some(self.from_user.as_str())),
            ("CreateTime", Some(create_time.as_str())),
            ("MsgType", Some(msg_type)),
            ("Event", event),
        ];
        let mut root = Element::new("xml");
        for (name, value) in headers {
            if let Some(value) = value
                && !fields.iter().any(|(path, _)| path == name)
            {
                root.insert(name, value);
            }
        }
        for (path, value) in fields {
            let value = match headers.iter().find(|(name, _)| name == path) {
                // Keep the field's own text when it means the same (`CreateTime` " 1" is 1), so
                // a parsed message reads back with identical fields.
                Some(&(_, Some(header))) if same_header(path, value, header) => value.as_str(),
                Some(&(_, Some(header))) => header,
                Some(&(_, None)) => continue,
                None => value.as_str(),
            };
            root.insert(path, value);
        }
        for child in &root.children {
            child.write(out);
        }
    }
}

impl Envelope {
    /// The body of a safe-mode push (wechat-api.md §2.1): `ToUserName` and `Encrypt`, each left
    /// out when `None`. Compatible mode's plaintext-plus-`Encrypt` body is not written here.
    pub fn to_xml(&self) -> String {
        let mut out = Out(String::with_capacity(64 + self.encrypt.as_ref().map_or(0, String::len)));
        out.0.push_str("<xml>");
        out.opt_text("ToUserName", self.to_user.as_deref());
        out.opt_text("Encrypt", self.encrypt.as_deref());
        out.0.push_str("</xml>");
        out.0
    }
}

fn is_ordinary(body: &Inbound) -> bool {
    matches!(
        body,
        Inbound::Text { .. }
            | Inbound::Image { .. }
            | Inbound::Voice { .. }
            | Inbound::Video { .. }
            | Inbound::ShortVideo { .. }
            | Inbound::Location { .. }
            | Inbound::Link { .. }
    )
}

/// Everything after the header of a modelled kind.
fn write_body(out: &mut Out, body: &Inbound) {
    match body {
        Inbound::Text { content, msg_id, msg_data_id, idx } => {
            out.text("Content", content);
            out.opt_num("MsgId", *msg_id);
            out.opt_text("MsgDataId", msg_data_id.as_deref());
            out.opt_text("Idx", idx.as_deref());
        }
        Inbound::Image { pic_url, media_id, msg_id } => {
            out.text("PicUrl", pic_url);
            out.opt_text("MediaId", media_id.as_deref());
            out.opt_num("MsgId", *msg_id);
        }
        Inbound::Voice { media_id, format, recognition, msg_id } => {
            out.text("MediaId", media_id);
            out.opt_text("Format", format.as_deref());
            out.opt_text("Recognition", recognition.as_deref());
            out.opt_num("MsgId", *msg_id);
        }
        Inbound::Video { media_id, thumb_media_id, msg_id }
        | Inbound::ShortVideo { media_id, thumb_media_id, msg_id } => {
            out.text("MediaId", media_id);
            out.opt_text("ThumbMediaId", thumb_media_id.as_deref());
            out.opt_num("MsgId", *msg_id);
        }
        Inbound::Location { latitude, longitude, scale, label, msg_id } => {
            out.num("Location_X", latitude);
            out.num("Location_Y", longitude);
            out.opt_num("Scale", *scale);
            out.text("Label", label);
            out.opt_num("MsgId", *msg_id);
        }
        Inbound::Link { title, description, url, msg_id } => {
            out.opt_text("Title", title.as_deref());
            out.opt_text("Description", description.as_deref());
            out.text("Url", url);
            out.opt_num("MsgId", *msg_id);
        }
        Inbound::Subscribe { event_key, scene, ticket } => {
            // The parser derives `scene` from the key; a hand-built follow may give only the scene.
            let from_scene = scene.as_ref().map(|scene| format!("qrscene_{scene}"));
            out.opt_text("EventKey", event_key.as_deref().or(from_scene.as_deref()));
            out.opt_text("Ticket", ticket.as_deref());
        }
        Inbound::Unsubscribe => {}
        Inbound::Scan { scene, ticket } => {
            // SCAN's key is documented without the prefix, and the parser strips one if present;
            // a scene that itself starts with it needs one more to read back unchanged.
            if scene.starts_with("qrscene_") {
                out.text("EventKey", &format!("qrscene_{scene}"));
            } else {
                out.text("EventKey", scene);
            }
            out.opt_text("Ticket", ticket.as_deref());
        }
        Inbound::LocationReport { latitude, longitude, precision } => {
            out.num("Latitude", latitude);
            out.num("Longitude", longitude);
            out.opt_num("Precision", *precision);
        }
        Inbound::Click { key } => out.text("EventKey", key),
        Inbound::View { url: key, menu_id } | Inbound::ViewMiniProgram { page_path: key, menu_id } => {
            out.text("EventKey", key);
            out.opt_text("MenuId", menu_id.as_deref());
        }
        Inbound::ScanCodePush { key, scan_type, scan_result }
        | Inbound::ScanCodeWaitMsg { key, scan_type, scan_result } => {
            out.text("EventKey", key);
            out.open("ScanCodeInfo");
            out.opt_text("ScanType", scan_type.as_deref());
            out.text("ScanResult", scan_result);
            out.close("ScanCodeInfo");
        }
        Inbound::PicSysPhoto { key, pics }
        | Inbound::PicPhotoOrAlbum { key, pics }
        | Inbound::PicWeixin { key, pics } => {
            out.text("EventKey", key);
            out.open("SendPicsInfo");
            out.num("Count", pics.len());
            if !pics.is_empty() {
                out.open("PicList");
                for md5 in pics {
                    out.open("item");
                    out.text("PicMd5Sum", md5);
                    out.close("item");
                }
                out.close("PicList");
            }
            out.close("SendPicsInfo");
        }
        Inbound::LocationSelect { key, latitude, longitude, scale, label, poiname } => {
            out.text("EventKey", key);
            out.open("SendLocationInfo");
            out.num("Location_X", latitude);
            out.num("Location_Y", longitude);
            out.opt_num("Scale", *scale);
            out.text("Label", label);
            out.text("Poiname", poiname);
            out.close("SendLocationInfo");
        }
        Inbound::MassSendJobFinish {
            msg_id,
            status,
            total_count,
            filter_count,
            sent_count,
            error_count,
            copyright_check_state,
            copyright_items,
            article_urls,
        } => {
            out.num("MsgID", msg_id);
            out.text("Status", status);
            out.num("TotalCount", total_count);
            out.num("FilterCount", filter_count);
            out.num("SentCount", sent_count);
            out.num("ErrorCount", error_count);
            if copyright_check_state.is_some() || !copyright_items.is_empty() {
                out.open("CopyrightCheckResult");
                out.num("Count", copyright_items.len());
                out.open("ResultList");
                for item in copyright_items {
                    out.open("item");
                    out.opt_num("ArticleIdx", item.article_idx);
                    out.opt_num("UserDeclareState", item.user_declare_state);
                    out.opt_num("AuditState", item.audit_state);
                    out.opt_text("OriginalArticleUrl", item.original_article_url.as_deref());
                    out.opt_num("OriginalArticleType", item.original_article_type);
                    out.opt_num("CanReprint", item.can_reprint);
                    out.opt_num("NeedReplaceContent", item.need_replace_content);
                    out.opt_num("NeedShowReprintSource", item.need_show_reprint_source);
                    out.close("item");
                }
                out.close("ResultList");
                out.opt_num("CheckState", *copyright_check_state);
                out.close("CopyrightCheckResult");
            }
            out.open("ArticleUrlResult");
            out.num("Count", article_urls.len());
            out.open("ResultList");
            for article in article_urls {
                out.open("item");
                out.opt_num("ArticleIdx", article.idx);
                out.text("ArticleUrl", &article.url);
                out.close("item");
            }
            out.close("ResultList");
            out.close("ArticleUrlResult");
        }
        Inbound::TemplateSendJobFinish { msg_id, status } => {
            out.num("MsgID", msg_id);
            out.text("Status", status);
        }
        Inbound::SubscribeMsgPopup { items } => out.list("SubscribeMsgPopupEvent", items, |out, item| {
            out.text("TemplateId", &item.template_id);
            out.text("SubscribeStatusString", &item.status);
            out.opt_num("PopupScene", item.popup_scene);
        }),
        Inbound::SubscribeMsgChange { items } => out.list("SubscribeMsgChangeEvent", items, |out, item| {
            out.text("TemplateId", &item.template_id);
            out.text("SubscribeStatusString", &item.status);
        }),
        Inbound::SubscribeMsgSent { items } => out.list("SubscribeMsgSentEvent", items, |out, item| {
            out.text("TemplateId", &item.template_id);
            out.opt_num("MsgID", item.msg_id);
            out.opt_num("ErrorCode", item.error_code);
            out.opt_text("ErrorStatus", item.error_status.as_deref());
        }),
        Inbound::FreePublishJobFinish { publish_id, publish_status, article_id, articles, fail_idx } => {
            out.open("PublishEventInfo");
            out.text("publish_id", publish_id);
            out.num("publish_status", publish_status);
            out.opt_text("article_id", article_id.as_deref());
            if !articles.is_empty() {
                out.open("article_detail");
                out.num("count", articles.len());
                for article in articles {
                    out.open("item");
                    out.opt_num("idx", article.idx);
                    out.text("article_url", &article.url);
                    out.close("item");
                }
                out.close("article_detail");
            }
            for idx in fail_idx {
                out.num("fail_idx", idx);
            }
            out.close("PublishEventInfo");
        }
        // Written from its fields by `Message::to_xml`.
        Inbound::Unknown { .. } => {}
    }
}

/// Whether a header field's text means the message's value.
fn same_header(name: &str, field: &str, header: &str) -> bool {
    if name == "CreateTime" { field.trim().parse::<i64>().ok() == header.parse().ok() } else { field == header }
}

/// The output buffer, with one method per way an element is written.
struct Out(String);

impl Out {
    fn open(&mut self, name: &str) {
        self.0.push('<');
        self.0.push_str(name);
        self.0.push('>');
    }

    fn close(&mut self, name: &str) {
        self.0.push_str("</");
        self.0.push_str(name);
        self.0.push('>');
    }

    fn text(&mut self, name: &str, value: &str) {
        push_cdata_element(&mut self.0, name, value);
    }

    fn opt_text(&mut self, name: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.text(name, value);
        }
    }

    /// A number, bare. `Display` of an `f64` is the shortest text that parses back to it.
    fn num(&mut self, name: &str, value: impl Display) {
        use std::fmt::Write as _;
        self.open(name);
        // Writing to a String cannot fail.
        let _ = write!(self.0, "{value}");
        self.close(name);
    }

    fn opt_num(&mut self, name: &str, value: Option<impl Display>) {
        if let Some(value) = value {
            self.num(name, value);
        }
    }

    /// `<wrapper><List>..</List>..</wrapper>`, or nothing for no items: the parser reads an
    /// absent wrapper as an empty list.
    fn list<T>(&mut self, wrapper: &str, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        if items.is_empty() {
            return;
        }
        self.open(wrapper);
        for entry in items {
            self.open("List");
            item(self, entry);
            self.close("List");
        }
        self.close(wrapper);
    }
}

/// An element rebuilt from [`super::flatten`] paths, for [`Inbound::Unknown`].
struct Element<'a> {
    name: &'a str,
    text: Option<&'a str>,
    children: Vec<Element<'a>>,
}

impl<'a> Element<'a> {
    fn new(name: &'a str) -> Self {
        Self { name, text: None, children: Vec::new() }
    }

    /// Adds the leaf at `path` (`A.item[0].B`, `C[1]`), creating the elements on the way.
    /// `name[i]` is the i-th `name` among its siblings, as flatten numbers them; a part without
    /// an index is the only one of its name. Paths with a part that is not an XML name are
    /// skipped.
    fn insert(&mut self, path: &'a str, value: &'a str) {
        let Some(parts) = path.split('.').map(split_index).collect::<Option<Vec<_>>>() else {
            return;
        };
        let mut node = self;
        for (name, index) in parts {
            let position = node
                .children
                .iter()
                .enumerate()
                .filter(|(_, child)| child.name == name)
                .nth(index.unwrap_or(0))
                .map(|(position, _)| position);
            let position = position.unwrap_or_else(|| {
                node.children.push(Element::new(name));
                node.children.len() - 1
            });
            node = &mut node.children[position];
        }
        node.text = Some(value);
    }

    /// Leaves as CDATA, except digit strings, bare as WeChat writes numbers (bare text is only
    /// trimmed when read, and digits have nothing to trim).
    fn write(&self, out: &mut Out) {
        out.open(self.name);
        match self.text {
            Some(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => out.0.push_str(text),
            Some(text) => push_cdata(&mut out.0, text),
            None => {}
        }
        for child in &self.children {
            child.write(out);
        }
        out.close(self.name);
    }
}

/// `name[3]` → `(name, Some(3))`, `name` → `(name, None)`; `None` when it is not that shape or
/// `name` is not an XML name.
fn split_index(part: &str) -> Option<(&str, Option<usize>)> {
    let (name, index) = match part.strip_suffix(']').and_then(|rest| rest.split_once('[')) {
        Some((name, index)) => (name, Some(index.parse().ok()?)),
        None => (part, None),
    };
    is_xml_name(name).then_some((name, index))
}

/// A conservative reading of XML 1.0's `Name`: a letter, `_` or `:`, then letters, digits, `-`,
/// `.`, `_` or `:`; any non-ASCII letter or digit counts. Everything flatten emits passes.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else { return false };
    (first.is_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
}
