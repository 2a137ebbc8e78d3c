//! The SSRF guard at connection time: hostnames are resolved here, every answer is checked
//! against the [`TargetPolicy`], and the connection may only go to addresses that passed (the
//! hostname still serves for `Host` and TLS). A failed lookup fails the attempt: closed, not
//! open. Literal IP targets skip DNS and are checked by [`check_literal`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::target::{Blocked, TargetPolicy};

/// How long one lookup may take before the attempt fails.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// DNS gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("DNS lookup of {host} failed: {why}")]
pub struct LookupFailed {
    pub host: String,
    pub why: String,
}

/// Resolves `host` and checks every address. `Ok` holds only addresses that passed; if any
/// answer is blocked the whole name is refused (a name that mixes public and private
/// addresses is a DNS-rebinding setup, not an accident).
pub async fn resolve(
    policy: &TargetPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, GuardError> {
    policy.check_name(host)?;
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        // RFC 6761: loopback by definition; check_name has already allowed it.
        return Ok(vec![SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)]);
    }
    // A trailing dot makes the name absolute: no search-domain expansion of `intranet`.
    let absolute = format!("{name}.");
    let answers = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((absolute, port)))
        .await
        .map_err(|_| LookupFailed {
            host: host.to_owned(),
            why: "timed out".into(),
        })?
        .map_err(|e| LookupFailed {
            host: host.to_owned(),
            why: e.to_string(),
        })?;
    let answers: Vec<SocketAddr> = answers.collect();
    if answers.is_empty() {
        return Err(LookupFailed {
            host: host.to_owned(),
            why: "no addresses".into(),
        }
        .into());
    }
    for addr in &answers {
        policy.check_ip(addr.ip()).map_err(|b| Blocked {
            target: format!("{host} ({})", addr.ip()),
            reason: b.reason,
        })?;
    }
    Ok(answers)
}

/// Checks a URL whose host is an IP literal; names are checked by [`resolve`].
pub fn check_literal(policy: &TargetPolicy, url: &url::Url) -> Result<(), Blocked> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => policy.check_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => policy.check_ip(IpAddr::V6(ip)),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error(transparent)]
    Lookup(#[from] LookupFailed),
}

/// The delivery client's resolver.
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // Port 0: the connector puts in the URL's port.
            let addrs = resolve(&policy, name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
