//! Rate limits and quotas: each answered 429 in problem form, with `Retry-After` where waiting
//! helps; deliveries over a webhook's own rate wait instead of being dropped.

use std::time::Duration;

use reqwest::Method;
use reqwest::StatusCode;
use serde_json::json;

use super::helpers::*;
use super::receiver::{Receiver, Reply};

async fn spawn_limited(limits: hookrelay::config::RateLimitConfig) -> TestApp {
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.rate_limits = limits;
    TestApp::spawn_with(db, config).await
}

fn off() -> hookrelay::config::RateLimitConfig {
    hookrelay::config::RateLimitConfig {
        per_key: 0,
        per_ip: 0,
        auth_failures_per_minute: 0,
        test_sends_per_minute: 0,
        client_ip_header: None,
    }
}

/// Whole seconds in `Retry-After`, checked to be present and at least 1.
fn retry_after(r: &reqwest::Response) -> u64 {
    let value = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let secs = value.expect("a Retry-After in whole seconds");
    assert!(secs >= 1, "Retry-After {secs}");
    secs
}

#[tokio::test]
async fn a_tenant_key_over_its_rate_gets_429_and_other_keys_do_not() {
    require_backend!();
    let app = spawn_limited(hookrelay::config::RateLimitConfig {
        per_key: 1,
        ..off()
    })
    .await;
    let (a, b) = (app.tenant("a").await, app.tenant("b").await);
    // One a second: ten back-to-back requests cannot all pass (unless they took 9 s).
    let mut limited = None;
    for _ in 0..10 {
        let r = app
            .call(Method::GET, "/api/v1/webhooks", Some(&a.key), None)
            .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = limited.expect("the tenant key was never limited");
    assert!(retry_after(&r) <= 1);
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["type"], "https://hookrelay.dev/problems/rate-limited");
    assert!(
        p["detail"].as_str().unwrap().contains("this API key"),
        "{p}"
    );
    // Tenant B's key has its own allowance; the admin key is the operator's and unlimited.
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&b.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    for _ in 0..5 {
        let r = app.admin(Method::GET, "/api/v1/tenants", None).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn a_client_address_over_its_rate_gets_429_before_authentication() {
    require_backend!();
    let app = spawn_limited(hookrelay::config::RateLimitConfig { per_ip: 1, ..off() }).await;
    // Guessing keys costs requests: unauthenticated calls count against the address.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = app
            .call(Method::GET, "/api/v1/webhooks", Some("hr_nope_guess"), None)
            .await;
        statuses.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after(&r);
            problem(r, StatusCode::TOO_MANY_REQUESTS).await;
            break;
        }
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
    // Health checks are outside the API and never limited.
    for _ in 0..5 {
        let r = app.client.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

/// The defaults aim at guessing, not at the platform: a valid key posting from one address
/// is not held back (it used to get 429 past 200 requests a second).
#[tokio::test]
async fn defaults_do_not_throttle_a_valid_key_from_one_address() {
    require_backend!();
    let app = spawn_limited(hookrelay::config::RateLimitConfig::default()).await;
    let t = app.tenant("busy").await;
    let url = app.url("/api/v1/webhooks");
    // 32 clients at once, 32 requests each, as fast as the server answers.
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (client, url, key) = (app.client.clone(), url.clone(), t.key.clone());
        clients.spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..32 {
                let r = client.get(&url).bearer_auth(&key).send().await;
                statuses.push(r.expect("an answer").status().as_u16());
            }
            statuses
        });
    }
    let mut statuses = std::collections::BTreeMap::new();
    while let Some(done) = clients.join_next().await {
        for status in done.expect("client task") {
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    assert_eq!(
        statuses,
        [(200, 1024)].into_iter().collect(),
        "{statuses:?}"
    );
}

/// Past 60 failed authentications in a minute, an address is refused before its key is
/// looked at, even a valid one, so that guessing stays slow; others are not affected.
#[tokio::test]
async fn failed_authentications_get_the_address_refused_before_its_key_is_checked() {
    require_backend!();
    let app = spawn_limited(hookrelay::config::RateLimitConfig::default()).await;
    let t = app.tenant("t").await;
    let mut failures = 0;
    let limited = loop {
        let r = app
            .call(Method::GET, "/api/v1/webhooks", Some("hr_nope_guess"), None)
            .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            break r;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        failures += 1;
        assert!(
            failures <= 200,
            "200 failed authentications and never limited"
        );
    };
    // The allowance is 60 a minute, refilling about one a second.
    assert!(failures >= 60, "limited after only {failures} failures");
    let wait = retry_after(&limited);
    let p = problem(limited, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("failed authentications from this client address"),
        "{p}"
    );
    // Refused before the key is checked: the valid key gets the same answer meanwhile.
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&t.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Health checks are outside the API.
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // After the wait it asked for, the valid key works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&t.key), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn test_sends_are_limited_per_webhook() {
    require_backend!();
    let app = spawn_limited(hookrelay::config::RateLimitConfig {
        test_sends_per_minute: 2,
        ..off()
    })
    .await;
    let rx = Receiver::start().await;
    let t = app.tenant("t").await;
    let one = app
        .webhook(
            &t,
            json!({"name": "one", "url": rx.url("/one"), "events": ["*"]}),
        )
        .await;
    let two = app
        .webhook(
            &t,
            json!({"name": "two", "url": rx.url("/two"), "events": ["*"]}),
        )
        .await;
    let test = |id: &str| format!("/api/v1/webhooks/{id}/test");
    let one_id = one["id"].as_str().unwrap();
    for _ in 0..2 {
        let r = app
            .call(Method::POST, &test(one_id), Some(&t.key), None)
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = app
        .call(Method::POST, &test(one_id), Some(&t.key), None)
        .await;
    // Two a minute: the next one is about half a minute away.
    assert!(retry_after(&r) >= 10);
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(p["detail"].as_str().unwrap().contains("test sends"), "{p}");
    // Limited per webhook: the other one still has its allowance.
    let r = app
        .call(
            Method::POST,
            &test(two["id"].as_str().unwrap()),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(rx.hits("/one").len(), 2);
}

#[tokio::test]
async fn webhooks_per_tenant_are_capped_exactly_even_under_concurrent_creates() {
    require_backend!();
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.max_webhooks_per_tenant = 3;
    let app = TestApp::spawn_with(db, config).await;
    let (t, other) = (app.tenant("t").await, app.tenant("other").await);
    let mut creates = tokio::task::JoinSet::new();
    for n in 0..10 {
        let request = app
            .client
            .post(app.url("/api/v1/webhooks"))
            .bearer_auth(&t.key)
            .json(
                &json!({"name": format!("h{n}"), "url": "https://example.com/h", "events": ["*"]}),
            );
        creates.spawn(async move { request.send().await.expect("sent") });
    }
    let answers = creates.join_all().await;
    let created = answers
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 3, "exactly the quota is created");
    let refused = answers
        .into_iter()
        .find(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .expect("the rest are refused");
    // Waiting does not help, so no Retry-After invites a client to spin.
    assert!(refused.headers().get("retry-after").is_none());
    let p = problem(refused, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["type"], "https://hookrelay.dev/problems/quota-exceeded");
    assert!(p["detail"].as_str().unwrap().contains("3 webhooks"), "{p}");
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3);
    // Per tenant: another tenant is unaffected; deleting one frees a place.
    app.webhook(&other, sample_webhook()).await;
    let id = list["data"][0]["id"].as_str().unwrap();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            Some(&t.key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.webhook(&t, sample_webhook()).await;
}

#[tokio::test]
async fn deliveries_over_a_webhooks_rate_wait_and_none_is_dropped() {
    require_backend!();
    let app = TestApp::spawn().await;
    let rx = Receiver::start().await;
    rx.script("/paced", |_| Reply::status(200));
    let t = app.tenant("t").await;
    let hook = app
        .webhook(
            &t,
            json!({"name": "paced", "url": rx.url("/paced"), "events": ["*"],
                   "rate_limit_per_second": 2}),
        )
        .await;
    assert_eq!(hook["rate_limit_per_second"], 2);
    let n = 7;
    for i in 0..n {
        app.event(&t, json!({"type": "message.new", "data": {"i": i}}))
            .await;
    }
    let hits = rx.wait_for("/paced", n, Duration::from_secs(30)).await;
    assert_eq!(hits.len(), n, "every delivery arrives");
    // A lower bound only (a slow machine is slower, never faster): a burst of 2, then 2 a
    // second, so the 7th cannot arrive before 2.5 s after the first.
    let span = hits[n - 1].at.duration_since(hits[0].at);
    assert!(span >= Duration::from_millis(2400), "{span:?}");
    // The limit can be lifted; `null` removes it.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap()),
            Some(&t.key),
            Some(json!({"rate_limit_per_second": null})),
        )
        .await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["rate_limit_per_second"].is_null(), "{body}");
}

#[tokio::test]
async fn rate_limit_per_second_is_validated() {
    let app = spawn_app!();
    let t = app.tenant("t").await;
    for bad in [json!(0), json!(-1), json!(10_001), json!(1.5), json!("5")] {
        let mut body = sample_webhook();
        body["rate_limit_per_second"] = bad.clone();
        let r = app
            .call(Method::POST, "/api/v1/webhooks", Some(&t.key), Some(body))
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), ["rate_limit_per_second"], "{bad}");
    }
}
