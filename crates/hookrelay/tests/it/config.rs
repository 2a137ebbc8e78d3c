//! The configuration file, layered: defaults, then the file, then `HOOKRELAY_*`, then flags;
//! `hookrelay config` shows the result with each value's source and secrets hidden; a bad
//! file stops the start with an error naming the key. Runs the real binary.

use std::process::{Command, Output};

fn hookrelay(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    command.args(args);
    // The test's own environment must not leak settings in.
    for (name, _) in std::env::vars() {
        if name.starts_with("HOOKRELAY_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("hookrelay runs")
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no `{key}` in:\n{out}"))
}

#[test]
fn flags_beat_environment_beat_file_beat_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookrelay.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:9100"
concurrency = 7
retry_base = "2s"
admin_key = "file-admin-key-0123456789abcdefghijkl"
allow_private_targets = ["127.0.0.0/8", "10.1.0.0/16"]
"#,
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = hookrelay(
        &["config", "--config", path, "--retry-base", "3s"],
        &[
            ("HOOKRELAY_CONCURRENCY", "9"),
            ("HOOKRELAY_RETRY_BASE", "5s"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The file beats the default; the environment beats the file; a flag beats them all.
    assert!(line(&stdout, "listen").contains("\"127.0.0.1:9100\""));
    assert!(line(&stdout, "listen").ends_with("# file"));
    assert!(line(&stdout, "concurrency").starts_with("concurrency = 9 "));
    assert!(line(&stdout, "concurrency").ends_with("# HOOKRELAY_CONCURRENCY"));
    assert!(line(&stdout, "retry_base").contains("\"3s\""));
    assert!(line(&stdout, "retry_base").ends_with("# flag"));
    assert!(line(&stdout, "poll_interval").ends_with("# default"));
    assert!(line(&stdout, "allow_private_targets").contains("127.0.0.0/8,10.1.0.0/16"));
    // Secrets are hidden, wherever they came from.
    assert!(line(&stdout, "admin_key").contains("\"***\""));
    assert!(!stdout.contains("file-admin-key"));

    // The same file, through the environment variable, with no flag.
    let out = hookrelay(&["config"], &[("HOOKRELAY_CONFIG", path)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(line(&stdout, "retry_base").ends_with("# file"), "{stdout}");
}

#[test]
fn a_bad_file_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("retry_bsae = \"1s\"\n", "`retry_bsae` is not a setting"),
        ("concurrency = \"many\"\n", "`concurrency`"),
        ("retry_max_delay = \"soon\"\n", "`retry_max_delay`"),
        (
            "allow_private_targets = [\"not-a-cidr\"]\n",
            "`allow_private_targets`",
        ),
        ("listen = [\n", "hookrelay.toml"),
    ];
    for (text, expected) in cases {
        let file = dir.path().join("hookrelay.toml");
        std::fs::write(&file, text).unwrap();
        for command in ["serve", "config"] {
            let out = hookrelay(&[command, "--config", file.to_str().unwrap()], &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} accepted {text:?}");
            assert!(stderr.contains(expected), "{text:?}: {stderr}");
            assert!(stderr.starts_with("error: "), "one plain line: {stderr}");
        }
    }
    let out = hookrelay(&["serve", "--config", "/nonexistent/hookrelay.toml"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read configuration file"));
}

#[test]
fn config_reports_invalid_settings_it_would_refuse_to_serve_with() {
    let out = hookrelay(&["config", "--admin-key", "short"], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKRELAY_ADMIN_KEY"));
    let out = hookrelay(
        &[
            "config",
            "--database-url",
            "postgres://postgres@127.0.0.1/x",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKRELAY_ENCRYPTION_KEY is required"));
}

/// Retry settings the schedule cannot use stop `serve` before it listens, and `config`
/// reports them, each error naming its setting. (They were once never checked: a factor of
/// 0.5 made each retry come sooner than the last.)
#[test]
fn bad_retry_settings_stop_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("x.db").display());
    let cases = [
        ("--retry-base", "0s", "HOOKRELAY_RETRY_BASE"),
        ("--retry-factor", "0.5", "HOOKRELAY_RETRY_FACTOR"),
        ("--retry-factor", "NaN", "HOOKRELAY_RETRY_FACTOR"),
        ("--retry-max-delay", "100ms", "HOOKRELAY_RETRY_MAX_DELAY"),
        ("--retry-jitter", "2", "HOOKRELAY_RETRY_JITTER"),
    ];
    for (flag, value, setting) in cases {
        for command in ["serve", "config"] {
            let out = hookrelay_bounded(&[
                command,
                "--database-url",
                &database,
                "--listen",
                "127.0.0.1:0",
                flag,
                value,
            ]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command} accepted {flag} {value}");
            assert!(stderr.contains(setting), "{flag} {value}: {stderr}");
            assert!(stderr.starts_with("error: "), "one plain line: {stderr}");
        }
    }
    // The same rule through the environment, and the defaults pass.
    let out = hookrelay(&["config"], &[("HOOKRELAY_RETRY_JITTER", "-1")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOOKRELAY_RETRY_JITTER"));
    let out = hookrelay(&["config"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a command that must fail at once; one that starts serving instead is killed after
/// 20 s (and the test fails), rather than hanging the suite.
fn hookrelay_bounded(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("HOOKRELAY_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hookrelay runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// The example file in the repository is what an operator copies: it must load as it is.
#[test]
fn the_example_file_loads_as_shipped() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../hookrelay.example.toml");
    let out = hookrelay(&["config", "--config", example], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
