//! Every request body the API parses, from arbitrary bytes: the JSON reader the extractors
//! use, then each domain input parser (webhook create/patch/rotation, event ingest, tenant
//! and key creation, event-type create/patch). None may panic, and what they accept must hold
//! their own rules.

#![no_main]

use hookrelay::api::extract::{parse_object, raw_object};
use hookrelay::domain::event::{EventInput, NewEvent};
use hookrelay::domain::id::TenantId;
use hookrelay::domain::registry::{EventTypePatch, EventTypeRecord, EventTypes, NewEventType};
use hookrelay::domain::retry::RETRY_SCHEDULE_MAX;
use hookrelay::domain::tenant::{NewApiKey, NewTenant};
use hookrelay::domain::time::Timestamp;
use hookrelay::domain::webhook::{NewWebhook, Rotation, Webhook, WebhookPatch, parse_url};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The built-in catalogue and one type with a schema, so events are checked against one.
static TYPES: std::sync::LazyLock<EventTypes> = std::sync::LazyLock::new(|| {
    let at = Timestamp(1_767_225_600_000);
    let mut records: Vec<EventTypeRecord> = hookrelay::domain::catalog::CATALOG
        .iter()
        .map(|t| EventTypeRecord::builtin(t, at))
        .collect();
    records.push(EventTypeRecord {
        name: "invoice.paid".to_owned(),
        description: "An invoice was paid.".to_owned(),
        schema: Some(
            r#"{"type":"object","required":["amount"],"properties":{"amount":{"type":"integer","minimum":0},"lines":{"type":"array","items":{"type":"object","required":["sku"]}}}}"#
                .to_owned(),
        ),
        sample: r#"{"amount":1}"#.to_owned(),
        deprecated_at: None,
        created_at: at,
        updated_at: at,
    });
    EventTypes::from_records(records)
});

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_object(data) else {
        return;
    };
    let now = Timestamp(1_767_225_600_000);
    // The server's default longest retry delay, which `retry_schedule` entries may not pass.
    let cap = std::time::Duration::from_secs(3600);
    if let Ok(new) = NewWebhook::parse(&body, &TYPES, cap) {
        if let Some(schedule) = &new.retry_schedule {
            assert!(!schedule.is_empty() && schedule.len() <= RETRY_SCHEDULE_MAX);
            assert!(schedule.iter().all(|d| !d.is_zero() && *d <= cap));
        }
        // An accepted URL is already normal: parsing it again changes nothing.
        let again = parse_url(&Value::String(new.url.clone()));
        assert_eq!(again.as_deref(), Ok(new.url.as_str()), "url not stable");
        assert!(!new.events.is_empty());
        let mut webhook = Webhook::create(&TenantId::new(), new, now);
        if let Ok(patch) = WebhookPatch::parse(&body, &TYPES, cap) {
            webhook.apply(patch, now);
        }
    }
    let _ = WebhookPatch::parse(&body, &TYPES, cap);
    let _ = Rotation::parse(&body);
    let Ok(raw) = raw_object(data) else {
        panic!("a body parse_object accepts is read as a raw object too");
    };
    for operator in [false, true] {
        if let Ok(input) = EventInput::parse(&raw, operator, &TYPES) {
            let event = NewEvent::new(TenantId::new(), &input, now);
            // The envelope is JSON and carries `data` byte for byte.
            let Ok(envelope) = serde_json::from_str::<Value>(&event.body) else {
                panic!("envelope is not JSON: {}", event.body);
            };
            assert!(envelope["data"].is_object());
            assert!(event.body.contains(input.data.get()));
        }
    }
    if let Ok(new) = NewEventType::parse(&body) {
        let record = new.record(now);
        let _ = EventTypePatch::parse(&body).map(|patch| patch.apply(&record, now));
    }
    let _ = NewTenant::parse(&body);
    let _ = NewApiKey::parse(&body, now);
});
