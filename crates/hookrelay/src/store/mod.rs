//! Persistence. Handlers and the delivery engine see only the [`Store`] trait, implemented
//! once by [`sql::SqlStore`] over either backend (chosen by the database URL). Each backend
//! module keeps only what really differs: connection setup and migrations, and its
//! [`backend::Backend`] mechanisms (the single SQLite writer and its file lock; PostgreSQL's
//! `LISTEN/NOTIFY`). Where the dialects part, the operation carries both SQL strings.
//!
//! Operations by group: `accounts` (settings, tenants, API keys), `webhooks`, `ingest`,
//! `record` (finished attempts), `queue` (claims, leases, depth), `retention`, `reads`;
//! `rows` reads rows into domain types, `bulk` writes multi-row INSERTs.

mod accounts;
mod backend;
mod bulk;
mod changes;
mod deliveries;
mod event_types;
mod health;
mod ingest;
mod notices;
mod postgres;
mod queue;
mod reads;
mod record;
mod recovery;
mod retention;
mod rows;
mod sql;
mod sqlite;
mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::domain::crypto::Keyring;
use crate::domain::delivery::{AttemptRecord, DeliveryState, Job};
use crate::domain::event::NewEvent;
use crate::domain::health::HealthRules;
use crate::domain::id::{
    ApiKeyId, AttemptId, DeliveryId, EventId, RecoveryId, TenantId, WebhookId,
};
use crate::domain::recovery::Recovery;
use crate::domain::registry::EventTypeRecord;
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::{Webhook, WebhookChange};

pub use changes::Change;
use postgres::PostgresStore;
use sqlite::SqliteStore;

/// Why a store call failed, in terms callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the request may be retried later.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A uniqueness rule was broken; the name is the constraint (or index) concerned.
    #[error("conflict on {0}")]
    Conflict(String),
    /// Stored data that cannot be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Other(sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How long a node may miss heartbeats before others take over its leases.
pub const NODE_DEAD_AFTER_MS: i64 = 15_000;

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error),
            sqlx::Error::Database(ref db) if db.is_unique_violation() => {
                // PostgreSQL names the index; SQLite names the columns. Either identifies it.
                StoreError::Conflict(db.constraint().unwrap_or(db.message()).to_owned())
            }
            sqlx::Error::Database(ref db) if is_transient(db.as_ref()) => {
                StoreError::Unavailable(error)
            }
            other => StoreError::Other(other),
        }
    }
}

/// Whether a database error means "busy, out of room or going away, try again": the
/// database is unusable for now, not the request wrong. By SQLite result code or
/// PostgreSQL SQLSTATE, never by message text.
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse().is_ok_and(sqlite_transient)
    } else {
        postgres_transient(&code)
    }
}

/// SQLite reports extended result codes; the primary one is the low byte. SQLITE_BUSY (5)
/// and SQLITE_LOCKED (6), with their variants (`BUSY_SNAPSHOT` …); SQLITE_IOERR (10), a
/// failed read or write of the file (`IOERR_WRITE`, `IOERR_FSYNC` …); SQLITE_FULL (13), the
/// disk is full. Each leaves the stored data as it was; the write can be made again later.
fn sqlite_transient(extended: i32) -> bool {
    matches!(extended & 0xff, 5 | 6 | 10 | 13)
}

/// PostgreSQL: the whole class 08 (connection exception) and class 53 (insufficient
/// resources: disk full, out of memory, too many connections); admin shutdown, crash
/// shutdown, cannot connect now (57P01–57P03, a server stopping, restarting or failing
/// over), idle-session timeout (57P05); I/O error (58030); a read-only transaction (25006:
/// a standby not yet promoted); serialization failure and deadlock (40001, 40P01); lock and
/// statement timeouts (55P03, 57014); database not accepting connections (55000); database
/// missing, authentication refused (3D000, 28000, 28P01).
fn postgres_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || sqlstate.starts_with("53")
        || matches!(
            sqlstate,
            "57P01"
                | "57P02"
                | "57P03"
                | "57P05"
                | "58030"
                | "25006"
                | "40001"
                | "40P01"
                | "55P03"
                | "57014"
                | "55000"
                | "3D000"
                | "28000"
                | "28P01"
        )
}

#[cfg(test)]
mod classification_tests {
    use super::{postgres_transient, sqlite_transient};

