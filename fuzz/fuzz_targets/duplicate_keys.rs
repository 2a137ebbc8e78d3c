//! The duplicate-key check from arbitrary bytes: it never panics or overflows the stack; a
//! document serde_json parses and writes back (which has unique keys) passes; and a key it
//! reports really is repeated text of the input.

#![no_main]

use hookrelay::domain::json::{RawObject, find_duplicate_key};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let found = find_duplicate_key(data);
    if let Ok(value) = serde_json::from_slice::<Value>(data) {
        // A Value holds each key once: written back, nothing is repeated.
        let again = value.to_string();
        assert_eq!(find_duplicate_key(again.as_bytes()), None, "{again}");
        if let Some(dup) = &found {
            // The parsed value lost one of the two: the key is in the input's path.
            assert!(dup.path.contains(dup.key.as_str()) || dup.path.contains('['));
        }
    }
    // Reading an object raw never panics, and gives back its members' text as sent.
    if let Ok(object) = RawObject::parse_slice(data) {
        for key in object.keys() {
            let raw = object.get(key).map(|v| v.get().to_owned()).unwrap_or_default();
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(&raw).is_ok(), "{raw}");
        }
    }
});
