//! The programs the tenant and integrator docs show, run against the real server:
//!
//! - every receiver in `examples/verify/` (Node, Python, Go, Rust; the official
//!   `standardwebhooks` packages for Node and Python) verifies a real signed delivery and
//!   refuses forged, tampered and stale requests;
//! - the senders in `examples/integration/` (NestJS, Rust) and the curl block of
//!   `docs/integration.md` send events, dedupe by idempotency key, batch, and read problems.
//!
//! A receiver whose tool is missing is SKIPPED, loudly, unless HOOKRELAY_TEST_REQUIRE_TOOLS=1
//! (set by `.ci/run`, which installs the tools) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookrelay_verify::{Secret, sign};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::helpers::{Tenant, TestApp};

pub const REQUIRE_TOOLS_VAR: &str = "HOOKRELAY_TEST_REQUIRE_TOOLS";

/// Generous bound for a step that normally takes milliseconds (a child starting, a delivery
/// arriving): reaching it means the step is broken, not slow.
const LIMIT: Duration = Duration::from_secs(60);

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns false (after saying SKIPPED) when a tool is missing, or fails the test when CI
/// requires every tool.
pub fn available(what: &str, ok: bool, fix: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var(REQUIRE_TOOLS_VAR).is_ok_and(|v| v == "1") {
        panic!("{what} is missing and {REQUIRE_TOOLS_VAR}=1: {fix}");
    }
    eprintln!("SKIPPED: {what} is missing ({fix}); set {REQUIRE_TOOLS_VAR}=1 to fail instead");
    false
}

