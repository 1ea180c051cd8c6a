//! Media, drafts and permanent materials (wechat-api.md §13, §9.3): the draft box
//! (`draft/add|get|update|delete|count|batchget`), permanent materials (`material/add_material`,
//! `material/get_materialcount`, `material/batchget_material`), temporary media (`media/upload`)
//! and article body images (`media/uploadimg`). Mass sends (`mass.rs`) ask here whether an
//! mpnews `media_id` is a draft of this account.
//!
//! Uploads are `multipart/form-data` with the file in the field `media` (§13); the mock reads
//! the boundary from the body's first line and keeps only each file's name, type and size,
//! never its bytes.
//!
//! Rules, and the stricter reading where the reference is silent:
//! - `type` (query) must be `image`, `voice`, `video` or `thumb`, else 40004; a file whose
//!   extension does not fit the type is 40005 (image: jpg/jpeg/png/gif/bmp; voice:
//!   mp3/wma/wav/amr; video: mp4; thumb: jpg/jpeg only); over the size limit 40006 (image 10 MB,
//!   voice 2 MB, video 10 MB, thumb 64 KB); no `media` part 41005. A voice's 60 s is not checked
//!   (the mock never decodes the file). `material/add_material` with `type=video` needs a
//!   `description` part holding JSON with a non-empty `title` (else 40035);
//! - `media/uploadimg`: jpg/jpeg/png only (40005), under 1 MB (40006); the image is no material
//!   and counts toward nothing;
//! - `draft/add`: 1 to 8 articles (none 40035; more than 8 45008); each needs `title` and
//!   `content` (44004 when empty) and a `thumb_media_id` naming a permanent image or thumb
//!   material of this account (else 40007); title over 32 characters 45003, digest over 128
//!   characters 45004, content of 20,000 characters or more 45002 (the Add_draft page's limits);
//! - `draft/get`, `draft/update`, `draft/delete`: an unknown `media_id` is 40007; `update`
//!   needs `index` within the draft (else 40035) and an `articles` object checked like one of
//!   `add`'s;
//! - `draft/batchget` and `material/batchget_material`: `count` 1..=20 and `offset` ≥ 0, else
//!   40035; drafts are listed most recently updated first; `no_content: 1` leaves out `content`;
//!   `material/batchget_material` with `type=news` lists nothing (the news materials of old were
//!   withdrawn in 2022, §13);
//! - `material/get_materialcount`: `news_count` is 0 for the same reason;
//! - temporary media expire after 3 days (mock time); nothing here is asked about them later.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::error::{
    ApiError, ApiResult, EMPTY_CONTENT, INVALID_ARGS, INVALID_FILE_TYPE, INVALID_MEDIA_ID, INVALID_MEDIA_SIZE,
    INVALID_MEDIA_TYPE, MEDIA_DATA_MISSING, TOO_MANY_ARTICLES, fail,
};
use super::state::{ApiRequest, State, int_field, str_field};

/// Articles in one draft (§13 via the Add_draft page; 45008 beyond).
pub(super) const MAX_ARTICLES: usize = 8;
/// `draft/batchget` and `material/batchget_material` list at most this many per call.
const MAX_PAGE: i64 = 20;
/// Article limits of the Add_draft page, in characters.
const MAX_TITLE_CHARS: usize = 32;
const MAX_DIGEST_CHARS: usize = 128;
const MAX_CONTENT_CHARS: usize = 20_000;
/// `media/uploadimg`: under 1 MB (§9.3).
const MAX_BODY_IMAGE_BYTES: usize = 1 << 20;
/// Temporary media are kept 3 days (§13).
const TEMPORARY_SECS: i64 = 3 * 24 * 3600;
/// WeChat's codes for a title, content or digest over its limit (§14.1).
const CONTENT_TOO_LONG: i64 = 45002;
const TITLE_TOO_LONG: i64 = 45003;
const DESCRIPTION_TOO_LONG: i64 = 45004;

/// What a media type accepts: extensions and the size limit (§13).
fn limits(kind: &str) -> Option<(&'static [&'static str], usize)> {
    match kind {
        "image" => Some((&["jpg", "jpeg", "png", "gif", "bmp"], 10 << 20)),
        "voice" => Some((&["mp3", "wma", "wav", "amr"], 2 << 20)),
        "video" => Some((&["mp4"], 10 << 20)),
        "thumb" => Some((&["jpg", "jpeg"], 64 << 10)),
        _ => None,
    }
}