    #[test]
    fn sqlite_busy_locked_ioerr_and_full_are_transient_with_their_extended_codes() {
        // BUSY, BUSY_SNAPSHOT, LOCKED, IOERR, IOERR_WRITE, IOERR_FSYNC, FULL.
        for code in [5, 517, 6, 262, 10, 778, 1034, 13] {
            assert!(sqlite_transient(code), "{code}");
        }
        // CONSTRAINT_UNIQUE, CORRUPT, READONLY, ERROR, MISMATCH.
        for code in [2067, 11, 8, 1, 20] {
            assert!(!sqlite_transient(code), "{code}");
        }
    }

    #[test]
    fn postgres_outages_and_exhaustion_are_transient_request_errors_are_not() {
        for code in [
            "08000", "08006", "08P01", "53100", "53200", "53300", "57P01", "57P02", "57P03",
            "58030", "25006",
        ] {
            assert!(postgres_transient(code), "{code}");
        }
        // unique violation, syntax error, undefined table, not-null, data corrupted.
        for code in ["23505", "42601", "42P01", "23502", "XX001"] {
            assert!(!postgres_transient(code), "{code}");
        }
    }
}

/// One page of a list, newest first: at most `limit` rows whose id sorts before `before`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: u32,
    pub before: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    pub is_active: Option<bool>,
}

/// What authentication needs to know about a tenant key.
#[derive(Debug, Clone)]
pub struct KeyCredentials {
    pub tenant_id: TenantId,
    pub key_hash: Vec<u8>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// How deliveries are leased: by which node, until when, and which to leave unleased because
/// the node has no room for them (the poller claims those later).
#[derive(Debug, Clone)]
pub struct LeasePlan {
    pub node: String,
    pub until: Timestamp,
    /// False: lease nothing (the node's queue is full).
    pub lease: bool,
    /// Webhooks whose local queue is full.
    pub skip_webhooks: Vec<WebhookId>,
}

impl LeasePlan {
    pub fn takes(&self, webhook_id: &WebhookId) -> bool {
        self.lease && !self.skip_webhooks.contains(webhook_id)
    }
}

/// What recording a batch of attempts changed beyond the deliveries themselves.
#[derive(Debug, Default)]
pub struct Recorded {
    /// Webhooks this batch disabled (a 410, or `disable_after`): queued work for them must
    /// go back to the database, where it is held.
    pub disabled: Vec<WebhookId>,
    /// Operational deliveries stored with it, for the poller to claim.
    pub notices: usize,
}

/// The result of ingesting one event.
#[derive(Debug)]
pub enum Ingested {
    /// Stored now, with this many deliveries; `jobs` are the ones leased to this node.
    Created {
        event_id: EventId,
        deliveries: usize,
        jobs: Vec<Job>,
    },
    /// The idempotency key was used within the window: the first event, unchanged.
    Existing {
        event_id: EventId,
        event_type: String,
        deliveries: usize,
    },
}

/// An event with the state of each of its deliveries.
#[derive(Debug, Clone)]
pub struct EventDetail {
    pub id: EventId,
    pub tenant_id: TenantId,
    pub event_type: String,
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub body: String,
    pub deliveries: Vec<DeliveryInfo>,
}

#[derive(Debug, Clone)]
pub struct DeliveryInfo {
    pub id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub webhook_id: WebhookId,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// Which of a webhook's deliveries a list shows.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    /// Created at or after (deliveries are created when their event is accepted).
    pub since: Option<Timestamp>,
    /// Created before.
    pub until: Option<Timestamp>,
}

/// What adding an event type came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeInsert {
    Created,
    /// A type of that name exists already.
    Exists,
    /// The registry holds [`crate::domain::registry::MAX_TYPES`] types.
    Full,
}

/// What asking to retry one delivery came to.
#[derive(Debug, Clone)]
pub enum Requeued {
    /// Queued again, due now.
    Queued(DeliveryInfo),
    /// Only failed deliveries are retried; this one stands here.
    NotFailed(DeliveryState),
    NotFound,
}

/// What asking to start a recovery came to.
#[derive(Debug, Clone)]
pub enum RecoveryStart {
    Started(Recovery),
    /// The webhook already has a running recovery: this one.
    AlreadyRunning(RecoveryId),
}

