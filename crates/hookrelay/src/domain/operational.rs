//! Operational events: hookrelay's own events, for the platform's operator. They are events of
//! the reserved system tenant ([`system_tenant`]) and operational webhooks are that tenant's
//! webhooks, so the engine stores, signs, retries and logs them like any other delivery. No
//! tenant key exists for the system tenant and tenant routes refuse it, so tenants never see
//! them; the operator manages them at `/api/v1/operational-webhooks` with the admin key.
//!
//! Each event names the tenant and webhook it is about in its `data` (the envelope's
//! `tenant_id` is the system tenant's).

use serde_json::{Value, json};

use super::catalog::{EventType, WILDCARD, is_group_of};
use super::event::{NewEvent, envelope};
use super::health::{Health, Transition};
use super::id::{Id, TenantId, WebhookId};
use super::time::Timestamp;

/// The reserved tenant operational webhooks belong to (made by the migrations).
pub const SYSTEM_TENANT: &str = "ten_00000000000000000000000000";

pub fn system_tenant() -> TenantId {
    TenantId::from_stored(SYSTEM_TENANT.to_owned())
}

pub fn is_system_tenant(id: &TenantId) -> bool {
    id.as_str() == SYSTEM_TENANT
}

pub const WEBHOOK_FAILING: &str = "webhook.failing";
pub const WEBHOOK_DISABLED: &str = "webhook.disabled";
pub const WEBHOOK_RECOVERED: &str = "webhook.recovered";
pub const DELIVERY_EXHAUSTED: &str = "delivery.exhausted";
pub const RECOVERY_COMPLETED: &str = "recovery.completed";

const WEBHOOK_SAMPLE: &str = r#"{"tenant_id":"ten_01kb7r8q3n5c2x7v9b4m6k1j0h","webhook_id":"wh_01kb7r8q3n5c2x7v9b4m6k1j0h","webhook_name":"CRM sync","url":"https://crm.example.com/hooks","status":"disabled","disabled_reason":"gone","disabled_at":"2026-12-03T10:00:00.000Z","failing_since":null,"streak":{"started_at":"2026-12-03T10:00:00.000Z","failed_attempts":1,"failed_deliveries":0}}"#;

/// The operational catalogue: what operational webhooks may subscribe to (or `*`). Not part
/// of the tenants' catalogue (`GET /webhooks/events`).
pub const CATALOG: &[EventType] = &[
    EventType {
        name: WEBHOOK_FAILING,
        description: "A tenant's webhook became failing: its last deliveries all failed.",
        sample: WEBHOOK_SAMPLE,
    },
    EventType {
        name: WEBHOOK_DISABLED,
        description: "A tenant's webhook was disabled by hookrelay: its receiver answered 410 Gone (reason gone), or its deliveries failed continuously for disable_after (reason failing).",
        sample: WEBHOOK_SAMPLE,
    },
    EventType {
        name: WEBHOOK_RECOVERED,
        description: "A failing webhook delivered successfully again and is active.",
        sample: WEBHOOK_SAMPLE,
    },
    EventType {
        name: DELIVERY_EXHAUSTED,
        description: "A delivery ran out of retries and is failed (recover finds it).",
        sample: r#"{"tenant_id":"ten_01kb7r8q3n5c2x7v9b4m6k1j0h","webhook_id":"wh_01kb7r8q3n5c2x7v9b4m6k1j0h","delivery_id":"dlv_01kb7r8q3n5c2x7v9b4m6k1j0h","event_id":"evt_01kb7r8q3n5c2x7v9b4m6k1j0h","event_type":"message.sent","attempts":4,"last_status":500,"last_error":null}"#,
    },
    EventType {
        name: RECOVERY_COMPLETED,
        description: "A recovery of a tenant's webhook finished.",
        sample: r#"{"tenant_id":"ten_01kb7r8q3n5c2x7v9b4m6k1j0h","webhook_id":"wh_01kb7r8q3n5c2x7v9b4m6k1j0h","recovery_id":"rcv_01kb7r8q3n5c2x7v9b4m6k1j0h"}"#,
    },
];

pub fn find(name: &str) -> Option<&'static EventType> {
    CATALOG.iter().find(|t| t.name == name)
}

/// Whether an operational webhook may list `name` in its `events`.
pub fn is_subscribable(name: &str) -> bool {
    name == WILDCARD || find(name).is_some() || is_group_of(CATALOG, name)
}

/// An `events` entry of an operational webhook that names no operational event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operational event type {0:?}; see GET /api/v1/operational-webhooks/events")]
pub struct UnknownOperationalType(pub String);

/// An operational event of `event_type` (a name of [`CATALOG`]) with `data`, at `now`.
fn event(event_type: &'static str, data: &Value, now: Timestamp) -> NewEvent {
    let id = super::id::EventId::new_at(now);
    // A `Value` always serialises.
    let body = serde_json::value::to_raw_value(data)
        .map(|raw| envelope(id.as_str(), event_type, SYSTEM_TENANT, now, &raw))
        .unwrap_or_default();
    NewEvent {
        id,
        tenant_id: system_tenant(),
        event_type,
        idempotency_key: None,
        created_at: now,
        body,
    }
}