/// A multipart upload as handlers read it: `{name: {"filename", "size", "text"}}` per part
/// (`text` only for a part without a file), so the bytes never reach the state.
pub(super) fn parts_as_body(parts: &[Part]) -> Value {
    let mut body = Map::new();
    for part in parts {
        let mut entry = json!({"size": part.data.len()});
        match &part.filename {
            Some(filename) => entry["filename"] = filename.clone().into(),
            None => entry["text"] = String::from_utf8_lossy(&part.data).into_owned().into(),
        }
        body.entry(part.name.clone()).or_insert(entry);
    }
    Value::Object(body)
}

/// One part of a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    pub name: String,
    pub filename: Option<String>,
    /// The part's bytes (files are dropped after the size is taken).
    pub data: Vec<u8>,
}

/// Splits a `multipart/form-data` body; the boundary is the first line (`--boundary`). `None`
/// when the body is not multipart.
pub(super) fn parse_multipart(raw: &[u8]) -> Option<Vec<Part>> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
    let delimiter = &raw[..line_end];
    if delimiter.len() < 3 || !delimiter.starts_with(b"--") {
        return None;
    }
    let mut separator = b"\r\n".to_vec();
    separator.extend_from_slice(delimiter);
    let mut parts = Vec::new();
    let mut rest = &raw[line_end + 2..];
    loop {
        let end = find(rest, &separator)?;
        let part = &rest[..end];
        let header_end = find(part, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&part[..header_end]);
        let disposition = headers.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
        parts.push(Part {
            name: disposition_param(disposition, "name")?,
            filename: disposition_param(disposition, "filename"),
            data: part[header_end + 4..].to_vec(),
        });
        rest = &rest[end + separator.len()..];
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `name="…"` of a `Content-Disposition` line.
fn disposition_param(line: &str, key: &str) -> Option<String> {
    line.split(';').skip(1).find_map(|param| {
        let (k, v) = param.trim().split_once('=')?;
        (k.eq_ignore_ascii_case(key)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// A permanent material or a temporary medium.
#[derive(Debug, Clone)]
pub(super) struct Material {
    pub media_id: String,
    pub kind: String,
    pub name: String,
    pub url: Option<String>,
    pub update_time: i64,
}

/// One article of a draft, as `draft/get` shows it (`thumb_url` and `url` added by the mock).
pub(super) type Article = Map<String, Value>;

/// A draft: its articles and times.
#[derive(Debug, Clone)]
pub(super) struct Draft {
    pub articles: Vec<Article>,
    pub create_time: i64,
    pub update_time: i64,
}

impl Draft {
    /// The articles' titles, in order.
    pub fn titles(&self) -> Vec<String> {
        self.articles.iter().map(|a| a.get("title").and_then(Value::as_str).unwrap_or("").to_owned()).collect()
    }
}

/// The draft box and the materials.
#[derive(Default)]
pub(super) struct Media {
    pub drafts: BTreeMap<String, Draft>,
    pub materials: Vec<Material>,
    /// Temporary media: `(material, expires at)`.
    temporary: Vec<(Material, i64)>,
    seq: u64,
}

impl Media {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn material(&self, media_id: &str) -> Option<&Material> {
        self.materials.iter().find(|m| m.media_id == media_id)
    }

    /// Stores a permanent material and returns it.
    pub fn add_material(&mut self, kind: &str, name: &str, now: i64) -> Material {
        let seq = self.next_seq();
        let media_id = format!("MOCK_{}_{seq:06}_{:08x}", kind.to_ascii_uppercase(), super::users::mix(seq) as u32);
        let url = matches!(kind, "image" | "thumb")
            .then(|| format!("http://mmbiz.qpic.cn/mmbiz_jpg/mock{seq:06}/0?wx_fmt=jpeg"));
        let material = Material { media_id, kind: kind.to_owned(), name: name.to_owned(), url, update_time: now };
        self.materials.push(material.clone());
        material
    }

    /// A draft of one article per title, each with a fresh thumb, as `draft/add` would store it:
    /// for arranging tests and demo mode. Returns its media_id.
    pub fn seed_draft(&mut self, titles: &[&str], now: i64) -> String {
        let articles = titles
            .iter()
            .enumerate()
            .map(|(i, title)| {
                let thumb = self.add_material("thumb", &format!("cover-{}.jpg", i + 1), now);
                let article = json!({
                    "title": title, "author": "tagcast", "digest": "", "content": format!("<p>{title}</p>"),
                    "content_source_url": "", "thumb_media_id": thumb.media_id,
                    "thumb_url": thumb.url.unwrap_or_default(), "need_open_comment": 0, "only_fans_can_comment": 0,
                });
                match article {
                    Value::Object(map) => map,
                    _ => Map::new(),
                }
            })
            .collect();
        self.add_draft(articles, now)
    }

    /// Stores a draft of checked articles and returns its media_id.
    pub fn add_draft(&mut self, articles: Vec<Article>, now: i64) -> String {
        let seq = self.next_seq();
        let media_id = format!("MOCK_DRAFT_{seq:06}_{:08x}", super::users::mix(seq ^ 0xd4af) as u32);
        self.drafts.insert(media_id.clone(), Draft { articles, create_time: now, update_time: now });
        media_id
    }
}

/// Checks one article of `draft/add` or `draft/update` and completes it as `draft/get` shows it.
fn checked_article(media: &Media, value: &Value) -> Result<Article, ApiError> {
    let Some(object) = value.as_object() else { return fail(INVALID_ARGS) };
    let chars = |key: &str| str_field(value, key).map_or(0, |s| s.chars().count());
    if str_field(value, "title").is_none() || str_field(value, "content").is_none() {
        return fail(EMPTY_CONTENT);
    }
    if chars("title") > MAX_TITLE_CHARS {
        return fail(TITLE_TOO_LONG);
    }
    if chars("digest") > MAX_DIGEST_CHARS {
        return fail(DESCRIPTION_TOO_LONG);
    }
    if chars("content") >= MAX_CONTENT_CHARS {
        return fail(CONTENT_TOO_LONG);
    }
    let thumb = str_field(value, "thumb_media_id")
        .and_then(|id| media.material(id))
        .filter(|m| matches!(m.kind.as_str(), "image" | "thumb"));
    let Some(thumb) = thumb else { return fail(INVALID_MEDIA_ID) };
    let mut article = object.clone();
    article.insert("thumb_url".into(), thumb.url.clone().unwrap_or_default().into());
    for key in ["author", "digest", "content_source_url"] {
        article.entry(key).or_insert_with(|| "".into());
    }
    for key in ["need_open_comment", "only_fans_can_comment"] {
        article.entry(key).or_insert_with(|| 0.into());
    }
    Ok(article)
}

/// Whether an mpnews mass message names a draft of this account (40007 otherwise, §9.3); the
/// draft's titles when it does.
pub(super) fn check_mpnews(state: &State, body: &Value) -> Result<Vec<String>, ApiError> {
    if str_field(body, "msgtype") != Some("mpnews") {
        return Ok(Vec::new());
    }
    let media_id = body.get("mpnews").and_then(|m| str_field(m, "media_id")).unwrap_or("");
    match state.media.drafts.get(media_id) {
        Some(draft) => Ok(draft.titles()),
        None => fail(INVALID_MEDIA_ID),
    }
}

/// `POST /cgi-bin/draft/add {"articles": [...]}` → `{"media_id"}`.
pub(super) fn draft_add(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(list) = req.body.get("articles").and_then(Value::as_array).filter(|l| !l.is_empty()) else {
        return fail(INVALID_ARGS);
    };
    if list.len() > MAX_ARTICLES {
        return fail(TOO_MANY_ARTICLES);
    }
    let articles = list.iter().map(|a| checked_article(&state.media, a)).collect::<Result<Vec<_>, _>>()?;
    let now = state.now();
    let media_id = state.media.add_draft(articles, now);
    Ok(json!({"media_id": media_id}))
}

fn draft_id(req: &ApiRequest) -> &str {
    str_field(&req.body, "media_id").unwrap_or("")
}

/// `POST /cgi-bin/draft/get {"media_id"}` → `{"news_item": [...], "create_time", "update_time"}`.
pub(super) fn draft_get(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(draft) = state.media.drafts.get(draft_id(req)) else { return fail(INVALID_MEDIA_ID) };
    Ok(json!({"news_item": draft.articles, "create_time": draft.create_time, "update_time": draft.update_time}))
}

/// `POST /cgi-bin/draft/update {"media_id", "index", "articles": {...}}`.
pub(super) fn draft_update(state: &mut State, req: &ApiRequest) -> ApiResult {
    let media_id = draft_id(req).to_owned();
    let Some(count) = state.media.drafts.get(&media_id).map(|d| d.articles.len()) else {
        return fail(INVALID_MEDIA_ID);
    };
    let index = int_field(&req.body, "index")?.and_then(|i| usize::try_from(i).ok()).filter(|i| *i < count);
    let Some(index) = index else { return fail(INVALID_ARGS) };
    let article = checked_article(&state.media, req.body.get("articles").unwrap_or(&Value::Null))?;
    let now = state.now();
    let draft = state.media.drafts.get_mut(&media_id).expect("looked up above, under the same lock");
    draft.articles[index] = article;
    draft.update_time = now;
    Ok(json!({"errcode": 0, "errmsg": "ok"}))
}

/// `POST /cgi-bin/draft/delete {"media_id"}`.
pub(super) fn draft_delete(state: &mut State, req: &ApiRequest) -> ApiResult {
    match state.media.drafts.remove(draft_id(req)) {
        Some(_) => Ok(json!({"errcode": 0, "errmsg": "ok"})),
        None => fail(INVALID_MEDIA_ID),
    }
}

/// `GET /cgi-bin/draft/count` → `{"total_count"}`.
pub(super) fn draft_count(state: &mut State, _req: &ApiRequest) -> ApiResult {
    Ok(json!({"total_count": state.media.drafts.len()}))
}

/// `offset` and `count` of a batchget, checked.
fn page(body: &Value) -> Result<(usize, usize), ApiError> {
    let offset = int_field(body, "offset")?.filter(|o| *o >= 0);
    let count = int_field(body, "count")?.filter(|c| (1..=MAX_PAGE).contains(c));
    match (offset, count) {
        (Some(offset), Some(count)) => Ok((usize::try_from(offset).unwrap_or(usize::MAX), count as usize)),
        _ => fail(INVALID_ARGS),
    }
}

/// `POST /cgi-bin/draft/batchget {"offset", "count", "no_content"}`.
pub(super) fn draft_batchget(state: &mut State, req: &ApiRequest) -> ApiResult {
    let (offset, count) = page(&req.body)?;
    let no_content = int_field(&req.body, "no_content")? == Some(1);
    let mut drafts: Vec<(&String, &Draft)> = state.media.drafts.iter().collect();
    drafts.sort_by(|a, b| b.1.update_time.cmp(&a.1.update_time).then_with(|| b.0.cmp(a.0)));
    let item: Vec<Value> = drafts
        .iter()
        .skip(offset)
        .take(count)
        .map(|(media_id, draft)| {
            let news_item: Vec<Value> = draft
                .articles
                .iter()
                .map(|a| {
                    let mut a = a.clone();
                    if no_content {
                        a.remove("content");
                    }
                    Value::Object(a)
                })
                .collect();
            json!({
                "media_id": media_id,
                "content": {"news_item": news_item, "create_time": draft.create_time, "update_time": draft.update_time},
                "update_time": draft.update_time,
            })
        })
        .collect();
    Ok(json!({"total_count": drafts.len(), "item_count": item.len(), "item": item}))
}

/// The checked `media` file of an upload, with the limits of `kind`: `(filename, size)`.
fn checked_file(req: &ApiRequest, extensions: &[&str], max_bytes: usize) -> Result<(String, usize), ApiError> {
    let file = req.body.get("media").filter(|m| m.get("filename").is_some());
    let Some(file) = file else { return fail(MEDIA_DATA_MISSING) };
    let filename = str_field(file, "filename").unwrap_or("").to_owned();
    let size = file.get("size").and_then(Value::as_u64).unwrap_or(0) as usize;
    let extension = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if !extensions.contains(&extension.as_str()) {
        return fail(INVALID_FILE_TYPE);
    }
    if size > max_bytes {
        return fail(INVALID_MEDIA_SIZE);
    }
    Ok((filename, size))
}

/// The `type` query parameter and its limits, or 40004.
fn media_kind(req: &ApiRequest) -> Result<(&str, &'static [&'static str], usize), ApiError> {
    let kind = req.param("type").unwrap_or("");
    match limits(kind) {
        Some((extensions, max)) => Ok((kind, extensions, max)),
        None => fail(INVALID_MEDIA_TYPE),
    }
}

/// `POST /cgi-bin/media/upload?type=…` (multipart `media`) → `{"type", "media_id", "created_at"}`.
pub(super) fn media_upload(state: &mut State, req: &ApiRequest) -> ApiResult {
    let (kind, extensions, max) = media_kind(req)?;
    let (filename, _) = checked_file(req, extensions, max)?;
    let now = state.now();
    let seq = state.media.next_seq();
    let media_id = format!("MOCK_TEMP_{seq:06}_{:08x}", super::users::mix(seq ^ 0x7e) as u32);
    let material =
        Material { media_id: media_id.clone(), kind: kind.to_owned(), name: filename, url: None, update_time: now };
    state.media.temporary.retain(|(_, expires)| *expires > now);
    state.media.temporary.push((material, now + TEMPORARY_SECS));
    // WeChat names a thumb upload's id `thumb_media_id`.
    let id_key = if kind == "thumb" { "thumb_media_id" } else { "media_id" };
    Ok(json!({"type": kind, id_key: media_id, "created_at": now}))
}

/// `POST /cgi-bin/material/add_material?type=…` (multipart `media`, and `description` for a
/// video) → `{"media_id", "url"}` (`url` for images and thumbs).
pub(super) fn add_material(state: &mut State, req: &ApiRequest) -> ApiResult {
    let (kind, extensions, max) = media_kind(req)?;
    let (filename, _) = checked_file(req, extensions, max)?;
    if kind == "video" {
        let description = req.body.get("description").and_then(|d| str_field(d, "text"));
        let titled = description
            .and_then(|text| serde_json::from_str::<Value>(text).ok())
            .is_some_and(|d| str_field(&d, "title").is_some());
        if !titled {
            return fail(INVALID_ARGS);
        }
    }
    let now = state.now();
    let material = state.media.add_material(kind, &filename, now);
    let mut answer = json!({"media_id": material.media_id});
    if let Some(url) = material.url {
        answer["url"] = url.into();
    }
    Ok(answer)
}

/// `POST /cgi-bin/media/uploadimg` (multipart `media`) → `{"url"}`; not a material.
pub(super) fn upload_img(state: &mut State, req: &ApiRequest) -> ApiResult {
    let (_, size) = checked_file(req, &["jpg", "jpeg", "png"], MAX_BODY_IMAGE_BYTES - 1)?;
    let seq = state.media.next_seq();
    Ok(json!({"url": format!("http://mmbiz.qpic.cn/mmbiz_png/body{seq:06}s{size}/0?wx_fmt=png")}))
}

/// `GET /cgi-bin/material/get_materialcount` → the four counts.
pub(super) fn material_count(state: &mut State, _req: &ApiRequest) -> ApiResult {
    let count = |kind: &str| state.media.materials.iter().filter(|m| m.kind == kind).count();
    Ok(json!({
        "voice_count": count("voice"),
        "video_count": count("video"),
        // WeChat counts thumbs with the images.
        "image_count": count("image") + count("thumb"),
        "news_count": 0,
    }))
}

/// `POST /cgi-bin/material/batchget_material {"type", "offset", "count"}`.
pub(super) fn batchget_material(state: &mut State, req: &ApiRequest) -> ApiResult {
    let kind = str_field(&req.body, "type").unwrap_or("");
    if kind != "news" && limits(kind).is_none_or(|_| kind == "thumb") {
        return fail(INVALID_MEDIA_TYPE);
    }
    let (offset, count) = page(&req.body)?;
    let of_kind: Vec<&Material> = state
        .media
        .materials
        .iter()
        .rev()
        .filter(|m| m.kind == kind || (kind == "image" && m.kind == "thumb"))
        .collect();
    let item: Vec<Value> = of_kind
        .iter()
        .skip(offset)
        .take(count)
        .map(|m| {
            let mut item = json!({"media_id": m.media_id, "name": m.name, "update_time": m.update_time});
            if let Some(url) = &m.url {
                item["url"] = url.clone().into();
            }
            item
        })
        .collect();
    Ok(json!({"total_count": of_kind.len(), "item_count": item.len(), "item": item}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_body_splits_into_named_parts() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"media\"; filename=\"a.jpg\"\r\n\
Content-Type: image/jpeg\r\n\r\n\x01\x02\r\n\x03\r\n--XyZ\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n{}\r\n--XyZ--\r\n";
        let parts = parse_multipart(body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name.as_str(), parts[0].filename.as_deref()), ("media", Some("a.jpg")));
        assert_eq!(parts[0].data, b"\x01\x02\r\n\x03");
        assert_eq!((parts[1].name.as_str(), parts[1].data.as_slice()), ("description", b"{}".as_slice()));
        assert!(parse_multipart(b"{\"a\":1}").is_none());
        assert!(parse_multipart(b"--XyZ\r\nno end").is_none());
    }

    #[test]
    fn each_media_type_has_its_extensions_and_size() {
        assert_eq!(limits("thumb"), Some((&["jpg", "jpeg"][..], 65_536)));
        assert_eq!(limits("voice").map(|l| l.1), Some(2 << 20));
        assert!(limits("news").is_none());
    }
}
