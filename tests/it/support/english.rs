//! "No English sentence reaches the page": finds runs of three or more English words in what a
//! person reads on an admin page. Code-like content is left out (`<code>`, `<pre>`,
//! `<textarea>`, `<script>`, `<style>`, `<svg>`, the `<head>`, and every attribute, so input
//! values too), and so are words joined to `_` or digits (`media_id`, `orders(30d)`), which are
//! names, not prose.

/// Elements whose content is code, an input, or not shown.
const SKIPPED: [&str; 7] = ["head", "script", "style", "code", "pre", "textarea", "svg"];

/// The visible text of `html`, tags and skipped elements removed, entities left as they are.
pub fn visible_text(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut i = 0;
    while i < html.len() {
        if html.as_bytes()[i] != b'<' {
            let next = html[i..].find('<').map_or(html.len(), |n| i + n);
            out.push_str(&html[i..next]);
            i = next;
            continue;
        }
        let skipped = SKIPPED.iter().find(|tag| {
            let open = format!("<{tag}");
            lower[i..].starts_with(&open)
                && lower[i + open.len()..].starts_with(|c: char| c == '>' || c.is_ascii_whitespace())
        });
        if let Some(tag) = skipped {
            let close = format!("</{tag}>");
            i = lower[i..].find(&close).map_or(html.len(), |n| i + n + close.len());
        } else {
            i = html[i..].find('>').map_or(html.len(), |n| i + n + 1);
        }
        // Tags separate words.
        out.push(' ');
    }
    out
}

/// Every run of three or more English words in the visible text of `html` (empty: none).
pub fn english_runs(html: &str) -> Vec<String> {
    let text = visible_text(html);
    let mut runs = Vec::new();
    // A run lives inside one stretch of ASCII: a Chinese character or punctuation ends it.
    for stretch in text.split(|c: char| !c.is_ascii()) {
        let mut words: Vec<&str> = Vec::new();
        let mut flush = |words: &mut Vec<&str>| {
            if words.len() >= 3 {
                runs.push(words.join(" "));
            }
            words.clear();
        };
        for token in stretch.split(|c: char| c.is_ascii_whitespace()) {
            let trimmed = token.trim_matches(|c: char| matches!(c, ',' | '.' | ';' | ':' | '!' | '?' | '"' | '\''));
            let is_word = trimmed.len() >= 2 && trimmed.chars().all(|c| c.is_ascii_alphabetic());
            if is_word {
                words.push(trimmed);
            } else if !token.is_empty() {
                flush(&mut words);
            }
        }
        flush(&mut words);
    }
    runs
}

/// Panics naming the English runs of `html`, if any; `what` says which page.
#[track_caller]
pub fn assert_no_english(what: &str, html: &str) {
    let runs = english_runs(html);
    assert!(runs.is_empty(), "{what} shows English: {runs:?}");
}

#[test]
fn english_runs_are_found_outside_code_only() {
    assert_eq!(english_runs("<p>WeChat answered errcode 45028</p>"), ["WeChat answered errcode"]);
    assert!(english_runs("<p>受众：orders(30d) &gt;= 1，<code>the raw input stays</code></p>").is_empty());
    assert!(english_runs("<input value=\"some typed words here\"><p>media_id 无效</p>").is_empty());
    assert!(english_runs("<p>AND、OR 或 NOT</p>").is_empty());
    assert_eq!(english_runs("<p>请检查。missing field name</p>"), ["missing field name"]);
}
