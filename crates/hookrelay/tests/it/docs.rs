//! `docs/receiving-webhooks.md` and `docs/integration.md` cannot drift from the code:
//!
//! - the event catalogue section is generated from `domain::catalog` (every type, its
//!   description, its fields and its sample);
//! - each `<!-- include: PATH -->` block is the file at PATH, which `examples.rs` runs;
//! - the curl block of `integration.md` runs against the real server;
//! - the settings table of `operations.md` gives each flag's own variable and default.
//!
//! After changing the catalogue or an example, regenerate with
//! `HOOKRELAY_UPDATE_DOCS=1 cargo test -p hookrelay --test it docs::`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use hookrelay::domain::catalog::CATALOG;
use serde_json::Value;

use super::examples::repo;

const UPDATE_VAR: &str = "HOOKRELAY_UPDATE_DOCS";
const CATALOGUE_START: &str = "<!-- catalogue:start -->";
const CATALOGUE_END: &str = "<!-- catalogue:end -->";
const INCLUDE: &str = "<!-- include: ";

/// One row per field of a sample: its path (`contact.phone`, `tags[]`) and JSON type.
fn fields(prefix: &str, value: &Value, rows: &mut Vec<(String, &'static str)>) {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !prefix.is_empty() {
        rows.push((prefix.to_owned(), kind));
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                fields(&path, child, rows);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                let element = format!("{prefix}[]");
                if first.is_object() {
                    for (key, child) in first.as_object().into_iter().flatten() {
                        fields(&format!("{element}.{key}"), child, rows);
                    }
                } else {
                    fields(&element, first, rows);
                }
            }
        }
        _ => {}
    }
}

/// The generated catalogue: a summary table, then one section per type.
fn catalogue() -> String {
    let mut out = String::from("\n| Type | When |\n|---|---|\n");
    for t in CATALOG {
        let anchor = t.name.replace('.', "");
        writeln!(out, "| [`{}`](#{anchor}) | {} |", t.name, t.description).unwrap();
    }
    for t in CATALOG {
        let sample: Value = serde_json::from_str(t.sample).unwrap();
        let mut rows = Vec::new();
        fields("", &sample, &mut rows);
        write!(
            out,
            "\n### `{}`\n\n{}\n\n<details><summary>Fields of <code>data</code></summary>\n\n| Field | Type |\n|---|---|\n",
            t.name, t.description
        )
        .unwrap();
        for (path, kind) in rows {
            writeln!(out, "| `{path}` | {kind} |").unwrap();
        }
        write!(out, "\n</details>\n\n```json\n{}\n```\n", t.sample).unwrap();
    }
    out.push('\n');
    out
}

/// `doc` with its generated parts regenerated.
fn render(doc: &str) -> String {
    let mut out = String::new();
    let mut rest = doc;
    if let (Some(start), Some(end)) = (rest.find(CATALOGUE_START), rest.find(CATALOGUE_END)) {
        out.push_str(&rest[..start + CATALOGUE_START.len()]);
        out.push_str(&catalogue());
        rest = &rest[end..];
    }
    let mut rendered = String::new();
    let text = format!("{out}{rest}");
    let mut rest = text.as_str();
    while let Some(at) = rest.find(INCLUDE) {
        let marker_end = at + rest[at..].find("-->").expect("include marker closed") + 3;
        let path = rest[at + INCLUDE.len()..marker_end - 3].trim();
        let content = std::fs::read_to_string(repo().join(path))
            .unwrap_or_else(|e| panic!("included {path}: {e}"));
        // The fenced block right after the marker is replaced by the file.
        let after = &rest[marker_end..];
        let open = after
            .find("```")
            .expect("a code block after the include marker");
        let lang_end = open + after[open..].find('\n').unwrap();
        let close = lang_end + after[lang_end..].find("\n```").expect("code block closed") + 4;
        rendered.push_str(&rest[..marker_end]);
        rendered.push_str(&after[..=lang_end]);
        rendered.push_str(&content);
        if !content.ends_with('\n') {
            rendered.push('\n');
        }
        rendered.push_str("```");
        rest = &after[close..];
    }
    rendered.push_str(rest);
    rendered
}

