//! Opaque, prefixed, time-ordered identifiers (`wh_…`, `evt_…`, `ten_…`): a ULID in lower case
//! behind a prefix naming the kind of object.
//!
//! Time order makes the id itself a stable pagination cursor and keeps B-tree inserts appending.

use std::sync::{Arc, Mutex};

use ulid::Ulid;

pub const TENANT: &str = "ten";
pub const API_KEY: &str = "key";
pub const WEBHOOK: &str = "wh";
pub const EVENT: &str = "evt";
pub const DELIVERY: &str = "dlv";
pub const ATTEMPT: &str = "att";
pub const RECOVERY: &str = "rcv";

/// What every typed id can do, so code generic over the kind (the API's path extractor)
/// can parse one and name it.
pub trait Id: Sized + Clone + std::fmt::Display {
    /// The prefix before `_` (`wh`, `evt`).
    const PREFIX: &'static str;
    /// The object it names, in words, as "not found" answers say it.
    const WHAT: &'static str;

    /// An id as a caller wrote it, if it has this kind's shape.
    fn parse(text: &str) -> Option<Self>;
    /// An id read back from the database, which only ever stored valid ones.
    fn from_stored(stored: String) -> Self;
    fn as_str(&self) -> &str;
}

/// Declares one id type per kind: a string newtype that only [`Id::parse`] (checking the
/// shape), the constructors (making a new one) and the store (reading its own rows) can
/// build, so a webhook id cannot be passed where a tenant id is expected. The text is shared
/// (`Arc<str>`): the engine copies an event's and a webhook's ids into every delivery and
/// attempt it handles, and a copy is then a reference count, not an allocation.
macro_rules! typed_ids {
    ($($(#[$doc:meta])* $name:ident = $prefix:ident, $what:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// A new id, greater than every one of its kind this process made before.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name(new($prefix).into())
            }

            /// A new id whose embedded time is exactly `at`.
            pub fn new_at(at: super::time::Timestamp) -> Self {
                $name(new_at($prefix, at).into())
            }

            /// An id as a caller wrote it, if it has this kind's shape.
            pub fn parse(text: &str) -> Option<Self> {
                is_valid($prefix, text).then(|| $name(text.into()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0.as_ref().to_owned()
            }
        }

        impl Id for $name {
            const PREFIX: &'static str = $prefix;
            const WHAT: &'static str = $what;

            fn parse(text: &str) -> Option<Self> {
                $name::parse(text)
            }

            fn from_stored(stored: String) -> Self {
                $name(stored.into())
            }

            fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    )*};
}

typed_ids! {
    /// A tenant (`ten_…`).
    TenantId = TENANT, "tenant";
    /// A tenant's API key (`key_…`).
    ApiKeyId = API_KEY, "API key";
    /// A webhook (`wh_…`).
    WebhookId = WEBHOOK, "webhook";
    /// An event (`evt_…`).
    EventId = EVENT, "event";
    /// One event on its way to one webhook (`dlv_…`).
    DeliveryId = DELIVERY, "delivery";
    /// One attempt, as the attempt log shows it (`att_…`).
    AttemptId = ATTEMPT, "log";
    /// A recovery of a webhook's failed deliveries (`rcv_…`).
    RecoveryId = RECOVERY, "recovery";
}

/// A new identifier of the given kind, greater than every one this process made before, so
/// objects created in the same millisecond still list in creation order.
pub fn new(prefix: &str) -> String {
    static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);
    let ulid = {
        let mut generator = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
        generator
            .get_or_insert_with(ulid::Generator::new)
            .generate()
    };
    // Overflow needs 2^80 ids in one millisecond; a fresh random id is then as good.
    let ulid = ulid.unwrap_or_else(|_| Ulid::new());
    format!("{prefix}_{}", ulid.to_string().to_ascii_lowercase())
}

/// A new identifier whose embedded time is exactly `at`, so a row's id and its `created_at`
/// sort together (keyset pagination relies on it).
pub fn new_at(prefix: &str, at: super::time::Timestamp) -> String {
    let ms = u64::try_from(at.millis()).unwrap_or(0);
    let ulid = Ulid::from_parts(ms, rand::random::<u128>());
    format!("{prefix}_{}", ulid.to_string().to_ascii_lowercase())
}

/// The smallest identifier of this kind made at `at`: every id made earlier sorts below it,
/// so a primary-key range finds rows by age without an index on their time.
pub fn floor_at(prefix: &str, at: super::time::Timestamp) -> String {
    let ms = u64::try_from(at.millis()).unwrap_or(0);
    let ulid = Ulid::from_parts(ms, 0);
    format!("{prefix}_{}", ulid.to_string().to_ascii_lowercase())
}

/// The time embedded in an id made by [`new`] or [`new_at`].
pub fn time_of(id: &str) -> Option<super::time::Timestamp> {
    let (_, body) = id.split_once('_')?;
    let ulid = Ulid::from_string(&body.to_ascii_uppercase()).ok()?;
    i64::try_from(ulid.timestamp_ms())
        .ok()
        .map(super::time::Timestamp)
}

/// Whether `id` has the shape of an identifier of this kind. Ids that fail this are treated as
/// "not found" rather than as malformed input, so guessing reveals nothing.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            body.len() == 26
                && body
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_of_a_time_sorts_between_earlier_and_later_ids() {
        let at = super::super::time::Timestamp(1_700_000_000_000);
        let floor = floor_at(ATTEMPT, at);
        assert!(is_valid(ATTEMPT, &floor));
        for _ in 0..100 {
            assert!(new_at(ATTEMPT, at.plus_millis(-1)) < floor);
            assert!(new_at(ATTEMPT, at) >= floor);
        }
    }

    #[test]
    fn new_ids_are_prefixed_valid_and_ordered() {
        let a = new(WEBHOOK);
        let b = new(WEBHOOK);
        assert!(a.starts_with("wh_"));
        assert!(is_valid(WEBHOOK, &a));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn ids_made_in_the_same_millisecond_keep_their_order() {
        let ids: Vec<String> = (0..1000).map(|_| new(TENANT)).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn new_at_embeds_the_time() {
        let at = crate::domain::time::Timestamp(1_764_338_290_123);
        let id = new_at(ATTEMPT, at);
        assert!(is_valid(ATTEMPT, &id));
        assert_eq!(time_of(&id), Some(at));
        assert_eq!(time_of("att_nope"), None);
    }

    #[test]
    fn typed_ids_parse_only_their_own_kind() {
        let webhook = WebhookId::new();
        assert_eq!(WebhookId::parse(webhook.as_str()), Some(webhook.clone()));
        assert_eq!(TenantId::parse(webhook.as_str()), None);
        assert_eq!(WebhookId::parse("wh_nope"), None);
        assert!(webhook.as_str().starts_with("wh_"));
        assert_eq!(
            serde_json::to_value(&webhook).unwrap(),
            serde_json::Value::String(webhook.to_string())
        );
        assert_eq!(<AttemptId as Id>::WHAT, "log");
    }

    #[test]
    fn rejects_other_kinds_and_garbage() {
        let id = new(TENANT);
        assert!(!is_valid(WEBHOOK, &id));
        assert!(!is_valid(TENANT, "ten_"));
        assert!(!is_valid(TENANT, "ten_../../etc/passwd"));
        assert!(!is_valid(TENANT, &id.to_uppercase()));
    }
}
