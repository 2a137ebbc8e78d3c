//! Rate limits on the API: failed authentications per client address, and requests per tenant
//! key and per client address (both off unless the operator sets them). Test sends per webhook
//! are the service's (`service::activity`): every front door must respect them.
//! Counted in this node's memory (GCRA, by `governor`): with several nodes behind a load
//! balancer each enforces the limit on the requests it sees.
//!
//! Why failures, not requests, by default: a platform posting events from one address with a
//! valid key must reach the engine's capacity, while guessing keys must stay slow. A tenant
//! key has 128 random bits, so guessing cannot succeed anyway; the limit keeps a scanner from
//! costing a key lookup per request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::problem::ApiError;
use crate::config::RateLimitConfig;
use crate::domain::id::ApiKeyId;

type Keyed<K> = DefaultKeyedRateLimiter<K>;

/// `n` a second per key, with a burst of one second's worth (a client that paused may catch
/// up, briefly); `None` for 0.
fn per_second<K: std::hash::Hash + Eq + Clone>(n: u32) -> Option<Keyed<K>> {
    NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_second(n)))
}

pub struct RateLimits {
    per_key: Option<Keyed<ApiKeyId>>,
    per_ip: Option<Keyed<IpAddr>>,
    auth_failures: Option<Keyed<IpAddr>>,
    /// Addresses over their failure allowance, until it refills. Checked on every request, so
    /// `any_blocked` lets the common case (nobody blocked) skip the lock.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    any_blocked: AtomicBool,
    client_ip_header: Option<String>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        RateLimits {
            per_key: per_second(config.per_key),
            per_ip: per_second(config.per_ip),
            auth_failures: NonZeroU32::new(config.auth_failures_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            blocked: Mutex::new(HashMap::new()),
            any_blocked: AtomicBool::new(false),
            client_ip_header: config
                .client_ip_header
                .as_deref()
                .map(str::to_ascii_lowercase)
                .filter(|h| !h.is_empty()),
            clock: DefaultClock::default(),
        }
    }

