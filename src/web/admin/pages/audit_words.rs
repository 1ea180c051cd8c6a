//! The audit log in the operator's words: every action the code records as a Chinese verb, every
//! object kind as a Chinese noun with a link to its page, and details as sentences. A key this
//! file does not know still reads as `键：值`, never as JSON, so a new audit write shows up
//! legibly before its wording is added here.

use serde_json::{Map, Value};

use crate::domain::admin::AdminRole;
use crate::domain::approval::Change;
use crate::web::admin::campaigns::{change_text, status_label};

/// Every action string written to `audit_log` (the admin pages' `audit` calls and the app's
/// `store::audit::record` calls).
pub const ACTIONS: &[(&str, &str)] = &[
    ("create", "创建"),
    ("save", "保存"),
    ("update", "修改"),
    ("delete", "删除"),
    ("rename", "改名"),
    ("sensitivity", "修改敏感标记"),
    ("erase", "清除个人数据"),
    ("import", "导入"),
    ("export", "导出"),
    ("disable", "停用"),
    ("enable", "启用"),
    ("set_roles", "修改角色"),
    ("clear_quota", "清零接口额度"),
    ("send", "提交发送"),
    ("cancel", "取消"),
    ("preview", "发送预览"),
    ("approve", "审批通过"),
    ("reject", "驳回"),
    ("approval_lapsed", "审批失效"),
    ("mark_tester", "设为测试粉丝"),
    ("unmark_tester", "移出测试粉丝"),
    ("reset_simulator", "重置模拟粉丝"),
    ("retry", "重新尝试"),
    ("train", "重新训练"),
];

/// Every object kind written to `audit_log`.
pub const KINDS: &[(&str, &str)] = &[
    ("tag", "标签"),
    ("rule", "规则"),
    ("quiz", "测验"),
    ("segment", "人群"),
    ("campaign", "群发"),
    ("follower", "粉丝"),
    ("playbook", "配置文件"),
    ("admin", "用户"),
    ("account", "公众号"),
    ("wechat_quota", "微信接口额度"),
    ("wechat_sync", "同步到微信的标签变更"),
    ("prediction", "预测模型"),
];

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The verb for an action; an action this table misses is shown as written.
pub fn action_label(action: &str, detail: &Value) -> String {
    if action == "send" && detail.get("refused").is_some() {
        return "提交发送（被拒绝）".to_owned();
    }
    lookup(ACTIONS, action).map_or_else(|| action.to_owned(), str::to_owned)
}

pub fn kind_label(kind: &str) -> String {
    lookup(KINDS, kind).map_or_else(|| kind.to_owned(), str::to_owned)
}

/// How the log names the object: the kind and its name (`标签「肤质/油性」`, `群发 #3「周末」`).
pub fn object_name(kind: &str, id: &str, detail: &Value) -> String {
    let text = |key: &str| detail.get(key).and_then(Value::as_str).map(str::to_owned);
    let numbered = id.chars().all(|c| c.is_ascii_digit());
    match kind {
        // Created and deleted tags are recorded by path, renamed and re-marked ones by id.
        "tag" if numbered => match text("to").or_else(|| text("path")) {
            Some(path) => format!("「{path}」"),
            None => format!("#{id}"),
        },
        "campaign" | "segment" | "rule" => match text("name") {
            Some(name) => format!("#{id}「{name}」"),
            None => format!("#{id}"),
        },
        "wechat_quota" => format!("（AppID {id}）"),
        // The whole account's refused changes, not one object.
        "wechat_sync" => String::new(),
        _ => format!("「{id}」"),
    }
}

