//! The use cases, once, for every front door: the HTTP API today, the CLI's server paths and
//! the portal tomorrow. Each function validates what the domain cannot check alone (quotas,
//! reachable URLs, tenants that exist), writes through the store and tells the engine, so no
//! caller can forget a step. No HTTP here: errors are [`ServiceError`], which the API renders.

mod activity;
mod auth;
mod event_types;
mod events;
mod recovery;
mod tenants;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

pub use activity::TestSend;
pub use auth::{Authenticated, Caller, KeyCache};
pub use recovery::{DeliveryQuery, DeliveryView, REPLAY_WEBHOOKS_MAX};
pub use tenants::CreatedKey;

use crate::delivery::{Engine, IngestError};
use crate::domain::egress::EgressPolicy;
use crate::domain::input::FieldError;
use crate::store::{Store, StoreError};

/// What the service is built from, besides the store and the engine.
pub struct ServiceConfig {
    /// Which addresses webhooks may reach (checked at create/update and at every connection).
    pub targets: Arc<EgressPolicy>,
    /// Webhooks one tenant may have; 0: no limit.
    pub max_webhooks_per_tenant: u32,
    /// Test sends per minute for one webhook; 0: no limit.
    pub test_sends_per_minute: u32,
    /// SHA-256 of the admin key (configured or generated); the key itself is not kept.
    pub admin_key_hash: [u8; 32],
    /// How long a tenant key's credentials are trusted from memory (see [`KeyCache`]).
    pub key_cache_ttl: Duration,
    pub recovery: RecoveryConfig,
}

/// How recoveries run.
#[derive(Debug, Clone, Copy)]
pub struct RecoveryConfig {
    /// Deliveries re-queued per second for a webhook without a rate limit.
    pub pace: u32,
    /// How long deliveries are kept (`None`: forever): no window may reach further back.
    pub retention: Option<Duration>,
}

/// Cheap to clone: every clone is the same service.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    engine: Engine,
    targets: Arc<EgressPolicy>,
    max_webhooks_per_tenant: u32,
    admin_key_hash: [u8; 32],
    key_cache: KeyCache,
    test_sends: activity::TestSendLimit,
    recovery: RecoveryConfig,
    /// The event-type registry as last read (see `event_types.rs`).
    event_types: std::sync::RwLock<Arc<crate::domain::registry::EventTypes>>,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, engine: Engine, config: ServiceConfig) -> Self {
        Service {
            inner: Arc::new(Inner {
                store,
                engine,
                targets: config.targets,
                max_webhooks_per_tenant: config.max_webhooks_per_tenant,
                admin_key_hash: config.admin_key_hash,
                key_cache: KeyCache::new(config.key_cache_ttl),
                test_sends: activity::TestSendLimit::new(config.test_sends_per_minute),
                recovery: config.recovery,
                // The built-in catalogue until `load_event_types` reads the registry.
                event_types: std::sync::RwLock::new(Arc::new(
                    crate::domain::registry::EventTypes::builtin(),
                )),
            }),
        }
    }

    /// For what is not a use case: health checks, metrics, shutdown.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The longest delay before a retry: no `retry_schedule` entry may pass it.
    pub fn max_retry_delay(&self) -> Duration {
        self.inner.engine.retry_policy().max_delay
    }

    /// Tenant keys trusted from memory; changes heard from other nodes forget entries.
    pub fn key_cache(&self) -> &KeyCache {
        &self.inner.key_cache
    }

    /// Forgets idle rate-limit entries, so memory follows active webhooks only.
    pub fn prune(&self) {
        self.inner.test_sends.prune();
    }
}

/// Why a use case did not happen. Front doors render each kind their own way (the API as an
/// RFC 9457 problem); the messages are for people.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Missing, malformed or another tenant's: the same answer, so ids cannot be probed.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("validation failed")]
    Invalid(Vec<FieldError>),
    /// With the admin key, events named tenants that do not exist: their indexes.
    #[error("no such tenant")]
    UnknownTenants(Vec<usize>),
    /// The resource is not in a state that allows this; the message says which.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A quota that waiting does not restore.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    #[error("rate limit of {scope} exceeded")]
    RateLimited {
        /// What is limited, in words.
        scope: &'static str,
        retry_after: Duration,
    },
    /// The credentials name nobody, or a key that no longer works.
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl ServiceError {
    /// A validation failure on a single field.
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        ServiceError::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;
