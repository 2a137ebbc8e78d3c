-- The event-type registry. The built-in catalogue is seeded at start-up (insert-or-ignore),
-- so an operator's changes to a built-in type are kept; types are deprecated, never deleted.
CREATE TABLE event_types (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    schema TEXT,
    sample TEXT NOT NULL,
    deprecated_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
