//! `hookrelay webhooks …` run as the real binary against a real server, delivering to a real
//! receiver; what the commands did is checked through the API.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::cli::{hookrelay, ok, stderr, stdout};
use super::helpers::{ADMIN_KEY, TestApp};
use super::receiver::{Receiver, Reply};

/// Runs, checks exit status 1 and nothing on stdout; the stderr.
async fn refused(app: &TestApp, key: &str, args: &[&str]) -> String {
    let output = hookrelay(app, key, args).await;
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?}: {}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "", "{args:?}");
    stderr(&output)
}

/// The value of a `key: value` line.
fn value_of(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key}: line in {text}"))
        .trim()
        .to_owned()
}

/// Whether some `key: value` line has this value.
fn has_pair(text: &str, key: &str, value: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(&format!("{key}:"))
            .is_some_and(|v| v.trim() == value)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_managed_by_the_cli_are_real() {
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    let key = tenant.key.as_str();

    let out = ok(
        &app,
        key,
        &[
            "webhooks",
            "create",
            "--name",
            "CRM sync",
            "--webhook-url",
            "https://example.com/in",
            "--events",
            "message.new,message.read",
            "--retry-count",
            "5",
            "--timeout-seconds",
            "10",
            "--header",
            "X-Env: prod",
            "--header",
            "x-team:crm",
            "--rate-limit-per-second",
            "20",
            "--json",
        ],
    )
    .await;
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(created["secret"].as_str().unwrap().starts_with("whsec_"));
    let hook = app.get(&tenant, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(hook["name"], "CRM sync");
    assert_eq!(hook["url"], "https://example.com/in");
    assert_eq!(hook["events"], json!(["message.new", "message.read"]));
    assert_eq!(hook["retry_count"], 5);
    assert_eq!(hook["timeout_seconds"], 10);
    assert_eq!(hook["headers"], json!({"x-env": "***", "x-team": "***"}));
    // `webhooks headers` reads the values back, one `Name: value` a line.
    let text = ok(&app, key, &["webhooks", "headers", &id]).await;
    assert_eq!(text, "x-env: prod\nx-team: crm\n");
    assert_eq!(hook["rate_limit_per_second"], 20);
    assert_eq!(hook["is_active"], true);

    // The text form names it and shows the secret once, on a line of its own.
    let out = ok(
        &app,
        key,
        &[
            "webhooks",
            "create",
            "--name",
            "paused",
            "--webhook-url",
            "https://example.com/paused",
            "--events",
            "*",
            "--inactive",
        ],
    )
    .await;
    assert!(out.starts_with("Created webhook wh_"), "{out}");
    assert!(out.contains("(paused) for *."), "{out}");
    let paused = out.split_whitespace().nth(2).unwrap().to_owned();
    let secret = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("whsec_"))
        .expect("the secret is printed");
    let shown = app
        .get(&tenant, &format!("/api/v1/webhooks/{paused}/secret"))
        .await;
    assert_eq!(shown["secret"], secret);

    let list = ok(&app, key, &["webhooks", "list"]).await;
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("URL"),
        "{list}"
    );
    assert_eq!(lines.len(), 3, "a header and two webhooks: {list}");
    assert!(
        lines[1].starts_with(&paused) && lines[1].contains(" disabled "),
        "{list}"
    );
    assert!(
        lines[2].starts_with(&id) && lines[2].contains("message.new,message.read"),
        "{list}"
    );
    let inactive = ok(&app, key, &["webhooks", "list", "--inactive", "--json"]).await;
    let inactive: Value = serde_json::from_str(&inactive).unwrap();
    assert_eq!(inactive["data"].as_array().unwrap().len(), 1);
    assert_eq!(inactive["data"][0]["id"], paused.as_str());

    let text = ok(&app, key, &["webhooks", "get", &id]).await;
    assert_eq!(value_of(&text, "retry_count"), "5");
    assert_eq!(value_of(&text, "events"), "message.new, message.read");
    assert_eq!(value_of(&text, "headers"), "x-env: ***; x-team: ***");
    let masked = value_of(&text, "secret");
    assert!(
        masked.starts_with("whsec_") && masked.ends_with('…'),
        "{text}"
    );

    // Update changes what it is given and nothing else.
    let text = ok(
        &app,
        key,
        &[
            "webhooks",
            "update",
            &id,
            "--events",
            "*",
            "--no-headers",
            "--no-rate-limit",
            "--description",
            "the CRM",
        ],
    )
    .await;
    assert_eq!(value_of(&text, "events"), "*");
    let hook = app.get(&tenant, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(hook["events"], json!(["*"]));
    assert_eq!(hook["headers"], json!({}));
    assert_eq!(hook["rate_limit_per_second"], Value::Null);
    assert_eq!(hook["description"], "the CRM");
    assert_eq!(hook["retry_count"], 5);
    assert_eq!(hook["name"], "CRM sync");
    ok(&app, key, &["webhooks", "update", &paused, "--active"]).await;
    let hook = app
        .get(&tenant, &format!("/api/v1/webhooks/{paused}"))
        .await;
    assert_eq!(hook["is_active"], true);

    // The admin key acts for the tenant it names.
    let out = ok(
        &app,
        ADMIN_KEY,
        &["webhooks", "get", &id, "--tenant", &tenant.id, "--json"],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["id"],
        id.as_str()
    );

    // A 422 prints the problem: title, detail, then each field.
    let err = refused(
        &app,
        key,
        &[
            "webhooks",
            "create",
            "--name",
            "bad",
            "--webhook-url",
            "ftp://example.com",
            "--events",
            "message.nope",
        ],
    )
    .await;
    assert_eq!(
        err,
        "error: Validation failed: 2 fields are invalid\n  url: must use http or https\n  \
         events[0]: unknown event type \"message.nope\"; see GET /api/v1/webhooks/events\n"
    );
    let err = refused(
        &app,
        key,
        &["webhooks", "update", &id, "--retry-count", "11"],
    )
    .await;
    assert!(
        err.starts_with("error: Validation failed: retry_count: "),
        "{err}"
    );
    let err = refused(
        &app,
        key,
        &["webhooks", "update", &id, "--header", "nocolon"],
    )
    .await;
    assert!(
        err.starts_with("error: --header \"nocolon\": expected NAME:VALUE"),
        "{err}"
    );
    let err = refused(&app, key, &["webhooks", "update", &id]).await;
    assert_eq!(
        err,
        "error: nothing to update: give at least one setting (see --help)\n"
    );

    let out = ok(&app, key, &["webhooks", "delete", &id]).await;
    assert_eq!(
        out,
        format!("Deleted webhook {id}; its pending deliveries are cancelled.\n")
    );
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/webhooks/{id}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let err = refused(&app, key, &["webhooks", "get", &id]).await;
    assert_eq!(err, "error: Not found: webhook not found\n");
    // Another tenant's webhook is not found either.
    let other = app.tenant("other").await;
    let err = refused(&app, &other.key, &["webhooks", "delete", &paused]).await;
    assert_eq!(err, "error: Not found: webhook not found\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_logs_stats_and_secrets_from_the_cli() {
    let receiver = Receiver::start().await;
    receiver.script("/down", |_| Reply::status(500));
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    let key = tenant.key.as_str();
    let hook = app
        .webhook(
            &tenant,
            json!({"name": "crm", "url": receiver.url("/in"), "events": ["message.new"]}),
        )
        .await;
    let id = hook["id"].as_str().unwrap().to_owned();

    let out = ok(&app, key, &["webhooks", "test", &id]).await;
    assert!(
        out.starts_with("Test message.new succeeded: HTTP 200 in "),
        "{out}"
    );
    let out = ok(
        &app,
        key,
        &[
            "webhooks",
            "test",
            &id,
            "--type",
            "message.read",
            "--payload",
            r#"{"message_id": "wamid.7"}"#,
            "--json",
        ],
    )
    .await;
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome["success"], true);
    assert_eq!(outcome["event_type"], "message.read");
    let hits = receiver.hits("/in");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].json()["data"], json!({"message_id": "wamid.7"}));

    ok(
        &app,
        key,
        &["send", "message.new", r#"{"text": "Oi!"}"#, "--wait"],
    )
    .await;

    let logs = ok(&app, key, &["webhooks", "logs", &id]).await;
    let rows: Vec<&str> = logs.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "two test sends and a delivery: {logs}");
    assert!(
        rows[0].contains(" message.new ") && rows[0].contains(" success "),
        "{logs}"
    );
    assert!(
        rows[1].contains(" message.read ") && rows[1].contains("success (test)"),
        "{logs}"
    );
    let failed = ok(&app, key, &["webhooks", "logs", &id, "--status", "failed"]).await;
    assert_eq!(failed.lines().count(), 1, "only the header: {failed}");
    let one = ok(
        &app,
        key,
        &["webhooks", "logs", &id, "--limit", "1", "--json"],
    )
    .await;
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["is_test"], false);
    let log_id = one["data"][0]["id"].as_str().unwrap();
    let text = ok(&app, key, &["webhooks", "log", &id, log_id]).await;
    assert_eq!(value_of(&text, "response_status"), "200");
    assert!(text.contains("    webhook-signature: v1,"), "{text}");
    assert!(text.contains("\"text\": \"Oi!\""), "{text}");

    let stats = ok(&app, key, &["webhooks", "stats", &id, "--json"]).await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["total_deliveries"], 1);
    assert_eq!(stats["successful_deliveries"], 1);
    let text = ok(&app, key, &["webhooks", "stats", &id]).await;
    assert_eq!(value_of(&text, "success_rate"), "100.0 %");
    assert_eq!(
        value_of(&text, "deliveries"),
        "1 ended (1 succeeded, 0 failed), 0 pending"
    );

    // Rotation: a new secret, the old one still signing for the grace period.
    let old = ok(&app, key, &["webhooks", "secret", &id]).await;
    assert_eq!(old.trim(), hook["secret"].as_str().unwrap());
    let out = ok(
        &app,
        key,
        &["webhooks", "rotate-secret", &id, "--grace", "1h", "--json"],
    )
    .await;
    let rotated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rotated["previous_secret"], hook["secret"]);
    let text = ok(&app, key, &["webhooks", "secret", &id]).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], rotated["secret"].as_str().unwrap());
    assert!(
        lines[1].starts_with(&format!("previous: {} (signs until ", old.trim())),
        "{text}"
    );
    let out = ok(
        &app,
        key,
        &["webhooks", "rotate-secret", &id, "--grace", "0"],
    )
    .await;
    assert!(
        out.contains("The previous secret no longer signs."),
        "{out}"
    );
    let err = refused(
        &app,
        key,
        &["webhooks", "rotate-secret", &id, "--grace", "30d"],
    )
    .await;
    assert!(
        err.starts_with("error: Validation failed: grace_period: "),
        "{err}"
    );

    // A failed test send is a failed command.
    let down = app
        .webhook(
            &tenant,
            json!({"name": "down", "url": receiver.url("/down"), "events": ["*"]}),
        )
        .await;
    let down = down["id"].as_str().unwrap();
    let output = hookrelay(&app, key, &["webhooks", "test", down]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).starts_with("Test message.new failed: HTTP 500 in "),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).starts_with("error: the test delivery failed; `hookrelay webhooks log "),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_webhooks_examples_run_as_written() {
    if !super::smoke::tools_present() {
        return;
    }
    let listen = super::listen::Listen::start(&["--json"]);
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    let script = super::helpers::doc_block("docs/cli.md", "webhooks-examples");
    let output = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", super::helpers::path_with_binary())
        .env("HOOKRELAY_URL", &app.base)
        .env("ADMIN_KEY", ADMIN_KEY)
        .env("TENANT_KEY", &tenant.key)
        .env("TENANT_ID", &tenant.id)
        .env("RECEIVER", format!("{}/webhooks", listen.url))
        .env_remove("HOOKRELAY_KEY")
        .env_remove("HOOKRELAY_TENANT")
        .output()
        .await
        .unwrap();
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(
        output.status.success(),
        "docs/cli.md webhooks example failed\n{out}\n{err}"
    );
    assert!(out.contains("template.rejected"), "the catalogue: {out}");
    assert!(has_pair(&out, "headers", "x-env: ***"), "get: {out}");
    assert!(has_pair(&out, "x-env", "staging"), "headers: {out}");
    assert!(
        has_pair(&out, "rate_limit_per_second", "50"),
        "update: {out}"
    );
    assert!(
        out.contains("Test contact.created succeeded: HTTP 200 in "),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("att_")).count(),
        2,
        "the test send and the delivery are logged: {out}"
    );
    assert!(out.contains("    webhook-signature: v1,"), "log: {out}");
    assert!(has_pair(&out, "success_rate", "100.0 %"), "stats: {out}");
    assert!(
        out.contains("previous: whsec_"),
        "secret during rotation: {out}"
    );
    assert!(
        out.trim_end()
            .ends_with("its pending deliveries are cancelled."),
        "{out}"
    );
    let r = app
        .call(Method::GET, "/api/v1/webhooks", Some(&tenant.key), None)
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["data"], json!([]));
    // The test send and the event reached the receiver.
    let lines = listen.read_until(|lines| lines.len() == 2);
    let types: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event_type"].clone())
        .collect();
    assert_eq!(types, vec![json!("contact.created"), json!("message.new")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_disabled_and_enabled_from_the_cli() {
    let app = spawn_app!();
    let tenant = app.tenant("Acme").await;
    let key = tenant.key.as_str();
    let w = app.webhook(&tenant, super::helpers::sample_webhook()).await;
    let id = w["id"].as_str().unwrap();
    let out = ok(&app, key, &["webhooks", "disable", id, "--json"]).await;
    let disabled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(disabled["disabled_reason"], "manual");
    let out = ok(&app, key, &["webhooks", "enable", id]).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("status") && l.trim_end().ends_with("active")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("disabled_reason")),
        "{out}"
    );
    let now = app.get(&tenant, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(now["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_recovered_and_replayed_from_the_cli() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    let app = spawn_app!();
    let rx = Receiver::start().await;
    let fixed = Arc::new(AtomicBool::new(false));
    let flag = fixed.clone();
    rx.script("/r", move |_| {
        Reply::status(if flag.load(Ordering::SeqCst) {
            200
        } else {
            500
        })
    });
    let tenant = app.tenant("Acme").await;
    let key = tenant.key.as_str();
    let w = app
        .webhook(
            &tenant,
            json!({"name": "r", "url": rx.url("/r"), "events": ["message.new"], "retry_count": 0}),
        )
        .await;
    let id = w["id"].as_str().unwrap();
    let since = hookrelay::domain::time::Timestamp::now()
        .plus_millis(-1000)
        .to_rfc3339();
    let mut events = Vec::new();
    for n in 0..3 {
        let e = app
            .event(&tenant, json!({"type": "message.new", "data": {"n": n}}))
            .await;
        events.push(e["id"].as_str().unwrap().to_owned());
    }
    let hook = format!("/api/v1/webhooks/{id}");
    app.eventually(&tenant, &hook, Duration::from_secs(30), |w| {
        w["failed_deliveries"] == 3
    })
    .await;

    let out = ok(
        &app,
        key,
        &["webhooks", "deliveries", id, "--status", "failed"],
    )
    .await;
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows.iter()
            .all(|r| r.contains(" failed ") && r.contains("500")),
        "{out}"
    );
    let out = ok(
        &app,
        key,
        &["webhooks", "deliveries", id, "--status", "failed", "--json"],
    )
    .await;
    let listed: Value = serde_json::from_str(&out).unwrap();
    let first = listed["data"][0]["id"].as_str().unwrap().to_owned();

    fixed.store(true, Ordering::SeqCst);
    let out = ok(&app, key, &["webhooks", "retry", id, &first]).await;
    assert!(
        out.contains(&format!("Delivery {first} queued again")),
        "{out}"
    );
    app.eventually(&tenant, &hook, Duration::from_secs(30), |w| {
        w["successful_deliveries"] == 1
    })
    .await;
    // Retrying it again is refused: it succeeded.
    let err = refused(&app, key, &["webhooks", "retry", id, &first]).await;
    assert!(err.contains("succeeded"), "{err}");

    let out = ok(
        &app,
        key,
        &["webhooks", "recover", id, "--since", &since, "--wait"],
    )
    .await;
    assert!(
        out.contains(": completed, 2 of 2 failed deliveries queued again (100%)"),
        "{out}"
    );
    let w = app
        .eventually(&tenant, &hook, Duration::from_secs(30), |w| {
            w["successful_deliveries"] == 3
        })
        .await;
    assert_eq!(w["failed_deliveries"], 0, "{w}");
    let err = refused(
        &app,
        key,
        &["webhooks", "recover", id, "--since", "2001-01-01T00:00:00Z"],
    )
    .await;
    assert!(err.contains("since"), "{err}");

    let out = ok(
        &app,
        key,
        &["events", "replay", &events[0], "--webhook", id],
    )
    .await;
    assert!(out.contains("1 new deliveries"), "{out}");
    let hits = rx.wait_for("/r", 3 + 3 + 1, Duration::from_secs(30)).await;
    assert_eq!(hits.last().unwrap().header("webhook-id"), events[0]);
    let out = ok(&app, key, &["events", "get", &events[0]]).await;
    assert_eq!(
        out.matches(id).count(),
        2,
        "two deliveries to the webhook: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_and_shows_a_retry_schedule() {
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    let key = tenant.key.as_str();
    let out = ok(
        &app,
        key,
        &[
            "webhooks",
            "create",
            "--name",
            "scheduled",
            "--webhook-url",
            "https://example.com/in",
            "--events",
            "*",
            "--retry-schedule",
            "1s,4500ms",
            "--json",
        ],
    )
    .await;
    let created: Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let hook = app.get(&tenant, &format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(hook["retry_schedule"], json!(["1s", "4s 500ms"]));
    let text = ok(&app, key, &["webhooks", "get", &id]).await;
    assert_eq!(value_of(&text, "retry_schedule"), "1s, 4s 500ms");
    assert_eq!(value_of(&text, "retry_count"), "2");
    // A count replaces the schedule; the view says there is none.
    let text = ok(
        &app,
        key,
        &["webhooks", "update", &id, "--retry-count", "4"],
    )
    .await;
    assert_eq!(value_of(&text, "retry_schedule"), "-");
    assert_eq!(value_of(&text, "retry_count"), "4");
    // The server's refusal names the entry.
    let err = refused(
        &app,
        key,
        &["webhooks", "update", &id, "--retry-schedule", "1s,0s"],
    )
    .await;
    assert!(
        err.contains("retry_schedule[1]: must be more than zero"),
        "{err}"
    );
    // The preset goes as the preset (a test server's 5 s cap refuses it, naming it), not as
    // a one-entry list.
    let err = refused(
        &app,
        key,
        &["webhooks", "update", &id, "--retry-schedule", "standard"],
    )
    .await;
    assert!(
        err.contains("retry_schedule: the standard schedule waits up to 24h"),
        "{err}"
    );
    // Both at once are refused before anything is sent.
    let output = hookrelay(
        &app,
        key,
        &[
            "webhooks",
            "update",
            &id,
            "--retry-count",
            "1",
            "--retry-schedule",
            "1s",
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}
