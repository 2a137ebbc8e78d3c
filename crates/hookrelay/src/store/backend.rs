//! What the one store implementation ([`super::sql::SqlStore`]) needs of a database, and
//! nothing more: the column types it binds and reads (as supertraits, so every generic
//! function gets them from `B: Backend` alone), a handful of execution helpers, and the few
//! things that really differ (SQL text where the dialects part, whether nodes share the
//! database, waking other nodes). SQLite accepts PostgreSQL's `$N` placeholders, so most SQL
//! text is written once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sqlx::IntoArguments;
use sqlx::database::HasStatementCache;
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, Pool, Row, Type};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

use super::{Change, PoolUsage, StoreResult};
use crate::domain::id::Id;

/// A future a backend helper answers with.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A query with its arguments, ready to run on backend `B`.
pub(crate) type Q<B> = Query<'static, B, <B as Database>::Arguments>;

/// A column type `T` this database binds and reads by value.
pub(crate) trait Value<T>: Database {
    fn bind(q: Q<Self>, value: T) -> Q<Self>;
    fn get(row: &Self::Row, column: &str) -> Result<T, sqlx::Error>;
}

impl<DB, T> Value<T> for DB
where
    DB: Database,
    T: for<'a> Encode<'a, DB> + for<'r> Decode<'r, DB> + Type<DB>,
    for<'c> &'c str: ColumnIndex<DB::Row>,
{
    fn bind(q: Q<Self>, value: T) -> Q<Self> {
        q.bind(value)
    }

    fn get(row: &Self::Row, column: &str) -> Result<T, sqlx::Error> {
        row.try_get(column)
    }
}

/// A borrowed column value (`&str`, `&[u8]`) this database binds without copying.
pub(crate) trait BindRef<T: ?Sized>: Database {
    fn bind_ref(q: Q<Self>, value: &T) -> Q<Self>;
    fn bind_opt_ref(q: Q<Self>, value: Option<&T>) -> Q<Self>;
}

impl<DB, T> BindRef<T> for DB
where
    DB: Database,
    T: ?Sized,
    for<'a> &'a T: Encode<'a, DB> + Type<DB>,
    for<'a> Option<&'a T>: Encode<'a, DB>,
{
    fn bind_ref(q: Q<Self>, value: &T) -> Q<Self> {
        q.bind(value)
    }

    fn bind_opt_ref(q: Q<Self>, value: Option<&T>) -> Q<Self> {
        q.bind(value)
    }
}

