//! Finding work no lane holds: due retries, and deliveries no live lease holds (left by a
//! crashed node, or by this node when its queue was full); and the heartbeat that tells other
//! nodes this one is alive.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::domain::time::Timestamp;

/// Tells the other nodes this one is alive, every few seconds.
pub(super) async fn heartbeat(shared: Arc<Shared>, stop: CancellationToken) {
    let every = Duration::from_millis((crate::store::NODE_DEAD_AFTER_MS / 5) as u64);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Err(error) = shared.store.heartbeat(&shared.node, Timestamp::now()).await {
            tracing::warn!(%error, "heartbeat failed; other nodes may take over this node's work");
        }
    }
}

/// Claims due work: retries whose time has come, and work no live lease holds (left by a
/// crashed node, or by this node when its queue was full). Sleeps until the next delivery
/// falls due, at most `poll_interval`, or until woken.
pub(super) async fn poll(shared: Arc<Shared>, stop: CancellationToken) {
    const CLAIM_BATCH: usize = 512;
    loop {
        let now = Timestamp::now();
        let mut wait = shared.config.poll_interval;
        match shared.store.next_due().await {
            Ok(Some(due)) if due <= now => {
                let room = shared.dispatcher.room().min(CLAIM_BATCH);
                if room > 0 {
                    let since = shared.dispatcher.epoch();
                    let plan = shared.lease_plan();
                    match shared.store.claim_due(&plan, now, room as u32).await {
                        Ok(jobs) if jobs.len() == room => {
                            shared.queue(jobs, since).await;
                            continue; // there may be more
                        }
                        Ok(jobs) => shared.queue(jobs, since).await,
                        Err(error) => tracing::warn!(%error, "claiming due deliveries failed"),
                    }
                }
            }
            Ok(Some(due)) => {
                let until = Duration::from_millis((due.millis() - now.millis()).max(1) as u64);
                wait = wait.min(until);
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "reading the delivery queue failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = shared.poll.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
