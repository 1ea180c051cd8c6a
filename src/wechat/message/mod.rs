//! Inbound pushes: the XML body WeChat POSTs to the callback URL, turned into a typed [`Message`]
//! and back.
//!
//! Owns: the vocabulary of ordinary messages and event pushes (wechat-api.md §3, §4, §9.8) as
//! types, and what a push means once typed (its dedupe key for WeChat's retry rule, §5, its
//! kind name, msg id and event key). The work is split by subject:
//! - `kind`: which `MsgType`/`Event` is which [`Inbound`] variant, and the documented spellings;
//! - `parse`: XML → [`Message`] ([`parse`]) and the safe/compatible-mode envelope
//!   ([`parse_envelope`]);
//! - `guard`: the checks every entry point runs on hostile input before parsing;
//! - `flatten`: the generic path → text view of any push ([`flatten`]) for kinds we do not model;
//! - `write`: [`Message`] → the XML WeChat would send ([`Message::to_xml`], [`Envelope::to_xml`]).
//!
//! Must not: import anything else from this crate (the `wechat` module is the protocol layer and
//! depends on nothing above it), decrypt (crypto.rs does), do I/O, log, or panic on any input:
//! the body comes straight off the network and fuzzers will hammer this parser.
//!
//! Hostile input: every entry point refuses a `<!DOCTYPE` or `<!ENTITY` declaration outside CDATA
//! before parsing ([`ParseError::Doctype`]); [`flatten`] caps nesting at [`MAX_DEPTH`]; the root
//! element must be `<xml>`.

use quick_xml::de::DeError;
use serde::{Deserialize, Serialize};

mod flatten;
mod guard;
mod kind;
mod parse;
mod write;

#[cfg(test)]
mod tests;

pub use flatten::flatten;
pub use parse::{parse, parse_envelope};

use kind::{documented_name, is_event, kind_name};

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
        /// `CopyrightCheckResult.ResultList`: what the originality check found per article.
        copyright_items: Vec<CopyrightCheckItem>,
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

/// One article's originality check in MASSSENDJOBFINISH (§9.8's `CopyrightCheckResult` item).
/// WeChat sends the flags as 0/1 and the states as small numbers; each is kept as given, or
/// `None` when absent or not a number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CopyrightCheckItem {
    /// 1-based position of the article in the send.
    pub article_idx: Option<u32>,
    pub user_declare_state: Option<u32>,
    pub audit_state: Option<u32>,
    /// The original the article was matched to, if any.
    pub original_article_url: Option<String>,
    pub original_article_type: Option<u32>,
    /// 1 when the original allows reprinting.
    pub can_reprint: Option<u32>,
    pub need_replace_content: Option<u32>,
    pub need_show_reprint_source: Option<u32>,
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
}
