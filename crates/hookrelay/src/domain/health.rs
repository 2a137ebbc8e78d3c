//! Endpoint health: the pure rule that turns a webhook's attempts into `active`, `failing` or
//! `disabled`. It takes the time as an argument, so days of failure are simulated in unit
//! tests without a clock or a database; the store applies it where attempts are recorded, in
//! the same transaction (`store/record.rs`).
//!
//! What is stored are facts (whether the webhook is switched on, why and when it was switched
//! off, when the current streak of failures began and how long it is, when it was marked
//! failing); the status shown is derived from them ([`Health::status`]), never stored.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::delivery::AttemptOutcome;
use super::time::Timestamp;

/// The status a receiver answers to say the endpoint is gone for good: the webhook is
/// disabled at once.
pub const GONE: u16 = 410;

/// Server defaults: `--failing-after`, `--disable-after`, `--disable-min-attempts`.
pub const DEFAULT_FAILING_AFTER: u32 = 3;
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 3600);
pub const DEFAULT_DISABLE_MIN_ATTEMPTS: u32 = 20;
/// The longest `disable_after` a webhook may ask for.
pub const MAX_DISABLE_AFTER: Duration = Duration::from_secs(90 * 24 * 3600);
/// The shortest: anything less would disable on a short outage.
pub const MIN_DISABLE_AFTER: Duration = Duration::from_secs(60);

/// Where a webhook stands, as shown to its tenant; derived by [`Health::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    /// Receiving deliveries.
    Active,
    /// Receiving deliveries, but its last `failing_after` deliveries (at least) all failed.
    Failing,
    /// Receives nothing; pending deliveries are held until it is enabled again.
    Disabled,
}

impl WebhookStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Active => "active",
            WebhookStatus::Failing => "failing",
            WebhookStatus::Disabled => "disabled",
        }
    }
}

/// Why a webhook is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// Its tenant (or the operator) switched it off.
    Manual,
    /// The receiver answered 410 Gone.
    Gone,
    /// Its deliveries failed continuously for `disable_after`.
    Failing,
}

impl DisabledReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisabledReason::Manual => "manual",
            DisabledReason::Gone => "gone",
            DisabledReason::Failing => "failing",
        }
    }

    /// A stored reason; anything unknown (or none, on a webhook switched off before health
    /// was tracked) reads as `manual`.
    pub fn from_stored(s: Option<&str>) -> Self {
        match s {
            Some("gone") => DisabledReason::Gone,
            Some("failing") => DisabledReason::Failing,
            _ => DisabledReason::Manual,
        }
    }

    /// Disabled by health rather than by a person: events accepted meanwhile are held for it,
    /// since nobody chose to stop them (see `docs/recovery.md`).
    pub fn holds_new_events(self) -> bool {
        !matches!(self, DisabledReason::Manual)
    }
}

/// A webhook's own `disable_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisableAfter {
    /// The server's `--disable-after`.
    #[default]
    Server,
    /// Never disabled for failing (a 410 still disables).
    Off,
    After(Duration),
}

impl DisableAfter {
    /// Stored as milliseconds: NULL the server's, 0 off.
    pub fn from_stored(ms: Option<i64>) -> Self {
        match ms {
            None => DisableAfter::Server,
            Some(ms) if ms <= 0 => DisableAfter::Off,
            Some(ms) => DisableAfter::After(Duration::from_millis(ms.unsigned_abs())),
        }
    }

    pub fn to_stored(self) -> Option<i64> {
        match self {
            DisableAfter::Server => None,
            DisableAfter::Off => Some(0),
            DisableAfter::After(d) => Some(d.as_millis().min(i64::MAX as u128) as i64),
        }
    }

    /// As the API shows it: `null` (the server's), `"off"`, or a duration in the largest
    /// whole unit (`"5d"`, `"36h"`, `"90m"`), which [`DisableAfter::parse`] reads back.
    pub fn to_json(self) -> Value {
        match self {
            DisableAfter::Server => Value::Null,
            DisableAfter::Off => Value::from("off"),
            DisableAfter::After(d) => Value::from(compact(d)),
        }
    }

