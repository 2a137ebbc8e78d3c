//! The SSRF guard from arbitrary input: the webhook URL rule, the literal-address check and
//! the host-name check under the default policy and a permissive one, the allow-list parser,
//! and the address classifier on raw IPv4/IPv6 bytes. Nothing may panic; metadata endpoints
//! stay blocked whatever the operator allows, and an IPv6 address carrying an IPv4 one (in
//! any of the forms that carry one) is never more permitted than that IPv4 address.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hookrelay::domain::egress::EgressPolicy;
use hookrelay::domain::webhook::parse_url;
use hookrelay::egress::check_literal;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = EgressPolicy::default();
    let Ok(open) = EgressPolicy::parse("0.0.0.0/0,::/0") else {
        panic!("the permissive policy parses");
    };

    // Raw addresses: the first 16 bytes as IPv6, the first 4 as IPv4.
    if data.len() >= 16 {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&data[..16]);
        let v6 = Ipv6Addr::from(octets);
        let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
        for ip in [IpAddr::V6(v6), IpAddr::V4(v4)] {
            if strict.check_ip(ip).is_ok() {
                // Whatever the default allows, allowing more cannot refuse.
                assert!(
                    open.check_ip(ip).is_ok(),
                    "{ip}: allowed strictly, not openly"
                );
            }
        }
        // Every IPv6 spelling of the IPv4 address is at most as permitted as the address,
        // under either policy: mapped, translated, compatible, NAT64 (well-known and
        // local-use), 6to4, Teredo (server and client), ISATAP.
        let n = u32::from(v4);
        let (hi, lo) = ((n >> 16) as u16, n as u16);
        let forms = [
            Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo),
            Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo),
            Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, hi, lo),
            Ipv6Addr::new(0x64, 0xff9b, 1, hi, lo >> 8, lo << 8, 0, 0),
            Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1),
            Ipv6Addr::new(0x2001, 0, hi, lo, 0, 0, 0, 0),
            Ipv6Addr::new(0x2001, 0, 0x0808, 0x0808, 0, 0, !hi, !lo),
            Ipv6Addr::new(0x2a00, 0x1450, 0, 0, 0, 0x5efe, hi, lo),
        ];
        for form in forms {
            for policy in [&strict, &open] {
                if policy.check_ip(IpAddr::V4(v4)).is_err() && n > 1 {
                    assert!(
                        policy.check_ip(IpAddr::V6(form)).is_err(),
                        "{form} slips past as IPv6"
                    );
                }
            }
        }
        // And whatever the classifier finds inside an address judges it.
        for carried in hookrelay::domain::egress::embedded_ipv4(v6) {
            if open.check_ip(IpAddr::V4(carried)).is_err() {
                assert!(
                    open.check_ip(IpAddr::V6(v6)).is_err(),
                    "{v6} carries {carried}"
                );
            }
        }
    }
    for metadata in ["169.254.169.254", "fd00:ec2::254"] {
        let ip: IpAddr = metadata
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(open.check_ip(ip).is_err(), "{metadata} allowed");
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = EgressPolicy::parse(text);
    let _ = strict.check_name(text);
    if let Ok(normal) = parse_url(&Value::String(text.to_owned())) {
        let Ok(url) = url::Url::parse(&normal) else {
            panic!("an accepted URL parses again: {normal}");
        };
        let strict_verdict = check_literal(&strict, &url);
        let open_verdict = check_literal(&open, &url);
        if strict_verdict.is_ok() {
            assert!(open_verdict.is_ok(), "{normal}");
        }
        if let Some(host) = url.host_str() {
            let _ = strict.check_name(host);
            let _ = open.check_name(host);
        }
    }
});
