use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::*;

// Example vector published in the Standard Webhooks specification.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TS: i64 = 1614265330;
const SPEC_TS_STR: &str = "1614265330";
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const TOL: Duration = Duration::from_secs(300);

fn secret() -> Secret {
    Secret::parse(SPEC_SECRET).unwrap()
}

fn spec_headers(sig: &str) -> [(&'static str, String); 3] {
    [
        ("webhook-id", SPEC_ID.to_owned()),
        ("webhook-timestamp", SPEC_TS_STR.to_owned()),
        ("webhook-signature", sig.to_owned()),
    ]
}

fn parts(id: &str, ts: &str, sigs: &str, body: &[u8], now: i64) -> Result<(), Error> {
    verify_parts(&secret(), id, ts, sigs, body, TOL, now)
}

#[test]
fn spec_vector_sign() {
    assert_eq!(sign(&secret(), SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
}

#[test]
fn spec_vector_verify() {
    assert_eq!(
        verify_at(&secret(), &spec_headers(SPEC_SIG), SPEC_BODY, TOL, SPEC_TS),
        Ok(())
    );
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, SPEC_SIG, SPEC_BODY, SPEC_TS),
        Ok(())
    );
}

#[test]
fn sign_output_has_exact_capacity() {
    let sig = sign(&secret(), SPEC_ID, SPEC_TS, SPEC_BODY);
    assert_eq!(sig.len(), V1_SIGNATURE_LEN);
    assert_eq!(sig.capacity(), V1_SIGNATURE_LEN);
}

#[test]
fn sign_timestamp_formatting() {
    // The timestamp is formatted as plain decimal, like `to_string()`.
    let s = Secret::from_bytes(b"key");
    for ts in [0, 1, -1, 42, SPEC_TS, i64::MAX, i64::MIN] {
        let mut mac = HmacSha256::new_from_slice(b"key").unwrap();
        mac.update(format!("id.{ts}.body").as_bytes());
        let want = format!(
            "v1,{}",
            STANDARD.encode(mac.finalize().into_bytes().as_slice())
        );
        assert_eq!(sign(&s, "id", ts, b"body"), want, "ts = {ts}");
    }
}

#[test]
fn tampered_body_rejected() {
    assert_eq!(
        parts(
            SPEC_ID,
            SPEC_TS_STR,
            SPEC_SIG,
            br#"{"test": 2432232315}"#,
            SPEC_TS
        ),
        Err(Error::NoMatchingSignature)
    );
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, SPEC_SIG, b"", SPEC_TS),
        Err(Error::NoMatchingSignature)
    );
}

#[test]
fn tampered_id_rejected() {
    assert_eq!(
        parts(
            "msg_p5jXN8AQM9LWM0D4loKWxJeK",
            SPEC_TS_STR,
            SPEC_SIG,
            SPEC_BODY,
            SPEC_TS
        ),
        Err(Error::NoMatchingSignature)
    );
}

#[test]
fn tampered_timestamp_rejected() {
    // Still within tolerance, so it is the signature that fails.
    assert_eq!(
        parts(SPEC_ID, "1614265331", SPEC_SIG, SPEC_BODY, SPEC_TS),
        Err(Error::NoMatchingSignature)
    );
}

#[test]
fn timestamp_tolerance_boundaries() {
    let ok = |now| parts(SPEC_ID, SPEC_TS_STR, SPEC_SIG, SPEC_BODY, now);
    assert_eq!(ok(SPEC_TS + 300), Ok(()));
    assert_eq!(ok(SPEC_TS - 300), Ok(()));
    assert_eq!(ok(SPEC_TS + 301), Err(Error::TimestampTooOld));
    assert_eq!(ok(SPEC_TS - 301), Err(Error::TimestampTooNew));
    assert_eq!(ok(i64::MAX), Err(Error::TimestampTooOld));
    assert_eq!(ok(i64::MIN), Err(Error::TimestampTooNew));
}

