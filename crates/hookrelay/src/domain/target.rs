//! Which addresses a webhook may reach. A webhook sender connects wherever its tenants say,
//! from inside the operator's network: without this it is a ready-made SSRF proxy to cloud
//! metadata endpoints, admin panels and databases.
//!
//! Blocked by default: every IANA special-purpose range (IPv4 and IPv6), including IPv6 forms
//! that embed an IPv4 address (mapped, compatible, NAT64, 6to4), and cloud metadata endpoints.
//! An operator may allow private ranges by CIDR (for development, tests, or internal
//! receivers); metadata endpoints stay blocked even then.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why a target is refused, in words for the tenant and the attempt log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    pub target: String,
    pub reason: &'static str,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is not an allowed target: {}",
            self.target, self.reason
        )
    }
}

impl std::error::Error for Blocked {}

/// Host names that always mean a metadata service or this machine.
const METADATA_HOSTS: &[&str] = &["metadata.google.internal", "metadata.goog", "metadata"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Special-purpose ranges the operator allowed anyway.
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// Parses `HOOKRELAY_ALLOW_PRIVATE_TARGETS`: comma-separated CIDRs (a bare address counts
    /// as a /32 or /128); empty allows nothing.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not a CIDR (e.g. 127.0.0.0/8 or fd00::/8)"))?;
            allowed.push(net.trunc());
        }
        Ok(TargetPolicy { allowed })
    }

    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Checks one address a webhook's host resolved to (or its literal address).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Blocked> {
        let blocked = |reason| Blocked {
            target: ip.to_string(),
            reason,
        };
        // An IPv6 address carrying an IPv4 one is judged by the IPv4 address as well.
        if let IpAddr::V6(v6) = ip
            && let Some(v4) = embedded_ipv4(v6)
        {
            self.check_ip(IpAddr::V4(v4)).map_err(|b| Blocked {
                target: ip.to_string(),
                reason: b.reason,
            })?;
        }
        if is_metadata(ip) {
            return Err(blocked("a cloud metadata endpoint, never allowed"));
        }
        let Some(reason) = special_purpose(ip) else {
            return Ok(());
        };
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        Err(blocked(reason))
    }

    /// Checks a host name before any lookup: names that always mean this machine or a
    /// metadata service.
    pub fn check_name(&self, host: &str) -> Result<(), Blocked> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if METADATA_HOSTS.contains(&name.as_str()) {
            return Err(Blocked {
                target: host.to_owned(),
                reason: "a cloud metadata endpoint, never allowed",
            });
        }
        if name == "localhost" || name.ends_with(".localhost") {
            // RFC 6761: always loopback, whatever DNS says.
            return self
                .check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
                .map_err(|b| Blocked {
                    target: host.to_owned(),
                    reason: b.reason,
                });
        }
        Ok(())
    }
}

fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        // AWS, GCP, Azure, OpenStack …; Azure's wire server; Alibaba Cloud.
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254)
                || v4 == Ipv4Addr::new(168, 63, 129, 16)
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
        }
        // AWS IMDS over IPv6.
        IpAddr::V6(v6) => v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    }
}

/// The IPv4 address inside IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
/// NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::) addresses.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        // ::a.b.c.d, but not :: or ::1 (judged as IPv6 themselves).
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

