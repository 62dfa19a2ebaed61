//! Secrets that never print and are wiped from memory when dropped.

use std::fmt;

use base64::Engine as _;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{ConnectorError, ErrorCode, Result};

/// A secret string: `Debug` and `Display` print `[REDACTED]`; zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(Zeroizing::new(s.into()))
    }

    /// The secret itself: call only where it is handed to the SDK or a cipher.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Name of the environment variable holding the master key (base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "DYNAMO_CONNECTOR_MASTER_KEY";

/// The 256-bit key that encrypts stored credentials.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(rand::random())
    }

    /// Parses base64 (standard or URL-safe, padding optional) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            ConnectorError::new(
                ErrorCode::CredentialsUnreadable,
                format!("master key {why}: it must be base64 of exactly 32 bytes"),
            )
        };
        let t = text.trim();
        let mut bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| {
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.trim_end_matches('='))
                })
                .map_err(|_| bad("is not base64"))?,
        );
        if bytes.len() != 32 {
            let n = bytes.len();
            bytes.zeroize();
            return Err(bad(&format!("has {n} bytes")));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Ok(Self::from_bytes(key))
    }

    /// Reads the key from `file` if given, else from [`MASTER_KEY_ENV`].
    pub fn load(file: Option<&std::path::Path>) -> Result<Self> {
        match file {
            Some(path) => {
                let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
                    ConnectorError::new(
                        ErrorCode::CredentialsUnreadable,
                        format!("cannot read master key file {}: {e}", path.display()),
                    )
                })?);
                Self::from_base64(&text)
            }
            None => {
                let text = Zeroizing::new(std::env::var(MASTER_KEY_ENV).map_err(|_| {
                    ConnectorError::new(
                        ErrorCode::CredentialsUnreadable,
                        format!("no master key: set {MASTER_KEY_ENV} or pass --master-key-file"),
                    )
                })?);
                Self::from_base64(&text)
            }
        }
    }

    /// Base64 text of the key (for writing a new key file).
    pub fn to_base64(&self) -> Secret {
        Secret::new(base64::engine::general_purpose::STANDARD.encode(self.0.as_ref()))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[REDACTED] [REDACTED]");
        assert_eq!(s.expose(), "hunter2");
        let k = MasterKey::generate();
        assert!(!format!("{k:?}").contains(k.to_base64().expose()));
    }

    #[test]
    fn master_key_parsing() {
        let k = MasterKey::generate();
        let text = k.to_base64();
        assert_eq!(
            MasterKey::from_base64(text.expose())
                .expect("valid")
                .bytes(),
            k.bytes()
        );
        let err = MasterKey::from_base64("c2hvcnQ=").expect_err("too short");
        assert!(err.message.contains("5 bytes"), "{err}");
        assert!(MasterKey::from_base64("not base64!!").is_err());
    }
}
