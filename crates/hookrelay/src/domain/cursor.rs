//! List cursors: the last id of a page, bound to its list and signed, so a cursor is only
//! ever one this server issued for this very list. A made-up or edited cursor, or one from
//! another tenant's list, does not verify, and the API answers it as a page that does not
//! exist (404), as documented.
//!
//! Form: `base64url(version ‖ id ‖ tag)`, no padding, where `tag` is the first 16 bytes of
//! HMAC-SHA256(key, `version ‖ scope ‖ 0 ‖ id`). The scope (`webhooks/ten_…`) is signed but
//! not carried, which keeps cursors short. The key is derived from the operator keys
//! (`crypto::Keyring::cursor_key`): stable across restarts and the same on every node.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Ids are at most this long (`wh_` + 26 characters today; room to spare).
const ID_MAX: usize = 64;

/// The keys that sign and verify cursors: the first signs, every one verifies (so cursors
/// issued before a rotation of the operator key still page while the old key is configured).
#[derive(Clone)]
pub struct CursorKey {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(***)")
    }
}

impl CursorKey {
    /// `keys[0]` signs; all verify. An empty list is given one all-zero key, so that a
    /// misuse still yields cursors that verify only here (never panics).
    pub fn new(mut keys: Vec<[u8; 32]>) -> Self {
        if keys.is_empty() {
            keys.push([0; 32]);
        }
        CursorKey { keys }
    }

    fn mac(key: &[u8; 32], scope: &str, id: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length; 32 bytes cannot be refused.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(&[VERSION]);
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(id.as_bytes());
        mac
    }

    /// The cursor for the page after `id` in the list `scope`.
    pub fn encode(&self, scope: &str, id: &str) -> String {
        let tag = Self::mac(&self.keys[0], scope, id).finalize().into_bytes();
        let mut bytes = Vec::with_capacity(1 + id.len() + TAG_LEN);
        bytes.push(VERSION);
        bytes.extend_from_slice(id.as_bytes());
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The id a cursor of the list `scope` stands for; `None` for anything this server did
    /// not issue for that list.
    pub fn decode(&self, raw: &str, scope: &str) -> Option<String> {
        // Longest cursor: base64 of 1 + ID_MAX + TAG_LEN bytes.
        if raw.len() > (1 + ID_MAX + TAG_LEN).div_ceil(3) * 4 {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION || rest.len() <= TAG_LEN {
            return None;
        }
        let (id, tag) = rest.split_at(rest.len() - TAG_LEN);
        let id = std::str::from_utf8(id).ok()?;
        let plausible =
            id.len() <= ID_MAX && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plausible {
            return None;
        }
        // Constant-time comparison, with each key in turn.
        self.keys
            .iter()
            .any(|key| Self::mac(key, scope, id).verify_truncated_left(tag).is_ok())
            .then(|| id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> CursorKey {
        CursorKey::new(vec![[n; 32]])
    }

    #[test]
    fn round_trips_within_its_list() {
        let k = key(1);
        let cursor = k.encode("webhooks/ten_a", "wh_01kb7r8q3n5c2x7v9b4m6k1j0h");
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{cursor}"
        );
        assert!(cursor.len() <= 64, "compact: {cursor}");
        assert_eq!(
            k.decode(&cursor, "webhooks/ten_a").as_deref(),
            Some("wh_01kb7r8q3n5c2x7v9b4m6k1j0h")
        );
    }

    #[test]
    fn other_lists_other_keys_and_edits_do_not_verify() {
        let k = key(1);
        let cursor = k.encode("webhooks/ten_a", "wh_01abc");
        assert_eq!(k.decode(&cursor, "webhooks/ten_b"), None);
        assert_eq!(k.decode(&cursor, "keys/ten_a"), None);
        assert_eq!(k.decode(&cursor, ""), None);
        assert_eq!(key(2).decode(&cursor, "webhooks/ten_a"), None);
        // Any single changed character breaks it.
        for i in 0..cursor.len() {
            let mut edited = cursor.clone().into_bytes();
            edited[i] = if edited[i] == b'A' { b'B' } else { b'A' };
            let edited = String::from_utf8(edited).unwrap();
            assert_eq!(k.decode(&edited, "webhooks/ten_a"), None, "{edited}");
        }
    }

    #[test]
    fn made_up_cursors_are_refused() {
        let k = key(1);
        // The old, unsigned form (base64 of scope:id) and a bare id.
        let old = URL_SAFE_NO_PAD.encode("webhooks/ten_a:wh_01abc");
        assert_eq!(k.decode(&old, "webhooks/ten_a"), None);
        assert_eq!(k.decode(&URL_SAFE_NO_PAD.encode("wh_01abc"), "x"), None);
        for garbage in [
            "",
            "!!",
            "AAAA",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &"A".repeat(600),
        ] {
            assert_eq!(k.decode(garbage, "webhooks/ten_a"), None, "{garbage}");
        }
    }

    #[test]
    fn older_keys_still_verify_and_the_first_signs() {
        let old = key(1);
        let cursor = old.encode("logs/wh_1", "att_1");
        let rotated = CursorKey::new(vec![[2; 32], [1; 32]]);
        assert_eq!(
            rotated.decode(&cursor, "logs/wh_1").as_deref(),
            Some("att_1")
        );
        assert_eq!(
            old.decode(&rotated.encode("logs/wh_1", "att_1"), "logs/wh_1"),
            None
        );
        assert!(!format!("{rotated:?}").contains('2'));
    }
}
