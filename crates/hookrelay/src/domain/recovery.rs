//! Acting on deliveries after things went wrong: which windows a recovery may cover, how it
//! is paced, and where a delivery stands as its tenant sees it.

use serde::Serialize;

use super::delivery::DeliveryState;
use super::id::{RecoveryId, TenantId, WebhookId};
use super::time::Timestamp;

/// Deliveries a recovery re-queues per second unless the webhook has a rate limit: slow
/// enough for a receiver just back on its feet, fast enough to clear a weekend of one event a
/// second (about 170,000 deliveries) in under two hours.
pub const DEFAULT_PACE: u32 = 25;
/// The fastest pace an operator may configure.
pub const PACE_MAX: u32 = 10_000;

/// Where a recovery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryState {
    /// Re-queueing, at its pace.
    Running,
    /// Every failed delivery of the window was re-queued.
    Completed,
    /// Stopped by its tenant; what was re-queued before stays queued.
    Cancelled,
}

impl RecoveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecoveryState::Running => "running",
            RecoveryState::Completed => "completed",
            RecoveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RecoveryState::Running,
            "completed" => RecoveryState::Completed,
            "cancelled" => RecoveryState::Cancelled,
            _ => return None,
        })
    }
}

/// Why a recovery window is refused; the text is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWindow {
    #[error("must be before `until`")]
    Empty,
    #[error("must not be in the future")]
    Future,
    /// Deliveries older than the retention age are deleted, so no recovery can find them.
    #[error("must be within the retention age ({0}): older deliveries are deleted")]
    PastRetention(String),
}

/// The deliveries a recovery covers: those created in `[since, until)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
}

impl Window {
    /// A window as asked for at `now`: `until` defaults to now; `since` may reach back at
    /// most `retention_ms` (`None`: nothing is ever deleted). `retention_words` names the
    /// age in the error. Errors say which end is wrong: `(field, why)`.
    pub fn new(
        since: Timestamp,
        until: Option<Timestamp>,
        now: Timestamp,
        retention_ms: Option<i64>,
        retention_words: &str,
    ) -> Result<Window, (&'static str, InvalidWindow)> {
        if since > now {
            return Err(("since", InvalidWindow::Future));
        }
        let until = until.map_or(now, |u| u.min(now));
        if since >= until {
            return Err(("since", InvalidWindow::Empty));
        }
        if let Some(age) = retention_ms
            && since < now.plus_millis(-age)
        {
            return Err((
                "since",
                InvalidWindow::PastRetention(retention_words.to_owned()),
            ));
        }
        Ok(Window { since, until })
    }
}

/// A recovery as stored: its window, pace and progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub id: RecoveryId,
    pub tenant_id: TenantId,
    pub webhook_id: WebhookId,
    pub window: Window,
    /// Deliveries re-queued per second at most.
    pub pace: u32,
    pub state: RecoveryState,
    /// Failed deliveries in the window when it started (deliveries of the window that fail
    /// later are re-queued too, and counted then).
    pub total: i64,
    pub requeued: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl Recovery {
    /// A recovery starting now, its total counted by the store.
    pub fn start(
        tenant_id: &TenantId,
        webhook_id: &WebhookId,
        window: Window,
        pace: u32,
        now: Timestamp,
    ) -> Self {
        Recovery {
            id: RecoveryId::new_at(now),
            tenant_id: tenant_id.clone(),
            webhook_id: webhook_id.clone(),
            window,
            pace: pace.clamp(1, PACE_MAX),
            state: RecoveryState::Running,
            total: 0,
            requeued: 0,
            created_at: now,
            updated_at: now,
            completed_at: None,
        }
    }

    /// How far along, 0–100: a completed recovery is 100 whatever it found.
    pub fn percent(&self) -> u8 {
        match self.state {
            RecoveryState::Completed => 100,
            _ if self.total <= 0 => 0,
            _ => ((self.requeued.min(self.total) * 100) / self.total).clamp(0, 99) as u8,
        }
    }
}

/// When each of the next deliveries a recovery re-queues falls due: one every `1/pace`
/// seconds, from `next_at` (or `now`, if that has passed), for as many slots as begin before
/// `horizon`, at most `max`. Answers the due times and the next free slot.
pub fn slots(
    next_at: Timestamp,
    now: Timestamp,
    horizon: Timestamp,
    pace: u32,
    max: usize,
) -> (Vec<Timestamp>, Timestamp) {
    let pace = f64::from(pace.max(1));
    let start = next_at.max(now);
    let mut due = Vec::new();
    let mut k = 0_u32;
    loop {
        let at = start.plus_millis((f64::from(k) * 1000.0 / pace).round() as i64);
        if at >= horizon || due.len() >= max {
            return (due, at);
        }
        due.push(at);
        k += 1;
    }
}

/// A delivery's state as its tenant sees it: a pending delivery of a disabled webhook is
/// `held`, waiting (never dropped) for the webhook to be enabled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Held,
    Succeeded,
    Failed,
    Cancelled,
}

