//! WeChat's error codes in an operator's words: what happened and what to do, one table for
//! every page that shows a WeChat failure (campaign calls, previews, sync, tag mirroring).
//! Codes come from wechat-api.md; an unknown one still reads as a sentence with WeChat's own
//! `errmsg` and where to look.
//!
//! Stored failures were written as the client's English `Display` ("WeChat answered errcode N:
//! …"); [`humanize`] rewrites those when a page shows them, so rows written before this table
//! read in Chinese too, and the stored text (which the quota resumption matches on) stays as is.

use super::api::WeChatError;

/// (errcode, what happened, what to do).
const TABLE: &[(i64, &str, &str)] = &[
    (-1, "微信系统繁忙", "稍后重试；tagcast 会自动重试，反复出现请到微信公众平台查看公告"),
    (
        40001,
        "AppSecret 错误，或 access_token 无效、不是最新的",
        "核对「公众号」页的 AppSecret；若其他系统也在用同一公众号获取 access_token，会让本系统的失效，请只让一个系统获取",
    ),
    (40002, "grant_type 不合法", "这是调用方式的问题，请联系技术人员"),
    (40003, "openid 无效：不是本公众号的粉丝，或属于其他公众号", "确认粉丝仍关注本公众号，并核对 AppID 设置"),
    (40004, "媒体文件类型不合法", "换成微信支持的格式（图片 jpg/png，语音 mp3/amr，视频 mp4）后重新上传"),
    (40005, "文件类型不合法", "换成微信支持的文件格式后重新上传"),
    (40006, "文件大小不合法", "压缩文件后重新上传"),
    (40007, "media_id 无效：素材或草稿已不存在", "在微信公众平台确认素材或草稿还在，然后重新选择"),
    (40008, "消息类型不合法", "改用文字、图文、图片、语音或视频消息"),
    (40009, "图片文件大小不合法", "图片需小于 1 MB（群发图文内图片）或 10 MB（素材），压缩后重新上传"),
    (40010, "语音文件大小不合法", "语音需小于 2 MB，压缩后重新上传"),
    (40011, "视频文件大小不合法", "视频需小于 10 MB，压缩后重新上传"),
    (40013, "AppID 无效", "核对「公众号」页的 AppID 是否与微信公众平台「设置与开发 → 基本配置」一致"),
    (40014, "access_token 不合法", "tagcast 会自动刷新；反复出现请核对 AppSecret"),
    (40016, "菜单按钮个数不合法", "一级菜单应为 1–3 个"),
    (40017, "菜单按钮类型不合法", "检查菜单的类型（点击、链接等）"),
    (40018, "菜单名称太长", "一级菜单名称最多 4 个汉字（16 字节）"),
    (40019, "菜单 key 太长", "菜单 key 最多 128 字节"),
    (40020, "菜单链接太长", "链接最多 1024 字节"),
    (40023, "子菜单个数不合法", "每个一级菜单下最多 5 个子菜单"),
    (40024, "子菜单类型不合法", "检查子菜单的类型"),
    (40025, "子菜单名称太长", "子菜单名称最多 8 个汉字（60 字节以内）"),
    (40026, "子菜单 key 太长", "子菜单 key 最多 128 字节"),
    (40027, "子菜单链接太长", "链接最多 1024 字节"),
    (40032, "openid 列表长度不合法", "每次打标签或取消标签 1–50 位粉丝；tagcast 会分批，反复出现请联系技术人员"),
    (40033, "字符编码不合法", "内容里不要使用 \\uxxxx 形式的转义，直接写中文"),
    (40035, "参数不合法", "检查填写的内容（如 media_id、标签、时间）是否正确"),
    (40037, "模板 ID 不合法", "在微信公众平台「模板消息」中核对模板 ID"),
    (40054, "菜单链接的域名不合法", "链接需使用已在公众号登记的域名"),
    (40055, "子菜单链接的域名不合法", "链接需使用已在公众号登记的域名"),
    (40125, "AppSecret 无效", "在微信公众平台重置 AppSecret，并在「公众号」页更新"),
    (40130, "群发的 openid 列表人数不合法", "按 openid 群发至少 2 人、最多 10,000 人"),
    (40163, "授权码（code）已被使用", "请重新发起授权"),
    (
        40164,
        "调用接口的服务器 IP 不在白名单中",
        "在微信公众平台「设置与开发 → 基本配置 → IP 白名单」加入本服务器的出口 IP",
    ),
    (40243, "AppSecret 已被冻结", "在微信公众平台解冻或重置 AppSecret，并在「公众号」页更新"),
    (41001, "缺少 access_token", "tagcast 会自动获取；反复出现请核对 AppID 和 AppSecret"),
    (41002, "缺少 AppID", "在「公众号」页填写 AppID"),
    (41004, "缺少 AppSecret", "在「公众号」页填写 AppSecret"),
    (42001, "access_token 已过期", "tagcast 会自动刷新并重试，无需处理"),
    (43004, "该用户没有关注公众号", "对方取消关注后无法再收到消息，无需处理"),
    (44002, "请求内容为空", "请联系技术人员"),
    (44004, "文字内容为空", "填写消息内容后再发送"),
    (45002, "消息内容太长", "文字消息最多 2048 字节（约 680 个汉字），请删减"),
    (45003, "标题太长", "缩短标题后重试"),
    (45004, "描述太长", "缩短描述后重试"),
    (45008, "图文消息的文章太多", "一条图文最多 8 篇文章"),
    (45009, "该接口今天的调用次数已用完", "等到北京时间零点自动恢复；急需时可在数据看板清零接口额度（每月 10 次）"),
    (45011, "接口调用太频繁", "稍等一分钟再试；tagcast 会自动放慢"),
    (45015, "超出客服消息的回复时限（粉丝 48 小时内没有互动），或粉丝已取消关注", "等粉丝再次发消息或点击菜单后再回复"),
    (45028, "没有群发配额了", "订阅号每天只能群发 1 次；请改天再发"),
    (45033, "接口并发调用太多", "稍后重试"),
    (45047, "客服消息超过了下行条数限制", "等粉丝再次互动后再发"),
    (45056, "微信标签已达上限（每个公众号 100 个）", "删除不用的微信标签，或创建仅本地使用的标签"),
    (45057, "该标签的粉丝超过 10 万，不能删除", "先分批取消这些粉丝的标签，降到 10 万以下再删除"),
    (45058, "不能修改或删除微信的系统默认标签（0、1、2）", "改用自己创建的标签"),
    (45059, "该粉丝的标签已达上限（每人 20 个）", "先移除该粉丝不再需要的标签"),
    (45065, "同一群发在 24 小时内已经发过", "不会重复发送，tagcast 按已发送处理，无需处理"),
    (45066, "同一群发 1 分钟内重复提交", "tagcast 会稍后自动确认结果，无需重发"),
    (45067, "群发标识（clientmsgid）太长", "请联系技术人员"),
    (45083, "群发速度设置不合法", "速度应为 0–4"),
    (45084, "没有设置群发速度", "先设置群发速度"),
    (45103, "微信已停用这个接口", "图文请改用草稿箱：在微信公众平台写好草稿后在本系统选择"),
    (45157, "标签名不合法或与已有标签重名", "换一个名称"),
    (45158, "标签名太长", "微信标签名最多 30 字节（约 10 个汉字），请缩短"),
    (45159, "标签 ID 不合法：微信上已没有这个标签", "运行同步（tagcast sync）重新对齐标签后再试"),
    (46002, "菜单不存在", "先创建菜单"),
    (46004, "用户不存在", "该粉丝可能已注销，无需处理"),
    (47001, "请求格式错误，微信无法解析", "请联系技术人员"),
    (47003, "参数值不合法", "检查模板消息的数据字段"),
    (48001, "公众号没有这个接口的权限", "群发等接口需要已认证的公众号；请在微信公众平台「接口权限」中查看"),
    (48002, "粉丝设置了拒收公众号消息", "无需处理"),
    (48004, "接口被封禁", "查看微信返回的说明，并到微信公众平台处理违规通知"),
    (48006, "本月清零接口额度的次数已用完（每月 10 次）", "等下个月，或等到北京时间零点额度自动恢复"),
    (48008, "公众号没有发送这种消息类型的权限", "改用其他消息类型，或在微信公众平台确认权限"),
    (49003, "openid 不属于这个公众号", "核对粉丝来自哪个公众号，以及「公众号」页的 AppID"),
    (50002, "该用户受限（被封禁）", "无需处理"),
    (
        61004,
        "调用接口的服务器 IP 不在白名单中",
        "在微信公众平台「设置与开发 → 基本配置 → IP 白名单」加入本服务器的出口 IP",
    ),
    (61500, "日期格式或范围不合法", "数据统计每次最多查询几天，请缩小日期范围"),
    (61501, "日期范围不合法", "数据统计每次最多查询几天，请缩小日期范围"),
    (76021, "接口路径不合法", "请联系技术人员"),
    (76022, "access_token 与公众号不匹配", "核对 AppID 与 AppSecret 是否属于同一个公众号"),
    (89501, "本服务器 IP 调用接口正在等待管理员确认", "请公众号管理员在微信中确认"),
    (89503, "本服务器 IP 调用接口需要管理员确认", "请公众号管理员在微信中确认后再试"),
    (89506, "管理员拒绝了本服务器 IP 的调用", "请与管理员确认后，在 IP 白名单中加入本服务器 IP"),
    (89507, "管理员 1 小时内拒绝过本服务器 IP 的调用", "1 小时后再试，并请管理员确认"),
    // WXBizMsgCrypt's own codes: never returned by the API, but the callback logs them.
    (-40001, "消息签名校验失败", "核对「公众号」页的 Token 与微信公众平台的服务器配置是否一致"),
    (-40002, "消息 XML 解析失败", "请联系技术人员"),
    (-40003, "计算签名失败", "请联系技术人员"),
    (-40004, "EncodingAESKey 不合法", "核对 EncodingAESKey（43 个字符）是否与微信公众平台一致"),
    (-40005, "消息中的 AppID 与本公众号不符", "核对「公众号」页的 AppID"),
    (-40006, "消息加密失败", "核对 EncodingAESKey"),
    (-40007, "消息解密失败", "核对 EncodingAESKey 是否与微信公众平台一致"),
    (-40008, "解密后的消息长度不合法", "核对 EncodingAESKey"),
    (-40009, "Base64 编码失败", "请联系技术人员"),
    (-40010, "Base64 解码失败", "核对 EncodingAESKey"),
    (-40011, "生成回复 XML 失败", "请联系技术人员"),
];

