//! Moving recoveries on: every running recovery this node holds re-queues the failed
//! deliveries whose paced slots come up next, a little ahead of time, so the poller finds
//! each one due exactly at its slot. A node that dies leaves its recoveries to the others.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::domain::time::Timestamp;

/// How often a running recovery is moved on; its slots are planned this far ahead.
const STEP: Duration = Duration::from_millis(250);
/// How often the node looks for recoveries when none is running here.
const IDLE: Duration = Duration::from_secs(1);
/// How long a node holds a recovery without moving it on before another may take it.
const LEASE: Duration = Duration::from_secs(10);

pub(super) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let now = Timestamp::now();
        let horizon = now.plus_millis(2 * STEP.as_millis() as i64);
        let lease_until = now.plus_millis(LEASE.as_millis() as i64);
        let mut wait = IDLE;
        match shared
            .store
            .advance_recoveries(&shared.node, now, horizon, lease_until)
            .await
        {
            Ok(steps) => {
                let mut requeued = 0;
                for step in &steps {
                    requeued += step.requeued;
                    if step.recovery.state != crate::domain::recovery::RecoveryState::Running {
                        tracing::info!(
                            recovery = %step.recovery.id,
                            webhook = %step.recovery.webhook_id,
                            requeued = step.recovery.requeued,
                            "recovery completed"
                        );
                    }
                }
                if requeued > 0 {
                    shared.metrics.recovered(requeued);
                    shared.poll.notify_one();
                }
                if !steps.is_empty() {
                    wait = STEP;
                }
            }
            Err(error) => tracing::warn!(%error, "moving recoveries on failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = shared.recoveries.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
