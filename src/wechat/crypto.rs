//! WXBizMsgCrypt, the AES envelope of WeChat's safe and compatible modes (wechat-api.md §2):
//! turning an `<Encrypt>` text into message bytes, and a reply into the signed envelope.
//!
//! Owns the key derivation, AES-256-CBC, the hand-made PKCS#7 with a 32-byte block, the
//! `random | u32 length | msg | receive id` layout and the receive-id check. It does not verify
//! the request's `msg_signature` (callers do that with [`super::signature::verify_msg`] before
//! calling [`MsgCrypt::decrypt`]), parses no XML and checks no UTF-8. It imports nothing from the
//! crate outside `wechat`; its only sibling import is `signature`, to sign sealed replies.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use rand::Rng;
use rand::distributions::Alphanumeric;

use super::signature;

/// An EncodingAESKey is 43 base64 characters: 32 key bytes plus 2 ignored bits.
const ENCODING_AES_KEY_LEN: usize = 43;
/// AES block size; the ciphertext must be a whole number of these.
const AES_BLOCK: usize = 16;
/// WeChat pads with PKCS#7 to a multiple of 32 bytes, not AES's 16 (wechat-api.md §2.3).
const PAD_BLOCK: usize = 32;
/// Random prefix that makes equal messages encrypt differently.
const RANDOM_LEN: usize = 16;
/// Random prefix plus the big-endian `u32` message length.
const HEADER_LEN: usize = RANDOM_LEN + 4;

/// Decodes an EncodingAESKey. Lenient about the 2 leftover bits of the 43rd character: many real
/// keys (the official sample's `abc…EFG` among them) set them, and WeChat ignores them. Padding
/// is optional, so decoding the 43 characters equals the documented `decode(key + "=")`.
const KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an `<Encrypt>` text or an EncodingAESKey was refused.
///
/// The variants mirror the sample code's -40004, -40010, -40007/-40008 and -40005 codes
/// (wechat-api.md §2.7). Log them, but never tell the sender which one it was: a peer that could
/// submit ciphertexts and tell `Padding` from the other variants would have a padding oracle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The EncodingAESKey is not 43 characters of the base64 alphabet (-40004).
    #[error("EncodingAESKey must be 43 base64 characters")]
    IllegalAesKey,
    /// The `<Encrypt>` text is not canonical standard base64 with `=` padding (-40010).
    #[error("Encrypt text is not standard base64")]
    Base64(#[source] base64::DecodeError),
    /// The ciphertext is empty or not a whole number of 16-byte AES blocks (-40007).
    #[error("ciphertext is empty or not a whole number of AES blocks")]
    CipherLength,
    /// The last byte is not a pad count in `1..=32`, or the pad bytes disagree with it: wrong key,
    /// or a corrupted or forged ciphertext (-40008).
    #[error("PKCS#7 padding of the decrypted data is malformed")]
    Padding,
    /// The decrypted data is shorter than its 20-byte header, or its length prefix points past
    /// the end (-40008).
    #[error("message length prefix exceeds the decrypted data")]
    Length,
    /// The receive id after the message is not our appid: the push was meant for another
    /// account, or was produced by a non-conformant encoder (-40005).
    #[error("receive id in the ciphertext is not the configured appid")]
    AppIdMismatch,
}

/// One account's WXBizMsgCrypt: the AES key and IV derived from its EncodingAESKey, and the
/// appid that every decrypted message must name as its receiver.
///
/// Build it once at start-up and share it; it holds the expanded AES key schedule, so a message
/// costs no key setup. `Debug` shows the appid only, never key material.
#[derive(Clone)]
pub struct MsgCrypt {
    cipher: Aes256,
    iv: [u8; AES_BLOCK],
    appid: String,
}

impl MsgCrypt {
    /// Derives the key from `encoding_aes_key` as WeChat does: `AESKey = base64(key + "=")`,
    /// 32 bytes, with `IV = AESKey[..16]` (wechat-api.md §2.2).
    ///
    /// `appid` is the receive id written after every message: the Official Account's AppID, the
    /// corp id or suite id on WeCom, the component AppID on the open platform, possibly empty.
    ///
    /// # Errors
    /// [`CryptoError::IllegalAesKey`] unless the key is exactly 43 characters of
    /// `[A-Za-z0-9+/]`. Non-zero leftover bits in the last character are accepted, as WeChat does.
    pub fn new(encoding_aes_key: &str, appid: &str) -> Result<Self, CryptoError> {
        let in_alphabet = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        if encoding_aes_key.len() != ENCODING_AES_KEY_LEN || !encoding_aes_key.bytes().all(in_alphabet) {
            return Err(CryptoError::IllegalAesKey);
        }
        let decoded = KEY_ENGINE.decode(encoding_aes_key).map_err(|_| CryptoError::IllegalAesKey)?;
        let key: [u8; 32] = decoded.as_slice().try_into().map_err(|_| CryptoError::IllegalAesKey)?;
        let mut iv = [0u8; AES_BLOCK];
        iv.copy_from_slice(&key[..AES_BLOCK]);
        Ok(Self { cipher: Aes256::new(&key.into()), iv, appid: appid.to_owned() })
    }

