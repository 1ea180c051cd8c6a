//! Inbound pushes: the XML body WeChat POSTs to the callback URL, turned into a typed [`Message`].
//!
//! Owns: the vocabulary of ordinary messages and event pushes (wechat-api.md §3, §4, §9.8), the
//! decision of which push is which [`Inbound`] variant, the dedupe key WeChat's retry rule needs
//! (§5), locating `<Encrypt>` in safe/compatible-mode bodies ([`parse_envelope`]), and a generic
//! path → text view of any push ([`flatten`]) for kinds we do not model.
//!
//! Must not: import anything else from this crate (the `wechat` module is the protocol layer and
//! depends on nothing above it), decrypt (crypto.rs does), do I/O, log, or panic on any input:
//! the body comes straight off the network and fuzzers will hammer this parser.
//!
//! Hostile input: every entry point refuses a `<!DOCTYPE` or `<!ENTITY` declaration outside CDATA
//! before parsing ([`ParseError::Doctype`]); [`flatten`] caps nesting at [`MAX_DEPTH`]; the root
//! element must be `<xml>`.

use std::collections::HashMap;

use quick_xml::Reader;
use quick_xml::de::DeError;
use quick_xml::events::Event;
use serde::{Deserialize, Serialize};

/// How deep [`flatten`] lets elements nest, counting `<xml>` as 1. WeChat's deepest push
/// (`MASSSENDJOBFINISH` → `CopyrightCheckResult.ResultList.item.ArticleIdx`) is 5 deep; the cap
/// keeps a hostile body from costing unbounded work or memory.
pub const MAX_DEPTH: usize = 16;

/// Why a body is not a push we can attribute. The callback answers 400 for exactly these.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// A DTD can define entities (billion laughs, external entities); WeChat never sends one.
    #[error("XML body carries a DOCTYPE or ENTITY declaration")]
    Doctype,
    /// The body is not well-formed XML (or uses an entity XML does not predefine).
    #[error("XML body is not well-formed")]
    Syntax(#[source] quick_xml::Error),
    /// The envelope has the right syntax but not the shape of one (e.g. two `<Encrypt>`).
    #[error("XML body does not have the shape of a WeChat envelope")]
    Shape(#[source] DeError),
    /// Every WeChat push is wrapped in `<xml>`; anything else is not from WeChat.
    #[error("root element is not <xml>")]
    NotXmlRoot,
    /// Empty body, or only a prolog.
    #[error("XML body has no root element")]
    NoRoot,
    /// An element or text follows the root element.
    #[error("content after the root element")]
    TrailingContent,
    /// Elements are nested deeper than [`MAX_DEPTH`].
    #[error("elements nested deeper than {MAX_DEPTH}")]
    TooDeep,
    /// One of `ToUserName`, `FromUserName`, `CreateTime`, `MsgType` is absent or blank: a push we
    /// cannot attribute (or dedupe) is bad input.
    #[error("push has no {0}")]
    MissingField(&'static str),
    /// A header field is present but unusable (`CreateTime` that is not an integer).
    #[error("push has an invalid {0}")]
    InvalidField(&'static str),
}

impl From<quick_xml::Error> for ParseError {
    fn from(err: quick_xml::Error) -> Self {
        Self::Syntax(err)
    }
}

impl From<quick_xml::escape::EscapeError> for ParseError {
    fn from(err: quick_xml::escape::EscapeError) -> Self {
        Self::Syntax(quick_xml::Error::Escape(err))
    }
}

impl From<quick_xml::encoding::EncodingError> for ParseError {
    fn from(err: quick_xml::encoding::EncodingError) -> Self {
        Self::Syntax(quick_xml::Error::Encoding(err))
    }
}

/// One inbound push: who sent it to which account, when, and what it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `ToUserName`: the account's original id (`gh_...`); a passive reply's `FromUserName`.
    pub to_user: String,
    /// `FromUserName`: the follower's openid (for job-finish events, the sending admin's).
    pub from_user: String,
    /// `CreateTime`: unix seconds, as WeChat stamped the push.
    pub create_time: i64,
    /// What the push is.
    pub body: Inbound,
}

/// The kinds of push tagcast acts on, plus [`Inbound::Unknown`] for everything else.
///
/// Required vs optional: a variant requires only the elements it exists for (the text of a text
/// message, the `EventKey` of a menu click, the counts of a mass-send result, ...). If one of
/// those is absent or malformed (`Location_X` not a number, `MsgID` of a job-finish event not an
/// integer) the push is still attributable, so it becomes [`Inbound::Unknown`] rather than an
/// error: WeChat gets `success`, the push is stored, nothing acts on it. Everything else is an
/// `Option` (or empty) so that a field nobody acts on can never demote a push. In particular
/// `msg_id` of ordinary messages is `Option`: peer fixtures carry pushes without `MsgId` (a
/// video) and its only use is the dedupe key, which falls back to sender + time (see
/// [`Message::dedupe_key`]); a text message without a usable `MsgId` still triggers keyword rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Inbound {
    /// `text`. `msg_data_id`/`idx` only when sent from an article's comment area; the docs'
    /// own example uses `xxxx`, so they stay strings.
    Text { content: String, msg_id: Option<u64>, msg_data_id: Option<String>, idx: Option<String> },
    /// `image`. `media_id` is optional: pushes from before 2014 carry only `PicUrl`.
    Image { pic_url: String, media_id: Option<String>, msg_id: Option<u64> },
    /// `voice`; `recognition` only when the account enabled speech recognition.
    Voice { media_id: String, format: Option<String>, recognition: Option<String>, msg_id: Option<u64> },
    /// `video`.
    Video { media_id: String, thumb_media_id: Option<String>, msg_id: Option<u64> },
    /// `shortvideo`.
    ShortVideo { media_id: String, thumb_media_id: Option<String>, msg_id: Option<u64> },
    /// `location` message: the follower shared a place (`Location_X` = latitude).
    /// `label` is empty when WeChat could not name the place (it sends an empty CDATA).
    Location { latitude: f64, longitude: f64, scale: Option<u32>, label: String, msg_id: Option<u64> },
    /// `link`.
    Link { title: Option<String>, description: Option<String>, url: String, msg_id: Option<u64> },
    /// `subscribe` (follow). `scene` is the parametric QR code's scene (`EventKey` without
    /// `qrscene_`), `None` for a plain follow; `event_key` keeps the raw key because other
    /// follow paths put other things there.
    Subscribe { event_key: Option<String>, scene: Option<String>, ticket: Option<String> },
    /// `unsubscribe`. Nothing can be sent back.
    Unsubscribe,
    /// `SCAN`: an existing follower scanned a parametric QR code.
    Scan { scene: String, ticket: Option<String> },
    /// `LOCATION` event: periodic location report (if the account enabled it).
    LocationReport { latitude: f64, longitude: f64, precision: Option<f64> },
    /// Menu `CLICK`: `key` is the button's key.
    Click { key: String },
    /// Menu `VIEW`: the URL opened; `menu_id` when a conditional menu was shown.
    View { url: String, menu_id: Option<String> },
    /// Menu `scancode_push`.
    ScanCodePush { key: String, scan_type: Option<String>, scan_result: String },
    /// Menu `scancode_waitmsg`: the client waits for a (passive) reply.
    ScanCodeWaitMsg { key: String, scan_type: Option<String>, scan_result: String },
    /// Menu `pic_sysphoto`; `pics` are the MD5 sums of the photos (which also arrive as `image`).
    PicSysPhoto { key: String, pics: Vec<String> },
    /// Menu `pic_photo_or_album`.
    PicPhotoOrAlbum { key: String, pics: Vec<String> },
    /// Menu `pic_weixin`.
    PicWeixin { key: String, pics: Vec<String> },
    /// Menu `location_select`; `label` and `poiname` may be empty (WeChat sends them so).
    LocationSelect { key: String, latitude: f64, longitude: f64, scale: Option<u32>, label: String, poiname: String },
    /// Menu `view_miniprogram`: `page_path` is the mini-program page.
    ViewMiniProgram { page_path: String, menu_id: Option<String> },
    /// `MASSSENDJOBFINISH` (§9.8): reconcile with the stored `msg_id` of a mass send.
    /// `status` is `send success`, `send fail` or `err(n)`.
    MassSendJobFinish {
        msg_id: u64,
        status: String,
        total_count: u64,
        filter_count: u64,
        sent_count: u64,
        error_count: u64,
        copyright_check_state: Option<u32>,
        article_urls: Vec<ArticleUrl>,
    },
    /// `TEMPLATESENDJOBFINISH`: `status` is `success`, `failed:user block` or
    /// `failed: system failed` (sic).
    TemplateSendJobFinish { msg_id: u64, status: String },
    /// `subscribe_msg_popup_event`: answers to a subscription-message popup.
    SubscribeMsgPopup { items: Vec<SubscribeMsgPopupItem> },
    /// `subscribe_msg_change_event`: the follower changed a subscription in settings.
    SubscribeMsgChange { items: Vec<SubscribeMsgChangeItem> },
    /// `subscribe_msg_sent_event`: delivery results of subscription messages.
    SubscribeMsgSent { items: Vec<SubscribeMsgSentItem> },
    /// `FREEPUBLISHJOBFINISH`: result of a freepublish submit (`publish_status` 0 = ok).
    FreePublishJobFinish {
        publish_id: String,
        publish_status: u32,
        article_id: Option<String>,
        articles: Vec<ArticleUrl>,
        fail_idx: Vec<u32>,
    },
    /// Any other `MsgType`/`Event` (WeCom, cards, wifi, ...), or a known one whose required
    /// element is missing or malformed. `fields` is [`flatten`] of the body, so nothing is lost.
    Unknown { msg_type: String, event: Option<String>, fields: Vec<(String, String)> },
}

/// A published article's URL, from `ArticleUrlResult` or `article_detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleUrl {
    /// 1-based position in the news item, when WeChat gave a usable one.
    pub idx: Option<u32>,
    pub url: String,
}

