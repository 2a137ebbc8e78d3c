//! `TestApp`: one running server with its own database, and small conveniences for calling it.

use std::time::Duration;

use hookrelay::ServeConfig;
use hookrelay::config::RateLimitConfig;
use hookrelay::config::SecretString;
use hookrelay::domain::egress::EgressPolicy;
use hookrelay::domain::retry::RetryPolicy;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef0123456789";

/// Which database this test binary runs against: the `it` target uses SQLite, the
/// `it_postgres` target (the same sources) uses the PostgreSQL server named by
/// `HOOKRELAY_TEST_POSTGRES_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub const POSTGRES_URL_VAR: &str = "HOOKRELAY_TEST_POSTGRES_URL";

pub fn backend() -> Backend {
    if env!("CARGO_CRATE_NAME") == "it_postgres" {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// Skips the calling test, loudly, when its backend is not available here.
macro_rules! require_backend {
    () => {
        if !super::helpers::backend_available() {
            return;
        }
    };
}

/// Whether this binary's backend can run; says so on stderr when it cannot.
pub fn backend_available() -> bool {
    if backend() == Backend::Postgres && std::env::var(POSTGRES_URL_VAR).is_err() {
        eprintln!(
            "SKIPPED: the PostgreSQL suite needs {POSTGRES_URL_VAR} (e.g. postgres://postgres@127.0.0.1:5432/test); .ci/run sets it"
        );
        return false;
    }
    true
}

/// A fresh database for one test: a SQLite file in a temp dir, or a PostgreSQL database
/// created for it and dropped with it.
pub struct TestDb {
    pub url: String,
    pub dir: TempDir,
    postgres: Option<(String, String)>, // (admin URL, database name)
}

impl TestDb {
    pub async fn create() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend() {
            Backend::Sqlite => TestDb {
                url: dir.path().join("hookrelay.db").display().to_string(),
                dir,
                postgres: None,
            },
            Backend::Postgres => {
                let admin = std::env::var(POSTGRES_URL_VAR).expect("checked by require_backend!");
                let name = format!(
                    "hookrelay_test_{}",
                    ulid::Ulid::new().to_string().to_lowercase()
                );
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect to the test PostgreSQL server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                let mut url = url::Url::parse(&admin).expect("a URL");
                url.set_path(&name);
                TestDb {
                    url: url.to_string(),
                    dir,
                    postgres: Some((admin, name)),
                }
            }
        }
    }

    /// SQLite only: a database file in `dir` (e.g. on a small file system of the test's own).
    #[allow(dead_code)] // not every test binary uses it
    pub fn sqlite_in(dir: TempDir) -> TestDb {
        assert_eq!(backend(), Backend::Sqlite);
        TestDb {
            url: dir.path().join("hookrelay.db").display().to_string(),
            dir,
            postgres: None,
        }
    }

    /// A connection-string form any sqlx `Any`-free helper can use: the SQLite URL or the
    /// PostgreSQL one.
    pub fn sqlx_url(&self) -> String {
        match backend() {
            Backend::Sqlite => format!("sqlite://{}", self.url),
            Backend::Postgres => self.url.clone(),
        }
    }
}

impl TestDb {
    /// The first column of the first row, as bytes.
    pub async fn bytes(&self, sql: &'static str) -> Vec<u8> {
        match backend() {
            Backend::Sqlite => {
                let mut conn =
                    <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.sqlx_url())
                        .await
                        .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
            }
        }
    }

    /// The first column of every row, as text.
    pub async fn strings(&self, sql: &'static str) -> Vec<String> {
        match backend() {
            Backend::Sqlite => {
                let mut conn =
                    <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.sqlx_url())
                        .await
                        .unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
            Backend::Postgres => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut conn).await.unwrap()
            }
        }
    }

    /// Runs one statement that changes rows (a test moving stored time back, say); answers
    /// the rows it changed.
    pub async fn execute(&self, sql: &'static str) -> u64 {
        match backend() {
            Backend::Sqlite => {
                let mut conn =
                    <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.sqlx_url())
                        .await
                        .unwrap();
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .unwrap()
                    .rows_affected()
            }
            Backend::Postgres => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .unwrap()
                    .rows_affected()
            }
        }
    }

    /// SQLite only: the first column of the first row, as an integer (e.g. a PRAGMA).
    pub async fn sqlite_integer(&self, sql: &'static str) -> i64 {
        assert_eq!(backend(), Backend::Sqlite);
        let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.sqlx_url())
            .await
            .unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    }

    /// PostgreSQL only: refuses new connections to this database and cuts the open ones,
    /// as an outage would (`allowed = false`), or lets them in again.
    #[allow(dead_code)] // used by the PostgreSQL-only cluster tests
    pub async fn set_reachable(&self, allowed: bool) {
        let (admin, name) = self.postgres.as_ref().expect("a PostgreSQL test database");
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(admin)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} ALLOW_CONNECTIONS {allowed}"
        )))
        .execute(&mut conn)
        .await
        .unwrap();
        if !allowed {
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                .bind(name)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }

    /// Holds a lock that blocks every write, as a stuck backup or migration would, until
    /// released.
    pub async fn hold_write_lock(&self) -> WriteLock {
        match backend() {
            Backend::Sqlite => {
                let mut conn =
                    <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.sqlx_url())
                        .await
                        .unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                WriteLock::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url)
                    .await
                    .unwrap();
                sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
                sqlx::query("LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                WriteLock::Postgres(conn)
            }
        }
    }
}