/// Where the dialects part, one SQL string is chosen by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A database the store runs on. The bounds are supertraits so that `B: Backend` is all a
/// generic function has to say.
pub(crate) trait Backend:
    Database<Arguments: IntoArguments<Self>>
    + HasStatementCache
    + Value<i64>
    + Value<Option<i64>>
    + Value<String>
    + Value<Option<String>>
    + Value<bool>
    + Value<Option<bool>>
    + Value<Option<f64>>
    + Value<Vec<u8>>
    + BindRef<str>
    + BindRef<[u8]>
    + Sync
{
    const DIALECT: Dialect;
    /// Whether several nodes share the database (leases of others must be respected, nodes
    /// send heartbeats), or one node uses it alone.
    const SHARED: bool;
    /// What a store on this backend holds besides its pools (a file lock, a listener).
    type Extra: Send + Sync + 'static;

    /// A connection (a transaction's, or one taken from a pool) as sqlx's executor: all
    /// that differs in running a query. (`&mut Connection: Executor` cannot be said of a
    /// generic database once, so each backend says it here.)
    fn on<'c>(conn: &'c mut Self::Connection) -> impl Executor<'c, Database = Self> + 'c;
    fn rows_affected(done: &Self::QueryResult) -> u64;

    fn fetch_all_on<'e>(conn: &'e mut Self::Connection, q: Q<Self>) -> BoxFuture<'e, Rows<Self>> {
        Self::on(conn).fetch_all(q)
    }

    fn fetch_optional_on<'e>(
        conn: &'e mut Self::Connection,
        q: Q<Self>,
    ) -> BoxFuture<'e, MaybeRow<Self>> {
        Self::on(conn).fetch_optional(q)
    }

    fn execute_on<'e>(conn: &'e mut Self::Connection, q: Q<Self>) -> BoxFuture<'e, Affected> {
        let run = Self::on(conn).execute(q);
        Box::pin(async move { Ok(Self::rows_affected(&run.await?)) })
    }

    // The pool versions take a connection and run the query there, as sqlx's own pool
    // executor does.
    fn fetch_all<'e>(pool: &'e Pool<Self>, q: Q<Self>) -> BoxFuture<'e, Rows<Self>> {
        Box::pin(async move { Self::fetch_all_on(&mut *pool.acquire().await?, q).await })
    }

    fn fetch_optional<'e>(pool: &'e Pool<Self>, q: Q<Self>) -> BoxFuture<'e, MaybeRow<Self>> {
        Box::pin(async move { Self::fetch_optional_on(&mut *pool.acquire().await?, q).await })
    }

    fn fetch_one<'e>(pool: &'e Pool<Self>, q: Q<Self>) -> BoxFuture<'e, One<Self>> {
        Box::pin(async move {
            Self::fetch_optional(pool, q)
                .await?
                .ok_or(sqlx::Error::RowNotFound)
        })
    }

    fn execute<'e>(pool: &'e Pool<Self>, q: Q<Self>) -> BoxFuture<'e, Affected> {
        Box::pin(async move { Self::execute_on(&mut *pool.acquire().await?, q).await })
    }

    /// Binds a list of ids the way this dialect's SQL reads one (an array, or JSON text).
    fn bind_ids(q: Q<Self>, ids: &[&str]) -> Q<Self>;
    /// Tells other nodes, as part of the transaction on `conn`, that work was left for
    /// anyone to claim. Nothing on a database one node uses alone.
    fn notify_work_on(_conn: &mut Self::Connection) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
    /// The same, outside a transaction.
    fn notify_work(pool: &Pool<Self>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move { Self::notify_work_on(&mut *pool.acquire().await?).await })
    }
    /// Tells every node, when the transaction on `conn` commits, that the webhook changed
    /// (see `Store::watch_changes`). Nothing where one node uses the database alone: it
    /// applies its own changes.
    fn webhook_changed_on<'e>(
        _conn: &'e mut Self::Connection,
        _webhook_id: &'e str,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Likewise, that the API key was revoked.
    fn key_revoked_on<'e>(
        _conn: &'e mut Self::Connection,
        _key_id: &'e str,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Likewise, that the event-type registry changed.
    fn event_types_changed_on(_conn: &mut Self::Connection) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Hands `changes` every change committed by any node (see `Store::watch_changes`).
    fn watch_changes<'e>(
        _extra: &'e Self::Extra,
        _node: &'e str,
        _changes: UnboundedSender<Change>,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Starts waking `wake` whenever another node leaves work (see `Store::watch_for_work`);
    /// a database one node uses alone has nothing to watch.
    fn watch_for_work<'e>(
        _extra: &'e Self::Extra,
        _wake: Arc<Notify>,
    ) -> BoxFuture<'e, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Gives free pages back to the file system (see `Store::reclaim_space`); nothing
    /// where the database reclaims space by itself.
    fn reclaim_space(_pool: &Pool<Self>, _pages: u32) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(async { Ok(0) })
    }
    /// Stops what `extra` runs, before the pools close.
    fn stop(_extra: &Self::Extra) {}
    /// The pools as `/metrics` names them (PostgreSQL uses one pool for both).
    fn pool_usage(reader: &Pool<Self>, writer: &Pool<Self>) -> Vec<PoolUsage>;
}

pub(crate) type Rows<B> = Result<Vec<<B as Database>::Row>, sqlx::Error>;
pub(crate) type One<B> = Result<<B as Database>::Row, sqlx::Error>;
pub(crate) type MaybeRow<B> = Result<Option<<B as Database>::Row>, sqlx::Error>;
/// Rows affected.
pub(crate) type Affected = Result<u64, sqlx::Error>;

/// What `/metrics` shows of a pool.
pub(crate) fn usage<B: Database>(name: &'static str, pool: &Pool<B>) -> PoolUsage {
    PoolUsage {
        name,
        size: pool.size(),
        idle: pool.num_idle(),
        max: pool.options().get_max_connections(),
    }
}

