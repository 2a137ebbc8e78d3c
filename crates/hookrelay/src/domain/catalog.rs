//! The event catalogue: every event type a tenant can subscribe to, with a description and a
//! realistic sample `data` payload. Adding an event type is adding one entry to `CATALOG`.

/// Subscribing to this name means "every event type".
pub const WILDCARD: &str = "*";

/// After a group's name, every type of that group: `message.*` takes `message.new`,
/// `message.sent`… (present and future), and nothing of any other group.
pub const GROUP_WILDCARD: &str = ".*";

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    /// Dotted name, e.g. `message.sent`.
    pub name: &'static str,
    /// One sentence for people choosing what to subscribe to.
    pub description: &'static str,
    /// A JSON object (as text) showing the `data` of a typical event of this type.
    pub sample: &'static str,
}

pub static CATALOG: &[EventType] = &[
    // ----- messages -----
    EventType {
        name: "message.new",
        description: "An inbound message from a contact arrived.",
        sample: r#"{
  "message_id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMUQ3RjA4QTY5QjM1RkE0AA==",
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "direction": "inbound",
  "type": "text",
  "text": "Oi! Meu pedido #48213 ainda não chegou, podem verificar?",
  "channel_phone_number": "+14155550123",
  "received_at": "2026-11-28T14:03:22Z"
}"#,
    },
    EventType {
        name: "message.sent",
        description: "An outbound message was accepted by WhatsApp for delivery.",
        sample: r#"{
  "message_id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ2QkM3RTFBOUQyRjA1QzhFMwA=",
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "direction": "outbound",
  "type": "image",
  "media": {
    "url": "https://media.example-crm.com/m/7c1e9a/comprovante.jpg",
    "mime_type": "image/jpeg",
    "caption": "Segue o comprovante de envio do seu pedido."
  },
  "sent_by": "usr_7d21aa",
  "channel_phone_number": "+14155550123",
  "sent_at": "2026-11-28T14:05:10Z"
}"#,
    },
    EventType {
        name: "message.delivered",
        description: "An outbound message was delivered to the contact's device.",
        sample: r#"{
  "message_id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ2QkM3RTFBOUQyRjA1QzhFMwA=",
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "direction": "outbound",
  "type": "image",
  "channel_phone_number": "+14155550123",
  "sent_at": "2026-11-28T14:05:10Z",
  "delivered_at": "2026-11-28T14:05:12Z"
}"#,
    },
    EventType {
        name: "message.read",
        description: "The contact read an outbound message.",
        sample: r#"{
  "message_id": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABEYEjQ2QkM3RTFBOUQyRjA1QzhFMwA=",
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "direction": "outbound",
  "type": "image",
  "channel_phone_number": "+14155550123",
  "sent_at": "2026-11-28T14:05:10Z",
  "delivered_at": "2026-11-28T14:05:12Z",
  "read_at": "2026-11-28T14:06:47Z"
}"#,
    },
    EventType {
        name: "message.failed",
        description: "An outbound message could not be delivered.",
        sample: r#"{
  "message_id": "wamid.HBgLMTQxNTU1NTAxOTkVAgARGBI5QTNGMEI3QzJFMUQ4NjRGNTAA",
  "conversation_id": "conv_c41d7e",
  "contact": {
    "id": "cnt_93f0a4",
    "phone": "+14155550199",
    "name": "Daniel Brooks"
  },
  "direction": "outbound",
  "type": "template",
  "template": {
    "name": "order_update_v3",
    "language": "en_US"
  },
  "channel_phone_number": "+14155550123",
  "sent_at": "2026-11-28T15:12:03Z",
  "failed_at": "2026-11-28T15:12:05Z",
  "error": {
    "code": 131026,
    "title": "Message undeliverable",
    "message": "Unable to deliver message. The recipient may not be on WhatsApp or has not accepted the latest terms."
  }
}"#,
    },
    // ----- conversations -----
    EventType {
        name: "conversation.created",
        description: "A new conversation with a contact was opened.",
        sample: r#"{
  "id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "assigned_agent": null,
  "status": "open",
  "tags": [],
  "channel": {
    "type": "whatsapp",
    "phone_number": "+14155550123"
  },
  "origin": "inbound_message",
  "created_at": "2026-11-28T14:03:22Z"
}"#,
    },
    EventType {
        name: "conversation.updated",
        description: "A conversation's status, tags or other attributes changed.",
        sample: r#"{
  "id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "assigned_agent": {
    "id": "usr_7d21aa",
    "name": "Lucas Ferreira",
    "email": "lucas.ferreira@lojabrisa.com.br"
  },
  "status": "pending",
  "tags": ["delivery", "priority"],
  "channel": {
    "type": "whatsapp",
    "phone_number": "+14155550123"
  },
  "changes": {
    "status": { "from": "open", "to": "pending" },
    "tags": { "added": ["priority"], "removed": [] }
  },
  "updated_by": "usr_7d21aa",
  "created_at": "2026-11-28T14:03:22Z",
  "updated_at": "2026-11-28T14:09:41Z"
}"#,
    },
    EventType {
        name: "conversation.assigned",
        description: "A conversation was assigned or reassigned to an agent.",
        sample: r#"{
  "id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "assigned_agent": {
    "id": "usr_7d21aa",
    "name": "Lucas Ferreira",
    "email": "lucas.ferreira@lojabrisa.com.br"
  },
  "previous_agent": null,
  "team": "Customer Support",
  "assigned_by": "auto_4b8e02",
  "status": "open",
  "tags": ["delivery"],
  "channel": {
    "type": "whatsapp",
    "phone_number": "+14155550123"
  },
  "assigned_at": "2026-11-28T14:03:25Z"
}"#,
    },
    EventType {
        name: "conversation.resolved",
        description: "An agent marked a conversation as resolved.",
        sample: r#"{
  "id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "assigned_agent": {
    "id": "usr_7d21aa",
    "name": "Lucas Ferreira"
  },
  "status": "resolved",
  "tags": ["delivery", "priority"],
  "channel": {
    "type": "whatsapp",
    "phone_number": "+14155550123"
  },
  "resolved_by": "usr_7d21aa",
  "message_count": 14,
  "first_response_seconds": 118,
  "created_at": "2026-11-28T14:03:22Z",
  "resolved_at": "2026-11-28T14:31:09Z"
}"#,
    },
    EventType {
        name: "conversation.closed",
        description: "A conversation was closed and no longer accepts agent replies.",
        sample: r#"{
  "id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "assigned_agent": {
    "id": "usr_7d21aa",
    "name": "Lucas Ferreira"
  },
  "status": "closed",
  "close_reason": "service_window_expired",
  "tags": ["delivery", "priority"],
  "channel": {
    "type": "whatsapp",
    "phone_number": "+14155550123"
  },
  "created_at": "2026-11-28T14:03:22Z",
  "closed_at": "2026-11-29T14:03:22Z"
}"#,
    },
    // ----- contacts -----
    EventType {
        name: "contact.created",
        description: "A new contact was added to the CRM.",
        sample: r#"{
  "id": "cnt_51b9e0",
  "phone": "+5511987654321",
  "name": "Mariana Souza",
  "email": "mariana.souza@gmail.com",
  "tags": ["lead", "black-friday-2026"],
  "custom_attributes": {
    "city": "São Paulo",
    "customer_tier": "silver",
    "last_order_id": "48213"
  },
  "opt_in": {
    "status": "opted_in",
    "source": "website_checkout",
    "updated_at": "2026-11-28T14:03:22Z"
  },
  "source": "inbound_message",
  "created_at": "2026-11-28T14:03:22Z"
}"#,
    },
    EventType {
        name: "contact.updated",
        description: "A contact's details, tags, attributes or opt-in status changed.",
        sample: r#"{
  "id": "cnt_51b9e0",
  "phone": "+5511987654321",
  "name": "Mariana Souza",
  "email": "mariana.souza@gmail.com",
  "tags": ["customer", "black-friday-2026"],
  "custom_attributes": {
    "city": "São Paulo",
    "customer_tier": "gold",
    "last_order_id": "48213"
  },
  "opt_in": {
    "status": "opted_in",
    "source": "website_checkout",
    "updated_at": "2026-11-28T14:03:22Z"
  },
  "changes": {
    "tags": { "added": ["customer"], "removed": ["lead"] },
    "custom_attributes.customer_tier": { "from": "silver", "to": "gold" }
  },
  "updated_by": "usr_7d21aa",
  "updated_at": "2026-11-28T16:20:05Z"
}"#,
    },
    // ----- campaigns -----
    EventType {
        name: "campaign.started",
        description: "A broadcast campaign started sending to its audience.",
        sample: r#"{
  "id": "cmp_2e90f1",
  "name": "Black Friday 2026 - VIP early access",
  "template": {
    "name": "bf_vip_early_access",
    "language": "pt_BR"
  },
  "channel_phone_number": "+14155550123",
  "audience": {
    "segment_id": "seg_0c7d55",
    "size": 12480
  },
  "scheduled_at": "2026-11-28T12:00:00Z",
  "started_at": "2026-11-28T12:00:04Z",
  "started_by": "usr_7d21aa"
}"#,
    },
    EventType {
        name: "campaign.completed",
        description: "A broadcast campaign finished sending to its whole audience.",
        sample: r#"{
  "id": "cmp_2e90f1",
  "name": "Black Friday 2026 - VIP early access",
  "template": {
    "name": "bf_vip_early_access",
    "language": "pt_BR"
  },
  "channel_phone_number": "+14155550123",
  "audience_size": 12480,
  "stats": {
    "sent": 12391,
    "delivered": 12107,
    "read": 8843,
    "replied": 1264,
    "failed": 89
  },
  "started_at": "2026-11-28T12:00:04Z",
  "completed_at": "2026-11-28T12:41:37Z"
}"#,
    },
    EventType {
        name: "campaign.failed",
        description: "A broadcast campaign stopped before reaching its whole audience.",
        sample: r#"{
  "id": "cmp_5a13c8",
  "name": "Cyber Monday reminder",
  "template": {
    "name": "cyber_monday_reminder",
    "language": "en_US"
  },
  "channel_phone_number": "+14155550123",
  "audience_size": 30000,
  "stats": {
    "sent": 1000,
    "delivered": 982,
    "read": 411,
    "failed": 18,
    "not_attempted": 29000
  },
  "error": {
    "code": 131048,
    "title": "Spam rate limit hit",
    "message": "Message failed to send because there are restrictions on how many messages can be sent from this phone number."
  },
  "started_at": "2026-11-30T13:00:02Z",
  "failed_at": "2026-11-30T13:04:51Z"
}"#,
    },
    // ----- flows -----
    EventType {
        name: "flow.started",
        description: "A chatbot flow started running in a conversation.",
        sample: r#"{
  "id": "flow_a17c33",
  "name": "Order status lookup",
  "run_id": "run_6e02bd",
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "trigger": {
    "type": "keyword",
    "value": "pedido"
  },
  "started_at": "2026-11-28T14:03:23Z"
}"#,
    },
    EventType {
        name: "flow.completed",
        description: "A chatbot flow reached its end in a conversation.",
        sample: r#"{
  "id": "flow_a17c33",
  "name": "Order status lookup",
  "run_id": "run_6e02bd",
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "trigger": {
    "type": "keyword",
    "value": "pedido"
  },
  "steps_completed": 5,
  "outcome": "handed_off_to_agent",
  "variables": {
    "order_id": "48213",
    "order_status": "in_transit",
    "carrier": "Correios"
  },
  "started_at": "2026-11-28T14:03:23Z",
  "completed_at": "2026-11-28T14:04:58Z"
}"#,
    },
    EventType {
        name: "flow.failed",
        description: "A chatbot flow stopped because one of its steps failed.",
        sample: r#"{
  "id": "flow_a17c33",
  "name": "Order status lookup",
  "run_id": "run_91f4c0",
  "conversation_id": "conv_c41d7e",
  "contact": {
    "id": "cnt_93f0a4",
    "phone": "+14155550199",
    "name": "Daniel Brooks"
  },
  "trigger": {
    "type": "keyword",
    "value": "order"
  },
  "steps_completed": 2,
  "failed_step": "lookup_order",
  "variables": {
    "order_id": "77120"
  },
  "error": {
    "code": "http_request_failed",
    "message": "GET https://api.shop.example.com/orders/77120 returned 503 after 3 attempts."
  },
  "started_at": "2026-11-28T15:20:11Z",
  "failed_at": "2026-11-28T15:20:44Z"
}"#,
    },
    // ----- automations -----
    EventType {
        name: "automation.triggered",
        description: "An automation rule's trigger matched and its actions are about to run.",
        sample: r#"{
  "id": "auto_4b8e02",
  "name": "Route delivery questions to support",
  "run_id": "arun_3c77e1",
  "trigger": {
    "type": "message.new",
    "conditions": ["message contains \"pedido\"", "contact tag is not \"vip\""]
  },
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "triggered_at": "2026-11-28T14:03:22Z"
}"#,
    },
    EventType {
        name: "automation.completed",
        description: "An automation rule finished running all of its actions.",
        sample: r#"{
  "id": "auto_4b8e02",
  "name": "Route delivery questions to support",
  "run_id": "arun_3c77e1",
  "trigger": {
    "type": "message.new"
  },
  "conversation_id": "conv_8f3a2c",
  "contact": {
    "id": "cnt_51b9e0",
    "phone": "+5511987654321",
    "name": "Mariana Souza"
  },
  "actions_executed": [
    { "type": "add_tag", "value": "delivery", "status": "succeeded" },
    { "type": "assign_team", "value": "Customer Support", "status": "succeeded" },
    { "type": "assign_agent", "value": "usr_7d21aa", "status": "succeeded" }
  ],
  "triggered_at": "2026-11-28T14:03:22Z",
  "completed_at": "2026-11-28T14:03:25Z"
}"#,
    },
    // ----- templates -----
    EventType {
        name: "template.approved",
        description: "WhatsApp approved a message template for use.",
        sample: r#"{
  "id": "tpl_order_update_v3",
  "name": "order_update_v3",
  "language": "en_US",
  "category": "UTILITY",
  "status": "APPROVED",
  "whatsapp_template_id": "1184736250917342",
  "channel_phone_number": "+14155550123",
  "submitted_at": "2026-11-27T09:15:00Z",
  "approved_at": "2026-11-27T09:47:31Z"
}"#,
    },
    EventType {
        name: "template.rejected",
        description: "WhatsApp rejected a submitted message template.",
        sample: r#"{
  "id": "tpl_bf_flash_sale_v1",
  "name": "bf_flash_sale_v1",
  "language": "pt_BR",
  "category": "MARKETING",
  "status": "REJECTED",
  "whatsapp_template_id": "2093518864412075",
  "channel_phone_number": "+14155550123",
  "rejection_reason": "INVALID_FORMAT",
  "rejection_details": "Variable parameters can't be at the start or end of the template body.",
  "submitted_at": "2026-11-27T10:02:12Z",
  "rejected_at": "2026-11-27T10:40:58Z"
}"#,
    },
];