    /// `null` (the server's default), `"off"`, or a human duration (`"5d"`, `"36h"`).
    pub fn parse(v: &Value) -> Result<Self, InvalidDisableAfter> {
        match v {
            Value::Null => Ok(DisableAfter::Server),
            Value::String(s) if s.trim() == "off" => Ok(DisableAfter::Off),
            Value::String(s) => match humantime::parse_duration(s.trim()) {
                Ok(d) if d < MIN_DISABLE_AFTER => Err(InvalidDisableAfter::TooShort),
                Ok(d) if d > MAX_DISABLE_AFTER => Err(InvalidDisableAfter::TooLong),
                Ok(d) => Ok(DisableAfter::After(d)),
                Err(_) => Err(InvalidDisableAfter::NotADuration),
            },
            _ => Err(InvalidDisableAfter::NotADuration),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDisableAfter {
    #[error("must be \"off\", null or a duration such as \"5d\" or \"36h\"")]
    NotADuration,
    #[error("must be at least 1 minute")]
    TooShort,
    #[error("must be at most 90 days")]
    TooLong,
}

/// The server's health settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthRules {
    /// Consecutive failed deliveries after which a webhook is `failing`; 0: never.
    pub failing_after: u32,
    /// How long deliveries must fail continuously to disable a webhook; `None`: never.
    pub disable_after: Option<Duration>,
    /// Failed attempts the streak must also hold before it disables, so that a rare failure
    /// spread over days never does.
    pub disable_min_attempts: u32,
}

impl Default for HealthRules {
    fn default() -> Self {
        HealthRules {
            failing_after: DEFAULT_FAILING_AFTER,
            disable_after: Some(DEFAULT_DISABLE_AFTER),
            disable_min_attempts: DEFAULT_DISABLE_MIN_ATTEMPTS,
        }
    }
}

/// Failed attempts with no success between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    /// The first failed attempt after the last success.
    pub started_at: Timestamp,
    pub failed_attempts: i64,
    /// Deliveries whose retries ran out during the streak.
    pub failed_deliveries: i64,
}

/// A webhook's health, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    pub is_active: bool,
    /// Why and when it was switched off (`None` while active).
    pub disabled: Option<(DisabledReason, Timestamp)>,
    pub streak: Option<Streak>,
    /// When the streak made it `failing` (`None`: not failing).
    pub failing_since: Option<Timestamp>,
    pub disable_after: DisableAfter,
}

/// One recorded attempt, as health sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Succeeded,
    Failed {
        /// The receiver answered 410 Gone.
        gone: bool,
        /// The delivery's retries ran out with it.
        exhausted: bool,
    },
}

impl Observed {
    pub fn of(outcome: &AttemptOutcome, exhausted: bool) -> Self {
        if outcome.is_success() {
            Observed::Succeeded
        } else {
            Observed::Failed {
                gone: is_gone(outcome),
                exhausted,
            }
        }
    }
}

/// Whether the receiver said the endpoint is gone for good.
pub fn is_gone(outcome: &AttemptOutcome) -> bool {
    outcome.error.is_none() && outcome.response_status == Some(GONE)
}

/// A change of status worth telling the operator about (an operational event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Became `failing`.
    Failing,
    /// Disabled by health, for this reason.
    Disabled(DisabledReason),
    /// Was `failing`, and a delivery succeeded: `active` again.
    Recovered,
}

impl Health {
    /// Where the webhook stands.
    pub fn status(&self) -> WebhookStatus {
        if !self.is_active {
            WebhookStatus::Disabled
        } else if self.failing_since.is_some() {
            WebhookStatus::Failing
        } else {
            WebhookStatus::Active
        }
    }

    /// Why it is disabled, if it is.
    pub fn disabled_reason(&self) -> Option<DisabledReason> {
        (!self.is_active).then(|| self.disabled.map_or(DisabledReason::Manual, |(r, _)| r))
    }

    /// Takes one recorded attempt made at `at`; answers the transition it caused, if any.
    /// Attempts recorded while the webhook is disabled (ones in flight when it was) change
    /// nothing: it stays as it was left until someone enables it.
    pub fn observe(
        &mut self,
        observed: Observed,
        at: Timestamp,
        rules: &HealthRules,
    ) -> Option<Transition> {
        if !self.is_active {
            return None;
        }
        let (gone, exhausted) = match observed {
            Observed::Succeeded => {
                self.streak = None;
                return self.failing_since.take().map(|_| Transition::Recovered);
            }
            Observed::Failed { gone, exhausted } => (gone, exhausted),
        };
        let streak = self.streak.get_or_insert(Streak {
            started_at: at,
            failed_attempts: 0,
            failed_deliveries: 0,
        });
        streak.failed_attempts += 1;
        streak.failed_deliveries += i64::from(exhausted);
        let streak = *streak;
        if gone {
            self.disable(DisabledReason::Gone, at);
            return Some(Transition::Disabled(DisabledReason::Gone));
        }
        if let Some(after) = self.disable_after_of(rules)
            && streak.failed_attempts >= i64::from(rules.disable_min_attempts)
            && at.millis() - streak.started_at.millis() >= millis(after)
        {
            self.disable(DisabledReason::Failing, at);
            return Some(Transition::Disabled(DisabledReason::Failing));
        }
        if self.failing_since.is_none()
            && rules.failing_after > 0
            && streak.failed_deliveries >= i64::from(rules.failing_after)
        {
            self.failing_since = Some(at);
            return Some(Transition::Failing);
        }
        None
    }

