//! Tenants: isolated customer accounts. Every other row belongs to exactly one.

use serde::Serialize;
use serde_json::{Map, Value};

use super::id::{ApiKeyId, TenantId};
use super::input::{FieldError, Input};
use super::time::Timestamp;

#[derive(Debug, Clone, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A validated `POST /tenants` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTenant {
    pub name: String,
}

impl NewTenant {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, &["name"]);
        let name = input.required("name", |v| super::input::name(v, super::input::NAME_MAX));
        input.finish(|| NewTenant {
            name: name.unwrap_or_default(),
        })
    }
}

/// Why a key's `expires_at` is refused; the text is what the client reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidExpiry {
    #[error("must be in the future")]
    Past,
    #[error("must be an RFC 3339 timestamp")]
    NotRfc3339,
    #[error("must be an RFC 3339 timestamp or null")]
    NotATimestamp,
}

/// A validated `POST /tenants/:id/keys` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: Option<String>,
    pub expires_at: Option<Timestamp>,
}

impl NewApiKey {
    pub fn parse(body: &Map<String, Value>, now: Timestamp) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, &["name", "expires_at"]);
        let name = input.optional("name", |v| super::input::name(v, super::input::NAME_MAX));
        let expires_at = input.optional("expires_at", |v| match v {
            Value::Null => Ok(None),
            Value::String(s) => match Timestamp::parse_rfc3339(s) {
                Some(t) if t > now => Ok(Some(t)),
                Some(_) => Err(InvalidExpiry::Past),
                None => Err(InvalidExpiry::NotRfc3339),
            },
            _ => Err(InvalidExpiry::NotATimestamp),
        });
        input.finish(|| NewApiKey {
            name,
            expires_at: expires_at.flatten(),
        })
    }
}

/// A stored API key, as lists show it: never the key, never its hash.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKeyInfo {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: Option<String>,
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn tenant_and_key_names_must_be_visible_and_not_reorder_text() {
        for bad in [
            "\u{200B}\u{FEFF}",
            "Acme\u{202E}pleh",
            "\u{2066}Acme\u{2069}",
        ] {
            let errors = NewTenant::parse(&obj(json!({"name": bad}))).unwrap_err();
            assert_eq!(errors[0].field, "name", "{bad:?}");
            let errors =
                NewApiKey::parse(&obj(json!({"name": bad})), Timestamp::now()).unwrap_err();
            assert_eq!(errors[0].field, "name", "{bad:?}");
        }
    }

    #[test]
    fn tenant_name_is_required_and_bounded() {
        assert_eq!(
            NewTenant::parse(&obj(json!({"name": "Acme"}))),
            Ok(NewTenant {
                name: "Acme".into()
            })
        );
        assert!(NewTenant::parse(&obj(json!({}))).is_err());
        assert!(NewTenant::parse(&obj(json!({"name": "x".repeat(101)}))).is_err());
        assert!(NewTenant::parse(&obj(json!({"name": "a", "plan": "pro"}))).is_err());
    }

    #[test]
    fn key_expiry_must_be_future() {
        let now = Timestamp(1_000_000);
        let future = Timestamp(2_000_000).to_rfc3339();
        let past = Timestamp(0).to_rfc3339();
        let parsed = NewApiKey::parse(&obj(json!({"expires_at": future})), now);
        assert_eq!(parsed.map(|k| k.expires_at), Ok(Some(Timestamp(2_000_000))));
        let message = |v: Value| {
            NewApiKey::parse(&obj(json!({ "expires_at": v })), now)
                .map_err(|e| e[0].message.clone())
                .err()
        };
        assert_eq!(
            message(json!(past)).as_deref(),
            Some("must be in the future")
        );
        assert_eq!(
            message(json!("soon")).as_deref(),
            Some("must be an RFC 3339 timestamp")
        );
        assert_eq!(
            message(json!(5)).as_deref(),
            Some("must be an RFC 3339 timestamp or null")
        );
        assert_eq!(message(Value::Null), None);
    }
}
