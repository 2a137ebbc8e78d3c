//! Where each phase's database lives: a SQLite file in a fresh temporary directory, or a fresh
//! database on a PostgreSQL server, created for the phase through an admin connection and
//! dropped after it, on every exit path (a guard drops it if the phase never gets to).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use sqlx::Connection;
use tempfile::TempDir;

/// Bounds every admin connection and statement, so a dead server cannot hang a phase.
const ADMIN_LIMIT: Duration = Duration::from_secs(30);

/// Prefix of every database the bench creates (`hookrelay_bench_<suffix>`).
pub const DATABASE_PREFIX: &str = "hookrelay_bench_";

/// The kind of database every phase gets.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A SQLite file in a new temporary directory under `dir` (the system's if `None`).
    Sqlite { dir: Option<PathBuf> },
    /// A new database on the PostgreSQL server of `admin_url`, created and dropped through a
    /// connection to `admin_url` itself.
    Postgres { admin_url: url::Url },
}

impl Backend {
    /// Checks a `--postgres` URL: a `postgres://` or `postgresql://` URL with a host.
    pub fn postgres(admin_url: &str) -> anyhow::Result<Backend> {
        let parsed = url::Url::parse(admin_url)
            .map_err(|e| anyhow::anyhow!("--postgres: not a URL ({e})"))?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") || parsed.host_str().is_none() {
            anyhow::bail!(
                "--postgres: expected postgres://user@host:port/database, got a {}: URL",
                parsed.scheme()
            );
        }
        Ok(Backend::Postgres { admin_url: parsed })
    }
}

/// `host:port` of a PostgreSQL URL, for reports: no user, no password.
pub fn server_address(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("?"),
        url.port().unwrap_or(5432)
    )
}

/// One phase's database. Remove it with [`Database::remove`]; if it is dropped instead (the
/// phase failed or was interrupted), a PostgreSQL database is dropped on the spot.
pub struct Database {
    /// What `ServeConfig::new` takes: a file path, or the PostgreSQL URL of the new database.
    pub url: String,
    place: Place,
}

enum Place {
    Sqlite(TempDir),
    Postgres(PgGuard),
}

impl Database {
    pub async fn create(backend: &Backend) -> anyhow::Result<Database> {
        match backend {
            Backend::Sqlite { dir } => {
                let mut builder = tempfile::Builder::new();
                builder.prefix("hookrelay-bench-");
                let dir = match dir {
                    Some(parent) => builder.tempdir_in(parent)?,
                    None => builder.tempdir()?,
                };
                Ok(Database {
                    url: dir.path().join("hookrelay.db").display().to_string(),
                    place: Place::Sqlite(dir),
                })
            }
            Backend::Postgres { admin_url } => {
                let name = format!("{DATABASE_PREFIX}{}", random_suffix());
                let mut conn = admin_connection(admin_url).await?;
                bounded(
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .execute(&mut conn),
                )
                .await
                .with_context(|| format!("CREATE DATABASE {name}"))?;
                let _ = conn.close().await;
                let mut url = admin_url.clone();
                url.set_path(&format!("/{name}"));
                Ok(Database {
                    url: url.to_string(),
                    place: Place::Postgres(PgGuard {
                        target: Some((admin_url.clone(), name)),
                    }),
                })
            }
        }
    }

    /// Deletes the database: the temporary directory, or `DROP DATABASE … WITH (FORCE)`.
    pub async fn remove(self) -> anyhow::Result<()> {
        match self.place {
            Place::Sqlite(dir) => Ok(dir.close()?),
            Place::Postgres(mut guard) => {
                if let Some((admin_url, name)) = &guard.target {
                    drop_database(admin_url, name).await?;
                }
                // Dropped: the guard has nothing left to do.
                guard.target = None;
                Ok(())
            }
        }
    }
}

/// Drops its PostgreSQL database when dropped itself, unless [`Database::remove`] already did.
struct PgGuard {
    target: Option<(url::Url, String)>,
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.target.take() else {
            return;
        };
        // Drop cannot await, and may run on a runtime that is shutting down: a short-lived
        // runtime on its own thread does the work.
        let name_for_thread = name.clone();
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(drop_database(&admin_url, &name_for_thread))
        })
        .join();
        match done {
            Ok(Ok(())) => eprintln!("dropped database {name} after the phase stopped early"),
            Ok(Err(e)) => eprintln!(
                "warning: could not drop database {name}: {e:#}; drop it by hand with \
                 DROP DATABASE {name} WITH (FORCE)"
            ),
            Err(_) => eprintln!("warning: dropping database {name} panicked"),
        }
    }
}

async fn drop_database(admin_url: &url::Url, name: &str) -> anyhow::Result<()> {
    let mut conn = admin_connection(admin_url).await?;
    bounded(
        // FORCE: a node that did not stop cleanly must not keep the database alive.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn),
    )
    .await
    .with_context(|| format!("DROP DATABASE {name}"))?;
    let _ = conn.close().await;
    Ok(())
}

async fn admin_connection(admin_url: &url::Url) -> anyhow::Result<sqlx::PgConnection> {
    bounded(sqlx::PgConnection::connect(admin_url.as_str()))
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", server_address(admin_url)))
}

async fn bounded<T>(work: impl Future<Output = Result<T, sqlx::Error>>) -> anyhow::Result<T> {
    tokio::time::timeout(ADMIN_LIMIT, work)
        .await
        .with_context(|| format!("no answer within {ADMIN_LIMIT:?}"))?
        .map_err(anyhow::Error::from)
}

/// 16 characters of `[a-z0-9]`: a valid unquoted identifier tail, unlikely to collide.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// What the report says about a PostgreSQL server: its version and the settings that decide
/// what a commit costs. Also checks, before any phase, that the server can be reached.
#[derive(Debug)]
pub struct ServerFacts {
    pub version: String,
    pub fsync: String,
    pub synchronous_commit: String,
    pub max_connections: Option<u32>,
    /// Readable by superusers (and `pg_read_all_settings`) only.
    pub data_directory: Option<String>,
}

pub async fn server_facts(admin_url: &url::Url) -> anyhow::Result<ServerFacts> {
    let mut conn = admin_connection(admin_url).await?;
    let mut show = async |setting: &str| -> Option<String> {
        let sql = format!("SHOW {setting}");
        bounded(sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).fetch_one(&mut conn))
            .await
            .ok()
    };
    let version = show("server_version")
        .await
        .context("SHOW server_version failed")?;
    let facts = ServerFacts {
        version,
        fsync: show("fsync").await.unwrap_or_else(|| "?".into()),
        synchronous_commit: show("synchronous_commit")
            .await
            .unwrap_or_else(|| "?".into()),
        max_connections: show("max_connections").await.and_then(|v| v.parse().ok()),
        data_directory: show("data_directory").await,
    };
    let _ = conn.close().await;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_is_a_lowercase_identifier() {
        let s = random_suffix();
        assert_eq!(s.len(), 16);
        assert!(
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(s, random_suffix());
    }

    #[test]
    fn postgres_urls_only() {
        assert!(Backend::postgres("postgres://postgres@127.0.0.1:5432/test").is_ok());
        assert!(Backend::postgres("postgresql://u:p@db/x?sslmode=require").is_ok());
        assert!(Backend::postgres("sqlite://x.db").is_err());
        assert!(Backend::postgres("127.0.0.1:5432").is_err());
    }

    #[test]
    fn addresses_hide_credentials() {
        let url = url::Url::parse("postgres://u:secret@db.internal/x").unwrap();
        assert_eq!(server_address(&url), "db.internal:5432");
    }
}
