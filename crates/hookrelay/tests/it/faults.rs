//! Faults of the machine under the server: the SQLite file system filling up. (PostgreSQL
//! going away and coming back is in tests/cluster/.)

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;
use super::receiver::{Receiver, Reply};

/// A tmpfs of `size` mounted on a fresh temp dir, unmounted on drop.
struct Tmpfs {
    dir: Option<tempfile::TempDir>,
}

impl Tmpfs {
    /// `None` (and a loud line on stderr) when this machine does not let the test mount one.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir: Some(dir) }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs to fill ({}); the full-disk test needs root \
                     or CAP_SYS_ADMIN",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); the full-disk test needs it");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.as_ref().expect("mounted").path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            // Lazy: the server's files may still be closing.
            let _ = Command::new("umount").arg("-l").arg(dir.path()).status();
        }
    }
}

/// Writes to `path` until the file system has no room left; answers the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0xa5u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // Leftovers smaller than a chunk.
    loop {
        match file.write(&chunk[..512]) {
            Ok(n) if n > 0 => written += n as u64,
            _ => break,
        }
    }
    let _ = file.sync_all();
    written
}

/// An event of about 4 KiB, numbered.
fn event(n: usize) -> Value {
    json!({"type": "message.new", "data": {"n": n, "pad": "x".repeat(4000)}})
}

struct Poster {
    client: reqwest::Client,
    url: String,
    key: String,
}

impl Poster {
    /// Posts one event; its status, `Retry-After` and answer.
    async fn post(&self, n: usize) -> (StatusCode, Option<String>, Value, String) {
        let r = self
            .client
            .post(&self.url)
            .bearer_auth(&self.key)
            .json(&event(n))
            .send()
            .await
            .expect("an answer, not a hang");
        let status = r.status();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        (status, retry_after, body, content_type)
    }
}

fn ids(rx: &Receiver, path: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for hit in rx.hits(path) {
        *seen.entry(hit.header("webhook-id").to_owned()).or_default() += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_loses_nothing_and_resumes_when_space_returns() {
    if backend() != Backend::Sqlite {
        return; // PostgreSQL's disk is the server's: see tests/cluster/ for its faults
    }
    let Some(disk) = Tmpfs::mount("8m") else {
        return;
    };
    let rx = Receiver::start().await;
    rx.script("/in", |_| Reply {
        delay: Duration::from_millis(2),
        ..Reply::status(200)
    });
    let db = TestDb::sqlite_in(tempfile::tempdir_in(disk.path()).expect("dir on the tmpfs"));
    let app = TestApp::spawn_in(db).await;
    let t = app.tenant("Full").await;
    let hook = app
        .webhook(
            &t,
            json!({"name": "in", "url": rx.url("/in"), "events": ["*"]}),
        )
        .await;
    let poster = Poster {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        url: app.url("/api/v1/events"),
        key: t.key.clone(),
    };
    // The receiver holds its first requests: deliveries are in flight when the disk fills,
    // and their attempts end (and must be recorded) while it is full.
    rx.hold("/in");
    let mut accepted: Vec<String> = Vec::new();
    let mut n = 0;
    for _ in 0..100 {
        let (status, _, body, _) = poster.post(n).await;
        n += 1;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }

    // No room left: ingest answers 503 with Retry-After, in problem form, never 500.
    let filler = disk.path().join("filler");
    let filled = fill(&filler);
    let full_at = Instant::now();
    let mut refused = 0;
    let mut accepted_while_full = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while refused < 20 {
        assert!(
            Instant::now() < deadline,
            "ingest never refused on a full disk ({accepted_while_full} accepted)"
        );
        let (status, retry_after, body, content_type) = poster.post(n).await;
        n += 1;
        match status {
            // WAL pages already allocated can still take a commit or two.
            StatusCode::ACCEPTED => {
                accepted_while_full += 1;
                accepted.push(body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused += 1;
                assert_eq!(content_type, "application/problem+json", "{body}");
                assert_eq!(body["status"], 503, "{body}");
                assert!(
                    body["type"]
                        .as_str()
                        .is_some_and(|t| t.ends_with("unavailable")),
                    "{body}"
                );
                let secs: u64 = retry_after
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                    .expect("Retry-After in seconds");
                assert!(secs >= 1, "{secs}");
            }
            other => panic!("a full disk answered {other}: {body}"),
        }
    }
    let first_refusals = Instant::now() - full_at;

    // Still full: everything answered 202 is there, readable.
    for id in &accepted {
        let r = app
            .call(
                Method::GET,
                &format!("/api/v1/events/{id}"),
                Some(&t.key),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "accepted event {id} is gone");
    }

    // Readable means ready: a load balancer keeps the node (docs/operations.md says so).
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);

    // Deliveries go on while the disk is full; their results wait to be written.
    rx.release("/in");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let delivered_while_full = ids(&rx, "/in").len();

    // Space returns: ingest and delivery resume on their own.
    std::fs::remove_file(&filler).expect("remove the filler");
    let freed_at = Instant::now();
    let mut refused_after = 0;
    loop {
        assert!(
            freed_at.elapsed() < Duration::from_secs(30),
            "ingest did not resume within 30 s of space returning"
        );
        let (status, _, body, _) = poster.post(n).await;
        n += 1;
        match status {
            StatusCode::ACCEPTED => {
                accepted.push(body["id"].as_str().unwrap().to_owned());
                break;
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                refused_after += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("after space returned: {other}: {body}"),
        }
    }
    let resumed_after = freed_at.elapsed();
    for _ in 0..100 {
        let (status, _, body, _) = poster.post(n).await;
        n += 1;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }

    let want: HashSet<String> = accepted.iter().cloned().collect();
    assert_eq!(want.len(), accepted.len());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen = ids(&rx, "/in");
        let missing = want.iter().filter(|id| !seen.contains_key(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} accepted events never arrived",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_arrived = freed_at.elapsed();
    // The counters settle to exactly what arrived: every attempt made on the full disk was
    // recorded once space returned.
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let hook = app
        .eventually(&t, &path, Duration::from_secs(30), |h| {
            h["total_deliveries"] == want.len()
        })
        .await;
    let all_recorded = freed_at.elapsed();
    assert_eq!(hook["successful_deliveries"], want.len(), "{hook}");
    let seen = ids(&rx, "/in");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let strangers: Vec<_> = seen.keys().filter(|id| !want.contains(*id)).collect();
    eprintln!(
        "full disk: filler {filled} bytes; {accepted_while_full} accepted after filling; \
         20 refusals within {first_refusals:?}; space back: {refused_after} more 503s, \
         ingest resumed after {resumed_after:?}; {delivered_while_full} delivered while full; \
         all arrived {all_arrived:?} and were recorded {all_recorded:?} after space returned; \
         {} events, {} deliveries, {} twice",
        want.len(),
        rx.hits("/in").len(),
        twice.len()
    );
    assert!(
        strangers.is_empty(),
        "deliveries of events never accepted: {strangers:?}"
    );
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");

    // Durable, not only visible to the writer: after a restart every accepted event is
    // still stored, and the file is sound.
    let db = app.stop().await;
    let stored: HashSet<String> = db
        .strings("SELECT id FROM events")
        .await
        .into_iter()
        .collect();
    let lost: Vec<_> = want.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} accepted events not stored: {lost:?}",
        lost.len()
    );
    assert_eq!(db.strings("PRAGMA integrity_check").await, ["ok"]);
    drop(db);
    drop(disk);
}
