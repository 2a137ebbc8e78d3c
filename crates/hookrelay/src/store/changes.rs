//! Changes other nodes must hear of at once: a webhook whose queued work is stale, an API key
//! no longer good. Backends shared by several nodes publish them with the change itself, in
//! its transaction, and hand every node the ones committed anywhere (see
//! [`Store::watch_changes`](super::Store::watch_changes)).

/// One change, as a node hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A webhook changed in a way that affects delivery, or was deleted.
    Webhook(crate::domain::id::WebhookId),
    /// An API key was revoked.
    ApiKeyRevoked(crate::domain::id::ApiKeyId),
    /// The event-type registry changed: it is read again whole.
    EventTypes,
    /// The watch (re)connected: changes made while it was not listening were not heard, so
    /// everything kept from before must be read again from the database.
    Resync,
}
