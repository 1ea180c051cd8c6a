//! Tags an expression names that the account does not have. The parser accepts any well-formed
//! path, and a misspelt one would silently match nobody, so the places that save or count a
//! segment ask this first and refuse with the nearest existing tag as a suggestion.
//!
//! Pure: the caller supplies the account's tag paths.

use super::Expr;

/// A tag path in an expression that names no tag of the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTag {
    pub path: String,
    /// The existing tag the operator most likely meant, if one is close enough.
    pub suggestion: Option<String>,
    /// 1-based character column of the quoted path in the text, or 1 when it is not found there
    /// as written (an escaped quote, say).
    pub position: usize,
}

impl UnknownTag {
    /// The refusal in the operator's words: `没有标签「肤质/油型」，是不是「肤质/油性」？`.
    pub fn message_zh(&self) -> String {
        match &self.suggestion {
            Some(near) => format!("没有标签「{}」，是不是「{near}」？", self.path),
            None => format!("没有标签「{}」：请检查拼写，或先在「标签」页创建它。", self.path),
        }
    }
}

/// The paths `expr` names that are not in `known`, in order of first appearance.
pub fn unknown_tags(expr: &Expr, text: &str, known: &[&str]) -> Vec<UnknownTag> {
    expr.tag_paths()
        .into_iter()
        .filter(|path| !known.contains(&path.as_str()))
        .map(|path| UnknownTag {
            path: path.as_str().to_owned(),
            suggestion: nearest(path.as_str(), known).map(str::to_owned),
            position: column_of(text, path.as_str()),
        })
        .collect()
}

/// The known path nearest to `typed`: the fewest character edits, at most two and fewer than
/// the path is long (so `"A"` does not suggest `"B"`); failing that, a tag whose last level is
/// exactly what was typed (`油性` for `肤质/油性`). Ties go to the first path in sorted order.
pub fn nearest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let length = typed.chars().count();
    let mut sorted: Vec<&'a str> = known.to_vec();
    sorted.sort_unstable();
    let best = sorted
        .iter()
        .map(|candidate| (edit_distance(typed, candidate), *candidate))
        .filter(|(distance, _)| *distance <= 2 && *distance < length)
        .min_by_key(|(distance, _)| *distance);
    if let Some((_, path)) = best {
        return Some(path);
    }
    sorted.into_iter().find(|candidate| candidate.rsplit('/').next() == Some(typed))
}

/// Levenshtein distance over characters (not bytes: one Chinese character is one edit),
/// ignoring case (`vip` is `VIP` mistyped, not three edits away).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitute.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

fn column_of(text: &str, path: &str) -> usize {
    let quoted = format!("\"{path}\"");
    text.find(&quoted).map_or(1, |byte| text[..byte].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::expr::parse;

    #[test]
    fn a_misspelt_tag_is_named_with_the_nearest_existing_one() {
        let known = ["肤质/油性", "肤质/干性", "状态/已购"];
        let text = r#"orders(30d) >= 1 AND "肤质/油型" AND NOT "状态/已购""#;
        let unknown = unknown_tags(&parse(text).expect("parses"), text, &known);
        assert_eq!(
            unknown,
            vec![UnknownTag {
                path: "肤质/油型".to_owned(), suggestion: Some("肤质/油性".to_owned()), position: 22
            }]
        );
        assert_eq!(unknown[0].message_zh(), "没有标签「肤质/油型」，是不是「肤质/油性」？");
    }

    #[test]
    fn far_or_short_paths_suggest_nothing_but_a_bare_leaf_finds_its_parent() {
        assert_eq!(nearest("A", &["B"]), None);
        assert_eq!(nearest("地区/广州/天河", &["肤质/油性"]), None);
        assert_eq!(nearest("油性", &["肤质/干性", "肤质/油性"]), Some("肤质/油性"));
        assert_eq!(nearest("消费/vip", &["消费/VIP"]), Some("消费/VIP"));
        let text = r#""X""#;
        let unknown = unknown_tags(&parse(text).expect("parses"), text, &["A"]);
        assert_eq!(unknown[0].message_zh(), "没有标签「X」：请检查拼写，或先在「标签」页创建它。");
    }

    #[test]
    fn known_tags_and_predicates_pass() {
        let text = r#""A" OR clicked("K", 7d) OR spent(all) >= 5"#;
        assert!(unknown_tags(&parse(text).expect("parses"), text, &["A"]).is_empty());
    }
}
