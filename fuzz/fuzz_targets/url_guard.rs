//! The SSRF guard from arbitrary input: the webhook URL rule, the literal-address check and
//! the host-name check under the default policy and a permissive one, the allow-list parser,
//! and the address classifier on raw IPv4/IPv6 bytes. Nothing may panic; metadata endpoints
//! stay blocked whatever the operator allows, and an IPv6 address carrying an IPv4 one is
//! never more permitted than that IPv4 address.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hookrelay::delivery::guard::check_literal;
use hookrelay::domain::target::TargetPolicy;
use hookrelay::domain::webhook::parse_url;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = TargetPolicy::default();
    let Ok(open) = TargetPolicy::parse("0.0.0.0/0,::/0") else {
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
        let mapped = IpAddr::V6(v4.to_ipv6_mapped());
        if strict.check_ip(IpAddr::V4(v4)).is_err() {
            assert!(
                strict.check_ip(mapped).is_err(),
                "{mapped} slips past as IPv6"
            );
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
    let _ = TargetPolicy::parse(text);
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
