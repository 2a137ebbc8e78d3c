//! Ingest, written once for every backend: idempotency, fan-out to the tenant's matching
//! active webhooks, and leasing the new deliveries to this node, in one transaction.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Pool;

use super::backend::{Backend, Bind, get, get_id, query, query_built, sql, values_list};
use super::bulk::{DeliveryRow, insert_deliveries, insert_events};
use super::rows::{SealedTarget, events_json_list, filter_from, ts};
use super::{Ingested, LeasePlan, StoreError, StoreResult};
use crate::domain::crypto::Keyring;
use crate::domain::delivery::{Job, Target};
use crate::domain::event::{IDEMPOTENCY_WINDOW_MS, NewEvent};
use crate::domain::filter::Filter;
use crate::domain::id::{DeliveryId, EventId, TenantId, WebhookId};
use crate::domain::time::Timestamp;
use crate::domain::webhook::subscribes;

/// Rows per multi-row statement: every statement is a round trip, so rows go in bulk, kept
/// well under both backends' limits on bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// An active webhook as fan-out sees it: its secrets still sealed, since most webhooks of a
/// tenant do not match a given event, and a delivery this node does not lease needs none.
struct Subscriber {
    target: Arc<SealedTarget>,
    events: Vec<String>,
    /// Subscribed events whose envelope it refuses get no delivery.
    filter: Option<Filter>,
    /// `false`: disabled by health; its deliveries are stored held (pending, not leased).
    active: bool,
}

/// A delivery row to insert.
pub(crate) struct NewDelivery<'a> {
    pub id: DeliveryId,
    pub event: &'a NewEvent,
    target: Arc<SealedTarget>,
    pub leased: bool,
}

impl NewDelivery<'_> {
    fn row<'p>(&'p self, plan: &'p LeasePlan) -> DeliveryRow<'p> {
        DeliveryRow {
            id: &self.id,
            tenant_id: &self.event.tenant_id,
            event_id: &self.event.id,
            webhook_id: &self.target.webhook_id,
            at: self.event.created_at,
            lease: self.leased.then_some((plan.node.as_str(), plan.until)),
        }
    }
}

/// Targets opened so far in one batch, by webhook id: each webhook's secrets are opened once,
/// and only when a delivery to it is leased here.
struct Opened<'k> {
    keys: &'k Keyring,
    targets: HashMap<WebhookId, Arc<Target>>,
}

impl Opened<'_> {
    fn target(&mut self, sealed: &SealedTarget) -> StoreResult<Arc<Target>> {
        if let Some(target) = self.targets.get(&sealed.webhook_id) {
            return Ok(target.clone());
        }
        let target = sealed.open(self.keys)?;
        self.targets
            .insert(sealed.webhook_id.clone(), target.clone());
        Ok(target)
    }
}

/// An event that already holds an idempotency key.
struct KeyHolder {
    event_id: EventId,
    event_type: String,
    created_at: Timestamp,
    deliveries: usize,
}

/// Stores `events` and their deliveries, committed before returning. Answers per event, in
/// order.
pub(crate) async fn ingest<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    events: &[NewEvent],
    plan: &LeasePlan,
) -> StoreResult<Vec<Ingested>> {
    // Another node may commit the same idempotency key between our check and our insert; the
    // unique index refuses ours, and on the next try the check finds theirs.
    let mut tries = 0;
    loop {
        match ingest_once(writer, keys, events, plan).await {
            Err(StoreError::Conflict(_)) if B::SHARED && tries < 3 => tries += 1,
            other => return other,
        }
    }
}

