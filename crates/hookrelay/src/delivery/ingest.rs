//! Group commit: concurrent ingests are written in one transaction with one fsync, so
//! durability does not cost throughput. While one batch commits, the next one gathers.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::domain::event::NewEvent;
use crate::store::{Ingested, StoreError};

/// Why an ingest failed, cheap to hand to every request of a failed batch: the store's error
/// is shared by all of them, and kept as the source, so the log sees what the database said.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The database cannot take the batch now; the same events may be sent again.
    #[error("database unavailable")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// The store failed otherwise (a bug, or a row it cannot read).
    #[error("storing the events failed")]
    Store(#[source] Arc<StoreError>),
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl From<StoreError> for IngestError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(e) => IngestError::Unavailable(Arc::new(e)),
            other => IngestError::Store(Arc::new(other)),
        }
    }
}

/// What the API answers for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub event_id: crate::domain::id::EventId,
    pub event_type: String,
    pub deliveries: usize,
    /// True when an earlier event with the same idempotency key was answered instead.
    pub duplicate: bool,
}

pub(super) struct Request {
    pub event: NewEvent,
    pub reply: oneshot::Sender<Result<Accepted, IngestError>>,
}

/// Runs until every sender is gone.
pub(super) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Request>, max_batch: usize) {
    let mut requests = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut requests, max_batch).await > 0 {
        let (events, replies): (Vec<NewEvent>, Vec<_>) =
            requests.drain(..).map(|r| (r.event, r.reply)).unzip();
        // Before the transaction reads any webhook: a change after this refuses its jobs.
        let since = shared.dispatcher.epoch();
        let plan = shared.lease_plan();
        match shared.store.ingest(&events, &plan).await {
            Ok(results) => {
                for ((event, reply), result) in events.iter().zip(replies).zip(results) {
                    let accepted = match result {
                        Ingested::Created {
                            event_id,
                            deliveries,
                            jobs,
                        } => {
                            shared.metrics.event_accepted();
                            shared.queue(jobs, since).await;
                            Accepted {
                                event_id,
                                event_type: event.event_type.to_owned(),
                                deliveries,
                                duplicate: false,
                            }
                        }
                        Ingested::Existing {
                            event_id,
                            event_type,
                            deliveries,
                        } => Accepted {
                            event_id,
                            event_type,
                            deliveries,
                            duplicate: true,
                        },
                    };
                    // The caller may have gone (client disconnected): the event is stored.
                    let _ = reply.send(Ok(accepted));
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, events = events.len(), "ingest batch failed");
                let error = IngestError::from(error);
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}
