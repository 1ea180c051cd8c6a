//! Campaigns as pure decisions: what a campaign says (audience, message, variants), which
//! status may follow which, how an audience is cut into WeChat calls, the A/B split, the
//! monthly cap per tag, and the two-proportion z-test that names an A/B winner.
//! Nothing here touches the database, HTTP or WeChat.

use serde::{Deserialize, Serialize};

/// Who a campaign goes to (CONTRACT.md §4). Everyone must be asked for by name (`{"all": true}`),
/// so no mistake can widen a tag or segment send into one to every follower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Audience {
    /// A tag path.
    Tag(String),
    /// A saved segment's id.
    Segment(i64),
    /// Every follower; only `true` is accepted.
    All(bool),
}

impl Audience {
    /// `tag`, `segment` or `all`: the strategies the stats compare.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Tag(_) => "tag",
            Self::Segment(_) => "segment",
            Self::All(_) => "all",
        }
    }

    /// Why the audience cannot be used, if it cannot.
    pub fn problem(&self) -> Option<RequestProblem> {
        match self {
            Self::All(false) => Some(RequestProblem::AllNotTrue),
            Self::Tag(path) if path.trim().is_empty() => Some(RequestProblem::EmptyTag),
            _ => None,
        }
    }
}

/// What a campaign sends: text, or a media_id WeChat already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Message {
    Text { content: String },
    Mpnews { media_id: String },
    Image { media_id: String },
    Voice { media_id: String },
    Mpvideo { media_id: String },
}

impl Message {
    /// Why WeChat would refuse it (44004 empty content, 40007 missing media_id), if it would.
    pub fn problem(&self) -> Option<RequestProblem> {
        match self {
            Self::Text { content } if content.trim().is_empty() => Some(RequestProblem::EmptyContent),
            // WeChat measures text in UTF-8 bytes and refuses more than this (45002).
            Self::Text { content } if content.len() > MAX_TEXT_BYTES => {
                Some(RequestProblem::TextTooLong { bytes: content.len() })
            }
            // WeChat's own bound on a text mass message is 600 characters for some account kinds.
            Self::Text { content } if content.chars().count() > MAX_TEXT_CHARS => {
                Some(RequestProblem::ContentTooLong { chars: content.chars().count() })
            }
            Self::Mpnews { media_id }
            | Self::Image { media_id }
            | Self::Voice { media_id }
            | Self::Mpvideo { media_id }
                if media_id.trim().is_empty() =>
            {
                Some(RequestProblem::EmptyMediaId)
            }
            _ => None,
        }
    }
}

/// Longest text a campaign may send, in characters.
pub const MAX_TEXT_CHARS: usize = 2_000;

/// Longest text WeChat takes in a message, in UTF-8 bytes (the commonly reported limit behind
/// 45002; the mock enforces the same number). A Chinese character takes 3.
pub const MAX_TEXT_BYTES: usize = 2_048;

/// Why an audience or a message cannot be sent as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestProblem {
    #[error("`all` must be `true`; name a tag or a segment otherwise")]
    AllNotTrue,
    #[error("`tag` must be a tag path")]
    EmptyTag,
    #[error("text `content` must not be empty")]
    EmptyContent,
    #[error("text `content` is over 2,000 characters")]
    ContentTooLong { chars: usize },
    #[error("`media_id` must not be empty")]
    EmptyMediaId,
    #[error(
        "文本超过 {MAX_TEXT_BYTES} 字节（现为 {bytes} 字节；一个汉字占 3 字节，约 {} 个汉字以内），微信会拒绝发送（45002）：请删减后再保存",
        MAX_TEXT_BYTES / 3
    )]
    TextTooLong { bytes: usize },
}

/// An A/B variant: a name and its own message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub name: String,
    pub message: Message,
}

/// At most this many variants besides the control: each is a WeChat send of its own.
pub const MAX_VARIANTS: usize = 4;

/// Where a campaign is (CONTRACT.md §4, plus `cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    PendingApproval,
    Approved,
    Scheduled,
    Sending,
    Sent,
    Failed,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Scheduled => "scheduled",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "draft" => Self::Draft,
            "pending_approval" => Self::PendingApproval,
            "approved" => Self::Approved,
            "scheduled" => Self::Scheduled,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// A send may be asked for: nothing has gone out and nothing is queued.
    pub fn may_send(self) -> bool {
        matches!(self, Self::Draft | Self::PendingApproval | Self::Approved)
    }

    /// An approval may be given: before anything is queued.
    pub fn may_approve(self) -> bool {
        matches!(self, Self::Draft | Self::PendingApproval | Self::Approved)
    }

    /// Deleting is for campaigns nothing of which was queued or sent: once a send is requested,
    /// its delivery records and statistics are history to keep.
    pub fn may_delete(self) -> bool {
        matches!(self, Self::Draft | Self::PendingApproval | Self::Approved)
    }

    /// Cancelling stops what has not reached WeChat yet; a send under way stops between calls.
    pub fn may_cancel(self) -> bool {
        matches!(self, Self::Draft | Self::PendingApproval | Self::Approved | Self::Scheduled | Self::Sending)
    }
}

