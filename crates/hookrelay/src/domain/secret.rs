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

/// Checks a secret chosen by a client; the message is shown to them as is.
pub fn validate(secret: &str) -> Result<(), String> {
    let Some(encoded) = secret.strip_prefix(PREFIX) else {
        return Err(format!("must start with {PREFIX}"));
    };
    match STANDARD.decode(encoded) {
        Ok(key) if (MIN_BYTES..=MAX_BYTES).contains(&key.len()) => Ok(()),
        Ok(_) => Err(format!(
            "must encode {MIN_BYTES} to {MAX_BYTES} bytes after {PREFIX}"
        )),
        Err(_) => Err(format!("must be {PREFIX} followed by standard base64")),
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
        assert!(validate(&format!("{PREFIX}{}", STANDARD.encode([7u8; 23]))).is_err());
        assert!(validate(&format!("{PREFIX}{}", STANDARD.encode([7u8; 65]))).is_err());
        assert!(validate("whsec_not base64!").is_err());
        assert!(validate(&STANDARD.encode([7u8; 32])).is_err());
    }

    #[test]
    fn mask_keeps_prefix_and_four_characters() {
        assert_eq!(mask("whsec_abcdefgh"), "whsec_abcd…");
    }
}