    /// The `disable_after` that applies to this webhook.
    pub fn disable_after_of(&self, rules: &HealthRules) -> Option<Duration> {
        match self.disable_after {
            DisableAfter::Server => rules.disable_after,
            DisableAfter::Off => None,
            DisableAfter::After(d) => Some(d),
        }
    }

    /// Switches it off; the streak is kept, for the record, until it is enabled.
    pub fn disable(&mut self, reason: DisabledReason, at: Timestamp) {
        if self.is_active {
            self.is_active = false;
            self.disabled = Some((reason, at));
        }
    }

    /// Switches it on with a clean slate: no streak, not failing.
    pub fn enable(&mut self) {
        if !self.is_active {
            self.is_active = true;
            self.disabled = None;
            self.streak = None;
            self.failing_since = None;
        }
    }
}

/// `d` in days, hours or minutes, whichever is the largest whole unit (seconds, if none).
pub fn compact(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s > 0 && s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s > 0 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s > 0 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

fn millis(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOUR: i64 = 3600 * 1000;
    const DAY: i64 = 24 * HOUR;

    fn active() -> Health {
        Health {
            is_active: true,
            ..Health::default()
        }
    }

    fn failed() -> Observed {
        Observed::Failed {
            gone: false,
            exhausted: false,
        }
    }

    fn exhausted() -> Observed {
        Observed::Failed {
            gone: false,
            exhausted: true,
        }
    }

    #[test]
    fn five_days_of_continuous_failure_disables() {
        let rules = HealthRules::default();
        let mut h = active();
        let mut disabled_at = None;
        // A failed attempt every hour, from t = 0, for a week.
        for hour in 0..(7 * 24) {
            let at = Timestamp(hour * HOUR);
            if let Some(Transition::Disabled(reason)) = h.observe(exhausted(), at, &rules) {
                assert_eq!(reason, DisabledReason::Failing);
                disabled_at = Some(at);
                break;
            }
        }
        assert_eq!(disabled_at, Some(Timestamp(5 * DAY)));
        assert_eq!(h.status(), WebhookStatus::Disabled);
        assert_eq!(h.disabled_reason(), Some(DisabledReason::Failing));
        assert_eq!(
            h.disabled,
            Some((DisabledReason::Failing, Timestamp(5 * DAY)))
        );
        // Nothing recorded afterwards changes it.
        assert_eq!(
            h.observe(Observed::Succeeded, Timestamp(6 * DAY), &rules),
            None
        );
        assert_eq!(h.status(), WebhookStatus::Disabled);
    }

    #[test]
    fn failures_with_successes_between_them_never_disable() {
        let rules = HealthRules::default();
        let mut h = active();
        // Thirty days of failing every hour, but one success a day.
        for hour in 0..(30 * 24) {
            let observed = if hour % 24 == 23 {
                Observed::Succeeded
            } else {
                exhausted()
            };
            let t = h.observe(observed, Timestamp(hour * HOUR), &rules);
            assert!(!matches!(t, Some(Transition::Disabled(_))), "hour {hour}");
        }
        assert!(h.is_active);
    }

    #[test]
    fn one_failure_a_day_does_not_disable_below_the_minimum_of_attempts() {
        // One failed attempt a day (a quiet webhook): the streak spans far more than five
        // days, but holds fewer failed attempts than the minimum, so nothing is disabled.
        let rules = HealthRules::default();
        let mut h = active();
        for day in 0..i64::from(rules.disable_min_attempts - 1) {
            let t = h.observe(failed(), Timestamp(day * DAY), &rules);
            assert!(!matches!(t, Some(Transition::Disabled(_))), "day {day}");
        }
        assert!(h.is_active);
    }

    #[test]
    fn the_minimum_number_of_attempts_is_needed_as_well_as_the_time() {
        let rules = HealthRules {
            disable_min_attempts: 5,
            ..HealthRules::default()
        };
        let mut h = active();
        // Four failures over ten days: long enough, too few.
        for (i, day) in [0, 3, 6, 10].into_iter().enumerate() {
            let t = h.observe(failed(), Timestamp(day * DAY), &rules);
            assert_eq!(t, None, "failure {i}");
        }
        // The fifth reaches the minimum, past the time: disabled.
        let t = h.observe(failed(), Timestamp(11 * DAY), &rules);
        assert_eq!(t, Some(Transition::Disabled(DisabledReason::Failing)));
    }

    #[test]
    fn gone_disables_at_once() {
        let rules = HealthRules::default();
        let mut h = active();
        let gone = Observed::Failed {
            gone: true,
            exhausted: false,
        };
        assert_eq!(
            h.observe(gone, Timestamp(7), &rules),
            Some(Transition::Disabled(DisabledReason::Gone))
        );
        assert_eq!(h.status(), WebhookStatus::Disabled);
        assert_eq!(h.disabled, Some((DisabledReason::Gone, Timestamp(7))));
        // Off for disable_after does not matter to a 410.
        let mut h = Health {
            disable_after: DisableAfter::Off,
            ..active()
        };
        assert!(h.observe(gone, Timestamp(7), &rules).is_some());
        let outcome = AttemptOutcome {
            response_status: Some(410),
            ..AttemptOutcome::default()
        };
        assert_eq!(Observed::of(&outcome, false), gone);
    }

    #[test]
    fn failing_after_consecutive_failed_deliveries_and_recovered_on_success() {
        let rules = HealthRules::default();
        let mut h = active();
        assert_eq!(h.observe(failed(), Timestamp(0), &rules), None);
        assert_eq!(h.observe(exhausted(), Timestamp(1), &rules), None);
        assert_eq!(h.observe(exhausted(), Timestamp(2), &rules), None);
        assert_eq!(h.status(), WebhookStatus::Active);
        assert_eq!(
            h.observe(exhausted(), Timestamp(3), &rules),
            Some(Transition::Failing)
        );
        assert_eq!(h.status(), WebhookStatus::Failing);
        assert_eq!(h.observe(exhausted(), Timestamp(4), &rules), None);
        assert_eq!(
            h.observe(Observed::Succeeded, Timestamp(5), &rules),
            Some(Transition::Recovered)
        );
        assert_eq!(h.status(), WebhookStatus::Active);
        assert_eq!(h.streak, None);
        assert_eq!(h.observe(Observed::Succeeded, Timestamp(6), &rules), None);
    }

    #[test]
    fn a_webhooks_own_disable_after_overrides_the_servers() {
        let rules = HealthRules {
            disable_min_attempts: 1,
            ..HealthRules::default()
        };
        let mut h = Health {
            disable_after: DisableAfter::Off,
            ..active()
        };
        for day in 0..100 {
            assert!(!matches!(
                h.observe(failed(), Timestamp(day * DAY), &rules),
                Some(Transition::Disabled(_))
            ));
        }
        let mut h = Health {
            disable_after: DisableAfter::After(Duration::from_secs(3600)),
            ..active()
        };
        assert_eq!(h.observe(failed(), Timestamp(0), &rules), None);
        assert_eq!(
            h.observe(failed(), Timestamp(HOUR), &rules),
            Some(Transition::Disabled(DisabledReason::Failing))
        );
    }

    #[test]
    fn enabling_clears_the_streak() {
        let rules = HealthRules::default();
        let mut h = active();
        h.observe(exhausted(), Timestamp(0), &rules);
        h.disable(DisabledReason::Manual, Timestamp(1));
        assert_eq!(h.disabled_reason(), Some(DisabledReason::Manual));
        h.enable();
        assert_eq!(h, active());
    }

    #[test]
    fn disable_after_input() {
        assert_eq!(DisableAfter::parse(&json!("off")), Ok(DisableAfter::Off));
        assert_eq!(DisableAfter::parse(&json!(null)), Ok(DisableAfter::Server));
        assert_eq!(
            DisableAfter::parse(&json!("2d")),
            Ok(DisableAfter::After(Duration::from_secs(2 * 24 * 3600)))
        );
        assert_eq!(
            DisableAfter::parse(&json!("5s")),
            Err(InvalidDisableAfter::TooShort)
        );
        assert_eq!(
            DisableAfter::parse(&json!("100d")),
            Err(InvalidDisableAfter::TooLong)
        );
        assert_eq!(
            DisableAfter::parse(&json!(5)),
            Err(InvalidDisableAfter::NotADuration)
        );
        for v in [
            DisableAfter::Server,
            DisableAfter::Off,
            DisableAfter::After(Duration::from_secs(7200)),
        ] {
            assert_eq!(DisableAfter::from_stored(v.to_stored()), v);
            assert_eq!(DisableAfter::parse(&v.to_json()), Ok(v));
        }
    }
}
