//! Parser tests fed with XML: the fixtures' exact expectations, the peer vectors, the fallback
//! decisions and hostile input.
//!
//! Helpers shared by the files below live here.

use std::path::{Path, PathBuf};

use super::*;

mod decisions;
mod fixtures;
mod hostile;
mod peer;

/// `<ancestor>/shared/` of the crate (works from /work/main and from scratch crates).
fn shared_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared"))
        .find(|shared| shared.join("CONTRACT.md").is_file())
        .unwrap_or_else(|| {
            panic!("no shared/CONTRACT.md in any ancestor of {}: the test data lives there", manifest.display())
        })
}

fn fixture(name: &str) -> String {
    let path = shared_dir().join("fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}

fn msg(to: &str, from: &str, create_time: i64, body: Inbound) -> Message {
    Message { to_user: to.into(), from_user: from.into(), create_time, body }
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// A hand-written push from `o_1` to `gh_1`: `body` follows `MsgType`.
fn push(msg_type: &str, body: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
    )
}
