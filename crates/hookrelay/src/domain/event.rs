//! Events: what the platform tells hookrelay, and the envelope every webhook receives.

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::catalog;
use super::id::{EventId, TenantId};
use super::input::{FieldError, Input, Invalid};
use super::json::{self, RawObject};
use super::registry::{EventTypes, RegisteredType};
use super::time::Timestamp;

pub const IDEMPOTENCY_KEY_MAX: usize = 255;
/// The idempotency key's rule as an ECMA-262 regular expression: no control character.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// Most events in one batch.
pub const BATCH_MAX: usize = 500;
/// How long an idempotency key answers with the first event.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// Why a field of an event is refused; the text is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEvent {
    #[error(transparent)]
    Input(#[from] Invalid),
    #[error("\"*\" subscribes to everything; an event needs a concrete type")]
    Wildcard,
    #[error(transparent)]
    UnknownType(#[from] catalog::UnknownEventType),
    #[error("must be a JSON object")]
    DataNotAnObject,
    #[error("must be a string of 1 to {IDEMPOTENCY_KEY_MAX} characters")]
    IdempotencyKeyLength,
    #[error("must be a tenant id (ten_…)")]
    NotATenantId,
}

/// A validated `POST /events` body.
#[derive(Debug, Clone)]
pub struct EventInput {
    pub event_type: &'static str,
    /// The `data` object exactly as sent (numbers, key order and spacing untouched): what
    /// every receiver gets.
    pub data: Box<RawValue>,
    pub idempotency_key: Option<String>,
    /// The tenant the event belongs to: required from the admin key; a tenant key may name
    /// its own (the handler refuses any other).
    pub tenant_id: Option<TenantId>,
}

impl EventInput {
    /// `tenant_id_required`: the caller is the operator and must name the tenant in the body.
    /// `data` is taken as sent; the other fields are read as values.
    /// `types` is the registry: `type` must name one of its types, and `data` satisfy that
    /// type's schema, if it has one.
    pub fn parse(
        body: &RawObject<'_>,
        tenant_id_required: bool,
        types: &EventTypes,
    ) -> Result<Self, Vec<FieldError>> {
        let fields = body.parsed_except(&["data"]);
        let mut input = Input::new(&fields, &["type", "idempotency_key", "tenant_id"]);
        let registered = input.required("type", |v| parse_type(v, types));
        let data = match body.get("data") {
            Some(raw) if json::is_object(raw) => {
                if let Some(Err(errors)) = registered.map(|t| t.check_data(raw)) {
                    errors.into_iter().for_each(|e| input.push(e));
                }
                Some(raw.to_owned())
            }
            Some(_) => {
                input.push(FieldError::new("data", InvalidEvent::DataNotAnObject));
                None
            }
            None => {
                input.push(FieldError::new("data", Invalid::Required));
                None
            }
        };
        let idempotency_key = input.optional("idempotency_key", parse_idempotency_key);
        let parse_tenant = |v: &Value| {
            v.as_str()
                .and_then(TenantId::parse)
                .ok_or(InvalidEvent::NotATenantId)
        };
        let tenant_id = if tenant_id_required {
            input.required("tenant_id", parse_tenant)
        } else {
            input.optional("tenant_id", parse_tenant)
        };
        input.finish(|| EventInput {
            event_type: registered.map_or("", |t| t.name),
            data: data.unwrap_or_else(empty_object),
            idempotency_key: idempotency_key.flatten(),
            tenant_id,
        })
    }
}

/// `{}`, as sent.
pub fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("{{}} is JSON"))
}

fn parse_type<'t>(v: &Value, types: &'t EventTypes) -> Result<&'t RegisteredType, InvalidEvent> {
    let Some(name) = v.as_str() else {
        return Err(Invalid::NotAString.into());
    };
    match types.find(name) {
        Some(t) => Ok(t),
        None if name == catalog::WILDCARD => Err(InvalidEvent::Wildcard),
        None => Err(catalog::UnknownEventType(name.to_owned()).into()),
    }
}

fn parse_idempotency_key(v: &Value) -> Result<Option<String>, InvalidEvent> {
    match v {
        Value::Null => Ok(None),
        // Characters, as the OpenAPI document's maxLength counts them.
        Value::String(s) if !s.is_empty() && s.chars().count() <= IDEMPOTENCY_KEY_MAX => {
            if s.chars().any(char::is_control) {
                Err(Invalid::ControlCharacter.into())
            } else {
                Ok(Some(s.clone()))
            }
        }
        _ => Err(InvalidEvent::IdempotencyKeyLength),
    }
}

/// An event ready to be stored: id assigned and the envelope serialised once, so every
/// delivery and every attempt sends exactly these bytes.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: &'static str,
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub body: String,
}

#[derive(Serialize)]
struct Envelope<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    tenant_id: &'a str,
    created_at: Timestamp,
    data: &'a RawValue,
}

