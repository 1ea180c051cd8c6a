//! The mock against its reference (issue 18 point 7): every request/response example of
//! `../shared/wechat-api.md` for an API the mock serves, and every errcode the mock can answer,
//! is a row of a table played over HTTP against `MockWeChat::start`, in order, on one mock (rows
//! build on each other: the tag created by the §7 example is the one tagged next).
//!
//! Two more tests read the reference itself, so the mock cannot drift from it: every errcode in
//! the mock's `error.rs` appears in the reference, and so does every path of its route table;
//! the few that do not are listed below with the reason, and the list must stay exact.

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;

use serde_json::Value;
use tagcast::mock_wechat::{Interaction, MockAccountType, MockConfig, MockWeChat, RunningMock};

const APPID: &str = "wxconformance0001";
const SECRET: &str = "conformancesecret";

/// Codes the mock answers that the reference does not list, and why each is kept.
const CODES_NOT_IN_REFERENCE: [(i64, &str); 8] = [
    (
        41005,
        "media/upload, material/add_material: no `media` part (the upload docs; §13 gives the call, not its refusals)",
    ),
    (40029, "sns/oauth2/access_token: invalid code (CONTRACT.md §6 names the call; the reference has no section)"),
    (40163, "sns/oauth2/access_token: code already used"),
    (41008, "sns/oauth2/access_token: code missing"),
    (40066, "unknown path: issue 18 point 5 names it; the reference only says errors are HTTP 200"),
    (44004, "empty text content of a mass or customer-service message"),
    (61500, "datacube: date format (§18 gives the body, not its refusals)"),
    (61501, "datacube: date range (§18's span and 'yesterday at the latest' rules)"),
];

/// Paths the mock serves that the reference does not spell out, and why.
const PATHS_NOT_IN_REFERENCE: [(&str, &str); 3] = [
    ("/sns/oauth2/access_token", "web OAuth code exchange: CONTRACT.md §6 names it; the reference has no section"),
    ("/cgi-bin/material/get_materialcount", "issue 18 point 2 names it; §13 names only material/add_material"),
    ("/cgi-bin/material/batchget_material", "issue 18 point 2 names it; §13 names only material/add_material"),
];

fn reference() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/wechat-api.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn mock_source(file: &str) -> String {
    let path = format!("{}/src/mock_wechat/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every number the reference writes, ranges such as `40004-40008` and `30001–30003` expanded.
fn reference_numbers(text: &str) -> BTreeSet<i64> {
    let chars: Vec<char> = text.chars().collect();
    let mut numbers: Vec<(usize, usize, i64)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let digits: String = chars[start..i].iter().collect();
        let negative = start > 0 && chars[start - 1] == '-' && (start < 2 || !chars[start - 2].is_ascii_digit());
        if let Ok(n) = digits.parse::<i64>() {
            numbers.push((start, i, if negative { -n } else { n }));
        }
    }
    let mut set: BTreeSet<i64> = numbers.iter().map(|n| n.2).collect();
    for pair in numbers.windows(2) {
        let ((_, end, low), (start, _, high)) = (pair[0], pair[1]);
        let between: String = chars[end..start].iter().collect();
        let high = high.abs();
        if matches!(between.as_str(), "-" | "–") && low >= 10_000 && high > low && high - low < 100 {
            set.extend(low..=high);
        }
    }
    set
}

/// Every errcode the mock's `error.rs` can answer: its constants and the literal codes of
/// `errmsg` (those only `fail_next` injects, such as 45009).
fn mock_codes() -> BTreeSet<i64> {
    let source = mock_source("error.rs");
    let mut codes = BTreeSet::new();
    for line in source.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub(super) const ").and_then(|l| l.split_once(": i64 = ")) {
            codes.insert(rest.1.trim_end_matches(';').parse::<i64>().expect("an i64 constant"));
        } else if let Some((code, _)) = line.split_once(" => ") {
            if let Ok(code) = code.parse::<i64>() {
                codes.insert(code);
            }
        }
    }
    codes.remove(&0);
    codes
}

#[test]
fn every_errcode_the_mock_answers_is_in_the_reference() {
    let documented = reference_numbers(&reference());
    let codes = mock_codes();
    assert!(codes.len() > 40, "error.rs was read: {codes:?}");
    let exempt: BTreeSet<i64> = CODES_NOT_IN_REFERENCE.iter().map(|c| c.0).collect();
    let invented: Vec<i64> = codes.iter().copied().filter(|c| !documented.contains(c) && !exempt.contains(c)).collect();
    assert!(invented.is_empty(), "errcodes the mock answers but wechat-api.md never names: {invented:?}");
    // The exemptions stay exact: each is answered by the mock and still missing from the reference.
    for (code, why) in CODES_NOT_IN_REFERENCE {
        assert!(codes.contains(&code), "{code} ({why}) is no longer answered: drop it from the list");
        assert!(!documented.contains(&code), "{code} is in the reference now: drop it from the list");
    }
}

