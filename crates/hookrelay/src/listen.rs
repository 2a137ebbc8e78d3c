//! `hookrelay listen`: a local receiver that prints every delivery it gets, the way a tenant
//! checks that their webhooks work (like `stripe listen`). It answers every path and method
//! with `--status`, and verifies signatures with `hookrelay-verify` when given `--secret`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use clap::Args;
use hookrelay_verify::Secret;
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Port to listen on, on 127.0.0.1 (0: any free port; the address is printed on stderr).
    #[arg(long, default_value_t = 9000)]
    pub port: u16,

    /// The webhook's signing secret (`whsec_…`): each delivery's signature is checked with it.
    #[arg(long, env = "HOOKRELAY_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub secret: Option<Secret>,

    /// HTTP status to answer every delivery with (try 500 or 503 to watch retries).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=599))]
    pub status: u16,

    /// Print one JSON object per delivery, on one line, instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why `--secret` is refused; what the verifier said is the source.
#[derive(Debug, thiserror::Error)]
#[error("not a webhook secret: expected whsec_<base64>")]
pub struct NotASecret(#[source] hookrelay_verify::Error);

fn parse_secret(s: &str) -> Result<Secret, NotASecret> {
    Secret::parse(s).map_err(NotASecret)
}

struct Listener {
    secret: Option<Secret>,
    status: StatusCode,
    json: bool,
}

/// Serves until Ctrl-C (SIGINT) or SIGTERM.
pub async fn run(args: ListenArgs) -> anyhow::Result<()> {
    let status = StatusCode::from_u16(args.status)
        .map_err(|_| anyhow::anyhow!("--status {} is not an HTTP status", args.status))?;
    let address = SocketAddr::from(([127, 0, 0, 1], args.port));
    let socket = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
    let bound = socket.local_addr()?;
    let verifying = if args.secret.is_some() {
        "checking signatures"
    } else {
        "not checking signatures: no --secret"
    };
    // On stderr, so that stdout carries deliveries only (`--json` output stays parseable).
    eprintln!(
        "Listening on http://{bound}/ (answering {}; {verifying}). Ctrl-C to stop.",
        status.as_u16()
    );
    let state = Arc::new(Listener {
        secret: args.secret,
        status,
        json: args.json,
    });
    let app = Router::new().fallback(receive).with_state(state);
    axum::serve(socket, app)
        .with_graceful_shutdown(interrupted())
        .await?;
    eprintln!("Stopped.");
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delivery = Delivery::read(&listener, &method, &uri, &headers, &body);
    let text = if listener.json {
        format!("{}\n", delivery.to_json())
    } else {
        delivery.to_text()
    };
    // One write per delivery, so concurrent deliveries never interleave.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    listener.status
}

/// What one request carried, and what we made of it.
struct Delivery {
    method: String,
    path: String,
    event_type: Option<String>,
    webhook_id: Option<String>,
    attempt: Option<u32>,
    timestamp: Option<i64>,
    /// `None`: no secret to check with; `Some(Err(reason))`: checked and refused.
    verified: Option<Result<(), hookrelay_verify::Error>>,
    body: Body,
    answered: u16,
}

/// A delivery's body: JSON, as hookrelay sends, or whatever else arrived, as text.
enum Body {
    Json(Value),
    Text(String),
}

impl Body {
    fn read(bytes: &Bytes) -> Body {
        match serde_json::from_slice(bytes) {
            Ok(json) => Body::Json(json),
            Err(_) => Body::Text(String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

impl Delivery {
    fn read(
        listener: &Listener,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Delivery {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let verified = listener.secret.as_ref().map(|secret| {
            let pairs: Vec<(&str, &str)> = headers
                .iter()
                .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
                .collect();
            hookrelay_verify::verify(secret, &pairs, body, hookrelay_verify::DEFAULT_TOLERANCE)
        });
        Delivery {
            method: method.to_string(),
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned()),
            event_type: header("x-hookrelay-event-type"),
            webhook_id: header(hookrelay_verify::HEADER_ID),
            attempt: header("x-hookrelay-attempt").and_then(|a| a.parse().ok()),
            timestamp: header(hookrelay_verify::HEADER_TIMESTAMP).and_then(|t| t.parse().ok()),
            verified,
            body: Body::read(body),
            answered: listener.status.as_u16(),
        }
    }

    fn timestamp_rfc3339(&self) -> Option<String> {
        let at = chrono::DateTime::from_timestamp(self.timestamp?, 0)?;
        Some(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    fn to_text(&self) -> String {
        let mut out = String::new();
        let unknown = "?".to_owned();
        let _ = writeln!(
            out,
            "--> {}  {}  attempt {}  {}",
            self.event_type.as_ref().unwrap_or(&unknown),
            self.webhook_id.as_ref().unwrap_or(&unknown),
            self.attempt.map_or(unknown.clone(), |a| a.to_string()),
            self.timestamp_rfc3339().unwrap_or(unknown.clone()),
        );
        let signature = match &self.verified {
            None => "not checked (no --secret)".to_owned(),
            Some(Ok(())) => "verified".to_owned(),
            Some(Err(reason)) => format!("signature INVALID: {reason}"),
        };
        let _ = writeln!(out, "    {} {}  {signature}", self.method, self.path);
        let body = match &self.body {
            Body::Json(json) => serde_json::to_string_pretty(json).unwrap_or_default(),
            Body::Text(raw) => raw.clone(),
        };
        for line in body.lines() {
            let _ = writeln!(out, "    {line}");
        }
        let _ = writeln!(out, "<-- {}\n", self.answered);
        out
    }

    fn to_json(&self) -> Value {
        let (verified, verify_error) = match &self.verified {
            None => (Value::Null, Value::Null),
            Some(Ok(())) => (Value::Bool(true), Value::Null),
            Some(Err(reason)) => (Value::Bool(false), Value::String(reason.to_string())),
        };
        let body = match &self.body {
            Body::Json(json) => json.clone(),
            Body::Text(raw) => Value::String(raw.clone()),
        };
        json!({
            "event_type": self.event_type,
            "webhook_id": self.webhook_id,
            "attempt": self.attempt,
            "timestamp": self.timestamp,
            "method": self.method,
            "path": self.path,
            "verified": verified,
            "verify_error": verify_error,
            "status": self.answered,
            "body": body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn delivery(secret: Option<&str>, signed_with: &str) -> Delivery {
        let body = Bytes::from_static(br#"{"id":"evt_1","type":"message.new","data":{"a":1}}"#);
        let now = chrono::Utc::now().timestamp();
        let signature =
            hookrelay_verify::sign(&Secret::parse(signed_with).unwrap(), "evt_1", now, &body);
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "evt_1".parse().unwrap());
        headers.insert("webhook-timestamp", now.to_string().parse().unwrap());
        headers.insert("webhook-signature", signature.parse().unwrap());
        headers.insert("x-hookrelay-event-type", "message.new".parse().unwrap());
        headers.insert("x-hookrelay-attempt", "2".parse().unwrap());
        let listener = Listener {
            secret: secret.map(|s| Secret::parse(s).unwrap()),
            status: StatusCode::ACCEPTED,
            json: false,
        };
        Delivery::read(
            &listener,
            &Method::POST,
            &"/hooks?x=1".parse().unwrap(),
            &headers,
            &body,
        )
    }

    #[test]
    fn text_shows_type_id_attempt_verdict_and_pretty_json() {
        let text = delivery(Some(SECRET), SECRET).to_text();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("--> message.new  evt_1  attempt 2  20"),
            "{text}"
        );
        assert!(text.contains("POST /hooks?x=1  verified\n"), "{text}");
        assert!(text.contains("      \"a\": 1\n"), "{text}");
        assert!(text.ends_with("<-- 202\n\n"), "{text}");
    }

    #[test]
    fn a_wrong_secret_is_reported_with_the_reason() {
        let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let d = delivery(Some(SECRET), other);
        assert!(
            d.to_text()
                .contains("signature INVALID: no matching webhook signature"),
            "{}",
            d.to_text()
        );
        let json = d.to_json();
        assert_eq!(json["verified"], false);
        assert_eq!(json["verify_error"], "no matching webhook signature");
        assert_eq!(json["attempt"], 2);
        assert_eq!(json["body"]["data"]["a"], 1);
    }

    #[test]
    fn a_bad_secret_flag_keeps_the_verifiers_reason() {
        let error = parse_secret("whsec_not base64!").expect_err("refused");
        assert_eq!(
            error.to_string(),
            "not a webhook secret: expected whsec_<base64>"
        );
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert!(source.is_some());
        assert!(parse_secret(SECRET).is_ok());
    }

    #[test]
    fn without_a_secret_nothing_is_claimed() {
        let d = delivery(None, SECRET);
        assert!(d.to_text().contains("not checked (no --secret)"));
        assert_eq!(d.to_json()["verified"], Value::Null);
    }
}
