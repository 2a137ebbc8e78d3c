//! Reading rows into domain types, and the sealed columns of a webhook, written once for
//! every backend: the SQL types line up (BIGINT times, TEXT, BOOLEAN/INTEGER flags).

use std::sync::Arc;
use std::time::Duration;

use super::backend::{Backend, get, get_id, get_opt_id};
use super::{DeliveryInfo, LogEntry, Page, StoreError, StoreResult};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{DeliveryState, Target};
use crate::domain::filter::Filter;
use crate::domain::headers::CustomHeaders;
use crate::domain::health::{DisableAfter, DisabledReason, Health, Streak};
use crate::domain::id::WebhookId;
use crate::domain::tenant::{ApiKeyInfo, Tenant};
use crate::domain::time::Timestamp;
use crate::domain::webhook::Webhook;

pub(crate) fn ts<B: Backend>(row: &B::Row, column: &str) -> Result<Timestamp, sqlx::Error> {
    get::<B, i64>(row, column).map(Timestamp)
}

pub(crate) fn opt_ts<B: Backend>(
    row: &B::Row,
    column: &str,
) -> Result<Option<Timestamp>, sqlx::Error> {
    Ok(get::<B, Option<i64>>(row, column)?.map(Timestamp))
}

pub(crate) fn tenant_from<B: Backend>(row: &B::Row) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: get_id::<B, _>(row, "id")?,
        name: get::<B, _>(row, "name")?,
        created_at: ts::<B>(row, "created_at")?,
        updated_at: ts::<B>(row, "updated_at")?,
    })
}

pub(crate) fn key_from<B: Backend>(row: &B::Row) -> StoreResult<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: get_id::<B, _>(row, "id")?,
        tenant_id: get_id::<B, _>(row, "tenant_id")?,
        name: get::<B, _>(row, "name")?,
        prefix: get::<B, _>(row, "prefix")?,
        created_at: ts::<B>(row, "created_at")?,
        expires_at: opt_ts::<B>(row, "expires_at")?,
        last_used_at: opt_ts::<B>(row, "last_used_at")?,
        revoked_at: opt_ts::<B>(row, "revoked_at")?,
    })
}

/// `webhooks.events`, stored as a JSON array.
pub(crate) fn events_json_list(text: String) -> StoreResult<Vec<String>> {
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("webhooks.events: {e}")))
}

/// `webhooks.retry_schedule` as stored: a JSON array of milliseconds, or NULL for none.
pub(crate) fn schedule_json(webhook: &Webhook) -> Option<String> {
    let ms: Vec<u64> = webhook
        .retry_schedule
        .as_ref()?
        .iter()
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .collect();
    // A Vec<u64> always serialises.
    serde_json::to_string(&ms).ok()
}

/// Reads `webhooks.retry_schedule` back.
pub(crate) fn schedule_list(text: Option<String>) -> StoreResult<Option<Vec<Duration>>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let ms: Vec<u64> = serde_json::from_str(&text)
        .map_err(|e| StoreError::Corrupt(format!("webhooks.retry_schedule: {e}")))?;
    Ok(Some(ms.into_iter().map(Duration::from_millis).collect()))
}

/// `webhooks.filter` as stored: the filter's JSON as the client wrote it, or NULL for none.
pub(crate) fn filter_json(webhook: &Webhook) -> Option<String> {
    webhook.filter.as_ref().map(|f| f.source().to_string())
}

/// Reads `webhooks.filter` back, compiled; it was valid when stored.
pub(crate) fn filter_from(text: Option<String>) -> StoreResult<Option<Filter>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let corrupt = |e: String| StoreError::Corrupt(format!("webhooks.filter: {e}"));
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| corrupt(e.to_string()))?;
    Filter::parse(&value)
        .map(Some)
        .map_err(|e| corrupt(format!("{}: {}", e.field(), e.kind)))
}