    /// The receive id this instance writes and insists on.
    pub fn appid(&self) -> &str {
        &self.appid
    }

    /// Decrypts an `<Encrypt>` text (or WeCom's encrypted `echostr`) and returns the message
    /// bytes, after checking that the receive id is our appid (the sample code's -40005).
    ///
    /// The bytes are returned raw: callers that need text check UTF-8 themselves. Verify the
    /// `msg_signature` first; this function authenticates nothing but the receive id.
    ///
    /// Padding policy: any pad count `1..=32` is accepted as long as all pad bytes equal it, so
    /// encoders that pad to 16 (shaipe/wechat-rs) still decrypt. EasyWeChat 3.x padded twice
    /// (to 32, then 16 more bytes of `0x10`); after one unpad its `0x03 0x03 0x03` stays glued to
    /// the appid. We reject that as [`CryptoError::AppIdMismatch`], as the official sample does,
    /// rather than strip trailing bytes off a receive id: that would weaken the one check that
    /// binds a message to our account, for an encoder WeChat itself never used.
    ///
    /// # Errors
    /// [`CryptoError::Base64`], [`CryptoError::CipherLength`], [`CryptoError::Padding`],
    /// [`CryptoError::Length`] for a malformed envelope; [`CryptoError::AppIdMismatch`] when the
    /// receive id is not [`MsgCrypt::appid`].
    pub fn decrypt(&self, encrypt_b64: &str) -> Result<Vec<u8>, CryptoError> {
        let (mut plain, msg_end) = self.open(encrypt_b64)?;
        if plain[msg_end..] != *self.appid.as_bytes() {
            return Err(CryptoError::AppIdMismatch);
        }
        plain.truncate(msg_end);
        plain.drain(..HEADER_LEN);
        Ok(plain)
    }

