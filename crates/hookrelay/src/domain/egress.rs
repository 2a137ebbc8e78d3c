//! Which addresses a webhook may reach. A webhook sender connects wherever its tenants say,
//! from inside the operator's network: without this it is a ready-made SSRF proxy to cloud
//! metadata endpoints, admin panels and databases.
//!
//! Blocked by default: every entry of the IANA special-purpose registries (IPv4 and IPv6),
//! multicast, reserved space, and cloud metadata endpoints. An IPv6 form that embeds an IPv4
//! address (mapped, translated, compatible, NAT64, 6to4, Teredo, ISATAP) is blocked as its
//! own range and is also judged by the IPv4 address it carries.
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

/// An entry of `HOOKRELAY_ALLOW_PRIVATE_TARGETS` that is neither a CIDR nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a CIDR (e.g. 127.0.0.0/8 or fd00::/8)")]
pub struct NotCidr(pub String);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Special-purpose ranges the operator allowed anyway.
    allowed: Vec<IpNet>,
}

impl EgressPolicy {
    /// Parses `HOOKRELAY_ALLOW_PRIVATE_TARGETS`: comma-separated CIDRs (a bare address counts
    /// as a /32 or /128); empty allows nothing.
    pub fn parse(list: &str) -> Result<Self, NotCidr> {
        let mut allowed = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| NotCidr(item.to_owned()))?;
            allowed.push(net.trunc());
        }
        Ok(EgressPolicy { allowed })
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
        if let IpAddr::V6(v6) = ip {
            for v4 in embedded_ipv4(v6) {
                self.check_ip(IpAddr::V4(v4)).map_err(|b| Blocked {
                    target: ip.to_string(),
                    reason: b.reason,
                })?;
            }
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

/// The IPv4 addresses an IPv6 address carries, by every form that carries one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`,
/// but not `::` or `::1`), NAT64 (`64:ff9b::a.b.c.d`; in the local-use `64:ff9b:1::/48`, at
/// each RFC 6052 position that is well-formed there), 6to4 (`2002:aabb:ccdd::`), Teredo
/// (server in bits 32–63, client as the bitwise NOT of the last 32 bits) and an ISATAP
/// interface identifier (`…:0:5efe:a.b.c.d`, under any prefix).
pub fn embedded_ipv4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let bits = u128::from(v6);
    let low = Ipv4Addr::from(bits as u32);
    let s = v6.segments();
    let mut found = match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => vec![low],
        [0, 0, 0, 0, 0, 0, _, _] if bits > 1 => vec![low],
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => vec![low],
        [0x64, 0xff9b, 1, ..] => local_nat64(bits),
        [0x2002, a, b, ..] => vec![ipv4(a, b)],
        [0x2001, 0, server_hi, server_lo, ..] => vec![ipv4(server_hi, server_lo), !low],
        _ => Vec::new(),
    };
    // ISATAP (RFC 5214): the interface identifier 0000:5efe or 0200:5efe (either u/g bit).
    if ((bits >> 32) as u32) & !0x0300_0000 == 0x0000_5efe && !found.contains(&low) {
        found.push(low);
    }
    found
}

fn ipv4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// Bits `from..to` of an IPv6 address, counted from the most significant.
fn bits_of(bits: u128, from: u32, to: u32) -> u32 {
    ((bits >> (128 - to)) & ((1u128 << (to - from)) - 1)) as u32
}

/// The IPv4 addresses a local-use NAT64 address (RFC 8215) may carry. The network-specific
/// prefix inside 64:ff9b:1::/48 may be a /48, /56, /64 or /96 (RFC 6052 §2.2), which cannot
/// be told from the address; every reading that is well-formed (the `u` octet and the suffix
/// zero) and not 0.0.0.0 is judged, so an address is refused if any reading is. (The /96
/// reading of a /64-layout address is its IPv4's last octet followed by zeros: a rare
/// refusal of a good address, where the alternative is letting a bad one through.)
fn local_nat64(bits: u128) -> Vec<Ipv4Addr> {
    let mut found = vec![bits_of(bits, 96, 128)];
    if bits_of(bits, 64, 72) == 0 {
        if bits_of(bits, 104, 128) == 0 {
            found.push(bits_of(bits, 72, 104));
        }
        if bits_of(bits, 96, 128) == 0 {
            found.push((bits_of(bits, 56, 64) << 24) | bits_of(bits, 72, 96));
        }
        if bits_of(bits, 88, 128) == 0 {
            found.push((bits_of(bits, 48, 64) << 16) | bits_of(bits, 72, 88));
        }
    }
    found.retain(|&v4| v4 != 0);
    found.dedup();
    found.into_iter().map(Ipv4Addr::from).collect()
}

