//! Webhooks: a tenant's subscription to event types at a URL, and the rules its fields obey.

use std::time::Duration;

use super::id::{TenantId, WebhookId};
use serde_json::{Map, Value};
use url::Url;

use super::catalog;
use super::filter::Filter;
use super::headers::{self, CustomHeaders};
use super::health::{DisableAfter, DisabledReason, Health, InvalidDisableAfter};
use super::input::{FieldError, Input, Invalid, boolean, free_text, integer, name};
use super::registry::EventTypes;
use super::retry::{self, ScheduleErrors};
use super::secret::{self, InvalidSecret};
use super::time::Timestamp;

pub const NAME_MAX: usize = super::input::NAME_MAX;
pub const DESCRIPTION_MAX: usize = 500;
pub const URL_MAX: usize = 2048;
pub const RETRY_COUNT_MAX: i64 = 10;
pub const DEFAULT_RETRY_COUNT: i64 = 3;
pub const TIMEOUT_MIN: i64 = 1;
pub const TIMEOUT_MAX: i64 = 60;
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 30;
/// Highest per-webhook delivery rate a tenant may ask for; without one, deliveries go as fast
/// as the concurrency limits allow.
pub const RATE_LIMIT_MAX: i64 = 10_000;

/// Why a webhook field (other than `url` and `headers`) is refused; the text is what the
/// client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidWebhook {
    #[error(transparent)]
    Input(#[from] Invalid),
    #[error(transparent)]
    Secret(#[from] InvalidSecret),
    #[error("must be an array of event type names")]
    EventsNotAnArray,
    #[error("must name at least one event type (or \"*\")")]
    NoEvents,
    #[error("must be at most 7 days")]
    GraceTooLong,
    #[error("must be seconds (a number) or a duration such as \"24h\"")]
    NotAGrace,
    #[error(transparent)]
    DisableAfter(#[from] InvalidDisableAfter),
    #[error(
        "cannot be given with retry_count: choose one (a schedule's length is its number of \
         retries)"
    )]
    ScheduleWithCount,
}

/// Why a webhook's `url` is refused; the text is what the client reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUrl {
    #[error("must be a string")]
    NotAString,
    #[error("must be at most {URL_MAX} characters")]
    TooLong,
    #[error("must contain only URI characters (RFC 3986), not {0:?}: percent-encode it")]
    NotUriCharacter(char),
    /// The parser's reason is part of the text the client reads, so it is not also given as
    /// the error's source (an error report would print it twice).
    #[error("is not a valid absolute URL ({0})")]
    NotAbsolute(url::ParseError),
    #[error("must use http or https")]
    Scheme,
    #[error("must have a host")]
    NoHost,
    #[error("host {0:?} is not a DNS name (letters, digits and hyphens, dot-separated)")]
    NotADnsName(String),
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("must not contain a fragment (#…)")]
    Fragment,
    #[error("must not use port 0")]
    PortZero,
}

/// Where a webhook stands: derived from its health ([`Webhook::status`]), never stored.
pub use super::health::WebhookStatus;

