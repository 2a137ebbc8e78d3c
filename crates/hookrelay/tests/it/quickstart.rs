//! The README's quickstart, run as written against the real binary started the way a new user
//! starts it: no admin key configured, so the generated one is read from its output.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_quickstart_runs_as_written() {
    // The receiver the README suggests: `hookrelay listen`.
    let listen = super::listen::Listen::start(&["--json"]);
    let receiver_url = format!("{}/webhooks/hookrelay", listen.url);
    require_backend!();
    let db = super::helpers::TestDb::create().await;
    let dir = &db.dir;
    let port = super::helpers::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("HOOKRELAY_ADMIN_KEY")
        // SQLite: no setting at all, the zero-configuration default a new user gets.
        .envs(
            if super::helpers::backend() == super::helpers::Backend::Postgres {
                vec![
                    ("HOOKRELAY_DATABASE_URL", db.url.clone()),
                    (
                        "HOOKRELAY_ENCRYPTION_KEY",
                        super::helpers::TEST_ENCRYPTION_KEY.to_owned(),
                    ),
                ]
            } else {
                Vec::new()
            },
        )
        .env_remove("HOOKRELAY_LISTEN")
        // The test's receiver is on loopback, which hookrelay refuses unless allowed.
        .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", super::helpers::LOOPBACK)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let stdout = server.0.stdout.take().unwrap();
    let mut admin_key = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(key) = line.trim().strip_prefix("hra_") {
            admin_key = Some(format!("hra_{key}"));
            break;
        }
    }
    let admin_key = admin_key.expect("the first start prints a generated admin key");
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

    let script = super::helpers::doc_block("README.md", "quickstart");
    // The issue: a new user needs only the hookrelay binary (and jq), not curl.
    assert!(!script.contains("curl"), "the quickstart uses curl");
    let base = format!("http://127.0.0.1:{port}");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("PATH", super::helpers::path_with_binary())
            .env("HOOKRELAY_URL", base)
            .env_remove("HOOKRELAY_KEY")
            .env("ADMIN_KEY", &admin_key)
            .env("RECEIVER", receiver_url)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "quickstart failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("message.new") && stdout.contains("template.rejected"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("wh_") && l.contains("CRM sync") && l.contains(" active ")),
        "the webhook is listed: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("retry_count:") && l.ends_with(" 5")),
        "the update is shown: {stdout}"
    );
    assert!(
        stdout.contains("Test message.new succeeded: HTTP 200 in "),
        "the test send succeeded: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("dlv_") && l.contains(" succeeded ")),
        "the event was delivered: {stdout}"
    );
    assert!(
        stdout.contains("Acme Clinic") && stdout.contains("Accepted evt_"),
        "{stdout}"
    );
    let attempts: Vec<&str> = stdout.lines().filter(|l| l.starts_with("att_")).collect();
    assert!(
        attempts.len() == 2
            && attempts.iter().any(|l| l.contains(" success (test) "))
            && attempts.iter().any(|l| l.contains(" success ")),
        "a test send and a delivery logged: {stdout}"
    );
    assert!(
        stdout.contains("1 ended (1 succeeded, 0 failed), 0 pending"),
        "{stdout}"
    );
    let hits: Vec<serde_json::Value> = listen
        .read_until(|lines| lines.len() == 2)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        hits.iter().all(|h| h["path"] == "/webhooks/hookrelay"),
        "one test send and one delivery: {hits:?}"
    );
    assert!(
        hits.iter()
            .any(|h| h["body"]["data"]["from"] == "+5511987654321"),
        "{hits:?}"
    );
    assert!(
        stderr.contains(
            "error: Validation failed: 2 fields are invalid\n  url: must use http or https\n  \
             events[0]: unknown event type \"message.nope\""
        ) && stdout.contains("exit status 1"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout
            .trim_end()
            .ends_with("; its pending deliveries are cancelled."),
        "{stdout}"
    );

    // SIGTERM: a graceful stop, exit status 0.
    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.0.wait().unwrap();
    assert!(exit.success(), "exit after SIGTERM: {exit:?}");
    if super::helpers::backend() == super::helpers::Backend::Sqlite {
        // The database file is where a new user expects it.
        assert!(dir.path().join("hookrelay.db").exists());
    }
}