/// What `code` means and what to do, if the table knows it.
#[must_use]
pub fn lookup(code: i64) -> Option<(&'static str, &'static str)> {
    TABLE.iter().find(|(c, ..)| *c == code).map(|(_, what, todo)| (*what, *todo))
}

/// One sentence for an operator: "微信返回错误码 N：…。请…。", WeChat's `errmsg` kept for an
/// unknown code (without its request id, which helps nobody reading the page).
#[must_use]
pub fn explain(code: i64, errmsg: &str) -> String {
    match lookup(code) {
        Some((what, todo)) => format!("微信返回错误码 {code}：{what}。{todo}。"),
        None => {
            let errmsg = errmsg.split(" rid:").next().unwrap_or(errmsg).trim();
            format!(
                "微信返回错误码 {code}：{errmsg}。请在微信开放文档的「全局返回码说明」中查看这个错误码，或联系技术人员。"
            )
        }
    }
}

/// Any failure of a WeChat call, in Chinese.
#[must_use]
pub fn describe(error: &WeChatError) -> String {
    match error {
        WeChatError::Api { code, message, .. } => explain(code.code(), message),
        WeChatError::RetriesExhausted { attempts, last } => format!("重试 {attempts} 次后仍失败：{}", describe(last)),
        WeChatError::Transport(_) => {
            "连接微信服务器失败（网络不通或超时）。请稍后重试，反复出现请检查服务器网络。".to_owned()
        }
        WeChatError::Http(status) => format!("微信服务器返回 HTTP {status}，暂时不可用。请稍后重试。"),
        WeChatError::Decode(_) => "无法读取微信的回答。请稍后重试，反复出现请联系技术人员。".to_owned(),
        WeChatError::TokenStore(_) => "读取 access_token 的共享存储失败。请检查数据库连接后重试。".to_owned(),
        WeChatError::QuotaExhausted { path, until } => format!(
            "微信接口 {path} 今天的调用次数已用完，{} 起恢复（北京时间零点）；急需时可在数据看板清零接口额度。",
            until
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset"))
                .format("%Y-%m-%d %H:%M")
        ),
    }
}

