//! The SQLite backend: the zero-configuration default.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly one connection
//! (no `SQLITE_BUSY` storms, writes queue in the pool instead) while reads use a pool of their
//! own. WAL mode lets readers proceed during writes; `synchronous=FULL` makes every commit
//! durable before it returns, which is what "accepted" promises. One process per file: a lock
//! file refuses a second. The operations themselves are shared ([`super::sql::SqlStore`]).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Executor, Row, Sqlite};

use super::backend::{Backend, BoxFuture, Dialect, Q, usage};
use super::sql::SqlStore;
use super::{PoolUsage, StoreResult};
use crate::domain::crypto::Keyring;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a request waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CONNECTIONS: u32 = 4;

pub(crate) type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// Opens (creating if needed) the database at `url` (`sqlite://path`, `sqlite:path` or a
    /// plain path) and applies pending migrations.
    pub async fn open(url: &str, keys: Arc<Keyring>) -> anyhow::Result<Self> {
        let lock = lock_database(url)?;
        let url = if url.starts_with("sqlite:") {
            url.to_owned()
        } else {
            format!("sqlite://{url}")
        };
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(ACQUIRE_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .after_release(|conn, _| Box::pin(writer_still_usable(conn)))
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READ_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqlStore {
            writer,
            reader,
            keys,
            extra: lock,
        })
    }
}

/// Whether the writer connection may go back to the pool: not when a failed transaction
/// left sqlx counting one open. A COMMIT refused with `SQLITE_FULL` (or `SQLITE_IOERR`) is
/// rolled back by SQLite itself, so the ROLLBACK sqlx queues when the transaction is dropped
/// fails ("no transaction is active") and sqlx keeps its depth at 1. From then on every
/// `begin` on that connection is a SAVEPOINT and every `commit` a RELEASE: once one of those
/// fails, the batches after it run inside a transaction nothing ever commits, and their
/// events were answered 202 (the full-disk test lost 3,936 accepted events this way). Such a
/// connection is closed instead (closing rolls back whatever it holds); the pool opens a
/// fresh one for the next write.
///
/// The depth only falls when the connection's worker has run a COMMIT or ROLLBACK, so a
/// connection that reads zero is settled: the common case costs no round trip (a ping on
/// every release would hold the next write behind one more trip to the worker thread).
async fn writer_still_usable(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    // Queued after the ROLLBACK of a dropped transaction, so the depth below is settled.
    conn.ping().await?;
    if conn.is_in_transaction() {
        tracing::warn!("a failed transaction left the SQLite writer inside one; reconnecting");
        return Ok(false);
    }
    Ok(true)
}

/// Takes the database's lock file, or explains who holds it. The operating system frees the
/// lock when the process ends, however it ends.
fn lock_database(url: &str) -> anyhow::Result<std::fs::File> {
    let mut path = crate::store::sqlite_path(url).into_os_string();
    path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another hookrelay process is using {} (one process per SQLite file; for several \
             nodes use PostgreSQL)",
            crate::store::sqlite_path(url).display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("cannot lock {}: {e}", path.display())
        }
    }
}

impl Backend for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    const SHARED: bool = false;
    /// The exclusive lock on `<database>.lock`, held while the store lives: a second
    /// hookrelay process on the same file would free this one's leases at its start and
    /// send deliveries twice, so it is refused instead.
    type Extra = std::fs::File;

    fn on<'c>(conn: &'c mut SqliteConnection) -> impl Executor<'c, Database = Self> + 'c {
        conn
    }

    fn rows_affected(done: &sqlx::sqlite::SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// As JSON text, read with `json_each`.
    fn bind_ids(q: Q<Self>, ids: &[&str]) -> Q<Self> {
        q.bind(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
    }

    /// Moves at most `pages` free pages to the end of the file and truncates it (the
    /// database is in `auto_vacuum = INCREMENTAL` mode, see migration 0003); answers the
    /// free pages left.
    fn reclaim_space(writer: &SqlitePool, pages: u32) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(async move {
            let mut conn = writer.acquire().await?;
            // The pragma returns a row per page freed: read them all, or it stops at the first.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "PRAGMA incremental_vacuum({pages})"
            )))
            .fetch_all(&mut *conn)
            .await?;
            let left: i64 = sqlx::query("PRAGMA freelist_count")
                .fetch_one(&mut *conn)
                .await?
                .try_get(0)?;
            Ok(u64::try_from(left).unwrap_or(0))
        })
    }

    fn pool_usage(reader: &SqlitePool, writer: &SqlitePool) -> Vec<PoolUsage> {
        vec![usage("writer", writer), usage("reader", reader)]
    }
}