/// The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates), every entry
/// whether globally reachable or not (none is a webhook receiver), plus multicast and the
/// reserved 240.0.0.0/4. The first row that contains an address names it.
pub const V4_RANGES: &[(Ipv4Net, &str)] = &[
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
        v4(192, 0, 0, 0, 29),
        "IPv4 service continuity (192.0.0.0/29)",
    ),
    (v4(192, 0, 0, 8, 32), "the IPv4 dummy address (192.0.0.8)"),
    (
        v4(192, 0, 0, 9, 32),
        "Port Control Protocol anycast (192.0.0.9)",
    ),
    (v4(192, 0, 0, 10, 32), "TURN anycast (192.0.0.10)"),
    (
        v4(192, 0, 0, 170, 31),
        "NAT64/DNS64 discovery (192.0.0.170/31)",
    ),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    (v4(192, 0, 2, 0, 24), "documentation (192.0.2.0/24)"),
    (v4(192, 31, 196, 0, 24), "AS112 DNS (192.31.196.0/24)"),
    (
        v4(192, 52, 193, 0, 24),
        "AMT relay anycast (192.52.193.0/24)",
    ),
    (
        v4(192, 88, 99, 0, 24),
        "6to4 relay anycast, deprecated (192.88.99.0/24)",
    ),
    (v4(192, 168, 0, 0, 16), "a private network (192.168.0.0/16)"),
    (
        v4(192, 175, 48, 0, 24),
        "AS112 direct delegation (192.175.48.0/24)",
    ),
    (v4(198, 18, 0, 0, 15), "benchmarking (198.18.0.0/15)"),
    (v4(198, 51, 100, 0, 24), "documentation (198.51.100.0/24)"),
    (v4(203, 0, 113, 0, 24), "documentation (203.0.113.0/24)"),
    (v4(224, 0, 0, 0, 4), "multicast (224.0.0.0/4)"),
    (
        v4(255, 255, 255, 255, 32),
        "limited broadcast (255.255.255.255)",
    ),
    (v4(240, 0, 0, 0, 4), "reserved (240.0.0.0/4)"),
];

/// The IANA IPv6 Special-Purpose Address Registry (RFC 6890 and its updates), every entry
/// whether globally reachable or not, plus the embedded-IPv4 forms, deprecated site-local and
/// multicast. The first row that contains an address names it; an address in none of them
/// outside 2000::/3 is still refused ([`V6_RESERVED`]).
pub const V6_RANGES: &[(Ipv6Net, &str)] = &[
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
        v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "IPv4-translated (::ffff:0:0:0/96)",
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible, deprecated (::/96)",
    ),
    (
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        "NAT64 (64:ff9b::/96)",
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "discard-only (100::/64)",
    ),
    (
        v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64),
        "the dummy IPv6 prefix (100:0:0:1::/64)",
    ),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo (2001::/32)"),
    (
        v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128),
        "Port Control Protocol anycast (2001:1::1)",
    ),
    (
        v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128),
        "TURN anycast (2001:1::2)",
    ),
    (
        v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128),
        "DNS-SD service registration anycast (2001:1::3)",
    ),
    (
        v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48),
        "benchmarking (2001:2::/48)",
    ),
    (v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32), "AMT (2001:3::/32)"),
    (
        v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48),
        "AS112 DNS (2001:4:112::/48)",
    ),
    (
        v6([0x2001, 0x10, 0, 0, 0, 0, 0, 0], 28),
        "ORCHID, deprecated (2001:10::/28)",
    ),
    (
        v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0], 28),
        "ORCHIDv2 (2001:20::/28)",
    ),
    (
        v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0], 28),
        "drone remote ID entity tags (2001:30::/28)",
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
        v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48),
        "AS112 direct delegation (2620:4f:8000::/48)",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation (3fff::/20)",
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "SRv6 segment identifiers (5f00::/16)",
    ),
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
        "site-local, deprecated (fec0::/10)",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast (ff00::/8)"),
];

/// Global unicast: all of IPv6 that IANA allocates to registries. The rest is reserved.
const V6_GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

