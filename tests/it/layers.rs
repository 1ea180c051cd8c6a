//! The architecture, checked: every `crate::` path in `src/` points down the layers that
//! `src/lib.rs` describes, and SQL text lives only in `src/store/`. Reads the source as text, so
//! a wrong-way import fails here before a reviewer has to spot it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which layer a source file belongs to, from its path under `src/`.
fn layer_of(relative: &Path) -> &'static str {
    let first = relative.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
    match first.trim_end_matches(".rs") {
        "domain" => "domain",
        "wechat" => "wechat",
        "store" => "store",
        "mock_wechat" => "mock_wechat",
        "app" => "app",
        "jobs" => "jobs",
        "web" => "web",
        "config" | "startup" | "cli" | "main" | "telemetry" | "lib" => "top",
        other => panic!("src/{other} is in no layer: add it to lib.rs's map and to this test"),
    }
}

/// The layers each layer may use besides itself. `web` and `jobs` are both entry points, so
/// neither uses the other; `startup` wires them.
fn allowed(layer: &str) -> &'static [&'static str] {
    match layer {
        "domain" | "wechat" => &[],
        "store" => &["domain"],
        "mock_wechat" => &["wechat"],
        "app" => &["domain", "wechat", "store"],
        "jobs" | "web" => &["domain", "wechat", "store", "app"],
        "top" => &["domain", "wechat", "store", "mock_wechat", "app", "jobs", "web", "config", "startup"],
        other => panic!("unknown layer {other}"),
    }
}

/// The layer a top-level module of the crate belongs to (`crate::<module>`).
fn layer_of_module(module: &str) -> &'static str {
    layer_of(Path::new(module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The file's code with comments removed, so doc links and prose do not count as imports.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal (a URL) is kept: only cut where no quote is open.
            Some(at) if line[..at].matches('"').count() % 2 == 0 => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn sources() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            (path.strip_prefix(&src).expect("under src").to_path_buf(), code_of(&text))
        })
        .collect()
}

/// Top-level modules named after `crate::` (or `tagcast::` in the binary).
fn modules_used(code: &str) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    for prefix in ["crate::", "tagcast::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

#[test]
fn every_import_points_down_the_layers() {
    let mut wrong = Vec::new();
    for (path, code) in sources() {
        let layer = layer_of(&path);
        for module in modules_used(&code) {
            let target = layer_of_module(&module);
            if target != layer && !allowed(layer).contains(&target) {
                wrong.push(format!("src/{} ({layer}) uses crate::{module} ({target})", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers of src/lib.rs:\n{}", wrong.join("\n"));
}

/// SQL starts a string literal, possibly after whitespace: `"SELECT …`, `"\n    UPDATE x SET …`.
fn sql_literals(code: &str) -> Vec<String> {
    const STARTS: [&str; 6] = ["SELECT ", "INSERT INTO ", "UPDATE ", "DELETE FROM ", "WITH ", "LOCK TABLE "];
    let mut found = Vec::new();
    for (at, _) in code.match_indices('"') {
        let literal = code[at + 1..].trim_start();
        if STARTS.iter().any(|start| literal.starts_with(start)) && !literal.starts_with("UPDATE \"") {
            let line = code[..at].lines().count();
            found.push(format!("line {line}: {}", literal.lines().next().unwrap_or_default()));
        }
    }
    found
}

#[test]
fn sql_text_lives_only_in_the_store() {
    let mut stray = Vec::new();
    for (path, code) in sources() {
        if layer_of(&path) == "store" {
            continue;
        }
        for hit in sql_literals(&code) {
            stray.push(format!("src/{}: {hit}", path.display()));
        }
    }
    assert!(stray.is_empty(), "SQL outside src/store/:\n{}", stray.join("\n"));
}

#[test]
fn the_checks_see_what_they_look_for() {
    let code = code_of("use crate::store::tags; // crate::web in a comment\nlet q = \"\n  SELECT 1\";");
    assert_eq!(modules_used(&code), BTreeSet::from(["store".to_owned()]));
    assert_eq!(sql_literals(&code).len(), 1);
    assert!(!allowed("store").contains(&"app"), "store must not use app");
}
