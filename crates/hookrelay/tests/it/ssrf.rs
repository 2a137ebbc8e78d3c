//! The SSRF guard: every spelling of a private or metadata address is refused at create and
//! update; a target that became private since is refused at connection time; redirects are
//! never followed. Tests elsewhere allow loopback; these prove the guard with it off.

use std::sync::Arc;
use std::time::Duration;

use hookrelay::domain::egress::EgressPolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(20);

/// A server with the default policy: nothing private allowed.
async fn guarded() -> TestApp {
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.delivery.targets = Arc::new(EgressPolicy::default());
    TestApp::spawn_with(db, config).await
}

fn hook(url: &str) -> Value {
    json!({"name": "ssrf", "url": url, "events": ["*"], "retry_count": 0})
}

const REFUSED: &[&str] = &[
    "http://127.1/",
    "http://0177.1/",
    "http://017700000001/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0/",
    "http://[::]/",
    "http://[::1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::7f00:1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[2002:a9fe:a9fe::1]/",
    // IPv4-translated (::ffff:0:0/96) metadata and loopback, in both notations.
    "http://[::ffff:0:a9fe:a9fe]/",
    "http://[::ffff:0:169.254.169.254]/",
    "http://[::ffff:0:7f00:1]/",
    // Local-use NAT64 (64:ff9b:1::/48), /96 and /48 layouts of 169.254.169.254.
    "http://[64:ff9b:1::a9fe:a9fe]/",
    "http://[64:ff9b:1:a9fe:a9:fe00::]/",
    // Teredo (RFC 4380's example) and an ISATAP identifier carrying the metadata address.
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[2001:db8::5efe:a9fe:a9fe]/",
    "http://[::0.0.0.2]/",
    // The rest of the IPv6 special-purpose registry.
    "http://[100::1]/",
    "http://[100:0:0:1::1]/",
    "http://[2001:1::1]/",
    "http://[2001:2::1]/",
    "http://[2001:3::1]/",
    "http://[2001:4:112::1]/",
    "http://[2001:10::1]/",
    "http://[2001:20::1]/",
    "http://[2001:30::1]/",
    "http://[2001:db8::1]/",
    "http://[2620:4f:8000::1]/",
    "http://[3fff::1]/",
    "http://[5f00::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[4000::1]/",
    // And of the IPv4 one.
    "http://192.0.0.9/",
    "http://192.0.0.170/",
    "http://192.31.196.1/",
    "http://192.52.193.1/",
    "http://192.175.48.1/",
    "http://192.0.2.1/",
    "http://203.0.113.9/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.0.1/",
    "http://100.64.0.1/",
    "http://198.18.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://168.63.129.16/",
    "http://localhost/",
    "http://localhost./",
    "http://LOCALHOST/",
    "http://x.localhost/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://a.com#@127.0.0.1/",
    "http://example.com:0/",
    "http://example.com:65536/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
];

#[tokio::test]
async fn every_spelling_of_a_private_target_is_refused_at_create_and_update() {
    require_backend!();
    let app = guarded().await;
    let t = app.tenant("Acme").await;
    let public = app.webhook(&t, hook("https://93.184.216.34/hook")).await;
    let path = format!("/api/v1/webhooks/{}", public["id"].as_str().unwrap());
    for url in REFUSED {
        let r = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&t.key),
                Some(hook(url)),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), ["url"], "{url}: {p}");
        let r = app
            .call(
                Method::PATCH,
                &path,
                Some(&t.key),
                Some(json!({"url": url})),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(fields(&p), ["url"], "PATCH {url}: {p}");
    }
    let list = app.get(&t, "/api/v1/webhooks").await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing refused was stored"
    );
    assert_eq!(
        app.get(&t, &path).await["url"],
        "https://93.184.216.34/hook"
    );

    // The reason says what the address is.
    for (url, reason) in [
        ("http://169.254.169.254/", "metadata"),
        ("http://[::ffff:0:a9fe:a9fe]/", "metadata"),
        (
            "http://[::1]/",
            "::1 is not an allowed target: loopback (::1)",
        ),
        (
            "http://[::]/",
            ":: is not an allowed target: the unspecified address (::)",
        ),
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&t.key),
                Some(hook(url)),
            )
            .await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        let message = p["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{url}: {message}");
    }
}