#[test]
fn timestamp_too_old_and_too_new() {
    let s = secret();
    let old = sign(&s, "msg_1", SPEC_TS - 3600, b"x");
    let old_ts = (SPEC_TS - 3600).to_string();
    assert_eq!(
        verify_parts(&s, "msg_1", &old_ts, &old, b"x", TOL, SPEC_TS),
        Err(Error::TimestampTooOld)
    );
    let new = sign(&s, "msg_1", SPEC_TS + 3600, b"x");
    let new_ts = (SPEC_TS + 3600).to_string();
    assert_eq!(
        verify_parts(&s, "msg_1", &new_ts, &new, b"x", TOL, SPEC_TS),
        Err(Error::TimestampTooNew)
    );
    // Zero tolerance accepts only the exact second.
    assert_eq!(
        verify_parts(
            &s,
            "msg_1",
            &new_ts,
            &new,
            b"x",
            Duration::ZERO,
            SPEC_TS + 3600
        ),
        Ok(())
    );
    // A huge tolerance does not overflow.
    assert_eq!(
        verify_parts(&s, "msg_1", &new_ts, &new, b"x", Duration::MAX, i64::MIN),
        Ok(())
    );
}

#[test]
fn invalid_timestamps() {
    for ts in [
        "",
        " ",
        "abc",
        "-1614265330",
        "+1614265330",
        " 1614265330",
        "1614265330 ",
        "1614265330.5",
        "1_614_265_330",
        "99999999999999999999999",
        "١٢٣",
    ] {
        assert_eq!(
            parts(SPEC_ID, ts, SPEC_SIG, SPEC_BODY, SPEC_TS),
            Err(Error::InvalidTimestamp),
            "{ts:?}"
        );
    }
    // Leading zeros denote the same number, as in the official libraries.
    assert_eq!(
        parts(SPEC_ID, "01614265330", SPEC_SIG, SPEC_BODY, SPEC_TS),
        Ok(())
    );
}

#[test]
fn second_signature_matches() {
    let other = sign(&Secret::from_bytes(b"old key"), SPEC_ID, SPEC_TS, SPEC_BODY);
    let header = format!("{other} {SPEC_SIG}");
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
        Ok(())
    );
    let header = format!("{SPEC_SIG} {other}");
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
        Ok(())
    );
    // Extra whitespace between entries is tolerated.
    let header = format!("  {other}   {SPEC_SIG}  ");
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
        Ok(())
    );
    // Two wrong signatures fail.
    let header = format!("{other} {other}");
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
        Err(Error::NoMatchingSignature)
    );
}

#[test]
fn unknown_versions_ignored() {
    let b64 = &SPEC_SIG[3..];
    // The correct MAC under another version prefix does not count.
    for header in [
        format!("v2,{b64}"),
        format!("v1a,{b64}"),
        format!("V1,{b64}"),
        format!("v1{b64}"),
        b64.to_owned(),
    ] {
        assert_eq!(
            parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
            Err(Error::NoMatchingSignature),
            "{header:?}"
        );
    }
    // But other entries do not prevent a v1 match.
    let header = format!("v1a,c29tZWVkMjU1MTlzaWc= v2,{b64} {SPEC_SIG} v0,xyz");
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
        Ok(())
    );
}

#[test]
fn missing_headers_reported_precisely() {
    let s = secret();
    let all = spec_headers(SPEC_SIG);
    for (skip, name) in [
        (0, "webhook-id"),
        (1, "webhook-timestamp"),
        (2, "webhook-signature"),
    ] {
        let headers: Vec<_> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| h.clone())
            .collect();
        let err = verify_at(&s, &headers, SPEC_BODY, TOL, SPEC_TS).unwrap_err();
        assert_eq!(err, Error::MissingHeader(name));
        assert_eq!(err.to_string(), format!("missing `{name}` header"));
    }
    let none: [(&str, &str); 0] = [];
    assert_eq!(
        verify_at(&s, &none, SPEC_BODY, TOL, SPEC_TS),
        Err(Error::MissingHeader(HEADER_ID))
    );
}

