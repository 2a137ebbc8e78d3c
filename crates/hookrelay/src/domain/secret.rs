//! Webhook signing secrets: `whsec_` + base64 of 24–64 random bytes (Standard Webhooks).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

pub const PREFIX: &str = "whsec_";
pub const MIN_BYTES: usize = 24;
pub const MAX_BYTES: usize = 64;
const GENERATED_BYTES: usize = 32;

/// [`validate`]'s rule as an ECMA-262 regular expression, for documents: the prefix, then
/// canonical standard base64 of 24 to 64 bytes (padding bits zero). A test checks the two agree.
pub const PATTERN: &str = r"^whsec_((?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/][AQgw]==)?|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)$";

/// A fresh secret from the operating system's CSPRNG.
pub fn generate() -> String {
    let mut key = [0u8; GENERATED_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// Why a secret chosen by a client is refused; the text is shown to them as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecret {
    #[error("must start with {PREFIX}")]
    NoPrefix,
    #[error("must encode {MIN_BYTES} to {MAX_BYTES} bytes after {PREFIX}")]
    WrongLength,
    #[error("must be {PREFIX} followed by standard base64")]
    NotBase64,
}

/// Checks a secret chosen by a client.
pub fn validate(secret: &str) -> Result<(), InvalidSecret> {
    let Some(encoded) = secret.strip_prefix(PREFIX) else {
        return Err(InvalidSecret::NoPrefix);
    };
    match STANDARD.decode(encoded) {
        Ok(key) if (MIN_BYTES..=MAX_BYTES).contains(&key.len()) => Ok(()),
        Ok(_) => Err(InvalidSecret::WrongLength),
        Err(_) => Err(InvalidSecret::NotBase64),
    }
}

/// The secret as shown outside the one call that reveals it: enough to tell two apart.
pub fn mask(secret: &str) -> String {
    let visible: String = secret.chars().take(PREFIX.len() + 4).collect();
    format!("{visible}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_states_the_secret_rule() {
        let pattern = regex::Regex::new(PATTERN).expect("PATTERN compiles");
        let mut rng = rand::thread_rng();
        for len in MIN_BYTES - 3..=MAX_BYTES + 3 {
            for _ in 0..20 {
                let mut key = vec![0u8; len];
                rng.fill_bytes(&mut key);
                let encoded = STANDARD.encode(&key);
                // Canonical, then with the last base64 digit changed (often non-canonical
                // padding bits), unpadded, and with a character outside the alphabet.
                let mut variants = vec![encoded.clone(), encoded.trim_end_matches('=').to_owned()];
                let digits = encoded.trim_end_matches('=').len();
                for d in ["A", "B", "/", "-"] {
                    let mut v = encoded.clone();
                    v.replace_range(digits - 1..digits, d);
                    variants.push(v);
                }
                for v in variants {
                    let secret = format!("{PREFIX}{v}");
                    assert_eq!(
                        pattern.is_match(&secret),
                        validate(&secret).is_ok(),
                        "{secret}"
                    );
                }
            }
        }
    }

    #[test]
    fn generated_secrets_validate_and_differ() {
        let a = generate();
        assert!(validate(&a).is_ok(), "{a}");
        assert_ne!(a, generate());
    }

    #[test]
    fn validation_bounds() {
        assert!(validate(&format!("{PREFIX}{}", STANDARD.encode([7u8; 24]))).is_ok());
        assert!(validate(&format!("{PREFIX}{}", STANDARD.encode([7u8; 64]))).is_ok());
        assert_eq!(
            validate(&format!("{PREFIX}{}", STANDARD.encode([7u8; 23]))),
            Err(InvalidSecret::WrongLength)
        );
        assert_eq!(
            validate(&format!("{PREFIX}{}", STANDARD.encode([7u8; 65]))),
            Err(InvalidSecret::WrongLength)
        );
        assert_eq!(validate("whsec_not base64!"), Err(InvalidSecret::NotBase64));
        assert_eq!(
            validate(&STANDARD.encode([7u8; 32])),
            Err(InvalidSecret::NoPrefix)
        );
    }

    #[test]
    fn messages_name_the_rule() {
        assert_eq!(
            InvalidSecret::NoPrefix.to_string(),
            "must start with whsec_"
        );
        assert_eq!(
            InvalidSecret::WrongLength.to_string(),
            "must encode 24 to 64 bytes after whsec_"
        );
        assert_eq!(
            InvalidSecret::NotBase64.to_string(),
            "must be whsec_ followed by standard base64"
        );
    }

    #[test]
    fn mask_keeps_prefix_and_four_characters() {
        assert_eq!(mask("whsec_abcdefgh"), "whsec_abcd…");
    }
}
