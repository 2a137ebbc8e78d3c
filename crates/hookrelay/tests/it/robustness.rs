//! Clients that lie: a `Content-Length` that does not match the body, a cursor taken from
//! another tenant. Each gets a clear 4xx problem, never a 500, a hang or a crash.

use std::time::Duration;

use super::helpers::*;
use super::http_layer::Then;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The status and problem body of the first answer to raw `request` bytes.
async fn raw(app: &TestApp, request: &[u8], then: Then) -> (u16, Value) {
    let (status, head, body) = super::http_layer::raw(app, request.to_vec(), then).await;
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    (status, body)
}

fn post(key: &str, content_length: usize, body: &str) -> Vec<u8> {
    format!(
        "POST /api/v1/webhooks HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {key}\r\n\
         content-type: application/json\r\ncontent-length: {content_length}\r\n\r\n{body}"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_content_length_longer_than_the_body_then_close_is_400() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let body = sample_webhook().to_string();
    let (status, problem) = raw(&app, &post(&t.key, body.len() + 500, &body), Then::Close).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("request body"),
        "{problem}"
    );
    // Nothing was created from the half-sent body.
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn a_content_length_longer_than_the_body_then_silence_is_408() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.body_read_timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(db, config).await;
    let t = app.tenant("Acme").await;
    let body = sample_webhook().to_string();
    let (status, problem) = raw(&app, &post(&t.key, body.len() + 500, &body), Then::Stall).await;
    assert_eq!(status, 408, "{problem}");
    assert_eq!(problem["status"], 408);
    assert!(
        problem["detail"].as_str().unwrap().contains("1 s"),
        "{problem}"
    );
}

#[tokio::test]
async fn a_content_length_shorter_than_the_body_is_400_for_the_cut_json() {
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let body = sample_webhook().to_string();
    // The server reads the declared 20 bytes; the rest is not a request and is not answered
    // as one (the first answer is what counts).
    let (status, problem) = raw(&app, &post(&t.key, 20, &body), Then::Stall).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("malformed JSON"),
        "{problem}"
    );
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn a_cursor_from_another_tenant_is_refused() {
    let app = spawn_app!();
    let a = app.tenant("A").await;
    let b = app.tenant("B").await;
    for _ in 0..2 {
        app.webhook(&a, sample_webhook()).await;
        app.webhook(&b, sample_webhook()).await;
    }
    let page = app.get(&a, "/api/v1/webhooks?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap();
    // Good for A…
    let next = app
        .get(&a, &format!("/api/v1/webhooks?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    // …for B, a 404: no page of B's list starts there, exactly as for a cursor never issued.
    let foreign = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks?limit=1&cursor={cursor}"),
            Some(&b.key),
            None,
        )
        .await;
    let foreign = problem(foreign, StatusCode::NOT_FOUND).await;
    let made_up = app
        .call(
            Method::GET,
            "/api/v1/webhooks?limit=1&cursor=AAAAAAAAAAAAAAAA",
            Some(&b.key),
            None,
        )
        .await;
    assert_eq!(foreign, problem(made_up, StatusCode::NOT_FOUND).await);
    // A's own cursor on A's other list (its keys) is no page of that list either.
    let r = app
        .admin(
            Method::GET,
            &format!("/api/v1/tenants/{}/keys?limit=1&cursor={cursor}", a.id),
            None,
        )
        .await;
    problem(r, StatusCode::NOT_FOUND).await;
    // A cursor that is not even of the documented shape is a 422 naming it.
    let r = app
        .call(
            Method::GET,
            "/api/v1/webhooks?limit=1&cursor=not%20a%20cursor",
            Some(&b.key),
            None,
        )
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(fields(&p), ["cursor"]);

    // The same for a webhook's log: a cursor from one webhook's log is refused on another's.
    let rx = super::receiver::Receiver::start().await;
    let mut body = sample_webhook();
    body["url"] = json!(rx.url("/a"));
    body["events"] = json!(["*"]);
    let w1 = app.webhook(&a, body.clone()).await;
    let w2 = app.webhook(&a, body).await;
    for _ in 0..2 {
        app.event(&a, json!({"type": "message.new", "data": {}}))
            .await;
    }
    let logs1 = format!("/api/v1/webhooks/{}/logs", w1["id"].as_str().unwrap());
    let logs = app
        .eventually(&a, &logs1, Duration::from_secs(20), |l| {
            l["data"].as_array().unwrap().len() == 2
        })
        .await;
    assert_eq!(logs["data"].as_array().unwrap().len(), 2);
    let page = app.get(&a, &format!("{logs1}?limit=1")).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let r = app
        .call(
            Method::GET,
            &format!(
                "/api/v1/webhooks/{}/logs?limit=1&cursor={cursor}",
                w2["id"].as_str().unwrap()
            ),
            Some(&a.key),
            None,
        )
        .await;
    let p = problem(r, StatusCode::NOT_FOUND).await;
    assert!(p["detail"].as_str().unwrap().contains("cursor"), "{p}");
}

#[tokio::test]
async fn a_made_up_cursor_in_ones_own_list_is_not_found_and_real_ones_survive_a_restart() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app!();
    let t = app.tenant("A").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            app.webhook(&t, sample_webhook()).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = app.get(&t, "/api/v1/webhooks?limit=1").await;
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let list = |c: &str| format!("/api/v1/webhooks?limit=1&cursor={c}");
    // What a client could make up from what it sees: its own scope and one of its own ids,
    // in the unsigned form cursors once had, or a real cursor with one character changed.
    let forged = URL_SAFE_NO_PAD.encode(format!("webhooks/{}:{}", t.id, ids[2]));
    let mut edited = cursor.clone().into_bytes();
    let last = edited.len() - 1;
    edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    for made_up in [forged.as_str(), edited.as_str()] {
        let r = app
            .call(Method::GET, &list(made_up), Some(&t.key), None)
            .await;
        let p = problem(r, StatusCode::NOT_FOUND).await;
        assert!(p["detail"].as_str().unwrap().contains("cursor"), "{p}");
    }
    // Compact and URL-safe.
    assert!(cursor.len() <= 64, "{cursor}");
    assert!(
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // The real cursor pages, before and after a restart (the key comes from the operator key).
    let before = app.get(&t, &list(&cursor)).await;
    let db = app.stop().await;
    let app = TestApp::spawn_in(db).await;
    let after = app.get(&t, &list(&cursor)).await;
    assert_eq!(before["data"][0]["id"], after["data"][0]["id"]);
    assert_eq!(before["data"].as_array().unwrap().len(), 1);
}