/// A name that is neither a catalogue type nor the wildcard, where either is allowed (a
/// webhook's `events`). The text points the client to the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}; see GET /api/v1/webhooks/events")]
pub struct UnknownEventType(pub String);

/// A value that had to name one catalogue type, and does not (the wildcard included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be an event type from the catalogue (not \"*\")")]
pub struct NotAnEventType;

/// The catalogue entry for `name`, if it is a known type (the wildcard is not an event type).
pub fn find(name: &str) -> Option<&'static EventType> {
    CATALOG.iter().find(|event_type| event_type.name == name)
}

/// Whether `name` may appear in a webhook's `events` list: a catalogue type, a catalogue
/// group's `group.*`, or the wildcard.
pub fn is_subscribable(name: &str) -> bool {
    name == WILDCARD || find(name).is_some() || is_group_of(CATALOG, name)
}

/// The group of a dotted type name: `message` of `message.new`.
pub fn group(name: &str) -> Option<&str> {
    name.split_once('.').map(|(group, _)| group)
}

/// Whether one entry of a webhook's `events` (a type, `group.*` or `*`) takes `event_type`.
pub fn matches(entry: &str, event_type: &str) -> bool {
    entry == WILDCARD
        || entry == event_type
        || entry
            .strip_suffix(GROUP_WILDCARD)
            .is_some_and(|prefix| group(event_type) == Some(prefix))
}