/// What a `webhook.*` event says about the webhook.
pub struct WebhookNotice<'a> {
    pub tenant_id: &'a TenantId,
    pub webhook_id: &'a WebhookId,
    pub name: &'a str,
    pub url: &'a str,
    pub health: &'a Health,
}

/// The event telling the operator of a webhook's transition.
pub fn webhook_changed(
    notice: &WebhookNotice<'_>,
    transition: Transition,
    now: Timestamp,
) -> NewEvent {
    let event_type = match transition {
        Transition::Failing => WEBHOOK_FAILING,
        Transition::Disabled(_) => WEBHOOK_DISABLED,
        Transition::Recovered => WEBHOOK_RECOVERED,
    };
    let h = notice.health;
    let data = json!({
        "tenant_id": notice.tenant_id.as_str(),
        "webhook_id": notice.webhook_id.as_str(),
        "webhook_name": notice.name,
        "url": notice.url,
        "status": h.status().as_str(),
        "disabled_reason": h.disabled_reason().map(|r| r.as_str()),
        "disabled_at": h.disabled.map(|(_, at)| at),
        "failing_since": h.failing_since,
        "streak": h.streak.map(|s| json!({
            "started_at": s.started_at,
            "failed_attempts": s.failed_attempts,
            "failed_deliveries": s.failed_deliveries,
        })),
    });
    event(event_type, &data, now)
}

/// What a `delivery.exhausted` event says.
pub struct ExhaustedNotice<'a> {
    pub tenant_id: &'a TenantId,
    pub webhook_id: &'a WebhookId,
    pub delivery_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<&'a str>,
}

pub fn delivery_exhausted(n: &ExhaustedNotice<'_>, now: Timestamp) -> NewEvent {
    let data = json!({
        "tenant_id": n.tenant_id.as_str(),
        "webhook_id": n.webhook_id.as_str(),
        "delivery_id": n.delivery_id,
        "event_id": n.event_id,
        "event_type": n.event_type,
        "attempts": n.attempts,
        "last_status": n.last_status,
        "last_error": n.last_error,
    });
    event(DELIVERY_EXHAUSTED, &data, now)
}

/// `recovery.completed`, for the recoveries to emit (in the transaction that marks the
/// recovery finished): `details` (an object: counts, window) is merged into `data` after the
/// ids.
pub fn recovery_completed(
    tenant_id: &TenantId,
    webhook_id: &WebhookId,
    recovery_id: &str,
    details: Value,
    now: Timestamp,
) -> NewEvent {
    let mut data = json!({
        "tenant_id": tenant_id.as_str(),
        "webhook_id": webhook_id.as_str(),
        "recovery_id": recovery_id,
    });
    if let (Some(into), Value::Object(more)) = (data.as_object_mut(), details) {
        for (k, v) in more {
            into.entry(k).or_insert(v);
        }
    }
    event(RECOVERY_COMPLETED, &data, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::health::DisabledReason;

    #[test]
    fn samples_are_json_objects_and_names_are_not_tenant_types() {
        for t in CATALOG {
            let v: Value = serde_json::from_str(t.sample).expect(t.name);
            assert!(v.is_object(), "{}", t.name);
            assert!(v["tenant_id"].is_string() && v["webhook_id"].is_string());
            assert!(!crate::domain::catalog::is_subscribable(t.name) || t.name == WILDCARD);
        }
        assert!(is_subscribable("*") && is_subscribable(WEBHOOK_DISABLED));
        assert!(!is_subscribable("message.sent"));
        assert!(is_subscribable("webhook.*") && is_subscribable("recovery.*"));
        assert!(!is_subscribable("message.*"));
        assert!(TenantId::parse(SYSTEM_TENANT).is_some());
    }

    #[test]
    fn a_webhook_event_names_the_tenant_and_the_webhook() {
        let tenant = TenantId::new();
        let webhook = WebhookId::new();
        let mut health = Health {
            is_active: true,
            ..Health::default()
        };
        health.disable(DisabledReason::Gone, Timestamp(5));
        let notice = WebhookNotice {
            tenant_id: &tenant,
            webhook_id: &webhook,
            name: "CRM",
            url: "https://a.example/",
            health: &health,
        };
        let e = webhook_changed(
            &notice,
            Transition::Disabled(DisabledReason::Gone),
            Timestamp(6),
        );
        assert_eq!(e.event_type, WEBHOOK_DISABLED);
        assert!(is_system_tenant(&e.tenant_id));
        let body: Value = serde_json::from_str(&e.body).expect("json");
        assert_eq!(body["tenant_id"], SYSTEM_TENANT);
        assert_eq!(body["data"]["tenant_id"], tenant.as_str());
        assert_eq!(body["data"]["webhook_id"], webhook.as_str());
        assert_eq!(body["data"]["disabled_reason"], "gone");
        let r = recovery_completed(
            &tenant,
            &webhook,
            "rcv_1",
            json!({"requeued": 3}),
            Timestamp(1),
        );
        let body: Value = serde_json::from_str(&r.body).expect("json");
        assert_eq!(body["data"]["requeued"], 3);
        assert_eq!(body["data"]["recovery_id"], "rcv_1");
    }
}
