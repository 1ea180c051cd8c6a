//! XML → [`Message`]: the public entry points [`parse`] and [`parse_envelope`], the raw serde
//! shape every known element is read into, and its conversion into an [`Inbound`] variant.

use quick_xml::de::DeError;
use serde::Deserialize;

use super::flatten::flatten;
use super::guard::{check_root, reject_doctype, strip_bom};
use super::kind::{Kind, classify};
use super::{
    ArticleUrl, CopyrightCheckItem, Envelope, Inbound, Message, ParseError, SubscribeMsgChangeItem,
    SubscribeMsgPopupItem, SubscribeMsgSentItem,
};

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
    result_list: Option<RawCopyrightList>,
}

#[derive(Deserialize, Default)]
struct RawCopyrightList {
    #[serde(rename = "item", default)]
    item: Vec<RawCopyrightItem>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RawCopyrightItem {
    article_idx: Option<String>,
    user_declare_state: Option<String>,
    audit_state: Option<String>,
    original_article_url: Option<String>,
    original_article_type: Option<String>,
    can_reprint: Option<String>,
    need_replace_content: Option<String>,
    need_show_reprint_source: Option<String>,
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
                .as_ref()
                .and_then(|result| parse_num(result.check_state.as_deref())),
            copyright_items: raw
                .copyright_check_result
                .and_then(|result| result.result_list)
                .map(|list| {
                    list.item
                        .into_iter()
                        .map(|item| CopyrightCheckItem {
                            article_idx: parse_num(item.article_idx.as_deref()),
                            user_declare_state: parse_num(item.user_declare_state.as_deref()),
                            audit_state: parse_num(item.audit_state.as_deref()),
                            original_article_url: item.original_article_url.filter(|u| !u.is_empty()),
                            original_article_type: parse_num(item.original_article_type.as_deref()),
                            can_reprint: parse_num(item.can_reprint.as_deref()),
                            need_replace_content: parse_num(item.need_replace_content.as_deref()),
                            need_show_reprint_source: parse_num(item.need_show_reprint_source.as_deref()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
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