pub(crate) fn webhook_from<B: Backend>(row: &B::Row, keys: &Keyring) -> StoreResult<Webhook> {
    let events = events_json_list(get::<B, _>(row, "events")?)?;
    let health = health_from::<B>(row)?;
    let id: WebhookId = get_id::<B, _>(row, "id")?;
    let secret = open_secret(keys, &get::<B, String>(row, "secret")?, id.as_str())?;
    let previous_secret = match (
        get::<B, Option<String>>(row, "previous_secret")?,
        opt_ts::<B>(row, "previous_secret_expires_at")?,
    ) {
        (Some(stored), Some(until)) => Some((open_secret(keys, &stored, id.as_str())?, until)),
        _ => None,
    };
    let headers = open_headers(
        keys,
        get::<B, Option<String>>(row, "headers")?.as_deref(),
        id.as_str(),
    )?;
    Ok(Webhook {
        id,
        tenant_id: get_id::<B, _>(row, "tenant_id")?,
        name: get::<B, _>(row, "name")?,
        description: get::<B, _>(row, "description")?,
        url: get::<B, _>(row, "url")?,
        events,
        secret,
        previous_secret,
        retry_count: get::<B, _>(row, "retry_count")?,
        retry_schedule: schedule_list(get::<B, _>(row, "retry_schedule")?)?,
        timeout_seconds: get::<B, _>(row, "timeout_seconds")?,
        headers,
        rate_limit_per_second: get::<B, _>(row, "rate_limit_per_second")?,
        filter: filter_from(get::<B, _>(row, "filter")?)?,
        health,
        total_deliveries: get::<B, _>(row, "total_deliveries")?,
        successful_deliveries: get::<B, _>(row, "successful_deliveries")?,
        failed_deliveries: get::<B, _>(row, "failed_deliveries")?,
        last_triggered_at: opt_ts::<B>(row, "last_triggered_at")?,
        created_at: ts::<B>(row, "created_at")?,
        updated_at: ts::<B>(row, "updated_at")?,
    })
}

/// A webhook's health from its row: `is_active`, `disabled_reason`, `disabled_at`, the
/// `streak_*` columns, `failing_since` and `disable_after_ms`.
pub(crate) fn health_from<B: Backend>(row: &B::Row) -> StoreResult<Health> {
    let is_active: bool = get::<B, _>(row, "is_active")?;
    let reason: Option<String> = get::<B, _>(row, "disabled_reason")?;
    let disabled_at = opt_ts::<B>(row, "disabled_at")?;
    let streak = opt_ts::<B>(row, "streak_started_at")?.map(|started_at| -> StoreResult<_> {
        Ok(Streak {
            started_at,
            failed_attempts: get::<B, _>(row, "streak_failed_attempts")?,
            failed_deliveries: get::<B, _>(row, "streak_failed_deliveries")?,
        })
    });
    Ok(Health {
        is_active,
        disabled: (!is_active).then(|| {
            (
                DisabledReason::from_stored(reason.as_deref()),
                disabled_at.unwrap_or(Timestamp(0)),
            )
        }),
        streak: streak.transpose()?,
        failing_since: opt_ts::<B>(row, "failing_since")?,
        disable_after: DisableAfter::from_stored(get::<B, _>(row, "disable_after_ms")?),
    })
}

/// A webhook's delivery settings as stored, secrets still sealed: read inside a
/// transaction, opened (by [`SealedTarget::open`]) only for the webhooks that need them.
pub(crate) struct SealedTarget {
    pub webhook_id: WebhookId,
    url: String,
    secret: String,
    previous_secret: Option<(String, Timestamp)>,
    headers: Option<String>,
    rate_limit: Option<i64>,
    timeout_seconds: i64,
    retry_count: i64,
    retry_schedule: Option<Vec<Duration>>,
}

