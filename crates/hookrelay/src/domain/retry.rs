//! When to try again: exponential backoff with jitter and a cap, and what a receiver's
//! `Retry-After` may change about it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::time::Timestamp;

/// The most entries a webhook's `retry_schedule` may have.
pub const RETRY_SCHEDULE_MAX: usize = 20;

/// The name of the preset `retry_schedule` accepts as a string.
pub const STANDARD_PRESET: &str = "standard";

/// The `standard` preset: the example retry schedule of the Standard Webhooks specification
/// (v1.0.0, "Operational considerations › Deliverability and reliability": immediately, then
/// 5 seconds, 5 minutes, 30 minutes, 2 hours, 5 hours, 10 hours, 14 hours, 20 hours and
/// 24 hours, about 3 days in all). The first attempt is immediate; these are the delays before
/// each of the nine retries.
pub const STANDARD_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// How often, and when, a failed delivery is tried again: the webhook's choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retries {
    /// This many retries on the server's exponential backoff (`retry_count`).
    Backoff(u32),
    /// One retry after each delay, in order (`retry_schedule`); never empty.
    Schedule(Arc<[Duration]>),
}

impl Retries {
    /// How many retries follow the first attempt.
    pub fn count(&self) -> u32 {
        match self {
            Retries::Backoff(n) => *n,
            Retries::Schedule(delays) => u32::try_from(delays.len()).unwrap_or(u32::MAX),
        }
    }
}

/// Why a `retry_schedule` as a whole is refused; the text is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSchedule {
    #[error(
        "must be a list of durations such as [\"5s\", \"5m\", \"2h\"], or \"{STANDARD_PRESET}\""
    )]
    NotASchedule,
    #[error(
        "must have from 1 to {RETRY_SCHEDULE_MAX} entries (for no retries, set retry_count to 0)"
    )]
    Length,
    /// The preset waits longer than the server allows; the operator can raise the cap.
    #[error(
        "the {STANDARD_PRESET} schedule waits up to {longest} before a retry, longer than this \
         server's longest retry delay ({cap}); list the delays you want instead"
    )]
    PresetOverCap { longest: String, cap: String },
}

/// Why one entry of a `retry_schedule` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDelay {
    #[error("must be a string")]
    NotAString,
    #[error("must be a duration such as \"30s\", \"5m\" or \"2h\"")]
    NotADuration,
    #[error("must be more than zero")]
    Zero,
    #[error("must be at most {cap}, this server's longest retry delay")]
    OverCap { cap: String },
}

/// What is wrong with a `retry_schedule`: the whole value, or some of its entries (by index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleErrors {
    Whole(InvalidSchedule),
    Entries(Vec<(usize, InvalidDelay)>),
}

/// The form of a `retry_schedule` entry as the OpenAPI document states it (ECMA-262): whole
/// numbers of hours, minutes, seconds or milliseconds, space-separated (`"5m"`, `"1h 30m"`),
/// the form the API shows. The server reads more ([`parse_human`]: `"1 hour"`, `"2days"`);
/// a test checks that every string of this form is read.
pub const DELAY_PATTERN: &str = r"^[0-9]{1,7}(ms|s|m|h)( [0-9]{1,7}(ms|s|m|h))*$";

/// A duration as people write it (`"5m"`, `"1h 30m"`, `"250ms"`): the parser every duration
/// the server reads goes through (flags, the config file, `grace_period`).
pub fn parse_human(text: &str) -> Option<Duration> {
    humantime::parse_duration(text.trim()).ok()
}

