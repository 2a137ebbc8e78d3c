//! Who is connected, and what to do about it: the cap on connections (overall and per client
//! address), which connection to shed when a new one arrives at the cap, and which ones have
//! outlived their deadline. The rules are pure functions of a connection's [`Snapshot`]
//! and the time, tested below without sockets; [`Registry`] applies them under one lock that
//! is taken per connection (admit, close, sweep), never per request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// A connection asked to close gracefully that is still open after this (a client that does
/// not read its answer) is cut.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How many shedding candidates one scan of the registry finds, so that a flood of new
/// connections at the cap costs one scan per this many, not one per connection.
const CANDIDATES: usize = 64;

/// The caps, as in effect (the overall one already kept below the descriptor limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub max: usize,
    /// 0: no per-address cap.
    pub per_ip: usize,
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address already has `per_ip` connections.
    PerAddress,
    /// The server has `max` connections and none of them may be shed.
    Full,
}

/// What one connection is doing, as its socket and its requests tell it. Times are
/// milliseconds since the registry's epoch; shared with the socket wrapper and the service,
/// which update it with single atomic operations.
pub struct Activity {
    epoch: Instant,
    /// Requests whose answer is not yet produced.
    in_flight: AtomicU32,
    /// At least one request has started on this connection.
    served: AtomicBool,
    /// When `in_flight` last fell to zero (at first: when accepted).
    idle_since: AtomicU64,
    /// 1 + when bytes of a further request head arrived on an idle, served HTTP/1 connection;
    /// 0: none since the last request started.
    head_started: AtomicU64,
    /// HTTP/2: its idle frames (PING, SETTINGS) are no request head.
    h2: AtomicBool,
}

impl Activity {
    fn new(epoch: Instant, now_ms: u64) -> Self {
        Activity {
            epoch,
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            idle_since: AtomicU64::new(now_ms),
            head_started: AtomicU64::new(0),
            h2: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Bytes arrived on the socket.
    pub fn on_bytes(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
            && self.served.load(Ordering::Relaxed)
            && !self.h2.load(Ordering::Relaxed)
        {
            self.head_started
                .store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// A request started (its head is parsed); the guard ends it when its answer is ready.
    pub fn begin(self: &Arc<Self>, h2: bool) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        if h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        self.served.store(true, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn snapshot(&self, accepted_ms: u64) -> Snapshot {
        Snapshot {
            accepted: accepted_ms,
            in_flight: self.in_flight.load(Ordering::Relaxed),
            served: self.served.load(Ordering::Relaxed),
            idle_since: self.idle_since.load(Ordering::Relaxed),
            head_started: self.head_started.load(Ordering::Relaxed).checked_sub(1),
        }
    }
}

/// One request in flight; dropped when its answer is produced.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since.store(self.0.now_ms(), Ordering::Relaxed);
        }
    }
}

/// A connection's state at one moment, for the pure rules below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub accepted: u64,
    pub in_flight: u32,
    pub served: bool,
    pub idle_since: u64,
    pub head_started: Option<u64>,
}

/// What the sweep does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Idle too long: close it gracefully (HTTP/2 GOAWAY; HTTP/1 closes when idle).
    Close,
    /// A request head not complete in time, or a graceful close not done in time: cut it.
    Cut,
}

impl Snapshot {
    /// Deadlines, Go `net/http` style: a request head must be complete within `head_timeout`
    /// of the connection's start, or of its first byte on a kept-alive connection; a
    /// connection with nothing in flight closes after `idle_timeout`. A request in flight is
    /// bounded by the body read timeout and its handler, not here.
    pub fn verdict(&self, now: u64, caps: &Caps, close_requested: Option<u64>) -> Verdict {
        if self.in_flight > 0 {
            return Verdict::Keep;
        }
        let head = millis(caps.head_timeout);
        if !self.served && now.saturating_sub(self.accepted) >= head {
            return Verdict::Cut;
        }
        if self
            .head_started
            .is_some_and(|t| now.saturating_sub(t) >= head)
        {
            return Verdict::Cut;
        }
        if let Some(asked) = close_requested {
            return if now.saturating_sub(asked) >= millis(CLOSE_GRACE) {
                Verdict::Cut
            } else {
                Verdict::Keep
            };
        }
        if self.served && now.saturating_sub(self.idle_since) >= millis(caps.idle_timeout) {
            return Verdict::Close;
        }
        Verdict::Keep
    }

