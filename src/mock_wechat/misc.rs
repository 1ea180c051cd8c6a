//! The smaller APIs: customer-service messages (wechat-api.md §10), the custom menu (§12) and
//! the web-OAuth code exchange (`sns/oauth2/access_token`).
//!
//! Rules, and choices where the doc is silent:
//! - `message/custom/send`: an openid that never followed 40003, one who unsubscribed 45015;
//!   unknown `msgtype` 40008; empty text 44004; missing `media_id` (image, voice, video, mpnews)
//!   40007; `news` with more than one article 45008; other types need their body object (40035).
//!   Lengths (the reference gives no numbers; these are the commonly reported ones, the lower
//!   where reports differ): text `content` over 2048 bytes 45002 (developers.weixin.qq.com
//!   community answers on `content size out of limit`), a `title` over 64 bytes 45003 and a
//!   `description` over 120 bytes 45004 (news articles, video, music, miniprogrampage titles).
//!   The window (§10): the mock cannot see pushes tests send straight to tagcast, so windows are
//!   opened by `MockWeChat::open_interaction` / `POST /mock/interaction` and by the mock's own
//!   subscribe (`add_follower`, a follow). A message opens 5 sends for 48 h, a click, follow or
//!   scan 3 sends for 1 minute; a newer interaction of the same family replaces the older window
//!   (its unused sends are lost: the stricter reading). A send takes from the open 1-minute
//!   window first, then from the 48 h one; no open window 45015, open windows used up 45047.
//!   Only an otherwise valid message spends a send. Accepted messages are logged;
//! - `menu/create`: 1-3 buttons (40016); a button with a non-empty `sub_button` has 1-5 of them
//!   (40023); names ≤ 16 bytes top level (40018), ≤ 60 bytes in a sub-menu (40025); keys ≤ 128
//!   bytes (40019/40026); urls ≤ 1024 bytes (40020/40027); a type not in §12's list 40017/40024
//!   (`view_miniprogram`, an event name, included; a button with sub-buttons has no type, so a
//!   `type` next to a non-empty `sub_button` is 40017 too, the stricter reading); a
//!   missing `key` counts as a bad key and a missing `url` (view, miniprogram) as a bad url;
//!   `media_id`/`view_limited` without `media_id` 40007; `article_id`/`article_view_limited`
//!   without `article_id` and `miniprogram` without `appid`/`pagepath` 40035.
//!   `menu/get` answers `{"menu": {"button": [...]}}` with `sub_button: []` on leaf buttons, or
//!   46002 (the code wechat-api.md gives) when no menu exists; `menu/delete` removes it;
//! - `sns/oauth2/access_token`: codes come from the control surface, work once (40163 after)
//!   within 5 minutes (40029 after, and for unknown codes); missing code 41008; credentials are
//!   checked like `cgi-bin/token`'s; `grant_type` must be `authorization_code` (40002).

use std::collections::HashMap;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde_json::{Value, json};

use super::error::{
    APPID_MISSING, APPSECRET_MISSING, ApiError, ApiResult, CODE_BEEN_USED, CODE_MISSING, CONTENT_TOO_LONG,
    CUSTOM_QUOTA_EXCEEDED, DESCRIPTION_TOO_LONG, EMPTY_CONTENT, INVALID_APPID, INVALID_APPSECRET, INVALID_ARGS,
    INVALID_BUTTON_KEY_SIZE, INVALID_BUTTON_NAME_SIZE, INVALID_BUTTON_SIZE, INVALID_BUTTON_TYPE,
    INVALID_BUTTON_URL_SIZE, INVALID_CODE, INVALID_GRANT_TYPE, INVALID_MEDIA_ID, INVALID_MESSAGE_TYPE, INVALID_OPENID,
    INVALID_SUB_BUTTON_KEY_SIZE, INVALID_SUB_BUTTON_NAME_SIZE, INVALID_SUB_BUTTON_SIZE, INVALID_SUB_BUTTON_TYPE,
    INVALID_SUB_BUTTON_URL_SIZE, MENU_NOT_EXIST, OUT_OF_RESPONSE_WINDOW, TITLE_TOO_LONG, TOO_MANY_ARTICLES, fail,
};
use super::state::{ApiRequest, State, str_field};
use super::tokens::TOKEN_TTL_SECS;

