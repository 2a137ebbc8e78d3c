//! `hookrelay send <type> <json>`: what the platform does for each event, from a shell; with
//! `--wait`, follows the event's deliveries until each has ended, showing progress.

use std::io::{IsTerminal as _, Read as _};
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::Method;
use serde_json::{Map, Value};

use super::{Client, Connection, Failure, field, print_json, table};

/// How often `--wait` looks at the event's deliveries.
const POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The event type, from the catalogue (e.g. message.new).
    pub event_type: String,

    /// The event's data: a JSON object, `@file` to read it from a file, or `-` for stdin.
    pub data: String,

    /// Makes retrying safe: the same key within 24 hours answers the first event again.
    #[arg(long)]
    pub idempotency_key: Option<String>,

    /// With the admin key: the tenant the event belongs to (`ten_…`).
    #[arg(long, env = "HOOKRELAY_TENANT")]
    pub tenant: Option<String>,

    /// Wait until every delivery has succeeded or failed, and show them; exit status 1 if
    /// any failed.
    #[arg(long)]
    pub wait: bool,

    /// How long `--wait` waits at most (e.g. 30s, 5m).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    #[command(flatten)]
    pub connection: Connection,
}

pub async fn send(args: SendArgs) -> Result<(), Failure> {
    let data = read_data(&args.data)?;
    let client = Client::new(&args.connection)?.acting_for(args.tenant.clone());
    let mut body = Map::new();
    body.insert("type".into(), Value::String(args.event_type.clone()));
    body.insert("data".into(), data);
    if let Some(key) = &args.idempotency_key {
        body.insert("idempotency_key".into(), Value::String(key.clone()));
    }
    if let Some(tenant) = &args.tenant {
        body.insert("tenant_id".into(), Value::String(tenant.clone()));
    }
    let accepted = client
        .call(Method::POST, &["events"], &[], Some(&Value::Object(body)))
        .await?;
    let json = args.connection.json;
    if !args.wait {
        if json {
            print_json(&accepted);
        } else {
            println!("{}", describe(&accepted));
        }
        return Ok(());
    }
    if !json {
        println!("{}", describe(&accepted));
    }
    let event_id = field(&accepted, "id");
    let event = wait(&client, &event_id, args.timeout).await?;
    if json {
        print_json(&event);
    } else {
        print!("{}", deliveries_table(&event));
    }
    let deliveries = deliveries(&event);
    let pending = count(deliveries, |s| s == "pending");
    if pending > 0 {
        return Err(Failure::Other(format!(
            "gave up waiting after {}: {pending} of {} deliveries still pending (GET /api/v1/events/{event_id} shows them)",
            humantime::format_duration(args.timeout),
            deliveries.len()
        )));
    }
    let failed = count(deliveries, |s| s == "failed");
    if failed > 0 {
        return Err(Failure::Other(format!(
            "{failed} of {} deliveries failed; see the webhook's logs",
            deliveries.len()
        )));
    }
    Ok(())
}

/// The data argument as JSON: inline, `@file` or `-` (stdin).
pub(super) fn read_data(arg: &str) -> Result<Value, Failure> {
    let (text, source) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Other(format!("cannot read the data from stdin: {e}")))?;
        (text, "stdin".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Other(format!("cannot read {path}: {e}")))?;
        (text, path.to_owned())
    } else {
        (arg.to_owned(), "the data argument".to_owned())
    };
    serde_json::from_str(&text)
        .map_err(|e| Failure::Other(format!("{source} is not valid JSON: {e}")))
}

fn describe(accepted: &Value) -> String {
    let id = field(accepted, "id");
    let event_type = field(accepted, "type");
    if accepted.get("duplicate") == Some(&Value::Bool(true)) {
        return format!(
            "Already accepted as {id} ({event_type}): same idempotency key; nothing new sent."
        );
    }
    match accepted.get("deliveries").and_then(Value::as_u64) {
        Some(0) => format!("Accepted {id} ({event_type}): no active webhook subscribes to it."),
        Some(1) => format!("Accepted {id} ({event_type}): 1 delivery."),
        Some(n) => format!("Accepted {id} ({event_type}): {n} deliveries."),
        None => format!("Accepted {id} ({event_type})."),
    }
}

fn deliveries(event: &Value) -> &[Value] {
    event
        .get("deliveries")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn count(deliveries: &[Value], state: impl Fn(&str) -> bool) -> usize {
    deliveries
        .iter()
        .filter(|d| d.get("state").and_then(Value::as_str).is_some_and(&state))
        .count()
}

/// Polls the event until no delivery is pending or `timeout` passes; returns its last state.
/// Progress goes to stderr: rewritten in place on a terminal, a line per change otherwise.
async fn wait(client: &Client, event_id: &str, timeout: Duration) -> Result<Value, Failure> {
    let terminal = std::io::stderr().is_terminal();
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        let event = client
            .call(Method::GET, &["events", event_id], &[], None)
            .await?;
        let all = deliveries(&event);
        let pending = count(all, |s| s == "pending");
        let attempts: i64 = all
            .iter()
            .filter_map(|d| d.get("attempts").and_then(Value::as_i64))
            .sum();
        let line = format!(
            "waiting: {} of {} deliveries ended ({} succeeded, {} failed), attempts so far: {attempts}",
            all.len() - pending,
            all.len(),
            count(all, |s| s == "succeeded"),
            count(all, |s| s == "failed"),
        );
        if line != last {
            if terminal {
                eprint!("\r\x1b[K{line}");
            } else {
                eprintln!("{line}");
            }
            last = line;
        }
        if pending == 0 || Instant::now() >= deadline {
            if terminal {
                eprintln!();
            }
            return Ok(event);
        }
        tokio::time::sleep(POLL).await;
    }
}

fn deliveries_table(event: &Value) -> String {
    let all = deliveries(event);
    if all.is_empty() {
        return String::new();
    }
    let mut rows = vec![vec![
        "DELIVERY".into(),
        "WEBHOOK".into(),
        "STATE".into(),
        "ATTEMPTS".into(),
        "LAST STATUS".into(),
        "LAST ERROR".into(),
    ]];
    rows.extend(all.iter().map(|d| {
        [
            "id",
            "webhook_id",
            "state",
            "attempts",
            "last_status",
            "last_error",
        ]
        .iter()
        .map(|f| field(d, f))
        .collect()
    }));
    table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_checked_before_sending() {
        let err = read_data("{not json").unwrap_err().to_string();
        assert!(
            err.starts_with("error: the data argument is not valid JSON"),
            "{err}"
        );
        assert_eq!(read_data(r#"{"a":1}"#).unwrap(), json!({"a": 1}));
        let err = read_data("@/nonexistent/file.json")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("error: cannot read /nonexistent/file.json"),
            "{err}"
        );
    }

    #[test]
    fn answers_are_described_in_words() {
        let a = json!({"id": "evt_1", "type": "message.new", "deliveries": 2, "duplicate": false});
        assert_eq!(describe(&a), "Accepted evt_1 (message.new): 2 deliveries.");
        let a = json!({"id": "evt_1", "type": "message.new", "deliveries": 0, "duplicate": false});
        assert!(describe(&a).contains("no active webhook"));
        let a = json!({"id": "evt_1", "type": "message.new", "deliveries": 1, "duplicate": true});
        assert!(describe(&a).starts_with("Already accepted as evt_1"));
    }
}
