//! Reading rows into domain types, written once for every backend: each backend module
//! invokes [`row_mappers!`] with its row type, since the SQL types line up (BIGINT times,
//! TEXT, BOOLEAN/INTEGER flags).

/// Defines `ts`, `opt_ts`, `tenant_from`, `key_from`, `events_json_list`, `webhook_from`,
/// `target_from`, `delivery_from` and `log_from` for one row type.
macro_rules! row_mappers {
    ($row:ty) => {
        pub(super) fn ts(
            row: &$row,
            column: &str,
        ) -> Result<$crate::domain::time::Timestamp, ::sqlx::Error> {
            row.try_get::<i64, _>(column)
                .map($crate::domain::time::Timestamp)
        }

        pub(super) fn opt_ts(
            row: &$row,
            column: &str,
        ) -> Result<Option<$crate::domain::time::Timestamp>, ::sqlx::Error> {
            Ok(row
                .try_get::<Option<i64>, _>(column)?
                .map($crate::domain::time::Timestamp))
        }

        pub(super) fn tenant_from(
            row: &$row,
        ) -> $crate::store::StoreResult<$crate::domain::tenant::Tenant> {
            Ok($crate::domain::tenant::Tenant {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                created_at: ts(row, "created_at")?,
                updated_at: ts(row, "updated_at")?,
            })
        }

        pub(super) fn key_from(
            row: &$row,
        ) -> $crate::store::StoreResult<$crate::domain::tenant::ApiKeyInfo> {
            Ok($crate::domain::tenant::ApiKeyInfo {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                name: row.try_get("name")?,
                prefix: row.try_get("prefix")?,
                created_at: ts(row, "created_at")?,
                expires_at: opt_ts(row, "expires_at")?,
                last_used_at: opt_ts(row, "last_used_at")?,
                revoked_at: opt_ts(row, "revoked_at")?,
            })
        }

        /// `webhooks.events`, stored as a JSON array.
        pub(super) fn events_json_list(text: String) -> $crate::store::StoreResult<Vec<String>> {
            serde_json::from_str(&text)
                .map_err(|e| $crate::store::StoreError::Corrupt(format!("webhooks.events: {e}")))
        }

        pub(super) fn webhook_from(
            row: &$row,
            keys: &$crate::domain::crypto::Keyring,
        ) -> $crate::store::StoreResult<$crate::domain::webhook::Webhook> {
            let events = events_json_list(row.try_get("events")?)?;
            let is_active: bool = row.try_get("is_active")?;
            let id: String = row.try_get("id")?;
            let secret = $crate::store::rows::open_secret(keys, row.try_get("secret")?, &id)?;
            let previous_secret = match (
                row.try_get::<Option<String>, _>("previous_secret")?,
                opt_ts(row, "previous_secret_expires_at")?,
            ) {
                (Some(stored), Some(until)) => {
                    Some(($crate::store::rows::open_secret(keys, stored, &id)?, until))
                }
                _ => None,
            };
            let headers = $crate::store::rows::open_headers(keys, row.try_get("headers")?, &id)?;
            Ok($crate::domain::webhook::Webhook {
                id,
                tenant_id: row.try_get("tenant_id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                url: row.try_get("url")?,
                events,
                secret,
                previous_secret,
                status: $crate::domain::webhook::WebhookStatus::for_active(is_active),
                retry_count: row.try_get("retry_count")?,
                timeout_seconds: row.try_get("timeout_seconds")?,
                headers,
                rate_limit_per_second: row.try_get("rate_limit_per_second")?,
                is_active,
                total_deliveries: row.try_get("total_deliveries")?,
                successful_deliveries: row.try_get("successful_deliveries")?,
                failed_deliveries: row.try_get("failed_deliveries")?,
                last_triggered_at: opt_ts(row, "last_triggered_at")?,
                created_at: ts(row, "created_at")?,
                updated_at: ts(row, "updated_at")?,
            })
        }

        pub(super) fn target_from(
            row: &$row,
            id_column: &str,
            keys: &$crate::domain::crypto::Keyring,
        ) -> $crate::store::StoreResult<$crate::domain::delivery::Target> {
            let timeout: i64 = row.try_get("timeout_seconds")?;
            let retry_count: i64 = row.try_get("retry_count")?;
            let webhook_id: String = row.try_get(id_column)?;
            let mut secrets = vec![$crate::store::rows::open_secret(
                keys,
                row.try_get("secret")?,
                &webhook_id,
            )?];
            if let (Some(stored), Some(until)) = (
                row.try_get::<Option<String>, _>("previous_secret")?,
                opt_ts(row, "previous_secret_expires_at")?,
            ) && until > $crate::domain::time::Timestamp::now()
            {
                secrets.push($crate::store::rows::open_secret(keys, stored, &webhook_id)?);
            }
            let headers =
                $crate::store::rows::open_headers(keys, row.try_get("headers")?, &webhook_id)?;
            let rate_limit: Option<i64> = row.try_get("rate_limit_per_second")?;
            Ok($crate::domain::delivery::Target {
                webhook_id,
                url: row.try_get("url")?,
                secrets,
                headers,
                rate_limit: rate_limit
                    .and_then(|r| u32::try_from(r).ok())
                    .filter(|r| *r > 0),
                timeout: ::std::time::Duration::from_secs(timeout.clamp(1, 3600) as u64),
                retry_count: retry_count.clamp(0, 100) as u32,
            })
        }

        pub(super) fn delivery_from(
            row: &$row,
        ) -> $crate::store::StoreResult<$crate::store::DeliveryInfo> {
            let state: String = row.try_get("state")?;
            let state =
                $crate::domain::delivery::DeliveryState::parse(&state).ok_or_else(|| {
                    $crate::store::StoreError::Corrupt(format!("deliveries.state = {state:?}"))
                })?;
            Ok($crate::store::DeliveryInfo {
                id: row.try_get("id")?,
                webhook_id: row.try_get("webhook_id")?,
                state,
                attempts: row.try_get("attempts")?,
                next_attempt_at: (state == $crate::domain::delivery::DeliveryState::Pending)
                    .then(|| ts(row, "next_attempt_at"))
                    .transpose()?,
                last_status: row.try_get("last_status")?,
                last_error: row.try_get("last_error")?,
                created_at: ts(row, "created_at")?,
                updated_at: ts(row, "updated_at")?,
                completed_at: opt_ts(row, "completed_at")?,
            })
        }

        pub(super) fn log_from(row: &$row) -> $crate::store::StoreResult<$crate::store::LogEntry> {
            Ok($crate::store::LogEntry {
                id: row.try_get("id")?,
                tenant_id: row.try_get("tenant_id")?,
                webhook_id: row.try_get("webhook_id")?,
                delivery_id: row.try_get("delivery_id")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                payload: row.try_get("payload")?,
                request_headers: row.try_get("request_headers")?,
                response_status: row.try_get("response_status")?,
                response_body: row.try_get("response_body")?,
                response_body_truncated: row.try_get("response_body_truncated")?,
                response_time_ms: row.try_get("response_time_ms")?,
                error_message: row.try_get("error_message")?,
                attempt_count: row.try_get("attempt_count")?,
                is_success: row.try_get("is_success")?,
                is_test: row.try_get("is_test")?,
                created_at: ts(row, "created_at")?,
            })
        }
    };
}

pub(crate) use row_mappers;

/// `webhooks.events` as stored: a JSON array.
pub(crate) fn events_json(webhook: &crate::domain::webhook::Webhook) -> String {
    // A Vec<String> always serialises.
    serde_json::to_string(&webhook.events).unwrap_or_else(|_| "[]".to_owned())
}

/// `before` for SQL: every real id sorts below "~" (ids are ASCII alphanumerics and `_`).
pub(crate) fn before(page: &super::Page) -> &str {
    page.before.as_deref().unwrap_or("~")
}

/// A webhook's secret as stored, opened with the operator keys.
pub(crate) fn open_secret(
    keys: &crate::domain::crypto::Keyring,
    stored: String,
    webhook_id: &str,
) -> super::StoreResult<String> {
    keys.open(&stored, webhook_id)
        .map_err(|e| super::StoreError::Corrupt(format!("secret of {webhook_id}: {e}")))
}

/// The additional data binding sealed custom headers to their webhook *and* their column, so a
/// sealed secret cannot be swapped in for them (or the reverse).
fn headers_aad(webhook_id: &str) -> String {
    format!("{webhook_id}/headers")
}

/// `webhooks.headers` as stored: the JSON object sealed with the operator keys, or NULL when
/// the webhook has none.
pub(crate) fn seal_headers(
    keys: &crate::domain::crypto::Keyring,
    webhook: &crate::domain::webhook::Webhook,
) -> Option<String> {
    if webhook.headers.is_empty() {
        return None;
    }
    let json = crate::domain::headers::to_json(&webhook.headers).to_string();
    Some(keys.seal(&json, &headers_aad(&webhook.id)))
}

/// Custom headers as stored, opened; validated when they were written, so only shape is checked.
pub(crate) fn open_headers(
    keys: &crate::domain::crypto::Keyring,
    stored: Option<String>,
    webhook_id: &str,
) -> super::StoreResult<crate::domain::headers::CustomHeaders> {
    let Some(stored) = stored else {
        return Ok(Vec::new());
    };
    let corrupt = |e: String| super::StoreError::Corrupt(format!("headers of {webhook_id}: {e}"));
    let json = keys
        .open(&stored, &headers_aad(webhook_id))
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
    keys: &crate::domain::crypto::Keyring,
    webhook_id: &str,
    stored: &SealedColumns,
) -> super::StoreResult<Option<SealedColumns>> {
    let current = |s: &String| keys.is_current(s);
    if current(&stored.secret)
        && stored.previous_secret.as_ref().is_none_or(current)
        && stored.headers.as_ref().is_none_or(current)
    {
        return Ok(None);
    }
    // Opened and sealed again under the same associated data.
    let again = |stored: &String, aad: &str| -> super::StoreResult<String> {
        let plain = keys.open(stored, aad).map_err(|e| {
            super::StoreError::Corrupt(format!("sealed column of {webhook_id}: {e}"))
        })?;
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