/// How long a web-OAuth code can be exchanged.
const CODE_TTL_SECS: i64 = 300;
/// Menu limits (§12).
const MAX_BUTTONS: usize = 3;
const MAX_SUB_BUTTONS: usize = 5;
const MAX_NAME_BYTES: usize = 16;
const MAX_SUB_NAME_BYTES: usize = 60;
const MAX_KEY_BYTES: usize = 128;
const MAX_URL_BYTES: usize = 1024;
/// Menu button types that carry a `key` (§12's list; `view_miniprogram` is an event, not a
/// button type, so it is 40017/40024 like any other undocumented type).
const KEY_TYPES: [&str; 7] = [
    "click",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
];

/// `POST /cgi-bin/message/custom/send {"touser", "msgtype", ...}`.
pub(super) fn custom_send(state: &mut State, req: &ApiRequest) -> ApiResult {
    let body = &req.body;
    let Some(touser) = str_field(body, "touser") else { return fail(INVALID_OPENID) };
    match state.followers.get(touser) {
        None => return fail(INVALID_OPENID),
        Some(follower) if !follower.subscribed => return fail(OUT_OF_RESPONSE_WINDOW),
        Some(_) => {}
    }
    check_lengths(body)?;
    let msgtype = str_field(body, "msgtype").unwrap_or("");
    let part = body.get(msgtype).unwrap_or(&Value::Null);
    match msgtype {
        "text" if str_field(part, "content").is_none() => return fail(EMPTY_CONTENT),
        "text" => {}
        "image" | "voice" | "video" | "mpnews" if str_field(part, "media_id").is_none() => {
            return fail(INVALID_MEDIA_ID);
        }
        "image" | "voice" | "video" | "mpnews" => {}
        "news" => match part.get("articles").and_then(Value::as_array) {
            Some(articles) if articles.len() == 1 => {}
            Some(articles) if articles.len() > 1 => return fail(TOO_MANY_ARTICLES),
            _ => return fail(INVALID_ARGS),
        },
        "music" | "mpnewsarticle" | "msgmenu" | "wxcard" | "miniprogrampage" if !part.is_object() => {
            return fail(INVALID_ARGS);
        }
        "music" | "mpnewsarticle" | "msgmenu" | "wxcard" | "miniprogrampage" => {}
        _ => return fail(INVALID_MESSAGE_TYPE),
    }
    let now = state.now();
    state.windows.take(touser, now)?;
    state.custom_messages.push((touser.to_owned(), body.clone()));
    Ok(json!({"errcode": 0, "errmsg": "ok"}))
}

/// Text `content` limit of customer-service and mass text messages, bytes.
pub(super) const MAX_CONTENT_BYTES: usize = 2048;
/// `title` limit of a customer-service message part, bytes.
const MAX_TITLE_BYTES: usize = 64;
/// `description` limit of a customer-service message part, bytes.
const MAX_DESCRIPTION_BYTES: usize = 120;
/// The 48 h window a message opens, and its sends.
const MESSAGE_WINDOW_SECS: i64 = 48 * 3600;
const MESSAGE_WINDOW_SENDS: u32 = 5;
/// The 1-minute window a click, follow or scan opens, and its sends.
const EVENT_WINDOW_SECS: i64 = 60;
const EVENT_WINDOW_SENDS: u32 = 3;