    /// Like [`MsgCrypt::decrypt`] but returns `(msg, receive_id)` without comparing the receive
    /// id, for callers that must look at it first (a WeCom suite serving several corps,
    /// diagnostics). Anyone who skips the comparison owns that check.
    ///
    /// # Errors
    /// As [`MsgCrypt::decrypt`], except [`CryptoError::AppIdMismatch`].
    pub fn decrypt_with_receiver(&self, encrypt_b64: &str) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        let (mut plain, msg_end) = self.open(encrypt_b64)?;
        let receive_id = plain[msg_end..].to_vec();
        plain.truncate(msg_end);
        plain.drain(..HEADER_LEN);
        Ok((plain, receive_id))
    }

    /// Encrypts `msg` with a fresh random prefix of 16 alphanumeric ASCII bytes (as the official
    /// samples do) and returns the base64 `Encrypt` text.
    ///
    /// # Panics
    /// If `msg` is 4 GiB or longer, which the format's `u32` length cannot express; WeChat caps
    /// replies far below that.
    pub fn encrypt(&self, msg: &[u8]) -> String {
        STANDARD.encode(self.encrypt_to_vec(msg, &random_prefix()))
    }

    /// [`MsgCrypt::encrypt`] with a caller-chosen prefix, so published vectors can be reproduced
    /// byte for byte. Production code wants [`MsgCrypt::encrypt`]: a repeated prefix makes equal
    /// replies encrypt equally.
    ///
    /// # Panics
    /// As [`MsgCrypt::encrypt`].
    pub fn encrypt_with_random(&self, msg: &[u8], random: &[u8; RANDOM_LEN]) -> String {
        STANDARD.encode(self.encrypt_to_vec(msg, random))
    }

    /// Builds the encrypted passive reply WeChat expects in safe mode (wechat-api.md §2.6):
    /// `<xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>`, laid out like the official
    /// sample, with `MsgSignature = sha1(sort(token, timestamp, nonce, Encrypt))` over exactly
    /// the values in the envelope.
    ///
    /// `timestamp` and `nonce` may be the request's or fresh ones. They are escaped, so even
    /// odd values cannot break the XML.
    ///
    /// # Panics
    /// As [`MsgCrypt::encrypt`].
    pub fn seal(&self, token: &str, msg: &[u8], timestamp: &str, nonce: &str) -> String {
        self.seal_with_random(token, msg, &random_prefix(), timestamp, nonce)
    }

    fn seal_with_random(
        &self,
        token: &str,
        msg: &[u8],
        random: &[u8; RANDOM_LEN],
        timestamp: &str,
        nonce: &str,
    ) -> String {
        let cipher = self.encrypt_to_vec(msg, random);
        let mut xml = String::with_capacity(cipher.len() * 4 / 3 + 200);
        xml.push_str("<xml>\n<Encrypt><![CDATA[");
        let encrypt_start = xml.len();
        STANDARD.encode_string(&cipher, &mut xml);
        let msg_signature = signature::sign(&[token, timestamp, nonce, &xml[encrypt_start..]]);
        xml.push_str("]]></Encrypt>\n<MsgSignature><![CDATA[");
        xml.push_str(&msg_signature);
        xml.push_str("]]></MsgSignature>\n<TimeStamp>");
        push_escaped_text(&mut xml, timestamp);
        xml.push_str("</TimeStamp>\n<Nonce>");
        push_cdata(&mut xml, nonce);
        xml.push_str("</Nonce>\n</xml>");
        xml
    }

    /// Lays out `random | u32_be(len) | msg | appid`, pads to a multiple of 32 and encrypts in
    /// place: one allocation.
    fn encrypt_to_vec(&self, msg: &[u8], random: &[u8; RANDOM_LEN]) -> Vec<u8> {
        let msg_len = u32::try_from(msg.len()).expect("WeChat's length prefix is a u32; messages are far below 4 GiB");
        let unpadded = HEADER_LEN + msg.len() + self.appid.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK; // 1..=32, never 0
        let mut buf = Vec::with_capacity(unpadded + pad);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(msg);
        buf.extend_from_slice(self.appid.as_bytes());
        buf.resize(unpadded + pad, pad as u8);
        let len = buf.len();
        cbc::Encryptor::<Aes256>::inner_iv_init(self.cipher.clone(), &self.iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .expect("the buffer was padded to a whole number of AES blocks");
        buf
    }

    /// Decodes, decrypts in place and unpads; returns the plaintext without padding and the end
    /// of the message inside it (`plain[HEADER_LEN..end]` is the message, `plain[end..]` the
    /// receive id).
    fn open(&self, encrypt_b64: &str) -> Result<(Vec<u8>, usize), CryptoError> {
        let mut buf = STANDARD.decode(encrypt_b64).map_err(CryptoError::Base64)?;
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(CryptoError::CipherLength);
        }
        cbc::Decryptor::<Aes256>::inner_iv_init(self.cipher.clone(), &self.iv.into())
            .decrypt_padded_mut::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::CipherLength)?;
        let plain_len = unpadded_len(&buf)?;
        buf.truncate(plain_len);

        let Some((header, rest)) = buf.split_first_chunk::<HEADER_LEN>() else {
            return Err(CryptoError::Length);
        };
        let [.., a, b, c, d] = *header;
        let msg_len = usize::try_from(u32::from_be_bytes([a, b, c, d])).map_err(|_| CryptoError::Length)?;
        if msg_len > rest.len() {
            return Err(CryptoError::Length);
        }
        Ok((buf, HEADER_LEN + msg_len))
    }
}

impl std::fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgCrypt").field("appid", &self.appid).finish_non_exhaustive()
    }
}

/// Length of `buf` without its PKCS#7 padding: the last byte `n` must be in `1..=32` and the
/// last `n` bytes must all equal `n`.
fn unpadded_len(buf: &[u8]) -> Result<usize, CryptoError> {
    let &n = buf.last().ok_or(CryptoError::Padding)?;
    let pad = usize::from(n);
    if pad == 0 || pad > PAD_BLOCK || pad > buf.len() {
        return Err(CryptoError::Padding);
    }
    let body = buf.len() - pad;
    // Look at every pad byte rather than stopping at the first bad one.
    if buf[body..].iter().fold(0u8, |acc, &b| acc | (b ^ n)) != 0 {
        return Err(CryptoError::Padding);
    }
    Ok(body)
}

fn random_prefix() -> [u8; RANDOM_LEN] {
    let mut random = [0u8; RANDOM_LEN];
    for (slot, byte) in random.iter_mut().zip(rand::thread_rng().sample_iter(Alphanumeric)) {
        *slot = byte;
    }
    random
}

/// Appends `text` as XML character data.
fn push_escaped_text(xml: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            _ => xml.push(ch),
        }
    }
}

/// Appends `text` as CDATA, splitting any `]]>` so it cannot end the section early.
fn push_cdata(xml: &mut String, text: &str) {
    xml.push_str("<![CDATA[");
    xml.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
    xml.push_str("]]>");
}