impl DeliveryStatus {
    pub fn of(state: DeliveryState, webhook_enabled: bool) -> Self {
        match state {
            DeliveryState::Pending if !webhook_enabled => DeliveryStatus::Held,
            DeliveryState::Pending => DeliveryStatus::Pending,
            DeliveryState::Succeeded => DeliveryStatus::Succeeded,
            DeliveryState::Failed => DeliveryStatus::Failed,
            DeliveryState::Cancelled => DeliveryStatus::Cancelled,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Held => "held",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "held" => DeliveryStatus::Held,
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            "cancelled" => DeliveryStatus::Cancelled,
            _ => return None,
        })
    }

    /// The stored state to look for, if any can have this status on a webhook that is
    /// (`true`) or is not enabled: a pending delivery is `held` exactly when it is not.
    pub fn stored(self, webhook_enabled: bool) -> Option<DeliveryState> {
        match self {
            DeliveryStatus::Pending => webhook_enabled.then_some(DeliveryState::Pending),
            DeliveryStatus::Held => (!webhook_enabled).then_some(DeliveryState::Pending),
            DeliveryStatus::Succeeded => Some(DeliveryState::Succeeded),
            DeliveryStatus::Failed => Some(DeliveryState::Failed),
            DeliveryStatus::Cancelled => Some(DeliveryState::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600 * 1000;

    #[test]
    fn a_window_defaults_to_now_and_stays_within_retention() {
        let now = Timestamp(100 * DAY);
        let since = Timestamp(97 * DAY);
        let w = Window::new(since, None, now, Some(30 * DAY), "30d").unwrap();
        assert_eq!((w.since, w.until), (since, now));
        // A future end is now: nothing newer exists.
        let w = Window::new(since, Some(Timestamp(200 * DAY)), now, None, "off").unwrap();
        assert_eq!(w.until, now);
        assert_eq!(
            Window::new(Timestamp(60 * DAY), None, now, Some(30 * DAY), "30d"),
            Err(("since", InvalidWindow::PastRetention("30d".into())))
        );
        assert!(Window::new(Timestamp(60 * DAY), None, now, None, "off").is_ok());
        assert_eq!(
            Window::new(Timestamp(101 * DAY), None, now, None, "off"),
            Err(("since", InvalidWindow::Future))
        );
        assert_eq!(
            Window::new(since, Some(since), now, None, "off"),
            Err(("since", InvalidWindow::Empty))
        );
    }

    #[test]
    fn slots_are_spaced_by_the_pace_and_end_at_the_horizon() {
        let now = Timestamp(10_000);
        let (due, next) = slots(Timestamp(0), now, now.plus_millis(1000), 4, 100);
        assert_eq!(
            due,
            [10_000, 10_250, 10_500, 10_750].map(Timestamp).to_vec()
        );
        assert_eq!(next, Timestamp(11_000));
        // Resuming later continues from the next free slot, never bunching.
        let (due, next) = slots(next, now.plus_millis(500), now.plus_millis(1500), 4, 100);
        assert_eq!(due, [11_000, 11_250].map(Timestamp).to_vec());
        assert_eq!(next, Timestamp(11_500));
        // At most `max` at once.
        let (due, next) = slots(Timestamp(0), now, now.plus_millis(1000), 1000, 3);
        assert_eq!(due.len(), 3);
        assert_eq!(next, Timestamp(10_003));
        // Over any second, at most `pace` slots.
        let (due, _) = slots(Timestamp(0), now, now.plus_millis(60_000), 7, 10_000);
        for (i, at) in due.iter().enumerate() {
            let within = due[i..].iter().take_while(|t| t.0 < at.0 + 1000).count();
            assert!(within <= 7, "{within} slots within a second of {at:?}");
        }
    }

    #[test]
    fn held_is_pending_on_a_disabled_webhook() {
        assert_eq!(
            DeliveryStatus::of(DeliveryState::Pending, false),
            DeliveryStatus::Held
        );
        assert_eq!(
            DeliveryStatus::of(DeliveryState::Pending, true),
            DeliveryStatus::Pending
        );
        assert_eq!(
            DeliveryStatus::of(DeliveryState::Failed, false),
            DeliveryStatus::Failed
        );
        for s in ["pending", "held", "succeeded", "failed", "cancelled"] {
            let status = DeliveryStatus::parse(s).unwrap();
            for enabled in [true, false] {
                if let Some(state) = status.stored(enabled) {
                    assert_eq!(DeliveryStatus::of(state, enabled), status);
                }
            }
        }
        assert_eq!(DeliveryStatus::Held.stored(true), None);
        assert_eq!(DeliveryStatus::Pending.stored(false), None);
        assert_eq!(DeliveryStatus::parse("lost"), None);
    }

    #[test]
    fn progress_is_whole_only_when_completed() {
        let window = Window {
            since: Timestamp(0),
            until: Timestamp(1),
        };
        let mut r = Recovery::start(&TenantId::new(), &WebhookId::new(), window, 0, Timestamp(5));
        assert_eq!(r.pace, 1, "a pace is at least one a second");
        assert_eq!(r.percent(), 0);
        r.total = 200;
        r.requeued = 50;
        assert_eq!(r.percent(), 25);
        r.requeued = 200;
        assert_eq!(
            r.percent(),
            99,
            "running still: more may have failed meanwhile"
        );
        r.state = RecoveryState::Completed;
        assert_eq!(r.percent(), 100);
    }

    #[test]
    fn recovery_states_round_trip() {
        for s in [
            RecoveryState::Running,
            RecoveryState::Completed,
            RecoveryState::Cancelled,
        ] {
            assert_eq!(RecoveryState::parse(s.as_str()), Some(s));
        }
    }
}