/// 45002 / 45003 / 45004 for a part over its length (see the module doc for the numbers).
fn check_lengths(body: &Value) -> Result<(), ApiError> {
    let too_long = |part: &Value, key: &str, max: usize| str_field(part, key).is_some_and(|v| v.len() > max);
    let msgtype = str_field(body, "msgtype").unwrap_or("");
    let part = body.get(msgtype).unwrap_or(&Value::Null);
    let mut parts = vec![part];
    if let Some(articles) = part.get("articles").and_then(Value::as_array) {
        parts.extend(articles);
    }
    for part in parts {
        if too_long(part, "content", MAX_CONTENT_BYTES) {
            return fail(CONTENT_TOO_LONG);
        }
        if too_long(part, "title", MAX_TITLE_BYTES) {
            return fail(TITLE_TOO_LONG);
        }
        if too_long(part, "description", MAX_DESCRIPTION_BYTES) {
            return fail(DESCRIPTION_TOO_LONG);
        }
    }
    Ok(())
}

/// What a follower did that opens a customer-service window (§10's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interaction {
    /// Sent the account a message: 5 sends within 48 h.
    Message,
    /// Clicked a CLICK / scancode menu button: 3 sends within a minute.
    Click,
    /// Followed: 3 sends within a minute.
    Follow,
    /// Scanned a parametric QR code: 3 sends within a minute.
    Scan,
}

#[derive(Clone, Copy)]
struct Window {
    until: i64,
    left: u32,
}

impl Window {
    fn open(&self, now: i64) -> bool {
        now < self.until
    }
}

/// Every follower's open customer-service windows: the latest message's and the latest event's.
#[derive(Default)]
pub(super) struct Windows {
    message: HashMap<String, Window>,
    event: HashMap<String, Window>,
}

impl Windows {
    /// `openid` did `what` at `now`.
    pub fn open(&mut self, openid: &str, what: Interaction, now: i64) {
        let (map, secs, sends) = match what {
            Interaction::Message => (&mut self.message, MESSAGE_WINDOW_SECS, MESSAGE_WINDOW_SENDS),
            Interaction::Click | Interaction::Follow | Interaction::Scan => {
                (&mut self.event, EVENT_WINDOW_SECS, EVENT_WINDOW_SENDS)
            }
        };
        map.insert(openid.to_owned(), Window { until: now + secs, left: sends });
    }

    /// Spends one send to `openid`: 45015 without an open window, 45047 when they are used up.
    pub fn take(&mut self, openid: &str, now: i64) -> Result<(), ApiError> {
        let mut any_open = false;
        for map in [&mut self.event, &mut self.message] {
            let Some(window) = map.get_mut(openid).filter(|w| w.open(now)) else { continue };
            any_open = true;
            if window.left > 0 {
                window.left -= 1;
                return Ok(());
            }
        }
        fail(if any_open { CUSTOM_QUOTA_EXCEEDED } else { OUT_OF_RESPONSE_WINDOW })
    }

    /// Sends left to `openid` now, over both windows.
    pub fn left(&self, openid: &str, now: i64) -> u32 {
        [&self.event, &self.message]
            .iter()
            .filter_map(|map| map.get(openid).filter(|w| w.open(now)))
            .map(|w| w.left)
            .sum()
    }
}

/// The codes a button's level answers with.
struct Level {
    name_bytes: usize,
    name: i64,
    kind: i64,
    key: i64,
    url: i64,
}

const TOP: Level = Level {
    name_bytes: MAX_NAME_BYTES,
    name: INVALID_BUTTON_NAME_SIZE,
    kind: INVALID_BUTTON_TYPE,
    key: INVALID_BUTTON_KEY_SIZE,
    url: INVALID_BUTTON_URL_SIZE,
};
const SUB: Level = Level {
    name_bytes: MAX_SUB_NAME_BYTES,
    name: INVALID_SUB_BUTTON_NAME_SIZE,
    kind: INVALID_SUB_BUTTON_TYPE,
    key: INVALID_SUB_BUTTON_KEY_SIZE,
    url: INVALID_SUB_BUTTON_URL_SIZE,
};

