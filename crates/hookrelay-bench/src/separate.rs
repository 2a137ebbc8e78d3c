//! The separate-process mode (the default): the real `hookrelay serve` binary in its own
//! process, the receiver and the load generator each in their own process (this binary,
//! re-executed with the hidden subcommands `receiver` and `load`).
//!
//! The receiver child prints its base URL as one JSON line on stdout, then answers one JSON
//! line per command read on stdin (`counts`, `wait <expected> <millis>`, `arrivals`); it
//! stops when stdin closes. The load child prints one JSON [`LoadReport`] when done. Times
//! cross processes as `CLOCK_MONOTONIC` nanoseconds. Every child is killed by PID when its
//! phase ends, fails or is interrupted, and every wait on a child is bounded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::child::{self, Clock, between, monotonic_ns};
use crate::database::{Backend, Database};
use crate::load::LoadReport;
use crate::phases::{FanoutResult, IngestResult, LatencyResult};
use crate::receiver::{Counts, Receiver};
use crate::server::{self, ADMIN_KEY, ENCRYPTION_KEY};

/// What every phase of this mode shares.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The `hookrelay` executable.
    pub server_bin: PathBuf,
    pub concurrency: usize,
    pub wait_timeout: Duration,
    pub backend: Backend,
    /// `--db-max-connections` for the server, when the user gave one (else its default).
    pub db_max_connections: Option<u32>,
}

/// The server's API rate limits in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limits {
    /// hookrelay's defaults: what users meet.
    Defaults,
    /// Every API limit off (0): the engine's capacity.
    Off,
    /// On, but far above the load: what counting costs.
    High,
}

impl Limits {
    pub fn flags(self) -> Vec<String> {
        let value = match self {
            Limits::Defaults => return Vec::new(),
            Limits::Off => "0",
            Limits::High => "100000000",
        };
        [
            "--rate-limit-per-key",
            value,
            "--rate-limit-per-ip",
            value,
            "--auth-failures-per-minute",
            value,
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// How long a server may take to listen and answer `/readyz`, and to stop after SIGTERM
/// (its default shutdown grace is 30 s; in-flight attempts to the fast receiver finish in
/// far less).
const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(40);
/// How long a receiver command may take beyond what it asks for.
const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// `hookrelay` next to this executable (the same target directory), unless `--server-bin`.
pub fn locate_server(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_owned(),
        None => std::env::current_exe()
            .context("cannot tell where this executable is; pass --server-bin PATH")?
            .with_file_name("hookrelay"),
    };
    if !path.is_file() {
        anyhow::bail!(
            "the hookrelay server binary is not at {}: build it first with \
             `cargo build --release` (then `cargo run --release -p hookrelay-bench`), \
             or pass --server-bin PATH, or run the in-process benchmark with --in-process",
            path.display()
        );
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------
// The receiver child.

#[derive(Debug, Clone, clap::Args)]
pub struct ReceiverArgs {
    /// Webhooks to receive for (`/hook/0` … `/hook/N-1`).
    #[arg(long, default_value_t = 1)]
    pub webhooks: usize,
}

/// Counts as the receiver child sends them.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct RemoteCounts {
    pub total: u64,
    pub unique: u64,
    pub malformed: u64,
    pub last_unique_ns: Option<u64>,
    pub body_bytes: usize,
}

impl RemoteCounts {
    fn of(counts: Counts, clock: &Clock) -> RemoteCounts {
        RemoteCounts {
            total: counts.total,
            unique: counts.unique,
            malformed: counts.malformed,
            last_unique_ns: counts.last_unique_at.map(|at| clock.ns(at)),
            body_bytes: counts.body_bytes,
        }
    }

    /// As the report takes them (times are in the other process, so none here).
    fn counts(&self) -> Counts {
        Counts {
            total: self.total,
            unique: self.unique,
            malformed: self.malformed,
            last_unique_at: None,
            body_bytes: self.body_bytes,
        }
    }
}

/// The `receiver` subcommand.
pub async fn receiver_main(args: ReceiverArgs) -> anyhow::Result<()> {
    let receiver = Receiver::start(args.webhooks.max(1)).await?;
    let clock = Clock::now();
    say(&serde_json::json!({ "base": receiver.base() }))?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["counts"] => serde_json::to_value(RemoteCounts::of(receiver.counts(), &clock))?,
            ["wait", expected, millis] => {
                let expected: u64 = expected.parse().context("wait: expected count")?;
                let millis: u64 = millis.parse().context("wait: milliseconds")?;
                let counts = receiver
                    .wait_for(expected, Duration::from_millis(millis))
                    .await;
                serde_json::to_value(RemoteCounts::of(counts, &clock))?
            }
            ["arrivals"] => {
                let arrivals: HashMap<String, u64> = receiver
                    .arrivals(0)
                    .into_iter()
                    .map(|(id, at)| (id, clock.ns(at)))
                    .collect();
                serde_json::to_value(arrivals)?
            }
            _ => serde_json::json!({ "error": format!("unknown command {line:?}") }),
        };
        say(&answer)?;
    }
    // stdin closed: the parent is done (or gone).
    receiver.stop().await
}

fn say(value: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    out.flush()?;
    Ok(())
}

/// A receiver child, from the parent's side.
struct ReceiverProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    base: String,
}