/// A stored webhook, with its delivery counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    pub secret: String,
    /// During a rotation: the secret being replaced, and when it stops signing.
    pub previous_secret: Option<(String, Timestamp)>,
    /// Retries on the backoff. With a schedule, what nodes that know no schedule use: its
    /// length, within the bounds (see [`Webhook::retries`]).
    pub retry_count: i64,
    /// The delay before each retry, when the webhook chose them; it rules over `retry_count`.
    pub retry_schedule: Option<Vec<Duration>>,
    pub timeout_seconds: i64,
    /// Sent with every delivery, after validation (see `headers`).
    pub headers: CustomHeaders,
    /// Deliveries per second at most; `None`: no limit.
    pub rate_limit_per_second: Option<i64>,
    /// Events whose envelope it refuses get no delivery; `None`: every subscribed event.
    pub filter: Option<Filter>,
    /// Switched on or off, why, and the streak of failures: its status is derived from it.
    pub health: Health,
    pub total_deliveries: i64,
    pub successful_deliveries: i64,
    pub failed_deliveries: i64,
    pub last_triggered_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Webhook {
    /// Where the webhook stands, from its stored state.
    pub fn status(&self) -> WebhookStatus {
        self.health.status()
    }

    /// Whether deliveries go out to it now.
    pub fn is_active(&self) -> bool {
        self.health.is_active
    }

    /// How many retries, and when.
    pub fn retries(&self) -> retry::Retries {
        super::delivery::Target::retries_of(self.retry_count, self.retry_schedule.as_deref())
    }

    /// The number of retries after a first failed attempt: `retry_count`, or the schedule's
    /// length.
    pub fn retry_total(&self) -> i64 {
        self.retry_schedule
            .as_ref()
            .map_or(self.retry_count, |s| s.len() as i64)
    }

    /// A new webhook for `tenant_id`, with a generated secret when none was given.
    pub fn create(tenant_id: &TenantId, new: NewWebhook, now: Timestamp) -> Self {
        let retry_count = match &new.retry_schedule {
            Some(schedule) => count_for(schedule),
            None => new.retry_count,
        };
        Webhook {
            id: WebhookId::new(),
            tenant_id: tenant_id.clone(),
            name: new.name,
            description: new.description,
            url: new.url,
            events: new.events,
            secret: new.secret.unwrap_or_else(secret::generate),
            previous_secret: None,
            retry_count,
            retry_schedule: new.retry_schedule,
            timeout_seconds: new.timeout_seconds,
            headers: new.headers,
            rate_limit_per_second: new.rate_limit_per_second,
            filter: new.filter,
            health: Health {
                is_active: new.is_active,
                disabled: (!new.is_active).then_some((DisabledReason::Manual, now)),
                disable_after: new.disable_after,
                ..Health::default()
            },
            total_deliveries: 0,
            successful_deliveries: 0,
            failed_deliveries: 0,
            last_triggered_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Applies a partial update to the writable fields; counters are never touched here.
    pub fn apply(&mut self, patch: WebhookPatch, now: Timestamp) {
        let WebhookPatch {
            name,
            description,
            url,
            events,
            secret,
            retry_count,
            retry_schedule,
            timeout_seconds,
            headers,
            rate_limit_per_second,
            filter,
            is_active,
            disable_after,
        } = patch;
        if let Some(v) = name {
            self.name = v;
        }
        if let Some(v) = description {
            self.description = v;
        }
        if let Some(v) = url {
            self.url = v;
        }
        if let Some(v) = events {
            self.events = v;
        }
        if let Some(v) = secret {
            self.secret = v;
        }
        // Exclusive (the parser refuses both but a `null` schedule): a count ends any
        // schedule, a schedule sets the count nodes without schedules use, and `null` goes back
        // to the backoff with that count.
        if let Some(v) = retry_schedule {
            if let Some(schedule) = &v {
                self.retry_count = count_for(schedule);
            }
            self.retry_schedule = v;
        }
        if let Some(v) = retry_count {
            self.retry_count = v;
            self.retry_schedule = None;
        }
        if let Some(v) = timeout_seconds {
            self.timeout_seconds = v;
        }
        if let Some(v) = headers {
            self.headers = v;
        }
        if let Some(v) = rate_limit_per_second {
            self.rate_limit_per_second = v;
        }
        if let Some(v) = filter {
            self.filter = v;
        }
        // Switching on clears the streak; switching off is the tenant's choice (`manual`).
        match is_active {
            Some(true) => self.health.enable(),
            Some(false) => self.health.disable(DisabledReason::Manual, now),
            None => {}
        }
        if let Some(v) = disable_after {
            self.health.disable_after = v;
        }
        self.updated_at = now;
    }

    /// Applies a change to the writable state: a PATCH, or a secret rotation.
    pub fn change(&mut self, change: WebhookChange, now: Timestamp) {
        match change {
            WebhookChange::Patch(patch) => {
                if patch.secret.is_some() {
                    // A secret set outright replaces the old one at once, rotation included.
                    self.previous_secret = None;
                }
                self.apply(*patch, now);
            }
            WebhookChange::RotateSecret { secret, grace } => {
                let old = std::mem::replace(&mut self.secret, secret);
                self.previous_secret = (grace.as_millis() > 0)
                    .then(|| (old, now.plus_millis(grace.as_millis() as i64)));
                self.updated_at = now;
            }
        }
    }

    /// What an attempt to this webhook at `now` needs.
    pub fn target(&self, now: Timestamp) -> super::delivery::Target {
        super::delivery::Target {
            webhook_id: self.id.clone(),
            url: self.url.clone(),
            secrets: self.signing_secrets(now),
            headers: self.headers.clone(),
            rate_limit: super::delivery::Target::rate_limit_of(self.rate_limit_per_second),
            timeout: super::delivery::Target::timeout_of(self.timeout_seconds),
            retries: self.retries(),
        }
    }

    /// The secrets deliveries are signed with at `now`: the current one, and the previous one
    /// while its grace period lasts.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<String> {
        let mut secrets = vec![self.secret.clone()];
        if let Some((old, until)) = &self.previous_secret
            && *until > now
        {
            secrets.push(old.clone());
        }
        secrets
    }

    /// Whether an event of `event_type` is delivered here (ignoring `is_active` and the
    /// filter).
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        subscribes(&self.events, event_type)
    }

    /// Whether its filter, if any, lets an event with this envelope through.
    pub fn filter_accepts(&self, envelope: &Value) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(envelope))
    }
}

/// Whether a subscription list (catalogue names, `group.*` or `*`) takes events of
/// `event_type`.
pub fn subscribes(events: &[String], event_type: &str) -> bool {
    events.iter().any(|e| catalog::matches(e, event_type))
}

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "url",
    "events",
    "secret",
    "retry_count",
    "retry_schedule",
    "timeout_seconds",
    "headers",
    "rate_limit_per_second",
    "is_active",
    "disable_after",
    "filter",
];

/// A validated `POST /webhooks` body, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub name: String,
    pub description: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    /// `None`: generate one.
    pub secret: Option<String>,
    pub retry_count: i64,
    /// `None`: the backoff, `retry_count` times.
    pub retry_schedule: Option<Vec<Duration>>,
    pub timeout_seconds: i64,
    pub headers: CustomHeaders,
    pub rate_limit_per_second: Option<i64>,
    pub filter: Option<Filter>,
    pub is_active: bool,
    pub disable_after: DisableAfter,
}

