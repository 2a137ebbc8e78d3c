//! Pacing a webhook's deliveries to its `rate_limit_per_second`: a token bucket holding at most
//! one second's worth, so an idle webhook may take a short burst and a busy one gets a steady
//! rate. Deliveries over the limit wait for a token; none is ever dropped.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Pacer {
    tokens: f64,
    last: Instant,
    /// The limit last asked for (deliveries per second, at least 1).
    rate: u32,
}

impl Pacer {
    /// A bucket that has been idle: full.
    pub fn new(rate: u32, now: Instant) -> Self {
        Pacer {
            tokens: f64::from(rate.max(1)),
            last: now,
            rate: rate.max(1),
        }
    }

    /// Takes a token for one delivery now, or says when the next token will be there.
    /// `rate` is read on every call: a changed limit applies to deliveries leased after the
    /// change (a leased job keeps the webhook settings it was leased with).
    pub fn take(&mut self, rate: u32, now: Instant) -> Result<(), Instant> {
        self.rate = rate.max(1);
        let rate = f64::from(self.rate);
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    /// Whether the bucket has refilled completely, so forgetting it loses nothing.
    pub fn is_full(&mut self, now: Instant) -> bool {
        let rate = f64::from(self.rate);
        self.refill(rate, now);
        self.tokens >= rate
    }

    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_one_seconds_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::new(5, t0);
        for _ in 0..5 {
            assert_eq!(p.take(5, t0), Ok(()));
        }
        let next = p.take(5, t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(200));
        // At that instant a token is there, and only one.
        assert_eq!(p.take(5, next), Ok(()));
        assert!(p.take(5, next).is_err());
    }

    #[test]
    fn over_ten_seconds_at_most_rate_times_ten_plus_the_burst_pass() {
        let t0 = Instant::now();
        let mut p = Pacer::new(3, t0);
        let mut passed = 0;
        for ms in (0..10_000).step_by(10) {
            let now = t0 + Duration::from_millis(ms);
            while p.take(3, now).is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 3 + 3 * 10 - 1, "burst of 3, then 3/s for 9.99 s");
    }

    #[test]
    fn refills_to_full_and_reports_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(2, t0);
        assert_eq!(p.take(2, t0), Ok(()));
        assert!(!p.is_full(t0));
        assert!(p.is_full(t0 + Duration::from_millis(500)));
        // A rate of 0 is treated as 1, never as "never".
        let mut z = Pacer::new(0, t0);
        assert_eq!(z.take(0, t0), Ok(()));
        assert_eq!(z.take(0, t0).unwrap_err() - t0, Duration::from_secs(1));
    }
}
