//! Local scheduling of leased deliveries: one lane per webhook, served round-robin by a fixed
//! pool of workers. A lane never has more than `per_webhook` attempts in flight, so one slow
//! receiver holds at most that many workers and cannot starve the others. A webhook with a
//! `rate_limit_per_second` is paced: when its bucket is empty its lane is parked until the next
//! token, and one pacer task puts parked lanes back in turn.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::domain::delivery::Job;
use crate::domain::id::{DeliveryId, WebhookId};
use crate::domain::pace::Pacer;

/// Limits on what one node holds in memory and runs at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Attempts in flight for one webhook.
    pub per_webhook: usize,
    /// Jobs one webhook may have queued here; beyond it, its work waits in the database.
    pub per_webhook_queue: usize,
    /// Jobs queued here in all.
    pub capacity: usize,
}

#[derive(Default)]
struct Lane {
    jobs: VecDeque<Job>,
    in_flight: usize,
    /// Whether the lane is in `ready` (at most once).
    ready: bool,
    /// Waiting for its rate limit: out of `ready` until the pacer puts it back.
    parked: bool,
}

impl Lane {
    /// Whether the lane should be (put) in `ready`.
    fn can_run(&self, per_webhook: usize) -> bool {
        !self.ready && !self.parked && !self.jobs.is_empty() && self.in_flight < per_webhook
    }
}

#[derive(Default)]
struct State {
    lanes: HashMap<WebhookId, Lane>,
    ready: VecDeque<WebhookId>,
    /// Deliveries queued or in flight here, so a poll never queues one twice.
    known: HashSet<DeliveryId>,
    queued: usize,
    closed: bool,
    /// Token buckets of rate-limited webhooks. They outlive lanes (a lane ends whenever its
    /// queue drains), or a webhook could burst past its limit each time it refilled.
    pacers: HashMap<WebhookId, Pacer>,
    /// Parked lanes by the time their next token is due.
    parked: BinaryHeap<Reverse<(Instant, WebhookId)>>,
    /// Counts the changes seen ([`Dispatcher::drop_webhook`], [`Dispatcher::drop_all`]).
    epoch: u64,
    /// The latest changes, oldest first: the epoch each made and its webhook (`None`: all).
    /// Work claimed before a change, with the settings of before, is refused after it.
    changes: VecDeque<(u64, Option<WebhookId>)>,
    /// The newest epoch no longer in `changes`: work claimed before it is refused whole.
    forgotten: u64,
}

/// Changes remembered for refusing work claimed before them. A claim takes one transaction,
/// so only the changes made during one are ever looked at; past this many, a claim that old
/// is refused whole (its leases go back, to be claimed afresh).
const CHANGES_KEPT: usize = 1024;

impl State {
    /// A change to one webhook's settings (`Some`), or possibly to any (`None`).
    fn record_change(&mut self, webhook_id: Option<&WebhookId>) {
        self.epoch += 1;
        if self.changes.len() == CHANGES_KEPT
            && let Some((epoch, _)) = self.changes.pop_front()
        {
            self.forgotten = epoch;
        }
        self.changes.push_back((self.epoch, webhook_id.cloned()));
    }

    /// Which webhooks changed after `since`: all of them (`None`), or these.
    fn changed_since(&self, since: u64) -> Option<HashSet<WebhookId>> {
        if since < self.forgotten {
            return None;
        }
        let mut changed = HashSet::new();
        for (epoch, webhook_id) in self.changes.iter().rev() {
            if *epoch <= since {
                break;
            }
            changed.insert(webhook_id.clone()?);
        }
        Some(changed)
    }