impl SealedTarget {
    /// Reads the target columns; the webhook's id is in `id_column`.
    pub fn read<B: Backend>(row: &B::Row, id_column: &str) -> StoreResult<Self> {
        let previous_secret = match (
            get::<B, Option<String>>(row, "previous_secret")?,
            opt_ts::<B>(row, "previous_secret_expires_at")?,
        ) {
            (Some(stored), Some(until)) => Some((stored, until)),
            _ => None,
        };
        Ok(SealedTarget {
            webhook_id: get_id::<B, _>(row, id_column)?,
            url: get::<B, _>(row, "url")?,
            secret: get::<B, _>(row, "secret")?,
            previous_secret,
            headers: get::<B, _>(row, "headers")?,
            rate_limit: get::<B, _>(row, "rate_limit_per_second")?,
            timeout_seconds: get::<B, _>(row, "timeout_seconds")?,
            retry_count: get::<B, _>(row, "retry_count")?,
            retry_schedule: schedule_list(get::<B, _>(row, "retry_schedule")?)?,
        })
    }

    /// The target with its secrets opened (the previous one only while it is still valid).
    pub fn open(&self, keys: &Keyring) -> StoreResult<Arc<Target>> {
        let webhook_id = &self.webhook_id;
        let mut secrets = vec![open_secret(keys, &self.secret, webhook_id.as_str())?];
        if let Some((stored, until)) = &self.previous_secret
            && *until > Timestamp::now()
        {
            secrets.push(open_secret(keys, stored, webhook_id.as_str())?);
        }
        let headers = open_headers(keys, self.headers.as_deref(), webhook_id.as_str())?;
        Ok(Arc::new(Target {
            webhook_id: webhook_id.clone(),
            url: self.url.clone(),
            secrets,
            headers,
            rate_limit: Target::rate_limit_of(self.rate_limit),
            timeout: Target::timeout_of(self.timeout_seconds),
            retries: Target::retries_of(self.retry_count, self.retry_schedule.as_deref()),
        }))
    }
}

/// A delivery row, read with its event's type (`delivery_select!` in `reads`).
pub(crate) fn delivery_from<B: Backend>(row: &B::Row) -> StoreResult<DeliveryInfo> {
    let state: String = get::<B, _>(row, "state")?;
    let state = DeliveryState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("deliveries.state = {state:?}")))?;
    Ok(DeliveryInfo {
        id: get_id::<B, _>(row, "id")?,
        event_id: get_id::<B, _>(row, "event_id")?,
        event_type: get::<B, _>(row, "event_type")?,
        webhook_id: get_id::<B, _>(row, "webhook_id")?,
        state,
        attempts: get::<B, _>(row, "attempts")?,
        next_attempt_at: (state == DeliveryState::Pending)
            .then(|| ts::<B>(row, "next_attempt_at"))
            .transpose()?,
        last_status: get::<B, _>(row, "last_status")?,
        last_error: get::<B, _>(row, "last_error")?,
        created_at: ts::<B>(row, "created_at")?,
        updated_at: ts::<B>(row, "updated_at")?,
        completed_at: opt_ts::<B>(row, "completed_at")?,
    })
}

pub(crate) fn log_from<B: Backend>(row: &B::Row) -> StoreResult<LogEntry> {
    Ok(LogEntry {
        id: get_id::<B, _>(row, "id")?,
        tenant_id: get_id::<B, _>(row, "tenant_id")?,
        webhook_id: get_id::<B, _>(row, "webhook_id")?,
        delivery_id: get_opt_id::<B, _>(row, "delivery_id")?,
        event_id: get_opt_id::<B, _>(row, "event_id")?,
        event_type: get::<B, _>(row, "event_type")?,
        payload: get::<B, _>(row, "payload")?,
        request_headers: get::<B, _>(row, "request_headers")?,
        response_status: get::<B, _>(row, "response_status")?,
        response_body: get::<B, _>(row, "response_body")?,
        response_body_truncated: get::<B, _>(row, "response_body_truncated")?,
        response_time_ms: get::<B, _>(row, "response_time_ms")?,
        error_message: get::<B, _>(row, "error_message")?,
        attempt_count: get::<B, _>(row, "attempt_count")?,
        is_success: get::<B, _>(row, "is_success")?,
        is_test: get::<B, _>(row, "is_test")?,
        created_at: ts::<B>(row, "created_at")?,
    })
}