#[test]
fn every_path_the_mock_serves_is_in_the_reference() {
    let text = reference();
    let mock = MockWeChat::new(config(MockAccountType::Service));
    let routes = mock.api_routes();
    assert!(routes.len() > 30, "{routes:?}");
    let exempt: BTreeSet<&str> = PATHS_NOT_IN_REFERENCE.iter().map(|p| p.0).collect();
    for (_, path) in &routes {
        // §18 writes the datacube calls as `POST .../datacube/<name>` and a table of names.
        let named = match path.strip_prefix("/datacube/") {
            Some(name) => text.contains("/datacube/<name>") && text.contains(&format!("`{name}`")),
            // §13 names the rest of the draft box in short: "Also `draft/get`, `draft/update`, ...".
            None => {
                text.contains(path)
                    || path.strip_prefix("/cgi-bin/").is_some_and(|short| text.contains(&format!("`{short}`")))
            }
        };
        assert!(named || exempt.contains(path), "{path} is served but wechat-api.md never names it");
        assert!(!(named && exempt.contains(path)), "{path} is in the reference now: drop it from the list");
    }
}

fn config(account_type: MockAccountType) -> MockConfig {
    MockConfig { appid: APPID.into(), secret: SECRET.into(), account_type, callback: None }
}

/// One call of the table: `{NAME}` in `query` and `body` is replaced by the runner's variable
/// (`T` the latest token, `OLD` the one before, `O1`.. followers, `TAG` the created tag, ...).
struct Case {
    /// The reference section the row comes from.
    section: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    /// The raw body (`None`: no body).
    body: Option<&'static str>,
    errcode: i64,
    /// Top-level keys the answer must have.
    keys: &'static [&'static str],
    /// Store this top-level key of the answer as a variable (`("TAG", "tag.id")`).
    keep: Option<(&'static str, &'static str)>,
}

type Setup = fn(&MockWeChat, &mut HashMap<String, String>);

enum Step {
    Call(Case),
    Setup(&'static str, Setup),
}

const UPLOAD_NOPE: &str = "access_token={T}&type=nope";
const UPLOAD_IMAGE: &str = "access_token={T}&type=image";
const UPLOAD_THUMB: &str = "access_token={T}&type=thumb";
/// A multipart body without the `media` part.
const NO_MEDIA_PART: &str = "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n";

/// A multipart body whose `media` part is `size` bytes named `filename`.
fn upload(filename: &str, size: usize) -> &'static str {
    leak(format!(
        "--b\r\nContent-Disposition: form-data; name=\"media\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n{}\r\n--b--\r\n",
        "x".repeat(size)
    ))
}

/// `clear_quota`'s body.
const CLEAR_QUOTA: &str = r#"{"appid":"{APPID}"}"#;

/// A customer-service text to O2.
const CUSTOM_TO_O2: &str = r#"{"touser":"{O2}","msgtype":"text","text":{"content":"您好"}}"#;

/// A body built at run time, for the table's `&'static str`s.
fn leak(body: String) -> &'static str {
    Box::leak(body.into_boxed_str())
}

fn call(
    section: &'static str,
    method: &'static str,
    path: &'static str,
    query: &'static str,
    body: Option<&'static str>,
    errcode: i64,
    keys: &'static [&'static str],
) -> Step {
    Step::Call(Case { section, method, path, query, body, errcode, keys, keep: None })
}

fn keep(step: Step, var: &'static str, key: &'static str) -> Step {
    match step {
        Step::Call(case) => Step::Call(Case { keep: Some((var, key)), ..case }),
        other => other,
    }
}

const T: &str = "access_token={T}";
const TOKEN_QUERY: &str = "grant_type=client_credential&appid={APPID}&secret={SECRET}";
const STABLE_BODY: &str =
    r#"{"grant_type":"client_credential","appid":"{APPID}","secret":"{SECRET}","force_refresh":false}"#;
const MENU_EXAMPLE: &str = r#"{"button":[
  {"type":"click","name":"今日歌曲","key":"V1001_TODAY_MUSIC"},
  {"name":"菜单","sub_button":[
     {"type":"view","name":"搜索","url":"https://www.soso.com/"},
     {"type":"miniprogram","name":"wxa","url":"https://mp.weixin.qq.com","appid":"wx286b93c14bbf93aa","pagepath":"pages/lunar/index"},
     {"type":"click","name":"赞一下我们","key":"V1001_GOOD"}]}]}"#;

