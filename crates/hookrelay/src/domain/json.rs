//! JSON as the client sent it: a key given twice in one object is found (with where it is),
//! and an object's members can be read with their values left as sent, byte for byte.
//!
//! Why: serde_json keeps the last of two equal keys without a word, and turns numbers into
//! `f64`, so `{"type": "a", "type": "b"}` and `123456789012345678901234567890` would reach a
//! receiver changed. A relay refuses the first and passes the second on untouched.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Objects and arrays nested deeper than this are not looked into (serde_json refuses
/// documents past the same depth, so the check covers everything a route accepts).
pub const MAX_DEPTH: usize = 128;

/// A key given twice in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The key, unescaped (`"a"` and `"\u0061"` are the same key).
    pub key: String,
    /// Where the key is, as the API names fields: `type`, `data.items[2].id`,
    /// `data["odd key"]`.
    pub path: String,
}

/// The first key given twice in one object of `bytes`, if any. Malformed JSON is not this
/// check's business: it answers `None` for what it could not read, and the parser that
/// follows says what is wrong.
pub fn find_duplicate_key(bytes: &[u8]) -> Option<DuplicateKey> {
    let mut state = Walk {
        path: Vec::new(),
        found: None,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let _ = Walker { state: &mut state }.deserialize(&mut deserializer);
    state.found
}

enum Segment<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

struct Walk<'de> {
    path: Vec<Segment<'de>>,
    found: Option<DuplicateKey>,
}

