//! docs/operations.md's SQLite backup and restore, run as written: a backup taken while the
//! server runs restores to exactly what was there when it was taken.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::helpers::*;

fn run_block(name: &str, dir: &std::path::Path) {
    let status = Command::new("bash")
        .args([
            "-euo",
            "pipefail",
            "-c",
            &doc_block("docs/operations.md", name),
        ])
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