/// What asking to send decides, before any database write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendDecision {
    /// A sensitive tag is touched and nobody but the creator approved.
    NeedsApproval,
    /// Queued for `send_at`.
    Schedule,
    /// Queued now.
    SendNow,
}

/// Decides what a send request does; `send_at` and `now` are unix seconds.
pub fn decide_send(sensitive: bool, approved_by_other: bool, send_at: Option<i64>, now: i64) -> SendDecision {
    if sensitive && !approved_by_other {
        SendDecision::NeedsApproval
    } else if send_at.is_some_and(|at| at > now) {
        SendDecision::Schedule
    } else {
        SendDecision::SendNow
    }
}

/// The monthly cap's window.
pub const CAP_WINDOW_SECS: i64 = 30 * 86_400;

/// When a tag may be sent to again, given the unix times of its sends within the window
/// (any order) and the cap: `None` when it may be sent to now.
pub fn cap_frees_at(mut sends: Vec<i64>, cap: u32, now: i64) -> Option<i64> {
    sends.retain(|at| *at > now - CAP_WINDOW_SECS);
    let cap = cap as usize;
    if sends.len() < cap {
        return None;
    }
    sends.sort_unstable();
    // Below the cap once all but cap - 1 of them have left the window.
    Some(sends[sends.len() - cap] + CAP_WINDOW_SECS)
}

/// Sizes of the `mass/send` calls for `n` openids: as few calls as WeChat's 10,000 allow, none
/// below its minimum of 2 (the remainder is spread instead of left as a short last call).
/// Empty when `n` is below the minimum.
pub fn chunk_sizes(n: usize, min: usize, max: usize) -> Vec<usize> {
    if n < min || max == 0 {
        return Vec::new();
    }
    let calls = n.div_ceil(max);
    let base = n / calls;
    let extra = n % calls;
    (0..calls).map(|i| base + usize::from(i < extra)).collect()
}

/// The variant (0..`variants`) a follower gets in a campaign: a hash of campaign and openid, so
/// the split is the same on every run and every process, and unrelated between campaigns.
pub fn variant_of(campaign_id: i64, openid: &str, variants: usize) -> usize {
    if variants <= 1 {
        return 0;
    }
    // FNV-1a: stable across Rust versions and platforms, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in campaign_id.to_le_bytes().iter().chain(openid.as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // Spread the low bits, which FNV mixes least, before taking the remainder.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    (hash % variants as u64) as usize
}

/// The result of a two-proportion z-test of `a` = (successes, trials) against `b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZTest {
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
}

/// The significance level a winner must reach.
pub const ALPHA: f64 = 0.05;

/// Two-proportion z-test with the pooled proportion; `None` when either side has no trials or
/// the pooled proportion is 0 or 1 (no variance: nothing to tell apart).
pub fn two_proportion_z(a: (u64, u64), b: (u64, u64)) -> Option<ZTest> {
    let (x1, n1) = (a.0 as f64, a.1 as f64);
    let (x2, n2) = (b.0 as f64, b.1 as f64);
    if n1 == 0.0 || n2 == 0.0 {
        return None;
    }
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 || !se.is_finite() {
        return None;
    }
    let z = (x1 / n1 - x2 / n2) / se;
    Some(ZTest { z, p_value: erfc(z.abs() / std::f64::consts::SQRT_2) })
}

/// The index of the variant that wins on `results` (successes, trials): the best rate, named
/// only when it beats every other variant at [`ALPHA`].
pub fn winner(results: &[(u64, u64)]) -> Option<usize> {
    let rate = |(x, n): (u64, u64)| if n == 0 { 0.0 } else { x as f64 / n as f64 };
    let best = (0..results.len()).max_by(|&i, &j| rate(results[i]).total_cmp(&rate(results[j])))?;
    let beats_all = results.len() > 1
        && (0..results.len())
            .filter(|&i| i != best)
            .all(|i| two_proportion_z(results[best], results[i]).is_some_and(|t| t.z > 0.0 && t.p_value < ALPHA));
    beats_all.then_some(best)
}