    /// Its place in the shedding order, lowest first; `None`: never shed (a request is in
    /// flight). First the connections that have not sent a whole request head (never served,
    /// or a further head begun), oldest first: what an attacker holding slots looks like.
    /// Then idle kept-alive ones, longest idle first.
    pub fn shed_order(&self) -> Option<(u8, u64)> {
        if self.in_flight > 0 {
            return None;
        }
        if !self.served {
            return Some((0, self.accepted));
        }
        match self.head_started {
            Some(t) => Some((0, t)),
            None => Some((1, self.idle_since)),
        }
    }
}

/// One admitted connection.
pub struct Conn {
    id: u64,
    ip: IpAddr,
    accepted_ms: u64,
    pub activity: Arc<Activity>,
    /// Cut now: shed, or past its deadline.
    pub cut: CancellationToken,
    /// Close gracefully: idle too long.
    pub close: CancellationToken,
    close_requested: AtomicU64,
}

pub struct Registry {
    caps: Caps,
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, Arc<Conn>>,
    per_ip: HashMap<IpAddr, usize>,
    /// Ids to shed next, the first to go last.
    candidates: Vec<u64>,
}

impl Inner {
    fn forget(&mut self, id: u64) -> Option<Arc<Conn>> {
        let conn = self.conns.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&conn.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        Some(conn)
    }

    /// The next connection to shed, taken out of the registry.
    fn take_victim(&mut self) -> Option<Arc<Conn>> {
        loop {
            if self.candidates.is_empty() {
                self.find_candidates();
            }
            let id = self.candidates.pop()?;
            let still = self
                .conns
                .get(&id)
                .is_some_and(|c| c.activity.snapshot(c.accepted_ms).shed_order().is_some());
            if still {
                return self.forget(id);
            }
        }
    }

    fn find_candidates(&mut self) {
        let mut found: Vec<((u8, u64), u64)> = self
            .conns
            .values()
            .filter_map(|c| Some((c.activity.snapshot(c.accepted_ms).shed_order()?, c.id)))
            .collect();
        if found.len() > CANDIDATES {
            found.select_nth_unstable(CANDIDATES - 1);
            found.truncate(CANDIDATES);
        }
        // Sorted so that `pop` takes the first in the shedding order.
        found.sort_unstable_by(|a, b| b.cmp(a));
        self.candidates = found.into_iter().map(|(_, id)| id).collect();
    }
}

/// An admitted connection's place in the registry; dropped when the connection ends.
pub struct Ticket {
    registry: Arc<Registry>,
    pub conn: Arc<Conn>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.lock().forget(self.conn.id);
    }
}

impl Registry {
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Registry {
            caps,
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }

