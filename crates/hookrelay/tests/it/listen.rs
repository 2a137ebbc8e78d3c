//! `hookrelay listen` as the real binary, receiving real deliveries from a real server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A secret for the webhook `hookrelay listen` is told about, and another it is not.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A running `hookrelay listen`, its output read line by line; killed when dropped.
pub struct Listen {
    child: Child,
    pub url: String,
    stdout: mpsc::Receiver<String>,
}

impl Listen {
    pub fn start(args: &[&str]) -> Listen {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .arg("listen")
            .args(["--port", "0"])
            .args(args)
            .env_remove("HOOKRELAY_WEBHOOK_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hookrelay listen");
        let lines = |stream: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        let banner = stderr
            .recv_timeout(Duration::from_secs(30))
            .expect("listen prints where it listens");
        let url = banner
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in {banner:?}"))
            .trim_end_matches('/')
            .to_owned();
        Listen { child, url, stdout }
    }

    /// Reads stdout until `done` holds for what was read; panics after 30 s.
    pub fn read_until(&self, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut lines = Vec::new();
        while !done(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(_) => panic!("listen printed only:\n{}", lines.join("\n")),
            }
        }
        lines
    }
}

impl Drop for Listen {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_prints_deliveries_and_tells_a_bad_signature() {
    let listen = Listen::start(&["--secret", SECRET]);
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    for (path, secret) in [("good", SECRET), ("bad", OTHER_SECRET)] {
        app.webhook(
            &tenant,
            json!({"name": path, "url": format!("{}/{path}", listen.url),
                   "events": ["message.new"], "secret": secret}),
        )
        .await;
    }
    let event = app
        .event(
            &tenant,
            json!({"type": "message.new", "data": {"from": "+5511987654321"}}),
        )
        .await;
    let event_id = event["id"].as_str().unwrap();

    let lines =
        listen.read_until(|lines| lines.iter().filter(|l| l.starts_with("<-- ")).count() == 2);
    let text = lines.join("\n");
    let headers: Vec<&String> = lines.iter().filter(|l| l.starts_with("--> ")).collect();
    assert_eq!(headers.len(), 2, "{text}");
    for header in headers {
        assert!(
            header.starts_with(&format!("--> message.new  {event_id}  attempt 1  20")),
            "{text}"
        );
    }
    assert!(text.contains("    POST /good  verified\n"), "{text}");
    assert!(
        text.contains("    POST /bad  signature INVALID: no matching webhook signature\n"),
        "{text}"
    );
    // The pretty-printed envelope, indented under its delivery.
    assert!(
        text.contains("      \"from\": \"+5511987654321\""),
        "{text}"
    );
    assert!(text.contains("<-- 200"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_json_lines_and_chosen_status_drive_retries() {
    let listen = Listen::start(&["--secret", SECRET, "--status", "503", "--json"]);
    let app = spawn_app!();
    let tenant = app.tenant("acme").await;
    let webhook = app
        .webhook(
            &tenant,
            json!({"name": "retried", "url": format!("{}/hooks", listen.url),
                   "events": ["*"], "secret": SECRET, "retry_count": 1}),
        )
        .await;
    let event = app
        .event(
            &tenant,
            json!({"type": "contact.created", "data": {"n": 7}}),
        )
        .await;
    let event_id = event["id"].as_str().unwrap();

    let lines = listen.read_until(|lines| lines.len() == 2);
    let deliveries: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for (n, delivery) in deliveries.iter().enumerate() {
        assert_eq!(delivery["attempt"], n + 1, "{delivery}");
        assert_eq!(delivery["webhook_id"], event_id);
        assert_eq!(delivery["event_type"], "contact.created");
        assert_eq!(delivery["verified"], true);
        assert_eq!(delivery["verify_error"], Value::Null);
        assert_eq!(delivery["status"], 503);
        assert_eq!(delivery["path"], "/hooks");
        assert_eq!(delivery["body"]["data"]["n"], 7);
        assert!(delivery["timestamp"].as_i64().is_some());
    }
    // The server saw the 503s listen answered, and gave up after the one retry.
    let id = webhook["id"].as_str().unwrap();
    app.eventually(
        &tenant,
        &format!("/api/v1/events/{event_id}"),
        Duration::from_secs(30),
        |e| e["deliveries"][0]["state"] == "failed",
    )
    .await;
    let logs = app
        .get(&tenant, &format!("/api/v1/webhooks/{id}/logs"))
        .await;
    let statuses: Vec<&Value> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["response_status"])
        .collect();
    assert_eq!(statuses, [&json!(503), &json!(503)]);
}