/// Why an IPv6 address outside every row above but also outside 2000::/3 is refused.
pub const V6_RESERVED: &str = "reserved by the IETF (outside global unicast 2000::/3)";

/// Why an address is special-purpose (IANA registries), or `None` for a public address.
fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => V4_RANGES
            .iter()
            .find(|(net, _)| net.contains(&a))
            .map(|(_, r)| *r),
        IpAddr::V6(a) => V6_RANGES
            .iter()
            .find(|(net, _)| net.contains(&a))
            .map(|(_, r)| *r)
            .or_else(|| (!V6_GLOBAL_UNICAST.contains(&a)).then_some(V6_RESERVED)),
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
        let p = EgressPolicy::default();
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
        let p = EgressPolicy::default();
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
        let p = EgressPolicy::default();
        // 6to4 and NAT64 wrapping the metadata address, IPv4-mapped loopback.
        for s in [
            "2002:a9fe:a9fe::1",
            "64:ff9b::a9fe:a9fe",
            "::ffff:a9fe:a9fe",
            "::ffff:7f00:1",
        ] {
            assert!(p.check_ip(ip(s)).is_err(), "{s}");
        }
        let allow_loopback = EgressPolicy::parse("127.0.0.0/8").expect("valid");
        assert!(
            allow_loopback.check_ip(ip("::ffff:127.0.0.1")).is_err(),
            "the mapped form is its own range"
        );
    }

    #[test]
    fn operators_may_allow_ranges_but_never_metadata() {
        let p = EgressPolicy::parse(" 127.0.0.0/8, 10.0.0.0/8 ,fd00::/8,169.254.0.0/16")
            .expect("valid");
        assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check_ip(ip("10.20.30.40")), Ok(()));
        assert_eq!(p.check_ip(ip("fd12::1")), Ok(()));
        assert_eq!(p.check_ip(ip("169.254.1.1")), Ok(()));
        assert!(p.check_ip(ip("169.254.169.254")).is_err());
        assert!(p.check_ip(ip("fd00:ec2::254")).is_err());
        assert!(p.check_ip(ip("192.168.1.1")).is_err());
        assert_eq!(EgressPolicy::parse(""), Ok(EgressPolicy::default()));
        assert_eq!(
            EgressPolicy::parse("10.0.0.0/33"),
            Err(NotCidr("10.0.0.0/33".into()))
        );
        assert_eq!(
            EgressPolicy::parse("127.0.0.0/8, intranet")
                .map_err(|e| e.to_string())
                .err()
                .as_deref(),
            Some("\"intranet\" is not a CIDR (e.g. 127.0.0.0/8 or fd00::/8)")
        );
        assert_eq!(
            EgressPolicy::parse("10.1.2.3").map(|p| p.allowed().len()),
            Ok(1)
        );
    }

    #[test]
    fn names_that_always_mean_loopback_or_metadata() {
        let p = EgressPolicy::default();
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
        let allow = EgressPolicy::parse("127.0.0.0/8").expect("valid");
        assert_eq!(allow.check_name("localhost"), Ok(()));
        assert!(allow.check_name("metadata.google.internal").is_err());
    }

    #[test]
    fn blocked_reason_reads_well() {
        let err = EgressPolicy::default()
            .check_ip(ip("10.0.0.1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "10.0.0.1 is not an allowed target: a private network (10.0.0.0/8)"
        );
    }
    /// One or two addresses in every row of the tables, with the reason each must get.
    const V4_SAMPLES: &[(&str, &str)] = &[
        ("0.0.0.0", "\"this network\" (0.0.0.0/8)"),
        ("0.255.255.255", "\"this network\" (0.0.0.0/8)"),
        ("10.255.0.1", "a private network (10.0.0.0/8)"),
        ("100.127.255.255", "shared address space (100.64.0.0/10)"),
        ("127.0.0.1", "loopback (127.0.0.0/8)"),
        ("169.254.0.1", "link-local (169.254.0.0/16)"),
        ("172.31.0.1", "a private network (172.16.0.0/12)"),
        ("192.0.0.1", "IPv4 service continuity (192.0.0.0/29)"),
        ("192.0.0.7", "IPv4 service continuity (192.0.0.0/29)"),
        ("192.0.0.8", "the IPv4 dummy address (192.0.0.8)"),
        ("192.0.0.9", "Port Control Protocol anycast (192.0.0.9)"),
        ("192.0.0.10", "TURN anycast (192.0.0.10)"),
        ("192.0.0.170", "NAT64/DNS64 discovery (192.0.0.170/31)"),
        ("192.0.0.171", "NAT64/DNS64 discovery (192.0.0.170/31)"),
        ("192.0.0.255", "IETF protocol assignments (192.0.0.0/24)"),
        ("192.0.2.1", "documentation (192.0.2.0/24)"),
        ("192.31.196.1", "AS112 DNS (192.31.196.0/24)"),
        ("192.52.193.1", "AMT relay anycast (192.52.193.0/24)"),
        (
            "192.88.99.2",
            "6to4 relay anycast, deprecated (192.88.99.0/24)",
        ),
        ("192.168.255.255", "a private network (192.168.0.0/16)"),
        ("192.175.48.1", "AS112 direct delegation (192.175.48.0/24)"),
        ("198.19.255.255", "benchmarking (198.18.0.0/15)"),
        ("198.51.100.7", "documentation (198.51.100.0/24)"),
        ("203.0.113.7", "documentation (203.0.113.0/24)"),
        ("239.255.255.250", "multicast (224.0.0.0/4)"),
        ("255.255.255.255", "limited broadcast (255.255.255.255)"),
        ("255.255.255.254", "reserved (240.0.0.0/4)"),
    ];

    const V6_SAMPLES: &[(&str, &str)] = &[
        ("::", "the unspecified address (::)"),
        ("::1", "loopback (::1)"),
        ("::ffff:8.8.8.8", "IPv4-mapped (::ffff:0:0/96)"),
        ("::ffff:0:808:808", "IPv4-translated (::ffff:0:0:0/96)"),
        ("::808:808", "IPv4-compatible, deprecated (::/96)"),
        ("::2", "IPv4-compatible, deprecated (::/96)"),
        ("64:ff9b::808:808", "NAT64 (64:ff9b::/96)"),
        ("64:ff9b:1::808:808", "local-use NAT64 (64:ff9b:1::/48)"),
        (
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "local-use NAT64 (64:ff9b:1::/48)",
        ),
        ("100::1", "discard-only (100::/64)"),
        ("100:0:0:1::1", "the dummy IPv6 prefix (100:0:0:1::/64)"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo (2001::/32)"),
        ("2001:1::1", "Port Control Protocol anycast (2001:1::1)"),
        ("2001:1::2", "TURN anycast (2001:1::2)"),
        (
            "2001:1::3",
            "DNS-SD service registration anycast (2001:1::3)",
        ),
        ("2001:2::1", "benchmarking (2001:2::/48)"),
        ("2001:3::1", "AMT (2001:3::/32)"),
        ("2001:4:112::1", "AS112 DNS (2001:4:112::/48)"),
        ("2001:10::1", "ORCHID, deprecated (2001:10::/28)"),
        ("2001:2f:ffff::1", "ORCHIDv2 (2001:20::/28)"),
        ("2001:30::1", "drone remote ID entity tags (2001:30::/28)"),
        ("2001:1::4", "IETF protocol assignments (2001::/23)"),
        ("2001:1ff::1", "IETF protocol assignments (2001::/23)"),
        ("2001:db8::1", "documentation (2001:db8::/32)"),
        ("2002:808:808::1", "6to4 (2002::/16)"),
        (
            "2620:4f:8000::1",
            "AS112 direct delegation (2620:4f:8000::/48)",
        ),
        ("3fff:fff::1", "documentation (3fff::/20)"),
        ("5f00::1", "SRv6 segment identifiers (5f00::/16)"),
        ("fd12:3456::1", "unique local (fc00::/7)"),
        ("fe80::1", "link-local (fe80::/10)"),
        ("fec0::1", "site-local, deprecated (fec0::/10)"),
        ("ff02::1", "multicast (ff00::/8)"),
        ("1::1", V6_RESERVED),
        ("4000::1", V6_RESERVED),
        ("e000::1", V6_RESERVED),
    ];

    #[test]
    fn every_ipv4_row_names_its_addresses() {
        for (addr, reason) in V4_SAMPLES {
            assert_eq!(special_purpose(ip(addr)), Some(*reason), "{addr}");
        }
        for (net, reason) in V4_RANGES {
            assert!(
                V4_SAMPLES.iter().any(|(_, r)| r == reason),
                "{net} has no sample"
            );
        }
    }

    #[test]
    fn every_ipv6_row_names_its_addresses() {
        for (addr, reason) in V6_SAMPLES {
            assert_eq!(special_purpose(ip(addr)), Some(*reason), "{addr}");
        }
        for (net, reason) in V6_RANGES {
            assert!(
                V6_SAMPLES.iter().any(|(_, r)| r == reason),
                "{net} has no sample"
            );
        }
    }

    #[test]
    fn loopback_and_unspecified_ipv6_say_so() {
        let p = EgressPolicy::default();
        assert_eq!(p.check_ip(ip("::1")).unwrap_err().reason, "loopback (::1)");
        assert_eq!(
            p.check_ip(ip("::")).unwrap_err().reason,
            "the unspecified address (::)"
        );
    }

    #[test]
    fn public_ipv6_outside_the_tables_is_allowed() {
        let p = EgressPolicy::default();
        for s in [
            "2001:4860:4860::8888",
            "2000::1",
            "2001:200::1",
            "3fff:1000::1",
            "2c0f::1",
        ] {
            assert_eq!(p.check_ip(ip(s)), Ok(()), "{s}");
        }
    }

    fn carried(s: &str) -> Vec<String> {
        match ip(s) {
            IpAddr::V6(v6) => embedded_ipv4(v6).iter().map(|a| a.to_string()).collect(),
            IpAddr::V4(_) => unreachable!("test address is IPv6"),
        }
    }

    #[test]
    fn every_form_that_embeds_ipv4_gives_it_up() {
        for (s, want) in [
            ("::ffff:a9fe:a9fe", &["169.254.169.254"][..]),
            ("::ffff:0:a9fe:a9fe", &["169.254.169.254"]),
            ("::ffff:0:7f00:1", &["127.0.0.1"]),
            ("::7f00:1", &["127.0.0.1"]),
            ("::0.0.0.2", &["0.0.0.2"]),
            ("::", &[]),
            ("::1", &[]),
            ("64:ff9b::a9fe:a9fe", &["169.254.169.254"]),
            // Local-use NAT64 in each RFC 6052 layout: /96, /64, /56, /48.
            ("64:ff9b:1::a9fe:a9fe", &["169.254.169.254"]),
            // (Other layouts may read it too, giving more addresses; every one is judged.)
            ("64:ff9b:1:0:a9:fea9:fe00:0", &["169.254.169.254"]),
            ("64:ff9b:1:a9:fe:a9fe::", &["169.254.169.254"]),
            ("64:ff9b:1:a9fe:a9:fe00::", &["169.254.169.254"]),
            ("64:ff9b:1::", &[]),
            ("2002:a9fe:a9fe::1", &["169.254.169.254"]),
            // RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (inverted).
            (
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                &["65.54.227.120", "192.0.2.45"],
            ),
            (
                "2001:0:a9fe:a9fe::ffff:ffff",
                &["169.254.169.254", "0.0.0.0"],
            ),
            ("2001:db8:1:2::5efe:a9fe:a9fe", &["169.254.169.254"]),
            ("2001:db8:1:2:200:5efe:a00:1", &["10.0.0.1"]),
            ("2606:4700::1111", &[]),
        ] {
            let got = carried(s);
            if s.starts_with("64:ff9b:1:") {
                assert!(
                    want.iter().all(|w| got.contains(&w.to_string())),
                    "{s}: {got:?}"
                );
            } else {
                assert_eq!(got, want, "{s}");
            }
        }
    }

    #[test]
    fn an_allowed_ipv6_range_does_not_open_the_ipv4_it_carries() {
        // Even with all of IPv6 allowed, each form is judged by the IPv4 it carries.
        let p = EgressPolicy::parse("::/0").expect("valid");
        for s in [
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:7f00:1",
            "::ffff:7f00:1",
            "::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::a00:1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "2002:a00:1::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:a00:1::",
            "2001:db8::5efe:a9fe:a9fe",
        ] {
            assert!(p.check_ip(ip(s)).is_err(), "{s}");
        }
        for s in [
            "64:ff9b::808:808",
            "::ffff:0:808:808",
            "2002:808:808::1",
            "2001:0:808:808::f7f7:f7f7",
        ] {
            assert_eq!(p.check_ip(ip(s)), Ok(()), "{s}");
        }
        assert!(
            p.check_ip(ip("::ffff:0:a9fe:a9fe"))
                .unwrap_err()
                .reason
                .contains("metadata")
        );
    }
}
