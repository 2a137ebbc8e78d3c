//! Retention: a background task that deletes attempt logs and events older than the
//! configured age, in small batches with a pause between them, so the single SQLite writer
//! (or PostgreSQL's row locks) is never held long enough to stall delivery. Pending
//! deliveries and their events are never deleted. On SQLite the freed pages are then given
//! back to the file system, a few at a time.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::time::Timestamp;
use crate::metrics::Metrics;
use crate::store::{Store, StoreResult};

pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct RetentionConfig {
    /// Rows older than this are deleted; `None` keeps everything.
    pub age: Option<Duration>,
    /// How often a round runs (the first one runs at start).
    pub interval: Duration,
    /// Rows per delete statement (one short transaction each).
    pub batch: u32,
    /// Rest between two batches, leaving the database to the delivery engine.
    pub pause: Duration,
    /// SQLite pages given back per step (4 KiB each).
    pub reclaim_pages: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            age: Some(DEFAULT_RETENTION),
            interval: Duration::from_secs(600),
            batch: 1_000,
            pause: Duration::from_millis(100),
            reclaim_pages: 2_048,
        }
    }
}

/// A `--retention` that is neither a duration nor `off`. The parser's reason is in the text
/// (clap prints only that), so it is not given again as the source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0} (a duration such as 30d or 12h, or off)")]
pub struct BadRetention(pub humantime::DurationError);

/// Parses `--retention`: a duration (`30d`, `12h`), or `off` / `0` to keep everything.
pub fn parse_age(text: &str) -> Result<Option<Duration>, BadRetention> {
    match text.trim() {
        "off" | "0" => Ok(None),
        other => match humantime::parse_duration(other) {
            Ok(d) if d.is_zero() => Ok(None),
            Ok(d) => Ok(Some(d)),
            Err(e) => Err(BadRetention(e)),
        },
    }
}

/// `parse_age` for the command line, where `0` stands for off.
pub fn parse_age_flag(text: &str) -> Result<Duration, BadRetention> {
    parse_age(text).map(Option::unwrap_or_default)
}

/// What one round deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub logs: u64,
    pub events: u64,
}

/// Runs rounds every `config.interval` until `stop`; does nothing when retention is off.
pub async fn run(
    store: Arc<dyn Store>,
    config: RetentionConfig,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let Some(age) = config.age else { return };
    loop {
        match round(store.as_ref(), &config, age, &metrics, &stop).await {
            Ok(purged) if purged != Purged::default() => {
                tracing::info!(
                    logs = purged.logs,
                    events = purged.events,
                    "retention: old rows deleted"
                );
            }
            Ok(_) => {}
            // Next round tries again; nothing is lost by waiting.
            Err(error) => tracing::warn!(%error, "retention round failed"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(config.interval) => {}
        }
    }
}

/// Deletes batch after batch until one comes back short (or `stop`); the rows deleted.
async fn drain<F: Future<Output = StoreResult<u64>>>(
    config: &RetentionConfig,
    stop: &CancellationToken,
    mut batch: impl FnMut() -> F,
    counted: impl Fn(u64),
) -> StoreResult<u64> {
    let mut total = 0;
    while !stop.is_cancelled() {
        let n = batch().await?;
        total += n;
        counted(n);
        if n < u64::from(config.batch) {
            break;
        }
        rest(config.pause, stop).await;
    }
    Ok(total)
}

/// One round: logs, then events (with their finished deliveries), then free pages.
async fn round(
    store: &dyn Store,
    config: &RetentionConfig,
    age: Duration,
    metrics: &Metrics,
    stop: &CancellationToken,
) -> StoreResult<Purged> {
    let before = Timestamp::now().plus_millis(-(age.as_millis().min(i64::MAX as u128) as i64));
    let logs = drain(
        config,
        stop,
        || store.purge_logs(before, config.batch),
        |n| metrics.retention_deleted(n, 0),
    )
    .await?;
    let events = drain(
        config,
        stop,
        || store.purge_events(before, config.batch),
        |n| metrics.retention_deleted(0, n),
    )
    .await?;
    let purged = Purged { logs, events };
    // Until no page is free, or none was freed (a database not in incremental mode).
    let mut free = u64::MAX;
    while !stop.is_cancelled() {
        let left = store.reclaim_space(config.reclaim_pages).await?;
        if left == 0 || left >= free {
            break;
        }
        free = left;
        rest(config.pause, stop).await;
    }
    Ok(purged)
}

async fn rest(pause: Duration, stop: &CancellationToken) {
    tokio::select! {
        () = stop.cancelled() => {}
        () = tokio::time::sleep(pause) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_parse_and_off_disables() {
        assert_eq!(parse_age("30d"), Ok(Some(DEFAULT_RETENTION)));
        assert_eq!(parse_age("12h"), Ok(Some(Duration::from_secs(43_200))));
        assert_eq!(parse_age("off"), Ok(None));
        assert_eq!(parse_age("0"), Ok(None));
        assert_eq!(parse_age("0s"), Ok(None));
        let soon = parse_age("soon").unwrap_err();
        assert!(matches!(
            soon.0,
            humantime::DurationError::NumberExpected(_)
        ));
        assert!(soon.to_string().contains("30d"), "{soon}");
    }
}