    /// Admits a connection from `ip`, shedding another if the server is full; or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let now = self.now_ms();
        let mut inner = self.lock();
        if self.caps.per_ip > 0 && inner.per_ip.get(&ip).copied().unwrap_or(0) >= self.caps.per_ip {
            return Err(Refusal::PerAddress);
        }
        if inner.conns.len() >= self.caps.max {
            let victim = inner.take_victim().ok_or(Refusal::Full)?;
            victim.cut.cancel();
        }
        inner.next_id += 1;
        let conn = Arc::new(Conn {
            id: inner.next_id,
            ip,
            accepted_ms: now,
            activity: Arc::new(Activity::new(self.epoch, now)),
            cut: CancellationToken::new(),
            close: CancellationToken::new(),
            close_requested: AtomicU64::new(0),
        });
        inner.conns.insert(conn.id, conn.clone());
        *inner.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Ticket {
            registry: self.clone(),
            conn,
        })
    }

    /// Applies the deadlines to every connection once.
    pub fn sweep(&self) {
        let now = self.now_ms();
        let inner = self.lock();
        for conn in inner.conns.values() {
            let asked = conn.close_requested.load(Ordering::Relaxed).checked_sub(1);
            match conn
                .activity
                .snapshot(conn.accepted_ms)
                .verdict(now, &self.caps, asked)
            {
                Verdict::Keep => {}
                Verdict::Close => {
                    conn.close_requested.store(now + 1, Ordering::Relaxed);
                    conn.close.cancel();
                }
                Verdict::Cut => conn.cut.cancel(),
            }
        }
    }

    /// How often to sweep: often enough that a deadline is kept to within a quarter of it.
    pub fn sweep_every(&self) -> Duration {
        (self.caps.head_timeout.min(self.caps.idle_timeout) / 4)
            .clamp(Duration::from_millis(25), Duration::from_secs(1))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().conns.len()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        max: 3,
        per_ip: 2,
        head_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
    };

    fn fresh(accepted: u64) -> Snapshot {
        Snapshot {
            accepted,
            in_flight: 0,
            served: false,
            idle_since: accepted,
            head_started: None,
        }
    }

    #[test]
    fn a_head_must_be_complete_within_the_deadline_of_the_start() {
        let s = fresh(1_000);
        assert_eq!(s.verdict(10_999, &CAPS, None), Verdict::Keep);
        assert_eq!(s.verdict(11_000, &CAPS, None), Verdict::Cut);
        // Once a request is in flight, the deadline is no longer the connection's concern.
        let busy = Snapshot { in_flight: 1, ..s };
        assert_eq!(busy.verdict(99_000, &CAPS, None), Verdict::Keep);
    }

    #[test]
    fn a_kept_alive_connection_idles_longer_than_a_head_may_trickle() {
        let idle = Snapshot {
            served: true,
            idle_since: 5_000,
            ..fresh(0)
        };
        assert_eq!(idle.verdict(64_999, &CAPS, None), Verdict::Keep);
        assert_eq!(idle.verdict(65_000, &CAPS, None), Verdict::Close);
        // Its next head began at 20 s: it must be complete by 30 s.
        let trickling = Snapshot {
            head_started: Some(20_000),
            ..idle
        };
        assert_eq!(trickling.verdict(29_999, &CAPS, None), Verdict::Keep);
        assert_eq!(trickling.verdict(30_000, &CAPS, None), Verdict::Cut);
        // Asked to close and still there after the grace: cut.
        assert_eq!(idle.verdict(66_000, &CAPS, Some(65_000)), Verdict::Keep);
        assert_eq!(idle.verdict(70_000, &CAPS, Some(65_000)), Verdict::Cut);
    }

    #[test]
    fn shedding_takes_half_sent_heads_first_then_the_longest_idle_never_a_busy_one() {
        let a = fresh(100);
        let b = fresh(50);
        let kept = Snapshot {
            served: true,
            idle_since: 10,
            ..fresh(0)
        };
        let trickling = Snapshot {
            head_started: Some(70),
            ..kept
        };
        let busy = Snapshot {
            in_flight: 1,
            ..kept
        };
        let mut order = [a, b, kept, trickling];
        order.sort_by_key(|s| s.shed_order());
        assert_eq!(order, [b, trickling, a, kept]);
        assert_eq!(busy.shed_order(), None);
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_full_server_sheds_the_oldest_idle_connection_and_refuses_past_the_address_cap() {
        let registry = Registry::new(CAPS);
        let first = registry.admit(ip(1)).unwrap();
        let _second = registry.admit(ip(1)).unwrap();
        assert_eq!(registry.admit(ip(1)).err(), Some(Refusal::PerAddress));
        let _third = registry.admit(ip(2)).unwrap();
        // Full: the oldest connection that has not sent a request is cut for the newcomer.
        let fourth = registry.admit(ip(3)).unwrap();
        assert!(first.conn.cut.is_cancelled());
        assert_eq!(registry.len(), 3);
        // Full again: the next oldest idle one (the second) goes.
        let _again = registry.admit(ip(1)).unwrap();
        drop(first);
        assert_eq!(registry.len(), 3);
        // The fourth (now the only one not cut of the newer ones) stays open.
        assert!(!fourth.conn.cut.is_cancelled());
    }

    #[test]
    fn a_server_full_of_busy_connections_refuses() {
        let registry = Registry::new(CAPS);
        let tickets: Vec<_> = (1..=3).map(|n| registry.admit(ip(n)).unwrap()).collect();
        let _busy: Vec<_> = tickets
            .iter()
            .map(|t| t.conn.activity.begin(false))
            .collect();
        assert_eq!(registry.admit(ip(9)).err(), Some(Refusal::Full));
        assert!(tickets.iter().all(|t| !t.conn.cut.is_cancelled()));
    }

    #[test]
    fn activity_moves_a_connection_between_the_states() {
        let registry = Registry::new(CAPS);
        let ticket = registry.admit(ip(1)).unwrap();
        let activity = &ticket.conn.activity;
        // Bytes before the first request do not move its deadline (the start does).
        activity.on_bytes();
        assert_eq!(activity.snapshot(0).head_started, None);
        let request = activity.begin(false);
        assert_eq!(activity.snapshot(0).shed_order(), None);
        drop(request);
        let s = activity.snapshot(0);
        assert!(s.served && s.in_flight == 0 && s.head_started.is_none());
        activity.on_bytes();
        assert!(activity.snapshot(0).head_started.is_some());
        drop(activity.begin(false));
        assert_eq!(activity.snapshot(0).head_started, None);
        // HTTP/2's idle frames start no head.
        drop(activity.begin(true));
        activity.on_bytes();
        assert_eq!(activity.snapshot(0).head_started, None);
    }
}
