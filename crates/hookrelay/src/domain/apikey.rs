//! API keys. A tenant key reads `hr_<key id>_<secret>`: the id finds the stored row, the secret
//! is compared with its stored SHA-256 in constant time. The key itself is never stored.
//!
//! SHA-256 (not a slow password hash) is right here: the secret is 40 random characters, so
//! there is nothing to brute-force, and every API request checks a key.

use super::id::ApiKeyId;
use rand::Rng;
use rand::distributions::Alphanumeric;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const TENANT_PREFIX: &str = "hr_";
const ADMIN_PREFIX: &str = "hra_";
const SECRET_LEN: usize = 40;
const ULID_LEN: usize = 26;
/// A configured admin key must be at least this long.
pub const MIN_ADMIN_KEY_LEN: usize = 32;

/// A newly minted tenant key: shown to the caller once, then only its hash remains.
pub struct MintedKey {
    /// The object id, `key_<ulid>`.
    pub id: ApiKeyId,
    /// What lists show: `hr_<ulid>`, enough to recognise a key, useless to authenticate.
    pub prefix: String,
    pub token: String,
    pub hash: [u8; 32],
}

pub fn mint_tenant_key() -> MintedKey {
    let id = ApiKeyId::new();
    let ulid = &id.as_str()[super::id::API_KEY.len() + 1..];
    let secret = random_secret();
    let prefix = format!("{TENANT_PREFIX}{ulid}");
    MintedKey {
        hash: hash_secret(&id, &secret),
        token: format!("{prefix}_{secret}"),
        prefix,
        id,
    }
}

/// A generated admin key, for an operator who configured none.
pub fn generate_admin_key() -> String {
    format!("{ADMIN_PREFIX}{}", random_secret())
}

fn random_secret() -> String {
    rand::rngs::OsRng
        .sample_iter(&Alphanumeric)
        .take(SECRET_LEN)
        .map(char::from)
        .collect()
}

/// A bearer token split into the key's object id and its secret; `None` if it is not shaped
/// like a tenant key.
pub fn parse_tenant_key(token: &str) -> Option<(ApiKeyId, &str)> {
    let rest = token.strip_prefix(TENANT_PREFIX)?;
    let (ulid, secret) = rest.split_at_checked(ULID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let ulid_ok = ulid
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
    let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    let id = ApiKeyId::parse(&format!("{}_{ulid}", super::id::API_KEY))?;
    (ulid_ok && secret_ok).then_some((id, secret))
}

/// The stored form of a tenant key's secret. The id is mixed in so equal secrets on two keys
/// (astronomically unlikely, but free to rule out) never share a hash.
pub fn hash_secret(key_id: &ApiKeyId, secret: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(key_id.as_str().as_bytes());
    hasher.update(b":");
    hasher.update(secret.as_bytes());
    hasher.finalize().into()
}

/// The stored form of the admin key.
pub fn hash_admin_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time equality of two stored hashes.
pub fn hashes_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_key_round_trips_through_parse() {
        let key = mint_tenant_key();
        assert!(key.token.starts_with(&key.prefix));
        let (id, secret) = parse_tenant_key(&key.token).expect("parses");
        assert_eq!(id, key.id);
        assert!(hashes_match(&hash_secret(&id, secret), &key.hash));
    }

    #[test]
    fn wrong_secret_does_not_match() {
        let key = mint_tenant_key();
        let (id, _) = parse_tenant_key(&key.token).expect("parses");
        let other = "a".repeat(SECRET_LEN);
        assert!(!hashes_match(&hash_secret(&id, &other), &key.hash));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let key = mint_tenant_key();
        for bad in [
            "",
            "hr_",
            "Bearer x",
            &key.token[..key.token.len() - 1],
            &format!("{}x", key.token),
            &key.token.replacen("hr_", "hx_", 1),
            "hr_ééééééééééééééééééééééééé_x",
            &generate_admin_key(),
        ] {
            assert!(parse_tenant_key(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn admin_keys_are_long_enough() {
        assert!(generate_admin_key().len() >= MIN_ADMIN_KEY_LEN);
    }
}