/// Checks a leaf button (one with a `type`) and returns it with `sub_button: []`, as `menu/get`
/// shows it.
fn leaf(button: &Value, level: &Level) -> Result<Value, ApiError> {
    let within = |key: &str, max: usize| str_field(button, key).is_some_and(|v| v.len() <= max);
    let has = |key: &str| str_field(button, key).is_some();
    match str_field(button, "type").unwrap_or("") {
        kind if KEY_TYPES.contains(&kind) => require(within("key", MAX_KEY_BYTES), level.key)?,
        "view" => require(within("url", MAX_URL_BYTES), level.url)?,
        "miniprogram" => {
            require(within("url", MAX_URL_BYTES), level.url)?;
            require(has("appid") && has("pagepath"), INVALID_ARGS)?;
        }
        "media_id" | "view_limited" => require(has("media_id"), INVALID_MEDIA_ID)?,
        "article_id" | "article_view_limited" => require(has("article_id"), INVALID_ARGS)?,
        _ => return fail(level.kind),
    }
    let mut shown = button.clone();
    shown["sub_button"] = json!([]);
    Ok(shown)
}

/// `Ok` when `condition` holds, else the refusal `code`.
fn require(condition: bool, code: i64) -> Result<(), ApiError> {
    if condition { Ok(()) } else { fail(code) }
}

/// Checks a button's name against its level's limit.
fn check_name(button: &Value, level: &Level) -> Result<(), ApiError> {
    match str_field(button, "name") {
        Some(name) if name.len() <= level.name_bytes => Ok(()),
        _ => fail(level.name),
    }
}

/// `POST /cgi-bin/menu/create {"button": [...]}`: replaces the whole menu.
pub(super) fn menu_create(state: &mut State, req: &ApiRequest) -> ApiResult {
    let buttons = req.body.get("button").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return fail(INVALID_BUTTON_SIZE);
    }
    let mut shown = Vec::with_capacity(buttons.len());
    for button in buttons {
        check_name(button, &TOP)?;
        let subs = button.get("sub_button").and_then(Value::as_array).filter(|s| !s.is_empty());
        let Some(subs) = subs else {
            shown.push(leaf(button, &TOP)?);
            continue;
        };
        if button.get("type").is_some() {
            return fail(INVALID_BUTTON_TYPE);
        }
        if subs.len() > MAX_SUB_BUTTONS {
            return fail(INVALID_SUB_BUTTON_SIZE);
        }
        let mut shown_subs = Vec::with_capacity(subs.len());
        for sub in subs {
            check_name(sub, &SUB)?;
            shown_subs.push(leaf(sub, &SUB)?);
        }
        shown.push(json!({"name": button["name"], "sub_button": shown_subs}));
    }
    state.menu = Some(json!({"button": shown}));
    Ok(json!({"errcode": 0, "errmsg": "ok"}))
}

/// `GET /cgi-bin/menu/get` → `{"menu": {...}}`.
pub(super) fn menu_get(state: &mut State, _req: &ApiRequest) -> ApiResult {
    match &state.menu {
        Some(menu) => Ok(json!({"menu": menu})),
        None => fail(MENU_NOT_EXIST),
    }
}

/// `GET /cgi-bin/menu/delete`.
pub(super) fn menu_delete(state: &mut State, _req: &ApiRequest) -> ApiResult {
    state.menu = None;
    Ok(json!({"errcode": 0, "errmsg": "ok"}))
}

struct Code {
    openid: String,
    issued_at: i64,
    used: bool,
}

/// Web-OAuth codes issued through the control surface.
#[derive(Default)]
pub(super) struct OAuth {
    codes: HashMap<String, Code>,
}

impl OAuth {
    /// A fresh code for `openid`.
    pub fn issue(&mut self, openid: &str, now: i64) -> String {
        let code: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
        self.codes.insert(code.clone(), Code { openid: openid.to_owned(), issued_at: now, used: false });
        code
    }
}