/// A duration as the API shows it, in hours, minutes, seconds and milliseconds (`"5m"`,
/// `"1h 30m"`, `"24h"`, `"1s 500ms"`): a normal form that [`parse_human`] reads back. (Days
/// and months are left out: humantime's month is 30.44 days.)
pub fn format_human(d: Duration) -> String {
    let ms = d.as_millis();
    let parts = [
        (ms / 3_600_000, "h"),
        (ms / 60_000 % 60, "m"),
        (ms / 1000 % 60, "s"),
        (ms % 1000, "ms"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if shown.is_empty() {
        "0s".to_owned()
    } else {
        shown.join(" ")
    }
}

/// Reads a `retry_schedule`: a list of 1 to [`RETRY_SCHEDULE_MAX`] durations, each more than
/// zero and at most `max_delay` (the server's [`RetryPolicy::max_delay`], which no delay may
/// pass), or the preset name [`STANDARD_PRESET`]. The preset is held to the same cap: a
/// server whose cap is shorter refuses it rather than running a different schedule under its
/// name.
pub fn parse_schedule(value: &Value, max_delay: Duration) -> Result<Vec<Duration>, ScheduleErrors> {
    let cap = || format_human(max_delay);
    let items = match value {
        Value::String(s) if s.trim() == STANDARD_PRESET => {
            let longest = STANDARD_SCHEDULE.iter().max().copied().unwrap_or_default();
            if longest > max_delay {
                return Err(ScheduleErrors::Whole(InvalidSchedule::PresetOverCap {
                    longest: format_human(longest),
                    cap: cap(),
                }));
            }
            return Ok(STANDARD_SCHEDULE.to_vec());
        }
        Value::Array(items) => items,
        _ => return Err(ScheduleErrors::Whole(InvalidSchedule::NotASchedule)),
    };
    if items.is_empty() || items.len() > RETRY_SCHEDULE_MAX {
        return Err(ScheduleErrors::Whole(InvalidSchedule::Length));
    }
    let mut delays = Vec::with_capacity(items.len());
    let mut bad = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let delay = match item {
            Value::String(s) => parse_human(s).ok_or(InvalidDelay::NotADuration),
            _ => Err(InvalidDelay::NotAString),
        }
        .and_then(|d| match d {
            d if d.is_zero() => Err(InvalidDelay::Zero),
            d if d > max_delay => Err(InvalidDelay::OverCap { cap: cap() }),
            d => Ok(d),
        });
        match delay {
            Ok(d) => delays.push(d),
            Err(e) => bad.push((i, e)),
        }
    }
    if bad.is_empty() {
        Ok(delays)
    } else {
        Err(ScheduleErrors::Entries(bad))
    }
}

/// Why a retry policy is refused: the server does not start with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRetryPolicy {
    #[error("retry base must be more than zero")]
    ZeroBase,
    #[error("retry factor must be from 1 to 10")]
    Factor,
    #[error("retry max delay must be at least the base")]
    MaxDelayBelowBase,
    #[error("retry jitter must be from 0 to 1")]
    Jitter,
}

