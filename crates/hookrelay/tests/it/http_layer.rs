//! What the HTTP layer answers by itself, before or around any handler: every error is a
//! problem (`application/problem+json`), also those hyper makes for a head it cannot parse,
//! and the HTML page carries its protective headers.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::helpers::*;

/// What the client does after sending its bytes.
pub(super) enum Then {
    /// Closes its sending half: the server sees the body end early.
    Close,
    /// Sends nothing more and waits for an answer.
    Stall,
}

/// The status, head (lowercase) and body of the first answer to raw `request` bytes. The
/// request is written by its own task, so an answer sent while the server stops reading (a
/// head too large) is still read.
pub(super) async fn raw(app: &TestApp, request: Vec<u8>, then: Then) -> (u16, String, Value) {
    let address = app.base.trim_start_matches("http://");
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&request).await;
        if let Then::Close = then {
            let _ = write.shutdown().await;
        }
        write
    });
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let answer = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length {
                    let status = head[9..12].parse().unwrap();
                    let body = serde_json::from_slice(&buf[end + 4..end + 4 + length])
                        .unwrap_or(Value::Null);
                    return (status, head, body);
                }
            }
            let n = read.read(&mut chunk).await.unwrap_or(0);
            assert!(n > 0, "connection closed without a whole answer: {buf:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("an answer, not a hang");
    writer.abort();
    answer
}

fn assert_problem(head: &str, body: &Value, status: u16, slug: &str) {
    assert!(
        head.contains("content-type: application/problem+json"),
        "{status}: {head}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(
        body["type"],
        format!("https://hookrelay.dev/problems/{slug}"),
        "{body}"
    );
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn a_nul_in_a_header_value_is_a_400_problem() {
    let app = spawn_app!();
    let request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-note: a\0b\r\n\r\n".to_vec();
    let (status, head, body) = raw(&app, request, Then::Stall).await;
    assert_eq!(status, 400, "{head}");
    assert_problem(&head, &body, 400, "bad-request");
}

#[tokio::test]
async fn a_mebibyte_of_headers_is_a_431_problem_naming_the_limit() {
    let app = spawn_app!();
    let mut request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    let (status, head, body) = raw(&app, request, Then::Stall).await;
    assert_eq!(status, 431, "{head}");
    assert_problem(&head, &body, 431, "headers-too-large");
    assert!(body["detail"].as_str().unwrap().contains("65536"), "{body}");
}

/// hyper's own 414 (a URI past 65,534 bytes, reachable when the head limit is larger) is
/// answered as the documented problem too.
#[tokio::test]
async fn a_uri_too_long_for_hyper_is_a_414_problem() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.connections.max_header_bytes = 128 * 1024;
    let app = TestApp::spawn_with(db, config).await;
    let request = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000));
    let (status, head, body) = raw(&app, request.into_bytes(), Then::Stall).await;
    assert_eq!(status, 414, "{head}");
    assert_problem(&head, &body, 414, "uri-too-long");
}

#[tokio::test]
async fn two_authorization_headers_are_a_400_problem() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let r = app
        .client
        .get(app.url("/api/v1/webhooks"))
        .header("authorization", format!("Bearer {}", t.key))
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .send()
        .await
        .unwrap();
    let p = problem(r, StatusCode::BAD_REQUEST).await;
    assert!(
        p["detail"].as_str().unwrap().contains("Authorization"),
        "{p}"
    );
    // One header (either) is fine.
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&t.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_error_of_the_http_layer_is_a_problem() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.body_read_timeout = Duration::from_secs(1);
    config.max_body_bytes = 4096;
    let app = TestApp::spawn_with(db, config).await;
    let t = app.tenant("Acme").await;
    let key = &t.key;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "unknown route",
            b"GET /nope HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            404,
            "no-route",
        ),
        (
            "wrong method",
            b"PUT /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n".to_vec(),
            405,
            "method-not-allowed",
        ),
        (
            "no content type",
            format!(
                "POST /api/v1/webhooks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
                 content-length: 2\r\n\r\n{{}}"
            )
            .into_bytes(),
            415,
            "unsupported-media-type",
        ),
        (
            "body too large",
            format!(
                "POST /api/v1/webhooks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
                 content-type: application/json\r\ncontent-length: 5000\r\n\r\n{}",
                " ".repeat(5000)
            )
            .into_bytes(),
            413,
            "payload-too-large",
        ),
        (
            "body too slow",
            format!(
                "POST /api/v1/webhooks HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\
                 content-type: application/json\r\ncontent-length: 100\r\n\r\n{{"
            )
            .into_bytes(),
            408,
            "request-timeout",
        ),
        (
            "malformed request line",
            b"GET /healthz HTTP/9.9\r\nhost: x\r\n\r\n".to_vec(),
            400,
            "bad-request",
        ),
        (
            "control character in a header",
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-a: \x01\r\n\r\n".to_vec(),
            400,
            "bad-request",
        ),
        (
            "invalid header name",
            b"GET /healthz HTTP/1.1\r\nhost: x\r\nx a: b\r\n\r\n".to_vec(),
            400,
            "bad-request",
        ),
        (
            "URI past the head limit",
            format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
            431,
            "headers-too-large",
        ),
        (
            "two different content lengths (request smuggling)",
            b"POST /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\
              content-length: 2\r\n\r\nab"
                .to_vec(),
            400,
            "bad-request",
        ),
    ];
    for (what, request, status, slug) in cases {
        let (got, head, body) = raw(&app, request, Then::Stall).await;
        assert_eq!(got, status, "{what}: {head}\n{body}");
        assert_problem(&head, &body, status, slug);
    }
    // A batch that is not JSON at all: the extractor's problem, like any other body.
    let r = app
        .client
        .post(app.url("/api/v1/events/batch"))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body("nope")
        .send()
        .await
        .unwrap();
    problem(r, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn the_reference_page_forbids_sniffing_and_foreign_content() {
    let app = spawn_app!();
    let r = app.call(Method::GET, "/docs/api", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    // The page only loads what it may: its own bundle and document.
    let html = r.text().await.unwrap();
    assert!(
        html.contains("src=\"/docs/api/redoc.standalone.js\""),
        "{html}"
    );
    // Every other answer is not to be sniffed either: JSON, problems, the bundle.
    for path in ["/healthz", "/nope", "/docs/api/redoc.standalone.js"] {
        let r = app.call(Method::GET, path, None, None).await;
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
}
