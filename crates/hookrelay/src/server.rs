//! Running the service: open the store, settle the admin key, serve HTTP until told to stop.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, BodyLimits};
use crate::config::ServeConfig;
use crate::delivery::Engine;
use crate::domain::apikey;
use crate::service::{RecoveryConfig, Service, ServiceConfig};
use crate::store::{self, Store};

/// How long a tenant key's credentials are trusted from memory (see [`crate::service::KeyCache`]): the bound
/// on a revocation's reach should a node miss hearing of it.
const KEY_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves on `listener` until `shutdown` is cancelled, then drains in-flight requests and
/// closes the database. Tests call this with a listener on port 0.
pub async fn run(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    config.validate()?;
    let keyring = Arc::new(crate::keyring::load(
        &config.database_url,
        &config.encryption,
    )?);
    let cursors = Arc::new(keyring.cursor_key());
    let store = store::connect(&config.database_url, config.db_max_connections, keyring).await?;
    let admin_key_hash = settle_admin_key(store.as_ref(), &config).await?;
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let engine = Engine::start(store.clone(), config.delivery.clone(), metrics.clone()).await?;
    let service = Service::new(
        store.clone(),
        engine.clone(),
        ServiceConfig {
            targets: config.delivery.targets.clone(),
            max_webhooks_per_tenant: config.max_webhooks_per_tenant,
            test_sends_per_minute: config.rate_limits.test_sends_per_minute,
            admin_key_hash,
            key_cache_ttl: KEY_CACHE_TTL,
            recovery: RecoveryConfig {
                pace: config.recovery_pace,
                retention: config.retention.age,
            },
        },
    );
    service.load_event_types().await?;
    let state = AppState {
        service: service.clone(),
        limits: Arc::new(api::limits::RateLimits::new(&config.rate_limits)),
        metrics: metrics.clone(),
        metrics_access: config.metrics_access,
        cursors,
    };
    // Changes made on other nodes (PostgreSQL): applied here as this node's own are.
    let (changes_tx, mut changes_rx) = tokio::sync::mpsc::unbounded_channel();
    store.watch_changes(engine.node(), changes_tx).await?;
    // The first resync, before serving: work claimed before the watch listened is read again.
    while let Ok(change) = changes_rx.try_recv() {
        apply(change, &service, &metrics).await;
    }
    let follower = tokio::spawn(follow_changes(changes_rx, service.clone(), metrics.clone()));
    let stop_retention = CancellationToken::new();
    let retention = tokio::spawn(crate::retention::run(
        store.clone(),
        config.retention.clone(),
        metrics,
        stop_retention.clone(),
    ));
    tokio::spawn(prune_limits(
        state.limits.clone(),
        service.clone(),
        shutdown.clone(),
    ));
    let limits = BodyLimits {
        api: config.max_body_bytes,
        event: config.max_event_bytes,
        batch: config.batch_limit(),
        read_timeout: config.body_read_timeout,
    };
    let app = api::router(state, limits);
    tracing::info!(address = %listener.local_addr()?, database = %redacted(&config.database_url), "hookrelay listening");
    // Descriptors the rest of the process may hold beside the connections: the database
    // pool, and the delivery engine's outbound connections (in flight, and kept idle).
    let reserve_fds = u64::from(config.db_max_connections).saturating_add(
        u64::try_from(config.delivery.concurrency)
            .unwrap_or(u64::MAX)
            .saturating_mul(2),
    );
    // Stops accepting when `shutdown` is cancelled, and returns once every request in flight
    // is answered.
    crate::listener::serve(listener, app, &config.connections, reserve_fds, shutdown).await;
    // Finish the deliveries in flight and hand back what is queued.
    stop_retention.cancel();
    let _ = retention.await;
    engine.shutdown().await;
    // Dropping the receiver ends the watch and its connection.
    follower.abort();
    let _ = follower.await;
    store.close().await;
    tracing::info!("hookrelay stopped");
    Ok(())
}

/// Applies changes heard of from the database: queued work of a changed webhook is dropped,
/// a revoked key forgotten, and after a reconnect everything kept is dropped and read afresh.
async fn follow_changes(
    mut changes: tokio::sync::mpsc::UnboundedReceiver<store::Change>,
    service: Service,
    metrics: Arc<crate::metrics::Metrics>,
) {
    while let Some(change) = changes.recv().await {
        apply(change, &service, &metrics).await;
    }
}

async fn apply(change: store::Change, service: &Service, metrics: &crate::metrics::Metrics) {
    match &change {
        store::Change::Webhook(webhook_id) => service.engine().webhook_changed(webhook_id).await,
        store::Change::ApiKeyRevoked(key_id) => service.key_cache().forget(key_id),
        store::Change::EventTypes => reload_event_types(service).await,
        store::Change::Resync => {
            reload_event_types(service).await;
            service.key_cache().clear();
            service.engine().resync().await;
        }
    }
    metrics.change_heard(&change);
}

async fn reload_event_types(service: &Service) {
    if let Err(error) = service.reload_event_types().await {
        // The next change or reconnect tries again; until then the last snapshot serves.
        tracing::error!(%error, "cannot read the event-type registry");
    }
}

/// Forgets idle rate-limit entries now and then, so memory follows active clients only.
async fn prune_limits(
    limits: Arc<api::limits::RateLimits>,
    service: Service,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(api::limits::PRUNE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {
                limits.prune();
                service.prune();
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// The admin key's hash: the configured key's, else the stored one, else a new key generated,
/// stored as a hash and printed this once.
async fn settle_admin_key(store: &dyn Store, config: &ServeConfig) -> anyhow::Result<[u8; 32]> {
    if let Some(key) = &config.admin_key {
        return Ok(apikey::hash_admin_key(key.expose()));
    }
    if let Some(stored) = store.admin_key_hash().await? {
        return <[u8; 32]>::try_from(stored.as_slice())
            .map_err(|_| anyhow::anyhow!("stored admin key hash has the wrong length"));
    }
    let key = apikey::generate_admin_key();
    let hash = apikey::hash_admin_key(&key);
    store.set_admin_key_hash(&hash).await?;
    // Printed, not logged: log pipelines keep copies, and this is shown exactly once.
    println!(
        "\nGenerated admin key (shown once; only its hash is stored):\n\n    {key}\n\n\
         Keep it safe. To replace it, start with HOOKRELAY_ADMIN_KEY set.\n"
    );
    Ok(hash)
}

/// A database URL fit for logs: any password replaced.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