impl ReceiverProcess {
    async fn start(webhooks: usize) -> anyhow::Result<ReceiverProcess> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut command = Command::new(exe);
        command
            .arg("receiver")
            .arg("--webhooks")
            .arg(webhooks.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        child::tie_to_parent(&mut command);
        let mut child = command.spawn().context("starting the receiver process")?;
        let stdin = child.stdin.take().context("receiver stdin")?;
        let stdout = child.stdout.take().context("receiver stdout")?;
        let mut receiver = ReceiverProcess {
            child,
            stdin: Some(stdin),
            lines: BufReader::new(stdout).lines(),
            base: String::new(),
        };
        let hello = receiver.read(Duration::from_secs(10)).await?;
        receiver.base = hello["base"]
            .as_str()
            .context("the receiver did not say its address")?
            .to_owned();
        Ok(receiver)
    }

    fn url(&self, index: usize) -> String {
        format!("{}/hook/{index}", self.base)
    }

    async fn read(&mut self, limit: Duration) -> anyhow::Result<Value> {
        let line = tokio::time::timeout(limit, self.lines.next_line())
            .await
            .context("the receiver process did not answer in time")??
            .context("the receiver process exited")?;
        serde_json::from_str(&line).with_context(|| format!("receiver said {line:?}"))
    }

    async fn ask(&mut self, command: &str, limit: Duration) -> anyhow::Result<Value> {
        let stdin = self.stdin.as_mut().context("receiver already stopped")?;
        stdin.write_all(format!("{command}\n").as_bytes()).await?;
        stdin.flush().await?;
        self.read(limit + ANSWER_LIMIT).await
    }

    async fn counts(&mut self) -> anyhow::Result<RemoteCounts> {
        Ok(serde_json::from_value(
            self.ask("counts", Duration::ZERO).await?,
        )?)
    }

    /// Waits (in the receiver) until `expected` distinct deliveries arrived, or `limit`.
    async fn wait_for(&mut self, expected: u64, limit: Duration) -> anyhow::Result<RemoteCounts> {
        let command = format!("wait {expected} {}", limit.as_millis());
        Ok(serde_json::from_value(self.ask(&command, limit).await?)?)
    }

    async fn arrivals(&mut self) -> anyhow::Result<HashMap<String, u64>> {
        Ok(serde_json::from_value(
            self.ask("arrivals", Duration::ZERO).await?,
        )?)
    }

    /// Closes its stdin (it stops by itself), killing it if it does not within 10 s.
    async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        let status = wait_or_kill(
            &mut self.child,
            Duration::from_secs(10),
            "the receiver process",
        )
        .await?;
        anyhow::ensure!(
            status.success(),
            "the receiver process exited with {status}"
        );
        Ok(())
    }
}

/// Waits for `child` to exit, at most `limit`; past it, kills it and says so.
async fn wait_or_kill(
    child: &mut Child,
    limit: Duration,
    what: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            let _ = child.kill().await;
            anyhow::bail!("{what} did not stop within {limit:?}; killed")
        }
    }
}

// ---------------------------------------------------------------------------------------
// The server process.