/// Which catalogue a webhook's `events` come from.
#[derive(Debug, Clone, Copy)]
pub enum Catalogue<'a> {
    /// A tenant's webhook: the event-type registry (`GET /webhooks/events`).
    Tenant(&'a EventTypes),
    /// An operational webhook: hookrelay's own events (`domain/operational.rs`).
    Operational,
}

impl NewWebhook {
    /// `max_delay` is the server's longest retry delay ([`retry::RetryPolicy::max_delay`]),
    /// which no `retry_schedule` entry may pass.
    pub fn parse(
        body: &Map<String, Value>,
        types: &EventTypes,
        max_delay: Duration,
    ) -> Result<Self, Vec<FieldError>> {
        Self::parse_for(body, Catalogue::Tenant(types), max_delay)
    }

    pub fn parse_for(
        body: &Map<String, Value>,
        catalogue: Catalogue<'_>,
        max_delay: Duration,
    ) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, WRITABLE);
        let retry_schedule = parse_schedule_field(&mut input, body, max_delay);
        let name = input.required("name", parse_name);
        let description = input.optional("description", parse_description);
        let url = input.required("url", parse_url);
        let events = parse_events_field(&mut input, true, catalogue);
        let secret = input.optional("secret", parse_secret);
        let retry_count = input.optional("retry_count", parse_retry_count);
        let timeout_seconds = input.optional("timeout_seconds", parse_timeout);
        let custom = parse_headers_field(&mut input, body);
        let rate_limit = input.optional("rate_limit_per_second", parse_rate_limit);
        let is_active = input.optional("is_active", boolean);
        let disable_after = input.optional("disable_after", parse_disable_after);
        let filter = parse_filter_field(&mut input, body);
        input.finish(|| NewWebhook {
            name: name.unwrap_or_default(),
            description: description.flatten(),
            url: url.unwrap_or_default(),
            events: events.unwrap_or_default(),
            secret,
            retry_count: retry_count.unwrap_or(DEFAULT_RETRY_COUNT),
            retry_schedule: retry_schedule.flatten(),
            timeout_seconds: timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
            headers: custom.unwrap_or_default(),
            rate_limit_per_second: rate_limit.flatten(),
            filter: filter.flatten(),
            is_active: is_active.unwrap_or(true),
            disable_after: disable_after.unwrap_or_default(),
        })
    }
}

/// A change to a stored webhook, applied atomically by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookChange {
    /// Boxed: a patch is far larger than a rotation.
    Patch(Box<WebhookPatch>),
    /// A new secret; the old one keeps signing beside it for `grace`.
    RotateSecret {
        secret: String,
        grace: std::time::Duration,
    },
}

pub const DEFAULT_ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
pub const MAX_ROTATION_GRACE: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A validated `POST /webhooks/:id/rotate-secret` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub secret: String,
    pub grace: std::time::Duration,
}

impl Rotation {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, &["secret", "grace_period"]);
        let secret = input.optional("secret", parse_secret);
        let grace = input.optional("grace_period", parse_grace);
        input.finish(|| Rotation {
            secret: secret.unwrap_or_else(secret::generate),
            grace: grace.unwrap_or(DEFAULT_ROTATION_GRACE),
        })
    }
}

/// Seconds (a number) or a duration with a unit (`"24h"`, `"30m"`), from 0 to 7 days.
fn parse_grace(v: &Value) -> Result<std::time::Duration, InvalidWebhook> {
    let grace = match v {
        Value::Number(_) => super::input::whole_number(v)
            .and_then(|n| u64::try_from(n).ok())
            .map(std::time::Duration::from_secs),
        Value::String(s) => retry::parse_human(s),
        _ => None,
    };
    match grace {
        Some(g) if g <= MAX_ROTATION_GRACE => Ok(g),
        Some(_) => Err(InvalidWebhook::GraceTooLong),
        None => Err(InvalidWebhook::NotAGrace),
    }
}

/// A validated `PATCH /webhooks/:id` body: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    pub name: Option<String>,
    /// `Some(None)` clears the description.
    pub description: Option<Option<String>>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub secret: Option<String>,
    /// Ends any schedule.
    pub retry_count: Option<i64>,
    /// `Some(None)` goes back to the backoff (keeping `retry_count`).
    pub retry_schedule: Option<Option<Vec<Duration>>>,
    pub timeout_seconds: Option<i64>,
    /// Replaces the whole set; `{}` or `null` removes them all.
    pub headers: Option<CustomHeaders>,
    /// `Some(None)` removes the limit.
    pub rate_limit_per_second: Option<Option<i64>>,
    /// `Some(None)` removes the filter.
    pub filter: Option<Option<Filter>>,
    pub is_active: Option<bool>,
    /// `Some(DisableAfter::Server)` goes back to the server's default.
    pub disable_after: Option<DisableAfter>,
}

impl WebhookPatch {
    /// `max_delay` as for [`NewWebhook::parse`].
    pub fn parse(
        body: &Map<String, Value>,
        types: &EventTypes,
        max_delay: Duration,
    ) -> Result<Self, Vec<FieldError>> {
        Self::parse_for(body, Catalogue::Tenant(types), max_delay)
    }