/// Where the object's page is; `None` once it is gone (deleted, erased) or it has no page.
pub fn object_link(action: &str, kind: &str, id: &str) -> Option<String> {
    if matches!(action, "delete" | "erase") {
        return None;
    }
    let escaped = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    Some(match kind {
        "tag" => "/admin/tags".to_owned(),
        "rule" => "/admin/rules".to_owned(),
        "quiz" => format!("/admin/quizzes?edit={}", escaped(id)),
        "segment" => "/admin/segments".to_owned(),
        "campaign" => format!("/admin/campaigns/{}", escaped(id)),
        "follower" => format!("/admin/followers/{}", escaped(id)),
        "playbook" => "/admin/playbook".to_owned(),
        "admin" => "/admin/users".to_owned(),
        "account" => format!("/admin/accounts/{}", escaped(id)),
        "wechat_quota" => "/admin".to_owned(),
        "wechat_sync" => "/admin/tags#wechat-sync".to_owned(),
        "prediction" => "/admin/predictions".to_owned(),
        _ => return None,
    })
}

/// The detail as sentences. Keys read as part of a sentence are consumed; the rest follow as
/// `名称：值`.
pub fn detail_lines(action: &str, kind: &str, detail: &Value) -> Vec<String> {
    let Some(map) = detail.as_object() else {
        return if detail.is_null() { Vec::new() } else { vec![value_text("", detail)] };
    };
    let mut map = map.clone();
    let mut lines = Vec::new();
    match (kind, action) {
        ("tag", "rename") => lines.extend(renamed(&mut map)),
        ("tag", "sensitivity") => {
            let to = map.remove("to").and_then(|v| v.as_bool());
            map.remove("from");
            map.remove("path");
            match to {
                Some(true) => lines.push("标为敏感标签：受众包含它的群发需要审批".to_owned()),
                Some(false) => lines.push("取消敏感标记".to_owned()),
                None => {}
            }
        }
        ("tag", "update") if map.contains_key("when") => {
            map.remove("path");
            let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
            let (from, to) = (text(map.remove("when_from")), text(map.remove("when")));
            lines.push(match from {
                Some(from) => format!("动态条件由 {from} 改为 {}", to.unwrap_or_default()),
                None => format!("动态条件改为 {}", to.unwrap_or_default()),
            });
        }
        ("rule", "create") => lines.extend(rule_sentence(&mut map)),
        ("campaign", "send") if map.contains_key("refused") => {
            let refused = map.remove("refused").unwrap_or_default();
            if refused.as_str() == Some("needs_approval") {
                lines.push("受众含敏感标签，尚未审批：没有发送，已进入审批队列".to_owned());
            } else {
                let approver = map.remove("approved_by").map(|v| value_text("", &v)).unwrap_or_default();
                let approver = if approver.is_empty() { String::new() } else { format!("（{approver}）") };
                lines.push(format!("已审批的群发只能由创建人或审批人{approver}发送：这次没有发送"));
            }
        }
        ("campaign", "approval_lapsed") => {
            map.remove("said");
            if let Some(changes) = map.remove("changes") {
                let changes: Vec<Change> = serde_json::from_value(changes).unwrap_or_default();
                if !changes.is_empty() {
                    let said: Vec<String> = changes.iter().map(change_text).collect();
                    lines.push(format!("失效原因：{}", said.join("；")));
                }
            }
        }
        ("wechat_sync", "retry") => {
            if let Some(n) = map.remove("changes").and_then(|v| v.as_i64()) {
                lines.push(format!("微信拒绝过的 {n} 条标签变更重新开始尝试"));
            }
        }
        ("playbook", "import") => {
            if let Some(summary) = map.remove("summary").and_then(|v| v.as_str().map(str::to_owned)) {
                lines.push(playbook_summary(&summary));
            }
        }
        _ => {}
    }
    // An approval's fingerprint identifies what was approved; it means nothing to a reader.
    map.remove("fingerprint");
    lines.extend(
        map.iter().filter(|(_, v)| !is_empty(v)).map(|(k, v)| format!("{}：{}", key_label(k), value_text(k, v))),
    );
    lines
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn renamed(map: &mut Map<String, Value>) -> Vec<String> {
    let text = |v: Option<Value>| v.map(|v| value_text("", &v)).unwrap_or_default();
    let (from, to) = (text(map.remove("from")), text(map.remove("to")));
    let mut lines = vec![format!("「{from}」改名为「{to}」")];
    let mut followed = Vec::new();
    for (key, what) in [
        ("rules", "条规则"),
        ("quizzes", "个测验"),
        ("segments", "个人群"),
        ("dynamic_tags", "个动态标签"),
        ("campaigns", "个群发"),
    ] {
        if let Some(n) = map.remove(key).and_then(|v| v.as_i64()).filter(|n| *n > 0) {
            followed.push(format!("{n} {what}"));
        }
    }
    if !followed.is_empty() {
        lines.push(format!("引用它的 {} 已同步更新", followed.join("、")));
    }
    if map.remove("wechat").and_then(|v| v.as_bool()) == Some(true) {
        lines.push("微信上的标签同步改名".to_owned());
    }
    lines
}

fn rule_sentence(map: &mut Map<String, Value>) -> Vec<String> {
    let text = |v: Option<Value>| v.map(|v| value_text("", &v)).unwrap_or_default();
    let on = map.remove("on").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let key = text(map.remove("key"));
    let trigger = crate::domain::rule::Trigger::parse(&on).map_or(on.clone(), |t| t.label_zh().to_owned());
    let mut does = Vec::new();
    for (field, verb) in [("add", "打上"), ("remove", "移除"), ("reply", "回复"), ("start_quiz", "开始测验")]
    {
        if let Some(value) = map.remove(field).filter(|v| !is_empty(v)) {
            does.push(format!("{verb}「{}」", value_text(field, &value)));
        }
    }
    vec![format!("{trigger}「{key}」时：{}", if does.is_empty() { "不做任何事".to_owned() } else { does.join("，") })]
}

/// `Applied::summary` is English (the CLI prints it); the log reads it in Chinese.
fn playbook_summary(summary: &str) -> String {
    if !summary.is_ascii() {
        return summary.to_owned();
    }
    let numbers: Vec<&str> = summary.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).collect();
    match (summary.starts_with("no change"), numbers.as_slice()) {
        (true, [n]) => format!("没有变化：{n} 项都已与配置文件一致"),
        (false, [created, updated, unchanged]) => format!("新建 {created} 项，更新 {updated} 项，{unchanged} 项不变"),
        _ => format!("结果：{summary}"),
    }
}