    fn check<K: std::hash::Hash + Eq + Clone>(
        &self,
        limiter: Option<&Keyed<K>>,
        key: &K,
        scope: &'static str,
    ) -> Result<(), ApiError> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter
            .check_key(key)
            .map_err(|not_until| ApiError::RateLimited {
                scope,
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// One request made with tenant key `key_id`.
    pub fn check_key(&self, key_id: &ApiKeyId) -> Result<(), ApiError> {
        self.check(self.per_key.as_ref(), key_id, "this API key")
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.blocked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refuses an address that spent its failed-authentication allowance, until it refills.
    fn check_not_blocked(&self, ip: IpAddr) -> Result<(), ApiError> {
        if !self.any_blocked.load(Ordering::Relaxed) {
            return Ok(());
        }
        match self.blocked().get(&ip) {
            Some(until) if *until > Instant::now() => Err(ApiError::RateLimited {
                scope: "failed authentications from this client address",
                retry_after: until.saturating_duration_since(Instant::now()),
            }),
            _ => Ok(()),
        }
    }

    /// One request from `ip` failed authentication.
    fn auth_failed(&self, ip: IpAddr) {
        let Some(limiter) = &self.auth_failures else {
            return;
        };
        if let Err(not_until) = limiter.check_key(&ip) {
            let wait = not_until.wait_time_from(self.clock.now());
            self.blocked().insert(ip, Instant::now() + wait);
            self.any_blocked.store(true, Ordering::Relaxed);
        }
    }

    /// The client's address: the configured proxy header's last entry (the one the operator's
    /// proxy appended; earlier ones are the client's to forge), else the peer.
    fn client_ip(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        let from_header = self.client_ip_header.as_deref().and_then(|name| {
            let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
            value.rsplit(',').next()?.trim().parse().ok()
        });
        from_header.or(peer)
    }

    /// Forgets clients and keys idle long enough that their allowance is whole again.
    pub fn prune(&self) {
        if let Some(limiter) = &self.per_key {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        for limiter in [&self.per_ip, &self.auth_failures].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        let now = Instant::now();
        let mut blocked = self.blocked();
        blocked.retain(|_, until| *until > now);
        self.any_blocked
            .store(!blocked.is_empty(), Ordering::Relaxed);
    }
}

/// How often idle entries are forgotten.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Middleware: the per-address limits, before authentication, so that an address that keeps
/// failing to authenticate is refused before its next guess is even checked.
pub async fn per_client(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.limits;
    if limits.per_ip.is_none() && limits.auth_failures.is_none() {
        return next.run(request).await;
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let Some(ip) = limits.client_ip(request.headers(), peer) else {
        return next.run(request).await;
    };
    if let Err(limited) = limits
        .check_not_blocked(ip)
        .and_then(|()| limits.check(limits.per_ip.as_ref(), &ip, "this client address"))
    {
        return limited.into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        limits.auth_failed(ip);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(config: RateLimitConfig) -> RateLimits {
        RateLimits::new(&config)
    }

    #[test]
    fn limits_per_key_and_says_when_to_come_back() {
        let l = limits(RateLimitConfig {
            per_key: 2,
            ..RateLimitConfig::default()
        });
        let (k1, k2) = (ApiKeyId::new(), ApiKeyId::new());
        assert!(l.check_key(&k1).is_ok());
        assert!(l.check_key(&k1).is_ok());
        match l.check_key(&k1) {
            Err(ApiError::RateLimited { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}")
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        // Another key has its own allowance.
        assert!(l.check_key(&k2).is_ok());
    }

    #[test]
    fn defaults_limit_failed_authentications_not_requests() {
        let l = limits(RateLimitConfig::default());
        let key = ApiKeyId::new();
        for _ in 0..10_000 {
            assert!(l.check_key(&key).is_ok());
        }
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..60 {
            l.auth_failed(ip);
            assert!(l.check_not_blocked(ip).is_ok());
        }
        l.auth_failed(ip);
        match l.check_not_blocked(ip) {
            Err(ApiError::RateLimited { scope, retry_after }) => {
                assert!(scope.contains("failed authentications"), "{scope}");
                assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
            }
            other => panic!("expected the address to be refused, got {other:?}"),
        }
        // Another address is not affected.
        assert!(l.check_not_blocked("203.0.113.8".parse().unwrap()).is_ok());
    }

    #[test]
    fn a_block_ends_when_the_allowance_refills() {
        let l = limits(RateLimitConfig::default());
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        l.blocked()
            .insert(ip, Instant::now() - Duration::from_millis(1));
        l.any_blocked.store(true, Ordering::Relaxed);
        assert!(l.check_not_blocked(ip).is_ok());
        l.prune();
        assert!(!l.any_blocked.load(Ordering::Relaxed));
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let l = limits(RateLimitConfig {
            per_key: 0,
            auth_failures_per_minute: 0,
            ..RateLimitConfig::default()
        });
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let key = ApiKeyId::new();
        for _ in 0..1000 {
            assert!(l.check_key(&key).is_ok());
            l.auth_failed(ip);
            assert!(l.check_not_blocked(ip).is_ok());
        }
    }

    #[test]
    fn client_address_comes_from_the_last_proxy_entry_only_when_configured() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let direct = limits(RateLimitConfig::default());
        assert_eq!(direct.client_ip(&headers, Some(peer)), Some(peer));
        let proxied = limits(RateLimitConfig {
            client_ip_header: Some("X-Forwarded-For".into()),
            ..RateLimitConfig::default()
        });
        assert_eq!(
            proxied.client_ip(&headers, Some(peer)),
            Some("203.0.113.9".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(proxied.client_ip(&headers, Some(peer)), Some(peer));
    }
}