    pub fn parse_for(
        body: &Map<String, Value>,
        catalogue: Catalogue<'_>,
        max_delay: Duration,
    ) -> Result<Self, Vec<FieldError>> {
        let mut input = Input::new(body, WRITABLE);
        let patch = WebhookPatch {
            retry_schedule: parse_schedule_field(&mut input, body, max_delay),
            name: input.optional("name", parse_name),
            description: input.optional("description", parse_description),
            url: input.optional("url", parse_url),
            events: parse_events_field(&mut input, false, catalogue),
            secret: input.optional("secret", parse_secret),
            retry_count: input.optional("retry_count", parse_retry_count),
            timeout_seconds: input.optional("timeout_seconds", parse_timeout),
            headers: parse_headers_field(&mut input, body),
            rate_limit_per_second: input.optional("rate_limit_per_second", parse_rate_limit),
            filter: parse_filter_field(&mut input, body),
            is_active: input.optional("is_active", boolean),
            disable_after: input.optional("disable_after", parse_disable_after),
        };
        input.finish(|| patch)
    }
}

fn parse_name(v: &Value) -> Result<String, Invalid> {
    name(v, NAME_MAX)
}

fn parse_description(v: &Value) -> Result<Option<String>, Invalid> {
    match v {
        Value::Null => Ok(None),
        _ => free_text(v, DESCRIPTION_MAX),
    }
}

fn parse_secret(v: &Value) -> Result<String, InvalidWebhook> {
    let Value::String(s) = v else {
        return Err(Invalid::NotAString.into());
    };
    secret::validate(s)?;
    Ok(s.clone())
}

fn parse_disable_after(v: &Value) -> Result<DisableAfter, InvalidWebhook> {
    Ok(DisableAfter::parse(v)?)
}

fn parse_retry_count(v: &Value) -> Result<i64, Invalid> {
    integer(v, 0, RETRY_COUNT_MAX)
}

/// The `retry_count` kept beside a schedule, for nodes that know no schedule (a rolling
/// upgrade): its length, within the count's bounds.
fn count_for(schedule: &[Duration]) -> i64 {
    (schedule.len() as i64).min(RETRY_COUNT_MAX)
}

/// `retry_schedule`: a list of durations or the preset ([`retry::parse_schedule`]), or `null`
/// (`Some(None)`: none). Refused beside `retry_count` unless `null`; a bad entry is reported
/// under its own index (`retry_schedule[2]`).
fn parse_schedule_field(
    input: &mut Input<'_>,
    body: &Map<String, Value>,
    max_delay: Duration,
) -> Option<Option<Vec<Duration>>> {
    const FIELD: &str = "retry_schedule";
    let value = body.get(FIELD)?;
    if value.is_null() {
        return Some(None);
    }
    if body.contains_key("retry_count") {
        input.push(FieldError::new(FIELD, InvalidWebhook::ScheduleWithCount));
        return None;
    }
    match retry::parse_schedule(value, max_delay) {
        Ok(schedule) => Some(Some(schedule)),
        Err(ScheduleErrors::Whole(e)) => {
            input.push(FieldError::new(FIELD, e));
            None
        }
        Err(ScheduleErrors::Entries(entries)) => {
            for (i, e) in entries {
                input.push(FieldError::new(format!("{FIELD}[{i}]"), e));
            }
            None
        }
    }
}

fn parse_timeout(v: &Value) -> Result<i64, Invalid> {
    integer(v, TIMEOUT_MIN, TIMEOUT_MAX)
}

/// Deliveries per second, or `null` for no limit.
fn parse_rate_limit(v: &Value) -> Result<Option<i64>, Invalid> {
    match v {
        Value::Null => Ok(None),
        _ => integer(v, 1, RATE_LIMIT_MAX).map(Some),
    }
}

/// `filter`, when present: `null` (`Some(None)`) removes it; a refused filter is reported
/// where it went wrong (`filter.$or[1]["data.amount"].$gte`).
fn parse_filter_field(input: &mut Input<'_>, body: &Map<String, Value>) -> Option<Option<Filter>> {
    let value = body.get("filter")?;
    if value.is_null() {
        return Some(None);
    }
    match Filter::parse(value) {
        Ok(filter) => Some(Some(filter)),
        Err(e) => {
            input.push(FieldError::new(e.field(), e.kind));
            None
        }
    }
}

/// `headers`, when present; each bad header is reported under its own name.
fn parse_headers_field(input: &mut Input<'_>, body: &Map<String, Value>) -> Option<CustomHeaders> {
    match headers::parse(body.get("headers")?) {
        Ok(parsed) => Some(parsed),
        Err(errors) => {
            for error in errors {
                input.push(error);
            }
            None
        }
    }
}

