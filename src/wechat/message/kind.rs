//! Which push is which: the [`Kind`]s we model, decided from `MsgType` and `Event`, and the
//! spellings WeChat documents for them (used in dedupe keys and when writing a push).

use super::Inbound;

/// The kinds we model, decided from `MsgType` and `Event` before any field is converted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
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
pub(super) fn classify(msg_type: &str, event: Option<&str>) -> Option<Kind> {
    let msg_type = msg_type.trim();
    if msg_type.eq_ignore_ascii_case("event") {
        let event = event?.trim();
        return EVENTS.iter().find(|(name, _)| name.eq_ignore_ascii_case(event)).map(|&(_, kind)| kind);
    }
    MESSAGE_TYPES.iter().find(|(name, _)| name.eq_ignore_ascii_case(msg_type)).map(|&(_, kind)| kind)
}

pub(super) fn is_event(msg_type: &str) -> bool {
    msg_type.trim().eq_ignore_ascii_case("event")
}

impl Inbound {
    /// The modelled kind of this body; `None` for [`Inbound::Unknown`].
    pub(super) fn known_kind(&self) -> Option<Kind> {
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

/// The `MsgType`/`Event` spelling WeChat documents for a kind (used in dedupe keys and when writing a push).
pub(super) fn documented_name(kind: Kind) -> &'static str {
    MESSAGE_TYPES.iter().chain(EVENTS.iter()).find(|(_, k)| *k == kind).map_or("", |(name, _)| name)
}

/// Must equal serde's snake_case variant names (checked by a test).
pub(super) fn kind_name(kind: Kind) -> &'static str {
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
