//! List cursors from arbitrary input: decoding never panics, only what this key issued for
//! this list verifies, and whatever is issued verifies on its own list only.

#![no_main]

use hookrelay::domain::cursor::CursorKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = CursorKey::new(vec![[7; 32], [8; 32]]);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // As a cursor: a forgery must not verify (the fuzzer cannot find an HMAC tag).
    let scope = "webhooks/ten_fuzz";
    if let Some(id) = key.decode(text, scope) {
        assert_eq!(
            key.encode(scope, &id),
            text,
            "a cursor not issued here verified"
        );
    }
    // As an id and a scope: what is issued round-trips, on its list only.
    let (scope, id) = text.split_once('\n').unwrap_or(("logs/wh_fuzz", text));
    let plausible = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let cursor = key.encode(scope, id);
    assert!(
        cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{cursor}"
    );
    if plausible {
        assert_eq!(key.decode(&cursor, scope).as_deref(), Some(id));
        assert_eq!(key.decode(&cursor, &format!("{scope}x")), None);
    }
});
