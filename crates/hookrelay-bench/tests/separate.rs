//! The separate-process mode end to end, with tiny counts: the real `hookrelay` binary (the
//! one `cargo test --workspace` builds next to this bench), a receiver and a load generator
//! in their own processes. Without that binary (e.g. `cargo test -p hookrelay-bench` on a
//! fresh checkout) these tests say SKIPPED and pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_hookrelay-bench");

fn server_bin() -> Option<PathBuf> {
    let path = Path::new(BENCH).with_file_name("hookrelay");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: no {} (build it with `cargo build -p hookrelay`)",
            path.display()
        );
        None
    }
}

/// The environment variable every process of one bench run inherits (the server too: the
/// bench removes only `HOOKRELAY_*` variables from its environment).
const TAG: &str = "BENCH_SEPARATE_TEST_TAG";

/// A value of [`TAG`] no other run uses.
fn new_tag() -> String {
    format!("{}-{:?}", std::process::id(), Instant::now())
}

/// The command lines of the live processes started with `TAG=tag`.
fn tagged_processes(tag: &str) -> Vec<String> {
    let needle = format!("{TAG}={tag}");
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            continue;
        }
        // A zombie (exited, not yet reaped) has an empty command line: it runs no more.
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if !cmdline.is_empty() {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

#[test]
fn every_phase_runs_in_its_own_processes_and_reports_ratios() {
    let Some(_) = server_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tag = new_tag();
    let output = Command::new(BENCH)
        .args([
            "--duration",
            "0.5",
            "--events-1",
            "40",
            "--events-10",
            "10",
            "--latency-seconds",
            "0.5",
            "--rates",
            "40",
            "--concurrency",
            "2",
            "--wait-timeout",
            "30",
            "--db-dir",
        ])
        .arg(dir.path())
        .env(TAG, &tag)
        .env_remove("HOOKRELAY_BENCH_POSTGRES_URL")
        // The server runs with its defaults: a setting in the caller's shell does not reach
        // it (one request a second per key would turn most posts below into 429s).
        .env("HOOKRELAY_RATE_LIMIT_PER_KEY", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}\n{stdout}");
    for expected in [
        "requests/s, load generator straight to the receiver",
        "ingest (default settings)",
        "of ceiling)",
        "40 / 40 (40 × 1)",
        "100 / 100 (10 × 10)",
        "20 of 20",
        "server peak RSS (VmHWM of the hookrelay process)",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in\n{stdout}");
    }
    assert!(!stdout.contains("INCOMPLETE"), "{stdout}");
    assert!(!stdout.contains("first error"), "{stdout}");
    // Every phase's database directory is gone, and no child is left.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(tagged_processes(&tag), Vec::<String>::new());
}

#[test]
fn an_interrupted_run_leaves_no_process_behind() {
    let Some(_) = server_bin() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tag = new_tag();
    let mut bench = Command::new(BENCH)
        .args([
            "--phases",
            "ingest",
            "--duration",
            "60",
            "--concurrency",
            "2",
        ])
        .arg("--db-dir")
        .arg(dir.path())
        .env(TAG, &tag)
        .env_remove("HOOKRELAY_BENCH_POSTGRES_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the server and the load generator run (the receiver starts first).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let running = tagged_processes(&tag);
        if running.iter().any(|p| p.contains(" serve "))
            && running.iter().any(|p| p.contains(" load "))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server never started");
        assert!(
            bench.try_wait().unwrap().is_none(),
            "the bench exited early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGINT, as Ctrl-C sends it.
    let pid = libc::pid_t::try_from(bench.id()).unwrap();
    // SAFETY: kill has no memory-safety preconditions; `pid` is our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = bench.wait().unwrap();
    assert!(!status.success(), "an interrupted run reports failure");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = tagged_processes(&tag);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left running: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_missing_server_binary_is_a_clear_error() {
    let output = Command::new(BENCH)
        .args([
            "--server-bin",
            "/nonexistent/hookrelay",
            "--phases",
            "ingest",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cargo build --release"), "{stderr}");
}