fn key_label(key: &str) -> String {
    let label = match key {
        "name" => "名称",
        "display_name" => "显示名称",
        "path" => "标签",
        "sensitive" => "敏感标签",
        "expr" => "条件",
        "when" => "动态条件",
        "audience" => "受众",
        "variants" => "对比方案数",
        "status" => "状态",
        "was" => "原状态",
        "recipients" => "收件人数",
        "will_be_filtered" => "预计被微信过滤",
        "send_at" => "定时发送",
        "calls_skipped" => "跳过的微信调用",
        "openids" => "预览给",
        "sensitive_tags" => "涉及敏感标签",
        "reason" => "原因",
        "approved_by" => "审批人",
        "role" => "角色",
        "roles" => "各公众号的角色",
        "kind" => "类型",
        "appid" => "AppID",
        "message_mode" => "消息加解密方式",
        "api_base" => "接口地址",
        "replaced_secrets" => "更换的密钥",
        "stops_ended" => "结束的暂停",
        "waits_resumed" => "恢复的等待",
        "used_this_month" => "本月已清零次数",
        "questions" => "题数",
        "results" => "结果数",
        "sessions_ended" => "退出测验的粉丝",
        "summary" => "结果",
        "rows" => "行数",
        "segment" => "人群",
        "tag" => "标签",
        "count" => "数量",
        "note" => "备注",
        "followers" => "粉丝数",
        "format" => "格式",
        other => return other.to_owned(),
    };
    label.to_owned()
}

