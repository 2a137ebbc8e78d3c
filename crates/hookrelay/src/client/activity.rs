//! What `hookrelay webhooks test|logs|log|stats` show: a webhook's activity.

use clap::ValueEnum;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::send::read_data;
use super::{Client, Failure, field, pairs, print_json, table};

/// `logs --status`: the API's `success` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogStatus {
    Success,
    Failed,
}

/// The filters of `GET /webhooks/{id}/logs`.
#[derive(Debug, Default)]
pub struct LogFilters {
    pub status: Option<LogStatus>,
    pub event_type: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl LogFilters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(status) = self.status {
            let success = status == LogStatus::Success;
            query.push(("success", success.to_string()));
        }
        let texts = [
            ("event_type", &self.event_type),
            ("since", &self.since),
            ("until", &self.until),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        query
    }
}

pub async fn test(
    client: &Client,
    id: &str,
    event_type: Option<String>,
    payload: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let mut body = Map::new();
    if let Some(event_type) = event_type {
        body.insert("event_type".into(), Value::String(event_type));
    }
    if let Some(payload) = payload {
        body.insert("payload".into(), read_data(&payload)?);
    }
    let outcome = client
        .call(
            Method::POST,
            &["webhooks", id, "test"],
            &[],
            Some(&Value::Object(body)),
        )
        .await?;
    let success = outcome.get("success") == Some(&Value::Bool(true));
    if json {
        print_json(&outcome);
    } else {
        println!("{}", describe_test(&outcome));
        if let Some(body) = outcome.get("response_body").and_then(Value::as_str)
            && !body.is_empty()
        {
            println!("{body}");
        }
    }
    if success {
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "the test delivery failed; `hookrelay webhooks log {id} {}` shows it",
            field(&outcome, "log_id")
        )))
    }
}

fn describe_test(outcome: &Value) -> String {
    let verdict = if outcome.get("success") == Some(&Value::Bool(true)) {
        "succeeded"
    } else {
        "failed"
    };
    let answer = match outcome.get("response_status").and_then(Value::as_u64) {
        Some(status) => format!("HTTP {status}"),
        None => field(outcome, "error"),
    };
    let filter = match outcome.get("filter_matched") {
        Some(Value::Bool(false)) => " Its filter refuses this event: a real one would not be sent.",
        _ => "",
    };
    format!(
        "Test {} {verdict}: {answer} in {} ms (log {}).{filter}",
        field(outcome, "event_type"),
        field(outcome, "response_time_ms"),
        field(outcome, "log_id")
    )
}

/// Up to `limit` attempts, newest first, following the cursor as needed.
pub async fn logs(
    client: &Client,
    id: &str,
    limit: usize,
    filters: &LogFilters,
    json: bool,
) -> Result<(), Failure> {
    let filters = filters.query();
    let query: Vec<(&str, &str)> = filters.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let rows = super::admin::list_all(
        client,
        &["webhooks", id, "logs"],
        &query,
        "attempts",
        Some(limit),
    )
    .await?;
    if json {
        print_json(&json!({ "data": rows }));
    } else {
        print!("{}", logs_table(&rows));
    }
    Ok(())
}

fn logs_table(rows: &[Value]) -> String {
    let mut table_rows = vec![vec![
        "ID".into(),
        "TIME".into(),
        "EVENT TYPE".into(),
        "ATTEMPT".into(),
        "RESULT".into(),
        "STATUS".into(),
        "MS".into(),
        "ERROR".into(),
    ]];
    table_rows.extend(rows.iter().map(|l| {
        let result = match (l.get("is_success"), l.get("is_test")) {
            (Some(Value::Bool(true)), Some(Value::Bool(true))) => "success (test)",
            (Some(Value::Bool(true)), _) => "success",
            (_, Some(Value::Bool(true))) => "failed (test)",
            _ => "failed",
        };
        vec![
            field(l, "id"),
            field(l, "created_at"),
            field(l, "event_type"),
            field(l, "attempt_count"),
            result.to_owned(),
            field(l, "response_status"),
            field(l, "response_time_ms"),
            field(l, "error_message"),
        ]
    }));
    table(&table_rows)
}

