//! Tag paths: 1–3 levels (大类/子类/细项) split by `/`, and the naming advice of the seed.

use std::fmt;

use serde::{Deserialize, Serialize};

/// WeChat refuses tag names longer than this many UTF-8 bytes (45158).
pub const WECHAT_NAME_MAX_BYTES: usize = 30;
/// The seed's advice: keep a tag name within 8 Chinese characters.
pub const ADVISED_MAX_CHARS: usize = 8;
/// At most 大类/子类/细项.
pub const MAX_LEVELS: usize = 3;

/// A validated tag path such as `肤质/油性`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "肤质/油性")]
pub struct TagPath(String);

/// Why a path is not a tag path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagPathError {
    #[error("标签路径是空的：请填写，如「肤质/油性」")]
    Empty,
    #[error("「{path}」的第 {level} 级是空的：两个 / 之间要有名称")]
    EmptyLevel { path: String, level: usize },
    #[error("「{path}」有 {levels} 级，最多 3 级（大类/子类/细项）")]
    TooDeep { path: String, levels: usize },
    #[error("「{path}」有 {bytes} 字节，微信标签名最多 30 字节（约 10 个汉字），请缩短")]
    TooLongForWeChat { path: String, bytes: usize },
    #[error("「{path}」里有看不见的控制字符或排版字符（如零宽空格、文字方向符），请删去")]
    ControlCharacter { path: String },
}

/// Characters that draw nothing but change how text around them reads: zero-width ones and the
/// bidirectional overrides, with which a tag could pass for another in the approval queue.
pub fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

impl TagPath {
    /// Trims each level and checks the rules.
    ///
    /// # Errors
    /// See [`TagPathError`].
    pub fn parse(raw: &str) -> Result<Self, TagPathError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(TagPathError::Empty);
        }
        let levels: Vec<&str> = raw.split('/').map(str::trim).collect();
        if let Some(level) = levels.iter().position(|l| l.is_empty()) {
            return Err(TagPathError::EmptyLevel { path: raw.to_owned(), level: level + 1 });
        }
        if levels.len() > MAX_LEVELS {
            return Err(TagPathError::TooDeep { path: raw.to_owned(), levels: levels.len() });
        }
        let path = levels.join("/");
        if path.chars().any(|c| c.is_control() || is_invisible_format(c)) {
            return Err(TagPathError::ControlCharacter { path });
        }
        // The whole path is the WeChat tag name, so the whole path must fit.
        if path.len() > WECHAT_NAME_MAX_BYTES {
            let bytes = path.len();
            return Err(TagPathError::TooLongForWeChat { path, bytes });
        }
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The levels, top first.
    pub fn levels(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last level: what the tag itself is called.
    pub fn leaf(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The seed's naming advice, as warnings an operator sees (never errors).
    pub fn naming_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let leaf_chars = self.leaf().chars().count();
        if leaf_chars > ADVISED_MAX_CHARS {
            warnings.push(format!(
                "「{}」有 {leaf_chars} 个字，建议标签名不超过 {ADVISED_MAX_CHARS} 个汉字（短词+核心特征）",
                self.leaf()
            ));
        }
        if self.levels().count() == 1 {
            warnings.push("建议使用「大类/子类/细项」分级，便于筛选和管理".to_owned());
        }
        warnings
    }
}

/// Pairs of tags whose names suggest they mean the same thing, with why: the same name under two
/// parents (`地区/广州` and `城市/广州`), or within one parent a name contained in the other
/// (`兴趣/美妆` and `兴趣/美妆护肤`). Candidates for merging; an operator decides. Indexes into
/// `paths`, each pair once, in input order.
pub fn similar_names(paths: &[&str]) -> Vec<(usize, usize, &'static str)> {
    let split = |p: &str| -> (String, String) {
        match p.rsplit_once('/') {
            Some((parent, leaf)) => (parent.to_owned(), leaf.to_owned()),
            None => (String::new(), p.to_owned()),
        }
    };
    let parts: Vec<(String, String)> = paths.iter().map(|p| split(p)).collect();
    let mut pairs = Vec::new();
    for i in 0..parts.len() {
        for j in i + 1..parts.len() {
            let ((parent_a, leaf_a), (parent_b, leaf_b)) = (&parts[i], &parts[j]);
            if leaf_a == leaf_b && parent_a != parent_b {
                pairs.push((i, j, "同名标签在不同大类下"));
            } else if parent_a == parent_b
                && leaf_a != leaf_b
                && leaf_a.chars().count().min(leaf_b.chars().count()) >= 2
                && (leaf_a.contains(leaf_b.as_str()) || leaf_b.contains(leaf_a.as_str()))
            {
                pairs.push((i, j, "同一大类下名称相近"));
            }
        }
    }
    pairs
}

impl fmt::Display for TagPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TagPath {
    type Error = TagPathError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TagPath> for String {
    fn from(path: TagPath) -> Self {
        path.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_paths_are_trimmed_per_level() {
        assert_eq!(TagPath::parse(" 肤质 / 油性 ").unwrap().as_str(), "肤质/油性");
        assert_eq!(TagPath::parse("地区/北京/朝阳区").unwrap().levels().count(), 3);
        assert_eq!(TagPath::parse("VIP").unwrap().leaf(), "VIP");
    }

    #[test]
    fn invalid_paths_say_what_is_wrong() {
        assert_eq!(TagPath::parse("  "), Err(TagPathError::Empty));
        assert!(matches!(TagPath::parse("肤质//油性"), Err(TagPathError::EmptyLevel { level: 2, .. })));
        assert!(matches!(TagPath::parse("/油性"), Err(TagPathError::EmptyLevel { level: 1, .. })));
        assert!(matches!(TagPath::parse("a/b/c/d"), Err(TagPathError::TooDeep { levels: 4, .. })));
        assert!(matches!(
            TagPath::parse("一二三四五/六七八九十一"),
            Err(TagPathError::TooLongForWeChat { bytes: 34, .. })
        ));
        assert!(matches!(TagPath::parse("a\u{7}b"), Err(TagPathError::ControlCharacter { .. })));
        assert!(matches!(TagPath::parse("\u{202E}evil"), Err(TagPathError::ControlCharacter { .. })));
        assert!(matches!(TagPath::parse("肤质/油\u{200B}性"), Err(TagPathError::ControlCharacter { .. })));
        // Exactly 30 bytes is fine.
        assert!(TagPath::parse("一二三四五/六七八九").is_ok());
    }

    #[test]
    fn naming_advice_is_a_warning_not_an_error() {
        let long = TagPath::parse("A/家电类目未支付用户").unwrap();
        assert_eq!(long.naming_warnings().len(), 1);
        assert!(TagPath::parse("肤质/油性").unwrap().naming_warnings().is_empty());
        assert_eq!(TagPath::parse("VIP").unwrap().naming_warnings().len(), 1);
    }

    #[test]
    fn similar_names_pair_the_same_leaf_and_contained_names_only() {
        let paths = ["地区/广州", "城市/广州", "兴趣/美妆", "兴趣/美妆护肤", "兴趣/健身", "肤质/油性", "A"];
        let pairs = similar_names(&paths);
        assert_eq!(pairs, vec![(0, 1, "同名标签在不同大类下"), (2, 3, "同一大类下名称相近")]);
        assert!(similar_names(&["兴趣/美", "兴趣/美妆"]).is_empty(), "one character is too little to compare");
    }
}
