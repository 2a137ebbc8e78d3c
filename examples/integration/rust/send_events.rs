//! Sends events to hookrelay from a Rust service, with reqwest.
//!
//! ```sh
//! HOOKRELAY_URL=http://127.0.0.1:8080 HOOKRELAY_API_KEY=hr_... \
//!   cargo run -p hookrelay --example send-events
//! ```
//!
//! Each step prints one JSON line.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

/// A refusal that retrying will not fix (400, 401, 413, 422 ...): the RFC 9457 problem.
#[derive(Debug)]
enum SendError {
    Refused(Value),
    /// Still failing after every attempt: a network error, a timeout, 429 or 5xx.
    GaveUp(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Refused(problem) => write!(f, "refused: {problem}"),
            SendError::GaveUp(why) => write!(f, "gave up: {why}"),
        }
    }
}

impl std::error::Error for SendError {}

struct Hookrelay {
    client: reqwest::Client,
    base_url: String,
    api_key: String,
    max_attempts: u32,
}

impl Hookrelay {
    fn new(base_url: String, api_key: String) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Hookrelay {
            client,
            base_url,
            api_key,
            max_attempts: 5,
        })
    }

    /// Sends one event: `{"type", "data", "idempotency_key"}`. Safe to call again after any
    /// failure when the event carries an idempotency key.
    async fn send(&self, event: &Value) -> Result<Value, SendError> {
        self.post("/api/v1/events", event).await
    }

    /// Sends 1 to 500 events in one request; the answers come back in the same order.
    async fn send_batch(&self, events: &[Value]) -> Result<Vec<Value>, SendError> {
        let answer = self
            .post("/api/v1/events/batch", &json!({ "events": events }))
            .await?;
        Ok(answer["data"].as_array().cloned().unwrap_or_default())
    }

    /// POSTs `body`, retrying what a retry can fix (network errors, timeouts, 429, 5xx) with
    /// the same body, hence the same idempotency keys: a retry never creates a second event.
    async fn post(&self, path: &str, body: &Value) -> Result<Value, SendError> {
        let mut attempt = 1;
        loop {
            let mut wait =
                Duration::from_millis(250 * 2u64.pow(attempt - 1)).min(Duration::from_secs(10));
            let sent = self
                .client
                .post(format!("{}{path}", self.base_url))
                .bearer_auth(&self.api_key)
                .json(body)
                .send()
                .await;
            let failure = match sent {
                // 202 accepted, 200 duplicate.
                Ok(response) if response.status().is_success() => {
                    return response
                        .json()
                        .await
                        .map_err(|e| SendError::GaveUp(e.to_string()));
                }
                Ok(response) => {
                    let status = response.status();
                    let mut reason = status.as_u16().to_string();
                    // 429 and 503 say when to come back, in seconds.
                    if let Some(seconds) = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .filter(|&seconds| seconds > 0)
                    {
                        wait = Duration::from_secs(seconds);
                        reason = format!("{reason} (Retry-After: {seconds})");
                    }
                    let problem: Value = response.json().await.unwrap_or(Value::Null);
                    if status != StatusCode::TOO_MANY_REQUESTS && !status.is_server_error() {
                        return Err(SendError::Refused(problem));
                    }
                    if attempt >= self.max_attempts {
                        return Err(SendError::GaveUp(format!("{status}: {problem}")));
                    }
                    reason
                }
                // The event may or may not be stored: retry, the idempotency key dedupes.
                Err(error) if attempt >= self.max_attempts => {
                    return Err(SendError::GaveUp(error.to_string()));
                }
                Err(error) => error.to_string(),
            };
            attempt += 1;
            // Your logger here; this example prints one JSON line, like its steps.
            let message = format!(
                "retrying POST {path} after {failure} in {} ms, attempt {attempt} of {}",
                wait.as_millis(),
                self.max_attempts
            );
            println!("{}", json!({"step": "warn", "message": message}));
            tokio::time::sleep(wait).await;
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url =
        std::env::var("HOOKRELAY_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".to_owned());
    let api_key = std::env::var("HOOKRELAY_API_KEY")?;
    let hookrelay = Hookrelay::new(base_url, api_key)?;

    // One event, keyed by the id it already has in your system.
    let message = json!({
        "type": "message.new",
        "idempotency_key": "wamid.HBgNNTUxMTk4NzY1NDMyMRUCABIYFjNFQjBDMUQ3RjA4QTY5QjM1RkE0AA==",
        "data": {"message_id": "wamid.HBgN...", "from": "+5511987654321", "text": "Oi!"}
    });
    let first = hookrelay.send(&message).await?;
    println!("{}", json!({"step": "send", "answer": first}));

    // Sent again (a retry after a timeout, a redelivered queue message): the same event.
    let again = hookrelay.send(&message).await?;
    println!("{}", json!({"step": "send again", "answer": again}));

    // Several at once: one request, one answer per event, in order.
    let batch = hookrelay
        .send_batch(&[
            json!({"type": "contact.created", "idempotency_key": "cnt_51b9e0.created",
                   "data": {"id": "cnt_51b9e0", "phone": "+5511987654321"}}),
            json!({"type": "conversation.created", "idempotency_key": "conv_8f3a2c.created",
                   "data": {"id": "conv_8f3a2c", "status": "open"}}),
        ])
        .await?;
    println!("{}", json!({"step": "batch", "data": batch}));

    // A backlog, sent one after the other as fast as hookrelay takes them: over the API key's
    // rate limit, answered 429 and retried after Retry-After, each still accepted once.
    let mut backlog = Vec::new();
    for n in 2..=4 {
        let event = json!({
            "type": "message.new",
            "idempotency_key": format!("wamid.backlog.{n}"),
            "data": {"message_id": format!("wamid.backlog.{n}"), "from": "+5511987654321",
                     "text": format!("#{n}")}
        });
        backlog.push(hookrelay.send(&event).await?);
    }
    println!("{}", json!({"step": "backlog", "data": backlog}));

    // A mistake is not retried: the problem names the field.
    match hookrelay
        .send(&json!({"type": "message.nope", "data": {}}))
        .await
    {
        Err(SendError::Refused(problem)) => {
            println!("{}", json!({"step": "error", "problem": problem}));
        }
        Err(error) => return Err(error.into()),
        Ok(answer) => return Err(format!("expected a refusal, got {answer}").into()),
    }
    Ok(())
}