/// `segments` then `last` in the API's field notation.
fn render(segments: &[Segment<'_>], last: &str) -> String {
    let mut out = String::new();
    let push_key = |out: &mut String, key: &str| {
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if plain {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(key);
        } else {
            out.push('[');
            out.push_str(&serde_json::to_string(key).unwrap_or_default());
            out.push(']');
        }
    };
    for segment in segments {
        match segment {
            Segment::Key(key) => push_key(&mut out, key),
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    push_key(&mut out, last);
    out
}

struct Walker<'s, 'de> {
    state: &'s mut Walk<'de>,
}

impl<'de> DeserializeSeed<'de> for Walker<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walker<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.state.path.len() >= MAX_DEPTH {
            return Err(de::Error::custom("nested too deep"));
        }
        let mut index = 0;
        loop {
            self.state.path.push(Segment::Index(index));
            let more = seq.next_element_seed(Walker {
                state: &mut *self.state,
            });
            self.state.path.pop();
            if more?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.state.path.len() >= MAX_DEPTH {
            return Err(de::Error::custom("nested too deep"));
        }
        // Most objects are small: a scan of the keys so far beats hashing them.
        const SCAN: usize = 16;
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: HashSet<Cow<'de, str>> = HashSet::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let seen = if many.is_empty() {
                few.contains(&key)
            } else {
                many.contains(&key)
            };
            if seen {
                self.state.found = Some(DuplicateKey {
                    path: render(&self.state.path, &key),
                    key: key.into_owned(),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            self.state.path.push(Segment::Key(key.clone()));
            let value = map.next_value_seed(Walker {
                state: &mut *self.state,
            });
            self.state.path.pop();
            value?;
            if many.is_empty() && few.len() < SCAN {
                few.push(key);
            } else {
                many.extend(few.drain(..));
                many.insert(key);
            }
        }
        Ok(())
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

/// A JSON object's members in the order sent, each value left as its text. Duplicate keys
/// are not this type's concern: check with [`find_duplicate_key`] first.
#[derive(Debug, Default)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// Reads `text`, which must be one JSON object (serde_json's error otherwise).
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Like [`RawObject::parse`], from bytes (checked to be UTF-8 where it matters: every
    /// string, as serde_json checks them).
    pub fn parse_slice(bytes: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members
            .iter()
            .find_map(|(k, v)| (k == key).then_some(*v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|(k, _)| k.as_ref())
    }

    /// Every member but those named in `raw`, parsed into values to be checked field by
    /// field (the members in `raw` are read as sent, with [`RawObject::get`]).
    pub fn parsed_except(&self, raw: &[&str]) -> Map<String, Value> {
        self.members
            .iter()
            .filter(|(k, _)| !raw.contains(&k.as_ref()))
            .map(|(k, v)| {
                // A RawValue is valid JSON, so it parses.
                let value = serde_json::from_str(v.get()).unwrap_or(Value::Null);
                (k.clone().into_owned(), value)
            })
            .collect()
    }
}

/// Whether a value, as sent, is a JSON object.
pub fn is_object(value: &RawValue) -> bool {
    value.get().trim_start().starts_with('{')
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for Members<'a> {
            type Value = RawObject<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(key) = map.next_key_seed(KeySeed)? {
                    let value: &'a RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(RawObject { members })
            }
        }

        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(text: &str) -> Option<(String, String)> {
        find_duplicate_key(text.as_bytes()).map(|d| (d.key, d.path))
    }

    #[test]
    fn finds_a_repeated_key_and_says_where() {
        assert_eq!(
            dup(r#"{"type": "a", "data": {}, "type": "b"}"#),
            Some(("type".into(), "type".into()))
        );
        assert_eq!(
            dup(r#"{"data": {"items": [{"id": 1}, {"id": 2, "id": 3}]}}"#),
            Some(("id".into(), "data.items[1].id".into()))
        );
        assert_eq!(
            dup(r#"{"events": [{"type": "x", "data": {"a b": 1, "a b": 2}}]}"#),
            Some(("a b".into(), r#"events[0].data["a b"]"#.into()))
        );
        // Keys are compared as parsed: an escape is the same key.
        assert_eq!(
            dup(r#"{"a": 1, "\u0061": 2}"#),
            Some(("a".into(), "a".into()))
        );
        assert_eq!(
            dup(r#"[{"x": 1, "x": 1}]"#),
            Some(("x".into(), "[0].x".into()))
        );
    }

    #[test]
    fn equal_keys_in_different_objects_are_fine() {
        assert_eq!(
            dup(r#"{"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}"#),
            None
        );
        assert_eq!(dup(r#"{"A": 1, "a": 2}"#), None, "case matters in JSON");
        assert_eq!(dup("{}"), None);
        assert_eq!(dup("[1, 2.5, \"x\", null, true]"), None);
    }

    #[test]
    fn large_objects_switch_to_a_set_and_still_find_it() {
        let mut members: Vec<String> = (0..100).map(|i| format!("\"k{i}\": {i}")).collect();
        assert_eq!(dup(&format!("{{{}}}", members.join(","))), None);
        members.push("\"k3\": 0".into());
        assert_eq!(
            dup(&format!("{{{}}}", members.join(","))),
            Some(("k3".into(), "k3".into()))
        );
    }

    #[test]
    fn malformed_or_too_deep_input_is_left_to_the_parser() {
        assert_eq!(dup(r#"{"a": 1, "b""#), None);
        assert_eq!(dup("not json"), None);
        assert_eq!(dup(""), None);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(dup(&deep), None, "no stack overflow");
        let deep_dup = format!(
            "{}{{\"a\":1,\"a\":2}}{}",
            "[".repeat(MAX_DEPTH + 10),
            "]".repeat(MAX_DEPTH + 10)
        );
        assert_eq!(dup(&deep_dup), None, "past the depth it does not look");
        // A duplicate before a syntax error is still a duplicate.
        assert!(dup(r#"{"a": 1, "a": 2, oops"#).is_some());
    }

    #[test]
    fn raw_objects_keep_values_as_sent() {
        let text = r#"{"type": "x", "data": {"n": 123456789012345678901234567890, "e": 1e2, "z": -0 }, "k": [1]}"#;
        let object = RawObject::parse(text).unwrap();
        let data = object.get("data").unwrap();
        assert_eq!(
            data.get(),
            r#"{"n": 123456789012345678901234567890, "e": 1e2, "z": -0 }"#
        );
        assert!(is_object(data));
        assert!(!is_object(object.get("k").unwrap()));
        assert_eq!(object.keys().collect::<Vec<_>>(), ["type", "data", "k"]);
        let rest = object.parsed_except(&["data"]);
        assert_eq!(
            Value::Object(rest),
            serde_json::json!({"type": "x", "k": [1]})
        );
        assert!(RawObject::parse("[1]").is_err());
        assert!(RawObject::parse("{} x").is_err());
        assert!(RawObject::parse_slice(b"{\"a\": \"\xff\"}").is_err());
    }
}