impl NewEvent {
    pub fn new(tenant_id: TenantId, input: &EventInput, now: Timestamp) -> Self {
        let id = EventId::new_at(now);
        let body = envelope(
            id.as_str(),
            input.event_type,
            tenant_id.as_str(),
            now,
            &input.data,
        );
        NewEvent {
            id,
            tenant_id,
            event_type: input.event_type,
            idempotency_key: input.idempotency_key.clone(),
            created_at: now,
            body,
        }
    }
}

/// The JSON document POSTed to webhooks (DESIGN §4); `data` goes in as its text.
pub fn envelope(
    id: &str,
    event_type: &str,
    tenant_id: &str,
    created_at: Timestamp,
    data: &RawValue,
) -> String {
    let envelope = Envelope {
        id,
        event_type,
        tenant_id,
        created_at,
        data,
    };
    // Serialising strings and raw JSON cannot fail.
    serde_json::to_string(&envelope).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::id::Id;
    use serde_json::json;

    fn parse(text: &str, admin: bool) -> Result<EventInput, Vec<FieldError>> {
        EventInput::parse(
            &RawObject::parse(text).expect("an object"),
            admin,
            &EventTypes::builtin(),
        )
    }

    fn obj(v: Value) -> String {
        v.to_string()
    }

    #[test]
    fn parses_a_tenant_event() {
        let e = parse(
            &obj(
                json!({"type": "message.sent", "data": {"b": 1, "a": 2}, "idempotency_key": "k1"}),
            ),
            false,
        )
        .expect("valid");
        assert_eq!(e.event_type, "message.sent");
        assert_eq!(e.idempotency_key.as_deref(), Some("k1"));
        assert_eq!(e.tenant_id, None);
    }

    #[test]
    fn rejects_bad_fields() {
        let fields = |v: Value, admin: bool| -> Vec<String> {
            parse(&obj(v), admin)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(json!({"type": "*", "data": {}}), false), ["type"]);
        assert_eq!(fields(json!({"type": "nope", "data": {}}), false), ["type"]);
        assert_eq!(
            fields(json!({"type": "message.new", "data": [1]}), false),
            ["data"]
        );
        assert_eq!(fields(json!({"type": "message.new"}), false), ["data"]);
        assert_eq!(
            fields(
                json!({"type": "message.new", "data": {}, "idempotency_key": ""}),
                false
            ),
            ["idempotency_key"]
        );
        assert_eq!(
            fields(
                json!({"type": "message.new", "data": {}, "tenant_id": "ten_x"}),
                false
            ),
            ["tenant_id"]
        );
        assert_eq!(
            fields(json!({"type": "message.new", "data": {}}), true),
            ["tenant_id"]
        );
    }

    #[test]
    fn messages_are_unchanged() {
        let messages = |v: Value, admin: bool| -> Vec<String> {
            parse(&obj(v), admin)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.message)
                .collect()
        };
        assert_eq!(
            messages(json!({"type": "*", "data": []}), false),
            [
                "\"*\" subscribes to everything; an event needs a concrete type",
                "must be a JSON object"
            ]
        );
        assert_eq!(
            messages(json!({"type": "nope"}), true),
            [
                "unknown event type \"nope\"; see GET /api/v1/webhooks/events",
                "is required",
                "is required"
            ]
        );
        assert_eq!(
            messages(
                json!({"type": 5, "data": {}, "idempotency_key": "a\u{0}", "tenant_id": "x"}),
                false
            ),
            [
                "must be a string",
                "must not contain control characters",
                "must be a tenant id (ten_…)"
            ]
        );
        assert_eq!(
            messages(
                json!({"type": "message.new", "data": {}, "idempotency_key": ""}),
                false
            ),
            ["must be a string of 1 to 255 characters"]
        );
    }

    #[test]
    fn envelope_has_the_wire_shape_and_keeps_data_order() {
        let input = parse(
            &obj(json!({"type": "contact.created", "data": {"zeta": 1, "alpha": {"x": true}}})),
            false,
        )
        .expect("valid");
        let event = NewEvent::new(
            TenantId::from_stored("ten_abc".into()),
            &input,
            Timestamp(0),
        );
        let expected = format!(
            r#"{{"id":"{}","type":"contact.created","tenant_id":"ten_abc","created_at":"1970-01-01T00:00:00.000Z","data":{{"zeta":1,"alpha":{{"x":true}}}}}}"#,
            event.id
        );
        assert_eq!(event.body, expected);
        assert!(event.id.as_str().starts_with("evt_"));
    }

    #[test]
    fn data_is_delivered_byte_for_byte() {
        let data = r#"{"big": 123456789012345678901234567890, "e": 1e2, "z": -0, "f": 1.50,
  "s": "caf\u00e9", "nested": [ 1 , {"k": 0.1e-7} ]}"#;
        let input = parse(
            &format!(r#"{{"type": "contact.created", "data": {data}}}"#),
            false,
        )
        .expect("valid");
        let event = NewEvent::new(
            TenantId::from_stored("ten_abc".into()),
            &input,
            Timestamp(0),
        );
        assert!(
            event.body.ends_with(&format!(r#","data":{data}}}"#)),
            "{}",
            event.body
        );
        // Still one JSON document.
        assert!(serde_json::from_str::<Value>(&event.body).is_ok());
    }
}