/// `hookrelay serve` in its own process, its stdout and stderr in a log file.
struct ServerProcess {
    child: Child,
    pid: u32,
    base: String,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

/// The arguments of `hookrelay serve` for a phase: loopback, a port the OS picks, the
/// phase's database, JSON logs (to read the port from), and the rate-limit flags.
pub fn serve_args(
    database_url: &str,
    db_max_connections: Option<u32>,
    limits: Limits,
) -> Vec<String> {
    let mut args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        database_url,
        "--log-format",
        "json",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Some(n) = db_max_connections {
        args.extend(["--db-max-connections".to_owned(), n.to_string()]);
    }
    args.extend(limits.flags());
    args
}

/// The address in hookrelay's JSON log line `hookrelay listening`, if `line` is that line.
pub fn listening_address(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    let fields = &value["fields"];
    (fields["message"].as_str()? == "hookrelay listening")
        .then(|| fields["address"].as_str().map(str::to_owned))
        .flatten()
}

impl ServerProcess {
    async fn start(
        settings: &Settings,
        database_url: &str,
        limits: Limits,
        client: &reqwest::Client,
    ) -> anyhow::Result<ServerProcess> {
        let log_dir = tempfile::Builder::new()
            .prefix("hookrelay-bench-server-")
            .tempdir()?;
        let log = log_dir.path().join("server.log");
        let file = std::fs::File::create(&log)?;
        let mut command = Command::new(&settings.server_bin);
        command.args(serve_args(
            database_url,
            settings.db_max_connections,
            limits,
        ));
        // Only what the bench sets: no HOOKRELAY_* or RUST_LOG of the caller's shell.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HOOKRELAY_") || name == "RUST_LOG" {
                command.env_remove(name);
            }
        }
        command
            .env("HOOKRELAY_ADMIN_KEY", ADMIN_KEY)
            .env("HOOKRELAY_ENCRYPTION_KEY", ENCRYPTION_KEY)
            // The receiver is on loopback, which hookrelay refuses unless the operator allows it.
            .env("HOOKRELAY_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        child::tie_to_parent(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("starting the server {}", settings.server_bin.display()))?;
        let pid = child.id().context("the server exited at once")?;
        let mut server = ServerProcess {
            child,
            pid,
            base: String::new(),
            log,
            _log_dir: log_dir,
        };
        // On failure the server is dropped, which kills it.
        match server.wait_ready(client).await {
            Ok(()) => Ok(server),
            Err(e) => Err(e.context(format!("server log:\n{}", server.log_tail()))),
        }
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the server exited while starting ({status})");
            }
            if self.base.is_empty() {
                let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                if let Some(address) = text.lines().find_map(listening_address) {
                    self.base = format!("http://{address}");
                }
            }
            if !self.base.is_empty()
                && let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                anyhow::bail!("the server was not ready within {START_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn peak_rss(&self) -> Option<u64> {
        child::peak_rss_of(self.pid)
    }

