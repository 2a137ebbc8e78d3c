//! How webhooks read as text: a line per webhook in lists, `key: value` for one.

use serde_json::Value;

use super::{field, pairs, print_json, table};

/// An array field as `a, b`.
pub(super) fn list_field(object: &Value, name: &str) -> String {
    match object.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        _ => field(object, name),
    }
}

pub(super) fn webhooks_table(hooks: &[Value]) -> String {
    let mut rows = vec![vec![
        "ID".into(),
        "NAME".into(),
        "STATUS".into(),
        "EVENTS".into(),
        "DELIVERIES OK/FAILED".into(),
        "URL".into(),
    ]];
    rows.extend(hooks.iter().map(|h| {
        vec![
            field(h, "id"),
            field(h, "name"),
            field(h, "status"),
            list_field(h, "events").replace(", ", ","),
            format!(
                "{}/{}",
                field(h, "successful_deliveries"),
                field(h, "failed_deliveries")
            ),
            field(h, "url"),
        ]
    }));
    table(&rows)
}

/// A webhook as `key: value` lines, or its JSON.
pub(super) fn show(hook: &Value, json: bool) {
    if json {
        print_json(hook);
        return;
    }
    let headers = match hook.get("headers") {
        Some(Value::Object(h)) if !h.is_empty() => h
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; "),
        _ => "-".into(),
    };
    let text = |name: &str| field(hook, name);
    print!(
        "{}",
        pairs(&[
            ("id", text("id")),
            ("name", text("name")),
            ("description", text("description")),
            ("url", text("url")),
            ("events", list_field(hook, "events")),
            ("status", text("status")),
            ("disabled_reason", text("disabled_reason")),
            ("disabled_at", text("disabled_at")),
            ("failing_since", text("failing_since")),
            ("disable_after", text("disable_after")),
            ("secret", text("secret")),
            ("retry_count", text("retry_count")),
            ("retry_schedule", list_field(hook, "retry_schedule")),
            ("timeout_seconds", text("timeout_seconds")),
            ("headers", headers),
            ("rate_limit_per_second", text("rate_limit_per_second")),
            ("filter", text("filter")),
            (
                "deliveries",
                format!(
                    "{} total, {} succeeded, {} failed",
                    text("total_deliveries"),
                    text("successful_deliveries"),
                    text("failed_deliveries")
                ),
            ),
            ("last_triggered_at", text("last_triggered_at")),
            ("created_at", text("created_at")),
            ("updated_at", text("updated_at")),
        ])
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_show_one_line_per_webhook() {
        let hook = json!({"id": "wh_1", "name": "crm", "status": "active",
            "events": ["message.new", "message.read"], "successful_deliveries": 3,
            "failed_deliveries": 1, "url": "https://example.com/in"});
        assert_eq!(
            webhooks_table(&[hook]),
            "ID    NAME  STATUS  EVENTS                    DELIVERIES OK/FAILED  URL\n\
             wh_1  crm   active  message.new,message.read  3/1                   https://example.com/in\n"
        );
    }
}
