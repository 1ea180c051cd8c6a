//! Parser messages (serde's, TOML's and JSON's) in an operator's words. The libraries word
//! their errors in English ("missing field `id`", "expected `=`"); the console and the playbook
//! check show a sentence in Chinese instead, keeping the names in backticks as they are code.
//! A message no pattern knows becomes a general hint: better no detail than English.

/// serde's own wording (missing/unknown field, unknown variant, invalid type or value); any
/// other message (ours, from a `Deserialize` impl) is returned unchanged.
#[must_use]
pub fn serde_message(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("缺少必填项 {rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return match rest.split_once(", expected ") {
            Some((field, allowed)) => format!("不认识的项 {field}：可用的项有 {}", allowed_list(allowed)),
            None => format!("不认识的项 {rest}"),
        };
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return match rest.split_once(", expected ") {
            Some((value, allowed)) => format!("{value} 不是可选的值：可选 {}", allowed_list(allowed)),
            None => format!("{rest} 不是可选的值"),
        };
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        return format!("{rest} 写了两次");
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return match rest.split_once(", expected ") {
                Some((found, expected)) => format!("类型不对：这里应是 {}，却是 {}", kind(expected), kind(found)),
                None => "类型不对，请对照示例检查这一项".to_owned(),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        return format!("个数不对（{}）", rest.split(',').next().unwrap_or(rest));
    }
    if message.is_ascii() && message.split_whitespace().count() >= 3 {
        return "写法不对，请对照示例检查这一项".to_owned();
    }
    message.to_owned()
}

/// A TOML syntax error's message, as a hint of what to fix.
#[must_use]
pub fn toml_syntax(message: &str) -> String {
    let m = message.trim();
    let hint = if m.contains("duplicate key") {
        "同一个键写了两次"
    } else if m.contains("expected `=`") || m.contains("key with no value") {
        "键后面缺少 = 和值，应写成 键 = 值"
    } else if m.contains("unclosed") || m.contains("unterminated") || m.contains("expected `]`") {
        "引号或方括号没有闭合"
    } else if m.contains("invalid string") || m.contains("invalid basic string") || m.contains("missing quote") {
        "字符串写法不对：文字要用英文双引号括起来，多行文字用三个双引号 \"\"\""
    } else if m.contains("invalid key") || m.contains("unquoted key") || m.contains("invalid unquoted") {
        "键的写法不对：键只能用英文字母、数字、_ 和 -，其他要用引号括起来"
    } else if m.contains("newline") || m.contains("expected newline") {
        "一行只能写一个 键 = 值"
    } else if m.contains("invalid number") || m.contains("invalid integer") || m.contains("invalid float") {
        "数字写法不对"
    } else {
        return format!(
            "TOML 语法错误：{}",
            serde_message(m).replace("写法不对，请对照示例检查这一项", "请检查这一行的引号、等号和方括号")
        );
    };
    format!("TOML 语法错误：{hint}")
}

/// A TOML document that did not parse or did not fit: where, and what to fix.
#[must_use]
pub fn toml_error(source: &str, error: &toml::de::Error) -> String {
    let line = error.span().map(|s| source[..s.start.min(source.len())].matches('\n').count() + 1);
    let what = if error.span().is_some() && !is_serde(error.message()) {
        toml_syntax(error.message())
    } else {
        serde_message(error.message())
    };
    match line {
        Some(line) => format!("TOML 无法解析，第 {line} 行：{what}。"),
        None => format!("TOML 无法解析：{what}。"),
    }
}

/// A JSON document that did not parse or did not fit: where, and what to fix.
#[must_use]
pub fn json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = error.to_string();
    let message = text.rsplit_once(" at line ").map_or(text.as_str(), |(m, _)| m);
    let what = match error.classify() {
        Category::Data => serde_message(message),
        Category::Eof => "内容没写完：括号或引号没有闭合".to_owned(),
        Category::Syntax if message.contains("trailing comma") => "最后一项后面不能有逗号".to_owned(),
        Category::Syntax if message.contains("key must be a string") => "键要用英文双引号括起来".to_owned(),
        Category::Syntax => "语法错误：请检查引号、逗号、冒号和括号是否成对、是否用了英文符号".to_owned(),
        Category::Io => "读取失败".to_owned(),
    };
    format!("JSON 无法解析，第 {} 行第 {} 列：{what}。", error.line(), error.column())
}

fn is_serde(message: &str) -> bool {
    [
        "missing field",
        "unknown field",
        "unknown variant",
        "invalid type",
        "invalid value",
        "duplicate field",
        "invalid length",
    ]
    .iter()
    .any(|p| message.trim().starts_with(p))
}

/// "one of `a`, `b`" or "`a`" as "`a`、`b`".
fn allowed_list(allowed: &str) -> String {
    let list = allowed.trim().strip_prefix("one of ").unwrap_or(allowed.trim());
    list.split(", ").collect::<Vec<_>>().join("、")
}

/// serde's name of a kind of value, in Chinese.
fn kind(name: &str) -> String {
    let name = name.trim();
    let (word, rest) = name.split_once(' ').map_or((name, ""), |(w, r)| (w, r));
    let (word, rest) = if matches!(word, "a" | "an") {
        rest.split_once(' ').map_or((rest, ""), |(w, r)| (w, r))
    } else {
        (word, rest)
    };
    let zh = match word {
        "string" | "str" | "char" => "文字（用引号括起）",
        "integer" | "i64" | "u64" | "i32" | "u32" | "u8" | "i16" | "u16" | "usize" => "整数",
        "floating" | "float" | "f64" | "f32" => "数字",
        "boolean" | "bool" => "true 或 false",
        "sequence" | "array" | "seq" => "列表 [...]",
        "map" | "table" | "struct" => "表（键 = 值）",
        "unit" | "null" | "option" => "空值",
        _ => return name.to_owned(),
    };
    // The value found, as written (`integer \`5\``), stays beside its kind.
    match rest.trim() {
        r if r.starts_with('`') => format!("{zh} {r}"),
        _ => zh.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serdes_wording_reads_in_chinese() {
        assert_eq!(serde_message("missing field `id`"), "缺少必填项 `id`");
        assert_eq!(
            serde_message("unknown field `colour`, expected one of `path`, `when`"),
            "不认识的项 `colour`：可用的项有 `path`、`when`"
        );
        assert_eq!(
            serde_message("invalid type: integer `5`, expected a string"),
            "类型不对：这里应是 文字（用引号括起），却是 整数 `5`"
        );
        assert_eq!(serde_message("「a」不是数字"), "「a」不是数字");
    }

    #[test]
    fn toml_errors_name_the_line() {
        let source = "id = \"skin\"\n[[questions]]\ntext = \n";
        let error = toml::from_str::<toml::Table>(source).expect_err("no value");
        let text = toml_error(source, &error);
        assert!(text.starts_with("TOML 无法解析，第 3 行："), "{text}");
        assert!(!text.contains("expected"), "{text}");
    }

    #[test]
    fn json_errors_name_line_and_column() {
        let error = serde_json::from_str::<serde_json::Value>("{\"a\": 1,}").expect_err("trailing comma");
        assert_eq!(json_error(&error), "JSON 无法解析，第 1 行第 9 列：最后一项后面不能有逗号。");
    }
}
