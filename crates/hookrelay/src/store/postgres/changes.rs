//! Change notifications on PostgreSQL. A change that affects delivery or authentication sends
//! `NOTIFY` inside its own transaction, so every node hears of it exactly when it commits (and
//! never of one rolled back). Each node keeps one `LISTEN` connection for them, named
//! `hookrelay changes <node>` in `pg_stat_activity`.
//!
//! Notifications sent while that connection is down are lost, so the database stays the
//! truth: after every (re)connect the node is told to [`Change::Resync`], dropping everything
//! it kept from before, and reads it afresh. A connection dropped without a word (a NAT
//! timeout, a failover) is found by asking it to answer after a quiet spell.

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc::UnboundedSender;

use crate::domain::id::{ApiKeyId, Id, WebhookId};
use crate::store::{Change, StoreResult};

/// The channel a webhook's changes are sent on; the payload is its id.
const WEBHOOK_CHANNEL: &str = "hookrelay_webhook_changed";
/// The channel key revocations are sent on; the payload is the key id.
const KEY_CHANNEL: &str = "hookrelay_key_revoked";

/// The channel registry changes are sent on; no payload: the whole registry is read again.
const EVENT_TYPES_CHANNEL: &str = "hookrelay_event_types_changed";

/// A quiet connection is asked to answer after this long, and given `PING_TIMEOUT` to do so.
const PING_AFTER: Duration = Duration::from_secs(10);
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Between attempts to reconnect.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// Tells every node, when `conn`'s transaction commits, that the webhook changed.
pub(super) async fn webhook_changed(conn: &mut PgConnection, webhook_id: &str) -> StoreResult<()> {
    notify(conn, WEBHOOK_CHANNEL, webhook_id).await
}

/// Tells every node, when `conn`'s transaction commits, that the key was revoked.
pub(super) async fn key_revoked(conn: &mut PgConnection, key_id: &str) -> StoreResult<()> {
    notify(conn, KEY_CHANNEL, key_id).await
}

/// Tells every node, when `conn`'s transaction commits, that the event-type registry changed.
pub(super) async fn event_types_changed(conn: &mut PgConnection) -> StoreResult<()> {
    notify(conn, EVENT_TYPES_CHANNEL, "").await
}

async fn notify(conn: &mut PgConnection, channel: &str, payload: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(conn)
        .await?;
    Ok(())
}

/// The `application_name` of a node's change connection.
fn application_name(node: &str) -> String {
    format!("hookrelay changes {node}")
}

/// Listens (failing if it cannot, as start-up should), then hands changes to `changes` until
/// its receiver is dropped, reconnecting whenever the connection is lost.
pub(super) async fn watch(
    options: &PgConnectOptions,
    node: &str,
    changes: UnboundedSender<Change>,
) -> StoreResult<()> {
    let options = options.clone().application_name(&application_name(node));
    let connected = connect(&options).await?;
    // Sent before returning, so the node can read afresh what it claimed before listening.
    let _ = changes.send(Change::Resync);
    tokio::spawn(follow(options, connected, changes));
    Ok(())
}

/// Its own one-connection pool, so closing the main pool never waits for it.
async fn connect(options: &PgConnectOptions) -> Result<(PgPool, PgListener), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(super::ACQUIRE_TIMEOUT)
        .connect_with(options.clone())
        .await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    // A lost connection is rebuilt here, so that a resync follows every reconnect.
    listener.eager_reconnect(false);
    listener
        .listen_all([WEBHOOK_CHANNEL, KEY_CHANNEL, EVENT_TYPES_CHANNEL])
        .await?;
    Ok((pool, listener))
}

async fn follow(
    options: PgConnectOptions,
    mut connected: (PgPool, PgListener),
    changes: UnboundedSender<Change>,
) {
    loop {
        let (pool, mut listener) = connected;
        let lost = tokio::select! {
            lost = hand_on(&mut listener, &changes) => lost,
            () = changes.closed() => None,
        };
        drop(listener);
        let _ = tokio::time::timeout(PING_TIMEOUT, pool.close()).await;
        let Some(lost) = lost else { return };
        tracing::warn!(error = %lost, "lost the connection that hears of changes; reconnecting");
        connected = loop {
            tokio::select! {
                () = tokio::time::sleep(RECONNECT_DELAY) => {}
                () = changes.closed() => return,
            }
            match connect(&options).await {
                // Listening again: what changed meanwhile is read afresh.
                Ok(connected) if changes.send(Change::Resync).is_ok() => break connected,
                Ok(_) => return,
                Err(error) => tracing::warn!(%error, "cannot listen for changes yet"),
            }
        };
    }
}

/// Hands notifications on until the connection is lost; answers why it was (`None`: the
/// receiver is gone).
async fn hand_on(listener: &mut PgListener, changes: &UnboundedSender<Change>) -> Option<String> {
    loop {
        let heard = match tokio::time::timeout(PING_AFTER, listener.try_recv()).await {
            Ok(Ok(Some(heard))) => heard,
            Ok(Ok(None)) => return Some("connection closed".to_owned()),
            Ok(Err(error)) => return Some(error.to_string()),
            Err(_quiet) => {
                let ping = sqlx::query("SELECT 1").execute(&mut *listener);
                match tokio::time::timeout(PING_TIMEOUT, ping).await {
                    Ok(Ok(_)) => continue,
                    Ok(Err(error)) => return Some(error.to_string()),
                    Err(_) => return Some(format!("no answer within {PING_TIMEOUT:?}")),
                }
            }
        };
        let change = match heard.channel() {
            WEBHOOK_CHANNEL => Change::Webhook(WebhookId::from_stored(heard.payload().to_owned())),
            KEY_CHANNEL => Change::ApiKeyRevoked(ApiKeyId::from_stored(heard.payload().to_owned())),
            EVENT_TYPES_CHANNEL => Change::EventTypes,
            _ => continue,
        };
        if changes.send(change).is_err() {
            return None;
        }
    }
}