/// Whether `program args` runs and exits 0.
fn runs(program: &str, args: &[&str], dir: &Path) -> bool {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a build step to completion; panics with its output when it fails.
async fn build(mut command: Command) {
    let described = format!("{command:?}");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{described}: {e}"));
    assert!(
        output.status.success(),
        "{described} failed\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds an example of a workspace crate with the cargo running this test, and returns
/// the executable (beside this test binary's target directory).
async fn cargo_example(package: &str, example: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--quiet", "-p", package, "--example", example])
        .current_dir(repo());
    // Cargo gives this test the variables of the crate under test (CARGO_MANIFEST_DIR ...);
    // passed on, build scripts that watch them (ring's) would rebuild half the tree.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_crate = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref());
        if per_crate {
            command.env_remove(name.as_ref());
        }
    }
    build(command).await;
    // This binary is target/<profile>/deps/it-<hash>; examples are in target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    profile_dir.join("examples").join(example)
}

/// A child process stopped by PID when dropped, whose stdout lines arrive on a channel.
struct ChildProcess {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl ChildProcess {
    fn spawn(mut command: Command) -> ChildProcess {
        let described = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{described}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProcess {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next line of output; panics if the child ends or stays silent.
    async fn next_line(&mut self) -> String {
        match tokio::time::timeout(LIMIT, self.lines.recv()).await {
            Ok(Some(line)) => {
                self.seen.push(line.clone());
                line
            }
            Ok(None) => panic!("the child ended; its output: {:?}", self.seen),
            Err(_) => panic!("no output within {LIMIT:?}; so far: {:?}", self.seen),
        }
    }

    /// Every remaining line, once the child has exited by itself.
    async fn finish(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let mut lines = Vec::new();
        while let Some(line) = tokio::time::timeout(LIMIT, self.lines.recv())
            .await
            .expect("the child closed its output")
        {
            lines.push(line);
        }
        let status = self.child.wait().unwrap();
        (status, lines)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Registers a webhook pointing at a receiver started by `receiver` (given the port and the
/// webhook's secret), then checks it verifies a real delivery and refuses forgeries.
async fn check_receiver(app: &TestApp, receiver: Command) {
    let tenant = app.tenant("Acme Clinic").await;
    let port = super::helpers::free_port();
    let webhook = app
        .webhook(
            &tenant,
            json!({
                "name": "verify example",
                "url": format!("http://127.0.0.1:{port}/webhooks/hookrelay"),
                "events": ["message.new"]
            }),
        )
        .await;
    let secret_text = webhook["secret"].as_str().expect("secret").to_owned();
    let secret = Secret::parse(&secret_text).unwrap();

    let mut command = receiver;
    command
        .env("PORT", port.to_string())
        .env("WEBHOOK_SECRET", &secret_text);
    let mut child = ChildProcess::spawn(command);
    assert_eq!(child.next_line().await, format!("listening on {port}"));

    // A real delivery, signed by the server.
    let sample = hookrelay::domain::catalog::find("message.new")
        .unwrap()
        .sample;
    let accepted = app
        .event(
            &tenant,
            json!({"type": "message.new", "idempotency_key": "wamid.1",
                   "data": serde_json::from_str::<Value>(sample).unwrap()}),
        )
        .await;
    let event_id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(
        child.next_line().await,
        format!("verified {event_id} message.new")
    );
    let event = app
        .eventually(&tenant, &format!("/api/v1/events/{event_id}"), LIMIT, |e| {
            e["deliveries"][0]["state"] != "pending"
        })
        .await;
    assert_eq!(event["deliveries"][0]["state"], "succeeded", "{event}");
    assert_eq!(event["deliveries"][0]["last_status"], 204, "{event}");

    // Requests made here, signed (or not) with the webhook's secret.
    let url = format!("http://127.0.0.1:{port}/webhooks/hookrelay");
    let client = reqwest::Client::new();
    let post = |id: &str, timestamp: i64, signature: Option<String>, body: &str| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("webhook-signature", signature);
        }
        async move { request.send().await.unwrap().status() }
    };
    let body = |id: &str| {
        format!(
            r#"{{"id":"{id}","type":"message.new","tenant_id":"{}","created_at":"2026-11-28T14:03:22.517Z","data":{{"text":"Oi!"}}}}"#,
            tenant.id
        )
    };
    let now = unix_now();
    let other = Secret::from_bytes(&[7u8; 32]);

    // The same event again (a retry after a lost answer): 2xx, recognised as a duplicate.
    let replay = body(&event_id);
    let signature = sign(&secret, &event_id, now, replay.as_bytes());
    assert_eq!(
        post(&event_id, now, Some(signature), &replay).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(child.next_line().await, format!("duplicate {event_id}"));

    // During a secret rotation two signatures arrive; either may match.
    let rotated = body("evt_rotation");
    let both = format!(
        "{} {}",
        sign(&other, "evt_rotation", now, rotated.as_bytes()),
        sign(&secret, "evt_rotation", now, rotated.as_bytes())
    );
    assert_eq!(
        post("evt_rotation", now, Some(both), &rotated).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(child.next_line().await, "verified evt_rotation message.new");

    // Forgeries: each answered 400 and reported.
    let original = body("evt_forged");
    let tampered = original.replace("Oi!", "Oi?");
    let forgeries: [(&str, i64, Option<String>, &str); 4] = [
        // A body changed after signing.
        (
            "tampered body",
            now,
            Some(sign(&secret, "evt_forged", now, original.as_bytes())),
            &tampered,
        ),
        // Signed with another secret.
        (
            "wrong secret",
            now,
            Some(sign(&other, "evt_forged", now, original.as_bytes())),
            &original,
        ),
        // A correctly signed request replayed 10 minutes later.
        (
            "stale timestamp",
            now - 600,
            Some(sign(&secret, "evt_forged", now - 600, original.as_bytes())),
            &original,
        ),
        // No signature at all.
        ("unsigned", now, None, &original),
    ];
    for (what, timestamp, signature, sent) in forgeries {
        assert_eq!(
            post("evt_forged", timestamp, signature, sent).await,
            StatusCode::BAD_REQUEST,
            "{what}"
        );
        let line = child.next_line().await;
        assert!(line.starts_with("rejected"), "{what}: {line}");
    }
}

pub fn node_ok() -> bool {
    runs("node", &["--version"], &repo())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_crypto_receiver_verifies_deliveries() {
    if !available("node", node_ok(), "install Node.js 18 or later") {
        return;
    }
    let app = spawn_app!();
    let mut command = Command::new("node");
    command
        .arg("verify.mjs")
        .current_dir(repo().join("examples/verify/node"));
    check_receiver(&app, command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_standardwebhooks_receiver_verifies_deliveries() {
    let dir = repo().join("examples/verify/node");
    let installed = node_ok() && dir.join("node_modules/standardwebhooks").is_dir();
    if !available(
        "node with the standardwebhooks package",
        installed,
        "run `npm ci` in examples/verify/node",
    ) {
        return;
    }
    let app = spawn_app!();
    let mut command = Command::new("node");
    command.arg("verify-standardwebhooks.mjs").current_dir(dir);
    check_receiver(&app, command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_hmac_receiver_verifies_deliveries() {
    let dir = repo().join("examples/verify/python");
    if !available(
        "python3",
        runs("python3", &["--version"], &dir),
        "install Python 3",
    ) {
        return;
    }
    let app = spawn_app!();
    let mut command = Command::new("python3");
    command.arg("verify.py").current_dir(dir);
    check_receiver(&app, command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_standardwebhooks_receiver_verifies_deliveries() {
    let dir = repo().join("examples/verify/python");
    let python = dir.join(".venv/bin/python");
    let installed = runs(
        &python.display().to_string(),
        &["-c", "import standardwebhooks"],
        &dir,
    );
    if !available(
        "a Python venv with the standardwebhooks package",
        installed,
        "run `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt` in examples/verify/python",
    ) {
        return;
    }
    let app = spawn_app!();
    let mut command = Command::new(python);
    command.arg("verify_standardwebhooks.py").current_dir(dir);
    check_receiver(&app, command).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_receiver_verifies_deliveries() {
    let dir = repo().join("examples/verify/go");
    if !available(
        "go",
        runs("go", &["version"], &dir),
        "install Go 1.19 or later (apt-get install golang-go)",
    ) {
        return;
    }
    let app = spawn_app!();
    // Built first, so the process stopped at the end is the receiver itself (`go run`
    // would leave it orphaned).
    let out = tempfile::tempdir().unwrap();
    let exe = out.path().join("verify-receiver");
    let mut go_build = Command::new("go");
    go_build
        .args(["build", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(&dir);
    build(go_build).await;
    check_receiver(&app, Command::new(exe)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_receiver_verifies_deliveries() {
    let app = spawn_app!();
    let exe = cargo_example("hookrelay-verify", "verify-receiver").await;
    check_receiver(&app, Command::new(exe)).await;
}

/// A server whose tenant keys may make one API request a second, so that the senders, which
/// send as fast as they are answered, meet 429s and must wait out `Retry-After`.
async fn spawn_rate_limited() -> TestApp {
    let db = super::helpers::TestDb::create().await;
    let mut config = super::helpers::test_config(&db);
    config.rate_limits.per_key = 1;
    TestApp::spawn_with(db, config).await
}

/// A tenant with one webhook on `*` (to a recording receiver), for the senders. Creating
/// the webhook spends the key's first request.
async fn sender_setup(app: &TestApp, receiver: &super::receiver::Receiver) -> Tenant {
    let tenant = app.tenant("Acme Clinic").await;
    app.webhook(
        &tenant,
        json!({"name": "all", "url": receiver.url("/all"), "events": ["*"]}),
    )
    .await;
    tenant
}

/// Checks the JSON lines the NestJS and Rust senders print, step by step, and returns the
/// ids of the events they were told were accepted.
fn check_sender_output(lines: &[String], answer: &str) -> Vec<String> {
    let steps: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    let step = |name: &str| -> &Value {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name:?} in {lines:?}"))
    };
    let answer_of = |name: &str| -> &Value {
        if answer.is_empty() {
            step(name)
        } else {
            &step(name)[answer]
        }
    };
    let first = answer_of("send");
    assert_eq!(first["duplicate"], false, "{first}");
    assert_eq!(first["deliveries"], 1, "{first}");
    let again = answer_of("send again");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["id"], first["id"], "{again}");
    let batch = step("batch")["data"].as_array().unwrap();
    assert_eq!(batch.len(), 2, "{batch:?}");
    assert_eq!(batch[0]["type"], "contact.created");
    assert_eq!(batch[1]["type"], "conversation.created");
    let backlog = step("backlog")["data"].as_array().unwrap();
    assert_eq!(backlog.len(), 3, "{backlog:?}");
    for accepted in backlog {
        assert_eq!(accepted["type"], "message.new", "{accepted}");
        assert_eq!(accepted["duplicate"], false, "{accepted}");
    }
    let error = step("error");
    let problem = if answer.is_empty() {
        error
    } else {
        &error["problem"]
    };
    assert_eq!(problem["status"], 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "type", "{problem}");
    let mut ids: Vec<String> = [first]
        .into_iter()
        .chain(batch)
        .chain(backlog)
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The sender's retries, from its warnings (`retrying POST /api/v1/events after 429
/// (Retry-After: 1) in 1000 ms, attempt 2 of 5`): each after a 429, waiting what
/// `Retry-After` said. Returns how many.
///
/// Each is a second attempt: the server's `Retry-After` is its limiter's wait rounded up to
/// whole seconds, so a sender that really waited that long is never refused twice in a row
/// (a slow machine only adds to the wait), while one that came back sooner (its own 250 ms
/// backoff, say) would be, and would log a third attempt.
fn check_retries(lines: &[String]) -> usize {
    let warnings: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let step: Value = serde_json::from_str(l).ok()?;
            (step["step"] == "warn").then(|| step["message"].as_str().unwrap().to_owned())
        })
        .collect();
    for warning in &warnings {
        let parsed = warning
            .split_once(" after 429 (Retry-After: ")
            .and_then(|(_, rest)| rest.split_once(") in "))
            .and_then(|(seconds, rest)| Some((seconds, rest.split_once(" ms, attempt ")?)));
        let Some((seconds, (waited_ms, attempt))) = parsed else {
            panic!("not a retry after a 429 with Retry-After: {warning}");
        };
        let seconds: u64 = seconds.parse().unwrap();
        assert!(seconds >= 1, "{warning}");
        assert_eq!(
            waited_ms.parse::<u64>().unwrap(),
            seconds * 1000,
            "{warning}"
        );
        assert!(attempt.starts_with("2 of "), "refused twice: {warning}");
    }
    warnings.len()
}

/// Every event the sender was told was accepted is stored once, and nothing else is (a retry
/// under a new idempotency key would add one); each is delivered; every 429 the server
/// answered was retried.
async fn check_sent_once(
    app: &TestApp,
    receiver: &super::receiver::Receiver,
    accepted: &[String],
    retries: usize,
) {
    // Six events in eight requests at one a second: all could pass only if each took 1 s.
    assert!(retries >= 1, "no 429 was retried");
    let mut stored = app.db.strings("SELECT id FROM events").await;
    stored.sort();
    assert_eq!(stored, accepted);
    let r = app
        .call(reqwest::Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    let limited: f64 = r
        .lines()
        .filter(|l| {
            l.starts_with("hookrelay_http_requests_total{") && l.contains(r#"status="429""#)
        })
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap())
        .sum();
    assert_eq!(limited, retries as f64, "{r}");
    receiver.wait_for("/all", accepted.len(), LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nestjs_service_sends_events() {
    let dir = repo().join("examples/integration/nestjs");
    let installed = node_ok() && dir.join("node_modules/@nestjs/core").is_dir();
    if !available(
        "node with the NestJS example's packages",
        installed,
        "run `npm ci` in examples/integration/nestjs",
    ) {
        return;
    }
    require_backend!();
    let receiver = super::receiver::Receiver::start().await;
    let app = spawn_rate_limited().await;
    let tenant = sender_setup(&app, &receiver).await;
    // Type-checks (strict) and compiles the service as a NestJS project would.
    let mut tsc = Command::new("node");
    tsc.args(["node_modules/typescript/bin/tsc", "-p", "."])
        .current_dir(&dir);
    build(tsc).await;
    let mut command = Command::new("node");
    command
        .arg("dist/main.js")
        .current_dir(&dir)
        .env("HOOKRELAY_URL", &app.base)
        .env("HOOKRELAY_API_KEY", &tenant.key);
    let (status, lines) = ChildProcess::spawn(command).finish().await;
    assert!(status.success(), "{status}: {lines:?}");
    let accepted = check_sender_output(&lines, "");
    check_sent_once(&app, &receiver, &accepted, check_retries(&lines)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_sends_events() {
    require_backend!();
    let receiver = super::receiver::Receiver::start().await;
    let app = spawn_rate_limited().await;
    let tenant = sender_setup(&app, &receiver).await;
    let exe = cargo_example("hookrelay", "send-events").await;
    let mut command = Command::new(exe);
    command
        .env("HOOKRELAY_URL", &app.base)
        .env("HOOKRELAY_API_KEY", &tenant.key);
    let (status, lines) = ChildProcess::spawn(command).finish().await;
    assert!(status.success(), "{status}: {lines:?}");
    let accepted = check_sender_output(&lines, "answer");
    check_sent_once(&app, &receiver, &accepted, check_retries(&lines)).await;
}
