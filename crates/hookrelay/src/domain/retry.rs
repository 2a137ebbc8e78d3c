//! When to try again: exponential backoff with jitter and a cap, and what a receiver's
//! `Retry-After` may change about it.

use std::time::Duration;

use super::time::Timestamp;

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

/// Server-wide retry timing. The number of retries is per webhook (`retry_count`).
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
            max_delay: Duration::from_secs(60 * 60),
            jitter: 0.1,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry `k` (1-based: the attempt after the first failure is retry 1),
    /// given a random `unit` in [0, 1) for the jitter.
    pub fn delay(&self, k: u32, unit: f64) -> Duration {
        let exponent = k.saturating_sub(1).min(64) as i32;
        let nominal = self.base.as_secs_f64() * self.factor.powi(exponent);
        let jittered = nominal * (1.0 + self.jitter * (2.0 * unit - 1.0));
        let capped = jittered.clamp(0.0, self.max_delay.as_secs_f64());
        Duration::from_secs_f64(capped)
    }

    /// The delay after a failed attempt, honouring the receiver's `Retry-After` (only sent
    /// meaningfully with 429 and 503) when it asks for longer, never beyond the cap.
    pub fn delay_after(&self, k: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let backoff = self.delay(k, unit);
        match retry_after {
            Some(asked) => asked.max(backoff).min(self.max_delay),
            None => backoff,
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