fn service_steps() -> Vec<Step> {
    use Step::Setup;
    vec![
        // §6 access_token.
        call("§6.1", "GET", "/cgi-bin/token", TOKEN_QUERY, None, 0, &["access_token", "expires_in"]),
        call("§6.2", "POST", "/cgi-bin/stable_token", "", Some(STABLE_BODY), 0, &["access_token", "expires_in"]),
        call("§6.4", "GET", "/cgi-bin/token", "grant_type=nope&appid={APPID}&secret={SECRET}", None, 40002, &[]),
        call(
            "§6.4",
            "GET",
            "/cgi-bin/token",
            "grant_type=client_credential&appid=wxother&secret={SECRET}",
            None,
            40013,
            &[],
        ),
        call(
            "§6.4",
            "GET",
            "/cgi-bin/token",
            "grant_type=client_credential&appid={APPID}&secret=wrong",
            None,
            40125,
            &[],
        ),
        call("§6.4", "GET", "/cgi-bin/token", "grant_type=client_credential&secret={SECRET}", None, 41002, &[]),
        call("§6.4", "GET", "/cgi-bin/token", "grant_type=client_credential&appid={APPID}", None, 41004, &[]),
        call("§6.4", "GET", "/cgi-bin/tags/get", "", None, 41001, &[]),
        call("§6.4", "GET", "/cgi-bin/tags/get", "access_token=never-issued", None, 40014, &[]),
        call("§6.1", "GET", "/cgi-bin/token", TOKEN_QUERY, None, 0, &["access_token"]),
        Setup("the previous token's 5-minute overlap runs out", |mock, _| {
            mock.advance_time(std::time::Duration::from_secs(301));
        }),
        call("§6.1/§6.4", "GET", "/cgi-bin/tags/get", "access_token={OLD}", None, 40001, &[]),
        // Conventions: errors are HTTP 200 + errcode, bodies raw UTF-8, one method per path.
        call("conventions", "GET", "/cgi-bin/no/such/api", T, None, 40066, &[]),
        call("conventions", "POST", "/cgi-bin/tags/get", T, Some("{}"), 40066, &[]),
        call("conventions", "GET", "/cgi-bin/tags/create", T, None, 44002, &[]),
        call("§14.1", "POST", "/cgi-bin/tags/create", T, Some(""), 44002, &[]),
        call("§14.1", "POST", "/cgi-bin/tags/create", T, Some("{not json"), 47001, &[]),
        call("§14.1", "POST", "/cgi-bin/tags/create", T, Some(r#"{"tag":{"name":"\u5e7f\u4e1c"}}"#), 40033, &[]),
        // §7 tags: the examples, in the order a caller uses them.
        keep(
            call("§7 create", "POST", "/cgi-bin/tags/create", T, Some(r#"{"tag":{"name":"广东"}}"#), 0, &["tag"]),
            "TAG",
            "tag.id",
        ),
        call("§7 list", "GET", "/cgi-bin/tags/get", T, None, 0, &["tags"]),
        call("§7 update", "POST", "/cgi-bin/tags/update", T, Some(r#"{"tag":{"id":{TAG},"name":"广东人"}}"#), 0, &[]),
        call(
            "§7 tag users",
            "POST",
            "/cgi-bin/tags/members/batchtagging",
            T,
            Some(r#"{"openid_list":["{O1}","{O2}"],"tagid":{TAG}}"#),
            0,
            &[],
        ),
        call("§7 tags of user", "POST", "/cgi-bin/tags/getidlist", T, Some(r#"{"openid":"{O1}"}"#), 0, &["tagid_list"]),
        call(
            "§7 fans of tag",
            "POST",
            "/cgi-bin/user/tag/get",
            T,
            Some(r#"{"tagid":{TAG},"next_openid":""}"#),
            0,
            &["count", "data", "next_openid"],
        ),
        call(
            "§7 untag users",
            "POST",
            "/cgi-bin/tags/members/batchuntagging",
            T,
            Some(r#"{"openid_list":["{O1}","{O2}"],"tagid":{TAG}}"#),
            0,
            &[],
        ),
        // §7 refusals.
        call("§7 45157", "POST", "/cgi-bin/tags/create", T, Some(r#"{"tag":{"name":"广东人"}}"#), 45157, &[]),
        call("§7 45157", "POST", "/cgi-bin/tags/create", T, Some(r#"{"tag":{"name":" 　 "}}"#), 45157, &[]),
        call("§7 45158", "POST", "/cgi-bin/tags/create", T, Some(r#"{"tag":{"name":"{NAME31}"}}"#), 45158, &[]),
        call("§7 45058", "POST", "/cgi-bin/tags/update", T, Some(r#"{"tag":{"id":2,"name":"x"}}"#), 45058, &[]),
        call("§7 45058", "POST", "/cgi-bin/tags/delete", T, Some(r#"{"tag":{"id":1}}"#), 45058, &[]),
        call(
            "§7 40032",
            "POST",
            "/cgi-bin/tags/members/batchtagging",
            T,
            Some(r#"{"openid_list":[],"tagid":{TAG}}"#),
            40032,
            &[],
        ),
        call(
            "§7 45159",
            "POST",
            "/cgi-bin/tags/members/batchtagging",
            T,
            Some(r#"{"openid_list":["{O1}"],"tagid":999999}"#),
            45159,
            &[],
        ),
        call(
            "§7 40003",
            "POST",
            "/cgi-bin/tags/members/batchtagging",
            T,
            Some(r#"{"openid_list":["oNobodyAtAll"],"tagid":{TAG}}"#),
            40003,
            &[],
        ),
        call("§7 tagid is a number", "POST", "/cgi-bin/user/tag/get", T, Some(r#"{"tagid":"{TAG}"}"#), 47001, &[]),
        Setup("O3 carries 20 tags", |mock, vars| {
            let ids: Vec<i64> =
                (0..20).map(|i| mock.create_tag(&format!("满{i}")).expect("room for 20 tags")).collect();
            for id in ids {
                mock.tag_followers(id, &[vars["O3"].clone()]);
            }
        }),
        call(
            "§7 45059",
            "POST",
            "/cgi-bin/tags/members/batchtagging",
            T,
            Some(r#"{"openid_list":["{O3}"],"tagid":{TAG}}"#),
            45059,
            &[],
        ),
        Setup("a tag with 100,001 fans", |mock, vars| {
            let fans = mock.seed_followers(100_001);
            let id = mock.create_tag("十万加").expect("room for one more");
            mock.tag_followers(id, &fans);
            vars.insert("BIG".into(), id.to_string());
        }),
        call("§7 45057", "POST", "/cgi-bin/tags/delete", T, Some(r#"{"tag":{"id":{BIG}}}"#), 45057, &[]),
        call("§7 delete", "POST", "/cgi-bin/tags/delete", T, Some(r#"{"tag":{"id":{TAG}}}"#), 0, &[]),
        Setup("the account has 100 tags", |mock, _| {
            let mut i = 0;
            while mock.create_tag(&format!("填{i}")).is_ok() {
                i += 1;
            }
        }),
        call("§7 45056", "POST", "/cgi-bin/tags/create", T, Some(r#"{"tag":{"name":"一百零一"}}"#), 45056, &[]),
        // §8 followers.
        call(
            "§8.1",
            "GET",
            "/cgi-bin/user/get",
            "access_token={T}&next_openid=",
            None,
            0,
            &["total", "count", "data", "next_openid"],
        ),
        call(
            "§8.2",
            "GET",
            "/cgi-bin/user/info",
            "access_token={T}&openid={O1}&lang=zh_CN",
            None,
            0,
            &["subscribe", "openid", "subscribe_time", "tagid_list", "subscribe_scene"],
        ),
        call(
            "§8.3",
            "POST",
            "/cgi-bin/user/info/batchget",
            T,
            Some(r#"{"user_list":[{"openid":"{O1}","lang":"zh_CN"},{"openid":"{O2}"}]}"#),
            0,
            &["user_info_list"],
        ),
        // §9 mass send: sendall's text body with the example's filter and clientmsgid.
        keep(
            call(
                "§9.4 sendall",
                "POST",
                "/cgi-bin/message/mass/sendall",
                T,
                Some(
                    r#"{"filter":{"is_to_all":false,"tag_id":2},"msgtype":"text","text":{"content":"早安"},"clientmsgid":"send_tag_2_20240501"}"#,
                ),
                0,
                &["msg_id"],
            ),
            "MSG",
            "msg_id",
        ),
        call(
            "§9.7 45066",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(
                r#"{"filter":{"is_to_all":false,"tag_id":2},"msgtype":"text","text":{"content":"早安"},"clientmsgid":"send_tag_2_20240501"}"#,
            ),
            45066,
            &[],
        ),
        Setup("a minute passes", |mock, _| mock.advance_time(std::time::Duration::from_secs(61))),
        call(
            "§9.7 45065",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(
                r#"{"filter":{"is_to_all":false,"tag_id":2},"msgtype":"text","text":{"content":"早安"},"clientmsgid":"send_tag_2_20240501"}"#,
            ),
            45065,
            &["msg_id"],
        ),
        call(
            "§9.7 45067",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":true},"msgtype":"text","text":{"content":"x"},"clientmsgid":"{CMID65}"}"#),
            45067,
            &[],
        ),
        call(
            "§9.4 is_to_all is a boolean",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":1},"msgtype":"text","text":{"content":"x"}}"#),
            47001,
            &[],
        ),
        call(
            "§9.7 40007",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":true},"msgtype":"mpnews","mpnews":{}}"#),
            40007,
            &[],
        ),
        call(
            "§14.1 40008",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":true},"msgtype":"music","music":{}}"#),
            40008,
            &[],
        ),
        call(
            "§9.4 empty text",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":true},"msgtype":"text","text":{"content":""}}"#),
            44004,
            &[],
        ),
        call(
            "§9.4 40035",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":false},"msgtype":"text","text":{"content":"x"}}"#),
            40035,
            &[],
        ),
        call(
            "§9.5 send",
            "POST",
            "/cgi-bin/message/mass/send",
            T,
            Some(r#"{"touser":["{O1}","{O2}"],"msgtype":"text","text":{"content":"你好"}}"#),
            0,
            &["msg_id"],
        ),
        call(
            "§9.7 40130",
            "POST",
            "/cgi-bin/message/mass/send",
            T,
            Some(r#"{"touser":["{O1}"],"msgtype":"text","text":{"content":"你好"}}"#),
            40130,
            &[],
        ),
        call(
            "§9.6 preview",
            "POST",
            "/cgi-bin/message/mass/preview",
            T,
            Some(r#"{"touser":"{O1}","msgtype":"text","text":{"content":"预览"}}"#),
            0,
            &["msg_id"],
        ),
        Setup("O4 unfollows", |mock, vars| mock.unsubscribe(&vars["O4"])),
        call(
            "§14.1 43004",
            "POST",
            "/cgi-bin/message/mass/preview",
            T,
            Some(r#"{"touser":"{O4}","msgtype":"text","text":{"content":"预览"}}"#),
            43004,
            &[],
        ),
        call(
            "§9.6 get",
            "POST",
            "/cgi-bin/message/mass/get",
            T,
            Some(r#"{"msg_id":"{MSG}"}"#),
            0,
            &["msg_id", "msg_status"],
        ),
        call("§9.6 get", "POST", "/cgi-bin/message/mass/get", T, Some(r#"{"msg_id":1}"#), 40035, &[]),
        // Only mpnews/video sends can be deleted; this one was text.
        call(
            "§9.6 delete",
            "POST",
            "/cgi-bin/message/mass/delete",
            T,
            Some(r#"{"msg_id":{MSG},"article_idx":0}"#),
            40035,
            &[],
        ),
        call("§9.6 delete", "POST", "/cgi-bin/message/mass/delete", T, Some(r#"{"msg_id":"{MSG}"}"#), 47001, &[]),
        call(
            "§9.6 delete",
            "POST",
            "/cgi-bin/message/mass/delete",
            T,
            Some(r#"{"msg_id":{MSG},"article_idx":"2"}"#),
            47001,
            &[],
        ),
        call(
            "§9.4 send_ignore_reprint is a number",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(
                r#"{"filter":{"is_to_all":true},"msgtype":"mpnews","mpnews":{"media_id":"M"},"send_ignore_reprint":"0"}"#,
            ),
            47001,
            &[],
        ),
        call("§9.6 speed get", "POST", "/cgi-bin/message/mass/speed/get", T, Some("{}"), 0, &["speed", "realspeed"]),
        call("§9.6 speed get is POST", "GET", "/cgi-bin/message/mass/speed/get", T, None, 44002, &[]),
        call("§9.6 speed set", "POST", "/cgi-bin/message/mass/speed/set", T, Some(r#"{"speed":1}"#), 0, &[]),
        call("§9.6 45083", "POST", "/cgi-bin/message/mass/speed/set", T, Some(r#"{"speed":5}"#), 45083, &[]),
        call("§9.6 45084", "POST", "/cgi-bin/message/mass/speed/set", T, Some("{}"), 45084, &[]),
        // §10 customer service: only inside the window an interaction opened.
        Setup("O1 writes to the account", |mock, vars| mock.open_interaction(&vars["O1"], Interaction::Message)),
        call(
            "§10",
            "POST",
            "/cgi-bin/message/custom/send",
            T,
            Some(r#"{"touser":"{O1}","msgtype":"text","text":{"content":"Hello"}}"#),
            0,
            &[],
        ),
        call(
            "§10 45015",
            "POST",
            "/cgi-bin/message/custom/send",
            T,
            Some(r#"{"touser":"{O4}","msgtype":"text","text":{"content":"Hello"}}"#),
            45015,
            &[],
        ),
        call(
            "§5/§10 one news article",
            "POST",
            "/cgi-bin/message/custom/send",
            T,
            Some(r#"{"touser":"{O1}","msgtype":"news","news":{"articles":[{"title":"a"},{"title":"b"}]}}"#),
            45008,
            &[],
        ),
        call(
            "§14.1 45002",
            "POST",
            "/cgi-bin/message/custom/send",
            T,
            Some(leak(format!(
                r#"{{"touser":"{{O1}}","msgtype":"text","text":{{"content":"{}"}}}}"#,
                "长".repeat(683)
            ))),
            45002,
            &[],
        ),
        call(
            "§14.1 45003",
            "POST",
            "/cgi-bin/message/custom/send",
            T,
            Some(leak(format!(
                r#"{{"touser":"{{O1}}","msgtype":"news","news":{{"articles":[{{"title":"{}","url":"https://example.com"}}]}}}}"#,
                "标".repeat(22)
            ))),
            45003,
            &[],
        ),
        call(
            "§14.1 45004",
            "POST",
            "/cgi-bin/message/custom/send",
            T,
            Some(leak(format!(
                r#"{{"touser":"{{O1}}","msgtype":"news","news":{{"articles":[{{"title":"t","description":"{}"}}]}}}}"#,
                "述".repeat(41)
            ))),
            45004,
            &[],
        ),
        Setup("O2 clicks a menu", |mock, vars| mock.open_interaction(&vars["O2"], Interaction::Click)),
        call("§10 click 1", "POST", "/cgi-bin/message/custom/send", T, Some(CUSTOM_TO_O2), 0, &[]),
        call("§10 click 2", "POST", "/cgi-bin/message/custom/send", T, Some(CUSTOM_TO_O2), 0, &[]),
        call("§10 click 3", "POST", "/cgi-bin/message/custom/send", T, Some(CUSTOM_TO_O2), 0, &[]),
        call("§10 45047", "POST", "/cgi-bin/message/custom/send", T, Some(CUSTOM_TO_O2), 45047, &[]),
        // §13 uploads: type, file type, size, the part itself.
        call("§13/§14.1 40004", "POST", "/cgi-bin/media/upload", UPLOAD_NOPE, Some(upload("a.jpg", 10)), 40004, &[]),
        call("§13/§14.1 40005", "POST", "/cgi-bin/media/upload", UPLOAD_IMAGE, Some(upload("a.exe", 10)), 40005, &[]),
        call(
            "§13/§14.1 40006",
            "POST",
            "/cgi-bin/media/upload",
            UPLOAD_THUMB,
            Some(upload("a.jpg", 70_000)),
            40006,
            &[],
        ),
        call("§13 41005", "POST", "/cgi-bin/media/upload", UPLOAD_IMAGE, Some(NO_MEDIA_PART), 41005, &[]),
        call("§13", "POST", "/cgi-bin/media/upload", UPLOAD_IMAGE, Some(upload("a.jpg", 10)), 0, &["media_id"]),
        // §14.2 quota APIs.
        call(
            "§14.2 quota/get",
            "POST",
            "/cgi-bin/openapi/quota/get",
            T,
            Some(r#"{"cgi_path":"/cgi-bin/message/custom/send"}"#),
            0,
            &["quota"],
        ),
        call(
            "§14.2 76021",
            "POST",
            "/cgi-bin/openapi/quota/get",
            T,
            Some(r#"{"cgi_path":"/cgi-bin/nope"}"#),
            76021,
            &[],
        ),
        call("§14.2 clear_quota", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call(
            "§14.2 clear_quota/v2",
            "POST",
            "/cgi-bin/clear_quota/v2",
            "",
            Some(r#"{"appid":"{APPID}","appsecret":"{SECRET}"}"#),
            0,
            &[],
        ),
        call("§14.2 clear 3 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 4 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 5 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 6 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 7 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 8 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 9 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.2 clear 10 of 10", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 0, &[]),
        call("§14.1 48006", "POST", "/cgi-bin/clear_quota", T, Some(CLEAR_QUOTA), 48006, &[]),
        // §12 menu: the example, then each refusal.
        call("§12", "POST", "/cgi-bin/menu/create", T, Some(MENU_EXAMPLE), 0, &[]),
        call("§12", "GET", "/cgi-bin/menu/get", T, None, 0, &["menu"]),
        call("§12", "GET", "/cgi-bin/menu/delete", T, None, 0, &[]),
        call("§12 46002", "GET", "/cgi-bin/menu/get", T, None, 46002, &[]),
        call("§12 40016", "POST", "/cgi-bin/menu/create", T, Some(r#"{"button":[]}"#), 40016, &[]),
        call(
            "§12 40017",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"type":"view_miniprogram","name":"a","key":"k"}]}"#),
            40017,
            &[],
        ),
        call(
            "§12 40018",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"type":"click","name":"今日歌曲推荐","key":"k"}]}"#),
            40018,
            &[],
        ),
        call(
            "§12 40019",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"type":"click","name":"a","key":"{KEY129}"}]}"#),
            40019,
            &[],
        ),
        call(
            "§12 40020",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"type":"view","name":"a","url":"{URL1025}"}]}"#),
            40020,
            &[],
        ),
        call(
            "§12 40023",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"name":"m","sub_button":[{SIX_SUBS}]}]}"#),
            40023,
            &[],
        ),
        call(
            "§12 40024",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"name":"m","sub_button":[{"type":"nope","name":"s"}]}]}"#),
            40024,
            &[],
        ),
        call(
            "§12 40025",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"name":"m","sub_button":[{"type":"click","name":"{NAME61}","key":"k"}]}]}"#),
            40025,
            &[],
        ),
        call(
            "§12 40026",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"name":"m","sub_button":[{"type":"click","name":"s","key":"{KEY129}"}]}]}"#),
            40026,
            &[],
        ),
        call(
            "§12 40027",
            "POST",
            "/cgi-bin/menu/create",
            T,
            Some(r#"{"button":[{"name":"m","sub_button":[{"type":"view","name":"s","url":"{URL1025}"}]}]}"#),
            40027,
            &[],
        ),
        // §18 statistics.
        call(
            "§18",
            "POST",
            "/datacube/getusersummary",
            T,
            Some(r#"{"begin_date":"{YESTERDAY}","end_date":"{YESTERDAY}"}"#),
            0,
            &["list"],
        ),
        call(
            "§18 date format",
            "POST",
            "/datacube/getusersummary",
            T,
            Some(r#"{"begin_date":"2024/05/01","end_date":"{YESTERDAY}"}"#),
            61500,
            &[],
        ),
        call(
            "§18 yesterday at the latest",
            "POST",
            "/datacube/getusercumulate",
            T,
            Some(r#"{"begin_date":"{TODAY}","end_date":"{TODAY}"}"#),
            61501,
            &[],
        ),
        // Web OAuth (CONTRACT.md §6).
        Setup("O1 authorises the web page", |mock, vars| {
            let code = mock.oauth_code(&vars["O1"]);
            vars.insert("CODE".into(), code);
        }),
        call(
            "oauth",
            "GET",
            "/sns/oauth2/access_token",
            "appid={APPID}&secret={SECRET}&code={CODE}&grant_type=authorization_code",
            None,
            0,
            &["access_token", "openid"],
        ),
        call(
            "oauth",
            "GET",
            "/sns/oauth2/access_token",
            "appid={APPID}&secret={SECRET}&code={CODE}&grant_type=authorization_code",
            None,
            40163,
            &[],
        ),
        call(
            "oauth",
            "GET",
            "/sns/oauth2/access_token",
            "appid={APPID}&secret={SECRET}&code=unknown&grant_type=authorization_code",
            None,
            40029,
            &[],
        ),
        call(
            "oauth",
            "GET",
            "/sns/oauth2/access_token",
            "appid={APPID}&secret={SECRET}&grant_type=authorization_code",
            None,
            41008,
            &[],
        ),
        // §14 codes WeChat answers on its own schedule: injected.
        Setup("WeChat is busy once", |mock, _| mock.fail_next("/cgi-bin/tags/get", 1, -1)),
        call("§14.1 -1", "GET", "/cgi-bin/tags/get", T, None, -1, &[]),
        Setup("the daily quota runs out", |mock, _| mock.fail_next("/cgi-bin/tags/get", 1, 45009)),
        call("§14.2 45009", "GET", "/cgi-bin/tags/get", T, None, 45009, &[]),
        Setup("the minute quota runs out", |mock, _| mock.fail_next("/cgi-bin/tags/get", 1, 45011)),
        call("§14.2 45011", "GET", "/cgi-bin/tags/get", T, None, 45011, &[]),
        Setup("every token expires", |mock, _| mock.expire_tokens()),
        call("§6.4 42001", "GET", "/cgi-bin/tags/get", T, None, 42001, &[]),
    ]
}

/// A subscription account: no `mass/send`, one successful mass send a day.
fn subscription_steps() -> Vec<Step> {
    vec![
        call("§6.1", "GET", "/cgi-bin/token", TOKEN_QUERY, None, 0, &["access_token"]),
        call(
            "§9.4",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":true},"msgtype":"text","text":{"content":"一"}}"#),
            0,
            &["msg_id"],
        ),
        call(
            "§9.2/§9.7 45028",
            "POST",
            "/cgi-bin/message/mass/sendall",
            T,
            Some(r#"{"filter":{"is_to_all":true},"msgtype":"text","text":{"content":"二"}}"#),
            45028,
            &[],
        ),
        call(
            "§9.1/§9.7 48001",
            "POST",
            "/cgi-bin/message/mass/send",
            T,
            Some(r#"{"touser":["{O1}","{O2}"],"msgtype":"text","text":{"content":"你好"}}"#),
            48001,
            &[],
        ),
    ]
}

fn fill(template: &str, vars: &HashMap<String, String>) -> String {
    let mut text = template.to_owned();
    for (name, value) in vars {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// Plays `steps` on a fresh mock; returns every errcode the rows saw.
async fn play(account_type: MockAccountType, steps: Vec<Step>) -> BTreeSet<i64> {
    let mock = MockWeChat::new(config(account_type));
    let running: RunningMock = mock.start(TcpListener::bind("127.0.0.1:0").unwrap()).unwrap();
    let http = reqwest::Client::new();
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("APPID".into(), APPID.into());
    vars.insert("SECRET".into(), SECRET.into());
    for (i, openid) in mock.seed_followers(4).into_iter().enumerate() {
        vars.insert(format!("O{}", i + 1), openid);
    }
    vars.insert("NAME31".into(), "a".repeat(31));
    vars.insert("NAME61".into(), "b".repeat(61));
    vars.insert("KEY129".into(), "k".repeat(129));
    vars.insert("URL1025".into(), format!("https://example.com/{}", "u".repeat(1005)));
    vars.insert("CMID65".into(), "c".repeat(65));
    let sub = r#"{"type":"click","name":"s","key":"k"}"#;
    vars.insert("SIX_SUBS".into(), [sub; 6].join(","));
    let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
    let today = chrono::DateTime::from_timestamp(mock.now(), 0).unwrap().with_timezone(&beijing).date_naive();
    vars.insert("TODAY".into(), today.to_string());
    vars.insert("YESTERDAY".into(), today.pred_opt().unwrap().to_string());
    let mut seen = BTreeSet::new();
    let mut after = "start";
    for step in steps {
        let case = match step {
            Step::Setup(what, setup) => {
                setup(&mock, &mut vars);
                after = what;
                continue;
            }
            Step::Call(case) => case,
        };
        let query = fill(case.query, &vars);
        let url = format!("{}{}?{query}", running.url(), case.path);
        let mut request = http.request(case.method.parse().unwrap(), &url);
        let body = case.body.map(|b| fill(b, &vars));
        if let Some(body) = &body {
            request = request.header("Content-Type", "application/json").body(body.clone());
        }
        let response = request.send().await.unwrap();
        let label = format!(
            "{} {} {} {} (after: {after})",
            case.section,
            case.method,
            case.path,
            body.as_deref().unwrap_or("")
        );
        assert_eq!(response.status(), 200, "{label}: errors are HTTP 200 too");
        let answer: Value = response.json().await.unwrap_or_else(|e| panic!("{label}: not JSON: {e}"));
        let errcode = answer.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        assert_eq!(errcode, case.errcode, "{label}: {answer}");
        if errcode != 0 {
            let errmsg = answer["errmsg"].as_str().unwrap_or_default();
            assert!(errmsg.contains("rid: "), "{label}: errmsg carries a rid: {answer}");
        }
        for key in case.keys {
            assert!(answer.get(key).is_some(), "{label}: no `{key}` in {answer}");
        }
        if let Some((var, path)) = case.keep {
            let value = path.split('.').fold(&answer, |v, k| &v[k]);
            let text = value.as_i64().map_or_else(|| value.as_str().unwrap_or_default().to_owned(), |n| n.to_string());
            assert!(!text.is_empty(), "{label}: no {path} in {answer}");
            vars.insert(var.into(), text);
        }
        if case.path == "/cgi-bin/token" && errcode == 0 {
            if let Some(previous) = vars.get("T").cloned() {
                vars.insert("OLD".into(), previous);
            }
            vars.insert("T".into(), answer["access_token"].as_str().unwrap().to_owned());
        }
        seen.insert(errcode);
    }
    running.handle.stop(false).await;
    seen
}

#[tokio::test]
async fn the_reference_examples_and_every_errcode_play_out_over_http() {
    let mut seen = play(MockAccountType::Service, service_steps()).await;
    seen.extend(play(MockAccountType::Subscription, subscription_steps()).await);
    seen.remove(&0);
    // Every code the mock can answer has a row: a code added to error.rs needs one here.
    let missing: Vec<i64> = mock_codes().difference(&seen).copied().collect();
    assert!(missing.is_empty(), "errcodes of error.rs no row of the table answers: {missing:?}");
}
