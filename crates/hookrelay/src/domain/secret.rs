//! Webhook signing secrets: `whsec_` + base64 of 24–64 random bytes (Standard Webhooks).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;

pub const PREFIX: &str = "whsec_";
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;
const GENERATED_BYTES: usize = 32;

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
