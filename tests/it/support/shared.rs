//! Sample data for the integration tests: the same lookup the protocol module's unit tests use
//! (`src/wechat/test_data.rs`, included here rather than written twice): the project's own
//! samples in `tests/fixtures/`, and the shared reference data beside the checkout, skipped when
//! absent unless `TAGCAST_REQUIRE_SHARED=1`.

#[path = "../../../src/wechat/test_data.rs"]
#[expect(dead_code, reason = "the integration tests use only some of the unit tests' helpers")]
mod test_data;

pub(crate) use test_data::{project_path, read_shared, shared_path};

/// The text of `../shared/fixtures/<name>`, or `None` as [`shared_path`] says.
pub(crate) fn shared_fixture(name: &str) -> Option<String> {
    read_shared(&format!("fixtures/{name}"))
}