fn value_text(key: &str, value: &Value) -> String {
    match (key, value) {
        ("status" | "was", Value::String(s)) => status_label(s).to_owned(),
        ("role", Value::String(s)) => AdminRole::parse(s).map_or_else(|| s.clone(), |r| r.label_zh().to_owned()),
        ("kind", Value::String(s)) => {
            s.parse::<crate::domain::account::AccountType>().map_or_else(|_| s.clone(), |k| k.label().to_owned())
        }
        ("message_mode", Value::String(s)) => match s.as_str() {
            "plain" => "明文模式".to_owned(),
            "compatible" => "兼容模式".to_owned(),
            "safe" => "安全模式".to_owned(),
            other => other.to_owned(),
        },
        ("audience", Value::Object(o)) => {
            if let Some(path) = o.get("tag").and_then(Value::as_str) {
                format!("标签「{path}」")
            } else if let Some(id) = o.get("segment") {
                format!("人群 #{}", value_text("", id))
            } else if o.contains_key("all") {
                "全部粉丝".to_owned()
            } else {
                pairs(o)
            }
        }
        ("roles", Value::Object(o)) => o
            .iter()
            .map(|(account, role)| format!("公众号 #{account}：{}", value_text("role", role)))
            .collect::<Vec<_>>()
            .join("，"),
        ("replaced_secrets", Value::Object(o)) => {
            let replaced: Vec<&str> = o
                .iter()
                .filter(|(_, v)| v.as_bool() == Some(true))
                .map(|(k, _)| match k.as_str() {
                    "app_secret" => "AppSecret",
                    "token" => "Token",
                    "encoding_aes_key" => "EncodingAESKey",
                    other => other,
                })
                .collect();
            if replaced.is_empty() { "无".to_owned() } else { replaced.join("、") }
        }
        ("send_at", Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map_or_else(|_| s.clone(), |at| super::show_time(at.with_timezone(&chrono::Utc))),
        (_, Value::String(s)) => s.clone(),
        (_, Value::Bool(true)) => "是".to_owned(),
        (_, Value::Bool(false)) => "否".to_owned(),
        (_, Value::Number(n)) => n.to_string(),
        (_, Value::Null) => "无".to_owned(),
        (_, Value::Array(items)) => items.iter().map(|v| value_text("", v)).collect::<Vec<_>>().join("、"),
        (_, Value::Object(o)) => pairs(o),
    }
}

fn pairs(map: &Map<String, Value>) -> String {
    map.iter().map(|(k, v)| format!("{}：{}", key_label(k), value_text(k, v))).collect::<Vec<_>>().join("，")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_written_action_and_kind_has_chinese_words() {
        for (action, label) in ACTIONS {
            assert_eq!(action_label(action, &json!({})), *label);
        }
        for (kind, label) in KINDS {
            assert_eq!(kind_label(kind), *label);
        }
    }

    #[test]
    fn details_read_as_sentences_and_unknown_keys_as_pairs_never_json() {
        let lines = detail_lines(
            "rename",
            "tag",
            &json!({"from": "a/b", "to": "a/c", "rules": 2, "quizzes": 0, "segments": 0, "dynamic_tags": 0, "campaigns": 1, "wechat": true}),
        );
        assert_eq!(
            lines,
            vec!["「a/b」改名为「a/c」", "引用它的 2 条规则、1 个群发 已同步更新", "微信上的标签同步改名"]
        );
        let lines = detail_lines(
            "create",
            "rule",
            &json!({"on": "click", "key": "SKIN", "add": ["肤质/油性"], "remove": [], "reply": null, "start_quiz": "skin"}),
        );
        assert_eq!(lines, vec!["点击菜单「SKIN」时：打上「肤质/油性」，开始测验「skin」"]);
        let lines = detail_lines("import", "playbook", &json!({"summary": "3 created, 1 updated, 6 unchanged"}));
        assert_eq!(lines, vec!["新建 3 项，更新 1 项，6 项不变"]);
        let lines = detail_lines("export", "segment", &json!({"rows": 12, "new_key": {"a": [1, 2]}}));
        assert_eq!(lines, vec!["new_key：a：1、2", "行数：12"]);
        let lines =
            detail_lines("approve", "campaign", &json!({"sensitive_tags": ["敏感/价格"], "fingerprint": "ab12"}));
        assert_eq!(lines, vec!["涉及敏感标签：敏感/价格"]);
        for line in detail_lines(
            "update",
            "account",
            &json!({"kind": "service", "message_mode": "safe", "replaced_secrets": {"token": true, "app_secret": false}}),
        ) {
            assert!(!line.contains('{') && !line.contains('"'), "{line}");
        }
    }
}