#[tokio::test]
async fn a_backslash_cannot_smuggle_a_host() {
    require_backend!();
    let app = guarded().await;
    let t = app.tenant("Acme").await;
    // WHATWG parsing would read "\" as "/" (host a.com, 127.0.0.1 only a path); a backslash
    // is not a URI character at all, so the URL is refused before any parser sees it.
    let r = app
        .call(
            Method::POST,
            "/api/v1/webhooks",
            Some(&t.key),
            Some(hook("http://a.com\\@127.0.0.1/")),
        )
        .await;
    assert_eq!(
        fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
        ["url"]
    );
}

#[tokio::test]
async fn allowing_loopback_never_allows_metadata() {
    let app = spawn_app!(); // loopback allowed
    let t = app.tenant("Acme").await;
    app.webhook(&t, hook("http://127.0.0.1:9/")).await;
    app.webhook(&t, hook("http://localhost:9/")).await;
    for url in [
        "http://169.254.169.254/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[::ffff:0:a9fe:a9fe]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b:1::a9fe:a9fe]/",
        "http://metadata.google.internal/",
        "http://10.0.0.1/",
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&t.key),
                Some(hook(url)),
            )
            .await;
        assert_eq!(
            fields(&problem(r, StatusCode::UNPROCESSABLE_ENTITY).await),
            ["url"],
            "{url}"
        );
    }
}

#[tokio::test]
async fn a_target_refused_since_creation_fails_at_delivery_without_connecting() {
    let rx = Receiver::start().await;
    // Created while loopback was allowed …
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let by_ip = app.webhook(&t, hook(&rx.url("/ip"))).await;
    let port = rx.base.rsplit(':').next().unwrap().to_owned();
    let by_name = app
        .webhook(&t, hook(&format!("http://localhost:{port}/name")))
        .await;
    let db = app.stop().await;
    // … then the operator closes it.
    let mut config = test_config(&db);
    config.delivery.targets = Arc::new(EgressPolicy::default());
    let app = TestApp::spawn_with(db, config).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    for (hook, needle) in [
        (
            &by_ip,
            "refused: 127.0.0.1 is not an allowed target: loopback",
        ),
        (
            &by_name,
            "refused: localhost is not an allowed target: loopback",
        ),
    ] {
        let path = format!("/api/v1/webhooks/{}/logs", hook["id"].as_str().unwrap());
        let logs = app
            .eventually(&t, &path, WAIT, |l| {
                !l["data"].as_array().unwrap().is_empty()
            })
            .await;
        let log = &logs["data"][0];
        assert!(
            log["error_message"].as_str().unwrap().starts_with(needle),
            "{log}"
        );
        assert!(log["response_status"].is_null());
        assert_eq!(log["is_success"], false);
    }
    assert!(rx.all_hits().is_empty(), "no connection was made");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let app = spawn_app!();
    let rx = Receiver::start().await;
    let t = app.tenant("Acme").await;
    for status in [301u16, 302, 303, 307, 308] {
        let path = format!("/redirect-{status}");
        // Even to a loopback path this test allows: the point is that no redirect is taken.
        let location = rx.url("/landed");
        rx.script(&path, move |_| Reply {
            headers: vec![("location", location.clone())],
            ..Reply::status(status)
        });
        let w = app.webhook(&t, hook(&rx.url(&path))).await;
        let r = app
            .call(
                Method::POST,
                &format!("/api/v1/webhooks/{}/test", w["id"].as_str().unwrap()),
                Some(&t.key),
                None,
            )
            .await;
        let out: Value = r.json().await.unwrap();
        assert_eq!(out["success"], false, "{status}: {out}");
        assert_eq!(out["response_status"], status);
    }
    // A redirect to the metadata address, through a delivery.
    rx.script("/to-metadata", |_| Reply {
        headers: vec![(
            "location",
            "http://169.254.169.254/latest/meta-data/".into(),
        )],
        ..Reply::status(302)
    });
    let w = app.webhook(&t, hook(&rx.url("/to-metadata"))).await;
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(logs["data"][0]["response_status"], 302);
    assert_eq!(logs["data"][0]["is_success"], false);
    assert!(rx.hits("/landed").is_empty(), "no redirect was followed");
}

