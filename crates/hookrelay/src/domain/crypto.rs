//! Webhook signing secrets at rest: AES-256-GCM under an operator key, each ciphertext
//! tagged with the id of the key that sealed it so keys can be rotated, and bound to its
//! webhook (the webhook id is the associated data) so a ciphertext moved to another row
//! does not open.
//!
//! Stored form: `enc:v1:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`. A value without the
//! `enc:` prefix is a plaintext secret from before encryption, read as is until
//! `hookrelay rotate-encryption-key` seals it.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload, rand_core::RngCore};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc:v1:";
const NONCE_LEN: usize = 12;
pub const KEY_LEN: usize = 32;

/// Why a stored secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("sealed with key {0}, which is not configured")]
    UnknownKey(String),
    #[error("ciphertext does not open with its key (tampered, or moved from another webhook)")]
    Corrupt,
}

/// Why an operator key's text is refused; it reads after the setting's name
/// (`HOOKRELAY_ENCRYPTION_KEY must be standard base64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadKey {
    #[error("must be standard base64")]
    NotBase64,
    #[error("must decode to {KEY_LEN} bytes (got {0})")]
    WrongLength(usize),
}

/// The operator keys: the first seals, all of them open.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(String, Aes256Gcm)>,
    /// Derived from the same keys, in the same order, for signing list cursors.
    cursor_keys: Vec<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// `primary` seals new secrets; `older` keys still open what they sealed.
    pub fn new(primary: &[u8; KEY_LEN], older: &[[u8; KEY_LEN]]) -> Self {
        let keys = std::iter::once(primary)
            .chain(older)
            .map(|key| (key_id(key), Aes256Gcm::new(key.into())))
            .collect();
        let cursor_keys = std::iter::once(primary)
            .chain(older)
            .map(|key| derive(key, CURSOR_LABEL))
            .collect();
        Keyring { keys, cursor_keys }
    }

    /// The key that signs list cursors. Derived from the operator keys, so it is the same
    /// after a restart (the SQLite key file, or `HOOKRELAY_ENCRYPTION_KEY`) and on every node
    /// sharing a PostgreSQL database (which requires that setting), yet never the sealing key
    /// itself. Older keys still verify what they signed.
    pub fn cursor_key(&self) -> super::cursor::CursorKey {
        super::cursor::CursorKey::new(self.cursor_keys.clone())
    }

    /// A key from its base64 form (as in `HOOKRELAY_ENCRYPTION_KEY`).
    pub fn decode_key(text: &str) -> Result<[u8; KEY_LEN], BadKey> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| BadKey::NotBase64)?;
        <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| BadKey::WrongLength(bytes.len()))
    }

    pub fn generate_key() -> [u8; KEY_LEN] {
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        key
    }

    pub fn encode_key(key: &[u8; KEY_LEN]) -> String {
        STANDARD.encode(key)
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id.as_str())
    }

    /// Seals `secret` for the webhook `webhook_id`.
    pub fn seal(&self, secret: &str, webhook_id: &str) -> String {
        let Some((id, cipher)) = self.keys.first() else {
            return secret.to_owned();
        };
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret.as_bytes(),
            aad: webhook_id.as_bytes(),
        };
        // Encryption with a valid key and nonce cannot fail for inputs of this size.
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        format!("{PREFIX}{id}:{}", STANDARD.encode(blob))
    }

    /// Opens a stored secret of the webhook `webhook_id`; plaintext (legacy) passes through.
    pub fn open(&self, stored: &str, webhook_id: &str) -> Result<String, CryptoError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, blob) = rest.split_once(':').ok_or(CryptoError::Corrupt)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(kid, _)| kid == id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        let blob = STANDARD.decode(blob).map_err(|_| CryptoError::Corrupt)?;
        if blob.len() < NONCE_LEN {
            return Err(CryptoError::Corrupt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let payload = Payload {
            msg: sealed,
            aad: webhook_id.as_bytes(),
        };
        let plain = cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| CryptoError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Corrupt)
    }

    /// Whether `stored` is sealed with the primary key (nothing to re-encrypt).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(id, _)| id == self.primary_id())
    }
}