/// `webhooks.events` as stored: a JSON array.
pub(crate) fn events_json(webhook: &Webhook) -> String {
    // A Vec<String> always serialises.
    serde_json::to_string(&webhook.events).unwrap_or_else(|_| "[]".to_owned())
}

/// `before` for SQL: every real id sorts below "~" (ids are ASCII alphanumerics and `_`).
pub(crate) fn before(page: &Page) -> &str {
    page.before.as_deref().unwrap_or("~")
}

/// A webhook's secret as stored, opened with the operator keys.
pub(crate) fn open_secret(keys: &Keyring, stored: &str, webhook_id: &str) -> StoreResult<String> {
    keys.open(stored, webhook_id)
        .map_err(|e| StoreError::Corrupt(format!("secret of {webhook_id}: {e}")))
}

/// The additional data binding sealed custom headers to their webhook *and* their column, so a
/// sealed secret cannot be swapped in for them (or the reverse).
fn headers_aad(webhook_id: &str) -> String {
    format!("{webhook_id}/headers")
}

/// `webhooks.headers` as stored: the JSON object sealed with the operator keys, or NULL when
/// the webhook has none.
pub(crate) fn seal_headers(keys: &Keyring, webhook: &Webhook) -> Option<String> {
    if webhook.headers.is_empty() {
        return None;
    }
    let json = crate::domain::headers::to_json(&webhook.headers).to_string();
    Some(keys.seal(&json, &headers_aad(webhook.id.as_str())))
}

/// Custom headers as stored, opened; validated when they were written, so only shape is checked.
pub(crate) fn open_headers(
    keys: &Keyring,
    stored: Option<&str>,
    webhook_id: &str,
) -> StoreResult<CustomHeaders> {
    let Some(stored) = stored else {
        return Ok(Vec::new());
    };
    let corrupt = |e: String| StoreError::Corrupt(format!("headers of {webhook_id}: {e}"));
    let json = keys
        .open(stored, &headers_aad(webhook_id))
        .map_err(|e| corrupt(e.to_string()))?;
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
    map.into_iter()
        .map(|(name, value)| match value {
            serde_json::Value::String(v) => Ok((name, v)),
            _ => Err(corrupt(format!("{name} is not a string"))),
        })
        .collect()
}

/// A webhook's sealed columns as stored: what `rotate-encryption-key` reads and rewrites.
pub(crate) struct SealedColumns {
    pub secret: String,
    pub previous_secret: Option<String>,
    pub headers: Option<String>,
}

/// The columns sealed again with the current key, or `None` when all already are.
pub(crate) fn reseal(
    keys: &Keyring,
    webhook_id: &str,
    stored: &SealedColumns,
) -> StoreResult<Option<SealedColumns>> {
    let current = |s: &String| keys.is_current(s);
    if current(&stored.secret)
        && stored.previous_secret.as_ref().is_none_or(current)
        && stored.headers.as_ref().is_none_or(current)
    {
        return Ok(None);
    }
    // Opened and sealed again under the same associated data.
    let again = |stored: &String, aad: &str| -> StoreResult<String> {
        let plain = keys
            .open(stored, aad)
            .map_err(|e| StoreError::Corrupt(format!("sealed column of {webhook_id}: {e}")))?;
        Ok(keys.seal(&plain, aad))
    };
    let headers_aad = headers_aad(webhook_id);
    Ok(Some(SealedColumns {
        secret: again(&stored.secret, webhook_id)?,
        previous_secret: stored
            .previous_secret
            .as_ref()
            .map(|s| again(s, webhook_id))
            .transpose()?,
        headers: stored
            .headers
            .as_ref()
            .map(|h| again(h, &headers_aad))
            .transpose()?,
    }))
}