#[tokio::test]
async fn an_unresolvable_name_is_accepted_but_fails_closed() {
    require_backend!();
    let app = guarded().await;
    let t = app.tenant("Acme").await;
    // .invalid never resolves (RFC 6761).
    let w = app
        .webhook(&t, hook("http://hooks.does-not-exist.invalid/in"))
        .await;
    let accepted = app
        .event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    let error = logs["data"][0]["error_message"].as_str().unwrap();
    assert!(
        error.starts_with("DNS lookup of hooks.does-not-exist.invalid failed"),
        "{error}"
    );
    let event = app
        .get(
            &t,
            &format!("/api/v1/events/{}", accepted["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(
        event["deliveries"][0]["state"], "failed",
        "retry_count 0: one failed attempt"
    );
}

/// A hosts file of the test's own, so that no test touches the machine's `/etc/hosts`.
fn hosts_file(text: &str) -> tempfile::NamedTempFile {
    use std::io::Write;
    let mut file = tempfile::NamedTempFile::new().expect("temp hosts file");
    file.write_all(text.as_bytes()).expect("write hosts file");
    file
}

/// A server allowing loopback (as other tests do) whose resolver reads `hosts`.
async fn with_hosts(hosts: &tempfile::NamedTempFile) -> TestApp {
    let db = TestDb::create().await;
    let mut config = test_config(&db);
    config.delivery.hosts_file = hosts.path().to_owned();
    TestApp::spawn_with(db, config).await
}

#[tokio::test]
async fn a_name_from_the_hosts_file_is_delivered_to() {
    require_backend!();
    let rx = Receiver::start().await;
    let port = rx.base.rsplit(':').next().unwrap().to_owned();
    // A single-label name, as compose files and on-premises /etc/hosts have them.
    let hosts = hosts_file("# test hosts\n127.0.0.1 hookrelay-rx receiver.hookrelay.test\n");
    let app = with_hosts(&hosts).await;
    let t = app.tenant("Acme").await;
    for name in ["hookrelay-rx", "receiver.hookrelay.test"] {
        app.webhook(&t, hook(&format!("http://{name}:{port}/{name}")))
            .await;
    }
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    for name in ["hookrelay-rx", "receiver.hookrelay.test"] {
        let hits = rx.wait_for(&format!("/{name}"), 1, WAIT).await;
        assert_eq!(hits.len(), 1, "{name} was delivered to");
    }
}

#[tokio::test]
async fn a_name_the_hosts_file_maps_into_a_blocked_range_is_refused_at_create() {
    require_backend!();
    let hosts = hosts_file("169.254.169.254 imds-alias\n10.1.2.3 intranet-db\n127.0.0.1 fine\n");
    let app = with_hosts(&hosts).await; // loopback allowed, nothing else
    let t = app.tenant("Acme").await;
    let ok = app.webhook(&t, hook("http://fine:9/")).await;
    let path = format!("/api/v1/webhooks/{}", ok["id"].as_str().unwrap());
    for (url, needle) in [
        (
            "http://imds-alias/latest/meta-data/",
            "imds-alias (169.254.169.254) is not an allowed target: a cloud metadata endpoint",
        ),
        (
            "http://intranet-db:5432/",
            "intranet-db (10.1.2.3) is not an allowed target: a private network",
        ),
    ] {
        for (method, target) in [(Method::POST, "/api/v1/webhooks"), (Method::PATCH, &*path)] {
            let body = if method == Method::POST {
                hook(url)
            } else {
                json!({"url": url})
            };
            let r = app
                .call(method.clone(), target, Some(&t.key), Some(body))
                .await;
            let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
            assert_eq!(fields(&p), ["url"], "{method} {url}: {p}");
            let message = p["errors"][0]["message"].as_str().unwrap();
            assert!(message.starts_with(needle), "{message}");
        }
    }
}

#[tokio::test]
async fn a_hosts_file_entry_changed_after_create_is_refused_at_delivery() {
    require_backend!();
    let rx = Receiver::start().await;
    let port = rx.base.rsplit(':').next().unwrap().to_owned();
    let hosts = hosts_file("127.0.0.1 moving-target\n");
    let app = with_hosts(&hosts).await;
    let t = app.tenant("Acme").await;
    let w = app
        .webhook(&t, hook(&format!("http://moving-target:{port}/in")))
        .await;
    // The operator's hosts file now points the name at the metadata service.
    std::fs::write(hosts.path(), "169.254.169.254 moving-target\n").expect("rewrite hosts");
    app.event(&t, json!({"type": "message.new", "data": {}}))
        .await;
    let path = format!("/api/v1/webhooks/{}/logs", w["id"].as_str().unwrap());
    let logs = app
        .eventually(&t, &path, WAIT, |l| {
            !l["data"].as_array().unwrap().is_empty()
        })
        .await;
    let log = &logs["data"][0];
    assert!(
        log["error_message"].as_str().unwrap().starts_with(
            "refused: moving-target (169.254.169.254) is not an allowed target: a cloud metadata"
        ),
        "{log}"
    );
    assert!(log["response_status"].is_null());
    assert!(rx.all_hits().is_empty(), "no connection was made");
}