pub async fn log(client: &Client, id: &str, log_id: &str, json: bool) -> Result<(), Failure> {
    let entry = client
        .call(Method::GET, &["webhooks", id, "logs", log_id], &[], None)
        .await?;
    if json {
        print_json(&entry);
        return Ok(());
    }
    let text = |name: &str| field(&entry, name);
    print!(
        "{}",
        pairs(&[
            ("id", text("id")),
            ("webhook_id", text("webhook_id")),
            ("event_id", text("event_id")),
            ("delivery_id", text("delivery_id")),
            ("event_type", text("event_type")),
            ("attempt", text("attempt_count")),
            ("success", text("is_success")),
            ("test", text("is_test")),
            ("created_at", text("created_at")),
            ("response_status", text("response_status")),
            ("response_time_ms", text("response_time_ms")),
            ("error", text("error_message")),
        ])
    );
    if let Some(Value::Object(headers)) = entry.get("request_headers") {
        println!("\nrequest headers:");
        for (name, value) in headers {
            println!("    {name}: {}", value.as_str().unwrap_or_default());
        }
    }
    println!("\npayload:");
    let payload = entry.get("payload").cloned().unwrap_or(Value::Null);
    for line in serde_json::to_string_pretty(&payload)
        .unwrap_or_default()
        .lines()
    {
        println!("    {line}");
    }
    if let Some(body) = entry.get("response_body").and_then(Value::as_str)
        && !body.is_empty()
    {
        let cut = if entry.get("response_body_truncated") == Some(&Value::Bool(true)) {
            " (truncated)"
        } else {
            ""
        };
        println!("\nresponse body{cut}:");
        for line in body.lines() {
            println!("    {line}");
        }
    }
    Ok(())
}

pub async fn stats(
    client: &Client,
    id: &str,
    since: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let query: Vec<(&str, &str)> = since.map(|s| ("since", s)).into_iter().collect();
    let stats = client
        .call(Method::GET, &["webhooks", id, "stats"], &query, None)
        .await?;
    if json {
        print_json(&stats);
    } else {
        print!("{}", describe_stats(&stats));
    }
    Ok(())
}

fn describe_stats(stats: &Value) -> String {
    let text = |name: &str| field(stats, name);
    let nested = |outer: &str, inner: &str| {
        stats
            .get(outer)
            .map_or_else(|| "-".to_owned(), |o| field(o, inner))
    };
    let rate = match stats.get("success_rate").and_then(Value::as_f64) {
        Some(rate) => format!("{:.1} %", rate * 100.0),
        None => "-".to_owned(),
    };
    pairs(&[
        ("webhook_id", text("webhook_id")),
        ("since", text("since")),
        (
            "deliveries",
            format!(
                "{} ended ({} succeeded, {} failed), {} pending",
                text("total_deliveries"),
                text("successful_deliveries"),
                text("failed_deliveries"),
                text("pending_deliveries")
            ),
        ),
        ("success_rate", rate),
        (
            "attempts",
            format!(
                "{} ({} succeeded, {} failed)",
                nested("attempts", "total"),
                nested("attempts", "successful"),
                nested("attempts", "failed")
            ),
        ),
        (
            "response_time_ms",
            format!(
                "avg {}, p50 {}, p95 {}, p99 {}",
                nested("response_time_ms", "avg"),
                nested("response_time_ms", "p50"),
                nested("response_time_ms", "p95"),
                nested("response_time_ms", "p99")
            ),
        ),
        ("last_success_at", text("last_success_at")),
        ("last_failure_at", text("last_failure_at")),
        ("consecutive_failures", text("consecutive_failures")),
        ("filtered_events", text("filtered_events")),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_use_the_api_names() {
        let filters = LogFilters {
            status: Some(LogStatus::Failed),
            event_type: Some("message.new".into()),
            ..LogFilters::default()
        };
        assert_eq!(
            filters.query(),
            vec![
                ("success", "false".to_owned()),
                ("event_type", "message.new".to_owned())
            ]
        );
    }

    #[test]
    fn outcomes_and_stats_read_as_sentences() {
        let outcome = json!({"success": false, "event_type": "message.new",
            "response_status": null, "response_time_ms": 3, "error": "connection refused",
            "log_id": "att_1"});
        assert_eq!(
            describe_test(&outcome),
            "Test message.new failed: connection refused in 3 ms (log att_1)."
        );
        let stats = json!({"webhook_id": "wh_1", "since": null, "total_deliveries": 4,
            "successful_deliveries": 3, "failed_deliveries": 1, "pending_deliveries": 0,
            "success_rate": 0.75, "attempts": {"total": 6, "successful": 3, "failed": 3},
            "response_time_ms": {"avg": 12.5, "p50": 10, "p95": 30, "p99": 30}});
        let text = describe_stats(&stats);
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}:")))
                .map(str::trim)
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(value("success_rate"), "75.0 %", "{text}");
        assert_eq!(
            value("deliveries"),
            "4 ended (3 succeeded, 1 failed), 0 pending"
        );
        assert_eq!(
            value("response_time_ms"),
            "avg 12.5, p50 10, p95 30, p99 30"
        );
        assert_eq!(value("last_success_at"), "-");
    }
}
