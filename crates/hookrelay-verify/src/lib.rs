//! Sign and verify hookrelay webhook deliveries.
//!
//! hookrelay signs every delivery according to the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification, the
//! same scheme Svix uses. Each request carries three headers:
//!
//! * `webhook-id`: the unique message id,
//! * `webhook-timestamp`: when the message was sent, in seconds since the Unix epoch,
//! * `webhook-signature`: one or more space-separated signatures, each
//!   `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`.
//!
//! When a secret is being rotated, the sender signs with both the old and the new
//! secret, so the header holds two `v1` entries. A request is accepted if **any**
//! `v1` entry matches. Entries with other version prefixes are ignored.
//!
//! Signing secrets look like `whsec_<base64 of the key bytes>`. [`Secret::parse`]
//! accepts them with or without the `whsec_` prefix.
//!
//! # Verifying a delivery
//!
//! Pass the request headers, the **raw** body bytes (before any JSON parsing) and
//! a tolerance for the timestamp to [`verify`]:
//!
//! ```
//! use std::collections::HashMap;
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//!
//! use hookrelay_verify::{Error, Secret, sign, verify};
//!
//! /// Called by your web framework for every incoming webhook request.
//! fn handle_webhook(
//!     secret: &Secret,
//!     headers: &HashMap<String, String>,
//!     body: &[u8],
//! ) -> Result<(), Error> {
//!     // Header names are matched case-insensitively.
//!     verify(secret, headers, body, Duration::from_secs(5 * 60))?;
//!     // The signature is valid and the timestamp is fresh: now parse `body`
//!     // and process the event.
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Error> {
//!     // The endpoint's signing secret, as shown by hookrelay.
//!     let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
//!
//!     // Build a request the way hookrelay would deliver it.
//!     let body = br#"{"type":"invoice.paid","id":"inv_123"}"#;
//!     let now = SystemTime::now()
//!         .duration_since(UNIX_EPOCH)
//!         .map_or(0, |d| d.as_secs() as i64);
//!     let mut headers = HashMap::new();
//!     headers.insert("Webhook-Id".to_owned(), "msg_2bQ8cLw0".to_owned());
//!     headers.insert("Webhook-Timestamp".to_owned(), now.to_string());
//!     headers.insert(
//!         "Webhook-Signature".to_owned(),
//!         sign(&secret, "msg_2bQ8cLw0", now, body),
//!     );
//!
//!     assert_eq!(handle_webhook(&secret, &headers, body), Ok(()));
//!     assert_eq!(
//!         handle_webhook(&secret, &headers, br#"{"type":"invoice.paid","id":"inv_999"}"#),
//!         Err(Error::NoMatchingSignature),
//!     );
//!     Ok(())
//! }
//! ```
//!
//! # Passing headers
//!
//! [`verify`] takes anything that implements [`HeaderLookup`]. Implementations
//! are provided for slices, arrays and `Vec`s of `(name, value)` pairs and for
//! `HashMap`/`BTreeMap` (keys and values may be `String` or `&str`); all of them
//! match names case-insensitively. With the `http` crate, for example, collect the
//! headers you have into pairs:
//!
//! ```text
//! let pairs: Vec<(&str, &str)> = request
//!     .headers()
//!     .iter()
//!     .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
//!     .collect();
//! verify(&secret, &pairs, &body, tolerance)?;
//! ```
//!
//! or implement [`HeaderLookup`] for a newtype around your framework's header map.
//!
//! Any Standard Webhooks library (for example the official `standardwebhooks`
//! packages or Svix's libraries) can verify hookrelay deliveries as well.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Name of the header carrying the message id.
pub const HEADER_ID: &str = "webhook-id";
/// Name of the header carrying the Unix timestamp (seconds) of the attempt.
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
/// Name of the header carrying the space-separated signatures.
pub const HEADER_SIGNATURE: &str = "webhook-signature";

/// The timestamp tolerance recommended by the Standard Webhooks specification (5 minutes).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

const SECRET_PREFIX: &str = "whsec_";
const V1_PREFIX: &str = "v1,";
/// Length of `v1,` followed by the padded base64 encoding of a 32-byte tag.
const V1_SIGNATURE_LEN: usize = V1_PREFIX.len() + 44;

type HmacSha256 = Hmac<Sha256>;

/// A webhook signing secret (the HMAC-SHA256 key).
///
/// The `Debug` output never contains the key.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    /// HMAC state with the key already absorbed, cloned for every signature.
    mac: HmacSha256,
}

