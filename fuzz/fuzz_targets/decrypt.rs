//! The safe-mode decrypt path (`MsgCrypt::decrypt`) against an independent model of
//! wechat-api.md §2: `AES-256-CBC(IV = key[..16])`, PKCS#7 with pad `1..=32`,
//! `random(16) | u32_be(len) | msg | receive_id`.
//!
//! The first byte picks one of a few fixed keys (low 2 bits) and a mode (next 2 bits); the rest
//! is, by mode, the `<Encrypt>` text, the raw ciphertext, the *decrypted* plaintext (encrypted
//! here without padding, so the fuzzer steers the padding, length prefix and receive id
//! directly), or a message for an encrypt → decrypt round trip.

#![no_main]

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use libfuzzer_sys::fuzz_target;
use tagcast::wechat::crypto::{CryptoError, MsgCrypt};
use tagcast::wechat::message::{flatten, parse_envelope};
use tagcast::wechat::signature::verify_msg;

/// `(EncodingAESKey, appid)`: the official MP sample, an empty receive id (WeCom bots), the
/// docs' example, and a key whose 43rd character sets the 2 ignored bits.
const ACCOUNTS: [(&str, &str); 4] = [
    ("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2"),
    ("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", ""),
    ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "wxba5fad812f8e6fb9"),
    ("kdjCGGJKSRjjhESfPO5lTSWtYS0v5pQX47skCkZczip", "wxce775970ff046a47"),
];

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn key_bytes(encoding_aes_key: &str) -> [u8; 32] {
    let key = LENIENT.decode(encoding_aes_key).expect("fixed keys are valid base64");
    key.try_into().expect("fixed keys decode to 32 bytes")
}

/// What `decrypt` must answer for `cipher` (the base64-decoded `<Encrypt>`), computed from the
/// spec rather than from crypto.rs.
fn model(key: &[u8; 32], appid: &str, cipher: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if cipher.is_empty() || !cipher.len().is_multiple_of(16) {
        return Err(CryptoError::CipherLength);
    }
    let mut plain = cipher.to_vec();
    cbc::Decryptor::<Aes256>::new(key.into(), key[..16].into())
        .decrypt_padded_mut::<NoPadding>(&mut plain)
        .expect("whole blocks");
    let pad = usize::from(*plain.last().expect("non-empty"));
    // A 16-byte ciphertext can claim a pad of 17..=32: more than there is.
    if !(1..=32).contains(&pad)
        || pad > plain.len()
        || plain[plain.len() - pad..].iter().any(|&b| usize::from(b) != pad)
    {
        return Err(CryptoError::Padding);
    }
    plain.truncate(plain.len() - pad);
    if plain.len() < 20 {
        return Err(CryptoError::Length);
    }
    let len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]) as usize;
    if len > plain.len() - 20 {
        return Err(CryptoError::Length);
    }
    if &plain[20 + len..] != appid.as_bytes() {
        return Err(CryptoError::AppIdMismatch);
    }
    Ok(plain[20..20 + len].to_vec())
}

/// `decrypt` and `decrypt_with_receiver` must agree with each other and with the model.
fn check(crypt: &MsgCrypt, key: &[u8; 32], appid: &str, text: &str) {
    let got = crypt.decrypt(text);
    let expected = match STANDARD.decode(text) {
        Ok(cipher) => model(key, appid, &cipher),
        Err(err) => Err(CryptoError::Base64(err)),
    };
    assert_eq!(got, expected, "decrypt({text:?})");
    match (crypt.decrypt_with_receiver(text), &got) {
        (Ok((msg, receiver)), Ok(want)) => {
            assert_eq!(&msg, want);
            assert_eq!(receiver, appid.as_bytes());
        }
        (Ok((_, receiver)), Err(CryptoError::AppIdMismatch)) => assert_ne!(receiver, appid.as_bytes()),
        (Err(err), Err(want)) => assert_eq!(&err, want),
        (other, want) => panic!("decrypt_with_receiver {other:?} vs decrypt {want:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let (encoding_aes_key, appid) = ACCOUNTS[usize::from(choice & 3)];
    let crypt = MsgCrypt::new(encoding_aes_key, appid).expect("fixed keys are valid");
    let key = key_bytes(encoding_aes_key);
    match (choice >> 2) & 3 {
        // The `<Encrypt>` text as received.
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                check(&crypt, &key, appid, text);
            }
        }
        // Arbitrary ciphertext, canonically encoded.
        1 => check(&crypt, &key, appid, &STANDARD.encode(rest)),
        // Arbitrary *plaintext* (cut to whole blocks), encrypted without padding.
        2 => {
            let mut buf = rest[..rest.len() / 16 * 16].to_vec();
            let len = buf.len();
            cbc::Encryptor::<Aes256>::new((&key).into(), key[..16].into())
                .encrypt_padded_mut::<NoPadding>(&mut buf, len)
                .expect("whole blocks");
            check(&crypt, &key, appid, &STANDARD.encode(&buf));
        }
        // Structured: whatever we encrypt or seal must come back unchanged, for us only.
        _ => {
            let encrypt = crypt.encrypt(rest);
            assert_eq!(crypt.decrypt(&encrypt).as_deref(), Ok(rest));
            check(&crypt, &key, appid, &encrypt);
            let other = MsgCrypt::new(encoding_aes_key, &format!("{appid}x")).expect("same key");
            assert_eq!(other.decrypt(&encrypt), Err(CryptoError::AppIdMismatch));

            let fixed = crypt.encrypt_with_random(rest, b"0123456789abcdef");
            assert_eq!(fixed, crypt.encrypt_with_random(rest, b"0123456789abcdef"));
            assert_eq!(crypt.decrypt(&fixed).as_deref(), Ok(rest));

            let nonce = String::from_utf8_lossy(&rest[..rest.len().min(12)]);
            let sealed = crypt.seal("token", rest, "1700000000", &nonce);
            let envelope = parse_envelope(&sealed).unwrap_or_else(|err| panic!("{sealed:?}: {err:?}"));
            let encrypt = envelope.encrypt.expect("a sealed reply carries Encrypt");
            assert_eq!(crypt.decrypt(&encrypt).as_deref(), Ok(rest));
            // The envelope carries the nonce unchanged and a msg_signature over what it holds.
            let fields = flatten(&sealed).unwrap_or_else(|err| panic!("{sealed:?}: {err:?}"));
            let field = |name: &str| fields.iter().find(|(path, _)| path == name).map(|(_, v)| v.as_str());
            assert_eq!(field("Nonce"), Some(&*nonce), "{sealed:?}");
            let signature = field("MsgSignature").expect("a sealed reply carries MsgSignature");
            assert!(verify_msg("token", "1700000000", &nonce, &encrypt, signature), "{sealed:?}");
        }
    }
});
