//! The PostgreSQL backend: for several hookrelay nodes sharing one database.
//!
//! Every node runs the same migrations at start (sqlx takes an advisory lock, so concurrent
//! starts are safe). Deliveries are claimed with `FOR UPDATE SKIP LOCKED` under a lease, and
//! nodes wake each other with `LISTEN/NOTIFY` when work is left for any node to take. One pool
//! serves reads and writes. The operations themselves are shared ([`super::sql::SqlStore`]).

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::{Executor, Postgres};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::backend::{Backend, BoxFuture, Dialect, Q, usage};
use super::sql::SqlStore;
use super::{Change, PoolUsage, StoreResult};
use crate::domain::crypto::Keyring;

mod changes;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The channel nodes notify when they leave deliveries for any node to claim.
const WORK_CHANNEL: &str = "hookrelay_work";

pub(crate) type PostgresStore = SqlStore<Postgres>;

/// LISTEN, which holds its connection for good: kept out of the main pool so that closing
/// the pool does not wait for it.
pub(crate) struct Listening {
    options: PgConnectOptions,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SqlStore<Postgres> {
    /// Connects with at most `max_connections` and applies pending migrations.
    pub async fn open(url: &str, max_connections: u32, keys: Arc<Keyring>) -> anyhow::Result<Self> {
        // A statement stuck behind a lock fails after a bound instead of hanging a request:
        // the API answers 503 and the engine retries.
        let options = PgConnectOptions::from_str(url)?
            .options([("lock_timeout", "5s"), ("statement_timeout", "30s")]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqlStore {
            writer: pool.clone(),
            reader: pool,
            keys,
            extra: Listening {
                options,
                task: Mutex::new(None),
            },
        })
    }
}

impl Backend for Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    const SHARED: bool = true;
    type Extra = Listening;

    fn on<'c>(conn: &'c mut PgConnection) -> impl Executor<'c, Database = Self> + 'c {
        conn
    }

    fn rows_affected(done: &sqlx::postgres::PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// As a TEXT[] array, read with `= ANY($N)`.
    fn bind_ids(q: Q<Self>, ids: &[&str]) -> Q<Self> {
        q.bind(ids)
    }

    fn notify_work_on(conn: &mut PgConnection) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            conn.execute(sqlx::query("SELECT pg_notify($1, '')").bind(WORK_CHANNEL))
                .await?;
            Ok(())
        })
    }

    fn webhook_changed_on<'e>(
        conn: &'e mut PgConnection,
        webhook_id: &'e str,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(changes::webhook_changed(conn, webhook_id))
    }

    fn key_revoked_on<'e>(
        conn: &'e mut PgConnection,
        key_id: &'e str,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(changes::key_revoked(conn, key_id))
    }

    fn event_types_changed_on(conn: &mut PgConnection) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(changes::event_types_changed(conn))
    }

    fn watch_changes<'e>(
        listening: &'e Listening,
        node: &'e str,
        sender: UnboundedSender<Change>,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(changes::watch(&listening.options, node, sender))
    }

    fn watch_for_work<'e>(
        listening: &'e Listening,
        wake: Arc<Notify>,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(async move {
            let listen_pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(listening.options.clone())
                .await?;
            let mut listener = PgListener::connect_with(&listen_pool).await?;
            listener.listen(WORK_CHANNEL).await?;
            let task = tokio::spawn(async move {
                loop {
                    match listener.recv().await {
                        Ok(_) => wake.notify_one(),
                        Err(error) => {
                            // PgListener reconnects on the next recv; polling covers the gap.
                            tracing::warn!(%error, "LISTEN connection lost; reconnecting");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
            if let Ok(mut slot) = listening.task.lock() {
                *slot = Some(task);
            }
            Ok(())
        })
    }

    fn stop(listening: &Listening) {
        let task = listening.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            task.abort();
        }
    }

    fn pool_usage(_reader: &PgPool, writer: &PgPool) -> Vec<PoolUsage> {
        vec![usage("main", writer)]
    }
}
