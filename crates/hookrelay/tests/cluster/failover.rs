//! PostgreSQL going down mid-load and coming back (`pg_ctl stop -m immediate`, then start):
//! on a private server of the test's own, never the machine's shared one.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::it::crash::Node;
use crate::it::helpers::free_port;
use crate::it::receiver::{Receiver, Reply};

/// A PostgreSQL server in a temp dir, on a free loopback port, run as the `postgres` user
/// (initdb refuses root). Stopped (immediately) and removed on drop.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivatePostgres {
    /// `None`, said loudly, when this machine has no PostgreSQL binaries to run one.
    fn init() -> Option<PrivatePostgres> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
            .max()
        else {
            eprintln!(
                "SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin \
                 (the failover test runs a private server)"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        // The server runs as `postgres` and must reach its directory.
        let owned = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        let chmod = Command::new("chmod").arg("755").arg(dir.path()).status();
        if !owned.is_ok_and(|s| s.success()) || !chmod.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: cannot hand a directory to the postgres user (not root?)");
            return None;
        }
        let pg = PrivatePostgres {
            bin,
            data,
            port: free_port(),
            _dir: dir,
        };
        let init = pg
            .as_postgres("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&pg.data)
            .output();
        match init {
            Ok(out) if out.status.success() => Some(pg),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run initdb as postgres ({e})");
                None
            }
        }
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
        c
    }

    fn start(&self) {
        let out = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {} -c listen_addresses=127.0.0.1 -k {}",
                self.port,
                self.data.display()
            ))
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// As a crash: no checkpoint, connections cut; the next start recovers from the WAL.
    fn stop_immediately(&self) {
        let _ = self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.join("server.log")).unwrap_or_default()
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop_immediately();
    }
}

/// What the load client saw.
#[derive(Default)]
struct Load {
    /// Event ids answered 202, with the node that answered.
    accepted: Vec<(String, usize)>,
    /// 503s, each with `Retry-After` in problem form.
    unavailable: usize,
    /// Anything else: statuses, or no answer at all.
    other: Vec<String>,
    /// Each node's first 202 after `restarted_at` (set once the server is started again).
    first_after_restart: [Option<Instant>; 2],
    restarted_at: Option<Instant>,
    /// The first 503.
    first_unavailable: Option<Instant>,
}

