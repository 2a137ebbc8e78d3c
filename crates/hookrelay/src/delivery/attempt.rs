//! One HTTP attempt: sign, POST, read a capped response, describe what happened.
//!
//! One shared client (keep-alive pools, HTTP/1.1 and HTTP/2 by ALPN), no redirects followed,
//! no proxies from the environment, and one deadline covering connect, headers and body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::domain::delivery::{AttemptOutcome, Target};
use crate::domain::egress::{Blocked, EgressPolicy};
use crate::domain::retry::parse_retry_after;
use crate::domain::time::Timestamp;
use crate::egress::{GuardError, GuardedResolver, Resolver, check_literal};

pub const USER_AGENT_VALUE: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));

/// Lets an `Arc<str>` event body be sent without copying it.
struct SharedBody(Arc<str>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// What to send: the envelope and the facts its headers carry.
pub struct Message<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub attempt: u32,
    pub body: Arc<str>,
}

pub struct Sender {
    client: reqwest::Client,
    body_cap: usize,
    policy: Arc<EgressPolicy>,
}

impl Sender {
    pub fn new(
        connect_timeout: Duration,
        body_cap: usize,
        policy: Arc<EgressPolicy>,
        resolver: Arc<Resolver>,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                resolver,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        Ok(Sender {
            client,
            body_cap,
            policy,
        })
    }

    /// Makes the attempt. Never fails: every way it can go wrong is an outcome.
    pub async fn send(&self, target: &Target, message: Message<'_>) -> AttemptOutcome {
        let started_at = Timestamp::now();
        let headers = signed_headers(target, &message, started_at);
        let request_headers = headers_json(&headers, target);
        let body = Bytes::from_owner(SharedBody(message.body));
        let mut outcome = AttemptOutcome {
            started_at,
            request_headers,
            ..AttemptOutcome::default()
        };
        // Names are checked by the resolver; a literal address never reaches DNS.
        match url::Url::parse(&target.url) {
            Ok(url) => {
                if let Err(blocked) = check_literal(&self.policy, &url) {
                    outcome.error = Some(format!("refused: {blocked}"));
                    return outcome;
                }
            }
            Err(e) => {
                outcome.error = Some(format!("invalid URL: {e}"));
                return outcome;
            }
        }
        let clock = Instant::now();
        let exchange = async {
            let response = self
                .client
                .post(&target.url)
                .headers(headers)
                .body(body)
                .send()
                .await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Timestamp::now()));
            let (text, truncated) = read_capped(response, self.body_cap).await;
            Ok::<_, reqwest::Error>((status, retry_after, text, truncated))
        };
        let result = tokio::time::timeout(target.timeout, exchange).await;
        outcome.response_time_ms = clock.elapsed().as_millis() as i64;
        match result {
            Ok(Ok((status, retry_after, text, truncated))) => {
                outcome.response_status = Some(status);
                outcome.retry_after = retry_after;
                outcome.response_body = text;
                outcome.response_body_truncated = truncated;
            }
            Ok(Err(error)) => outcome.error = Some(describe(&error, target.timeout)),
            Err(_) => outcome.error = Some(timed_out(target.timeout)),
        }
        outcome
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} s", timeout.as_secs())
}

/// The Standard Webhooks headers plus ours (DESIGN §4).
fn signed_headers(target: &Target, message: &Message<'_>, at: Timestamp) -> HeaderMap {
    let timestamp = at.millis() / 1000;
    // One `v1,` signature per secret, space-separated: during a rotation receivers holding
    // either the new or the old secret can verify. Secrets are validated on the way in; an
    // unreadable one signs nothing rather than a request no receiver could verify.
    let signature = target
        .secrets
        .iter()
        .filter_map(|s| hookrelay_verify::Secret::parse(s).ok())
        .map(|secret| {
            hookrelay_verify::sign(
                &secret,
                message.event_id,
                timestamp,
                message.body.as_bytes(),
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let mut headers = HeaderMap::with_capacity(8 + target.headers.len());
    // The tenant's own headers first; validation keeps them off every name set below.
    for (name, value) in &target.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    let mut put = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("webhook-id", message.event_id);
    put("webhook-timestamp", &timestamp.to_string());
    put("webhook-signature", &signature);
    put("x-hookrelay-event-type", message.event_type);
    put("x-hookrelay-attempt", &message.attempt.to_string());
    headers
}

/// The sent headers as the attempt log shows them. Custom header values are sealed at rest
/// because they often carry a receiver's credentials, so the log names them but hides values.
fn headers_json(headers: &HeaderMap, target: &Target) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| {
            let custom = target.headers.iter().any(|(n, _)| n == k.as_str());
            let value = if custom {
                crate::domain::headers::MASK.to_owned()
            } else {
                v.to_str().unwrap_or_default().to_owned()
            };
            (k.as_str().to_owned(), serde_json::Value::String(value))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// Reads at most `cap` bytes of the body, then stops (the rest is never downloaded).
async fn read_capped(mut response: reqwest::Response, cap: usize) -> (Option<String>, bool) {
    if cap == 0 {
        return (None, false);
    }
    let mut body: Vec<u8> = Vec::new();
    let mut truncated = false;
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    // Stored as text: invalid UTF-8 becomes U+FFFD, and so does NUL, which PostgreSQL text
    // cannot hold (a hostile receiver must not be able to make its log row unwritable).
    let text = String::from_utf8_lossy(&body).replace('\0', "\u{FFFD}");
    (Some(text), truncated)
}

/// A transport failure in plain words, recognised by error kinds rather than message text.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return timed_out(timeout);
    }
    if let Some(blocked) = source_of::<Blocked>(error) {
        return format!("refused: {blocked}");
    }
    if let Some(GuardError::Blocked(blocked)) = source_of::<GuardError>(error) {
        return format!("refused: {blocked}");
    }
    if let Some(GuardError::Lookup(failed)) = source_of::<GuardError>(error) {
        return failed.to_string();
    }
    if let Some(http) = source_of::<hyper::Error>(error) {
        // A receiver sending a megabyte of headers is cut off at hyper's buffer limit.
        if http.is_parse_too_large() {
            return "response headers too large".into();
        }
        if http.is_parse() {
            return format!("malformed HTTP response: {http}");
        }
    }
    let io = source_of::<std::io::Error>(error);
    if error.is_connect() {
        return match io.map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".into(),
            Some(std::io::ErrorKind::ConnectionReset) => "connection reset by peer".into(),
            Some(std::io::ErrorKind::TimedOut) => "connection timed out".into(),
            _ => format!("could not connect: {}", chain(error)),
        };
    }
    match io.map(std::io::Error::kind) {
        Some(std::io::ErrorKind::ConnectionReset) => "connection reset by peer".into(),
        Some(std::io::ErrorKind::UnexpectedEof) => "connection closed before a response".into(),
        _ => format!("request failed: {}", chain(error)),
    }
}

fn source_of<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error.source();
    while let Some(e) = current {
        let next = e.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        current = e.source();
    }
    text
}