/// Server-wide retry timing. The number of retries is per webhook (`retry_count`), and so may
/// be every delay (`retry_schedule`, still jittered and capped here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub base: Duration,
    /// Each further retry waits this many times longer.
    pub factor: f64,
    /// No delay exceeds this, `Retry-After` included.
    pub max_delay: Duration,
    /// Fraction of the delay added or removed at random (0.1 = ±10 %), so receivers that
    /// failed together are not retried in lockstep.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            factor: 2.0,
            max_delay: Duration::from_secs(24 * 60 * 60),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `k` (1-based: the attempt after the first failure is retry 1),
    /// given a random `unit` in [0, 1) for the jitter.
    pub fn delay(&self, k: u32, unit: f64) -> Duration {
        let exponent = k.saturating_sub(1).min(64) as i32;
        self.spread(self.base.as_secs_f64() * self.factor.powi(exponent), unit)
    }

    /// The delay before retry `k` of a webhook's own schedule: its entry `k` (1-based), with
    /// the same jitter and cap as the backoff. Past the end, the last entry.
    pub fn scheduled_delay(&self, schedule: &[Duration], k: u32, unit: f64) -> Duration {
        let index = (k.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
        let nominal = schedule.get(index).copied().unwrap_or(self.base);
        self.spread(nominal.as_secs_f64(), unit)
    }

    /// The nominal delay with the jitter, within 0 and the cap.
    fn spread(&self, nominal: f64, unit: f64) -> Duration {
        let jittered = nominal * (1.0 + self.jitter * (2.0 * unit - 1.0));
        Duration::from_secs_f64(jittered.clamp(0.0, self.max_delay.as_secs_f64()))
    }

    /// The delay after a failed attempt, honouring the receiver's `Retry-After` (only sent
    /// meaningfully with 429 and 503) when it asks for longer, never beyond the cap.
    pub fn delay_after(&self, k: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        self.longer_of(self.delay(k, unit), retry_after)
    }

    /// [`RetryPolicy::delay_after`] for a webhook's `retries`: its schedule's entry, or the
    /// backoff.
    pub fn delay_for(
        &self,
        retries: &Retries,
        k: u32,
        unit: f64,
        retry_after: Option<Duration>,
    ) -> Duration {
        let planned = match retries {
            Retries::Backoff(_) => self.delay(k, unit),
            Retries::Schedule(delays) => self.scheduled_delay(delays, k, unit),
        };
        self.longer_of(planned, retry_after)
    }

    fn longer_of(&self, planned: Duration, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked.max(planned).min(self.max_delay),
            None => planned,
        }
    }

    /// Checks what the types cannot (a NaN factor or jitter is refused too).
    pub fn validate(&self) -> Result<(), BadRetryPolicy> {
        if self.base.is_zero() {
            return Err(BadRetryPolicy::ZeroBase);
        }
        if !(1.0..=10.0).contains(&self.factor) {
            return Err(BadRetryPolicy::Factor);
        }
        if self.max_delay < self.base {
            return Err(BadRetryPolicy::MaxDelayBelowBase);
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(BadRetryPolicy::Jitter);
        }
        Ok(())
    }
}