/// What one step of a running recovery did.
#[derive(Debug, Clone)]
pub struct RecoveryStep {
    pub recovery: Recovery,
    /// Deliveries re-queued by this step.
    pub requeued: u64,
}

/// One row of a webhook's attempt log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub id: AttemptId,
    pub tenant_id: TenantId,
    pub webhook_id: WebhookId,
    pub delivery_id: Option<DeliveryId>,
    pub event_id: Option<EventId>,
    pub event_type: String,
    pub payload: String,
    pub request_headers: Option<String>,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    pub response_body_truncated: bool,
    pub response_time_ms: Option<i64>,
    pub error_message: Option<String>,
    pub attempt_count: i64,
    pub is_success: bool,
    pub is_test: bool,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub event_type: Option<String>,
    pub success: Option<bool>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// A webhook's delivery statistics. Counts of deliveries come from the webhook's counters
/// (all time) or from deliveries ended since `since`; response times from attempts.
#[derive(Debug, Clone, Default)]
pub struct WebhookStats {
    pub total_deliveries: i64,
    pub successful_deliveries: i64,
    pub failed_deliveries: i64,
    pub pending_deliveries: i64,
    pub attempts: i64,
    pub successful_attempts: i64,
    pub avg_response_time_ms: Option<f64>,
    pub p50_response_time_ms: Option<i64>,
    pub p95_response_time_ms: Option<i64>,
    pub p99_response_time_ms: Option<i64>,
    pub last_success_at: Option<Timestamp>,
    pub last_failure_at: Option<Timestamp>,
    pub consecutive_failures: i64,
    /// Events its filter kept from becoming deliveries, since it was created.
    pub filtered_events: i64,
}

/// Pending deliveries by where they stand, across every node sharing the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Due now and held by no live lease: waiting for a node to claim them.
    pub due: i64,
    /// Waiting for a retry time still to come.
    pub scheduled: i64,
    /// Claimed by a node: queued there or being attempted.
    pub leased: i64,
    /// Disabled webhooks (operational ones included), by reason: manual, gone, failing.
    pub disabled_webhooks: [i64; 3],
}

