//! The client commands (`tenants`, `keys`, `send`) run as the real binary against a real
//! server; their effects are checked through the API.

use std::process::Output;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::{ADMIN_KEY, TestApp};
use super::receiver::Receiver;

/// Runs `hookrelay <args>` against `app` with `key`, the way a person would.
pub async fn hookrelay(app: &TestApp, key: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    command
        .args(args)
        .env("HOOKRELAY_URL", &app.base)
        .env_remove("HOOKRELAY_KEY")
        .env_remove("HOOKRELAY_TENANT");
    if !key.is_empty() {
        command.env("HOOKRELAY_KEY", key);
    }
    command.output().await.expect("run hookrelay")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs and checks success; the stdout.
pub(super) async fn ok(app: &TestApp, key: &str, args: &[&str]) -> String {
    let output = hookrelay(app, key, args).await;
    assert!(
        output.status.success(),
        "hookrelay {args:?} failed: {}{}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_keys_made_by_the_cli_are_real() {
    let app = spawn_app!();
    let created = ok(
        &app,
        ADMIN_KEY,
        &["tenants", "create", "Acme Clinic", "--json"],
    )
    .await;
    let tenant: Value = serde_json::from_str(&created).unwrap();
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let r = app
        .admin(Method::GET, &format!("/api/v1/tenants/{tenant_id}"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Acme Clinic");

    let text = ok(&app, ADMIN_KEY, &["tenants", "create", "Beta Dental"]).await;
    assert!(
        text.starts_with("Created tenant ten_") && text.contains("(Beta Dental)"),
        "{text}"
    );
    let list = ok(&app, ADMIN_KEY, &["tenants", "list"]).await;
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAME"),
        "{list}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&tenant_id) && l.contains("Acme Clinic"))
    );
    assert_eq!(lines.len(), 3, "a header and two tenants: {list}");

    // A key made by the CLI opens the tenant's routes; revoked by the CLI, it no longer does.
    let created = ok(
        &app,
        ADMIN_KEY,
        &[
            "keys",
            "create",
            &tenant_id,
            "--name",
            "crm-backend",
            "--json",
        ],
    )
    .await;
    let key: Value = serde_json::from_str(&created).unwrap();
    let (token, key_id) = (key["key"].as_str().unwrap(), key["id"].as_str().unwrap());
    assert_eq!(key["name"], "crm-backend");
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(token), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let listed = ok(&app, ADMIN_KEY, &["keys", "list", &tenant_id]).await;
    assert!(
        listed.contains(key_id) && listed.contains("crm-backend") && !listed.contains(token),
        "{listed}"
    );
    let text = ok(&app, ADMIN_KEY, &["keys", "revoke", &tenant_id, key_id]).await;
    assert!(text.starts_with(&format!("Revoked key {key_id}")), "{text}");
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(token), None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The text form shows the key once, on a line of its own.
    let text = ok(&app, ADMIN_KEY, &["keys", "create", &tenant_id]).await;
    let shown = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("hr_"))
        .expect("the key is printed");
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(shown), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_delivers_and_waits_for_the_outcome() {
    let receiver = Receiver::start().await;
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    app.webhook(
        &tenant,
        json!({"name": "crm", "url": receiver.url("/in"), "events": ["message.new"]}),
    )
    .await;

    let output = hookrelay(
        &app,
        &tenant.key,
        &[
            "send",
            "message.new",
            r#"{"text": "Oi!"}"#,
            "--idempotency-key",
            "wamid.1",
            "--wait",
        ],
    )
    .await;
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(output.status.success(), "{out}{err}");
    assert!(out.starts_with("Accepted evt_"), "{out}");
    assert!(out.contains("(message.new): 1 delivery."), "{out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("dlv_"))
        .expect("a delivery row");
    assert!(row.contains("succeeded") && row.contains(" 200 "), "{out}");
    assert!(
        err.contains(
            "waiting: 1 of 1 deliveries ended (1 succeeded, 0 failed), attempts so far: 1"
        ),
        "{err}"
    );
    let event_id = out
        .split_whitespace()
        .nth(1)
        .expect("the event id")
        .to_owned();
    let event = app
        .get(&tenant, &format!("/api/v1/events/{event_id}"))
        .await;
    assert_eq!(event["data"], json!({"text": "Oi!"}));
    assert_eq!(event["idempotency_key"], "wamid.1");
    assert_eq!(receiver.hits("/in").len(), 1);

    // Again with the same idempotency key: the first event, nothing new sent.
    let out = ok(
        &app,
        &tenant.key,
        &["send", "message.new", "{}", "--idempotency-key", "wamid.1"],
    )
    .await;
    assert!(
        out.starts_with(&format!("Already accepted as {event_id}")),
        "{out}"
    );

    // The admin key names the tenant; the data can come from stdin-less files too.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.json");
    std::fs::write(&file, r#"{"text": "from a file"}"#).unwrap();
    let out = ok(
        &app,
        ADMIN_KEY,
        &[
            "send",
            "message.new",
            &format!("@{}", file.display()),
            "--tenant",
            &tenant.id,
            "--json",
        ],
    )
    .await;
    let accepted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(accepted["deliveries"], 1);
    let id = accepted["id"].as_str().unwrap();
    let event = app.get(&tenant, &format!("/api/v1/events/{id}")).await;
    assert_eq!(event["data"]["text"], "from a file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_makes_send_wait_fail() {
    let receiver = Receiver::start().await;
    receiver.script("/down", |_| super::receiver::Reply::status(500));
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    app.webhook(
        &tenant,
        json!({"name": "down", "url": receiver.url("/down"), "events": ["*"], "retry_count": 0}),
    )
    .await;
    let output = hookrelay(
        &app,
        &tenant.key,
        &["send", "contact.created", "{}", "--wait", "--json"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    let event: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(event["deliveries"][0]["state"], "failed");
    assert_eq!(event["deliveries"][0]["last_status"], 500);
    assert!(
        stderr(&output).ends_with("error: 1 of 1 deliveries failed; see the webhook's logs\n"),
        "{}",
        stderr(&output)
    );
}

/// docs/cli.md: `send --wait` exits 1 when deliveries are still pending at `--timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_wait_gives_up_at_its_timeout() {
    let receiver = Receiver::start().await;
    // The retry waits at least the test server's 5 s cap, far past the 1 s timeout.
    receiver.script("/busy", |_| super::receiver::Reply {
        headers: vec![("retry-after", "3600".into())],
        ..super::receiver::Reply::status(503)
    });
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    app.webhook(
        &tenant,
        json!({"name": "busy", "url": receiver.url("/busy"), "events": ["*"], "retry_count": 5}),
    )
    .await;
    let output = hookrelay(
        &app,
        &tenant.key,
        &["send", "contact.created", "{}", "--wait", "--timeout", "1s"],
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output)
            .contains("error: gave up waiting after 1s: 1 of 1 deliveries still pending"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_print_the_problem_title_and_detail() {
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;

    let output = hookrelay(&app, &tenant.key, &["send", "message.nope", "{}"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: Validation failed: type: unknown event type \"message.nope\"; see GET /api/v1/webhooks/events\n"
    );

    let output = hookrelay(&app, &tenant.key, &["send", "message.new", "[1]"]).await;
    assert_eq!(
        stderr(&output),
        "error: Validation failed: data: must be a JSON object\n"
    );

    let output = hookrelay(&app, "hr_nope", &["tenants", "list"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("error: Unauthorized: "),
        "{}",
        stderr(&output)
    );

    let output = hookrelay(&app, &tenant.key, &["tenants", "create", "x"]).await;
    assert_eq!(
        stderr(&output),
        "error: Forbidden: this route needs the admin key; tenant keys cannot use it\n"
    );

    let output = hookrelay(&app, ADMIN_KEY, &["keys", "create", "ten_nope"]).await;
    assert_eq!(stderr(&output), "error: Not found: tenant not found\n");

    let output = hookrelay(&app, ADMIN_KEY, &["tenants", "create", ""]).await;
    assert!(
        stderr(&output).starts_with("error: Validation failed: name: "),
        "{}",
        stderr(&output)
    );

    let output = hookrelay(&app, "", &["tenants", "list"]).await;
    assert_eq!(
        stderr(&output),
        "error: no API key: pass --key or set HOOKRELAY_KEY\n"
    );

    // Nothing listening: the cause in plain words, not a debug dump.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}");
    let output = hookrelay(&app, ADMIN_KEY, &["tenants", "list", "--url", &url]).await;
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.starts_with(&format!("error: cannot reach {url}: ")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_cli_examples_run_as_written() {
    if !super::smoke::tools_present() {
        return;
    }
    let listen = super::listen::Listen::start(&["--json"]);
    let app = spawn_app!();
    let script = super::helpers::doc_block("docs/cli.md", "cli-examples");
    let output = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", super::helpers::path_with_binary())
        .env("HOOKRELAY_URL", &app.base)
        .env("ADMIN_KEY", ADMIN_KEY)
        .env("RECEIVER", format!("{}/webhooks", listen.url))
        .env_remove("HOOKRELAY_KEY")
        .env_remove("HOOKRELAY_TENANT")
        .output()
        .await
        .unwrap();
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        output.status.success(),
        "docs/cli.md example failed\n{out}\n{err}"
    );
    assert!(
        out.contains("(Acme Clinic)") && out.contains("Beta Dental"),
        "{out}"
    );
    assert!(out.contains("Revoked key key_"), "{out}");
    let keys = out
        .lines()
        .skip_while(|l| !l.starts_with("ID  ") || !l.contains("PREFIX"))
        .skip(1)
        .take_while(|l| l.starts_with("key_"))
        .count();
    assert_eq!(keys, 3, "three keys listed: {out}");
    assert!(
        out.contains("Accepted evt_") && out.contains("): 1 delivery."),
        "{out}"
    );
    assert!(out.lines().any(|l| l.trim() == "succeeded"), "{out}");
    // The registry as listed: the added types after the built-in ones, one deprecated.
    let listed = |name: &str| out.lines().find(|l| l.starts_with(name)).unwrap_or("");
    assert!(listed("invoice.paid ").contains("yes"), "{out}");
    assert!(listed("invoice.voided ").contains("deprecated"), "{out}");
    assert!(listed("message.new ").contains("built-in"), "{out}");
    // Five events reached the receiver: message.new, contact.created, message.new,
    // invoice.paid, message.read.
    let lines = listen.read_until(|lines| lines.len() == 5);
    let types: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event_type"].to_string())
        .collect();
    assert!(types.contains(&"\"message.read\"".to_owned()), "{types:?}");
    assert!(types.contains(&"\"invoice.paid\"".to_owned()), "{types:?}");
    assert!(
        types.contains(&"\"contact.created\"".to_owned()),
        "{types:?}"
    );
}