    /// Empties one lane's queue (its attempts in flight go on); the dropped delivery ids.
    fn drop_lane(&mut self, webhook_id: &WebhookId) -> Vec<DeliveryId> {
        let Some(lane) = self.lanes.get_mut(webhook_id) else {
            return Vec::new();
        };
        let dropped: Vec<DeliveryId> = lane.jobs.drain(..).map(|j| j.delivery_id).collect();
        lane.parked = false; // its heap entry goes stale and is skipped
        if lane.in_flight == 0 {
            self.lanes.remove(webhook_id);
        }
        self.queued -= dropped.len();
        for id in &dropped {
            self.known.remove(id);
        }
        dropped
    }
}

pub struct Dispatcher {
    limits: Limits,
    /// How far ahead a paced webhook's work is leased: its rate times this many seconds.
    paced_horizon: Duration,
    state: Mutex<State>,
    work: Notify,
    /// Wakes the pacer when a lane is parked earlier than any before it, or on close.
    pacer: Notify,
}

/// Half the default lease: paced work is attempted well before its lease runs out.
const DEFAULT_PACED_HORIZON: Duration = Duration::from_secs(60);

/// How often the pacer forgets buckets that refilled completely.
const PACER_PRUNE: Duration = Duration::from_secs(10);

impl Dispatcher {
    pub fn new(limits: Limits) -> Self {
        Dispatcher {
            limits,
            paced_horizon: DEFAULT_PACED_HORIZON,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            pacer: Notify::new(),
        }
    }

