//! Sample data for the integration tests, from two places kept apart on purpose:
//! - the project's own samples in `tests/fixtures/` (in the repository, always there);
//! - the shared reference data beside the checkout (`../shared/fixtures`, the official samples,
//!   and `../shared/peer-vectors`), never copied in. A test replaying it is skipped, saying so on
//!   stderr, when `../shared` is absent, and fails instead when `TAGCAST_REQUIRE_SHARED=1` (CI).
//!
//! `../shared` is the nearest `shared/` holding `CONTRACT.md` beside the checkout or beside one of
//! its parents: the layout CI has always been run with, so the replay is found wherever it was.
//! The protocol module's unit tests find their data the same way (`src/wechat/test_data.rs`).

use std::path::{Path, PathBuf};

/// `tests/fixtures/<relative>`.
pub fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(relative)
}

/// `../shared/<relative>`, or `None` after printing that the test was skipped when `../shared`
/// is absent (a failure under `TAGCAST_REQUIRE_SHARED=1`).
pub fn shared_path(relative: &str) -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shared =
        manifest.ancestors().skip(1).map(|dir| dir.join("shared")).find(|dir| dir.join("CONTRACT.md").is_file());
    let Some(shared) = shared else {
        let top = relative.split('/').next().unwrap_or(relative);
        assert!(
            std::env::var("TAGCAST_REQUIRE_SHARED").as_deref() != Ok("1"),
            "TAGCAST_REQUIRE_SHARED=1 but ../shared/{top} was not found: no shared/CONTRACT.md beside {}",
            manifest.display()
        );
        eprintln!("skipped: ../shared/{top} not found");
        return None;
    };
    let path = shared.join(relative);
    assert!(path.exists(), "{} is missing from the shared folder", path.display());
    Some(path)
}

/// The text of `../shared/fixtures/<name>`, or `None` as [`shared_path`] says.
pub fn shared_fixture(name: &str) -> Option<String> {
    let path = shared_path(&format!("fixtures/{name}"))?;
    Some(std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display())))
}