#[test]
fn garbage_signature_headers_never_panic() {
    let s = secret();
    let long_b64 = format!("v1,{}", STANDARD.encode([7u8; 100]));
    let short_b64 = format!("v1,{}", STANDARD.encode([7u8; 8]));
    let truncated = &SPEC_SIG[..SPEC_SIG.len() - 4];
    let unpadded = SPEC_SIG.trim_end_matches('=');
    let garbage = [
        "",
        " ",
        ",",
        "v1",
        "v1,",
        "v1,,",
        "v1,=",
        "v1,====",
        "v1,!!!!",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
        "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=A",
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE==",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "v1,\u{0}\u{1}\u{2}",
        "v1,ü€😀",
        "😀,😀",
        truncated,
        unpadded,
        &long_b64,
        &short_b64,
    ];
    for header in garbage {
        assert_eq!(
            verify_parts(&s, SPEC_ID, SPEC_TS_STR, header, SPEC_BODY, TOL, SPEC_TS),
            Err(Error::NoMatchingSignature),
            "{header:?}"
        );
    }
    // Garbage in every input at once.
    for junk in garbage {
        let _ = verify_parts(&s, junk, junk, junk, junk.as_bytes(), TOL, SPEC_TS);
        let _ = Secret::parse(junk);
    }
}

#[test]
fn prefix_of_valid_signature_does_not_match() {
    // A signature decoding to a prefix of the real tag must not match.
    let tag = secret().tag(SPEC_ID, SPEC_TS, SPEC_BODY);
    for len in [0, 1, 16, 31] {
        let header = format!("v1,{}", STANDARD.encode(&tag[..len]));
        assert_eq!(
            parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
            Err(Error::NoMatchingSignature),
            "len = {len}"
        );
    }
    let mut longer = tag.to_vec();
    longer.push(0);
    let header = format!("v1,{}", STANDARD.encode(&longer));
    assert_eq!(
        parts(SPEC_ID, SPEC_TS_STR, &header, SPEC_BODY, SPEC_TS),
        Err(Error::NoMatchingSignature)
    );
}

#[test]
fn garbage_secrets_rejected() {
    for s in [
        "",
        "whsec_",
        "whsec",
        "whsec_!!!!",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw=",
        "whsec_whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_MfKQ9r8GK YqrTwjUPD8ILPZIo2LaLaSw",
        "😀",
        "\u{0}",
    ] {
        assert_eq!(Secret::parse(s).unwrap_err(), Error::InvalidSecret, "{s:?}");
    }
    assert_eq!(Error::InvalidSecret.to_string(), "invalid webhook secret");
}

#[test]
fn secret_with_and_without_prefix() {
    let with = Secret::parse(SPEC_SECRET).unwrap();
    let without = Secret::parse(&SPEC_SECRET["whsec_".len()..]).unwrap();
    let padded = Secret::parse(&format!(" {SPEC_SECRET}\n")).unwrap();
    let via_from_str: Secret = SPEC_SECRET.parse().unwrap();
    for s in [&with, &without, &padded, &via_from_str] {
        assert_eq!(s.key, with.key);
        assert_eq!(s.to_whsec(), SPEC_SECRET);
        assert_eq!(sign(s, SPEC_ID, SPEC_TS, SPEC_BODY), SPEC_SIG);
        assert_eq!(
            verify_at(s, &spec_headers(SPEC_SIG), SPEC_BODY, TOL, SPEC_TS),
            Ok(())
        );
    }
}