    /// Leases a paced webhook's work only `horizon` ahead of its rate, so queued jobs are
    /// attempted before their lease (keep it well under the lease) runs out.
    pub fn with_paced_horizon(mut self, horizon: Duration) -> Self {
        self.paced_horizon = horizon;
        self
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain counters behind; keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where changes stand now: take it before claiming work, and hand it to [`Self::push`].
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Queues jobs leased since `since` (an [`Self::epoch`] taken before the claim). Returns
    /// those it refused, whose leases the caller should give back: all once closed, and those
    /// of webhooks that changed since `since`, which carry the settings of before.
    pub fn push(&self, jobs: Vec<Job>, since: u64) -> Vec<Job> {
        let mut refused = Vec::new();
        let mut state = self.lock();
        let changed = state.changed_since(since);
        for job in jobs {
            let stale = changed
                .as_ref()
                .is_none_or(|changed| changed.contains(&job.target.webhook_id));
            if state.closed || stale {
                refused.push(job);
                continue;
            }
            if !state.known.insert(job.delivery_id.clone()) {
                continue; // already here: the claim only renewed our own lease
            }
            state.queued += 1;
            let webhook_id = job.target.webhook_id.clone();
            let lane = state.lanes.entry(webhook_id.clone()).or_default();
            lane.jobs.push_back(job);
            if lane.can_run(self.limits.per_webhook) {
                lane.ready = true;
                state.ready.push_back(webhook_id);
            }
        }
        let any_ready = !state.ready.is_empty();
        drop(state);
        if any_ready {
            self.work.notify_one();
        }
        refused
    }

    /// The next job to attempt, waiting for one; `None` once closed.
    pub async fn next(&self) -> Option<Job> {
        loop {
            let notified = self.work.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_next() {
                Ok(job) => return Some(job),
                Err(true) => return None,
                Err(false) => notified.await,
            }
        }
    }

    /// A job, or `Err(closed)`.
    fn try_next(&self) -> Result<Job, bool> {
        self.try_next_at(Instant::now())
    }

    fn try_next_at(&self, now: Instant) -> Result<Job, bool> {
        let mut state = self.lock();
        let state = &mut *state;
        while let Some(webhook_id) = state.ready.pop_front() {
            let Some(lane) = state.lanes.get_mut(&webhook_id) else {
                continue;
            };
            let Some(rate) = lane.jobs.front().map(|j| j.target.rate_limit) else {
                lane.ready = false;
                continue;
            };
            if let Some(rate) = rate {
                if !state.pacers.contains_key(&webhook_id) {
                    state
                        .pacers
                        .insert(webhook_id.clone(), Pacer::new(rate, now));
                }
                let taken = match state.pacers.get_mut(&webhook_id) {
                    Some(pacer) => pacer.take(rate, now),
                    None => Ok(()),
                };
                if let Err(due) = taken {
                    lane.ready = false;
                    lane.parked = true;
                    let earliest = state.parked.peek().is_none_or(|Reverse((at, _))| due < *at);
                    state.parked.push(Reverse((due, webhook_id)));
                    if earliest {
                        self.pacer.notify_one();
                    }
                    continue;
                }
            }
            let Some(job) = lane.jobs.pop_front() else {
                lane.ready = false;
                continue;
            };
            lane.in_flight += 1;
            state.queued -= 1;
            if !lane.jobs.is_empty() && lane.in_flight < self.limits.per_webhook {
                state.ready.push_back(webhook_id); // round-robin: to the back
            } else {
                lane.ready = false;
            }
            if !state.ready.is_empty() {
                // More work: pass the wake-up on to another idle worker.
                self.work.notify_one();
            }
            return Ok(job);
        }
        Err(state.closed)
    }

    /// An attempt of `webhook_id` finished (recorded or not).
    pub fn done(&self, webhook_id: &WebhookId, delivery_id: &DeliveryId) {
        let mut state = self.lock();
        let state = &mut *state;
        state.known.remove(delivery_id);
        let Some(lane) = state.lanes.get_mut(webhook_id) else {
            return;
        };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        if lane.jobs.is_empty() && lane.in_flight == 0 && !lane.parked {
            state.lanes.remove(webhook_id);
        } else if lane.can_run(self.limits.per_webhook) {
            lane.ready = true;
            state.ready.push_back(webhook_id.clone());
            self.work.notify_one();
        }
    }

    /// Drops the queued (not in-flight) jobs of a webhook whose settings changed; returns
    /// their delivery ids so their leases can be given back and reclaimed with fresh settings.
    /// Work of it claimed before this call is refused when it comes to be queued.
    pub fn drop_webhook(&self, webhook_id: &WebhookId) -> Vec<DeliveryId> {
        let mut state = self.lock();
        state.record_change(Some(webhook_id));
        state.drop_lane(webhook_id)
    }

    /// Drops every queued job, as if every webhook had changed (changes may have been missed);
    /// returns their delivery ids. Attempts in flight go on.
    pub fn drop_all(&self) -> Vec<DeliveryId> {
        let mut state = self.lock();
        state.record_change(None);
        let webhooks: Vec<WebhookId> = state.lanes.keys().cloned().collect();
        webhooks
            .iter()
            .flat_map(|webhook_id| state.drop_lane(webhook_id))
            .collect()
    }

    /// Stops handing out work; returns the ids of every queued job (their leases to give
    /// back). Workers finish their current attempt, then `next` answers `None`.
    pub fn close(&self) -> Vec<DeliveryId> {
        let mut state = self.lock();
        state.closed = true;
        state.ready.clear();
        state.queued = 0;
        let mut ids = Vec::new();
        for lane in state.lanes.values_mut() {
            ids.extend(lane.jobs.drain(..).map(|j| j.delivery_id));
            lane.ready = false;
            lane.parked = false;
        }
        state.parked.clear();
        drop(state);
        self.work.notify_waiters();
        self.pacer.notify_one();
        ids
    }

    /// Puts parked lanes back in `ready` as their tokens fall due; returns once closed. One
    /// task runs this beside the workers, so idle workers never poll a clock.
    pub async fn pace(&self) {
        let mut pruned = Instant::now();
        loop {
            let notified = self.pacer.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut state = self.lock();
                if state.closed {
                    return;
                }
                let now = Instant::now();
                let woke = self.unpark(&mut state, now);
                if now.duration_since(pruned) >= PACER_PRUNE {
                    pruned = now;
                    let State { pacers, lanes, .. } = &mut *state;
                    pacers.retain(|id, p| lanes.contains_key(id) || !p.is_full(now));
                }
                if woke {
                    self.work.notify_one();
                }
                state.parked.peek().map(|Reverse((at, _))| *at)
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => {}
                        () = &mut notified => {}
                    }
                }
                None => {
                    tokio::select! {
                        () = tokio::time::sleep(PACER_PRUNE) => {}
                        () = &mut notified => {}
                    }
                }
            }
        }
    }

    /// Moves lanes whose token is due from `parked` to `ready`; whether any moved.
    fn unpark(&self, state: &mut State, now: Instant) -> bool {
        let mut woke = false;
        while let Some(Reverse((at, _))) = state.parked.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, webhook_id))) = state.parked.pop() else {
                break;
            };
            let Some(lane) = state.lanes.get_mut(&webhook_id) else {
                continue;
            };
            if !lane.parked {
                continue; // stale: dropped or re-queued since
            }
            lane.parked = false;
            if lane.can_run(self.limits.per_webhook) {
                lane.ready = true;
                state.ready.push_back(webhook_id);
                woke = true;
            } else if lane.jobs.is_empty() && lane.in_flight == 0 {
                state.lanes.remove(&webhook_id);
            }
        }
        woke
    }

    /// Room left in the local queue.
    pub fn room(&self) -> usize {
        let state = self.lock();
        if state.closed {
            0
        } else {
            self.limits.capacity.saturating_sub(state.queued)
        }
    }

    /// Whether to lease new work at all, and which webhooks' work to leave in the database.
    pub fn saturation(&self) -> (bool, Vec<WebhookId>) {
        let state = self.lock();
        let lease = !state.closed && state.queued < self.limits.capacity;
        let full = state
            .lanes
            .iter()
            .filter(|(_, lane)| lane.jobs.len() >= self.queue_cap(lane))
            .map(|(id, _)| id.clone())
            .collect();
        (lease, full)
    }

    /// Jobs a lane may hold here. A paced webhook holds only what its rate gets through within
    /// the horizon: more would sit parked past its lease, needing renewals or being claimed
    /// by another node, and would take room that other webhooks' work should have.
    fn queue_cap(&self, lane: &Lane) -> usize {
        match lane.jobs.front().and_then(|j| j.target.rate_limit) {
            Some(rate) => usize::try_from(rate)
                .unwrap_or(usize::MAX)
                .saturating_mul(usize::try_from(self.paced_horizon.as_secs()).unwrap_or(usize::MAX))
                .min(self.limits.per_webhook_queue)
                .max(1),
            None => self.limits.per_webhook_queue,
        }
    }

    /// Jobs queued here (not in flight).
    pub fn queued(&self) -> usize {
        self.lock().queued
    }

    /// Attempts in flight here (summed at scrape time, so the hot path keeps no extra count).
    pub fn in_flight(&self) -> usize {
        self.lock().lanes.values().map(|lane| lane.in_flight).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::delivery::Target;
    use crate::domain::id::{EventId, Id, TenantId};
    use crate::domain::time::Timestamp;
    use std::sync::Arc;
    use std::time::Duration;

    fn wid(id: &str) -> WebhookId {
        WebhookId::from_stored(id.to_owned())
    }

    fn did(id: &str) -> DeliveryId {
        DeliveryId::from_stored(id.to_owned())
    }

    fn job(webhook: &Arc<Target>, n: usize) -> Job {
        Job {
            delivery_id: did(&format!("dlv_{}_{n}", webhook.webhook_id)),
            event_id: EventId::from_stored("evt_1".into()),
            tenant_id: TenantId::from_stored("ten_1".into()),
            event_type: Arc::from("message.new"),
            body: Arc::from("{}"),
            attempt: 1,
            leased_until: Timestamp(0),
            target: webhook.clone(),
            counted: false,
        }
    }

    fn target(id: &str) -> Arc<Target> {
        Arc::new(Target {
            webhook_id: wid(id),
            url: "http://127.0.0.1/".into(),
            secrets: Vec::new(),
            headers: Vec::new(),
            rate_limit: None,
            timeout: Duration::from_secs(1),
            retries: crate::domain::retry::Retries::Backoff(0),
        })
    }

    fn paced(id: &str, rate: u32) -> Arc<Target> {
        Arc::new(Target {
            webhook_id: wid(id),
            url: "http://127.0.0.1/".into(),
            secrets: Vec::new(),
            headers: Vec::new(),
            rate_limit: Some(rate),
            timeout: Duration::from_secs(1),
            retries: crate::domain::retry::Retries::Backoff(0),
        })
    }

    fn limits() -> Limits {
        Limits {
            per_webhook: 2,
            per_webhook_queue: 3,
            capacity: 100,
        }
    }

    #[test]
    fn caps_in_flight_per_webhook_and_serves_round_robin() {
        let d = Dispatcher::new(limits());
        let (slow, fast) = (target("wh_slow"), target("wh_fast"));
        d.push((0..5).map(|n| job(&slow, n)).collect(), 0);
        d.push((0..2).map(|n| job(&fast, n)).collect(), 0);
        let order: Vec<String> = std::iter::from_fn(|| d.try_next().ok())
            .map(|j| j.target.webhook_id.to_string())
            .collect();
        // Two of the slow webhook (its cap), interleaved with the fast one, then nothing.
        assert_eq!(order, ["wh_slow", "wh_fast", "wh_slow", "wh_fast"]);
        assert_eq!(d.queued(), 3);
        d.done(&wid("wh_slow"), &did("dlv_wh_slow_0"));
        assert_eq!(
            d.try_next()
                .map(|j| j.delivery_id.to_string())
                .ok()
                .as_deref(),
            Some("dlv_wh_slow_2")
        );
    }

    #[test]
    fn known_jobs_are_not_queued_twice() {
        let d = Dispatcher::new(limits());
        let t = target("wh_a");
        d.push(vec![job(&t, 1)], 0);
        d.push(vec![job(&t, 1)], 0);
        assert_eq!(d.queued(), 1);
    }

    #[test]
    fn saturation_names_full_lanes() {
        let d = Dispatcher::new(limits());
        let t = target("wh_a");
        d.push((0..3).map(|n| job(&t, n)).collect(), 0);
        assert_eq!(d.saturation(), (true, vec![wid("wh_a")]));
        assert_eq!(d.room(), 97);
    }

    #[test]
    fn a_paced_webhook_is_leased_only_its_rates_worth_ahead() {
        let d = Dispatcher::new(Limits {
            per_webhook_queue: 100,
            ..limits()
        })
        .with_paced_horizon(Duration::from_secs(2));
        let (paced, plain) = (paced("wh_paced", 3), target("wh_plain"));
        d.push((0..5).map(|n| job(&paced, n)).collect(), 0);
        d.push((0..5).map(|n| job(&plain, n)).collect(), 0);
        assert_eq!(d.saturation(), (true, Vec::<WebhookId>::new()));
        d.push(vec![job(&paced, 5)], 0);
        // 3 a second for 2 seconds: six queued is as far ahead as it is leased.
        assert_eq!(d.saturation(), (true, vec![wid("wh_paced")]));
    }

    #[test]
    fn drop_and_close_return_queued_ids() {
        let d = Dispatcher::new(limits());
        let (a, b) = (target("wh_a"), target("wh_b"));
        d.push(vec![job(&a, 1), job(&a, 2), job(&b, 1)], 0);
        let first = d.try_next().ok().map(|j| j.delivery_id.to_string());
        assert_eq!(first.as_deref(), Some("dlv_wh_a_1"));
        assert_eq!(d.drop_webhook(&wid("wh_a")), ["dlv_wh_a_2"]);
        assert_eq!(d.close(), ["dlv_wh_b_1"]);
        assert_eq!(d.try_next().err(), Some(true));
        assert_eq!(d.room(), 0);
        assert_eq!(d.push(vec![job(&b, 9)], 0).len(), 1);
    }

    #[test]
    fn work_claimed_before_a_change_is_refused_after_it() {
        let d = Dispatcher::new(limits());
        let (a, b) = (target("wh_a"), target("wh_b"));
        let before = d.epoch();
        // A claim is under way (it read wh_a's settings) when wh_a changes.
        assert!(d.drop_webhook(&wid("wh_a")).is_empty());
        let refused = d.push(vec![job(&a, 1), job(&b, 1)], before);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].delivery_id, "dlv_wh_a_1");
        // Claimed after the change: fresh settings, queued.
        assert!(d.push(vec![job(&a, 2)], d.epoch()).is_empty());
        assert_eq!(d.queued(), 2);
    }

    #[test]
    fn drop_all_empties_every_queue_and_refuses_older_claims() {
        let d = Dispatcher::new(limits());
        let (a, b) = (target("wh_a"), target("wh_b"));
        let before = d.epoch();
        d.push(vec![job(&a, 1), job(&a, 2), job(&b, 1)], before);
        let running = d.try_next().ok().map(|j| j.delivery_id.to_string());
        assert_eq!(running.as_deref(), Some("dlv_wh_a_1"));
        let mut dropped = d.drop_all();
        dropped.sort();
        assert_eq!(dropped, ["dlv_wh_a_2", "dlv_wh_b_1"]);
        assert_eq!(d.queued(), 0);
        assert_eq!(d.in_flight(), 1, "the attempt in flight goes on");
        assert_eq!(d.push(vec![job(&b, 2)], before).len(), 1);
        // The dropped jobs may come back, claimed afresh.
        assert!(d.push(vec![job(&a, 2)], d.epoch()).is_empty());
    }

    #[test]
    fn a_claim_older_than_the_changes_kept_is_refused_whole() {
        let d = Dispatcher::new(limits());
        let before = d.epoch();
        for n in 0..=CHANGES_KEPT {
            d.drop_webhook(&wid(&format!("wh_other_{n}")));
        }
        assert_eq!(d.push(vec![job(&target("wh_a"), 1)], before).len(), 1);
        assert!(d.push(vec![job(&target("wh_a"), 1)], d.epoch()).is_empty());
    }

    #[test]
    fn a_rate_limited_lane_waits_for_its_token_without_holding_up_others() {
        let d = Dispatcher::new(Limits {
            per_webhook: 10,
            ..limits()
        });
        let (slow, other) = (paced("wh_paced", 1), target("wh_other"));
        d.push((0..3).map(|n| job(&slow, n)).collect(), 0);
        d.push((0..2).map(|n| job(&other, n)).collect(), 0);
        let order: Vec<String> = std::iter::from_fn(|| d.try_next().ok())
            .map(|j| j.delivery_id.to_string())
            .collect();
        // One token for the paced webhook; the other one is not held up by it.
        assert_eq!(
            order,
            ["dlv_wh_paced_0", "dlv_wh_other_0", "dlv_wh_other_1"]
        );
        // Parked: new jobs and finished attempts do not bring it back early.
        d.push(vec![job(&slow, 3)], 0);
        d.done(&wid("wh_paced"), &did("dlv_wh_paced_0"));
        assert_eq!(d.try_next().err(), Some(false));
        let due = {
            let state = d.lock();
            state.parked.peek().map(|Reverse((at, _))| *at)
        };
        let due = due.expect("the paced lane is parked");
        {
            let mut state = d.lock();
            assert!(!d.unpark(&mut state, due - Duration::from_millis(1)));
            assert!(d.unpark(&mut state, due));
        }
        assert_eq!(
            d.try_next_at(due)
                .map(|j| j.delivery_id.to_string())
                .ok()
                .as_deref(),
            Some("dlv_wh_paced_1")
        );
        // Nothing is dropped: the rest is still queued, waiting for tokens.
        assert_eq!(d.queued(), 2);
        assert_eq!(d.close().len(), 2);
    }
}