fn check(doc: &str) {
    let path = repo().join(doc);
    let current = std::fs::read_to_string(&path).unwrap();
    let fresh = render(&current);
    if fresh == current {
        return;
    }
    if std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1") {
        std::fs::write(&path, fresh).unwrap();
        eprintln!("updated {doc}");
        return;
    }
    panic!(
        "{doc} is out of date with the catalogue or the examples; regenerate it with {UPDATE_VAR}=1 cargo test -p hookrelay --test it docs::"
    );
}

#[test]
fn receiving_webhooks_shows_the_catalogue_and_the_examples() {
    check("docs/receiving-webhooks.md");
    let doc = std::fs::read_to_string(repo().join("docs/receiving-webhooks.md")).unwrap();
    for t in CATALOG {
        assert!(doc.contains(&format!("### `{}`", t.name)), "{}", t.name);
        assert!(doc.contains(t.sample), "the sample of {}", t.name);
    }
    for example in [
        "examples/verify/node/verify.mjs",
        "examples/verify/node/verify-standardwebhooks.mjs",
        "examples/verify/python/verify.py",
        "examples/verify/python/verify_standardwebhooks.py",
        "examples/verify/go/main.go",
        "examples/verify/rust/main.rs",
    ] {
        assert!(
            doc.contains(&format!("{INCLUDE}{example} -->")),
            "{example}"
        );
    }
}