    /// SIGTERM, as an init system stops it; SIGKILL if it has not exited within STOP_LIMIT.
    async fn stop(mut self) -> anyhow::Result<()> {
        child::terminate(self.pid);
        let status = wait_or_kill(&mut self.child, STOP_LIMIT, "the server").await?;
        anyhow::ensure!(
            status.success(),
            "the server exited with {status}; its log:\n{}",
            self.log_tail()
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The load child.

/// The arguments of a `hookrelay-bench load` run.
pub fn load_args(
    url: &str,
    key: Option<&str>,
    expect: u16,
    concurrency: usize,
    shape: &LoadShape,
) -> Vec<String> {
    let mut args = vec![
        "load".to_owned(),
        "--url".to_owned(),
        url.to_owned(),
        "--expect".to_owned(),
        expect.to_string(),
        "--concurrency".to_owned(),
        concurrency.to_string(),
    ];
    if let Some(key) = key {
        args.extend(["--key".to_owned(), key.to_owned()]);
    } else {
        // Without a key it is the ceiling run, against the receiver.
        args.push("--webhook-ids".to_owned());
    }
    match shape {
        LoadShape::For(d) => args.extend(["--seconds".to_owned(), d.as_secs_f64().to_string()]),
        LoadShape::Count(n) => args.extend(["--count".to_owned(), n.to_string()]),
        LoadShape::Rate(rate, d) => args.extend([
            "--rate".to_owned(),
            rate.to_string(),
            "--for-seconds".to_owned(),
            d.as_secs_f64().to_string(),
        ]),
    }
    args
}

#[derive(Debug, Clone)]
pub enum LoadShape {
    For(Duration),
    Count(u64),
    Rate(u32, Duration),
}

/// Runs a load child to completion, killed if it takes longer than `limit`.
async fn run_load(args: Vec<String>, limit: Duration) -> anyhow::Result<LoadReport> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let mut command = Command::new(exe);
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    child::tie_to_parent(&mut command);
    let mut child = command
        .spawn()
        .context("starting the load generator process")?;
    // Held open until it is done: the child exits when it closes.
    let _stdin = child.stdin.take();
    let output = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .with_context(|| format!("the load generator did not finish within {limit:?}; killed"))??;
    anyhow::ensure!(
        output.status.success(),
        "the load generator exited with {}",
        output.status
    );
    serde_json::from_slice(&output.stdout).context("the load generator's report")
}

// ---------------------------------------------------------------------------------------
// The phases.

/// A receiver, a database and a server on it, set up with `webhooks` webhooks.
struct Rig {
    receiver: ReceiverProcess,
    server: ServerProcess,
    key: String,
    /// Last: removed after the server is stopped (a PostgreSQL one by its guard on failure).
    database: Database,
}

impl Rig {
    async fn start(settings: &Settings, webhooks: usize, limits: Limits) -> anyhow::Result<Rig> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let receiver = ReceiverProcess::start(webhooks).await?;
        let database = Database::create(&settings.backend).await?;
        let server = ServerProcess::start(settings, &database.url, limits, &client).await?;
        let urls: Vec<String> = (0..webhooks).map(|i| receiver.url(i)).collect();
        let key = server::setup(&client, &server.base, &urls).await?;
        Ok(Rig {
            receiver,
            server,
            key,
            database,
        })
    }

    fn events_url(&self) -> String {
        format!("{}/api/v1/events", self.server.base)
    }

    async fn load(
        &self,
        settings: &Settings,
        shape: &LoadShape,
        limit: Duration,
    ) -> anyhow::Result<LoadReport> {
        let args = load_args(
            &self.events_url(),
            Some(&self.key),
            202,
            settings.concurrency,
            shape,
        );
        run_load(args, limit).await
    }

    /// The server's peak RSS, then: server stopped (while the receiver still answers),
    /// receiver stopped, database removed; all of it even if a step fails.
    async fn stop(self) -> (Option<u64>, anyhow::Result<()>) {
        let peak = self.server.peak_rss();
        let stopped = self.server.stop().await;
        let received = self.receiver.stop().await;
        let removed = self.database.remove().await;
        (peak, stopped.and(received).and(removed))
    }

    /// Stops the rig once a phase has `measured`; the phase's error comes first.
    async fn finish<T>(self, measured: anyhow::Result<T>) -> anyhow::Result<Measured<T>> {
        let (server_peak_rss, stopped) = self.stop().await;
        let result = measured?;
        stopped?;
        Ok(Measured {
            result,
            server_peak_rss,
        })
    }
}

/// What a phase measured, and the server's peak RSS during it.
pub struct Measured<T> {
    pub result: T,
    pub server_peak_rss: Option<u64>,
}

/// The ceiling: the load generator posting the same requests straight to the receiver, for
/// `duration`, with the same clients.
pub async fn ceiling(settings: &Settings, duration: Duration) -> anyhow::Result<IngestResult> {
    let mut receiver = ReceiverProcess::start(1).await?;
    let args = load_args(
        &receiver.url(0),
        None,
        204,
        settings.concurrency,
        &LoadShape::For(duration),
    );
    let report = run_load(args, duration + Duration::from_secs(60)).await;
    let counts = receiver.counts().await;
    receiver.stop().await?;
    Ok(ingest_result(report?, counts?))
}

/// An ingest-shaped result: what the load generator reported, what the receiver counted.
fn ingest_result(report: LoadReport, delivered: RemoteCounts) -> IngestResult {
    IngestResult {
        accepted: report.accepted,
        errors: report.errors,
        first_error: report.first_error,
        elapsed: between(report.start_ns, report.end_ns),
        delivered: delivered.counts(),
    }
}

pub async fn ingest(
    settings: &Settings,
    duration: Duration,
    limits: Limits,
) -> anyhow::Result<Measured<IngestResult>> {
    let mut rig = Rig::start(settings, 1, limits).await?;
    let measured = async {
        let report = rig
            .load(
                settings,
                &LoadShape::For(duration),
                duration + Duration::from_secs(60),
            )
            .await?;
        let delivered = rig.receiver.counts().await?;
        anyhow::Ok(ingest_result(report, delivered))
    }
    .await;
    rig.finish(measured).await
}

pub async fn fanout(
    settings: &Settings,
    webhooks: usize,
    events: u64,
) -> anyhow::Result<Measured<FanoutResult>> {
    let mut rig = Rig::start(settings, webhooks, Limits::Defaults).await?;
    let measured = async {
        let report = rig
            .load(
                settings,
                &LoadShape::Count(events),
                settings.wait_timeout + Duration::from_secs(60),
            )
            .await?;
        let expected = report.accepted * webhooks as u64;
        let arrived = rig
            .receiver
            .wait_for(expected, settings.wait_timeout)
            .await?;
        let end_ns = match arrived.last_unique_ns {
            Some(last) if arrived.unique >= expected => last,
            _ => monotonic_ns(),
        };
        anyhow::Ok(FanoutResult {
            webhooks,
            events,
            accepted: report.accepted,
            errors: report.errors,
            first_error: report.first_error,
            posting: between(report.start_ns, report.end_ns),
            expected,
            arrived: arrived.counts(),
            elapsed: between(report.start_ns, end_ns),
        })
    }
    .await;
    rig.finish(measured).await
}

pub async fn latency(
    settings: &Settings,
    rate: u32,
    seconds: Duration,
) -> anyhow::Result<Measured<LatencyResult>> {
    let mut rig = Rig::start(settings, 1, Limits::Defaults).await?;
    let measured = async {
        let report = rig
            .load(
                settings,
                &LoadShape::Rate(rate, seconds),
                seconds + Duration::from_secs(60),
            )
            .await?;
        rig.receiver
            .wait_for(report.accepted, settings.wait_timeout)
            .await?;
        let arrivals = rig.receiver.arrivals().await?;
        let mut latencies: Vec<Duration> = report
            .sends
            .iter()
            .filter_map(|(id, sent)| arrivals.get(id).map(|at| between(*sent, *at)))
            .collect();
        latencies.sort_unstable();
        anyhow::Ok(LatencyResult {
            rate,
            sent: crate::load::sends_at(rate, seconds),
            accepted: report.accepted,
            errors: report.errors,
            first_error: report.first_error,
            arrived: latencies.len() as u64,
            latencies,
            max_send_lag: Duration::from_nanos(report.max_send_lag_ns),
            max_in_flight: report.max_in_flight,
        })
    }
    .await;
    rig.finish(measured).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Load {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand)]
    enum Sub {
        Load(crate::load::LoadArgs),
    }