pub enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    pub async fn release(self) {
        match self {
            WriteLock::Sqlite(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            }
            WriteLock::Postgres(mut conn) => {
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop cannot await: a short-lived runtime on its own thread does the cleanup.
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await?;
                Ok::<_, anyhow::Error>(())
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("warning: could not drop a test database: {done:?}");
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// Stops the server when a test ends without calling `stop`.
    _guard: DropGuard,
}

/// Starts a test server on a fresh database, or returns from the test (skipped) when the
/// backend is unavailable.
macro_rules! spawn_app {
    () => {{
        require_backend!();
        super::helpers::TestApp::spawn().await
    }};
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_in(TestDb::create().await).await
    }

    /// Starts a server on `db` (an existing one, after `stop`, to test restarts).
    pub async fn spawn_in(db: TestDb) -> TestApp {
        let config = test_config(&db);
        Self::spawn_with(db, config).await
    }

    pub async fn spawn_with(db: TestDb, config: ServeConfig) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(hookrelay::run(config, listener, shutdown.clone()));
        let app = TestApp {
            base,
            client: reqwest::Client::new(),
            db,
            _guard: shutdown.clone().drop_guard(),
            shutdown,
            server: Some(server),
        };
        app.wait_ready().await;
        app
    }

    async fn wait_ready(&self) {
        for _ in 0..400 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("server at {} never became ready", self.base);
    }

    /// Stops the server gracefully and hands back its database.
    pub async fn stop(mut self) -> TestDb {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
        self.db
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with an optional bearer key and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Response {
        self.call(method, path, Some(ADMIN_KEY), body).await
    }

    /// Creates a tenant and a key for it.
    pub async fn tenant(&self, name: &str) -> Tenant {
        let r = self
            .admin(Method::POST, "/api/v1/tenants", Some(json!({"name": name})))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let tenant: Value = r.json().await.expect("json");
        let id = tenant["id"].as_str().expect("id").to_owned();
        let r = self
            .admin(
                Method::POST,
                &format!("/api/v1/tenants/{id}/keys"),
                Some(json!({"name": "test"})),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let key: Value = r.json().await.expect("json");
        Tenant {
            id,
            key: key["key"].as_str().expect("key").to_owned(),
            key_id: key["id"].as_str().expect("key id").to_owned(),
        }
    }

    /// Posts an event as `tenant`; returns the answer's JSON.
    pub async fn event(&self, tenant: &Tenant, body: Value) -> Value {
        let r = self
            .call(
                Method::POST,
                "/api/v1/events",
                Some(&tenant.key),
                Some(body),
            )
            .await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::OK,
            "{status}: {json}"
        );
        json
    }

    /// GET as `tenant`, answer as JSON after checking for 200.
    pub async fn get(&self, tenant: &Tenant, path: &str) -> Value {
        let r = self.call(Method::GET, path, Some(&tenant.key), None).await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "{path}: {json}");
        json
    }

    /// Waits until `check` holds for the JSON at `path`; panics after `limit`.
    pub async fn eventually(
        &self,
        tenant: &Tenant,
        path: &str,
        limit: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let value = self.get(tenant, path).await;
            if check(&value) {
                return value;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path} never reached the expected state: {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates a webhook for `tenant` and returns its JSON.
    pub async fn webhook(&self, tenant: &Tenant, body: Value) -> Value {
        let r = self
            .call(
                Method::POST,
                "/api/v1/webhooks",
                Some(&tenant.key),
                Some(body),
            )
            .await;
        let status = r.status();
        let json: Value = r.json().await.expect("json");
        assert_eq!(status, StatusCode::CREATED, "{json}");
        json
    }
}

pub struct Tenant {
    pub id: String,
    pub key: String,
    pub key_id: String,
}

/// The configuration tests run with: our admin key, and retries fast enough to watch
/// (200 ms, 400 ms, 800 ms …, no jitter).
pub fn test_config(db: &TestDb) -> ServeConfig {
    let mut config = ServeConfig::new(db.url.clone());
    config.admin_key = Some(SecretString::new(ADMIN_KEY));
    config.delivery.retry = RetryPolicy {
        base: Duration::from_millis(200),
        factor: 2.0,
        max_delay: Duration::from_secs(5),
        jitter: 0.0,
    };
    config.delivery.poll_interval = Duration::from_millis(250);
    config.delivery.shutdown_grace = Duration::from_secs(5);
    // Tests send bursts from one address; the limits have their own tests (limits.rs).
    config.rate_limits = RateLimitConfig {
        per_key: 0,
        per_ip: 0,
        auth_failures_per_minute: 0,
        test_sends_per_minute: 0,
        client_ip_header: None,
    };
    if backend() == Backend::Postgres {
        // Required with PostgreSQL; SQLite tests use the key file made beside the database.
        config.encryption.key = Some(SecretString::new(TEST_ENCRYPTION_KEY));
    }
    // The receivers live on loopback, which production refuses by default.
    config.delivery.targets =
        std::sync::Arc::new(EgressPolicy::parse(LOOPBACK).expect("valid CIDR"));
    config
}

pub const LOOPBACK: &str = "127.0.0.0/8";

/// 32 bytes of 0x07, base64: the operator key of PostgreSQL test servers.
pub const TEST_ENCRYPTION_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

pub fn sample_webhook() -> Value {
    json!({
        "name": "CRM sync",
        "url": "https://example.com/hooks/crm",
        "events": ["message.sent", "contact.created"]
    })
}

/// Reads a problem answer, checking it is one.
pub async fn problem(r: Response, status: StatusCode) -> Value {
    assert_eq!(r.status(), status);
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = r.json().await.expect("problem json");
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{body}"
    );
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    body
}

/// The fields a 422 names.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A file of the repository (README.md, docs/…), as text.
pub fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The ```sh block between `<!-- NAME:start -->` and `<!-- NAME:end -->` of a repository
/// file: the examples docs show, run as written by the tests.
pub fn doc_block(file: &str, name: &str) -> String {
    let text = repo_file(file);
    let start = text
        .find(&format!("<!-- {name}:start -->"))
        .unwrap_or_else(|| panic!("{name}:start in {file}"));
    let end = text
        .find(&format!("<!-- {name}:end -->"))
        .unwrap_or_else(|| panic!("{name}:end in {file}"));
    let block = &text[start..end];
    let code = block.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let code_end = block[code..].find("```").expect("block closed") + code;
    block[code..code_end].to_owned()
}

/// The ```json blocks of `file` between `<!-- name:start -->` and `<!-- name:end -->`, parsed.
pub fn doc_json_blocks(file: &str, name: &str) -> Vec<Value> {
    let text = repo_file(file);
    let start = text
        .find(&format!("<!-- {name}:start -->"))
        .unwrap_or_else(|| panic!("{name}:start in {file}"));
    let end = text
        .find(&format!("<!-- {name}:end -->"))
        .unwrap_or_else(|| panic!("{name}:end in {file}"));
    text[start..end]
        .split("```json")
        .skip(1)
        .map(|block| {
            let json = block.split("```").next().unwrap_or_default();
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{file} {name}: {json}: {e}"))
        })
        .collect()
}

/// `PATH` with the directory of the binary under test first, so scripts say `hookrelay`.
pub fn path_with_binary() -> String {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_hookrelay"));
    let dir = bin.parent().unwrap().display().to_string();
    match std::env::var("PATH") {
        Ok(path) => format!("{dir}:{path}"),
        Err(_) => dir,
    }
}

/// A port free on loopback now (for a child process that must be told its port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