#[test]
fn integration_shows_the_examples() {
    check("docs/integration.md");
    let doc = std::fs::read_to_string(repo().join("docs/integration.md")).unwrap();
    for example in [
        "examples/integration/nestjs/src/hookrelay.service.ts",
        "examples/integration/nestjs/src/hookrelay.module.ts",
        "examples/integration/nestjs/src/messages.service.ts",
        "examples/integration/rust/send_events.rs",
    ] {
        assert!(
            doc.contains(&format!("{INCLUDE}{example} -->")),
            "{example}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_curl_block_runs_as_written() {
    let receiver = super::receiver::Receiver::start().await;
    let app = spawn_app!();
    let tenant = app.tenant("Acme Clinic").await;
    app.webhook(
        &tenant,
        serde_json::json!({"name": "all", "url": receiver.url("/all"), "events": ["*"]}),
    )
    .await;
    let script = super::helpers::doc_block("docs/integration.md", "integration-curl");
    let base = app.base.clone();
    let key = tenant.key.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
            .env("HOOKRELAY", base)
            .env("TENANT_KEY", key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the curl block failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The first send, its retry (same event, 200, duplicate), the batch, the problem.
    assert!(stdout.contains("\"duplicate\": false"), "{stdout}");
    assert!(stdout.contains("200 true"), "{stdout}");
    assert!(stdout.contains("contact.created") && stdout.contains("conversation.created"));
    assert!(
        stdout.contains("\"status\": 422") && stdout.contains("\"field\": \"type\""),
        "{stdout}"
    );
    receiver
        .wait_for("/all", 3, std::time::Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_to_verified_delivery_runs_as_written() {
    if !super::examples::node_ok() {
        // Same rule as the example tests: SKIPPED, or a failure when CI requires tools.
        super::examples::available("node", false, "install Node.js 18 or later");
        return;
    }
    let app = spawn_app!();
    let tenant = app.tenant("Acme Clinic").await;
    let port = super::helpers::free_port();
    // If a step fails, the receiver started in the background must not outlive the script
    // (and hold its output open): a trap stops the script's jobs however it exits.
    let script = format!(
        "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
        super::helpers::doc_block("docs/receiving-webhooks.md", "zero-to-verified")
    );
    let base = app.base.clone();
    let key = tenant.key.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(repo())
            .env("HOOKRELAY", base)
            .env("TENANT_KEY", key)
            .env("PORT", port.to_string())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the block failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("verified evt_") && l.ends_with(" message.new")),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"success\": true") && stdout.contains("\"response_status\": 204"),
        "{stdout}"
    );
}

/// The figures the two docs quote are the code's.
#[test]
fn quoted_limits_are_the_code_limits() {
    use hookrelay::config::DEFAULT_MAX_EVENT_BYTES;
    use hookrelay::domain::event::{IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_WINDOW_MS};
    use hookrelay::domain::webhook::{
        DEFAULT_RETRY_COUNT, DEFAULT_TIMEOUT_SECONDS, RETRY_COUNT_MAX,
    };
    let receiving = std::fs::read_to_string(repo().join("docs/receiving-webhooks.md")).unwrap();
    assert!(receiving.contains(&format!(
        "`timeout_seconds` (default {DEFAULT_TIMEOUT_SECONDS})"
    )));
    assert!(receiving.contains(&format!(
        "`retry_count` times (default {DEFAULT_RETRY_COUNT}, up to {RETRY_COUNT_MAX})"
    )));
    let integration = std::fs::read_to_string(repo().join("docs/integration.md")).unwrap();
    assert!(integration.contains(&format!(
        "limited to {} KiB by default",
        DEFAULT_MAX_EVENT_BYTES / 1024
    )));
    assert!(integration.contains(&format!("1–{IDEMPOTENCY_KEY_MAX} bytes")));
    let hours = IDEMPOTENCY_WINDOW_MS / 3_600_000;
    assert!(integration.contains(&format!("for {hours} hours")));
    // MAX_BATCH is private to the API; the 422 for 501 events names the limit.
    assert!(integration.contains("1 to 500 events"));
}

/// Each row of the settings table in `docs/operations.md` names its flag's own variable, and
/// a default written as code (`` `10s` ``, `` `0` (off) ``) is the flag's default: the table
/// is where operators read what an unset flag does.
#[test]
fn the_settings_table_gives_each_flags_variable_and_default() {
    use clap::CommandFactory;
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let command = hookrelay::cli::Cli::command();
    let serve = command.find_subcommand("serve").unwrap();
    let args: Vec<&clap::Arg> = serve
        .get_arguments()
        .chain(command.get_arguments())
        .collect();
    let mut defaults_checked = 0;
    for line in doc.lines().filter(|line| line.starts_with("| `--")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let long = cells[1].trim_matches('`').trim_start_matches("--");
        let arg = args
            .iter()
            .find(|arg| arg.get_long() == Some(long))
            .unwrap_or_else(|| panic!("docs/operations.md has a row for --{long}, no such flag"));
        let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
        assert_eq!(
            env.as_deref(),
            Some(cells[2].trim_matches('`')),
            "the variable of --{long}"
        );
        let Some((documented, _)) = cells[3]
            .strip_prefix('`')
            .and_then(|rest| rest.split_once('`'))
        else {
            continue;
        };
        let default: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        assert_eq!(default, [documented], "the default of --{long}");
        defaults_checked += 1;
    }
    assert!(
        defaults_checked > 20,
        "only {defaults_checked} defaults read"
    );
}

/// `docs/operations.md`'s row for `--max-batch-bytes`: by default 16 × the event limit, and
/// never below it.
#[test]
fn the_batch_limit_is_as_operations_md_says() {
    use hookrelay::config::DEFAULT_BATCH_FACTOR;
    let doc = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    let row = doc
        .lines()
        .find(|line| line.starts_with("| `--max-batch-bytes` |"))
        .expect("a row for --max-batch-bytes");
    assert!(
        row.contains(&format!("| {DEFAULT_BATCH_FACTOR} × `--max-event-bytes` |")),
        "{row}"
    );
    assert!(row.contains("at least `--max-event-bytes`"), "{row}");
    let mut config = hookrelay::ServeConfig::new("sqlite://unused.db");
    assert_eq!(
        config.batch_limit(),
        DEFAULT_BATCH_FACTOR * config.max_event_bytes
    );
    config.max_batch_bytes = Some(config.max_event_bytes);
    config
        .validate()
        .expect("a batch limit equal to the event limit");
    config.max_batch_bytes = Some(config.max_event_bytes - 1);
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("--max-batch-bytes"), "{error}");
}