/// `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`.
pub(super) fn oauth_access_token(state: &mut State, req: &ApiRequest) -> ApiResult {
    let Some(appid) = req.param("appid") else { return fail(APPID_MISSING) };
    let Some(secret) = req.param("secret") else { return fail(APPSECRET_MISSING) };
    if appid != state.config.appid {
        return fail(INVALID_APPID);
    }
    if secret != state.config.secret {
        return fail(INVALID_APPSECRET);
    }
    if req.param("grant_type") != Some("authorization_code") {
        return fail(INVALID_GRANT_TYPE);
    }
    let Some(code) = req.param("code") else { return fail(CODE_MISSING) };
    let now = state.now();
    let Some(record) = state.oauth.codes.get_mut(code) else { return fail(INVALID_CODE) };
    if record.used {
        return fail(CODE_BEEN_USED);
    }
    if now - record.issued_at >= CODE_TTL_SECS {
        return fail(INVALID_CODE);
    }
    record.used = true;
    let token = |prefix: &str| -> String {
        let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(88).map(char::from).collect();
        format!("{prefix}{random}")
    };
    Ok(json!({
        "access_token": token("MOCKWEB_"),
        "expires_in": TOKEN_TTL_SECS,
        "refresh_token": token("MOCKREFRESH_"),
        "openid": record.openid,
        "scope": "snsapi_base",
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(menu: Value) -> i64 {
        let mut state = State::new(super::super::MockConfig {
            appid: "wx".into(),
            secret: "s".into(),
            account_type: super::super::MockAccountType::Service,
            callback: None,
        });
        let req = ApiRequest { query: HashMap::new(), body: menu };
        menu_create(&mut state, &req).map(|_| 0).unwrap_or_else(|e| e.code)
    }

    #[test]
    fn menu_limits_answer_their_codes() {
        let click = |name: &str| json!({"type": "click", "name": name, "key": "K"});
        assert_eq!(code(json!({"button": [click("a")]})), 0);
        assert_eq!(code(json!({"button": []})), INVALID_BUTTON_SIZE);
        assert_eq!(code(json!({"button": [click("a"), click("b"), click("c"), click("d")]})), INVALID_BUTTON_SIZE);
        assert_eq!(code(json!({"button": [click(&"名".repeat(6))]})), INVALID_BUTTON_NAME_SIZE);
        assert_eq!(code(json!({"button": [{"type": "nope", "name": "a"}]})), INVALID_BUTTON_TYPE);
        let event_name = json!({"type": "view_miniprogram", "name": "a", "key": "k"});
        assert_eq!(code(json!({"button": [event_name]})), INVALID_BUTTON_TYPE);
        let typed_menu = json!({"type": "click", "name": "m", "key": "k", "sub_button": [click("s")]});
        assert_eq!(code(json!({"button": [typed_menu]})), INVALID_BUTTON_TYPE);
        assert_eq!(
            code(json!({"button": [{"type": "click", "name": "a", "key": "k".repeat(129)}]})),
            INVALID_BUTTON_KEY_SIZE
        );
        assert_eq!(code(json!({"button": [{"type": "view", "name": "a"}]})), INVALID_BUTTON_URL_SIZE);
        let six: Vec<Value> = (0..6).map(|i| click(&format!("s{i}"))).collect();
        assert_eq!(code(json!({"button": [{"name": "m", "sub_button": six}]})), INVALID_SUB_BUTTON_SIZE);
        let long = click(&"x".repeat(61));
        assert_eq!(code(json!({"button": [{"name": "m", "sub_button": [long]}]})), INVALID_SUB_BUTTON_NAME_SIZE);
        let bad = json!({"type": "bad", "name": "s"});
        assert_eq!(code(json!({"button": [{"name": "m", "sub_button": [bad]}]})), INVALID_SUB_BUTTON_TYPE);
        let no_key = json!({"type": "click", "name": "s"});
        assert_eq!(code(json!({"button": [{"name": "m", "sub_button": [no_key]}]})), INVALID_SUB_BUTTON_KEY_SIZE);
    }
}