/// One answer in a subscription-message popup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeMsgPopupItem {
    pub template_id: String,
    /// `accept` or `reject`.
    pub status: String,
    pub popup_scene: Option<u32>,
}

/// One changed subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeMsgChangeItem {
    pub template_id: String,
    /// `reject` in practice.
    pub status: String,
}

/// One subscription-message delivery result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscribeMsgSentItem {
    pub template_id: String,
    pub msg_id: Option<u64>,
    pub error_code: Option<i64>,
    pub error_status: Option<String>,
}

/// The outer body in safe mode (`ToUserName` + `Encrypt`) or compatible mode (plain fields plus
/// `Encrypt`). Both are optional here: which one the caller needs depends on `encrypt_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The account (`gh_...`, or a WeCom corp id).
    pub to_user: Option<String>,
    /// The base64 ciphertext, exactly as received: msg_signature is computed over it.
    pub encrypt: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Raw serde shape: every element we know, all text kept as strings and converted by hand, so a
// malformed number demotes a push to Unknown instead of failing the whole parse.

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawMessage {
    to_user_name: Option<String>,
    from_user_name: Option<String>,
    create_time: Option<String>,
    msg_type: Option<String>,
    event: Option<String>,
    event_key: Option<String>,
    ticket: Option<String>,
    content: Option<String>,
    #[serde(alias = "MsgID")]
    msg_id: Option<String>,
    msg_data_id: Option<String>,
    idx: Option<String>,
    pic_url: Option<String>,
    media_id: Option<String>,
    format: Option<String>,
    recognition: Option<String>,
    thumb_media_id: Option<String>,
    #[serde(rename = "Location_X")]
    location_x: Option<String>,
    #[serde(rename = "Location_Y")]
    location_y: Option<String>,
    scale: Option<String>,
    label: Option<String>,
    title: Option<String>,
    description: Option<String>,
    url: Option<String>,
    latitude: Option<String>,
    longitude: Option<String>,
    precision: Option<String>,
    menu_id: Option<String>,
    scan_code_info: Option<RawScanCodeInfo>,
    send_pics_info: Option<RawSendPicsInfo>,
    send_location_info: Option<RawSendLocationInfo>,
    status: Option<String>,
    total_count: Option<String>,
    filter_count: Option<String>,
    sent_count: Option<String>,
    error_count: Option<String>,
    copyright_check_result: Option<RawCopyrightCheckResult>,
    article_url_result: Option<RawArticleUrlResult>,
    subscribe_msg_popup_event: Option<RawSubscribeMsgEvent>,
    subscribe_msg_change_event: Option<RawSubscribeMsgEvent>,
    subscribe_msg_sent_event: Option<RawSubscribeMsgEvent>,
    publish_event_info: Option<RawPublishEventInfo>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawScanCodeInfo {
    scan_type: Option<String>,
    scan_result: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawSendPicsInfo {
    pic_list: Option<RawPicList>,
}

#[derive(Deserialize, Default)]
struct RawPicList {
    #[serde(rename = "item", default)]
    item: Vec<RawPicItem>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawPicItem {
    pic_md5_sum: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawSendLocationInfo {
    #[serde(rename = "Location_X")]
    location_x: Option<String>,
    #[serde(rename = "Location_Y")]
    location_y: Option<String>,
    scale: Option<String>,
    label: Option<String>,
    poiname: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawCopyrightCheckResult {
    check_state: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawArticleUrlResult {
    result_list: Option<RawArticleUrlList>,
}

#[derive(Deserialize, Default)]
struct RawArticleUrlList {
    #[serde(rename = "item", default)]
    item: Vec<RawArticleUrlItem>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawArticleUrlItem {
    article_idx: Option<String>,
    article_url: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawSubscribeMsgEvent {
    #[serde(rename = "List", default)]
    list: Vec<RawSubscribeMsgItem>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawSubscribeMsgItem {
    template_id: Option<String>,
    subscribe_status_string: Option<String>,
    popup_scene: Option<String>,
    #[serde(rename = "MsgID", alias = "MsgId")]
    msg_id: Option<String>,
    error_code: Option<String>,
    error_status: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawPublishEventInfo {
    publish_id: Option<String>,
    publish_status: Option<String>,
    article_id: Option<String>,
    article_detail: Option<RawArticleDetail>,
    #[serde(default)]
    fail_idx: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RawArticleDetail {
    #[serde(default)]
    item: Vec<RawPublishedArticle>,
}

#[derive(Deserialize, Default)]
struct RawPublishedArticle {
    idx: Option<String>,
    article_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawEnvelope {
    to_user_name: Option<String>,
    encrypt: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Classification

/// The kinds we model, decided from `MsgType` and `Event` before any field is converted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Text,
    Image,
    Voice,
    Video,
    ShortVideo,
    Location,
    Link,
    Subscribe,
    Unsubscribe,
    Scan,
    LocationReport,
    Click,
    View,
    ScanCodePush,
    ScanCodeWaitMsg,
    PicSysPhoto,
    PicPhotoOrAlbum,
    PicWeixin,
    LocationSelect,
    ViewMiniProgram,
    MassSendJobFinish,
    TemplateSendJobFinish,
    SubscribeMsgPopup,
    SubscribeMsgChange,
    SubscribeMsgSent,
    FreePublishJobFinish,
}

const MESSAGE_TYPES: [(&str, Kind); 7] = [
    ("text", Kind::Text),
    ("image", Kind::Image),
    ("voice", Kind::Voice),
    ("video", Kind::Video),
    ("shortvideo", Kind::ShortVideo),
    ("location", Kind::Location),
    ("link", Kind::Link),
];

/// Event names as documented (the spelling used in dedupe keys).
const EVENTS: [(&str, Kind); 19] = [
    ("subscribe", Kind::Subscribe),
    ("unsubscribe", Kind::Unsubscribe),
    ("SCAN", Kind::Scan),
    ("LOCATION", Kind::LocationReport),
    ("CLICK", Kind::Click),
    ("VIEW", Kind::View),
    ("scancode_push", Kind::ScanCodePush),
    ("scancode_waitmsg", Kind::ScanCodeWaitMsg),
    ("pic_sysphoto", Kind::PicSysPhoto),
    ("pic_photo_or_album", Kind::PicPhotoOrAlbum),
    ("pic_weixin", Kind::PicWeixin),
    ("location_select", Kind::LocationSelect),
    ("view_miniprogram", Kind::ViewMiniProgram),
    ("MASSSENDJOBFINISH", Kind::MassSendJobFinish),
    ("TEMPLATESENDJOBFINISH", Kind::TemplateSendJobFinish),
    ("subscribe_msg_popup_event", Kind::SubscribeMsgPopup),
    ("subscribe_msg_change_event", Kind::SubscribeMsgChange),
    ("subscribe_msg_sent_event", Kind::SubscribeMsgSent),
    ("FREEPUBLISHJOBFINISH", Kind::FreePublishJobFinish),
];

/// `MsgType` is matched case-insensitively (a peer sends `Event`); so are event names: the docs
/// call them case-sensitive, but a peer sends `scan` for `SCAN`, and no two documented names
/// differ only by case, so accepting variants cannot confuse two kinds.
fn classify(msg_type: &str, event: Option<&str>) -> Option<Kind> {
    let msg_type = msg_type.trim();
    if msg_type.eq_ignore_ascii_case("event") {
        let event = event?.trim();
        return EVENTS.iter().find(|(name, _)| name.eq_ignore_ascii_case(event)).map(|&(_, kind)| kind);
    }
    MESSAGE_TYPES.iter().find(|(name, _)| name.eq_ignore_ascii_case(msg_type)).map(|&(_, kind)| kind)
}

fn is_event(msg_type: &str) -> bool {
    msg_type.trim().eq_ignore_ascii_case("event")
}

// ---------------------------------------------------------------------------------------------
// Public entry points

/// Parses a plaintext push (or the decrypted inner XML of a safe-mode push).
///
/// One serde pass for every modelled kind; [`flatten`] runs only for [`Inbound::Unknown`].
/// Content after the root element is not examined on the typed path.
///
/// # Errors
/// [`ParseError`] when the body is not well-formed XML, carries a DTD, has a root other than
/// `<xml>`, or lacks a usable `ToUserName`, `FromUserName`, `CreateTime` (integer) or `MsgType`.
/// A known kind with a missing or malformed required element is *not* an error: it becomes
/// [`Inbound::Unknown`] (see [`Inbound`]). So is a body serde cannot map onto the known shape
/// (a known element repeated, or holding child elements) as long as [`flatten`] can read it.
pub fn parse(xml: &str) -> Result<Message, ParseError> {
    let xml = strip_bom(xml);
    reject_doctype(xml)?;
    check_root(xml)?;
    let mut raw: RawMessage = match quick_xml::de::from_str(xml) {
        Ok(raw) => raw,
        Err(DeError::InvalidXml(err)) => return Err(ParseError::Syntax(err)),
        Err(_) => return parse_unknown_from_flatten(xml),
    };
    let to_user = required_header(raw.to_user_name.take(), "ToUserName")?;
    let from_user = required_header(raw.from_user_name.take(), "FromUserName")?;
    let create_time = parse_create_time(raw.create_time.as_deref())?;
    let msg_type = required_header(raw.msg_type.take(), "MsgType")?;
    let event = raw.event.take();
    let body = match classify(&msg_type, event.as_deref()).and_then(|kind| build(kind, raw)) {
        Some(body) => body,
        None => Inbound::Unknown { msg_type, event, fields: flatten(xml)? },
    };
    Ok(Message { to_user, from_user, create_time, body })
}

/// Reads the outer body of a safe- or compatible-mode push: `ToUserName` and `Encrypt`.
/// Other elements are ignored; whether `Encrypt` must be present is the caller's call
/// (it depends on `encrypt_type`).
///
/// # Errors
/// [`ParseError`] for malformed XML, a DTD, a root other than `<xml>`, or a repeated
/// `ToUserName`/`Encrypt` ([`ParseError::Shape`]): which ciphertext would we verify?
pub fn parse_envelope(xml: &str) -> Result<Envelope, ParseError> {
    let xml = strip_bom(xml);
    reject_doctype(xml)?;
    check_root(xml)?;
    match quick_xml::de::from_str::<RawEnvelope>(xml) {
        Ok(raw) => Ok(Envelope { to_user: raw.to_user_name, encrypt: raw.encrypt }),
        Err(DeError::InvalidXml(err)) => Err(ParseError::Syntax(err)),
        Err(err) => Err(ParseError::Shape(err)),
    }
}

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

impl Message {
    /// The key that makes WeChat's retries (same push up to 3 more times, §5) act once.
    ///
    /// * an ordinary message with a `MsgId`: `m:{msg_id}`;
    /// * `MASSSENDJOBFINISH`/`TEMPLATESENDJOBFINISH`: `e:{from}:{create_time}:{EVENT}:{msg_id}`.
    ///   They carry `MsgID` but are events, so they key on sender + time + event as WeChat
    ///   documents; the `MsgID` is appended because one admin's mass sends (or one follower's
    ///   template messages) can finish within the same second, and a retry carries the same id;
    /// * every other push: `e:{from}:{create_time}:{event or msg_type}`, using the documented
    ///   spelling for modelled kinds and the raw value for [`Inbound::Unknown`].
    pub fn dedupe_key(&self) -> String {
        match &self.body {
            Inbound::MassSendJobFinish { msg_id, .. } | Inbound::TemplateSendJobFinish { msg_id, .. } => {
                format!("e:{}:{}:{}:{}", self.from_user, self.create_time, self.wire_name(), msg_id)
            }
            Inbound::Unknown { msg_type, .. } if is_event(msg_type) => self.event_dedupe_key(),
            _ => match self.msg_id() {
                Some(id) => format!("m:{id}"),
                None => self.event_dedupe_key(),
            },
        }
    }

    fn event_dedupe_key(&self) -> String {
        format!("e:{}:{}:{}", self.from_user, self.create_time, self.wire_name())
    }

    /// `Event` (or `MsgType` for ordinary messages) as WeChat documents it; raw for Unknown.
    fn wire_name(&self) -> &str {
        match &self.body {
            Inbound::Unknown { msg_type, event: Some(event), .. } if is_event(msg_type) => event,
            Inbound::Unknown { msg_type, .. } => msg_type,
            body => body.known_kind().map_or("", documented_name),
        }
    }

    /// Stable short name of the kind (`text`, `click`, `mass_send_job_finish`, `unknown`):
    /// equal to the `type` tag of the serialized [`Inbound`], for logs, metrics and storage.
    pub fn kind(&self) -> &'static str {
        self.body.kind()
    }

    /// The `MsgId`/`MsgID` the push carries: for ordinary messages the message id, for job-finish
    /// events the id of the mass send or template message. Other events: `None` (a stray
    /// `MsgId` on them is ignored). For [`Inbound::Unknown`], a top-level `MsgId`/`MsgID` that
    /// is an integer.
    pub fn msg_id(&self) -> Option<u64> {
        match &self.body {
            Inbound::Text { msg_id, .. }
            | Inbound::Image { msg_id, .. }
            | Inbound::Voice { msg_id, .. }
            | Inbound::Video { msg_id, .. }
            | Inbound::ShortVideo { msg_id, .. }
            | Inbound::Location { msg_id, .. }
            | Inbound::Link { msg_id, .. } => *msg_id,
            Inbound::MassSendJobFinish { msg_id, .. } | Inbound::TemplateSendJobFinish { msg_id, .. } => Some(*msg_id),
            Inbound::Unknown { fields, .. } => fields
                .iter()
                .find(|(path, _)| path == "MsgId" || path == "MsgID")
                .and_then(|(_, value)| value.trim().parse().ok()),
            _ => None,
        }
    }

    /// The raw `EventKey` (menu key, URL, scene with its `qrscene_` prefix, page path), `None`
    /// when the push has none or it is empty. Rules match on it (CONTRACT.md `POST /rules`).
    pub fn event_key(&self) -> Option<&str> {
        let key = match &self.body {
            Inbound::Subscribe { event_key, .. } => event_key.as_deref(),
            Inbound::Scan { scene, .. } => Some(scene.as_str()),
            Inbound::Click { key }
            | Inbound::ScanCodePush { key, .. }
            | Inbound::ScanCodeWaitMsg { key, .. }
            | Inbound::PicSysPhoto { key, .. }
            | Inbound::PicPhotoOrAlbum { key, .. }
            | Inbound::PicWeixin { key, .. }
            | Inbound::LocationSelect { key, .. } => Some(key.as_str()),
            Inbound::View { url, .. } => Some(url.as_str()),
            Inbound::ViewMiniProgram { page_path, .. } => Some(page_path.as_str()),
            Inbound::Unknown { fields, .. } => {
                fields.iter().find(|(path, _)| path == "EventKey").map(|(_, value)| value.as_str())
            }
            _ => None,
        };
        key.filter(|key| !key.is_empty())
    }
}

impl Inbound {
    /// See [`Message::kind`].
    pub fn kind(&self) -> &'static str {
        self.known_kind().map_or("unknown", kind_name)
    }

    fn known_kind(&self) -> Option<Kind> {
        Some(match self {
            Self::Text { .. } => Kind::Text,
            Self::Image { .. } => Kind::Image,
            Self::Voice { .. } => Kind::Voice,
            Self::Video { .. } => Kind::Video,
            Self::ShortVideo { .. } => Kind::ShortVideo,
            Self::Location { .. } => Kind::Location,
            Self::Link { .. } => Kind::Link,
            Self::Subscribe { .. } => Kind::Subscribe,
            Self::Unsubscribe => Kind::Unsubscribe,
            Self::Scan { .. } => Kind::Scan,
            Self::LocationReport { .. } => Kind::LocationReport,
            Self::Click { .. } => Kind::Click,
            Self::View { .. } => Kind::View,
            Self::ScanCodePush { .. } => Kind::ScanCodePush,
            Self::ScanCodeWaitMsg { .. } => Kind::ScanCodeWaitMsg,
            Self::PicSysPhoto { .. } => Kind::PicSysPhoto,
            Self::PicPhotoOrAlbum { .. } => Kind::PicPhotoOrAlbum,
            Self::PicWeixin { .. } => Kind::PicWeixin,
            Self::LocationSelect { .. } => Kind::LocationSelect,
            Self::ViewMiniProgram { .. } => Kind::ViewMiniProgram,
            Self::MassSendJobFinish { .. } => Kind::MassSendJobFinish,
            Self::TemplateSendJobFinish { .. } => Kind::TemplateSendJobFinish,
            Self::SubscribeMsgPopup { .. } => Kind::SubscribeMsgPopup,
            Self::SubscribeMsgChange { .. } => Kind::SubscribeMsgChange,
            Self::SubscribeMsgSent { .. } => Kind::SubscribeMsgSent,
            Self::FreePublishJobFinish { .. } => Kind::FreePublishJobFinish,
            Self::Unknown { .. } => return None,
        })
    }
}

/// The `MsgType`/`Event` spelling WeChat documents for a kind (used in dedupe keys).
fn documented_name(kind: Kind) -> &'static str {
    MESSAGE_TYPES.iter().chain(EVENTS.iter()).find(|(_, k)| *k == kind).map_or("", |(name, _)| name)
}

/// Must equal serde's snake_case variant names (checked by a test).
fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "text",
        Kind::Image => "image",
        Kind::Voice => "voice",
        Kind::Video => "video",
        Kind::ShortVideo => "short_video",
        Kind::Location => "location",
        Kind::Link => "link",
        Kind::Subscribe => "subscribe",
        Kind::Unsubscribe => "unsubscribe",
        Kind::Scan => "scan",
        Kind::LocationReport => "location_report",
        Kind::Click => "click",
        Kind::View => "view",
        Kind::ScanCodePush => "scan_code_push",
        Kind::ScanCodeWaitMsg => "scan_code_wait_msg",
        Kind::PicSysPhoto => "pic_sys_photo",
        Kind::PicPhotoOrAlbum => "pic_photo_or_album",
        Kind::PicWeixin => "pic_weixin",
        Kind::LocationSelect => "location_select",
        Kind::ViewMiniProgram => "view_mini_program",
        Kind::MassSendJobFinish => "mass_send_job_finish",
        Kind::TemplateSendJobFinish => "template_send_job_finish",
        Kind::SubscribeMsgPopup => "subscribe_msg_popup",
        Kind::SubscribeMsgChange => "subscribe_msg_change",
        Kind::SubscribeMsgSent => "subscribe_msg_sent",
        Kind::FreePublishJobFinish => "free_publish_job_finish",
    }
}

// ---------------------------------------------------------------------------------------------
// Conversion from the raw shape. `None` = a required element is missing or malformed.

fn build(kind: Kind, raw: RawMessage) -> Option<Inbound> {
    let msg_id = parse_num::<u64>(raw.msg_id.as_deref());
    let body = match kind {
        Kind::Text => Inbound::Text { content: raw.content?, msg_id, msg_data_id: raw.msg_data_id, idx: raw.idx },
        Kind::Image => Inbound::Image { pic_url: raw.pic_url?, media_id: raw.media_id, msg_id },
        Kind::Voice => {
            Inbound::Voice { media_id: raw.media_id?, format: raw.format, recognition: raw.recognition, msg_id }
        }
        Kind::Video => Inbound::Video { media_id: raw.media_id?, thumb_media_id: raw.thumb_media_id, msg_id },
        Kind::ShortVideo => Inbound::ShortVideo { media_id: raw.media_id?, thumb_media_id: raw.thumb_media_id, msg_id },
        Kind::Location => Inbound::Location {
            latitude: parse_coordinate(raw.location_x.as_deref(), 90.0)?,
            longitude: parse_coordinate(raw.location_y.as_deref(), 180.0)?,
            scale: parse_num(raw.scale.as_deref()),
            label: raw.label.unwrap_or_default(),
            msg_id,
        },
        Kind::Link => Inbound::Link { title: raw.title, description: raw.description, url: raw.url?, msg_id },
        Kind::Subscribe => {
            let event_key = non_empty(raw.event_key);
            let scene = event_key
                .as_deref()
                .and_then(|key| key.strip_prefix("qrscene_"))
                .filter(|scene| !scene.is_empty())
                .map(str::to_owned);
            Inbound::Subscribe { event_key, scene, ticket: non_empty(raw.ticket) }
        }
        Kind::Unsubscribe => Inbound::Unsubscribe,
        Kind::Scan => {
            let key = raw.event_key?;
            // Documented without the prefix; strip it defensively so rules see one form.
            let scene = match key.strip_prefix("qrscene_") {
                Some(scene) => scene.to_owned(),
                None => key,
            };
            Inbound::Scan { scene, ticket: non_empty(raw.ticket) }
        }
        Kind::LocationReport => Inbound::LocationReport {
            latitude: parse_coordinate(raw.latitude.as_deref(), 90.0)?,
            longitude: parse_coordinate(raw.longitude.as_deref(), 180.0)?,
            precision: parse_num::<f64>(raw.precision.as_deref()).filter(|p| p.is_finite()),
        },
        Kind::Click => Inbound::Click { key: raw.event_key? },
        Kind::View => Inbound::View { url: raw.event_key?, menu_id: raw.menu_id },
        Kind::ScanCodePush | Kind::ScanCodeWaitMsg => {
            let key = raw.event_key?;
            let info = raw.scan_code_info?;
            let scan_result = info.scan_result?;
            let scan_type = info.scan_type;
            if kind == Kind::ScanCodePush {
                Inbound::ScanCodePush { key, scan_type, scan_result }
            } else {
                Inbound::ScanCodeWaitMsg { key, scan_type, scan_result }
            }
        }
        Kind::PicSysPhoto | Kind::PicPhotoOrAlbum | Kind::PicWeixin => {
            let key = raw.event_key?;
            let pics = raw
                .send_pics_info
                .and_then(|info| info.pic_list)
                .map(|list| list.item.into_iter().filter_map(|item| item.pic_md5_sum).collect())
                .unwrap_or_default();
            match kind {
                Kind::PicSysPhoto => Inbound::PicSysPhoto { key, pics },
                Kind::PicPhotoOrAlbum => Inbound::PicPhotoOrAlbum { key, pics },
                _ => Inbound::PicWeixin { key, pics },
            }
        }
        Kind::LocationSelect => {
            let key = raw.event_key?;
            let info = raw.send_location_info?;
            Inbound::LocationSelect {
                key,
                latitude: parse_coordinate(info.location_x.as_deref(), 90.0)?,
                longitude: parse_coordinate(info.location_y.as_deref(), 180.0)?,
                scale: parse_num(info.scale.as_deref()),
                label: info.label.unwrap_or_default(),
                poiname: info.poiname.unwrap_or_default(),
            }
        }
        Kind::ViewMiniProgram => Inbound::ViewMiniProgram { page_path: raw.event_key?, menu_id: raw.menu_id },
        Kind::MassSendJobFinish => Inbound::MassSendJobFinish {
            msg_id: msg_id?,
            status: raw.status?,
            total_count: parse_num(raw.total_count.as_deref())?,
            filter_count: parse_num(raw.filter_count.as_deref())?,
            sent_count: parse_num(raw.sent_count.as_deref())?,
            error_count: parse_num(raw.error_count.as_deref())?,
            copyright_check_state: raw
                .copyright_check_result
                .and_then(|result| parse_num(result.check_state.as_deref())),
            article_urls: raw
                .article_url_result
                .and_then(|result| result.result_list)
                .map(|list| {
                    list.item
                        .into_iter()
                        .filter_map(|item| {
                            Some(ArticleUrl { idx: parse_num(item.article_idx.as_deref()), url: item.article_url? })
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        Kind::TemplateSendJobFinish => Inbound::TemplateSendJobFinish { msg_id: msg_id?, status: raw.status? },
        Kind::SubscribeMsgPopup => Inbound::SubscribeMsgPopup {
            items: raw
                .subscribe_msg_popup_event
                .unwrap_or_default()
                .list
                .into_iter()
                .map(|item| {
                    Some(SubscribeMsgPopupItem {
                        template_id: item.template_id?,
                        status: item.subscribe_status_string?,
                        popup_scene: parse_num(item.popup_scene.as_deref()),
                    })
                })
                .collect::<Option<_>>()?,
        },
        Kind::SubscribeMsgChange => Inbound::SubscribeMsgChange {
            items: raw
                .subscribe_msg_change_event
                .unwrap_or_default()
                .list
                .into_iter()
                .map(|item| {
                    Some(SubscribeMsgChangeItem {
                        template_id: item.template_id?,
                        status: item.subscribe_status_string?,
                    })
                })
                .collect::<Option<_>>()?,
        },
        Kind::SubscribeMsgSent => Inbound::SubscribeMsgSent {
            items: raw
                .subscribe_msg_sent_event
                .unwrap_or_default()
                .list
                .into_iter()
                .map(|item| {
                    Some(SubscribeMsgSentItem {
                        template_id: item.template_id?,
                        msg_id: parse_num(item.msg_id.as_deref()),
                        error_code: parse_num(item.error_code.as_deref()),
                        error_status: item.error_status,
                    })
                })
                .collect::<Option<_>>()?,
        },
        Kind::FreePublishJobFinish => {
            let info = raw.publish_event_info?;
            let publish_id = info.publish_id.map(|id| id.trim().to_owned())?;
            if publish_id.is_empty() {
                return None;
            }
            Inbound::FreePublishJobFinish {
                publish_id,
                publish_status: parse_num(info.publish_status.as_deref())?,
                article_id: non_empty(info.article_id),
                articles: info
                    .article_detail
                    .map(|detail| {
                        detail
                            .item
                            .into_iter()
                            .filter_map(|item| {
                                Some(ArticleUrl { idx: parse_num(item.idx.as_deref()), url: item.article_url? })
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                fail_idx: info.fail_idx.iter().filter_map(|idx| parse_num(Some(idx))).collect(),
            }
        }
    };
    Some(body)
}

/// Used when serde cannot map the body onto [`RawMessage`] but the XML itself may be fine.
fn parse_unknown_from_flatten(xml: &str) -> Result<Message, ParseError> {
    let fields = flatten(xml)?;
    let field = |name: &str| fields.iter().find(|(path, _)| path == name).map(|(_, value)| value.clone());
    let to_user = required_header(field("ToUserName"), "ToUserName")?;
    let from_user = required_header(field("FromUserName"), "FromUserName")?;
    let create_time = parse_create_time(field("CreateTime").as_deref())?;
    let msg_type = required_header(field("MsgType"), "MsgType")?;
    let event = field("Event");
    Ok(Message { to_user, from_user, create_time, body: Inbound::Unknown { msg_type, event, fields } })
}

fn required_header(value: Option<String>, name: &'static str) -> Result<String, ParseError> {
    match value {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ParseError::MissingField(name)),
    }
}

fn parse_create_time(value: Option<&str>) -> Result<i64, ParseError> {
    let value = value.map(str::trim).filter(|v| !v.is_empty()).ok_or(ParseError::MissingField("CreateTime"))?;
    value.parse().map_err(|_| ParseError::InvalidField("CreateTime"))
}

fn parse_num<T: std::str::FromStr>(value: Option<&str>) -> Option<T> {
    value?.trim().parse().ok()
}

/// A latitude (`limit` 90) or longitude (`limit` 180): finite and in range, or unusable.
fn parse_coordinate(value: Option<&str>, limit: f64) -> Option<f64> {
    parse_num::<f64>(value).filter(|v| v.is_finite() && v.abs() <= limit)
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------------------------
// Guards shared by all entry points

fn strip_bom(xml: &str) -> &str {
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
fn reject_doctype(xml: &str) -> Result<(), ParseError> {
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
fn check_root(xml: &str) -> Result<(), ParseError> {
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

fn trim_xml_whitespace(bytes: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let start = bytes.iter().position(|b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    &bytes[start..end]
}

// ---------------------------------------------------------------------------------------------
// flatten: a small element tree (names, text, children), then paths.

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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    use proptest::prelude::*;

    use super::*;

    /// `<ancestor>/shared/` of the crate (works from /work/main and from scratch crates).
    fn shared_dir() -> PathBuf {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        manifest
            .ancestors()
            .map(|dir| dir.join("shared"))
            .find(|shared| shared.join("CONTRACT.md").is_file())
            .unwrap_or_else(|| {
                panic!("no shared/CONTRACT.md in any ancestor of {}: the test data lives there", manifest.display())
            })
    }

    fn fixture(name: &str) -> String {
        let path = shared_dir().join("fixtures").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
    }

    fn msg(to: &str, from: &str, create_time: i64, body: Inbound) -> Message {
        Message { to_user: to.into(), from_user: from.into(), create_time, body }
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    const VRR: &str = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc";
    const COMPAT_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";

    /// One expectation per fixture file: the whole parsed message, and its dedupe key.
    fn fixture_expectations() -> Vec<(&'static str, Message, &'static str)> {
        const MSG_ID: u64 = 1_234_567_890_123_456;
        let pics = |md5: &str| vec![s(md5)];
        vec![
            (
                "text.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1348831860,
                    Inbound::Text { content: s("this is a test"), msg_id: Some(MSG_ID), msg_data_id: None, idx: None },
                ),
                "m:1234567890123456",
            ),
            (
                "text_from_article.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1348831860,
                    Inbound::Text {
                        content: s("this is a test"),
                        msg_id: Some(MSG_ID),
                        msg_data_id: Some(s("xxxx")),
                        idx: Some(s("xxxx")),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "image.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1348831860,
                    Inbound::Image { pic_url: s("this is a url"), media_id: Some(s("media_id")), msg_id: Some(MSG_ID) },
                ),
                "m:1234567890123456",
            ),
            (
                "voice.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1357290913,
                    Inbound::Voice {
                        media_id: s("media_id"),
                        format: Some(s("Format")),
                        recognition: None,
                        msg_id: Some(MSG_ID),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "voice_recognition.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1357290913,
                    Inbound::Voice {
                        media_id: s("media_id"),
                        format: Some(s("Format")),
                        recognition: Some(s("腾讯微信团队")),
                        msg_id: Some(MSG_ID),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "video.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1357290913,
                    Inbound::Video {
                        media_id: s("media_id"),
                        thumb_media_id: Some(s("thumb_media_id")),
                        msg_id: Some(MSG_ID),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "shortvideo.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1357290913,
                    Inbound::ShortVideo {
                        media_id: s("media_id"),
                        thumb_media_id: Some(s("thumb_media_id")),
                        msg_id: Some(MSG_ID),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "location.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1351776360,
                    Inbound::Location {
                        latitude: 23.134521,
                        longitude: 113.358803,
                        scale: Some(20),
                        label: s("位置信息"),
                        msg_id: Some(MSG_ID),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "link.xml",
                msg(
                    "toUser",
                    "fromUser",
                    1351776360,
                    Inbound::Link {
                        title: Some(s("公众平台官网链接")),
                        description: Some(s("公众平台官网链接")),
                        url: s("url"),
                        msg_id: Some(MSG_ID),
                    },
                ),
                "m:1234567890123456",
            ),
            (
                "event_subscribe.xml",
                msg("toUser", "FromUser", 123456789, Inbound::Subscribe { event_key: None, scene: None, ticket: None }),
                "e:FromUser:123456789:subscribe",
            ),
            (
                "event_unsubscribe.xml",
                msg("toUser", "FromUser", 123456789, Inbound::Unsubscribe),
                "e:FromUser:123456789:unsubscribe",
            ),
            (
                "event_subscribe_qrscene.xml",
                msg(
                    "toUser",
                    "FromUser",
                    123456789,
                    Inbound::Subscribe {
                        event_key: Some(s("qrscene_123123")),
                        scene: Some(s("123123")),
                        ticket: Some(s("TICKET")),
                    },
                ),
                "e:FromUser:123456789:subscribe",
            ),
            (
                "event_scan.xml",
                msg(
                    "toUser",
                    "FromUser",
                    123456789,
                    Inbound::Scan { scene: s("SCENE_VALUE"), ticket: Some(s("TICKET")) },
                ),
                "e:FromUser:123456789:SCAN",
            ),
            (
                "event_location.xml",
                msg(
                    "toUser",
                    "fromUser",
                    123456789,
                    Inbound::LocationReport { latitude: 23.137466, longitude: 113.352425, precision: Some(119.385040) },
                ),
                "e:fromUser:123456789:LOCATION",
            ),
            (
                "event_click.xml",
                msg("toUser", "FromUser", 123456789, Inbound::Click { key: s("EVENTKEY") }),
                "e:FromUser:123456789:CLICK",
            ),
            (
                "event_view.xml",
                msg(
                    "toUser",
                    "FromUser",
                    123456789,
                    Inbound::View { url: s("www.qq.com"), menu_id: Some(s("MENUID")) },
                ),
                "e:FromUser:123456789:VIEW",
            ),
            (
                "event_scancode_push.xml",
                msg(
                    "gh_e136c6e50636",
                    "oMgHVjngRipVsoxg6TuX3vz6glDg",
                    1408090502,
                    Inbound::ScanCodePush { key: s("6"), scan_type: Some(s("qrcode")), scan_result: s("1") },
                ),
                "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090502:scancode_push",
            ),
            (
                "event_scancode_waitmsg.xml",
                msg(
                    "gh_e136c6e50636",
                    "oMgHVjngRipVsoxg6TuX3vz6glDg",
                    1408090606,
                    Inbound::ScanCodeWaitMsg { key: s("6"), scan_type: Some(s("qrcode")), scan_result: s("2") },
                ),
                "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090606:scancode_waitmsg",
            ),
            (
                "event_pic_sysphoto.xml",
                msg(
                    "gh_e136c6e50636",
                    "oMgHVjngRipVsoxg6TuX3vz6glDg",
                    1408090651,
                    Inbound::PicSysPhoto { key: s("6"), pics: pics("1b5f7c23b5bf75682a53e7b6d163e185") },
                ),
                "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090651:pic_sysphoto",
            ),
            (
                "event_pic_photo_or_album.xml",
                msg(
                    "gh_e136c6e50636",
                    "oMgHVjngRipVsoxg6TuX3vz6glDg",
                    1408090816,
                    Inbound::PicPhotoOrAlbum { key: s("6"), pics: pics("5a75aaca956d97be686719218f275c6b") },
                ),
                "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090816:pic_photo_or_album",
            ),
            (
                "event_pic_weixin.xml",
                msg(
                    "gh_e136c6e50636",
                    "oMgHVjngRipVsoxg6TuX3vz6glDg",
                    1408090816,
                    Inbound::PicWeixin { key: s("6"), pics: pics("5a75aaca956d97be686719218f275c6b") },
                ),
                "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408090816:pic_weixin",
            ),
            (
                "event_location_select.xml",
                msg(
                    "gh_e136c6e50636",
                    "oMgHVjngRipVsoxg6TuX3vz6glDg",
                    1408091189,
                    Inbound::LocationSelect {
                        key: s("6"),
                        latitude: 23.0,
                        longitude: 113.0,
                        scale: Some(15),
                        label: s(" 广州市海珠区客村艺苑路 106号"),
                        poiname: s(""),
                    },
                ),
                "e:oMgHVjngRipVsoxg6TuX3vz6glDg:1408091189:location_select",
            ),
            (
                "event_view_miniprogram.xml",
                msg(
                    "toUser",
                    "FromUser",
                    123456789,
                    Inbound::ViewMiniProgram { page_path: s("pages/index/index"), menu_id: Some(s("MENUID")) },
                ),
                "e:FromUser:123456789:view_miniprogram",
            ),
            (
                "event_masssendjobfinish.xml",
                msg(
                    "gh_4d00ed8d6399",
                    "oV5CrjpxgaGXNHIQigzNlgLTnwic",
                    1481013459,
                    Inbound::MassSendJobFinish {
                        msg_id: 1000001625,
                        status: s("err(30003)"),
                        total_count: 0,
                        filter_count: 0,
                        sent_count: 0,
                        error_count: 0,
                        copyright_check_state: Some(2),
                        article_urls: vec![ArticleUrl { idx: Some(1), url: s("Url") }],
                    },
                ),
                "e:oV5CrjpxgaGXNHIQigzNlgLTnwic:1481013459:MASSSENDJOBFINISH:1000001625",
            ),
            (
                "event_templatesendjobfinish.xml",
                msg(
                    "gh_7f083739789a",
                    "oia2TjuEGTNoeX76QEjQNrcURxG8",
                    1395658920,
                    Inbound::TemplateSendJobFinish { msg_id: 200163836, status: s("success") },
                ),
                "e:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658920:TEMPLATESENDJOBFINISH:200163836",
            ),
            (
                "event_templatesendjobfinish_user_block.xml",
                msg(
                    "gh_7f083739789a",
                    "oia2TjuEGTNoeX76QEjQNrcURxG8",
                    1395658984,
                    Inbound::TemplateSendJobFinish { msg_id: 200163840, status: s("failed:user block") },
                ),
                "e:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658984:TEMPLATESENDJOBFINISH:200163840",
            ),
            (
                "event_templatesendjobfinish_system_failed.xml",
                msg(
                    "gh_7f083739789a",
                    "oia2TjuEGTNoeX76QEjQNrcURxG8",
                    1395658984,
                    Inbound::TemplateSendJobFinish { msg_id: 200163840, status: s("failed: system failed") },
                ),
                "e:oia2TjuEGTNoeX76QEjQNrcURxG8:1395658984:TEMPLATESENDJOBFINISH:200163840",
            ),
            (
                "event_subscribe_msg_popup_event.xml",
                msg(
                    "gh_123456789abc",
                    "otFpruAK8D-E6EfStSYonYSBZ8_4",
                    1610969440,
                    Inbound::SubscribeMsgPopup {
                        items: vec![
                            SubscribeMsgPopupItem { template_id: s(VRR), status: s("accept"), popup_scene: Some(2) },
                            SubscribeMsgPopupItem {
                                template_id: s("9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"),
                                status: s("reject"),
                                popup_scene: Some(2),
                            },
                        ],
                    },
                ),
                "e:otFpruAK8D-E6EfStSYonYSBZ8_4:1610969440:subscribe_msg_popup_event",
            ),
            (
                "event_subscribe_msg_change_event.xml",
                msg(
                    "gh_123456789abc",
                    "otFpruAK8D-E6EfStSYonYSBZ8_4",
                    1610969440,
                    Inbound::SubscribeMsgChange {
                        items: vec![SubscribeMsgChangeItem { template_id: s(VRR), status: s("reject") }],
                    },
                ),
                "e:otFpruAK8D-E6EfStSYonYSBZ8_4:1610969440:subscribe_msg_change_event",
            ),
            (
                "event_subscribe_msg_sent_event.xml",
                msg(
                    "gh_123456789abc",
                    "otFpruAK8D-E6EfStSYonYSBZ8_4",
                    1610969468,
                    Inbound::SubscribeMsgSent {
                        items: vec![SubscribeMsgSentItem {
                            template_id: s(VRR),
                            msg_id: Some(1700827132819554304),
                            error_code: Some(0),
                            error_status: Some(s("success")),
                        }],
                    },
                ),
                "e:otFpruAK8D-E6EfStSYonYSBZ8_4:1610969468:subscribe_msg_sent_event",
            ),
            (
                "event_freepublishjobfinish.xml",
                msg(
                    "gh_4d00ed8d6399",
                    "oV5CrjpxgaGXNHIQigzNlgLTnwic",
                    1481013459,
                    Inbound::FreePublishJobFinish {
                        publish_id: s("2247503051"),
                        publish_status: 0,
                        article_id: Some(s("b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWP4Hq4")),
                        articles: vec![ArticleUrl { idx: Some(1), url: s("ARTICLE_URL") }],
                        fail_idx: vec![],
                    },
                ),
                "e:oV5CrjpxgaGXNHIQigzNlgLTnwic:1481013459:FREEPUBLISHJOBFINISH",
            ),
            (
                "request_compat_mode_sample.xml",
                msg(
                    "gh_10f6c3c3ac5a",
                    "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
                    1409735668,
                    Inbound::Text {
                        content: s("abcdteT"),
                        msg_id: Some(6054768590064713728),
                        msg_data_id: None,
                        idx: None,
                    },
                ),
                "m:6054768590064713728",
            ),
        ]
    }

    #[test]
    fn every_fixture_parses_to_its_expected_message() {
        for (file, expected, dedupe_key) in fixture_expectations() {
            let parsed = parse(&fixture(file)).unwrap_or_else(|err| panic!("{file}: {err:?}"));
            assert_eq!(parsed, expected, "{file}");
            assert_eq!(parsed.dedupe_key(), dedupe_key, "{file}");
        }
    }

    #[test]
    fn the_fixture_table_covers_every_xml_fixture() {
        let on_disk: BTreeSet<String> = std::fs::read_dir(shared_dir().join("fixtures"))
            .expect("fixtures dir is readable")
            .map(|entry| entry.expect("dir entry").file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".xml"))
            .collect();
        let covered: BTreeSet<String> =
            fixture_expectations().into_iter().map(|(file, _, _)| file.to_owned()).collect();
        assert_eq!(on_disk, covered);
        assert_eq!(covered.len(), 32);
    }

    #[test]
    fn compat_mode_sample_also_yields_its_envelope() {
        let envelope = parse_envelope(&fixture("request_compat_mode_sample.xml")).unwrap();
        assert_eq!(envelope.to_user.as_deref(), Some("gh_10f6c3c3ac5a"));
        assert_eq!(envelope.encrypt.as_deref(), Some(COMPAT_ENCRYPT));
    }

    #[test]
    fn plain_fixtures_have_no_envelope_ciphertext() {
        let envelope = parse_envelope(&fixture("text.xml")).unwrap();
        assert_eq!(envelope.to_user.as_deref(), Some("toUser"));
        assert_eq!(envelope.encrypt, None);
    }

    #[test]
    fn kind_equals_the_serialized_type_tag_and_json_round_trips() {
        let mut kinds = BTreeSet::new();
        let mut messages: Vec<Message> = fixture_expectations().into_iter().map(|(_, m, _)| m).collect();
        messages.push(msg(
            "gh",
            "o",
            1,
            Inbound::Unknown { msg_type: s("file"), event: None, fields: vec![(s("Title"), s("a.zip"))] },
        ));
        for message in messages {
            let json = serde_json::to_value(&message).unwrap();
            assert_eq!(json["body"]["type"], message.kind(), "{message:?}");
            let back: Message = serde_json::from_value(json).unwrap();
            assert_eq!(back, message);
            kinds.insert(message.kind());
        }
        // 26 modelled kinds + unknown, all distinct.
        assert_eq!(kinds.len(), 27);
    }

    // ---- peer vectors -------------------------------------------------------------------------

    /// Kinds the test expects, written independently of `classify`.
    fn documented_kind(msg_type: &str, event: Option<&str>) -> Option<&'static str> {
        let msg_type = msg_type.to_ascii_lowercase();
        if msg_type == "event" {
            return match event?.to_ascii_lowercase().as_str() {
                "subscribe" => Some("subscribe"),
                "unsubscribe" => Some("unsubscribe"),
                "scan" => Some("scan"),
                "location" => Some("location_report"),
                "click" => Some("click"),
                "view" => Some("view"),
                "scancode_push" => Some("scan_code_push"),
                "scancode_waitmsg" => Some("scan_code_wait_msg"),
                "pic_sysphoto" => Some("pic_sys_photo"),
                "pic_photo_or_album" => Some("pic_photo_or_album"),
                "pic_weixin" => Some("pic_weixin"),
                "location_select" => Some("location_select"),
                "view_miniprogram" => Some("view_mini_program"),
                "masssendjobfinish" => Some("mass_send_job_finish"),
                "templatesendjobfinish" => Some("template_send_job_finish"),
                "subscribe_msg_popup_event" => Some("subscribe_msg_popup"),
                "subscribe_msg_change_event" => Some("subscribe_msg_change"),
                "subscribe_msg_sent_event" => Some("subscribe_msg_sent"),
                "freepublishjobfinish" => Some("free_publish_job_finish"),
                _ => None,
            };
        }
        match msg_type.as_str() {
            "text" => Some("text"),
            "image" => Some("image"),
            "voice" => Some("voice"),
            "video" => Some("video"),
            "shortvideo" => Some("short_video"),
            "location" => Some("location"),
            "link" => Some("link"),
            _ => None,
        }
    }

    const ORDINARY: [&str; 7] = ["text", "image", "voice", "video", "short_video", "location", "link"];

    #[test]
    fn every_peer_vector_flattens_exactly_and_parses_as_documented() {
        let path = shared_dir().join("peer-vectors").join("messages.jsonl");
        let data = std::fs::read_to_string(&path).expect("messages.jsonl is readable");
        let (mut lines, mut typed, mut unknown, mut envelopes, mut rejected) = (0, 0, 0, 0, 0);
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            let v: serde_json::Value = serde_json::from_str(line).expect("valid JSON line");
            let id = v["id"].as_str().expect("id");
            let platform = v["platform"].as_str().expect("platform");
            let msg_type = v["msg_type"].as_str().unwrap_or("");
            let event = v["event"].as_str();
            let features: Vec<&str> =
                v["features"].as_array().expect("features").iter().filter_map(|f| f.as_str()).collect();
            let xml = v["xml"].as_str().expect("xml");
            let expected: BTreeMap<String, String> = v["expected"]
                .as_object()
                .expect("expected")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
                .collect();

            // flatten == expected, with no path emitted twice.
            let flat = flatten(xml).unwrap_or_else(|err| panic!("{id}: flatten failed: {err:?}"));
            let flat_map: BTreeMap<String, String> = flat.iter().cloned().collect();
            assert_eq!(flat_map.len(), flat.len(), "{id}: duplicate paths");
            assert_eq!(flat_map, expected, "{id}: flatten");

            let has = |feature: &str| features.contains(&feature);
            if has("encrypted_envelope") || has("compat_mode_plaintext_plus_encrypt") {
                envelopes += 1;
                let envelope = parse_envelope(xml).unwrap_or_else(|err| panic!("{id}: {err:?}"));
                assert_eq!(envelope.encrypt.as_ref(), expected.get("Encrypt"), "{id}: Encrypt");
                assert_eq!(envelope.to_user.as_ref(), expected.get("ToUserName"), "{id}");
            }

            let parsed = parse(xml);
            let documented = documented_kind(msg_type, event);
            if !expected.contains_key("FromUserName") {
                // Safe-mode envelopes are not attributable pushes.
                assert!(matches!(parsed, Err(ParseError::MissingField(_))), "{id}: {parsed:?}");
                rejected += 1;
                continue;
            }
            let parsed = parsed.unwrap_or_else(|err| panic!("{id}: parse failed: {err:?}"));
            assert_eq!(Some(&parsed.from_user), expected.get("FromUserName"), "{id}");
            assert_eq!(Some(&parsed.to_user), expected.get("ToUserName"), "{id}");
            assert_eq!(parsed.create_time.to_string(), expected["CreateTime"], "{id}: CreateTime");
            match documented {
                Some(kind) => {
                    typed += 1;
                    assert_eq!(parsed.kind(), kind, "{id} ({platform})");
                    let expected_id = expected
                        .get("MsgId")
                        .or_else(|| expected.get("MsgID"))
                        .map(|id| id.parse::<u64>().expect("integer MsgId"));
                    let wants_id = ORDINARY.contains(&kind) || kind.ends_with("send_job_finish");
                    assert_eq!(parsed.msg_id(), expected_id.filter(|_| wants_id), "{id}: msg_id");
                    // Ordinary messages have no EventKey (msg-162/163 carry a stray one).
                    let expected_key = expected
                        .get("EventKey")
                        .map(String::as_str)
                        .filter(|k| !k.is_empty() && !ORDINARY.contains(&kind));
                    assert_eq!(parsed.event_key(), expected_key, "{id}: event_key");
                    if let Inbound::Text { content, .. } = &parsed.body {
                        assert_eq!(Some(content), expected.get("Content"), "{id}: content");
                    }
                    let key = parsed.dedupe_key();
                    match parsed.msg_id() {
                        Some(msg_id) if ORDINARY.contains(&kind) => {
                            assert_eq!(key, format!("m:{msg_id}"))
                        }
                        _ => assert!(
                            key.starts_with(&format!("e:{}:{}:", parsed.from_user, parsed.create_time)),
                            "{id}: {key}"
                        ),
                    }
                }
                None => {
                    unknown += 1;
                    let Inbound::Unknown { msg_type: got_type, event: got_event, fields } = &parsed.body else {
                        panic!("{id}: expected Unknown, got {:?}", parsed.body);
                    };
                    assert_eq!(fields, &flat, "{id}: Unknown fields are flatten");
                    assert_eq!(Some(got_type), expected.get("MsgType"), "{id}");
                    assert_eq!(got_event.as_ref(), expected.get("Event"), "{id}");
                    assert_eq!(parsed.kind(), "unknown");
                }
            }
        }
        assert_eq!(lines, 198, "every line of messages.jsonl is processed");
        assert_eq!(typed + unknown + rejected, 198);
        assert_eq!(envelopes, 16, "13 encrypted envelopes + 3 compat-mode bodies");
        // 111 modelled (mp and WeCom), 74 Unknown, 13 safe-mode envelopes without a sender.
        assert_eq!((typed, unknown, rejected), (111, 74, 13));
    }

    #[test]
    fn lowercase_scan_and_capitalised_event_msg_type_are_accepted() {
        let xml = "<xml><ToUserName>gh</ToUserName><FromUserName>o</FromUserName>\
                   <CreateTime>1</CreateTime><MsgType>Event</MsgType><Event>scan</Event>\
                   <EventKey><![CDATA[qrscene_42]]></EventKey></xml>";
        let parsed = parse(xml).unwrap();
        assert_eq!(parsed.body, Inbound::Scan { scene: s("42"), ticket: None });
        assert_eq!(parsed.dedupe_key(), "e:o:1:SCAN");
    }

    // ---- fallbacks and decisions ---------------------------------------------------------------

    fn push(msg_type: &str, body: &str) -> String {
        format!(
            "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName>\
             <CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
        )
    }

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
        assert!(
            matches!(&parsed.body, Inbound::Unknown { fields, .. } if fields.contains(&(s("Content.b"), s("bold"))))
        );
    }

    #[test]
    fn values_keep_cdata_verbatim_trim_bare_text_and_decode_entities() {
        let xml = push(
            "text",
            "<Content>  <![CDATA[ two  spaces ]]>  </Content><MsgId> 5 </MsgId><Idx>a &amp; b &#x4e2d;</Idx>",
        );
        let parsed = parse(&xml).unwrap();
        assert_eq!(
            parsed.body,
            Inbound::Text {
                content: s(" two  spaces "), msg_id: Some(5), msg_data_id: None, idx: Some(s("a & b 中"))
            }
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
        assert_eq!(
            parsed.body,
            Inbound::Subscribe { event_key: Some(s("last_trade_no_1")), scene: None, ticket: None }
        );
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

    // ---- malformed and hostile input -----------------------------------------------------------

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
        let xxe =
            r#"<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><ToUserName>&xxe;</ToUserName></xml>"#;
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
            for (name, value) in [("ToUserName", "gh"), ("FromUserName", "o"), ("CreateTime", "1"), ("MsgType", "text")]
            {
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
}
