//! Finds the project's `shared/` folder (fixtures and peer vectors), which sits beside the checkout.

use std::path::PathBuf;

pub fn shared_dir() -> PathBuf {
    let start = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|dir| dir.join("CONTRACT.md").is_file())
        .unwrap_or_else(|| panic!("no shared/ folder with CONTRACT.md beside {} or its parents", start.display()))
}

pub fn fixture(name: &str) -> String {
    let path = shared_dir().join("fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
