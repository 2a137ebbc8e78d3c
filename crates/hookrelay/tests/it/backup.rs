//! docs/operations.md's SQLite backup and restore, run as written: a backup taken while the
//! server runs restores to exactly what was there when it was taken.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::helpers::*;

/// The shell block between `<!-- name:start -->` and `<!-- name:end -->` in operations.md.
fn doc_block(name: &str) -> String {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operations.md"
    ))
    .unwrap();
    let start = doc
        .find(&format!("<!-- {name}:start -->"))
        .expect("start marker");
    let end = doc
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    let block = &doc[start..end];
    let code = block.find("```sh\n").expect("code block") + "```sh\n".len();
    let code_end = block[code..].find("```").expect("code block end") + code;
    block[code..code_end].to_owned()
}

fn run_block(name: &str, dir: &std::path::Path) {
    let status = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &doc_block(name)])
        .current_dir(dir)
        .status()
        .expect("bash runs");
    assert!(status.success(), "the {name} block failed: {status}");
}

#[tokio::test]
async fn the_documented_backup_taken_while_running_restores() {
    if backend() == Backend::Postgres {
        eprintln!("SKIPPED: the backup blocks of docs/operations.md are for SQLite");
        return;
    }
    if Command::new("sqlite3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: the backup test needs the sqlite3 command (.ci/run installs it)");
        return;
    }
    let app = spawn_app!();
    let t = app.tenant("Acme").await;
    let kept = app.webhook(&t, sample_webhook()).await;
    run_block("backup", app.db.dir.path());
    let lost = app.webhook(&t, sample_webhook()).await;
    let db = app.stop().await;

    run_block("restore", db.dir.path());
    let app = TestApp::spawn_in(db).await;
    let path = format!("/api/v1/webhooks/{}/secret", kept["id"].as_str().unwrap());
    let secret: Value = app.get(&t, &path).await;
    assert_eq!(
        secret["secret"], kept["secret"],
        "the secret opens with the restored key"
    );
    let path = format!("/api/v1/webhooks/{}", lost["id"].as_str().unwrap());
    let r = app.call(Method::GET, &path, Some(&t.key), None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "made after the backup");
}
