//! Deliveries and attempts: the types the engine, the store and the API share, and the rule
//! deciding what happens after each attempt.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::id::{AttemptId, DeliveryId, EventId, TenantId, WebhookId};
use super::retry::{RETRY_SCHEDULE_MAX, Retries, RetryPolicy};
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
    /// How many retries, and when: `retry_count` on the backoff, or the `retry_schedule`.
    pub retries: Retries,
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

    /// A webhook's stored retry settings: its schedule when it has one (held to the API's
    /// length, entries of at least 1 ms), else its retry count on the backoff.
    pub fn retries_of(count: i64, schedule: Option<&[Duration]>) -> Retries {
        match schedule {
            Some(delays) if !delays.is_empty() => Retries::Schedule(
                delays
                    .iter()
                    .take(RETRY_SCHEDULE_MAX)
                    .map(|d| (*d).max(Duration::from_millis(1)))
                    .collect(),
            ),
            _ => Retries::Backoff(Target::retry_count_of(count)),
        }
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
    /// Applies DESIGN §5: after attempt `attempt` (1-based) of a webhook retrying as
    /// `retries` says (its `retry_count` on the backoff, or its `retry_schedule`: as many
    /// retries as entries, retry `k` after entry `k`). `unit` is a random number in [0, 1) for
    /// the jitter.
    pub fn after(
        outcome: &AttemptOutcome,
        attempt: u32,
        retries: &Retries,
        policy: &RetryPolicy,
        now: Timestamp,
        unit: f64,
    ) -> Next {
        if outcome.is_success() {
            return Next::Succeeded;
        }
        if attempt > retries.count() {
            return Next::Failed;
        }
        // Retry-After only means "come back later" on these statuses.
        let retry_after = match outcome.response_status {
            Some(429 | 503) => outcome.retry_after,
            _ => None,
        };
        let delay = policy.delay_for(retries, attempt, unit, retry_after);
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

    const THREE: Retries = Retries::Backoff(3);

    fn schedule(delays: &[u64]) -> Retries {
        Retries::Schedule(delays.iter().map(|s| Duration::from_secs(*s)).collect())
    }

    #[test]
    fn retries_then_fails() {
        let now = Timestamp(0);
        let failed = outcome(Some(500), None);
        let p = policy();
        assert_eq!(
            Next::after(&failed, 1, &THREE, &p, now, 0.5),
            Next::RetryAt(Timestamp(1000))
        );
        assert_eq!(
            Next::after(&failed, 3, &THREE, &p, now, 0.5),
            Next::RetryAt(Timestamp(4000))
        );
        assert_eq!(Next::after(&failed, 4, &THREE, &p, now, 0.5), Next::Failed);
        let none = Retries::Backoff(0);
        assert_eq!(Next::after(&failed, 1, &none, &p, now, 0.5), Next::Failed);
        let ok = outcome(Some(200), None);
        assert_eq!(Next::after(&ok, 1, &THREE, &p, now, 0.5), Next::Succeeded);
    }

    /// A schedule sets every delay, counted from the failed attempt (`now`), and its length is
    /// the number of retries.
    #[test]
    fn a_schedule_sets_each_delay_and_the_number_of_retries() {
        let failed = outcome(Some(500), None);
        let p = RetryPolicy {
            max_delay: Duration::from_secs(3600),
            ..policy()
        };
        let plan = schedule(&[1, 600]);
        let at =
            |attempt: u32, now: i64| Next::after(&failed, attempt, &plan, &p, Timestamp(now), 0.5);
        assert_eq!(at(1, 0), Next::RetryAt(Timestamp(1000)));
        // The second failure comes at 1.2 s: the next try is 10 minutes after it.
        assert_eq!(at(2, 1200), Next::RetryAt(Timestamp(601_200)));
        assert_eq!(at(3, 601_200), Next::Failed);
        let ok = outcome(Some(204), None);
        assert_eq!(
            Next::after(&ok, 2, &plan, &p, Timestamp(0), 0.5),
            Next::Succeeded
        );
    }

    #[test]
    fn a_schedule_keeps_the_servers_jitter_and_cap() {
        let failed = outcome(None, Some("connection refused"));
        let p = RetryPolicy {
            jitter: 0.1,
            max_delay: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let plan = schedule(&[600, 7200]);
        let now = Timestamp(5_000);
        assert_eq!(
            Next::after(&failed, 1, &plan, &p, now, 0.0),
            Next::RetryAt(Timestamp(5_000 + 540_000))
        );
        assert_eq!(
            Next::after(&failed, 1, &plan, &p, now, 1.0),
            Next::RetryAt(Timestamp(5_000 + 660_000))
        );
        // A stored entry past the cap (the operator lowered it since) waits the cap.
        assert_eq!(
            Next::after(&failed, 2, &plan, &p, now, 0.5),
            Next::RetryAt(Timestamp(5_000 + 3_600_000))
        );
    }

    #[test]
    fn retry_after_lengthens_a_scheduled_delay_within_the_cap() {
        let p = RetryPolicy {
            max_delay: Duration::from_secs(3600),
            ..policy()
        };
        let plan = schedule(&[5, 60]);
        let mut o = outcome(Some(503), None);
        o.retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            Next::after(&o, 1, &plan, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(30_000))
        );
        // Shorter than the entry: the entry stands.
        assert_eq!(
            Next::after(&o, 2, &plan, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(60_000))
        );
        o.retry_after = Some(Duration::from_secs(86_400));
        assert_eq!(
            Next::after(&o, 1, &plan, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(3_600_000))
        );
        // Not on a 500.
        o.response_status = Some(500);
        assert_eq!(
            Next::after(&o, 1, &plan, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(5_000))
        );
    }

    #[test]
    fn stored_retries_are_held_to_the_api_bounds() {
        assert_eq!(Target::retries_of(3, None), Retries::Backoff(3));
        assert_eq!(Target::retries_of(99, None), Retries::Backoff(10));
        assert_eq!(Target::retries_of(3, Some(&[])), Retries::Backoff(3));
        let long = vec![Duration::ZERO; 30];
        let Retries::Schedule(held) = Target::retries_of(3, Some(&long)) else {
            panic!("a schedule");
        };
        assert_eq!(held.len(), RETRY_SCHEDULE_MAX);
        assert!(held.iter().all(|d| *d == Duration::from_millis(1)));
    }

    #[test]
    fn retry_after_counts_only_on_429_and_503() {
        let p = policy();
        let mut o = outcome(Some(429), None);
        o.retry_after = Some(Duration::from_secs(30));
        assert_eq!(
            Next::after(&o, 1, &THREE, &p, Timestamp(0), 0.5),
            Next::RetryAt(Timestamp(30_000))
        );
        o.response_status = Some(500);
        assert_eq!(
            Next::after(&o, 1, &THREE, &p, Timestamp(0), 0.5),
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
