//! AES-256-GCM for stored credentials: a fresh random nonce per write, and the
//! client id and service bound as associated data, so a ciphertext moved to
//! another client or service fails to decrypt.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::error::{ConnectorError, ErrorCode, Result};
use crate::secret::MasterKey;

/// Nonce length of AES-GCM.
pub const NONCE_LEN: usize = 12;

/// An encrypted value as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// Random per encryption.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext with its authentication tag.
    pub ciphertext: Vec<u8>,
}

fn associated_data(client_id: &str, service: &str) -> Vec<u8> {
    // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
    let mut aad = Vec::with_capacity(client_id.len() + service.len() + 16);
    aad.extend_from_slice(b"dynamo-connector/v1\0");
    aad.extend_from_slice(&(client_id.len() as u64).to_be_bytes());
    aad.extend_from_slice(client_id.as_bytes());
    aad.extend_from_slice(service.as_bytes());
    aad
}

/// Encrypts `plaintext` for `client_id`'s `service`.
pub fn seal(key: &MasterKey, client_id: &str, service: &str, plaintext: &[u8]) -> Result<Sealed> {
    let cipher = Aes256Gcm::new_from_slice(key.bytes())
        .map_err(|_| ConnectorError::internal("master key has the wrong length"))?;
    let nonce: [u8; NONCE_LEN] = rand::random();
    let aad = associated_data(client_id, service);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| ConnectorError::internal("encryption failed"))?;
    Ok(Sealed { nonce, ciphertext })
}

/// Decrypts what [`seal`] wrote for the same client and service with the same key.
pub fn open(
    key: &MasterKey,
    client_id: &str,
    service: &str,
    sealed: &Sealed,
) -> Result<Zeroizing<Vec<u8>>> {
    let cipher = Aes256Gcm::new_from_slice(key.bytes())
        .map_err(|_| ConnectorError::internal("master key has the wrong length"))?;
    let aad = associated_data(client_id, service);
    cipher
        .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.ciphertext, aad: &aad })
        .map(Zeroizing::new)
        .map_err(|_| {
            ConnectorError::new(
                ErrorCode::CredentialsUnreadable,
                format!(
                    "stored credentials of client '{client_id}' cannot be decrypted: the master key \
                     is wrong or the stored value was altered; set them again with \
                     `dynamo-connector admin credentials set {client_id}`"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let key = MasterKey::generate();
        let a = seal(&key, "acme", "dynamodb", b"secret").expect("seal");
        let b = seal(&key, "acme", "dynamodb", b"secret").expect("seal");
        assert_ne!(a.nonce, b.nonce, "a fresh nonce per write");
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(
            open(&key, "acme", "dynamodb", &a).expect("open").as_slice(),
            b"secret"
        );
    }

    #[test]
    fn wrong_key_client_service_or_tampering_fail() {
        let key = MasterKey::generate();
        let sealed = seal(&key, "acme", "dynamodb", b"secret").expect("seal");
        let unreadable = |r: Result<Zeroizing<Vec<u8>>>| {
            matches!(
                r,
                Err(ConnectorError {
                    code: ErrorCode::CredentialsUnreadable,
                    ..
                })
            )
        };
        assert!(unreadable(open(
            &MasterKey::generate(),
            "acme",
            "dynamodb",
            &sealed
        )));
        assert!(
            unreadable(open(&key, "globex", "dynamodb", &sealed)),
            "moved to another client"
        );
        assert!(
            unreadable(open(&key, "acme", "s3", &sealed)),
            "moved to another service"
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(unreadable(open(&key, "acme", "dynamodb", &tampered)));
    }
}