/// Reads a `Retry-After` value: delay-seconds or an HTTP date. Garbage, negative values and
/// dates in the past give `None` (the normal backoff applies); absurd values are left to the
/// policy's cap.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(10 * 365 * 24 * 3600)));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let at = date.duration_since(std::time::UNIX_EPOCH).ok()?;
    let at_ms = i64::try_from(at.as_millis()).ok()?;
    let wait = at_ms.checked_sub(now.millis())?;
    (wait > 0).then(|| Duration::from_millis(wait as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_jitter() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    #[test]
    fn validation_names_the_broken_rule() {
        assert_eq!(RetryPolicy::default().validate(), Ok(()));
        let with = |change: fn(&mut RetryPolicy)| {
            let mut p = RetryPolicy::default();
            change(&mut p);
            p.validate()
        };
        assert_eq!(
            with(|p| p.base = Duration::ZERO),
            Err(BadRetryPolicy::ZeroBase)
        );
        assert_eq!(with(|p| p.factor = 0.5), Err(BadRetryPolicy::Factor));
        assert_eq!(with(|p| p.factor = f64::NAN), Err(BadRetryPolicy::Factor));
        assert_eq!(with(|p| p.factor = 11.0), Err(BadRetryPolicy::Factor));
        assert_eq!(
            with(|p| p.max_delay = Duration::from_millis(500)),
            Err(BadRetryPolicy::MaxDelayBelowBase)
        );
        assert_eq!(with(|p| p.jitter = 1.5), Err(BadRetryPolicy::Jitter));
        assert_eq!(with(|p| p.jitter = -0.1), Err(BadRetryPolicy::Jitter));
        assert_eq!(with(|p| p.jitter = 1.0), Ok(()));
        assert_eq!(
            BadRetryPolicy::Factor.to_string(),
            "retry factor must be from 1 to 10"
        );
    }

    #[test]
    fn doubles_from_one_second() {
        let p = no_jitter();
        let delays: Vec<u64> = (1..=5).map(|k| p.delay(k, 0.5).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16]);
    }

    #[test]
    fn caps_and_never_overflows() {
        let p = RetryPolicy {
            max_delay: Duration::from_secs(10),
            ..no_jitter()
        };
        assert_eq!(p.delay(5, 0.5), Duration::from_secs(10));
        assert_eq!(p.delay(u32::MAX, 0.5), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(2, 0.0), Duration::from_secs_f64(1.8));
        assert_eq!(p.delay(2, 1.0), Duration::from_secs_f64(2.2));
        assert_eq!(p.delay(2, 0.5), Duration::from_secs(2));
    }

    #[test]
    fn retry_after_lengthens_but_never_past_the_cap() {
        let p = no_jitter();
        let long = Some(Duration::from_secs(30));
        assert_eq!(p.delay_after(1, 0.5, long), Duration::from_secs(30));
        assert_eq!(
            p.delay_after(3, 0.5, Some(Duration::from_secs(1))),
            Duration::from_secs(4)
        );
        let decade = Some(Duration::from_secs(10 * 365 * 24 * 3600));
        assert_eq!(p.delay_after(1, 0.5, decade), p.max_delay);
    }

    #[test]
    fn parses_retry_after_forms() {
        let now = Timestamp(1_445_412_480_000); // Wed, 21 Oct 2015 07:28:00 GMT
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            None
        );
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert!(parse_retry_after("99999999999999999999", now).is_none());
    }

    #[test]
    fn human_durations_round_trip_in_their_normal_form() {
        for (text, normal) in [
            ("5s", "5s"),
            ("300s", "5m"),
            ("90m", "1h 30m"),
            ("1day", "24h"),
            ("1500ms", "1s 500ms"),
            (" 2h ", "2h"),
            ("0s", "0s"),
        ] {
            let d = parse_human(text).expect(text);
            assert_eq!(format_human(d), normal, "{text}");
            assert_eq!(parse_human(normal), Some(d), "{normal}");
        }
        assert_eq!(parse_human("soon"), None);
        assert_eq!(parse_human("-5s"), None);
    }

    #[test]
    fn a_default_server_offers_the_standard_preset() {
        let cap = RetryPolicy::default().max_delay;
        assert_eq!(
            parse_schedule(&serde_json::json!(STANDARD_PRESET), cap).ok(),
            Some(STANDARD_SCHEDULE.to_vec())
        );
        // The default backoff (at most 10 retries from 1 s) stays under the raised cap.
        let longest =
            RetryPolicy::default().base * 2u32.pow(crate::domain::webhook::RETRY_COUNT_MAX as u32);
        assert!(longest < cap, "{longest:?}");
    }

    #[test]
    fn the_standard_preset_is_the_specifications_example() {
        // Standard Webhooks v1.0.0: time since start 00:00:05, 00:05:05, 00:35:05, 02:35:05,
        // 07:35:05, 17:35:05, 31:35:05, 51:35:05, 75:35:05.
        let mut since_start = Duration::ZERO;
        let offsets: Vec<u64> = STANDARD_SCHEDULE
            .iter()
            .map(|d| {
                since_start += *d;
                since_start.as_secs()
            })
            .collect();
        let hms = |h: u64, m: u64, s: u64| h * 3600 + m * 60 + s;
        assert_eq!(
            offsets,
            [
                hms(0, 0, 5),
                hms(0, 5, 5),
                hms(0, 35, 5),
                hms(2, 35, 5),
                hms(7, 35, 5),
                hms(17, 35, 5),
                hms(31, 35, 5),
                hms(51, 35, 5),
                hms(75, 35, 5)
            ]
        );
        let day = Duration::from_secs(24 * 3600);
        let read = |v: serde_json::Value, cap| parse_schedule(&v, cap);
        assert_eq!(
            read(serde_json::json!("standard"), day),
            Ok(STANDARD_SCHEDULE.to_vec())
        );
        assert!(matches!(
            read(serde_json::json!("standard"), day - Duration::from_secs(1)),
            Err(ScheduleErrors::Whole(InvalidSchedule::PresetOverCap { .. }))
        ));
        assert_eq!(STANDARD_SCHEDULE.len(), 9);
        assert!(STANDARD_SCHEDULE.len() <= RETRY_SCHEDULE_MAX);
    }

    #[test]
    fn every_delay_of_the_documented_form_is_read() {
        let pattern = regex::Regex::new(DELAY_PATTERN).expect("DELAY_PATTERN compiles");
        for text in [
            "5s",
            "250ms",
            "1h 30m",
            "24h",
            "9999999ms",
            "1h 2m 3s 4ms",
            "0s",
            "10m",
        ] {
            assert!(pattern.is_match(text), "{text}");
            assert!(parse_human(text).is_some(), "{text}");
        }
        for text in ["", "5", "5 s", "1h  30m", " 5s", "5d", "-5s", "5S"] {
            assert!(!pattern.is_match(text), "{text}");
        }
        // What the API shows is of the form.
        for secs in [1, 59, 60, 61, 3599, 3600, 5400, 86_400, 900_000] {
            let shown = format_human(Duration::from_secs(secs));
            assert!(pattern.is_match(&shown), "{shown}");
        }
        assert!(pattern.is_match(&format_human(Duration::from_millis(1500))));
    }

    #[test]
    fn schedule_rules() {
        let cap = Duration::from_secs(3600);
        let read = |v: serde_json::Value| parse_schedule(&v, cap);
        let twenty: Vec<String> = (1..=20).map(|i| format!("{i}m")).collect();
        assert_eq!(read(serde_json::json!(twenty)).map(|s| s.len()), Ok(20));
        let more: Vec<String> = (1..=21).map(|i| format!("{i}s")).collect();
        assert_eq!(
            read(serde_json::json!(more)),
            Err(ScheduleErrors::Whole(InvalidSchedule::Length))
        );
        assert_eq!(
            read(serde_json::json!([])),
            Err(ScheduleErrors::Whole(InvalidSchedule::Length))
        );
        assert_eq!(
            read(serde_json::json!(["1h", "0ms", "1h 1s", "x", null])),
            Err(ScheduleErrors::Entries(vec![
                (1, InvalidDelay::Zero),
                (2, InvalidDelay::OverCap { cap: "1h".into() }),
                (3, InvalidDelay::NotADuration),
                (4, InvalidDelay::NotAString),
            ]))
        );
        assert_eq!(
            read(serde_json::json!("Standard")),
            Err(ScheduleErrors::Whole(InvalidSchedule::NotASchedule))
        );
    }

    #[test]
    fn scheduled_delays_take_the_entry_with_jitter() {
        let p = RetryPolicy::default();
        let plan = [Duration::from_secs(10), Duration::from_secs(100)];
        assert_eq!(p.scheduled_delay(&plan, 1, 0.5), Duration::from_secs(10));
        assert_eq!(p.scheduled_delay(&plan, 2, 0.0), Duration::from_secs(90));
        assert_eq!(p.scheduled_delay(&plan, 2, 1.0), Duration::from_secs(110));
        // Past the end (never asked by the engine): the last entry.
        assert_eq!(p.scheduled_delay(&plan, 9, 0.5), Duration::from_secs(100));
        let retries = Retries::Schedule(plan.into());
        assert_eq!(retries.count(), 2);
        assert_eq!(
            p.delay_for(&retries, 1, 0.5, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            p.delay_for(&Retries::Backoff(3), 2, 0.5, None),
            p.delay(2, 0.5)
        );
    }

    #[test]
    fn validation() {
        assert!(RetryPolicy::default().validate().is_ok());
        assert!(
            RetryPolicy {
                factor: 0.5,
                ..RetryPolicy::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            RetryPolicy {
                base: Duration::ZERO,
                ..RetryPolicy::default()
            }
            .validate()
            .is_err()
        );
    }
}