/// One client: posts batches of 10 events to the nodes in turn until `stop`, retrying 503s as a client
/// told `Retry-After` would (sooner: the test is bounded).
async fn load(
    client_no: usize,
    bases: [String; 2],
    key: String,
    seen: Arc<Mutex<Load>>,
    stop: CancellationToken,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut n = client_no * 1_000_000;
    let mut turn = client_no;
    loop {
        let node = turn % 2;
        turn += 1;
        let events: Vec<Value> = (0..10)
            .map(|i| json!({"type": "message.new", "data": {"n": n + i}}))
            .collect();
        n += 10;
        let sent = client
            .post(format!("{}/api/v1/events/batch", bases[node]))
            .bearer_auth(&key)
            .json(&json!({"events": events}))
            .send();
        let answer = tokio::select! {
            () = stop.cancelled() => return,
            answer = sent => answer,
        };
        let mut wait = Duration::from_millis(5);
        match answer {
            Ok(r) if r.status() == StatusCode::ACCEPTED => {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let ids: Vec<String> = body["data"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|e| e["id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut seen = seen.lock().unwrap();
                if ids.len() != 10 {
                    seen.other
                        .push(format!("202 with {} ids: {body}", ids.len()));
                }
                seen.accepted.extend(ids.into_iter().map(|id| (id, node)));
                if seen.restarted_at.is_some() && seen.first_after_restart[node].is_none() {
                    seen.first_after_restart[node] = Some(Instant::now());
                }
            }
            Ok(r) if r.status() == StatusCode::SERVICE_UNAVAILABLE => {
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let problem = r
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json");
                let mut seen = seen.lock().unwrap();
                if retry_after.is_some_and(|s| s >= 1) && problem {
                    seen.unavailable += 1;
                    seen.first_unavailable.get_or_insert_with(Instant::now);
                } else {
                    seen.other.push(format!(
                        "503 without Retry-After or problem: {retry_after:?}"
                    ));
                }
                wait = Duration::from_millis(100);
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                seen.lock().unwrap().other.push(format!("{status}: {text}"));
                wait = Duration::from_millis(100);
            }
            Err(e) => {
                seen.lock().unwrap().other.push(format!("no answer: {e}"));
                wait = Duration::from_millis(100);
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// `hookrelay_changes_heard_total{kind="resync"}` of a node: once per (re)connection of the
/// connection that listens for changes.
async fn resyncs(base: &str) -> Option<f64> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("hookrelay_changes_heard_total{kind=\"resync\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_mid_load_loses_no_accepted_event_and_the_nodes_reconnect() {
    let Some(pg) = PrivatePostgres::init() else {
        return;
    };
    pg.start();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url("postgres"))
        .await
        .expect("connect to the private server");
    sqlx::query("CREATE DATABASE hookrelay")
        .execute(&mut conn)
        .await
        .expect("create the database");
    drop(conn);
    let url = pg.url("hookrelay");

    let rx = Receiver::start().await;
    rx.script("/in", |_| Reply {
        delay: Duration::from_millis(5),
        ..Reply::status(200)
    });
    let nodes = [Node::start_on(&url).await, Node::start_on(&url).await];
    let key = super::tenant_key(&nodes[0], "failover").await;
    let hook = nodes[1]
        .call(
            Method::POST,
            "/api/v1/webhooks",
            &key,
            Some(json!({"name": "in", "url": rx.url("/in"), "events": ["*"]})),
        )
        .await;
    let resyncs_before = [resyncs(&nodes[0].base).await, resyncs(&nodes[1].base).await];

    let seen = Arc::new(Mutex::new(Load::default()));
    let stop = CancellationToken::new();
    // Four clients, each with one request at a time, to both nodes in turn.
    let clients: Vec<_> = (0..4)
        .map(|c| {
            tokio::spawn(load(
                c,
                [nodes[0].base.clone(), nodes[1].base.clone()],
                key.clone(),
                seen.clone(),
                stop.clone(),
            ))
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_stop = seen.lock().unwrap().accepted.len();
    assert!(before_stop > 0, "no load before the stop");
    let stopped_at = Instant::now();
    let pg = tokio::task::spawn_blocking(move || {
        pg.stop_immediately();
        pg
    })
    .await
    .unwrap();
    let delivered_at_stop = rx.hits("/in").len();
    // Longer than the pool's 5 s wait for a connection, after which ingest answers 503.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let during = {
        let seen = seen.lock().unwrap();
        (seen.accepted.len(), seen.unavailable)
    };
    let pg = tokio::task::spawn_blocking(move || {
        pg.start();
        pg
    })
    .await
    .unwrap();
    let down_for = stopped_at.elapsed();
    seen.lock().unwrap().restarted_at = Some(Instant::now());
    let restarted_at = Instant::now();

    // Both nodes take events again by themselves, no restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let both = seen
            .lock()
            .unwrap()
            .first_after_restart
            .iter()
            .all(Option::is_some);
        if both {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a node took no event within 60 s of the database returning\n{}",
            pg.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for client in clients {
        client.await.unwrap();
    }
    let load = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        load.other.is_empty(),
        "answers besides 202 and 503: {:?}",
        load.other
    );
    assert!(
        during.1 > 0,
        "no 503 while the database was down ({} accepted meanwhile)",
        during.0 - before_stop
    );

    // Every event answered 202 arrives.
    let want: HashSet<&str> = load.accepted.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(want.len(), load.accepted.len());
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for hit in rx.hits("/in") {
            *counts
                .entry(hit.header("webhook-id").to_owned())
                .or_default() += 1;
        }
        let missing = want.iter().filter(|id| !counts.contains_key(**id)).count();
        if missing == 0 {
            break counts;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} accepted events never arrived",
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_arrived = restarted_at.elapsed();
    // And each is counted once the recorders have written what they held.
    let path = format!("/api/v1/webhooks/{}", hook["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let counted = loop {
        let got = nodes[0].call(Method::GET, &path, &key, None).await;
        if got["successful_deliveries"].as_u64() >= Some(want.len() as u64) {
            break got;
        }
        assert!(Instant::now() < deadline, "counters stopped at {got}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The change listeners reconnected: each node resynced once more.
    let deadline = Instant::now() + Duration::from_secs(30);
    let resyncs_after = loop {
        let after = [resyncs(&nodes[0].base).await, resyncs(&nodes[1].base).await];
        if after[0] > resyncs_before[0] && after[1] > resyncs_before[1] {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "change listeners did not reconnect: {resyncs_before:?} → {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    let twice = counts.values().filter(|n| **n > 1).count();
    let strangers = counts
        .keys()
        .filter(|id| !want.contains(id.as_str()))
        .count();
    let per_node = [0, 1].map(|n| load.accepted.iter().filter(|(_, by)| *by == n).count());
    eprintln!(
        "failover: {} events accepted ({per_node:?} per node), {before_stop} before the stop, \
         {} while it stopped; {} 503s, the first {:?} after the stop; {delivered_at_stop} delivered at the stop; down {down_for:?}; \
         first 202 per node {:?} after the start; all arrived {all_arrived:?} after the start; \
         {} deliveries, {twice} twice, {strangers} of events answered 503; counters {} / {}; \
         resyncs {resyncs_before:?} → {resyncs_after:?}",
        want.len(),
        during.0 - before_stop,
        load.unavailable,
        load.first_unavailable.map(|t| t.duration_since(stopped_at)),
        load.first_after_restart
            .map(|t| t.map(|t| t.duration_since(restarted_at))),
        rx.hits("/in").len(),
        counted["total_deliveries"],
        counted["successful_deliveries"],
    );
    // Attempts cut by the crash may be made again; never many.
    assert!(twice <= 64, "{twice} events delivered more than once");
    drop(nodes);
    drop(pg);
}