async fn ingest_once<B: Backend>(
    writer: &Pool<B>,
    keys: &Keyring,
    events: &[NewEvent],
    plan: &LeasePlan,
) -> StoreResult<Vec<Ingested>> {
    let mut tx = writer.begin().await?;
    let results = ingest_on::<B>(&mut *tx, keys, events, plan).await?;
    let left_for_others = results.iter().any(|r| match r {
        Ingested::Created {
            deliveries, jobs, ..
        } => jobs.len() < *deliveries,
        Ingested::Existing { .. } => false,
    });
    if left_for_others {
        // Delivered with the commit: idle nodes wake and claim what this node could not take.
        B::notify_work_on(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(results)
}

/// Runs one ingest batch on `conn`, inside its transaction.
pub(crate) async fn ingest_on<B: Backend>(
    conn: &mut B::Connection,
    keys: &Keyring,
    events: &[NewEvent],
    plan: &LeasePlan,
) -> StoreResult<Vec<Ingested>> {
    let mut by_tenant: HashMap<&str, Vec<Subscriber>> = HashMap::new();
    let mut opened = Opened {
        keys,
        targets: HashMap::new(),
    };
    let mut results: Vec<Ingested> = Vec::with_capacity(events.len());
    let mut fresh: Vec<&NewEvent> = Vec::with_capacity(events.len());
    let mut deliveries: Vec<NewDelivery<'_>> = Vec::new();
    let mut filtered: HashMap<WebhookId, i64> = HashMap::new();
    // Keys taken earlier in this same batch: (tenant, key) → index in `events`/`results`.
    let mut batch_keys: HashMap<(&str, &str), usize> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if let Some(key) = &event.idempotency_key {
            if let Some(&first) = batch_keys.get(&(event.tenant_id.as_str(), key.as_str())) {
                results.push(existing_from(&results[first], events[first].event_type));
                continue;
            }
            if let Some(holder) = key_holder::<B>(conn, event.tenant_id.as_str(), key).await? {
                if holder.created_at.millis() > event.created_at.millis() - IDEMPOTENCY_WINDOW_MS {
                    results.push(Ingested::Existing {
                        event_id: holder.event_id,
                        event_type: holder.event_type,
                        deliveries: holder.deliveries,
                    });
                    continue;
                }
                // Past the window: the key is free again; the old event keeps its data.
                free_key::<B>(conn, &holder.event_id).await?;
            }
            batch_keys.insert((event.tenant_id.as_str(), key), index);
        }
        if !by_tenant.contains_key(event.tenant_id.as_str()) {
            let found = subscribers::<B>(conn, event.tenant_id.as_str()).await?;
            by_tenant.insert(event.tenant_id.as_str(), found);
        }
        let subscribers = by_tenant
            .get(event.tenant_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        results.push(fan_out(
            event,
            subscribers,
            plan,
            &mut deliveries,
            &mut opened,
            &mut filtered,
        )?);
        fresh.push(event);
    }
    for chunk in fresh.chunks(ROWS_PER_STATEMENT) {
        insert_events::<B>(conn, chunk).await?;
    }
    for chunk in deliveries.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<DeliveryRow<'_>> = chunk.iter().map(|d| d.row(plan)).collect();
        insert_deliveries::<B>(conn, &rows).await?;
    }
    if !filtered.is_empty() {
        count_filtered::<B>(conn, filtered).await?;
    }
    Ok(results)
}

/// Adds to `webhooks.filtered_events`, last in the transaction so the rows stay locked for
/// the least time, and in id order, as the recorder locks them, so the two never deadlock.
async fn count_filtered<B: Backend>(
    conn: &mut B::Connection,
    filtered: HashMap<WebhookId, i64>,
) -> StoreResult<()> {
    let mut counts: Vec<(WebhookId, i64)> = filtered.into_iter().collect();
    counts.sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for chunk in counts.chunks(ROWS_PER_STATEMENT) {
        if B::SHARED {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let lock = query("SELECT id FROM webhooks WHERE id = ANY($1) ORDER BY id FOR UPDATE");
            B::fetch_all_on(conn, lock.ids(&ids)).await?;
        }
        let sql = format!(
            "WITH c(id, n) AS (VALUES {})
             UPDATE webhooks SET filtered_events = filtered_events + c.n
             FROM c WHERE webhooks.id = c.id",
            values_list::<B>(chunk.len(), 2, 1),
        );
        let mut q = query_built::<B>(sql);
        for (id, n) in chunk {
            q = q.s(id).b(*n);
        }
        B::execute_on(conn, q).await?;
    }
    Ok(())
}

/// The event holding `key` for this tenant, if any.
async fn key_holder<B: Backend>(
    conn: &mut B::Connection,
    tenant_id: &str,
    key: &str,
) -> StoreResult<Option<KeyHolder>> {
    let q = query(
        "SELECT id, event_type, created_at,
                (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = events.id) AS n
         FROM events WHERE tenant_id = $1 AND idempotency_key = $2",
    );
    let Some(row) = B::fetch_optional_on(conn, q.s(tenant_id).s(key)).await? else {
        return Ok(None);
    };
    Ok(Some(KeyHolder {
        event_id: get_id::<B, _>(&row, "id")?,
        event_type: get::<B, _>(&row, "event_type")?,
        created_at: ts::<B>(&row, "created_at")?,
        deliveries: get::<B, i64>(&row, "n")? as usize,
    }))
}

/// Frees a key past its window, so a new event may take it.
async fn free_key<B: Backend>(conn: &mut B::Connection, event_id: &EventId) -> StoreResult<()> {
    let q = query("UPDATE events SET idempotency_key = NULL WHERE id = $1").s(event_id);
    B::execute_on(conn, q).await?;
    Ok(())
}

/// The tenant's webhooks that take new events: the active ones, and those disabled by health
/// (a 410, or `disable_after`), whose deliveries are held so that enabling them again
/// delivers every event of the outage. A webhook its tenant switched off (`manual`) takes
/// none, as in the seed: pausing is choosing not to receive. (`docs/recovery.md`.)
async fn subscribers<B: Backend>(
    conn: &mut B::Connection,
    tenant_id: &str,
) -> StoreResult<Vec<Subscriber>> {
    let q = query(sql::<B>(
        "SELECT id, url, secret, previous_secret, previous_secret_expires_at, timeout_seconds,
                retry_count, retry_schedule, headers, rate_limit_per_second, events, filter,
                is_active
         FROM webhooks WHERE tenant_id = $1
           AND (is_active = 1 OR disabled_reason IN ('gone', 'failing'))",
        "SELECT id, url, secret, previous_secret, previous_secret_expires_at, timeout_seconds,
                retry_count, retry_schedule, headers, rate_limit_per_second, events, filter,
                is_active
         FROM webhooks WHERE tenant_id = $1
           AND (is_active OR disabled_reason IN ('gone', 'failing'))",
    ));
    let rows = B::fetch_all_on(conn, q.s(tenant_id)).await?;
    rows.iter()
        .map(|row| {
            Ok(Subscriber {
                target: Arc::new(SealedTarget::read::<B>(row, "id")?),
                events: events_json_list(get::<B, _>(row, "events")?)?,
                filter: filter_from(get::<B, _>(row, "filter")?)?,
                active: get::<B, bool>(row, "is_active")?,
            })
        })
        .collect()
}

/// One delivery per matching subscriber; jobs for the ones this node leases, whose targets
/// (secrets opened) are the only ones it needs. A subscriber whose filter refuses the event
/// gets no delivery, and is counted in `filtered`.
fn fan_out<'a>(
    event: &'a NewEvent,
    subscribers: &[Subscriber],
    plan: &LeasePlan,
    deliveries: &mut Vec<NewDelivery<'a>>,
    opened: &mut Opened<'_>,
    filtered: &mut HashMap<WebhookId, i64>,
) -> StoreResult<Ingested> {
    // Parsed only when a subscriber has a filter: an unfiltered fan-out never reads the body.
    let mut envelope: Option<serde_json::Value> = None;
    let shared = EventShare::new(
        event.id.clone(),
        event.tenant_id.clone(),
        event.event_type,
        &event.body,
    );
    let mut count = 0;
    let mut jobs = Vec::new();
    for sub in subscribers
        .iter()
        .filter(|s| subscribes(&s.events, event.event_type))
    {
        if let Some(filter) = &sub.filter {
            let envelope = match &mut envelope {
                Some(parsed) => parsed,
                None => envelope.insert(serde_json::from_str(&event.body).map_err(|e| {
                    StoreError::Corrupt(format!("the envelope of {}: {e}", event.id))
                })?),
            };
            if !filter.matches(envelope) {
                *filtered.entry(sub.target.webhook_id.clone()).or_default() += 1;
                continue;
            }
        }
        count += 1;
        let id = DeliveryId::new_at(event.created_at);
        let leased = sub.active && plan.takes(&sub.target.webhook_id);
        if leased {
            let target = opened.target(&sub.target)?;
            jobs.push(shared.job(id.clone(), 1, plan.until, target));
        }
        deliveries.push(NewDelivery {
            id,
            event,
            target: sub.target.clone(),
            leased,
        });
    }
    Ok(Ingested::Created {
        event_id: event.id.clone(),
        deliveries: count,
        jobs,
    })
}