/// A delivery target: absolute http(s) with a host, no credentials, no fragment. Returns the
/// normalised form (WHATWG parsing), which is what is stored and later connected to.
///
/// Only the characters RFC 3986 allows in a URI are taken: a space, a control character or a
/// non-ASCII character is refused rather than silently trimmed or percent-encoded, so the URL
/// the client sent is the one it reads back, and the OpenAPI document can state the rule as a
/// pattern.
pub fn parse_url(v: &Value) -> Result<String, InvalidUrl> {
    let Value::String(raw) = v else {
        return Err(InvalidUrl::NotAString);
    };
    if raw.len() > URL_MAX {
        return Err(InvalidUrl::TooLong);
    }
    if let Some(c) = raw.chars().find(|c| !is_uri_char(*c)) {
        return Err(InvalidUrl::NotUriCharacter(c));
    }
    let url = Url::parse(raw).map_err(InvalidUrl::NotAbsolute)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidUrl::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(InvalidUrl::NoHost);
    }
    if let Some(url::Host::Domain(name)) = url.host()
        && !is_dns_name(name)
    {
        return Err(InvalidUrl::NotADnsName(name.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidUrl::Credentials);
    }
    if url.fragment().is_some() {
        return Err(InvalidUrl::Fragment);
    }
    if url.port() == Some(0) {
        return Err(InvalidUrl::PortZero);
    }
    // The limit is on what the client sent: normalising may add a `/` (and percent-encode a
    // `'` in a query), and a URL within the documented limit must not be refused for that.
    Ok(url.to_string())
}

/// A host name that DNS can look up: labels of 1 to 63 letters, digits and hyphens, not
/// starting or ending with a hyphen, at most 253 characters, an optional final dot. The URL
/// parser takes far more (`a*b`, `a_b`, `a!b`), names no resolver will ever answer for.
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// RFC 3986: unreserved, reserved, and `%` of percent-encoding.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

impl Catalogue<'_> {
    fn has(self, name: &str) -> bool {
        match self {
            Catalogue::Tenant(types) => types.is_subscribable(name),
            Catalogue::Operational => super::operational::is_subscribable(name),
        }
    }
}