impl Secret {
    /// Parses a secret in the `whsec_<base64>` format.
    ///
    /// The `whsec_` prefix is optional, and surrounding whitespace (such as a
    /// trailing newline from a file or environment variable) is ignored. The rest
    /// must be standard, padded base64 of a non-empty key.
    pub fn parse(secret: &str) -> Result<Secret, Error> {
        let secret = secret.trim();
        let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        match STANDARD.decode(encoded) {
            Ok(key) if !key.is_empty() => Ok(Secret::from_bytes(&key)),
            _ => Err(Error::InvalidSecret),
        }
    }

    /// Creates a secret from raw key bytes.
    pub fn from_bytes(key: &[u8]) -> Secret {
        // HMAC is defined for keys of any length, so this never fails.
        let mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
        Secret {
            key: key.to_vec(),
            mac,
        }
    }

    /// Returns the secret in the `whsec_<base64>` format, as shown to endpoint owners.
    pub fn to_whsec(&self) -> String {
        let mut out = String::with_capacity(SECRET_PREFIX.len() + self.key.len().div_ceil(3) * 4);
        out.push_str(SECRET_PREFIX);
        STANDARD.encode_string(&self.key, &mut out);
        out
    }

    /// Computes the raw HMAC-SHA256 tag over `<msg_id>.<timestamp>.<body>`.
    fn tag(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        // Format the timestamp straight into the MAC, without allocating.
        // Writing to `MacWriter` is infallible.
        let _ = fmt::Write::write_fmt(&mut MacWriter(&mut mac), format_args!("{timestamp}"));
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret").finish_non_exhaustive()
    }
}

impl std::str::FromStr for Secret {
    type Err = Error;

    /// Same as [`Secret::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Secret::parse(s)
    }
}

/// Feeds formatted text into an HMAC.
struct MacWriter<'a>(&'a mut HmacSha256);

impl fmt::Write for MacWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.update(s.as_bytes());
        Ok(())
    }
}

/// Signs a message, returning the `webhook-signature` entry `v1,<base64>`.
///
/// `timestamp` is the value sent in the `webhook-timestamp` header (Unix
/// seconds). To send several signatures (during secret rotation), join the
/// results with a single space.
pub fn sign(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = secret.tag(msg_id, timestamp, body);
    let mut out = String::with_capacity(V1_SIGNATURE_LEN);
    out.push_str(V1_PREFIX);
    STANDARD.encode_string(tag, &mut out);
    out
}

/// Verifies a delivery against the current system time.
///
/// Reads the `webhook-id`, `webhook-timestamp` and `webhook-signature` headers
/// (names are matched case-insensitively) and checks that the timestamp is
/// within `tolerance` of now, in either direction, and that at least one `v1`
/// signature matches `body`. `body` must be the raw request body.
///
/// See [`verify_at`] to supply the current time yourself.
pub fn verify<H>(
    secret: &Secret,
    headers: &H,
    body: &[u8],
    tolerance: Duration,
) -> Result<(), Error>
where
    H: HeaderLookup + ?Sized,
{
    verify_at(secret, headers, body, tolerance, unix_now())
}

/// Like [`verify`], but with the current time given as `now` (Unix seconds).
pub fn verify_at<H>(
    secret: &Secret,
    headers: &H,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), Error>
where
    H: HeaderLookup + ?Sized,
{
    let msg_id = headers
        .header(HEADER_ID)
        .ok_or(Error::MissingHeader(HEADER_ID))?;
    let timestamp = headers
        .header(HEADER_TIMESTAMP)
        .ok_or(Error::MissingHeader(HEADER_TIMESTAMP))?;
    let signatures = headers
        .header(HEADER_SIGNATURE)
        .ok_or(Error::MissingHeader(HEADER_SIGNATURE))?;
    verify_parts(secret, msg_id, timestamp, signatures, body, tolerance, now)
}