/// Why an address is special-purpose (IANA registries), or `None` for a public address.
fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    const V4: &[(Ipv4Net, &str)] = &[
        (v4(0, 0, 0, 0, 8), "\"this network\" (0.0.0.0/8)"),
        (v4(10, 0, 0, 0, 8), "a private network (10.0.0.0/8)"),
        (
            v4(100, 64, 0, 0, 10),
            "shared address space (100.64.0.0/10)",
        ),
        (v4(127, 0, 0, 0, 8), "loopback (127.0.0.0/8)"),
        (v4(169, 254, 0, 0, 16), "link-local (169.254.0.0/16)"),
        (v4(172, 16, 0, 0, 12), "a private network (172.16.0.0/12)"),
        (
            v4(192, 0, 0, 0, 24),
            "IETF protocol assignments (192.0.0.0/24)",
        ),
        (v4(192, 0, 2, 0, 24), "documentation (192.0.2.0/24)"),
        (
            v4(192, 88, 99, 0, 24),
            "6to4 relay anycast (192.88.99.0/24)",
        ),
        (v4(192, 168, 0, 0, 16), "a private network (192.168.0.0/16)"),
        (v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
        (v4(198, 51, 100, 0, 24), "documentation (198.51.100.0/24)"),
        (v4(203, 0, 113, 0, 24), "documentation (203.0.113.0/24)"),
        (v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
        (v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
    ];
    const V6: &[(Ipv6Net, &str)] = &[
        (
            v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
            "the unspecified address (::)",
        ),
        (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback (::1)"),
        (
            v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96),
            "IPv4-mapped (::ffff:0:0/96)",
        ),
        (
            v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
            "NAT64 (64:ff9b::/96)",
        ),
        (
            v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
            "local NAT64 (64:ff9b:1::/48)",
        ),
        (
            v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
            "discard-only (100::/64)",
        ),
        (
            v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
            "IETF protocol assignments (2001::/23)",
        ),
        (
            v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
            "documentation (2001:db8::/32)",
        ),
        (v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16), "6to4 (2002::/16)"),
        (
            v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
            "unique local (fc00::/7)",
        ),
        (
            v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
            "link-local (fe80::/10)",
        ),
        (
            v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
            "site-local (fec0::/10)",
        ),
        (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast (ff00::/8)"),
    ];
    match ip {
        IpAddr::V4(a) if a.is_broadcast() => Some("broadcast (255.255.255.255)"),
        IpAddr::V4(a) => V4.iter().find(|(net, _)| net.contains(&a)).map(|(_, r)| *r),
        // ::a.b.c.d (deprecated IPv4-compatible) outside the cases above.
        IpAddr::V6(a) if a.segments()[..6] == [0; 6] => Some("IPv4-compatible (::/96)"),
        IpAddr::V6(a) => V6.iter().find(|(net, _)| net.contains(&a)).map(|(_, r)| *r),
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    match Ipv4Net::new(Ipv4Addr::new(a, b, c, d), prefix) {
        Ok(net) => net,
        Err(_) => panic!("invalid IPv4 prefix in the blocklist"),
    }
}

const fn v6(s: [u16; 8], prefix: u8) -> Ipv6Net {
    let ip = Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    match Ipv6Net::new(ip, prefix) {
        Ok(net) => net,
        Err(_) => panic!("invalid IPv6 prefix in the blocklist"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn blocks_every_special_range_by_default() {
        let p = TargetPolicy::default();
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "169.254.1.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "168.63.129.16",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "64:ff9b::1.2.3.4",
            "2002:0808:0808::1",
            "2001::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "::7f00:1",
            "ff02::1",
            "fd00:ec2::254",
        ] {
            assert!(p.check_ip(ip(s)).is_err(), "{s} should be blocked");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        let p = TargetPolicy::default();
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            assert_eq!(p.check_ip(ip(s)), Ok(()), "{s}");
        }
    }

    #[test]
    fn embedded_ipv4_is_judged_too() {
        let p = TargetPolicy::default();
        // 6to4 and NAT64 wrapping the metadata address, IPv4-mapped loopback.
        for s in [
            "2002:a9fe:a9fe::1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:a9fe:a9fe",
            "::ffff:7f00:1",
        ] {
            assert!(p.check_ip(ip(s)).is_err(), "{s}");
        }
        let allow_loopback = TargetPolicy::parse("127.0.0.0/8").expect("valid");
        assert!(
            allow_loopback.check_ip(ip("::ffff:127.0.0.1")).is_err(),
            "the mapped form is its own range"
        );
    }

    #[test]
    fn operators_may_allow_ranges_but_never_metadata() {
        let p = TargetPolicy::parse(" 127.0.0.0/8, 10.0.0.0/8 ,fd00::/8,169.254.0.0/16")
            .expect("valid");
        assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check_ip(ip("10.20.30.40")), Ok(()));
        assert_eq!(p.check_ip(ip("fd12::1")), Ok(()));
        assert_eq!(p.check_ip(ip("169.254.1.1")), Ok(()));
        assert!(p.check_ip(ip("169.254.169.254")).is_err());
        assert!(p.check_ip(ip("fd00:ec2::254")).is_err());
        assert!(p.check_ip(ip("192.168.1.1")).is_err());
        assert_eq!(TargetPolicy::parse(""), Ok(TargetPolicy::default()));
        assert!(TargetPolicy::parse("10.0.0.0/33").is_err());
        assert!(TargetPolicy::parse("intranet").is_err());
        assert_eq!(
            TargetPolicy::parse("10.1.2.3").map(|p| p.allowed().len()),
            Ok(1)
        );
    }

    #[test]
    fn names_that_always_mean_loopback_or_metadata() {
        let p = TargetPolicy::default();
        for name in [
            "localhost",
            "localhost.",
            "LOCALHOST",
            "x.localhost",
            "metadata.google.internal",
            "METADATA.GOOGLE.INTERNAL.",
        ] {
            assert!(p.check_name(name).is_err(), "{name}");
        }
        assert_eq!(p.check_name("example.com"), Ok(()));
        let allow = TargetPolicy::parse("127.0.0.0/8").expect("valid");
        assert_eq!(allow.check_name("localhost"), Ok(()));
        assert!(allow.check_name("metadata.google.internal").is_err());
    }

    #[test]
    fn blocked_reason_reads_well() {
        let err = TargetPolicy::default()
            .check_ip(ip("10.0.0.1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.0.0.1 is not an allowed target: a private network (10.0.0.0/8)"
        );
    }
}