/// The complementary error function (W. J. Cody's rational Chebyshev approximation as given in
/// Numerical Recipes' `erfcc`, relative error below 1.2e-7: plenty for a p-value).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_parse_as_the_contract_writes_them() {
        let parse = |s: &str| serde_json::from_str::<Audience>(s);
        assert_eq!(parse(r#"{"tag": "肤质/油性"}"#).unwrap(), Audience::Tag("肤质/油性".into()));
        assert_eq!(parse(r#"{"segment": 7}"#).unwrap(), Audience::Segment(7));
        assert_eq!(parse(r#"{"all": true}"#).unwrap(), Audience::All(true));
        assert!(parse(r#"{"all": false}"#).unwrap().problem().is_some());
        assert!(parse(r#"{"tag": "a", "segment": 1}"#).is_err());
        assert!(parse(r#"{"everyone": true}"#).is_err());
        let message: Message = serde_json::from_str(r#"{"type": "image", "media_id": "m1"}"#).unwrap();
        assert_eq!(message, Message::Image { media_id: "m1".into() });
        assert!(serde_json::from_str::<Message>(r#"{"type": "text", "content": "x", "extra": 1}"#).is_err());
    }

    #[test]
    fn sends_wait_for_approval_then_for_their_time() {
        assert_eq!(decide_send(true, false, None, 100), SendDecision::NeedsApproval);
        assert_eq!(decide_send(true, true, None, 100), SendDecision::SendNow);
        assert_eq!(decide_send(false, false, Some(200), 100), SendDecision::Schedule);
        assert_eq!(decide_send(false, false, Some(50), 100), SendDecision::SendNow);
        assert!(Status::Approved.may_send() && !Status::Sending.may_send() && !Status::Sent.may_cancel());
    }

    #[test]
    fn only_campaigns_nothing_of_which_was_queued_may_be_deleted() {
        let deletable: Vec<Status> = [
            Status::Draft,
            Status::PendingApproval,
            Status::Approved,
            Status::Scheduled,
            Status::Sending,
            Status::Sent,
            Status::Failed,
            Status::Cancelled,
        ]
        .into_iter()
        .filter(|s| s.may_delete())
        .collect();
        assert_eq!(deletable, vec![Status::Draft, Status::PendingApproval, Status::Approved]);
    }

    #[test]
    fn the_cap_frees_up_when_the_oldest_counted_send_leaves_the_window() {
        let day = 86_400;
        let now = 100 * day;
        assert_eq!(cap_frees_at(vec![now - day, now - 2 * day], 4, now), None);
        let sends = vec![now - 3 * day, now - 10 * day, now - day, now - 20 * day];
        assert_eq!(cap_frees_at(sends.clone(), 4, now), Some(now - 20 * day + CAP_WINDOW_SECS));
        assert_eq!(cap_frees_at(sends, 2, now), Some(now - 3 * day + CAP_WINDOW_SECS));
        // A send 31 days ago no longer counts.
        assert_eq!(cap_frees_at(vec![now - 31 * day, now - day], 2, now), None);
    }

    #[test]
    fn chunks_stay_within_wechats_list_bounds() {
        assert_eq!(chunk_sizes(1, 2, 10_000), Vec::<usize>::new());
        assert_eq!(chunk_sizes(2, 2, 10_000), vec![2]);
        assert_eq!(chunk_sizes(30_000, 2, 10_000), vec![10_000; 3]);
        assert_eq!(chunk_sizes(10_001, 2, 10_000), vec![5_001, 5_000]);
        for n in [2, 3, 9_999, 10_000, 10_001, 20_001, 123_457] {
            let sizes = chunk_sizes(n, 2, 10_000);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| (2..=10_000).contains(s)), "{n}: {sizes:?}");
        }
    }

    #[test]
    fn the_split_is_deterministic_and_roughly_even() {
        let mut counts = [0usize; 3];
        for i in 0..30_000 {
            let openid = format!("o{i:08}");
            let v = variant_of(42, &openid, 3);
            assert_eq!(v, variant_of(42, &openid, 3));
            counts[v] += 1;
        }
        assert!(counts.iter().all(|c| (9_500..10_500).contains(c)), "{counts:?}");
        let moved = (0..1_000).filter(|i| variant_of(1, &i.to_string(), 2) != variant_of(2, &i.to_string(), 2)).count();
        assert!((400..600).contains(&moved), "campaigns split independently: {moved}");
        assert_eq!(variant_of(9, "x", 1), 0);
    }

    #[test]
    fn the_z_test_matches_known_values() {
        // 20% of 1,000 against 15% of 1,000: z = 2.9424, p = 0.00326.
        let t = two_proportion_z((200, 1_000), (150, 1_000)).unwrap();
        assert!((t.z - 2.9424).abs() < 1e-3, "{t:?}");
        assert!((t.p_value - 0.00326).abs() < 5e-5, "{t:?}");
        // 52 of 500 against 45 of 500: z = 0.7479, p = 0.4545 (not significant).
        let t = two_proportion_z((52, 500), (45, 500)).unwrap();
        assert!((t.z - 0.7479).abs() < 1e-3 && (t.p_value - 0.4545).abs() < 1e-3, "{t:?}");
        // z = 1.96 is p = 0.05.
        assert!((erfc(1.959_964 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-6);
        assert_eq!(two_proportion_z((0, 0), (1, 10)), None);
        assert_eq!(two_proportion_z((0, 10), (0, 10)), None);
    }

    #[test]
    fn a_winner_is_named_only_when_significant() {
        assert_eq!(winner(&[(150, 1_000), (200, 1_000)]), Some(1));
        assert_eq!(winner(&[(52, 500), (45, 500)]), None);
        assert_eq!(winner(&[(10, 100)]), None);
        assert_eq!(winner(&[(200, 1_000), (150, 1_000), (195, 1_000)]), None);
    }
}