/// Rewrites every "errcode N: errmsg" a stored failure carries (the client's English
/// `Display`) into [`explain`]'s sentence, and the client's other English phrases into
/// Chinese; text without them is returned as is.
#[must_use]
pub fn humanize(stored: &str) -> String {
    const MARK: &str = "WeChat answered errcode ";
    let mut out = String::with_capacity(stored.len());
    let mut rest = stored;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let digits = after.find(|c: char| !(c.is_ascii_digit() || c == '-')).unwrap_or(after.len());
        let Ok(code) = after[..digits].parse::<i64>() else {
            out.push_str(MARK);
            rest = after;
            continue;
        };
        // The errmsg runs to the end of the line or the next joined failure.
        let body = after[digits..].trim_start_matches(':').trim_start();
        let end = body.find(['；', '\n']).unwrap_or(body.len());
        out.push_str(&explain(code, &body[..end]));
        rest = &body[end..];
    }
    out.push_str(rest);
    out.replace("request to WeChat failed", "连接微信服务器失败（网络不通或超时），请稍后重试")
        .replace("cannot read WeChat's answer", "无法读取微信的回答，请稍后重试")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every errcode wechat-api.md names (WeCom's and doc-page numbers aside).
    const DOCUMENTED: &[i64] = &[
        -1, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008, 40009, 40010, 40011, 40013, 40014, 40016, 40017,
        40018, 40019, 40020, 40023, 40024, 40025, 40026, 40027, 40032, 40033, 40035, 40037, 40054, 40055, 40125, 40130,
        40164, 40243, 41001, 41002, 41004, 42001, 43004, 44002, 45002, 45003, 45004, 45008, 45009, 45011, 45015, 45028,
        45033, 45047, 45056, 45057, 45058, 45059, 45065, 45066, 45067, 45083, 45084, 45103, 45157, 45158, 45159, 46002,
        46004, 47001, 47003, 48001, 48002, 48004, 48006, 48008, 49003, 50002, 61004, 76021, 76022, 89501, 89503, 89506,
        89507, -40001, -40002, -40003, -40004, -40005, -40006, -40007, -40008, -40009, -40010, -40011,
    ];

    #[test]
    fn every_documented_code_has_a_chinese_explanation() {
        for code in DOCUMENTED {
            assert!(lookup(*code).is_some(), "{code} is not in the table");
        }
        let mut codes: Vec<i64> = TABLE.iter().map(|t| t.0).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len(), "a code is in the table twice");
    }

    #[test]
    fn an_unknown_code_keeps_wechats_message_without_the_request_id() {
        assert_eq!(
            explain(99999, "some new error rid: 6655-aa"),
            "微信返回错误码 99999：some new error。请在微信开放文档的「全局返回码说明」中查看这个错误码，或联系技术人员。"
        );
    }

    #[test]
    fn stored_english_failures_read_in_chinese() {
        let stored = "WeChat answered errcode 45028: has no masssend quota rid: 1；WeChat answered errcode 40007: invalid media_id";
        let text = humanize(stored);
        assert!(text.starts_with("微信返回错误码 45028：没有群发配额了。"), "{text}");
        assert!(text.contains("；微信返回错误码 40007：media_id 无效"), "{text}");
        assert!(!text.contains("WeChat answered"));
        assert_eq!(humanize("内容审核未通过"), "内容审核未通过");
    }
}
