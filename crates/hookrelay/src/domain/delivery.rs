//! Deliveries and attempts: the types the engine, the store and the API share, and the rule
//! deciding what happens after each attempt.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::id::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use super::retry::RetryPolicy;
use super::time::Timestamp;

/// Where a delivery stands. Only `pending` ones are ever attempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Succeeded,
    Failed,
    /// Its webhook was deleted before it ended.
    Cancelled,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Pending,
        DeliveryState::Succeeded,
        DeliveryState::Failed,
        DeliveryState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
            DeliveryState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "succeeded" => DeliveryState::Succeeded,
            "failed" => DeliveryState::Failed,
            "cancelled" => DeliveryState::Cancelled,
            _ => return None,
        })
    }
}

/// A webhook as an attempt needs it: a snapshot taken when the delivery was queued.
#[derive(Debug)]
pub struct Target {
    pub webhook_id: WebhookId,
    pub url: String,
    /// The secrets to sign with: the current one first, then, during a rotation, the previous.
    pub secrets: Vec<String>,
    /// The tenant's custom headers, validated when set.
    pub headers: super::headers::CustomHeaders,
    /// Deliveries per second at most, on this node; `None`: no limit.
    pub rate_limit: Option<u32>,
    pub timeout: Duration,
    pub retry_count: u32,
}

impl Target {
    /// A stored timeout as an attempt uses it: a value out of range (only a damaged row holds
    /// one) is held to the bounds the API enforces.
    pub fn timeout_of(seconds: i64) -> Duration {
        let seconds = seconds.clamp(super::webhook::TIMEOUT_MIN, super::webhook::TIMEOUT_MAX);
        Duration::from_secs(seconds.unsigned_abs())
    }

    /// A stored retry count, held to the API's bounds like [`Target::timeout_of`].
    pub fn retry_count_of(n: i64) -> u32 {
        u32::try_from(n.clamp(0, super::webhook::RETRY_COUNT_MAX)).unwrap_or(0)
    }

    /// A stored rate limit: `None` (and any value below 1) is no limit.
    pub fn rate_limit_of(per_second: Option<i64>) -> Option<u32> {
        per_second
            .and_then(|r| u32::try_from(r).ok())
            .filter(|r| *r > 0)
    }
}

/// One delivery, leased to this node, ready for its next attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub tenant_id: TenantId,
    pub event_type: Arc<str>,
    /// The envelope, shared by every delivery of the event.
    pub body: Arc<str>,
    /// 1-based number of the attempt about to be made.
    pub attempt: u32,
    pub leased_until: Timestamp,
    pub target: Arc<Target>,
    /// The delivery failed once and was queued again (retried, recovered): its end is already
    /// in the webhook's counters, so ending again moves them by the change only.
    pub counted: bool,
}

/// What one HTTP attempt came to.
#[derive(Debug, Clone, Default)]
pub struct AttemptOutcome {
    pub started_at: Timestamp,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub response_body_truncated: bool,
    pub response_time_ms: i64,
    /// Network-level failure in plain words ("connection refused", "timed out after 30 s").
    pub error: Option<String>,
    /// The receiver's `Retry-After`, already parsed.
    pub retry_after: Option<Duration>,
    /// The headers sent, as a JSON object (for the attempt log).
    pub request_headers: String,
}

impl AttemptOutcome {
    /// Success is a 2xx status within the timeout; nothing else.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
            && self
                .response_status
                .is_some_and(|s| (200..300).contains(&s))
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Succeeded,
    /// Retries exhausted.
    Failed,
    RetryAt(Timestamp),
}

impl Next {
    /// Applies DESIGN §5: after attempt `attempt` (1-based) of a webhook allowing
    /// `retry_count` retries. `unit` is a random number in [0, 1) for the jitter.
    pub fn after(
        outcome: &AttemptOutcome,
        attempt: u32,
        retry_count: u32,
        policy: &RetryPolicy,
        now: Timestamp,
        unit: f64,
    ) -> Next {
        if outcome.is_success() {
            return Next::Succeeded;
        }
        if attempt > retry_count {
            return Next::Failed;
        }
        // Retry-After only means "come back later" on these statuses.
        let retry_after = match outcome.response_status {
            Some(429 | 503) => outcome.retry_after,
            _ => None,
        };
        let delay = policy.delay_after(attempt, unit, retry_after);
        Next::RetryAt(now.plus_millis(delay.as_millis().min(i64::MAX as u128) as i64))
    }
}

/// One finished attempt, to be recorded: the log row, and the delivery's new state.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub log_id: AttemptId,
    pub job: Job,
    pub outcome: AttemptOutcome,
    pub next: Next,
    pub recorded_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<u16>, error: Option<&str>) -> AttemptOutcome {
        AttemptOutcome {
            response_status: status,
            error: error.map(str::to_owned),
            ..AttemptOutcome::default()
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn only_2xx_succeeds() {
        assert!(outcome(Some(200), None).is_success());
        assert!(outcome(Some(204), None).is_success());
        assert!(!outcome(Some(301), None).is_success());
        assert!(!outcome(Some(500), None).is_success());
        assert!(!outcome(None, Some("connection refused")).is_success());
        assert!(!outcome(Some(200), Some("timed out after 1 s")).is_success());
    }

    #[test]
    fn retries_then_fails() {
        let now = Timestamp(0);
        let failed = outcome(Some(500), None);
        let p = policy();
        assert_eq!(
            Next::after(&failed, 1, 3, &p, now, 0.5),
            Next::RetryAt(Timestamp(1000))
        );
        assert_eq!(
            Next::after(&failed, 3, 3, &p, now, 0.5),
            Next::RetryAt(Timestamp(4000))
        );
        assert_eq!(Next::after(&failed, 4, 3, &p, now, 0.5), Next::Failed);
        assert_eq!(Next::after(&failed, 1, 0, &p, now, 0.5), Next::Failed);
        let ok = outcome(Some(200), None);
        assert_eq!(Next::after(&ok, 1, 3, &p, now, 0.5), Next::Succeeded);
    }

    #[test]
    fn retry_after_counts_only_on_429_and_503() {
        let p = policy();
        let mut o = outcome(Some(429), None);
        o.retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            Next::after(&o, 1, 3, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(30_000))
        );
        o.response_status = Some(500);
        assert_eq!(
            Next::after(&o, 1, 3, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(1000))
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [
            DeliveryState::Pending,
            DeliveryState::Succeeded,
            DeliveryState::Failed,
            DeliveryState::Cancelled,
        ] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryState::parse("lost"), None);
    }
}
