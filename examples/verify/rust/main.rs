//! Receive hookrelay webhooks and verify their signatures with the `hookrelay-verify` crate,
//! in an axum server.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_... PORT=3000 cargo run -p hookrelay-verify --example verify-receiver
//! ```
//!
//! Answers 204 to a valid delivery, 400 to anything else.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hookrelay_verify::{DEFAULT_TOLERANCE, Secret, verify};

struct Receiver {
    secret: Secret,
    /// Deliveries are at least once: the ids already handled (use your database).
    seen: Mutex<HashSet<String>>,
}

/// `body: Bytes` is the raw body: verify it before any JSON parsing.
async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // `verify` looks headers up by name; hand it the ones that are valid text.
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    // Checks the timestamp (5 minutes either way), compares in constant time, and accepts
    // either signature during a secret rotation.
    if let Err(error) = verify(&receiver.secret, &pairs, &body, DEFAULT_TOLERANCE) {
        println!("rejected: {error}");
        return StatusCode::BAD_REQUEST;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let first_time = match receiver.seen.lock() {
        Ok(mut seen) => seen.insert(id.clone()),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR,
    };
    if !first_time {
        println!("duplicate {id}");
        return StatusCode::NO_CONTENT;
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    println!(
        "verified {id} {}",
        event["type"].as_str().unwrap_or_default()
    );
    StatusCode::NO_CONTENT // answer fast; do slow work after
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("WEBHOOK_SECRET").unwrap_or_default();
    // Takes the secret as hookrelay shows it, `whsec_` prefix included.
    let secret = Secret::parse(&secret)
        .map_err(|e| format!("WEBHOOK_SECRET (the webhook's whsec_... secret): {e}"))?;
    let receiver = Arc::new(Receiver {
        secret,
        seen: Mutex::new(HashSet::new()),
    });
    let app = Router::new()
        .route("/{*path}", post(receive))
        .with_state(receiver);
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}