#[cfg(test)]
mod tests {
    use super::super::signature::{sign, verify, verify_msg};
    use super::super::test_data::{project_fixture, read_shared};
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    const ABC_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    const APPID: &str = "wx2c2769f8efd9abc2";

    #[derive(Deserialize)]
    struct Fixtures {
        vectors: Vec<Fixture>,
    }

    #[derive(Deserialize)]
    struct Fixture {
        id: String,
        kind: String,
        token: String,
        encoding_aes_key: Option<String>,
        appid: Option<String>,
        timestamp: String,
        nonce: String,
        msg_signature: Option<String>,
        signature: Option<String>,
        request_body_file: Option<String>,
        encrypt: Option<String>,
        random: Option<String>,
        expected_plaintext: Option<String>,
        plaintext: Option<String>,
        expected_encrypt: Option<String>,
        expected_msg_signature: Option<String>,
        expected_sizes: Option<BTreeMap<String, usize>>,
    }

    #[derive(Deserialize)]
    struct Peer {
        id: String,
        kind: String,
        token: Option<String>,
        encoding_aes_key: String,
        appid: String,
        timestamp: Option<String>,
        nonce: Option<String>,
        msg_signature: Option<String>,
        signature: Option<String>,
        encrypt: String,
        expected_plaintext_xml: Option<String>,
        random: Option<String>,
        expected_reply_envelope: Option<String>,
        configured_appid_in_test: Option<String>,
    }

    impl Peer {
        fn crypt(&self) -> MsgCrypt {
            MsgCrypt::new(&self.encoding_aes_key, &self.appid).unwrap()
        }

        fn plaintext(&self) -> &[u8] {
            self.expected_plaintext_xml
                .as_deref()
                .unwrap_or_else(|| panic!("{}: expected_plaintext_xml", self.id))
                .as_bytes()
        }

        fn random(&self) -> [u8; RANDOM_LEN] {
            self.random
                .as_deref()
                .and_then(|r| r.as_bytes().try_into().ok())
                .unwrap_or_else(|| panic!("{}: random must be 16 bytes", self.id))
        }

        /// `(token, timestamp, nonce)` when the source published them.
        fn query(&self) -> Option<(&str, &str, &str)> {
            Some((self.token.as_deref()?, self.timestamp.as_deref()?, self.nonce.as_deref()?))
        }

        /// Whether the published `msg_signature` checks out over this vector's Encrypt.
        fn msg_signature_ok(&self) -> Option<bool> {
            let (t, ts, n) = self.query()?;
            let sig = self.msg_signature.as_deref()?;
            Some(verify_msg(t, ts, n, &self.encrypt, sig))
        }

        /// Checks the plain and message signatures where the source gives them.
        fn assert_signatures_ok(&self) {
            if let Some(ok) = self.msg_signature_ok() {
                assert!(ok, "{}: msg_signature", self.id);
            }
            if let (Some((t, ts, n)), Some(sig)) = (self.query(), self.signature.as_deref()) {
                assert!(verify(t, ts, n, sig), "{}: signature", self.id);
            }
        }
    }

    fn fixture_crypt(v: &Fixture) -> MsgCrypt {
        MsgCrypt::new(v.encoding_aes_key.as_deref().unwrap(), v.appid.as_deref().unwrap()).unwrap()
    }

    /// Encrypts `plain` as-is (no padding, no layout) under `crypt`'s key, to build broken
    /// ciphertexts that the real encryptor never would.
    fn encrypt_raw(crypt: &MsgCrypt, plain: &[u8]) -> String {
        let mut buf = plain.to_vec();
        let len = buf.len();
        cbc::Encryptor::<Aes256>::inner_iv_init(crypt.cipher.clone(), &crypt.iv.into())
            .encrypt_padded_mut::<NoPadding>(&mut buf, len)
            .unwrap();
        STANDARD.encode(buf)
    }

    /// `random | len | msg | appid` padded with `pad` bytes of value `value`.
    fn layout(len: u32, msg: &[u8], appid: &[u8], pad: usize, value: u8) -> Vec<u8> {
        let mut plain = b"0123456789abcdef".to_vec();
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(appid);
        plain.resize(plain.len() + pad, value);
        plain
    }