/// The SQL for this backend: the same text unless the dialects really differ.
pub(crate) fn sql<B: Backend>(sqlite: &'static str, postgres: &'static str) -> &'static str {
    match B::DIALECT {
        Dialect::Sqlite => sqlite,
        Dialect::Postgres => postgres,
    }
}

/// Binding through the backend's column types: `.b(value)`, `.s(&str)`, `.os(Option<&str>)`.
pub(crate) trait Bind<B: Backend>: Sized {
    fn b<T>(self, value: T) -> Self
    where
        B: Value<T>;
    /// Text: a `&str`, a `String`, a typed id.
    fn s<S: AsRef<str> + ?Sized>(self, value: &S) -> Self;
    fn os<S: AsRef<str> + ?Sized>(self, value: Option<&S>) -> Self;
    fn bytes(self, value: &[u8]) -> Self;
    fn ids(self, ids: &[&str]) -> Self;
}

impl<B: Backend> Bind<B> for Q<B> {
    fn b<T>(self, value: T) -> Self
    where
        B: Value<T>,
    {
        <B as Value<T>>::bind(self, value)
    }

    fn s<S: AsRef<str> + ?Sized>(self, value: &S) -> Self {
        <B as BindRef<str>>::bind_ref(self, value.as_ref())
    }

    fn os<S: AsRef<str> + ?Sized>(self, value: Option<&S>) -> Self {
        <B as BindRef<str>>::bind_opt_ref(self, value.map(AsRef::as_ref))
    }

    fn bytes(self, value: &[u8]) -> Self {
        <B as BindRef<[u8]>>::bind_ref(self, value)
    }

    fn ids(self, ids: &[&str]) -> Self {
        B::bind_ids(self, ids)
    }
}

/// A column read through the backend's column types.
pub(crate) fn get<B: Backend + Value<T>, T>(row: &B::Row, column: &str) -> Result<T, sqlx::Error> {
    <B as Value<T>>::get(row, column)
}

/// An id column, typed by what it names.
pub(crate) fn get_id<B: Backend, T: Id>(row: &B::Row, column: &str) -> Result<T, sqlx::Error> {
    get::<B, String>(row, column).map(T::from_stored)
}

/// A nullable id column.
pub(crate) fn get_opt_id<B: Backend, T: Id>(
    row: &B::Row,
    column: &str,
) -> Result<Option<T>, sqlx::Error> {
    get::<B, Option<String>>(row, column).map(|id| id.map(T::from_stored))
}

/// A query from SQL text written in the source.
pub(crate) fn query<B: Backend>(sql: &'static str) -> Q<B> {
    sqlx::query(sql)
}

/// A query from SQL text made at run time (multi-row statements); never from user input,
/// which is always bound. Not kept prepared: its text changes with the number of rows.
pub(crate) fn query_built<B: Backend>(sql: String) -> Q<B> {
    sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false)
}

/// Placeholders for a multi-row VALUES list: `rows` tuples of `width` each, numbered from
/// `first` (`$first, …`) on PostgreSQL. On SQLite they are anonymous `?`, bound in the order
/// they appear, which every caller's binds follow: sqlx looks each *named* parameter up by
/// index, and SQLite's lookup walks the list of names, so `$N` made a batch of n parameters
/// cost O(n²) (70 % of the CPU with 10 webhooks per event).
pub(crate) fn values_list<B: Backend>(rows: usize, width: usize, first: usize) -> String {
    placeholders(B::DIALECT, rows, width, first)
}

fn placeholders(dialect: Dialect, rows: usize, width: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => out.push('?'),
                Dialect::Postgres => {
                    out.push('$');
                    out.push_str(&(first + r * width + c).to_string());
                }
            }
        }
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Dialect, placeholders};

    #[test]
    fn values_lists_number_every_placeholder_once() {
        let pg = |r, w, f| placeholders(Dialect::Postgres, r, w, f);
        assert_eq!(pg(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(pg(1, 2, 4), "($4, $5)");
    }

    #[test]
    fn sqlite_values_lists_are_anonymous_in_bind_order() {
        assert_eq!(placeholders(Dialect::Sqlite, 2, 2, 1), "(?, ?), (?, ?)");
    }
}
