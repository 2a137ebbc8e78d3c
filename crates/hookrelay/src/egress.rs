//! The SSRF guard at connection time: hostnames are resolved here, every answer is checked
//! against the [`EgressPolicy`], and the connection may only go to addresses that passed (the
//! hostname still serves for `Host` and TLS). A failed lookup fails the attempt: closed, not
//! open. Literal IP targets skip DNS and are checked by [`check_literal`].
//!
//! Names are resolved as the operating system does — the hosts file first, then the DNS
//! servers of `/etc/resolv.conf` — except that a name is always taken as absolute: no search
//! domain is ever appended (`intranet` never becomes `intranet.corp.example`), whatever
//! `search` and `ndots` say. The resolver is our own ([`Resolver`]) rather than the C
//! library's, so that the hosts file's path can be configured and the answers checked are
//! exactly the addresses the delivery client connects to.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::ProtoError;
use hickory_resolver::proto::op::Query;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Hosts, TokioResolver};
use reqwest::dns::{Addrs, Resolve, Resolving};

use crate::domain::egress::{Blocked, EgressPolicy};

/// How long one lookup may take before the attempt fails.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the operating system keeps its static names.
pub const SYSTEM_HOSTS_FILE: &str = "/etc/hosts";

/// DNS gave no usable answer; the text is what the attempt log shows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("DNS lookup of {host} failed: {why}")]
pub struct LookupFailed {
    pub host: String,
    pub why: LookupError,
}

/// Why a name has no address to connect to. The resolver's own errors are kept as they came
/// (their text is part of the message, so they are not given again as the source).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error("invalid name: {0}")]
    InvalidName(ProtoError),
    /// The name does not exist (NXDOMAIN, or `.invalid`, which never does).
    #[error("no such name")]
    NoSuchName,
    /// The name exists, without an A or AAAA record.
    #[error("no addresses")]
    NoAddresses,
    #[error("timed out")]
    TimedOut,
    /// Anything else the resolver met: no server answered, a malformed answer.
    #[error("{0}")]
    Dns(NetError),
}

/// Resolves names like the OS (hosts file, then DNS), never expanding search domains.
pub struct Resolver {
    hosts: HostsFile,
    dns: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("hosts_file", &self.hosts.path)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// The system's DNS servers (`/etc/resolv.conf`) with the hosts file at `hosts_file`.
    pub fn new(hosts_file: impl Into<PathBuf>) -> anyhow::Result<Resolver> {
        let (servers, mut options) = match hickory_resolver::system_conf::read_system_conf() {
            Ok((config, options)) => (config.name_servers().to_vec(), options),
            Err(error) => {
                // As the C library does without a usable resolv.conf: a server on this host.
                tracing::warn!(%error, "no DNS servers in /etc/resolv.conf; asking 127.0.0.1");
                let local = NameServerConfig::udp_and_tcp(IpAddr::V4(Ipv4Addr::LOCALHOST));
                (vec![local], ResolverOpts::default())
            }
        };
        // No domain and no search list, and every name counts as absolute (ndots 0): the
        // name looked up is the name the tenant wrote. The hosts file is read by us (below),
        // so that its path can be set and an edited file is seen.
        options.ndots = 0;
        options.use_hosts_file = ResolveHosts::Never;
        // Both families: every answer is checked, so none may go unseen.
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        let config = ResolverConfig::from_parts(None, Vec::new(), servers);
        let dns = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(options)
            .build()?;
        Ok(Resolver {
            hosts: HostsFile::new(hosts_file.into()),
            dns,
        })
    }

    /// The addresses `name` has: the hosts file's if it names it, else DNS's.
    pub async fn lookup(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let mut fqdn = Name::from_str_relaxed(name).map_err(LookupError::InvalidName)?;
        fqdn.set_fqdn(true);
        let from_file = self.hosts.addresses(&fqdn);
        if !from_file.is_empty() {
            return Ok(from_file);
        }
        // RFC 6761: `.invalid` never exists; no server needs asking.
        let lower = name.trim_end_matches('.').to_ascii_lowercase();
        if lower == "invalid" || lower.ends_with(".invalid") {
            return Err(LookupError::NoSuchName);
        }
        match self.dns.lookup_ip(fqdn).await {
            Ok(answers) => Ok(answers.iter().collect()),
            Err(e) if e.is_nx_domain() => Err(LookupError::NoSuchName),
            Err(e) if e.is_no_records_found() => Err(LookupError::NoAddresses),
            Err(e) => Err(LookupError::Dns(e)),
        }
    }
}

/// The hosts file, parsed again whenever it changes (as the C library reads it on each
/// lookup): an edit is seen by the next connection without a restart.
struct HostsFile {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Arc<Hosts>)>>,
}

/// What tells a changed file: its modification time and size (`None`: no file).
type Stamp = Option<(Option<SystemTime>, u64)>;

impl HostsFile {
    fn new(path: PathBuf) -> Self {
        HostsFile {
            path,
            cached: Mutex::new(None),
        }
    }

    fn addresses(&self, name: &Name) -> Vec<IpAddr> {
        let hosts = self.current();
        let mut found = Vec::new();
        for record_type in [RecordType::A, RecordType::AAAA] {
            if let Some(lookup) = hosts.lookup_static_host(&Query::query(name.clone(), record_type))
            {
                found.extend(lookup.answers().iter().filter_map(|r| r.data.ip_addr()));
            }
        }
        found
    }