/// Whether `name` is `group.*` for a group that has types in `types`.
pub fn is_group_of(types: &[EventType], name: &str) -> bool {
    name.strip_suffix(GROUP_WILDCARD).is_some_and(|prefix| {
        !prefix.is_empty() && types.iter().any(|t| group(t.name) == Some(prefix))
    })
}

/// Every value a webhook subscribing to `types` may list, in catalogue order: each type, then
/// each group's `group.*`, then `*`.
pub fn subscribable(types: &[EventType]) -> Vec<String> {
    let mut names: Vec<String> = types.iter().map(|t| t.name.to_owned()).collect();
    for t in types {
        if let Some(group) = group(t.name) {
            let whole = format!("{group}{GROUP_WILDCARD}");
            if !names.contains(&whole) {
                names.push(whole);
            }
        }
    }
    names.push(WILDCARD.to_owned());
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_group_subscription_takes_its_group_and_nothing_else() {
        let messages: Vec<&str> = CATALOG
            .iter()
            .map(|t| t.name)
            .filter(|name| matches("message.*", name))
            .collect();
        assert!(messages.len() >= 4, "{messages:?}");
        assert!(messages.iter().all(|name| name.starts_with("message.")));
        let others = CATALOG.iter().filter(|t| !t.name.starts_with("message."));
        for t in others {
            assert!(!matches("message.*", t.name), "{}", t.name);
            assert!(matches(WILDCARD, t.name) && matches(t.name, t.name));
        }
        // A group is a whole name before the dot, not a prefix of characters.
        assert!(!matches("message.*", "messages.new"));
        assert!(!matches("message.*", "message"));
        assert!(!matches("mess.*", "message.new"));
        assert!(!matches("message.new", "message.sent"));
    }

    #[test]
    fn subscribable_lists_types_then_groups_then_the_wildcard() {
        let names = subscribable(CATALOG);
        assert_eq!(names[..CATALOG.len()].len(), CATALOG.len());
        assert_eq!(names[0], CATALOG[0].name);
        assert_eq!(names.last().map(String::as_str), Some(WILDCARD));
        let groups: Vec<&String> = names.iter().filter(|n| n.ends_with(".*")).collect();
        let distinct: HashSet<&str> = CATALOG.iter().filter_map(|t| group(t.name)).collect();
        assert_eq!(groups.len(), distinct.len());
        assert!(names.iter().all(|n| is_subscribable(n)));
    }

    /// Checks `^[a-z]+\.[a-z_]+$` without pulling in a regex crate.
    fn is_well_formed_name(name: &str) -> bool {
        match name.split_once('.') {
            Some((group, action)) => {
                !group.is_empty()
                    && group.bytes().all(|b| b.is_ascii_lowercase())
                    && !action.is_empty()
                    && action.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            }
            None => false,
        }
    }

    #[test]
    fn has_exactly_22_entries() {
        assert_eq!(CATALOG.len(), 22);
    }

    #[test]
    fn names_are_unique() {
        let mut seen = HashSet::new();
        for event_type in CATALOG {
            assert!(
                seen.insert(event_type.name),
                "duplicate name {}",
                event_type.name
            );
        }
    }

    #[test]
    fn names_are_well_formed() {
        for event_type in CATALOG {
            assert!(
                is_well_formed_name(event_type.name),
                "bad name {:?}",
                event_type.name
            );
        }
        assert!(!is_well_formed_name("message"));
        assert!(!is_well_formed_name("Message.new"));
        assert!(!is_well_formed_name("message.new.extra"));
        assert!(!is_well_formed_name(".new"));
        assert!(!is_well_formed_name("message."));
    }

    #[test]
    fn find_known_and_unknown() {
        let found = find("message.sent").expect("message.sent is in the catalogue");
        assert_eq!(found.name, "message.sent");
        assert!(find("template.rejected").is_some());
        assert!(find(WILDCARD).is_none());
        assert!(find("unknown.type").is_none());
    }

    #[test]
    fn errors_say_where_the_types_are() {
        assert_eq!(
            UnknownEventType("message.nope".into()).to_string(),
            "unknown event type \"message.nope\"; see GET /api/v1/webhooks/events"
        );
        assert_eq!(
            NotAnEventType.to_string(),
            "must be an event type from the catalogue (not \"*\")"
        );
    }

    #[test]
    fn is_subscribable_accepts_wildcard_and_catalogue_names() {
        assert!(is_subscribable(WILDCARD));
        assert!(is_subscribable("message.*"));
        assert!(is_subscribable("contact.*"));
        for event_type in CATALOG {
            assert!(is_subscribable(event_type.name));
        }
        assert!(!is_subscribable("unknown.type"));
        assert!(!is_subscribable(""));
        assert!(!is_subscribable("nope.*"));
        assert!(!is_subscribable(".*"));
        assert!(!is_subscribable("message.*.*"));
        assert!(!is_subscribable("message*"));
        assert!(!is_subscribable("Message.New"));
    }

    #[test]
    fn samples_are_non_empty_json_objects() {
        for event_type in CATALOG {
            let value: serde_json::Value = serde_json::from_str(event_type.sample)
                .unwrap_or_else(|e| panic!("sample of {} is not JSON: {e}", event_type.name));
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("sample of {} is not an object", event_type.name));
            assert!(!object.is_empty(), "sample of {} is empty", event_type.name);
        }
    }

    #[test]
    fn descriptions_are_sentences() {
        for event_type in CATALOG {
            assert!(
                !event_type.description.is_empty(),
                "empty description for {}",
                event_type.name
            );
            assert!(
                event_type.description.ends_with('.'),
                "description of {} does not end with a period",
                event_type.name
            );
        }
    }
}
