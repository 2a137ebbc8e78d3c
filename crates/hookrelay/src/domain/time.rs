//! Timestamps: stored as Unix milliseconds, shown as RFC 3339 UTC with millisecond precision.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Serialize, Serializer};

/// A point in time, in milliseconds since the Unix epoch (UTC).
///
/// Milliseconds keep the column an integer on every backend, sort correctly, and are precise
/// enough for attempt scheduling and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 timestamp (any offset), as accepted in query filters.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }

    pub fn to_rfc3339(self) -> String {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
            // Out of chrono's range: cannot come from our own clock; show the raw value.
            None => self.0.to_string(),
        }
    }

    pub fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_rfc3339_utc_millis() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_764_338_290_123).to_rfc3339(),
            "2025-11-28T13:58:10.123Z"
        );
    }

    #[test]
    fn parses_any_offset() {
        let t = Timestamp::parse_rfc3339("2025-11-28T14:58:10.123+01:00");
        assert_eq!(t, Some(Timestamp(1_764_338_290_123)));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
