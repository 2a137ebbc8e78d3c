//! Rate limits on the API: requests per tenant key and per client address, and test sends per
//! webhook. Counted in this node's memory (GCRA, by `governor`): with several nodes behind a
//! load balancer each enforces the limit on the requests it sees.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::AppState;
use super::problem::ApiError;

/// The limits, as configured. Zero switches one off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// API requests per second for one tenant key (the admin key is the operator's, unlimited).
    pub per_key: u32,
    /// API requests per second from one client address, every key and none included.
    pub per_ip: u32,
    /// `POST /webhooks/{id}/test` per minute for one webhook.
    pub test_sends_per_minute: u32,
    /// A header set by the operator's reverse proxy naming the client (`x-forwarded-for`,
    /// `x-real-ip`): its last address is used. Unset: the connection's peer address.
    pub client_ip_header: Option<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_key: 200,
            per_ip: 1000,
            test_sends_per_minute: 5,
            client_ip_header: None,
        }
    }
}

type Keyed<K> = DefaultKeyedRateLimiter<K>;

/// `n` a second per key, with a burst of one second's worth (a client that paused may catch
/// up, briefly); `None` for 0.
fn per_second<K: std::hash::Hash + Eq + Clone>(n: u32) -> Option<Keyed<K>> {
    NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_second(n)))
}

pub struct RateLimits {
    per_key: Option<Keyed<String>>,
    per_ip: Option<Keyed<IpAddr>>,
    test_sends: Option<Keyed<String>>,
    client_ip_header: Option<String>,
    clock: DefaultClock,
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        RateLimits {
            per_key: per_second(config.per_key),
            per_ip: per_second(config.per_ip),
            test_sends: NonZeroU32::new(config.test_sends_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
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
    pub fn check_key(&self, key_id: &str) -> Result<(), ApiError> {
        self.check(self.per_key.as_ref(), &key_id.to_owned(), "this API key")
    }

    /// One test send to `webhook_id`.
    pub fn check_test_send(&self, webhook_id: &str) -> Result<(), ApiError> {
        self.check(
            self.test_sends.as_ref(),
            &webhook_id.to_owned(),
            "test sends to this webhook",
        )
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
        for limiter in [&self.per_key, &self.test_sends].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// How often idle entries are forgotten.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Middleware: the per-address limit, before authentication, so guessing keys costs requests.
pub async fn per_client(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.limits;
    if limits.per_ip.is_some() {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        if let Some(ip) = limits.client_ip(request.headers(), peer)
            && let Err(limited) = limits.check(limits.per_ip.as_ref(), &ip, "this client address")
        {
            return limited.into_response();
        }
    }
    next.run(request).await
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
        assert!(l.check_key("k1").is_ok());
        assert!(l.check_key("k1").is_ok());
        match l.check_key("k1") {
            Err(ApiError::RateLimited { retry_after, .. }) => {
                assert!(retry_after <= Duration::from_millis(500), "{retry_after:?}")
            }
            other => panic!("expected a rate limit, got {other:?}"),
        }
        // Another key has its own allowance.
        assert!(l.check_key("k2").is_ok());
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let l = limits(RateLimitConfig {
            per_key: 0,
            test_sends_per_minute: 0,
            ..RateLimitConfig::default()
        });
        for _ in 0..1000 {
            assert!(l.check_key("k").is_ok());
            assert!(l.check_test_send("wh").is_ok());
        }
    }

    #[test]
    fn test_sends_allow_five_a_minute_by_default() {
        let l = limits(RateLimitConfig::default());
        for _ in 0..5 {
            assert!(l.check_test_send("wh_1").is_ok());
        }
        match l.check_test_send("wh_1") {
            Err(ApiError::RateLimited { retry_after, .. }) => {
                assert!(retry_after > Duration::from_secs(5), "{retry_after:?}")
            }
            other => panic!("expected a rate limit, got {other:?}"),
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