    fn parse(args: Vec<String>) -> crate::load::LoadArgs {
        let Sub::Load(args) =
            Load::parse_from(std::iter::once("bench".to_owned()).chain(args)).command;
        args
    }

    #[test]
    fn load_arguments_round_trip() {
        let args = parse(load_args(
            "http://127.0.0.1:1/api/v1/events",
            Some("hrk_x"),
            202,
            64,
            &LoadShape::Rate(500, Duration::from_millis(2500)),
        ));
        assert_eq!(args.url, "http://127.0.0.1:1/api/v1/events");
        assert_eq!(args.key.as_deref(), Some("hrk_x"));
        assert_eq!((args.expect, args.concurrency), (202, 64));
        assert!(!args.webhook_ids);
        assert_eq!(args.shape.rate, Some(500));
        assert_eq!(args.shape.for_seconds, Some(2.5));

        let ceiling = parse(load_args(
            "http://127.0.0.1:1/hook/0",
            None,
            204,
            8,
            &LoadShape::For(Duration::from_secs(5)),
        ));
        assert!(ceiling.webhook_ids && ceiling.key.is_none());
        assert_eq!(ceiling.shape.seconds, Some(5.0));
        let count = parse(load_args("u", Some("k"), 202, 1, &LoadShape::Count(7)));
        assert_eq!(count.shape.count, Some(7));
    }

    #[test]
    fn serve_arguments_keep_defaults_unless_asked() {
        let args = serve_args("/tmp/x/hookrelay.db", None, Limits::Defaults);
        assert_eq!(
            args,
            [
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                "/tmp/x/hookrelay.db",
                "--log-format",
                "json"
            ]
        );
        let args = serve_args("postgres://h/db", Some(8), Limits::Off);
        assert!(args.ends_with(&[
            "--db-max-connections".to_owned(),
            "8".to_owned(),
            "--rate-limit-per-key".to_owned(),
            "0".to_owned(),
            "--rate-limit-per-ip".to_owned(),
            "0".to_owned(),
            "--auth-failures-per-minute".to_owned(),
            "0".to_owned(),
        ]));
    }

    #[test]
    fn finds_the_listening_line() {
        let line = r#"{"timestamp":"2026-12-02T14:00:00Z","level":"INFO","fields":{"message":"hookrelay listening","address":"127.0.0.1:40123","database":"x"},"target":"hookrelay::server"}"#;
        assert_eq!(listening_address(line).as_deref(), Some("127.0.0.1:40123"));
        assert_eq!(listening_address(r#"{"fields":{"message":"other"}}"#), None);
        assert_eq!(listening_address("not json"), None);
    }

    #[test]
    fn a_missing_server_binary_says_how_to_build_it() {
        let error = locate_server(Some(Path::new("/nonexistent/hookrelay")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cargo build --release"), "{error}");
        assert!(error.contains("--server-bin"), "{error}");
    }
}
