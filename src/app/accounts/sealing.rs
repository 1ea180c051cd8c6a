//! Account secrets at rest: AES-256-GCM under the deployment key `TAGCAST_SECRET_KEY`, each value
//! bound to its account and field (the associated data), so a sealed AppSecret copied into another
//! row or column does not open. Keys are named by a fingerprint; after a rotation the previous key
//! (`TAGCAST_SECRET_KEY_PREVIOUS`) still opens what it sealed until every row is resealed.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use blake2::{Blake2b, Digest, digest::consts::U8};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::account::AccountId;

const NONCE_LEN: usize = 12;

/// Why a key or a sealed value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingError {
    #[error("not a key: give 32 bytes as 64 hex digits or 44 characters of base64 (`openssl rand -base64 32`)")]
    BadKey,
    #[error("sealed with a key this instance does not have (fingerprint {0}); set it as TAGCAST_SECRET_KEY_PREVIOUS")]
    UnknownKey(String),
    #[error("a sealed secret does not open: the key is wrong or the value was changed")]
    Corrupt,
}

/// Which secret of an account a value is; part of what the seal covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretField {
    AppSecret,
    Token,
    AesKey,
}

impl SecretField {
    fn as_str(self) -> &'static str {
        match self {
            Self::AppSecret => "app_secret",
            Self::Token => "token",
            Self::AesKey => "encoding_aes_key",
        }
    }
}

struct Key {
    fingerprint: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn parse(text: &str) -> Result<Self, SealingError> {
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).map_err(|_| SealingError::BadKey)?
        } else {
            base64::engine::general_purpose::STANDARD.decode(text).map_err(|_| SealingError::BadKey)?
        };
        if bytes.len() != 32 {
            return Err(SealingError::BadKey);
        }
        let fingerprint = hex::encode(Blake2b::<U8>::digest(&bytes));
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| SealingError::BadKey)?;
        Ok(Self { fingerprint, cipher })
    }
}

/// Seals with the current key; opens with the current or a previous one.
pub struct Sealer {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("current", &self.current.fingerprint).finish_non_exhaustive()
    }
}

fn associated_data(account: AccountId, field: SecretField) -> String {
    format!("tagcast account {} {}", account.get(), field.as_str())
}

impl Sealer {
    /// `current` is `TAGCAST_SECRET_KEY`; `previous` the comma-separated `TAGCAST_SECRET_KEY_PREVIOUS`.
    ///
    /// # Errors
    /// A key that is not 32 bytes of hex or base64.
    pub fn new(current: &SecretString, previous: Option<&SecretString>) -> Result<Self, SealingError> {
        let current = Key::parse(current.expose_secret())?;
        let previous = match previous {
            Some(list) => list
                .expose_secret()
                .split(',')
                .filter(|k| !k.trim().is_empty())
                .map(Key::parse)
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(Self { current, previous })
    }

    /// The current key's fingerprint, stored beside what it sealed.
    pub fn fingerprint(&self) -> &str {
        &self.current.fingerprint
    }

    pub fn seal(&self, account: AccountId, field: SecretField, plaintext: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = associated_data(account, field);
        let sealed = self
            .current
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext.as_bytes(), aad: aad.as_bytes() })
            .expect("AES-GCM encrypts any input under 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a value sealed by the key named `sealed_with`.
    ///
    /// # Errors
    /// The key is unknown here, or the value does not open (wrong key, edited bytes, another row's value).
    pub fn open(
        &self,
        account: AccountId,
        field: SecretField,
        sealed: &[u8],
        sealed_with: &str,
    ) -> Result<SecretString, SealingError> {
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.fingerprint == sealed_with)
            .ok_or_else(|| SealingError::UnknownKey(sealed_with.to_owned()))?;
        if sealed.len() < NONCE_LEN {
            return Err(SealingError::Corrupt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(account, field);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: body, aad: aad.as_bytes() })
            .map_err(|_| SealingError::Corrupt)?;
        String::from_utf8(plain).map(SecretString::from).map_err(|_| SealingError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(hex::encode([byte; 32]))
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account_and_field() {
        let sealer = Sealer::new(&key(1), None).expect("key");
        let sealed = sealer.seal(AccountId(2), SecretField::AppSecret, "s3cret");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"), "the plaintext is not in the sealed bytes");
        let fp = sealer.fingerprint().to_owned();
        let opened = sealer.open(AccountId(2), SecretField::AppSecret, &sealed, &fp).expect("opens");
        assert_eq!(opened.expose_secret(), "s3cret");
        assert_eq!(sealer.open(AccountId(3), SecretField::AppSecret, &sealed, &fp).unwrap_err(), SealingError::Corrupt);
        assert_eq!(sealer.open(AccountId(2), SecretField::Token, &sealed, &fp).unwrap_err(), SealingError::Corrupt);
        let mut edited = sealed.clone();
        *edited.last_mut().expect("non-empty") ^= 1;
        assert_eq!(sealer.open(AccountId(2), SecretField::AppSecret, &edited, &fp).unwrap_err(), SealingError::Corrupt);
    }

    #[test]
    fn after_a_rotation_the_previous_key_still_opens_what_it_sealed() {
        let old = Sealer::new(&key(1), None).expect("key");
        let sealed = old.seal(AccountId(1), SecretField::Token, "tok");
        let rotated = Sealer::new(&key(2), Some(&key(1))).expect("keys");
        assert_ne!(rotated.fingerprint(), old.fingerprint());
        let opened = rotated.open(AccountId(1), SecretField::Token, &sealed, old.fingerprint()).expect("opens");
        assert_eq!(opened.expose_secret(), "tok");
        let without = Sealer::new(&key(2), None).expect("key");
        assert!(matches!(
            without.open(AccountId(1), SecretField::Token, &sealed, old.fingerprint()),
            Err(SealingError::UnknownKey(_))
        ));
    }

    #[test]
    fn keys_must_be_32_bytes_of_hex_or_base64() {
        assert!(Sealer::new(&SecretString::from("short".to_owned()), None).is_err());
        let b64 = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        assert!(Sealer::new(&b64, None).is_ok());
        assert!(Sealer::new(&key(1), Some(&SecretString::from("nope".to_owned()))).is_err());
    }
}