/// Verifies a delivery from its individual header values.
///
/// * `msg_id`: the `webhook-id` header value,
/// * `timestamp`: the `webhook-timestamp` header value (decimal Unix seconds),
/// * `signatures`: the `webhook-signature` header value,
/// * `now`: the current time in Unix seconds.
///
/// The timestamp is checked first, then the signatures.
pub fn verify_parts(
    secret: &Secret,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    tolerance: Duration,
    now: i64,
) -> Result<(), Error> {
    let timestamp = parse_timestamp(timestamp)?;
    let tolerance = i128::from(tolerance.as_secs());
    let age = i128::from(now) - i128::from(timestamp);
    if age > tolerance {
        return Err(Error::TimestampTooOld);
    }
    if -age > tolerance {
        return Err(Error::TimestampTooNew);
    }

    let expected = secret.tag(msg_id, timestamp, body);
    let mut decoded = [0u8; 32];
    let mut matched = subtle::Choice::from(0);
    for entry in signatures.split_ascii_whitespace() {
        let Some(encoded) = entry.strip_prefix(V1_PREFIX) else {
            continue; // Other versions (or garbage) are ignored.
        };
        // Fails without panicking if the input is not base64 or decodes to more
        // than 32 bytes.
        let Ok(len) = STANDARD.decode_slice(encoded, &mut decoded) else {
            continue;
        };
        // Slices of different lengths compare unequal.
        matched |= decoded[..len].ct_eq(&expected);
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(Error::NoMatchingSignature)
    }
}

/// Parses a decimal timestamp made only of ASCII digits.
fn parse_timestamp(s: &str) -> Result<i64, Error> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::InvalidTimestamp);
    }
    s.parse().map_err(|_| Error::InvalidTimestamp)
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Why a secret could not be parsed or a delivery could not be verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// A required header is absent; holds its (lowercase) name, e.g. `"webhook-id"`.
    MissingHeader(&'static str),
    /// The `webhook-timestamp` header is not a decimal number of seconds.
    InvalidTimestamp,
    /// The timestamp is older than the allowed tolerance (possible replay).
    TimestampTooOld,
    /// The timestamp is further in the future than the allowed tolerance.
    TimestampTooNew,
    /// No `v1` signature in `webhook-signature` matches the message.
    NoMatchingSignature,
    /// The secret is not valid (`whsec_`-prefixed) base64 of a non-empty key.
    InvalidSecret,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MissingHeader(name) => write!(f, "missing `{name}` header"),
            Error::InvalidTimestamp => f.write_str("invalid webhook timestamp"),
            Error::TimestampTooOld => f.write_str("webhook timestamp is too old"),
            Error::TimestampTooNew => f.write_str("webhook timestamp is too far in the future"),
            Error::NoMatchingSignature => f.write_str("no matching webhook signature"),
            Error::InvalidSecret => f.write_str("invalid webhook secret"),
        }
    }
}

impl std::error::Error for Error {}

/// Case-insensitive header lookup, so [`verify`] works with any HTTP library.
///
/// Implementations must match `name` case-insensitively (the names this crate
/// asks for are lowercase ASCII). If a header occurs more than once, the
/// provided implementations return the first occurrence for sequences and an
/// unspecified one for maps.
pub trait HeaderLookup {
    /// Returns the value of the header called `name`, if present.
    fn header(&self, name: &str) -> Option<&str>;
}

fn find_in<'a, K, V, I>(pairs: I, name: &str) -> Option<&'a str>
where
    K: AsRef<str> + 'a,
    V: AsRef<str> + 'a,
    I: IntoIterator<Item = (&'a K, &'a V)>,
{
    pairs
        .into_iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        find_in(self.iter().map(|(k, v)| (k, v)), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> HeaderLookup for [(K, V); N] {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, S: BuildHasher> HeaderLookup for HashMap<K, V, S> {
    fn header(&self, name: &str) -> Option<&str> {
        find_in(self, name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for BTreeMap<K, V> {
    fn header(&self, name: &str) -> Option<&str> {
        find_in(self, name)
    }
}

impl<T: HeaderLookup + ?Sized> HeaderLookup for &T {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

#[cfg(test)]
mod tests;

/// Compiles and runs the example in `README.md`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