const CURSOR_LABEL: &str = "hookrelay list cursor v1";

/// A key for another purpose, from an operator key: HMAC-SHA256(key, label). Knowing the
/// derived key tells nothing of the operator key.
fn derive(key: &[u8; KEY_LEN], label: &str) -> [u8; KEY_LEN] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A short public name for a key: the first 8 hex digits of its SHA-256.
fn key_id(key: &[u8; KEY_LEN]) -> String {
    Sha256::digest(key)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_bound_to_the_webhook() {
        let ring = Keyring::new(&[1; KEY_LEN], &[]);
        let sealed = ring.seal("whsec_abc", "wh_1");
        assert!(sealed.starts_with("enc:v1:"));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(ring.open(&sealed, "wh_1"), Ok("whsec_abc".into()));
        assert_eq!(ring.open(&sealed, "wh_2"), Err(CryptoError::Corrupt));
        assert_ne!(
            sealed,
            ring.seal("whsec_abc", "wh_1"),
            "a fresh nonce every time"
        );
    }

    #[test]
    fn old_keys_open_new_key_seals() {
        let old = Keyring::new(&[1; KEY_LEN], &[]);
        let sealed = old.seal("whsec_abc", "wh_1");
        let rotated = Keyring::new(&[2; KEY_LEN], &[[1; KEY_LEN]]);
        assert_eq!(rotated.open(&sealed, "wh_1"), Ok("whsec_abc".into()));
        assert!(!rotated.is_current(&sealed));
        assert!(rotated.is_current(&rotated.seal("whsec_abc", "wh_1")));
        let forgot = Keyring::new(&[2; KEY_LEN], &[]);
        assert!(matches!(
            forgot.open(&sealed, "wh_1"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn plaintext_passes_and_garbage_is_refused() {
        let ring = Keyring::new(&[1; KEY_LEN], &[]);
        assert_eq!(ring.open("whsec_legacy", "wh_1"), Ok("whsec_legacy".into()));
        let id = ring.primary_id().to_owned();
        for bad in [
            format!("enc:v1:{id}:!!"),
            format!("enc:v1:{id}:AAAA"),
            "enc:v1:nocolon".to_owned(),
        ] {
            assert!(ring.open(&bad, "wh_1").is_err(), "{bad}");
        }
    }

    #[test]
    fn cursor_keys_follow_the_operator_keys() {
        let ring = Keyring::new(&[1; KEY_LEN], &[]);
        let cursor = ring.cursor_key().encode("webhooks/ten_a", "wh_1");
        // The same key configured again (a restart, another node) verifies it.
        let again = Keyring::new(&[1; KEY_LEN], &[]);
        assert_eq!(
            again
                .cursor_key()
                .decode(&cursor, "webhooks/ten_a")
                .as_deref(),
            Some("wh_1")
        );
        // After a rotation the old key still verifies; without it, nothing does.
        let rotated = Keyring::new(&[2; KEY_LEN], &[[1; KEY_LEN]]);
        assert!(
            rotated
                .cursor_key()
                .decode(&cursor, "webhooks/ten_a")
                .is_some()
        );
        let other = Keyring::new(&[2; KEY_LEN], &[]);
        assert!(
            other
                .cursor_key()
                .decode(&cursor, "webhooks/ten_a")
                .is_none()
        );
        assert_ne!(derive(&[1; KEY_LEN], CURSOR_LABEL), [1; KEY_LEN]);
    }

    #[test]
    fn keys_decode_from_base64() {
        let key = Keyring::generate_key();
        assert_eq!(Keyring::decode_key(&Keyring::encode_key(&key)), Ok(key));
        assert_eq!(Keyring::decode_key("c2hvcnQ="), Err(BadKey::WrongLength(5)));
        assert_eq!(Keyring::decode_key("not base64!"), Err(BadKey::NotBase64));
        assert_eq!(
            BadKey::WrongLength(5).to_string(),
            "must decode to 32 bytes (got 5)"
        );
        assert!(!format!("{:?}", Keyring::new(&key, &[])).contains(&Keyring::encode_key(&key)));
    }
}
