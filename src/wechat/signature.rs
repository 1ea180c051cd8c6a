//! WeChat's SHA-1 request signatures: the plain `signature` that authenticates the URL check and
//! every push, and the `msg_signature` that covers an encrypted body (wechat-api.md §1, §2.5).
//!
//! Owns sorting, hashing and the constant-time comparison, nothing else: it parses no query
//! strings, knows no HTTP and imports nothing from the rest of the crate.

use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

/// Length of a SHA-1 digest in bytes.
const DIGEST_LEN: usize = 20;

/// Signatures always have three or four parts, so sorting a copy on the stack covers every
/// real call; longer lists fall back to a heap copy.
const INLINE_PARTS: usize = 4;

/// Computes WeChat's signature over `parts`: sort them by bytes, concatenate without a
/// separator, SHA-1, lowercase hex.
///
/// Use it to sign what we send (the `MsgSignature` of an encrypted reply, mock pushes in tests);
/// to check what we receive, use [`verify`] or [`verify_msg`], which compare in constant time.
pub fn sign(parts: &[&str]) -> String {
    hex::encode(digest_of(parts))
}

/// Checks the plain `signature` WeChat puts on the URL-verification GET and on every push,
/// `sha1(sort(token, timestamp, nonce))` (wechat-api.md §1).
///
/// Case-insensitive hex is accepted; anything that is not 40 hex digits is simply `false`.
/// The digest comparison is constant-time, so timing tells an attacker nothing about how much
/// of a forged signature was right.
pub fn verify(token: &str, timestamp: &str, nonce: &str, signature: &str) -> bool {
    matches(&mut [token, timestamp, nonce], signature)
}

/// Checks the `msg_signature` of safe/compatible mode, `sha1(sort(token, timestamp, nonce,
/// encrypt))`, where `encrypt` is the `<Encrypt>` text exactly as received (wechat-api.md §2.5).
///
/// WeChat's rule is to check it *before* decrypting, so forged ciphertexts never reach the AES
/// code. Same hex and constant-time rules as [`verify`].
pub fn verify_msg(token: &str, timestamp: &str, nonce: &str, encrypt: &str, msg_signature: &str) -> bool {
    matches(&mut [token, timestamp, nonce, encrypt], msg_signature)
}

/// Sorts `parts` in place and compares their digest with the hex `candidate` in constant time.
fn matches(parts: &mut [&str], candidate: &str) -> bool {
    let mut claimed = [0u8; DIGEST_LEN];
    if candidate.len() != 2 * DIGEST_LEN || hex::decode_to_slice(candidate, &mut claimed).is_err() {
        return false;
    }
    digest_sorted(parts).ct_eq(&claimed).into()
}

/// Digest of `parts` without touching the caller's slice.
fn digest_of(parts: &[&str]) -> [u8; DIGEST_LEN] {
    if parts.len() <= INLINE_PARTS {
        let mut sorted = [""; INLINE_PARTS];
        let sorted = &mut sorted[..parts.len()];
        sorted.copy_from_slice(parts);
        digest_sorted(sorted)
    } else {
        digest_sorted(&mut parts.to_vec())
    }
}