    fn current(&self) -> Arc<Hosts> {
        let stamp: Stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()));
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((seen, hosts)) = cached.as_ref()
            && *seen == stamp
        {
            return hosts.clone();
        }
        let hosts = Arc::new(match read_hosts(&self.path) {
            Ok(hosts) => hosts,
            Err(error) => {
                if stamp.is_some() {
                    tracing::warn!(%error, path = %self.path.display(), "cannot read the hosts file");
                }
                Hosts::default()
            }
        });
        *cached = Some((stamp, hosts.clone()));
        hosts
    }
}

fn read_hosts(path: &Path) -> io::Result<Hosts> {
    let mut hosts = Hosts::default();
    hosts.read_hosts_conf(std::fs::File::open(path)?)?;
    Ok(hosts)
}

/// Resolves `host` and checks every address. `Ok` holds only addresses that passed; if any
/// answer is blocked the whole name is refused (a name that mixes public and private
/// addresses is a DNS-rebinding setup, not an accident).
pub async fn resolve(
    policy: &EgressPolicy,
    resolver: &Resolver,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, GuardError> {
    policy.check_name(host)?;
    let name = host.trim_end_matches('.').to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        // RFC 6761: loopback by definition; check_name has already allowed it.
        return Ok(vec![SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port)]);
    }
    let answers = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup(&name))
        .await
        .map_err(|_| LookupFailed {
            host: host.to_owned(),
            why: LookupError::TimedOut,
        })?
        .map_err(|why| LookupFailed {
            host: host.to_owned(),
            why,
        })?;
    if answers.is_empty() {
        return Err(LookupFailed {
            host: host.to_owned(),
            why: LookupError::NoAddresses,
        }
        .into());
    }
    let mut checked = Vec::with_capacity(answers.len());
    for ip in answers {
        policy.check_ip(ip).map_err(|b| Blocked {
            target: format!("{host} ({ip})"),
            reason: b.reason,
        })?;
        let addr = SocketAddr::new(ip, port);
        if !checked.contains(&addr) {
            checked.push(addr);
        }
    }
    Ok(checked)
}

/// Checks a URL whose host is an IP literal; names are checked by [`resolve`].
pub fn check_literal(policy: &EgressPolicy, url: &url::Url) -> Result<(), Blocked> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => policy.check_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => policy.check_ip(IpAddr::V6(ip)),
        _ => Ok(()),
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    #[error(transparent)]
    Blocked(#[from] Blocked),
    #[error(transparent)]
    Lookup(#[from] LookupFailed),
}

/// The delivery client's resolver: reqwest connects only to the addresses it returns, so the
/// addresses checked are the addresses connected to.
pub struct GuardedResolver {
    pub policy: Arc<EgressPolicy>,
    pub resolver: Arc<Resolver>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> Resolving {
        let policy = self.policy.clone();
        let resolver = self.resolver.clone();
        Box::pin(async move {
            // Port 0: the connector puts in the URL's port.
            let addrs = resolve(&policy, &resolver, name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts_file(text: &str) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(text.as_bytes()).expect("write hosts");
        file
    }

    #[tokio::test]
    async fn names_in_the_hosts_file_resolve_without_dns() {
        let file = hosts_file("# comment\n127.0.0.1 vm receiver.test\n::1 vm\n");
        let resolver = Resolver::new(file.path()).expect("resolver");
        let mut vm = resolver.lookup("vm").await.expect("vm resolves");
        vm.sort();
        assert_eq!(
            vm,
            [
                "127.0.0.1".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert_eq!(
            resolver.lookup("RECEIVER.test").await.ok(),
            Some(vec!["127.0.0.1".parse().unwrap()])
        );
        let allow = EgressPolicy::parse("127.0.0.0/8,::1").expect("valid");
        let addrs = resolve(&allow, &resolver, "vm", 8080)
            .await
            .expect("allowed");
        assert_eq!(addrs.len(), 2);
        assert!(addrs.iter().all(|a| a.port() == 8080));
    }

    #[tokio::test]
    async fn the_hosts_file_answers_are_checked_and_an_edit_is_seen() {
        let file = hosts_file("127.0.0.1 inside\n");
        let resolver = Resolver::new(file.path()).expect("resolver");
        let allow = EgressPolicy::parse("127.0.0.0/8").expect("valid");
        assert!(resolve(&allow, &resolver, "inside", 80).await.is_ok());
        // Rewritten to the metadata address (a longer line: the size changes too).
        std::fs::write(file.path(), "169.254.169.254 inside\n").expect("rewrite");
        match resolve(&allow, &resolver, "inside.", 80).await {
            Err(GuardError::Blocked(b)) => {
                assert_eq!(b.target, "inside. (169.254.169.254)");
                assert!(b.reason.contains("metadata"), "{b}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_hosts_file_is_an_empty_one() {
        let resolver = Resolver::new("/nonexistent/hookrelay/hosts").expect("resolver");
        let error = resolver.lookup("hooks.does-not-exist.invalid").await;
        assert!(matches!(error, Err(LookupError::NoSuchName)), "{error:?}");
        match resolve(&EgressPolicy::default(), &resolver, "a.invalid", 443).await {
            Err(GuardError::Lookup(failed)) => {
                assert!(matches!(failed.why, LookupError::NoSuchName));
                assert_eq!(
                    failed.to_string(),
                    "DNS lookup of a.invalid failed: no such name"
                );
            }
            other => panic!("expected a failed lookup, got {other:?}"),
        }
    }
}