#[test]
fn secret_round_trip_and_debug() {
    for key in [&b"k"[..], b"ab", b"abc", &[0xff; 24], &[0x5a; 100]] {
        let s = Secret::from_bytes(key);
        let whsec = s.to_whsec();
        assert!(whsec.starts_with("whsec_"));
        assert_eq!(Secret::parse(&whsec).unwrap().key, key);
        // Long keys (hashed by HMAC) sign the same after a round trip.
        assert_eq!(
            sign(&Secret::parse(&whsec).unwrap(), "id", 1, b"b"),
            sign(&s, "id", 1, b"b")
        );
    }
    let debug = format!("{:?}", secret());
    assert_eq!(debug, "Secret { .. }");
    assert!(!debug.contains("MfKQ"));
}

#[test]
fn header_names_case_insensitive() {
    let s = secret();
    let ts = SPEC_TS_STR;

    let pairs = [
        ("WEBHOOK-ID", SPEC_ID),
        ("Webhook-Timestamp", ts),
        ("webhook-SIGNATURE", SPEC_SIG),
    ];
    assert_eq!(verify_at(&s, &pairs, SPEC_BODY, TOL, SPEC_TS), Ok(()));
    assert_eq!(verify_at(&s, &pairs[..], SPEC_BODY, TOL, SPEC_TS), Ok(()));
    assert_eq!(
        verify_at(&s, &pairs.to_vec(), SPEC_BODY, TOL, SPEC_TS),
        Ok(())
    );
    let dyn_headers: &dyn HeaderLookup = &pairs;
    assert_eq!(verify_at(&s, dyn_headers, SPEC_BODY, TOL, SPEC_TS), Ok(()));

    let owned: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(verify_at(&s, &owned, SPEC_BODY, TOL, SPEC_TS), Ok(()));
    assert_eq!(verify_at(&s, &&owned, SPEC_BODY, TOL, SPEC_TS), Ok(()));

    let borrowed: HashMap<&str, &str> = pairs.iter().copied().collect();
    assert_eq!(verify_at(&s, &borrowed, SPEC_BODY, TOL, SPEC_TS), Ok(()));

    let btree: BTreeMap<String, &str> = pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(verify_at(&s, &btree, SPEC_BODY, TOL, SPEC_TS), Ok(()));

    // Unrelated headers and similar-looking names are not confused.
    let pairs = [
        ("content-type", "application/json"),
        ("webhook-id-x", "nope"),
        ("x-webhook-id", "nope"),
        ("Webhook-Id", SPEC_ID),
        ("webhook-timestamp", ts),
        ("webhook-signature", SPEC_SIG),
    ];
    assert_eq!(verify_at(&s, &pairs, SPEC_BODY, TOL, SPEC_TS), Ok(()));
    assert_eq!(pairs.header("WEBHOOK-ID"), Some(SPEC_ID));
    assert_eq!(pairs.header("webhook"), None);
}

#[test]
fn verify_uses_the_clock() {
    let s = secret();
    // The spec vector is from 2021, far outside any reasonable tolerance.
    assert_eq!(
        verify(&s, &spec_headers(SPEC_SIG), SPEC_BODY, TOL),
        Err(Error::TimestampTooOld)
    );
    let now = unix_now();
    let sig = sign(&s, "msg_now", now, b"hello");
    let headers = [
        ("webhook-id", "msg_now".to_owned()),
        ("webhook-timestamp", now.to_string()),
        ("webhook-signature", sig),
    ];
    assert_eq!(verify(&s, &headers, b"hello", DEFAULT_TOLERANCE), Ok(()));
}

#[test]
fn error_display_and_trait() {
    let cases = [
        (
            Error::MissingHeader(HEADER_ID),
            "missing `webhook-id` header",
        ),
        (Error::InvalidTimestamp, "invalid webhook timestamp"),
        (Error::TimestampTooOld, "webhook timestamp is too old"),
        (
            Error::TimestampTooNew,
            "webhook timestamp is too far in the future",
        ),
        (Error::NoMatchingSignature, "no matching webhook signature"),
        (Error::InvalidSecret, "invalid webhook secret"),
    ];
    for (err, msg) in cases {
        assert_eq!(err.to_string(), msg);
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(err);
        assert!(boxed.source().is_none());
    }
}
