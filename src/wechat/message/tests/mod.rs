//! Parser tests fed with XML: the fixtures' exact expectations (the project's own samples and
//! the official ones), the peer vectors, the fallback decisions, hostile input, and the writer's
//! round trip.
//!
//! Helpers shared by the files below live here.

use super::*;

mod decisions;
mod fixtures;
mod hostile;
mod own_fixtures;
mod peer;
mod round_trip;

fn msg(to: &str, from: &str, create_time: i64, body: Inbound) -> Message {
    Message { to_user: to.into(), from_user: from.into(), create_time, body }
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// A hand-written push from `o_1` to `gh_1`: `body` follows `MsgType`. Kept by hand, not
/// [`Message::to_xml`]: these tests feed the parser shapes the writer never produces.
fn push(msg_type: &str, body: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o_1]]></FromUserName>\
         <CreateTime>1700000000</CreateTime><MsgType><![CDATA[{msg_type}]]></MsgType>{body}</xml>"
    )
}