/// `events`: a non-empty array of catalogue names or `*`, duplicates dropped (first kept).
/// Each bad element is reported under its own index.
fn parse_events_field(
    input: &mut Input<'_>,
    required: bool,
    catalogue: Catalogue<'_>,
) -> Option<Vec<String>> {
    let mut element_errors = Vec::new();
    let parse = |v: &Value| -> Result<Vec<String>, InvalidWebhook> {
        let Value::Array(items) = v else {
            return Err(InvalidWebhook::EventsNotAnArray);
        };
        if items.is_empty() {
            return Err(InvalidWebhook::NoEvents);
        }
        let mut events: Vec<String> = Vec::with_capacity(items.len().min(32));
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(name) if catalogue.has(name) => {
                    if !events.iter().any(|e| e == name) {
                        events.push(name.to_owned());
                    }
                }
                Some(name) if matches!(catalogue, Catalogue::Tenant(_)) => {
                    element_errors.push(FieldError::new(
                        format!("events[{i}]"),
                        catalog::UnknownEventType(name.to_owned()),
                    ))
                }
                Some(name) => element_errors.push(FieldError::new(
                    format!("events[{i}]"),
                    super::operational::UnknownOperationalType(name.to_owned()),
                )),
                None => element_errors
                    .push(FieldError::new(format!("events[{i}]"), Invalid::NotAString)),
            }
        }
        Ok(events)
    };
    let events = if required {
        input.required("events", parse)
    } else {
        input.optional("events", parse)
    };
    let ok = element_errors.is_empty();
    for error in element_errors {
        input.push(error);
    }
    events.filter(|_| ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// The server's longest retry delay in these tests.
    const CAP: Duration = Duration::from_secs(3600);

    fn parse_new(body: &Map<String, Value>) -> Result<NewWebhook, Vec<FieldError>> {
        NewWebhook::parse(body, &EventTypes::builtin(), CAP)
    }

    fn parse_patch(body: &Map<String, Value>) -> Result<WebhookPatch, Vec<FieldError>> {
        WebhookPatch::parse(body, &EventTypes::builtin(), CAP)
    }

    fn errors_of(v: Value) -> Vec<String> {
        match parse_new(&obj(v)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    fn minimal() -> Value {
        json!({"name": "CRM sync", "url": "https://example.com/hook", "events": ["message.sent"]})
    }

    #[test]
    fn webhook_names_must_be_visible_and_descriptions_must_not_reorder_text() {
        for bad in [
            "\u{200B}",
            "\u{2060}\u{FE0F}",
            "CRM\u{202E}cnys",
            "\u{200F}CRM",
        ] {
            let mut body = minimal();
            body["name"] = json!(bad);
            assert_eq!(errors_of(body), ["name"], "{bad:?}");
            let patch = parse_patch(&obj(json!({"name": bad})));
            assert_eq!(
                patch.err().map(|e| e[0].field.clone()).as_deref(),
                Some("name"),
                "PATCH {bad:?}"
            );
        }
        let mut body = minimal();
        body["description"] = json!("see \u{202E}txt.exe");
        assert_eq!(errors_of(body), ["description"]);
        let mut body = minimal();
        body["description"] = json!("\u{200B}");
        let hook = parse_new(&obj(body)).expect("blank description");
        assert_eq!(hook.description, None);
    }

    #[test]
    fn defaults_apply() {
        let hook = parse_new(&obj(minimal())).expect("valid");
        assert_eq!(hook.retry_count, 3);
        assert_eq!(hook.timeout_seconds, 30);
        assert!(hook.is_active);
        assert_eq!(hook.secret, None);
        assert_eq!(hook.description, None);
    }

    #[test]
    fn events_are_deduplicated_in_order() {
        let mut body = minimal();
        body["events"] = json!(["message.sent", "*", "message.sent", "contact.created"]);
        let hook = parse_new(&obj(body)).expect("valid");
        assert_eq!(hook.events, ["message.sent", "*", "contact.created"]);
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = json!({
            "name": "", "url": "ftp://x", "events": ["message.sent", "nope", 3],
            "secret": "abc", "retry_count": 11, "timeout_seconds": 0, "is_active": "yes",
            "description": 5, "extra": true
        });
        let mut fields = errors_of(body);
        fields.sort();
        assert_eq!(
            fields,
            [
                "description",
                "events[1]",
                "events[2]",
                "extra",
                "is_active",
                "name",
                "retry_count",
                "secret",
                "timeout_seconds",
                "url"
            ]
        );
    }

    #[test]
    fn required_fields() {
        let mut fields = errors_of(json!({}));
        fields.sort();
        assert_eq!(fields, ["events", "name", "url"]);
        assert_eq!(
            errors_of(json!({"name": "a", "url": "https://a.io", "events": []})),
            ["events"]
        );
    }

    #[test]
    fn url_rules() {
        let ok = |u: &str| parse_url(&json!(u));
        assert_eq!(
            ok("https://example.com/h?x=1").as_deref(),
            Ok("https://example.com/h?x=1")
        );
        assert_eq!(
            ok("HTTP://Example.COM").as_deref(),
            Ok("http://example.com/")
        );
        for good in [
            "http://localhost:8080/x",
            "https://1a.example.com./",
            "http://[::1]/",
        ] {
            assert!(ok(good).is_ok(), "{good} refused");
        }
        for bad in [
            " https://example.com/",
            "https://example.com/a b",
            "https://exämple.com/",
            "https://example.com/\u{7f}",
            "https://example.com/{x}",
            "https://rg3*/",
            "https://a_b.example/",
            "https://a!b.example/",
            "https://-a.example/",
            "https://a..b/",
            "example.com/hook",
            "/relative",
            "ftp://example.com",
            "file:///etc/passwd",
            "gopher://example.com",
            "https://user:pw@example.com",
            "https://user@example.com",
            "http://a.com#@127.0.0.1",
            "http://example.com:0/",
            "http://example.com:65536/",
            "http://",
        ] {
            assert!(ok(bad).is_err(), "{bad} accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(URL_MAX));
        assert!(ok(&long).is_err());
        // Exactly at the limit, even though normalising adds a `/`.
        let at_limit = format!("HTTP://A?{}", "0".repeat(URL_MAX - 9));
        assert_eq!(at_limit.len(), URL_MAX);
        assert!(ok(&at_limit).is_ok_and(|u| u.len() == URL_MAX + 1));
        assert!(parse_url(&json!(42)).is_err());
    }

    /// The texts clients read, which the docs and the black-box tests quote.
    #[test]
    fn url_messages_are_unchanged() {
        let message = |u: Value| parse_url(&u).map_err(|e| e.to_string()).err();
        for (url, text) in [
            (json!(5), "must be a string"),
            (
                json!("https://a b/"),
                "must contain only URI characters (RFC 3986), not ' ': percent-encode it",
            ),
            (
                json!("example.com/hook"),
                "is not a valid absolute URL (relative URL without a base)",
            ),
            (json!("ftp://example.com"), "must use http or https"),
            (
                json!("https://a_b.example/"),
                "host \"a_b.example\" is not a DNS name (letters, digits and hyphens, dot-separated)",
            ),
            (
                json!("https://user@example.com"),
                "must not contain a user name or password",
            ),
            (json!("http://a.com#x"), "must not contain a fragment (#…)"),
            (json!("http://example.com:0/"), "must not use port 0"),
            (
                json!(format!("https://example.com/{}", "a".repeat(URL_MAX))),
                "must be at most 2048 characters",
            ),
        ] {
            assert_eq!(message(url.clone()).as_deref(), Some(text), "{url}");
        }
    }

    #[test]
    fn field_messages_are_unchanged() {
        let messages = |v: Value| -> Vec<(String, String)> {
            parse_new(&obj(v))
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| (e.field, e.message))
                .collect()
        };
        let pairs = messages(json!({
            "name": "a", "url": "https://a.io", "events": ["nope", 3],
            "secret": "whsec_!", "retry_count": 11
        }));
        let expected = [
            (
                "events[0]",
                "unknown event type \"nope\"; see GET /api/v1/webhooks/events",
            ),
            ("events[1]", "must be a string"),
            ("secret", "must be whsec_ followed by standard base64"),
            ("retry_count", "must be an integer from 0 to 10"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect();
        let mut pairs = pairs;
        pairs.sort();
        let mut expected = expected;
        expected.sort();
        assert_eq!(pairs, expected);
        assert_eq!(
            messages(json!({"name": "a", "url": "https://a.io", "events": {}})),
            [(
                "events".to_owned(),
                "must be an array of event type names".to_owned()
            )]
        );
        assert_eq!(
            messages(json!({"name": "a", "url": "https://a.io", "events": []})),
            [(
                "events".to_owned(),
                "must name at least one event type (or \"*\")".to_owned()
            )]
        );
        let grace = |v: Value| {
            Rotation::parse(&obj(json!({ "grace_period": v })))
                .err()
                .map(|e| e[0].message.clone())
        };
        assert_eq!(
            grace(json!("8d")).as_deref(),
            Some("must be at most 7 days")
        );
        assert_eq!(
            grace(json!("soon")).as_deref(),
            Some("must be seconds (a number) or a duration such as \"24h\"")
        );
    }

    #[test]
    fn patch_takes_any_subset_and_refuses_unknown_fields() {
        let patch = parse_patch(&obj(json!({"is_active": false}))).expect("valid");
        assert_eq!(patch.is_active, Some(false));
        assert_eq!(patch.name, None);
        let patch = parse_patch(&obj(json!({"description": null}))).expect("valid");
        assert_eq!(patch.description, Some(None));
        let err = parse_patch(&obj(json!({"nmae": "x"}))).unwrap_err();
        assert_eq!(err[0].field, "nmae");
        assert!(parse_patch(&obj(json!({"events": []}))).is_err());
    }

    #[test]
    fn rotation_keeps_the_old_secret_signing_for_the_grace_period() {
        let new = parse_new(&obj(minimal())).expect("valid");
        let mut hook = Webhook::create(&TenantId::new(), new, Timestamp(0));
        let old = hook.secret.clone();
        let grace = std::time::Duration::from_secs(60);
        let next = secret::generate();
        hook.change(
            WebhookChange::RotateSecret {
                secret: next.clone(),
                grace,
            },
            Timestamp(1000),
        );
        assert_eq!(hook.signing_secrets(Timestamp(2000)), [next.clone(), old]);
        assert_eq!(hook.signing_secrets(Timestamp(61_000)), [next]);
        // A secret set by PATCH ends any rotation at once.
        let patch = parse_patch(&obj(json!({"secret": secret::generate()}))).expect("valid");
        hook.change(WebhookChange::Patch(Box::new(patch)), Timestamp(3000));
        assert_eq!(hook.signing_secrets(Timestamp(3000)).len(), 1);
    }

    #[test]
    fn rotation_input() {
        let r = Rotation::parse(&obj(json!({}))).expect("valid");
        assert_eq!(r.grace, DEFAULT_ROTATION_GRACE);
        assert!(secret::validate(&r.secret).is_ok());
        let r = Rotation::parse(&obj(json!({"grace_period": "2h"}))).expect("valid");
        assert_eq!(r.grace.as_secs(), 7200);
        let r = Rotation::parse(&obj(json!({"grace_period": 0}))).expect("valid");
        assert_eq!(r.grace.as_secs(), 0);
        for bad in [
            json!({"grace_period": "8d"}),
            json!({"grace_period": -1}),
            json!({"grace_period": "soon"}),
            json!({"secret": "nope"}),
            json!({"other": 1}),
        ] {
            assert!(Rotation::parse(&obj(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn subscription_matching() {
        let new = parse_new(&obj(minimal())).expect("valid");
        let mut hook = Webhook::create(&TenantId::new(), new, Timestamp(0));
        assert!(hook.subscribes_to("message.sent"));
        assert!(!hook.subscribes_to("message.read"));
        hook.events = vec!["*".into()];
        assert!(hook.subscribes_to("message.read"));
    }

    fn messages_of(result: Result<impl std::fmt::Debug, Vec<FieldError>>) -> Vec<(String, String)> {
        result
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn a_retry_schedule_is_read_normalised_and_named_entry_by_entry() {
        let mut body = minimal();
        body["retry_schedule"] = json!(["5s", " 5m", "1h 30m", "250ms"]);
        let err = parse_new(&obj(body.clone())).unwrap_err();
        // 1h 30m is past the cap of 1 hour.
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].field, "retry_schedule[2]");
        assert_eq!(
            err[0].message,
            "must be at most 1h, this server's longest retry delay"
        );
        body["retry_schedule"] = json!(["5s", " 5m", "59m 59s", "250ms"]);
        let new = parse_new(&obj(body)).expect("valid");
        let secs = |s: u64| Duration::from_secs(s);
        assert_eq!(
            new.retry_schedule,
            Some(vec![
                secs(5),
                secs(300),
                secs(3599),
                Duration::from_millis(250)
            ])
        );
        let hook = Webhook::create(&TenantId::new(), new, Timestamp(0));
        assert_eq!((hook.retry_count, hook.retry_total()), (4, 4));
        assert_eq!(hook.retries().count(), 4);
        assert_eq!(hook.target(Timestamp(0)).retries, hook.retries());
    }

    #[test]
    fn retry_schedule_refusals_name_the_field_or_the_entry() {
        let with = |schedule: Value| {
            let mut body = minimal();
            body["retry_schedule"] = schedule;
            messages_of(parse_new(&obj(body)))
        };
        let pair = |f: &str, m: &str| vec![(f.to_owned(), m.to_owned())];
        let many: Vec<String> = (0..22).map(|i| format!("{}s", i + 1)).collect();
        assert_eq!(
            with(json!(many)),
            pair(
                "retry_schedule",
                "must have from 1 to 20 entries (for no retries, set retry_count to 0)"
            )
        );
        assert_eq!(with(json!([]))[0].0, "retry_schedule");
        assert_eq!(
            with(json!(["5s", "0s"])),
            pair("retry_schedule[1]", "must be more than zero")
        );
        assert_eq!(
            with(json!(["5s", "5m", "2h"])),
            pair(
                "retry_schedule[2]",
                "must be at most 1h, this server's longest retry delay"
            )
        );
        assert_eq!(
            with(json!(["soon", 5])),
            [
                (
                    "retry_schedule[0]".to_owned(),
                    "must be a duration such as \"30s\", \"5m\" or \"2h\"".to_owned()
                ),
                (
                    "retry_schedule[1]".to_owned(),
                    "must be a string".to_owned()
                ),
            ]
        );
        for bad in [json!("fast"), json!(5), json!({"a": 1}), json!("5m")] {
            assert_eq!(
                with(bad.clone()),
                pair(
                    "retry_schedule",
                    "must be a list of durations such as [\"5s\", \"5m\", \"2h\"], or \"standard\""
                ),
                "{bad}"
            );
        }
        // The preset waits up to 24 h: past this cap of 1 h, it is refused by name.
        assert_eq!(
            with(json!("standard")),
            pair(
                "retry_schedule",
                "the standard schedule waits up to 24h before a retry, longer than this \
                 server's longest retry delay (1h); list the delays you want instead"
            )
        );
        let mut body = minimal();
        body["retry_schedule"] = json!("standard");
        let new = NewWebhook::parse(
            &obj(body),
            &EventTypes::builtin(),
            Duration::from_secs(24 * 3600),
        )
        .expect("valid");
        assert_eq!(
            new.retry_schedule.as_deref(),
            Some(&retry::STANDARD_SCHEDULE[..])
        );
    }

    #[test]
    fn retry_count_and_retry_schedule_are_exclusive() {
        let both = json!({"retry_count": 2, "retry_schedule": ["5s"]});
        let refused = vec![(
            "retry_schedule".to_owned(),
            "cannot be given with retry_count: choose one (a schedule's length is its number of \
             retries)"
                .to_owned(),
        )];
        assert_eq!(messages_of(parse_patch(&obj(both.clone()))), refused);
        let mut body = minimal();
        body["retry_count"] = both["retry_count"].clone();
        body["retry_schedule"] = both["retry_schedule"].clone();
        assert_eq!(messages_of(parse_new(&obj(body.clone()))), refused);
        // `null` is no schedule: it goes with a count.
        body["retry_schedule"] = Value::Null;
        let new = parse_new(&obj(body)).expect("valid");
        assert_eq!((new.retry_count, new.retry_schedule), (2, None));

        let mut hook = Webhook::create(
            &TenantId::new(),
            parse_new(&obj(minimal())).unwrap(),
            Timestamp(0),
        );
        let patch = |v: Value| parse_patch(&obj(v)).expect("valid");
        hook.apply(
            patch(json!({"retry_schedule": ["1s", "2s", "3s", "4s", "5s"]})),
            Timestamp(1),
        );
        assert_eq!((hook.retry_count, hook.retry_total()), (5, 5));
        // A count ends the schedule.
        hook.apply(patch(json!({"retry_count": 1})), Timestamp(2));
        assert_eq!(
            (hook.retry_schedule.clone(), hook.retries()),
            (None, retry::Retries::Backoff(1))
        );
        // `null` goes back to the backoff, as many times as the schedule had entries.
        hook.apply(patch(json!({"retry_schedule": ["1s", "2s"]})), Timestamp(3));
        hook.apply(patch(json!({"retry_schedule": null})), Timestamp(4));
        assert_eq!(hook.retries(), retry::Retries::Backoff(2));
        hook.apply(
            patch(json!({"retry_schedule": null, "retry_count": 7})),
            Timestamp(5),
        );
        assert_eq!(hook.retries(), retry::Retries::Backoff(7));
    }

    #[test]
    fn apply_changes_only_what_the_patch_names() {
        let new = parse_new(&obj(minimal())).expect("valid");
        let mut hook = Webhook::create(&TenantId::new(), new, Timestamp(0));
        assert!(secret::validate(&hook.secret).is_ok());
        let before = hook.clone();
        let patch =
            parse_patch(&obj(json!({"is_active": false, "retry_count": 0}))).expect("valid");
        hook.apply(patch, Timestamp(5));
        assert_eq!(hook.status(), WebhookStatus::Disabled);
        assert_eq!(hook.health.disabled_reason(), Some(DisabledReason::Manual));
        assert_eq!((hook.retry_count, hook.is_active()), (0, false));
        assert_eq!(hook.updated_at, Timestamp(5));
        assert_eq!(
            (&hook.name, &hook.url, &hook.secret),
            (&before.name, &before.url, &before.secret)
        );
    }
}