/// The same answer again, for a key repeated within one batch.
fn existing_from(first: &Ingested, first_type: &str) -> Ingested {
    match first {
        Ingested::Created {
            event_id,
            deliveries,
            ..
        } => Ingested::Existing {
            event_id: event_id.clone(),
            event_type: first_type.to_owned(),
            deliveries: *deliveries,
        },
        Ingested::Existing {
            event_id,
            event_type,
            deliveries,
        } => Ingested::Existing {
            event_id: event_id.clone(),
            event_type: event_type.clone(),
            deliveries: *deliveries,
        },
    }
}

/// The parts of a job every delivery of one event shares, allocated once.
pub(crate) struct EventShare {
    event_id: EventId,
    tenant_id: TenantId,
    event_type: Arc<str>,
    body: Arc<str>,
}

impl EventShare {
    pub fn new(event_id: EventId, tenant_id: TenantId, event_type: &str, body: &str) -> Self {
        EventShare {
            event_id,
            tenant_id,
            event_type: Arc::from(event_type),
            body: Arc::from(body),
        }
    }

    pub fn job(
        &self,
        delivery_id: DeliveryId,
        attempt: u32,
        leased_until: Timestamp,
        target: Arc<Target>,
    ) -> Job {
        Job {
            delivery_id,
            event_id: self.event_id.clone(),
            tenant_id: self.tenant_id.clone(),
            event_type: self.event_type.clone(),
            body: self.body.clone(),
            attempt,
            leased_until,
            target,
            counted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::domain::crypto::Keyring;
    use crate::domain::event::NewEvent;
    use crate::domain::id::{EventId, TenantId};
    use crate::domain::tenant::Tenant;
    use crate::domain::time::Timestamp;
    use crate::domain::webhook::{NewWebhook, Webhook};
    use crate::store::{Ingested, LeasePlan, SqliteStore, Store, StoreError};

    fn webhook(tenant_id: &TenantId, event: &str) -> Webhook {
        let new = NewWebhook {
            name: event.to_owned(),
            description: None,
            url: "http://127.0.0.1:9/".to_owned(),
            events: vec![event.to_owned()],
            secret: None,
            retry_count: 0,
            retry_schedule: None,
            timeout_seconds: 5,
            headers: Vec::new(),
            rate_limit_per_second: None,
            filter: None,
            is_active: true,
            disable_after: Default::default(),
        };
        Webhook::create(tenant_id, new, Timestamp::now())
    }

    fn event(tenant_id: &TenantId, event_type: &'static str) -> NewEvent {
        NewEvent {
            id: EventId::new(),
            tenant_id: tenant_id.clone(),
            event_type,
            idempotency_key: None,
            created_at: Timestamp::now(),
            body: "{}".to_owned(),
        }
    }

    fn plan(lease: bool) -> LeasePlan {
        LeasePlan {
            node: "node".to_owned(),
            until: Timestamp::now().plus_millis(60_000),
            lease,
            skip_webhooks: Vec::new(),
        }
    }

    fn keys() -> Arc<Keyring> {
        Arc::new(Keyring::new(&Keyring::generate_key(), &[]))
    }

    /// Fan-out opens the secrets of the webhooks an event is delivered to by this node, and
    /// no others: a webhook whose secret cannot be opened (sealed with a key this node no
    /// longer has) stops only the events it would receive, not every event of its tenant.
    #[tokio::test]
    async fn fan_out_opens_only_the_secrets_it_delivers_with() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = dir.path().join("hookrelay.db").display().to_string();
        let now = Timestamp::now();
        let tenant = Tenant {
            id: TenantId::new(),
            name: "t".to_owned(),
            created_at: now,
            updated_at: now,
        };
        let unopenable = webhook(&tenant.id, "invoice.paid");
        let store = SqliteStore::open(&url, keys()).await.expect("open");
        store.insert_tenant(&tenant).await.expect("tenant");
        assert!(store.insert_webhook(&unopenable, 0).await.expect("insert"));
        store.close().await;
        drop(store);

        // Another operator key: the first webhook's secret no longer opens.
        let store = SqliteStore::open(&url, keys()).await.expect("reopen");
        let openable = webhook(&tenant.id, "order.created");
        assert!(store.insert_webhook(&openable, 0).await.expect("insert"));

        let done = store
            .ingest(&[event(&tenant.id, "order.created")], &plan(true))
            .await
            .expect("an event the unopenable webhook does not subscribe to");
        let [
            Ingested::Created {
                deliveries, jobs, ..
            },
        ] = &done[..]
        else {
            panic!("one event created, got {done:?}");
        };
        assert_eq!(*deliveries, 1);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].target.webhook_id, openable.id);

        // Left for the poller, a delivery needs no secret at ingest.
        let done = store
            .ingest(&[event(&tenant.id, "invoice.paid")], &plan(false))
            .await
            .expect("a delivery this node does not lease");
        assert!(
            matches!(&done[..], [Ingested::Created { deliveries: 1, jobs, .. }] if jobs.is_empty())
        );

        // Leased here, it does: the secret really is unopenable.
        let refused = store
            .ingest(&[event(&tenant.id, "invoice.paid")], &plan(true))
            .await;
        assert!(
            matches!(refused, Err(StoreError::Corrupt(_))),
            "{refused:?}"
        );
        store.close().await;
    }
}