    /// The project's own safe-mode vector (tests/fixtures/crypto/safe_mode_click.json), made with
    /// the openssl CLI from the documented layout, so our code meets an answer it did not compute.
    #[test]
    fn the_project_vector_decrypts_and_reencrypts_exactly() {
        let v: serde_json::Value = serde_json::from_str(&project_fixture("crypto/safe_mode_click.json")).unwrap();
        let s = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k}"));
        let crypt = MsgCrypt::new(s("encoding_aes_key"), s("appid")).unwrap();
        let (msg, receiver) = crypt.decrypt_with_receiver(s("encrypt")).unwrap();
        assert_eq!(msg, s("msg").as_bytes());
        assert_eq!(receiver, s("appid").as_bytes());
        let random: [u8; RANDOM_LEN] = s("random").as_bytes().try_into().unwrap();
        assert_eq!(crypt.encrypt_with_random(s("msg").as_bytes(), &random), s("encrypt"));
        let sealed = crypt.seal_with_random(s("token"), s("msg").as_bytes(), &random, s("timestamp"), s("nonce"));
        assert!(sealed.contains(&format!("<MsgSignature><![CDATA[{}]]></MsgSignature>", s("msg_signature"))));
        let other = MsgCrypt::new(s("encoding_aes_key"), "wx0000000000000000").unwrap();
        assert_eq!(other.decrypt(s("encrypt")), Err(CryptoError::AppIdMismatch));
    }

    #[test]
    fn every_fixture_vector_decrypts_or_reencrypts_exactly() {
        let Some(text) = read_shared("fixtures/crypto.json") else { return };
        let fixtures: Fixtures = serde_json::from_str(&text).unwrap();
        let (mut decrypted, mut encrypted) = (0, 0);
        for v in &fixtures.vectors {
            let (t, ts, n) = (v.token.as_str(), v.timestamp.as_str(), v.nonce.as_str());
            match v.kind.as_str() {
                "decrypt" => {
                    decrypted += 1;
                    let encrypt = v.encrypt.as_deref().unwrap();
                    let sig = v.msg_signature.as_deref().unwrap();
                    assert!(verify_msg(t, ts, n, encrypt, sig), "{}", v.id);
                    if let Some(sig) = &v.signature {
                        assert!(verify(t, ts, n, sig), "{}", v.id);
                    }
                    let msg = fixture_crypt(v).decrypt(encrypt).unwrap();
                    assert_eq!(msg, v.expected_plaintext.as_deref().unwrap().as_bytes());
                    if let Some(sizes) = &v.expected_sizes {
                        let cipher_len = STANDARD.decode(encrypt).unwrap().len();
                        assert_eq!(cipher_len, sizes["decoded_ciphertext_bytes"], "{}", v.id);
                        assert_eq!(msg.len(), sizes["msg_len"], "{}", v.id);
                    }
                    if let Some(file) = &v.request_body_file {
                        let body = read_shared(&format!("fixtures/{file}")).expect("../shared was found above");
                        assert!(body.contains(encrypt), "{}: body carries Encrypt", v.id);
                    }
                }
                "encrypt_fixed_random" => {
                    encrypted += 1;
                    let crypt = fixture_crypt(v);
                    let random: [u8; 16] = v.random.as_deref().unwrap().as_bytes().try_into().unwrap();
                    let msg = v.plaintext.as_deref().unwrap().as_bytes();
                    let expected = v.expected_encrypt.as_deref().unwrap();
                    let sig = v.expected_msg_signature.as_deref().unwrap();

                    let encrypt = crypt.encrypt_with_random(msg, &random);

                    assert_eq!(encrypt, expected, "{}", v.id);
                    assert_eq!(sign(&[t, ts, n, &encrypt]), sig, "{}", v.id);
                    assert_eq!(crypt.decrypt(&encrypt).unwrap(), msg);
                    let envelope = crypt.seal_with_random(t, msg, &random, ts, n);
                    assert_eq!(
                        envelope,
                        format!(
                            "<xml>\n<Encrypt><![CDATA[{expected}]]></Encrypt>\n\
                             <MsgSignature><![CDATA[{sig}]]></MsgSignature>\n\
                             <TimeStamp>{ts}</TimeStamp>\n<Nonce><![CDATA[{n}]]></Nonce>\n</xml>"
                        )
                    );
                }
                "signature" => {} // signature.rs runs it
                other => panic!("{}: unknown kind {other}", v.id),
            }
        }
        assert_eq!((decrypted, encrypted), (2, 1), "fixture vectors run");
    }

    #[test]
    fn every_peer_crypto_vector_behaves_as_documented() {
        let Some(text) = read_shared("peer-vectors/crypto.jsonl") else { return };
        let mut ran: BTreeMap<String, usize> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Peer = serde_json::from_str(line).unwrap();
            *ran.entry(v.kind.clone()).or_default() += 1;
            let crypt = v.crypt();
            match v.kind.as_str() {
                "decrypt" | "verify_url_echostr" => {
                    v.assert_signatures_ok();
                    assert_eq!(crypt.decrypt(&v.encrypt).unwrap(), v.plaintext(), "{}", v.id);
                    let (_, receiver) = crypt.decrypt_with_receiver(&v.encrypt).unwrap();
                    assert_eq!(receiver, v.appid.as_bytes(), "{}", v.id);
                    if let Some(other) = &v.configured_appid_in_test {
                        let wrong = MsgCrypt::new(&v.encoding_aes_key, other).unwrap();
                        assert_eq!(wrong.decrypt(&v.encrypt), Err(CryptoError::AppIdMismatch));
                    }
                }
                "encrypt_fixed_random" => {
                    v.assert_signatures_ok();
                    let encrypt = crypt.encrypt_with_random(v.plaintext(), &v.random());
                    assert_eq!(encrypt, v.encrypt, "{}", v.id);
                    assert_eq!(crypt.decrypt(&v.encrypt).unwrap(), v.plaintext(), "{}", v.id);
                    if let Some(template) = &v.expected_reply_envelope {
                        let (t, ts, n) = v.query().unwrap();
                        let envelope = crypt.seal_with_random(t, v.plaintext(), &v.random(), ts, n);
                        assert_eq!(envelope, template.replace("{encrypt}", &v.encrypt));
                    }
                }
                "encrypt_fixed_random_block16_padding" => {
                    v.assert_signatures_ok();
                    let ours = crypt.encrypt_with_random(v.plaintext(), &v.random());
                    assert_ne!(ours, v.encrypt, "{}: we pad to 32, not 16", v.id);
                    assert_eq!(crypt.decrypt(&v.encrypt).unwrap(), v.plaintext(), "{}", v.id);
                    assert_eq!(crypt.decrypt(&ours).unwrap(), v.plaintext(), "{}", v.id);
                }
                "decrypt_nonconformant" => {
                    // Policy (see `MsgCrypt::decrypt`): EasyWeChat 3.x double padding is refused.
                    v.assert_signatures_ok();
                    assert_eq!(crypt.decrypt(&v.encrypt), Err(CryptoError::AppIdMismatch));
                    let (msg, receiver) = crypt.decrypt_with_receiver(&v.encrypt).unwrap();
                    assert_eq!(msg, v.plaintext(), "{}", v.id);
                    assert_eq!(receiver, [v.appid.as_bytes(), b"\x03\x03\x03"].concat());
                }
                "negative_signature" => {
                    assert_eq!(v.msg_signature_ok(), Some(false), "{}", v.id);
                    // The ciphertext itself is fine: only the signature makes it a reject.
                    assert!(crypt.decrypt(&v.encrypt).is_ok(), "{}", v.id);
                }
                "negative_appid" => {
                    assert_eq!(v.msg_signature_ok(), Some(true), "{}", v.id);
                    assert_eq!(crypt.decrypt(&v.encrypt), Err(CryptoError::AppIdMismatch), "{}", v.id);
                }
                "negative_inconsistent_source" => {
                    assert_eq!(v.msg_signature_ok(), Some(false), "{}", v.id);
                    let (t, ts, n) = v.query().unwrap();
                    let sig = v.msg_signature.as_deref().unwrap();
                    assert!(verify(t, ts, n, sig), "{}: it is the 3-part signature", v.id);
                    assert!(crypt.decrypt(&v.encrypt).is_err(), "{}: wrong key", v.id);
                }
                other => panic!("{}: unknown kind {other}", v.id),
            }
        }
        let expected: BTreeMap<String, usize> = [
            ("decrypt", 18),
            ("verify_url_echostr", 4),
            ("encrypt_fixed_random", 5),
            ("encrypt_fixed_random_block16_padding", 1),
            ("decrypt_nonconformant", 1),
            ("negative_signature", 2),
            ("negative_appid", 1),
            ("negative_inconsistent_source", 1),
        ]
        .into_iter()
        .map(|(k, n)| (k.to_owned(), n))
        .collect();
        assert_eq!(ran, expected, "vectors run per kind");
        assert_eq!(ran.values().sum::<usize>(), 33, "every line of crypto.jsonl ran");
    }

    #[test]
    fn keys_differing_only_in_ignored_bits_are_the_same_key() {
        let a = MsgCrypt::new("kdjCGGJKSRjjhESfPO5lTSWtYS0v5pQX47skCkZczio", "x").unwrap();
        let b = MsgCrypt::new("kdjCGGJKSRjjhESfPO5lTSWtYS0v5pQX47skCkZczip", "x").unwrap();
        let random = [b'r'; 16];
        assert_eq!(a.encrypt_with_random(b"hi", &random), b.encrypt_with_random(b"hi", &random));
    }

    #[test]
    fn keys_that_are_not_43_base64_characters_are_illegal() {
        for key in [
            "",
            &ABC_KEY[..42],
            &format!("{ABC_KEY}A"),
            &format!("{ABC_KEY}="),
            &format!("{}=", &ABC_KEY[..42]),
            &format!("{}-", &ABC_KEY[..42]),
            &format!("{}é", &ABC_KEY[..41]), // 43 bytes, not the alphabet
        ] {
            assert_eq!(MsgCrypt::new(key, APPID).unwrap_err(), CryptoError::IllegalAesKey, "{key:?}");
        }
        assert!(MsgCrypt::new(&format!("+/{}", &ABC_KEY[2..]), APPID).is_ok());
    }

    #[test]
    fn text_that_is_not_standard_base64_is_a_base64_error() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let valid = crypt.encrypt(b"hello");
        for bad in [
            "not base64!",
            valid.trim_end_matches('='), // padding is required
            &valid.replace('+', "-"),    // URL-safe alphabet
            &format!(" {valid}"),        // whitespace is not trimmed here
            &format!("{valid}\n"),
            "QUJDRA=",  // wrong padding
            "QUJDRB==", // non-zero trailing bits
        ] {
            if bad == valid {
                continue; // e.g. no '+' to replace
            }
            assert!(matches!(crypt.decrypt(bad), Err(CryptoError::Base64(_))), "{bad:?}");
        }
    }

    #[test]
    fn ciphertext_that_is_not_whole_blocks_is_a_cipher_length_error() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        for len in [0, 1, 15, 17, 31, 33] {
            let text = STANDARD.encode(vec![7u8; len]);
            assert_eq!(crypt.decrypt(&text), Err(CryptoError::CipherLength), "{len}");
        }
    }

    #[test]
    fn malformed_padding_is_a_padding_error() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let id = APPID.as_bytes();
        // 20 + 2 + 18 = 40 bytes of layout; 8 more make 48 = 3 blocks.
        for (what, pad, value) in [
            ("pad byte 0", 8, 0u8),
            ("pad byte 33", 8, 33),
            ("pad byte 255", 8, 255),
            ("count 17 but only 8 pad bytes", 8, 17),
        ] {
            let broken = encrypt_raw(&crypt, &layout(2, b"hi", id, pad, value));
            assert_eq!(crypt.decrypt(&broken), Err(CryptoError::Padding), "{what}");
        }
        let mut inconsistent = layout(2, b"hi", id, 8, 8);
        inconsistent[43] = 7; // one pad byte disagrees with the count
        let broken = encrypt_raw(&crypt, &inconsistent);
        assert_eq!(crypt.decrypt(&broken), Err(CryptoError::Padding));

        let whole = encrypt_raw(&crypt, &[32u8; 16]); // claims 32 pad bytes, has 16
        assert_eq!(crypt.decrypt(&whole), Err(CryptoError::Padding));
    }

    #[test]
    fn a_length_prefix_past_the_data_is_a_length_error() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let id = APPID.as_bytes();
        for claimed in [2 + id.len() as u32 + 1, 1 << 20, u32::MAX] {
            let broken = encrypt_raw(&crypt, &layout(claimed, b"hi", id, 8, 8));
            assert_eq!(crypt.decrypt(&broken), Err(CryptoError::Length), "{claimed}");
        }
        // Valid padding but shorter than the 20-byte header.
        let short = encrypt_raw(&crypt, &[[b'x'; 4].as_slice(), &[28u8; 28]].concat());
        assert_eq!(crypt.decrypt(&short), Err(CryptoError::Length));
        // msg_len equal to all remaining bytes: empty receive id, which is a mismatch for us.
        let all = encrypt_raw(&crypt, &layout(2 + id.len() as u32, b"hi", id, 8, 8));
        assert_eq!(crypt.decrypt(&all), Err(CryptoError::AppIdMismatch));
        assert_eq!(crypt.decrypt_with_receiver(&all).unwrap(), ([b"hi".as_slice(), id].concat(), Vec::new()));
    }

    #[test]
    fn a_message_for_another_appid_is_rejected() {
        let ours = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let theirs = MsgCrypt::new(ABC_KEY, "wx_someone_else").unwrap();
        let encrypt = theirs.encrypt(b"<xml/>");
        assert_eq!(ours.decrypt(&encrypt), Err(CryptoError::AppIdMismatch));
        assert_eq!(ours.decrypt_with_receiver(&encrypt).unwrap(), (b"<xml/>".to_vec(), b"wx_someone_else".to_vec()));
    }

    #[test]
    fn padding_is_always_to_a_multiple_of_32_and_never_empty() {
        let crypt = MsgCrypt::new(ABC_KEY, "").unwrap();
        for len in 0..=70 {
            let cipher = STANDARD.decode(crypt.encrypt(&vec![b'm'; len])).unwrap();
            let unpadded = HEADER_LEN + len;
            let expected = unpadded + (PAD_BLOCK - unpadded % PAD_BLOCK);
            assert_eq!(cipher.len(), expected, "{len}");
        }
    }

    #[test]
    fn random_prefixes_are_alphanumeric_and_differ() {
        let (a, b) = (random_prefix(), random_prefix());
        assert!(a.iter().chain(&b).all(u8::is_ascii_alphanumeric));
        assert_ne!(a, b);
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        assert_ne!(crypt.encrypt(b"same"), crypt.encrypt(b"same"));
    }

    #[test]
    fn sealed_reply_verifies_and_decrypts() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let xml = crypt.seal("spamtest", "回复".as_bytes(), "1409735669", "1320562132");
        let field = |open: &str, close: &str| {
            let start = xml.find(open).unwrap() + open.len();
            let end = start + xml[start..].find(close).unwrap();
            xml[start..end].to_owned()
        };
        let encrypt = field("<Encrypt><![CDATA[", "]]></Encrypt>");
        let sig = field("<MsgSignature><![CDATA[", "]]></MsgSignature>");
        assert_eq!(field("<TimeStamp>", "</TimeStamp>"), "1409735669");
        assert_eq!(field("<Nonce><![CDATA[", "]]></Nonce>"), "1320562132");
        assert!(verify_msg("spamtest", "1409735669", "1320562132", &encrypt, &sig));
        assert_eq!(crypt.decrypt(&encrypt).unwrap(), "回复".as_bytes());
    }

    #[test]
    fn sealed_reply_escapes_odd_timestamp_and_nonce() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let xml = crypt.seal("t", b"m", "1<2&", "a]]>b");
        assert!(xml.contains("<TimeStamp>1&lt;2&amp;</TimeStamp>"), "{xml}");
        assert!(xml.contains("<Nonce><![CDATA[a]]]]><![CDATA[>b]]></Nonce>"), "{xml}");
    }

    #[test]
    fn debug_shows_the_appid_and_no_key_material() {
        let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
        let shown = format!("{crypt:?}");
        assert_eq!(shown, format!("MsgCrypt {{ appid: {APPID:?}, .. }}"));
        assert_eq!(crypt.appid(), APPID);
    }

    fn any_key() -> impl Strategy<Value = String> {
        "[A-Za-z0-9+/]{43}"
    }

    fn any_appid() -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..=0x7f, 0..40).prop_map(|bytes| bytes.into_iter().map(char::from).collect())
    }

    proptest! {
        #[test]
        fn encrypt_then_decrypt_round_trips(
            key in any_key(),
            appid in any_appid(),
            msg in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let crypt = MsgCrypt::new(&key, &appid).unwrap();
            let encrypt = crypt.encrypt(&msg);
            prop_assert_eq!(crypt.decrypt(&encrypt).unwrap(), msg.clone());
            let (back, receiver) = crypt.decrypt_with_receiver(&encrypt).unwrap();
            prop_assert_eq!(back, msg);
            prop_assert_eq!(receiver, appid.as_bytes());
        }

        #[test]
        fn decrypt_with_another_appid_fails(
            key in any_key(),
            appid in any_appid(),
            other in any_appid(),
            msg in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            prop_assume!(appid != other);
            let encrypt = MsgCrypt::new(&key, &appid).unwrap().encrypt(&msg);
            let wrong = MsgCrypt::new(&key, &other).unwrap();
            prop_assert_eq!(wrong.decrypt(&encrypt), Err(CryptoError::AppIdMismatch));
        }

        #[test]
        fn decrypt_never_panics_on_arbitrary_text(text in ".{0,200}") {
            let _ = MsgCrypt::new(ABC_KEY, APPID).unwrap().decrypt(&text);
        }

        #[test]
        fn decrypt_never_panics_on_arbitrary_ciphertext(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let crypt = MsgCrypt::new(ABC_KEY, APPID).unwrap();
            let _ = crypt.decrypt(&STANDARD.encode(&bytes));
            let _ = crypt.decrypt_with_receiver(&STANDARD.encode(&bytes));
        }

        #[test]
        fn new_never_panics(key in ".{0,60}", appid in ".{0,10}") {
            let _ = MsgCrypt::new(&key, &appid);
        }
    }
}
