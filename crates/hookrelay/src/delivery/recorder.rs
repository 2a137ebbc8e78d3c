//! Writing finished attempts: one transaction for as many as have arrived, retried while the
//! database is unavailable, so an attempt that happened is never forgotten while the process
//! lives.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::domain::delivery::{AttemptRecord, Next};
use crate::store::{Recorded, StoreError};

// Nearly every message is a record; boxing it would add an allocation per attempt to spare
// the rare flush a few bytes.
#[allow(clippy::large_enum_variant)]
pub(super) enum ToRecorder {
    Record(AttemptRecord),
    /// Answered once everything sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// Writes finished attempts in batches: one transaction for as many as have arrived.
pub(super) async fn record(shared: Arc<Shared>, mut rx: mpsc::Receiver<ToRecorder>) {
    const MAX_BATCH: usize = 1024;
    let mut inbox = Vec::with_capacity(MAX_BATCH);
    let mut batch: Vec<AttemptRecord> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut inbox, MAX_BATCH).await > 0 {
        let mut flushes = Vec::new();
        for message in inbox.drain(..) {
            match message {
                ToRecorder::Record(record) => batch.push(record),
                ToRecorder::Flush(done) => flushes.push(done),
            }
        }
        if !batch.is_empty() {
            write_records(&shared, &batch).await;
            let retries = batch.iter().any(|r| matches!(r.next, Next::RetryAt(_)));
            let overflowed = shared
                .overflowed
                .swap(false, std::sync::atomic::Ordering::Relaxed);
            if retries || overflowed {
                shared.poll.notify_one();
            }
            batch.clear();
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Writes one batch, retrying while the database is unavailable. A batch refused for any
/// other reason is written attempt by attempt, so one bad record cannot hold up the rest; a
/// record refused on its own is logged and dropped (its delivery's lease then expires and the
/// attempt is made again).
async fn write_records(shared: &Shared, batch: &[AttemptRecord]) {
    if write_with_retries(shared, batch).await.is_err() && batch.len() > 1 {
        for record in batch {
            let _ = write_with_retries(shared, std::slice::from_ref(record)).await;
        }
    }
}

/// What a written batch changed: webhooks it disabled lose their queued work here at once
/// (other nodes hear of it from the database), and operational deliveries it stored are
/// claimed.
async fn apply(shared: &Shared, recorded: Recorded) {
    for webhook_id in &recorded.disabled {
        let ids = shared.dispatcher.drop_webhook(webhook_id);
        shared.release(ids).await;
    }
    if recorded.notices > 0 || !recorded.disabled.is_empty() {
        shared.poll.notify_one();
    }
}

async fn write_with_retries(shared: &Shared, batch: &[AttemptRecord]) -> Result<(), ()> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match shared
            .store
            .record_attempts(batch, &shared.node, &shared.config.health)
            .await
        {
            Ok(recorded) => {
                apply(shared, recorded).await;
                return Ok(());
            }
            Err(StoreError::Unavailable(error)) => {
                tracing::warn!(%error, attempts = batch.len(), ?backoff, "cannot record attempts; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) => {
                tracing::error!(%error, attempts = batch.len(), "attempts refused by the database");
                return Err(());
            }
        }
    }
}