/// One connection pool of this node, as it stands.
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    pub name: &'static str,
    /// Connections open, idle or not.
    pub size: u32,
    pub idle: usize,
    pub max: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// Waits for in-flight work and closes connections.
    async fn close(&self);

    /// The stored hash of a generated admin key, if one was generated.
    async fn admin_key_hash(&self) -> StoreResult<Option<Vec<u8>>>;
    async fn set_admin_key_hash(&self, hash: &[u8]) -> StoreResult<()>;

    async fn insert_tenant(&self, tenant: &Tenant) -> StoreResult<()>;
    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn tenants(&self, page: &Page) -> StoreResult<Vec<Tenant>>;

    async fn insert_api_key(&self, key: &ApiKeyInfo, key_hash: &[u8]) -> StoreResult<()>;
    async fn key_credentials(&self, key_id: &ApiKeyId) -> StoreResult<Option<KeyCredentials>>;
    /// Records that a key was used (callers limit how often).
    async fn touch_api_key(&self, key_id: &ApiKeyId, at: Timestamp) -> StoreResult<()>;
    async fn api_keys(&self, tenant_id: &TenantId, page: &Page) -> StoreResult<Vec<ApiKeyInfo>>;
    /// Marks a key revoked; false when the tenant has no such key. Revoking twice is harmless.
    async fn revoke_api_key(
        &self,
        tenant_id: &TenantId,
        key_id: &ApiKeyId,
        at: Timestamp,
    ) -> StoreResult<bool>;

    /// The event-type registry, every type.
    async fn event_types(&self) -> StoreResult<Vec<EventTypeRecord>>;
    /// Adds the types not stored yet; those stored are left as they are.
    async fn seed_event_types(&self, records: &[EventTypeRecord]) -> StoreResult<()>;
    async fn insert_event_type(&self, record: &EventTypeRecord) -> StoreResult<TypeInsert>;
    /// Replaces a type's state; false when there is no such type.
    async fn update_event_type(&self, record: &EventTypeRecord) -> StoreResult<bool>;

    /// Inserts unless the tenant already has `max_per_tenant` webhooks (0: no limit); whether
    /// it did. The count and the insert are one atomic step, so concurrent creates cannot
    /// overshoot.
    async fn insert_webhook(&self, webhook: &Webhook, max_per_tenant: u32) -> StoreResult<bool>;
    async fn webhook(&self, tenant_id: &TenantId, id: &WebhookId) -> StoreResult<Option<Webhook>>;
    async fn webhooks(
        &self,
        tenant_id: &TenantId,
        filter: &WebhookFilter,
        page: &Page,
    ) -> StoreResult<Vec<Webhook>>;
    /// Applies `change` atomically; `None` when the tenant has no such webhook.
    async fn update_webhook(
        &self,
        tenant_id: &TenantId,
        id: &WebhookId,
        change: WebhookChange,
        at: Timestamp,
    ) -> StoreResult<Option<Webhook>>;
    /// Seals every webhook secret not sealed with the primary operator key (plaintext from
    /// before encryption, or an older key); answers how many it sealed.
    async fn reencrypt_secrets(&self) -> StoreResult<u64>;
    /// Deletes the webhook and cancels its pending deliveries; false when there is none.
    async fn delete_webhook(
        &self,
        tenant_id: &TenantId,
        id: &WebhookId,
        at: Timestamp,
    ) -> StoreResult<bool>;

    // ----- the delivery queue -----

    /// Stores events and one pending delivery per matching active webhook, all in one
    /// transaction committed durably before returning. Answers per event, in order.
    async fn ingest(&self, events: &[NewEvent], plan: &LeasePlan) -> StoreResult<Vec<Ingested>>;
    /// Leases up to `limit` due deliveries of active webhooks (not in `plan.skip_webhooks`)
    /// whose lease is free or expired, oldest due first.
    async fn claim_due(
        &self,
        plan: &LeasePlan,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Job>>;
    /// When the next unleased pending delivery falls due, if any.
    async fn next_due(&self) -> StoreResult<Option<Timestamp>>;
    /// Extends this node's lease on a delivery; false when the lease was lost.
    async fn renew_lease(
        &self,
        delivery_id: &DeliveryId,
        node: &str,
        until: Timestamp,
    ) -> StoreResult<bool>;
    /// Gives leases back (queued work this node will not do), so any node may claim it.
    async fn release_leases(&self, delivery_ids: &[DeliveryId], node: &str) -> StoreResult<()>;
    /// Frees every lease at start-up. Only for backends one node uses alone (SQLite), where
    /// any lease found at start belongs to a previous run of this very node.
    async fn release_all_leases(&self) -> StoreResult<u64>;
    /// Says this node is alive (backends shared by several nodes). A node silent for
    /// [`NODE_DEAD_AFTER_MS`] counts as dead: its leases may be taken at once.
    async fn heartbeat(&self, _node: &str, _at: Timestamp) -> StoreResult<()> {
        Ok(())
    }
    /// This node is stopping: forget its heartbeat.
    async fn retire(&self, _node: &str) -> StoreResult<()> {
        Ok(())
    }
    /// Wakes `wake` whenever another node leaves work for anyone to claim. Backends one node
    /// uses alone have nothing to watch.
    async fn watch_for_work(&self, _wake: Arc<Notify>) -> StoreResult<()> {
        Ok(())
    }
    /// Sends `changes` every webhook change and key revocation committed by any node, from
    /// now on, and [`Change::Resync`] each time the watch (re)connects, when some may have
    /// been missed. `node` names the watch's connection to the database's operators. Backends
    /// one node uses alone have nothing to watch: that node applies its changes itself.
    async fn watch_changes(
        &self,
        _node: &str,
        _changes: tokio::sync::mpsc::UnboundedSender<Change>,
    ) -> StoreResult<()> {
        Ok(())
    }
    /// Records finished attempts in one transaction: log rows, delivery states and, for
    /// deliveries that ended, the webhook counters (once per delivery, guarded by its lease).
    /// With them, each webhook's health under `rules`, and the operational events that
    /// causes.
    async fn record_attempts(
        &self,
        records: &[AttemptRecord],
        node: &str,
        rules: &HealthRules,
    ) -> StoreResult<Recorded>;
    /// Logs a test send (no delivery, no counters).
    async fn insert_test_log(&self, entry: &LogEntry) -> StoreResult<()>;

    // ----- operations -----

    /// Counts pending deliveries by where they stand (for `/metrics`).
    async fn queue_depth(&self, now: Timestamp) -> StoreResult<QueueDepth>;
    /// This node's connection pools (for `/metrics`).
    fn pool_usage(&self) -> Vec<PoolUsage>;
    /// Deletes at most `limit` attempt-log rows made before `before`; answers how many.
    async fn purge_logs(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;
    /// Deletes at most `limit` events made before `before`, with their deliveries; spares
    /// every event with a delivery still pending or one that changed since `before` (its
    /// attempt logs are younger and still show its body). Answers how many.
    async fn purge_events(&self, before: Timestamp, limit: u32) -> StoreResult<u64>;
    /// Gives at most `pages` free pages back to the file system; answers how many free pages
    /// remain. Backends whose database reclaims space by itself answer 0.
    async fn reclaim_space(&self, _pages: u32) -> StoreResult<u64> {
        Ok(0)
    }

    // ----- reading what happened -----

    async fn event(&self, tenant_id: &TenantId, id: &EventId) -> StoreResult<Option<EventDetail>>;
    async fn logs(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        filter: &LogFilter,
        page: &Page,
    ) -> StoreResult<Vec<LogEntry>>;
    async fn log(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &AttemptId,
    ) -> StoreResult<Option<LogEntry>>;
    async fn stats(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        since: Option<Timestamp>,
    ) -> StoreResult<Option<WebhookStats>>;

    // ----- acting on deliveries -----

    /// A page of the webhook's deliveries, newest first.
    async fn deliveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        filter: &DeliveryFilter,
        page: &Page,
    ) -> StoreResult<Vec<DeliveryInfo>>;
    /// One delivery with its attempts, oldest first.
    async fn delivery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &DeliveryId,
    ) -> StoreResult<Option<(DeliveryInfo, Vec<LogEntry>)>>;
    /// Queues a failed delivery again, due at `now`, with a new chain of attempts.
    async fn retry_delivery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &DeliveryId,
        now: Timestamp,
    ) -> StoreResult<Requeued>;
    /// New deliveries of a stored event to these webhooks (the caller checked they are the
    /// tenant's), due at `now`; `None` when the tenant has no such event.
    async fn replay(
        &self,
        tenant_id: &TenantId,
        event_id: &EventId,
        webhook_ids: &[WebhookId],
        now: Timestamp,
    ) -> StoreResult<Option<Vec<DeliveryInfo>>>;

    /// Stores a new running recovery with the number of failed deliveries in its window,
    /// unless the webhook already has a running one.
    async fn start_recovery(&self, recovery: &Recovery) -> StoreResult<RecoveryStart>;
    async fn recovery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &RecoveryId,
    ) -> StoreResult<Option<Recovery>>;
    /// A page of the webhook's recoveries, newest first.
    async fn recoveries(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        page: &Page,
    ) -> StoreResult<Vec<Recovery>>;
    /// Stops a running recovery; the recovery as it now stands, or `None` if there is none.
    async fn cancel_recovery(
        &self,
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        id: &RecoveryId,
        at: Timestamp,
    ) -> StoreResult<Option<Recovery>>;
    /// Takes every running recovery no live node holds, and moves each one held here on by
    /// the deliveries whose paced slots begin before `horizon`, in one transaction per
    /// recovery; the lease holds until `lease_until`.
    async fn advance_recoveries(
        &self,
        node: &str,
        now: Timestamp,
        horizon: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Vec<RecoveryStep>>;
    /// Recoveries running, across every node (for `/metrics`).
    async fn running_recoveries(&self) -> StoreResult<i64>;
}

/// Whether a database URL names PostgreSQL (otherwise it is a SQLite file).
pub fn is_postgres(database_url: &str) -> bool {
    database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")
}

/// The SQLite file a database URL names (`sqlite://path`, `sqlite:path` or a plain path).
pub fn sqlite_path(database_url: &str) -> std::path::PathBuf {
    let path = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .unwrap_or(database_url);
    std::path::PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// Opens the store a database URL names (`postgres://…` or a SQLite file), applying
/// migrations. `max_connections` sizes the PostgreSQL pool; `keys` seal webhook secrets.
pub async fn connect(
    database_url: &str,
    max_connections: u32,
    keys: Arc<Keyring>,
) -> anyhow::Result<Arc<dyn Store>> {
    if is_postgres(database_url) {
        return Ok(Arc::new(
            PostgresStore::open(database_url, max_connections, keys).await?,
        ));
    }
    Ok(Arc::new(SqliteStore::open(database_url, keys).await?))
}
