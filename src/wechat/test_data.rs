//! Where the protocol module's unit tests find sample data (test builds only).
//!
//! Two sources, kept apart on purpose:
//! - the project's own samples in `tests/fixtures/`, written from the protocol facts and kept in
//!   the repository, so a fresh clone runs every test that merely needs *a* sample;
//! - the shared reference data beside the checkout (`../shared/fixtures`, the official samples,
//!   and `../shared/peer-vectors`, other SDKs' vectors), never copied in. A test replaying them
//!   is skipped, saying so on stderr, when `../shared` is absent, and fails instead when
//!   `TAGCAST_REQUIRE_SHARED=1` (CI sets it, so the replay cannot silently stop running).
//!
//! `../shared` is the nearest `shared/` holding `CONTRACT.md` beside the checkout or beside one of
//! its parents: the layout CI has always been run with, so the replay is found wherever it was.

use std::path::{Path, PathBuf};

/// `tests/fixtures/<relative>` of this crate.
pub(crate) fn project_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("fixtures").join(relative)
}

/// The text of `tests/fixtures/<relative>`; panics (the file is part of the repository).
pub(crate) fn project_fixture(relative: &str) -> String {
    let path = project_path(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

/// `../shared/<relative>` when the shared folder sits beside the checkout. `None` (after saying
/// the test was skipped) when it does not, unless `TAGCAST_REQUIRE_SHARED=1`, which makes that
/// a failure. A shared folder that is there but lacks `relative` is a failure too.
pub(crate) fn shared_path(relative: &str) -> Option<PathBuf> {
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

/// The text of `../shared/<relative>`, or `None` as [`shared_path`] says.
pub(crate) fn read_shared(relative: &str) -> Option<String> {
    let path = shared_path(relative)?;
    Some(std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display())))
}
