//! The callback's message mode, as the account's console sets it.

use std::str::FromStr;

/// How WeChat delivers pushes (`WECHAT_MESSAGE_MODE`), as chosen in the account's console
/// (明文 / 兼容 / 安全模式).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageMode {
    /// 明文模式: plaintext pushes. Their signature covers only timestamp and nonce, so each
    /// signature is accepted once (see the callback). Encrypted pushes are accepted too when a key is
    /// set, so switching the console to safe mode before the server loses nothing.
    Plain,
    /// 兼容模式: WeChat sends the plaintext fields and `<Encrypt>` in one body with
    /// `encrypt_type=aes`; only the ciphertext is signed, so only it is read.
    Compat,
    /// 安全模式: only encrypted pushes under a valid `msg_signature` are accepted.
    Safe,
}

impl MessageMode {
    /// Whether a push must arrive encrypted under a valid `msg_signature`.
    pub fn requires_encryption(self) -> bool {
        matches!(self, Self::Compat | Self::Safe)
    }
}

/// A value that names no [`MessageMode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected `plain`, `compat` or `safe`, got `{got}`")]
pub struct UnknownMessageMode {
    pub got: String,
}

impl FromStr for MessageMode {
    type Err = UnknownMessageMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "plain" => Ok(Self::Plain),
            "compat" => Ok(Self::Compat),
            "safe" => Ok(Self::Safe),
            other => Err(UnknownMessageMode { got: other.to_owned() }),
        }
    }
}

impl MessageMode {
    /// The name stored and accepted by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Compat => "compat",
            Self::Safe => "safe",
        }
    }
}