/// Sorts by bytes (`str`'s `Ord`) and feeds each part to the hasher: no concatenated copy.
fn digest_sorted(parts: &mut [&str]) -> [u8; DIGEST_LEN] {
    parts.sort_unstable();
    let mut hasher = Sha1::new();
    for part in parts.iter() {
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::test_data::{project_fixture, read_shared};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct PeerSignature {
        id: String,
        kind: String,
        token: String,
        timestamp: String,
        nonce: String,
        encrypt: Option<String>,
        signature: String,
        expect_valid: bool,
    }

    #[test]
    fn docs_plain_mode_example_verifies() {
        let Some(text) = read_shared("fixtures/crypto.json") else { return };
        let fixtures: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = fixtures["vectors"].as_array().unwrap();
        let v = vectors
            .iter()
            .find(|v| v["id"] == "docs-plain-mode-signature")
            .expect("docs-plain-mode-signature vector present");
        let s = |k: &str| v[k].as_str().unwrap();

        assert_eq!(sign(&[s("token"), s("timestamp"), s("nonce")]), s("expected_signature"));
        assert!(verify(s("token"), s("timestamp"), s("nonce"), s("expected_signature")));
        let mut sorted = [s("token"), s("timestamp"), s("nonce")];
        sorted.sort_unstable();
        assert_eq!(sorted.concat(), s("sorted_concatenation"));
    }

    #[test]
    fn every_peer_signature_vector_gives_the_expected_verdict() {
        let Some(text) = read_shared("peer-vectors/signatures.jsonl") else { return };
        let (mut plain, mut msg) = (0, 0);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: PeerSignature = serde_json::from_str(line).unwrap();
            let (t, ts, n) = (v.token.as_str(), v.timestamp.as_str(), v.nonce.as_str());
            let (valid, computed) = match v.kind.as_str() {
                "signature" => {
                    plain += 1;
                    (verify(t, ts, n, &v.signature), sign(&[t, ts, n]))
                }
                "msg_signature" => {
                    msg += 1;
                    let e = v.encrypt.as_deref().expect("msg_signature vector has encrypt");
                    (verify_msg(t, ts, n, e, &v.signature), sign(&[t, ts, n, e]))
                }
                other => panic!("{}: unknown kind {other}", v.id),
            };
            assert_eq!(valid, v.expect_valid, "{}", v.id);
            assert_eq!(computed == v.signature, v.expect_valid, "{}", v.id);
        }
        assert_eq!((plain, msg), (22, 5), "signature / msg_signature vectors run");
        assert_eq!(plain + msg, 27, "every line of signatures.jsonl ran");
    }

    /// The project's own vector, computed with `sha1sum` outside the project
    /// (tests/fixtures/crypto/safe_mode_click.json says how).
    #[test]
    fn the_project_vector_signs_and_verifies() {
        let v: serde_json::Value = serde_json::from_str(&project_fixture("crypto/safe_mode_click.json")).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k}"));
        let (token, ts, nonce) = (s("token"), s("timestamp"), s("nonce"));
        assert_eq!(sign(&[token, ts, nonce]), s("signature"));
        assert!(verify(token, ts, nonce, s("signature")));
        assert_eq!(sign(&[token, ts, nonce, s("encrypt")]), s("msg_signature"));
        assert!(verify_msg(token, ts, nonce, s("encrypt"), s("msg_signature")));
        assert!(!verify_msg(token, ts, "318274651", s("encrypt"), s("msg_signature")));
    }

    #[test]
    fn order_of_parts_does_not_matter() {
        let sig = sign(&["a", "b", "c"]);
        assert_eq!(sig, "a9993e364706816aba3e25717850c26c9cd0d89d"); // sha1("abc")
        assert_eq!(sign(&["c", "a", "b"]), sig);
        assert!(verify("c", "b", "a", &sig));
        assert!(verify_msg("", "c", "b", "a", &sig));
    }

    #[test]
    fn more_than_four_parts_are_sorted_too() {
        assert_eq!(
            sign(&["e", "d", "c", "b", "a"]),
            sign(&["abcde"]),
            "five parts take the heap path and must agree with the concatenation"
        );
        assert_eq!(sign(&[]), "da39a3ee5e6b4b0d3255bfef95601890afd80709"); // sha1("")
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        assert!(verify("a", "b", "c", "A9993E364706816ABA3E25717850C26C9CD0D89D"));
    }

    #[test]
    fn candidates_that_are_not_40_hex_digits_are_rejected() {
        let good = "a9993e364706816aba3e25717850c26c9cd0d89d";
        for bad in [
            "",
            &good[..39],
            &format!("{good}0"),
            &format!("{}g", &good[..39]),
            "invalid-signature",
            &format!("{}é", &good[..38]), // 40 bytes, not hex
        ] {
            assert!(!verify("a", "b", "c", bad), "{bad:?}");
            assert!(!verify_msg("a", "b", "c", "", bad), "{bad:?}");
        }
    }
}
