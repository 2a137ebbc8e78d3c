//! Reading a JSON object field by field, collecting every problem instead of stopping at the
//! first, so a client learns about all its mistakes in one answer.

use std::fmt::Display;

use serde::Serialize;
use serde_json::{Map, Value};

/// Why a value was refused by one of the field rules here. The `Display` text is the
/// `message` a client reads in the problem answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("must be a string")]
    NotAString,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not be empty")]
    Empty,
    #[error("must not contain bidirectional control characters (U+{:04X})", u32::from(*.0))]
    BidiControl(char),
    #[error("must contain a visible character")]
    Invisible,
    #[error("must be an integer from {min} to {max}")]
    NotAnInteger { min: i64, max: i64 },
    #[error("must be true or false")]
    NotABoolean,
    #[error("is required")]
    Required,
    #[error("unknown field")]
    UnknownField,
}

/// One rejected input field, named as the client spelled it (`events[2]`, `limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    /// `message` is the rule broken, usually a domain error kind; its text is what the client
    /// reads.
    pub fn new(field: impl Into<String>, message: impl Display) -> Self {
        FieldError {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// A JSON object being parsed against a fixed set of allowed fields.
pub struct Input<'a> {
    object: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> Input<'a> {
    /// Starts parsing `object`; any field not in `allowed` is reported as unknown, since a
    /// misspelt field silently ignored is a bug the client never finds.
    pub fn new(object: &'a Map<String, Value>, allowed: &[&str]) -> Self {
        let errors = object
            .keys()
            .filter(|key| !allowed.contains(&key.as_str()))
            .map(|key| FieldError::new(key.as_str(), Invalid::UnknownField))
            .collect();
        Input { object, errors }
    }

    /// The value of `field` passed through `parse`, or `None` when the field is absent.
    /// A parse failure is recorded and also yields `None`.
    pub fn optional<T, E: std::error::Error>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&Value) -> Result<T, E>,
    ) -> Option<T> {
        let value = self.object.get(field)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.errors.push(FieldError::new(field, message));
                None
            }
        }
    }

    /// Like [`Input::optional`], but an absent field is itself an error.
    pub fn required<T, E: std::error::Error>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&Value) -> Result<T, E>,
    ) -> Option<T> {
        if !self.object.contains_key(field) {
            self.errors.push(FieldError::new(field, Invalid::Required));
            return None;
        }
        self.optional(field, parse)
    }

    /// Records an error found by a rule that spans fields, or by a nested parser.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// All collected errors, or `Ok(value)` when there were none.
    pub fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(value())
        } else {
            Err(self.errors)
        }
    }
}

/// A string of 1..=max characters with no control characters, surrounding spaces trimmed.
/// The length and the characters are judged as sent, before trimming, so the rule is the one
/// the OpenAPI document states (`maxLength`, a pattern): a tab or newline at either end is
/// refused like one in the middle, not trimmed away.
pub fn text(value: &Value, max: usize) -> Result<String, Invalid> {
    let Value::String(raw) = value else {
        return Err(Invalid::NotAString);
    };
    if raw.chars().count() > max {
        return Err(Invalid::TooLong { max });
    }
    if raw.chars().any(char::is_control) {
        return Err(Invalid::ControlCharacter);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Invalid::Empty);
    }
    Ok(trimmed.to_owned())
}

/// The longest name of a tenant, a key or a webhook, in characters.
pub const NAME_MAX: usize = 100;

/// [`name`]'s rule as an ECMA-262 regular expression, for documents (the OpenAPI schema): no
/// control or bidirectional control character, and a visible character somewhere. It lists the
/// invisible characters of the Basic Multilingual Plane that [`is_invisible`] knows; a test
/// checks the two agree.
pub const NAME_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb][^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$";

/// [`free_text`]'s rule as an ECMA-262 regular expression: no control or bidirectional
/// control character.
pub const FREE_TEXT_PATTERN: &str =
    r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$";

/// A name (of a tenant, a key, a webhook): [`text`], and something a reader can see, with
/// nothing that reorders how it or the text beside it is displayed. Refused: names made only
/// of invisible characters ([`is_invisible`]: whitespace, zero-width and other format
/// characters, variation selectors, fillers), and names containing a bidirectional control
/// ([`is_bidi_control`]), with which `"invoice\u{202E}fdp.exe"` shows as `invoiceexe.pdf`.
pub fn name(value: &Value, max: usize) -> Result<String, Invalid> {
    let name = text(value, max)?;
    if let Some(c) = name.chars().find(|&c| is_bidi_control(c)) {
        return Err(Invalid::BidiControl(c));
    }
    if name.chars().all(is_invisible) {
        return Err(Invalid::Invisible);
    }
    Ok(name)
}

/// Free text (a description): [`text`] without bidirectional controls. One made only of
/// invisible characters is blank, like one made only of spaces: `None`.
pub fn free_text(value: &Value, max: usize) -> Result<Option<String>, Invalid> {
    let text = match text(value, max) {
        // Only a string that passed every other check of `text` is refused as empty.
        Err(Invalid::Empty) => return Ok(None),
        other => other?,
    };
    if let Some(c) = text.chars().find(|&c| is_bidi_control(c)) {
        return Err(Invalid::BidiControl(c));
    }
    Ok((!text.chars().all(is_invisible)).then_some(text))
}

/// The explicit bidirectional formatting characters (Unicode UAX #9): embeddings and
/// overrides U+202A–U+202E, isolates U+2066–U+2069, and the marks U+200E, U+200F, U+061C.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// A character that shows nothing by itself: whitespace, a default-ignorable code point
/// (Unicode's Default_Ignorable_Code_Point: zero-width characters, joiners, word joiner,
/// invisible operators, variation selectors, the BOM, Hangul fillers, tags …), any other
/// format character (general category Cf), or the blank Braille pattern.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// An integer within `min..=max`. `"3"` and `3.5` are refused: the type is part of the contract.
pub fn integer(value: &Value, min: i64, max: i64) -> Result<i64, Invalid> {
    match whole_number(value) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Invalid::NotAnInteger { min, max }),
    }
}

/// A number with no fractional part, `3` or `3.0` alike: JSON does not tell them apart, nor does
/// JSON Schema's `integer` (which the OpenAPI document states), and some serialisers write
/// every float with a fraction.
pub fn whole_number(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        let f = value.as_f64()?;
        // 2^63 as f64 is exact; anything from it up does not fit an i64.
        let fits = f.fract() == 0.0 && f >= -(2f64.powi(63)) && f < 2f64.powi(63);
        fits.then_some(f as i64)
    })
}

pub fn boolean(value: &Value) -> Result<bool, Invalid> {
    value.as_bool().ok_or(Invalid::NotABoolean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    /// Every character of the Basic Multilingual Plane, alone and after a visible one.
    fn bmp_samples() -> impl Iterator<Item = String> {
        (0u32..=0xFFFF)
            .filter_map(char::from_u32)
            .flat_map(|c| [c.to_string(), format!("a{c}"), format!("{c}a{c}")])
    }

    #[test]
    fn name_pattern_states_the_name_rule() {
        let pattern = regex::Regex::new(NAME_PATTERN).expect("NAME_PATTERN compiles");
        for sample in bmp_samples() {
            assert_eq!(
                pattern.is_match(&sample),
                name(&json!(sample), NAME_MAX).is_ok(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn free_text_pattern_states_the_free_text_rule() {
        let pattern = regex::Regex::new(FREE_TEXT_PATTERN).expect("FREE_TEXT_PATTERN compiles");
        for sample in bmp_samples() {
            assert_eq!(
                pattern.is_match(&sample),
                free_text(&json!(sample), NAME_MAX).is_ok(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn collects_every_error_including_unknown_fields() {
        let obj = object(json!({"name": "", "count": 11, "colour": "red"}));
        let mut input = Input::new(&obj, &["name", "count", "flag"]);
        let name = input.required("name", |v| text(v, 10));
        let count = input.optional("count", |v| integer(v, 0, 10));
        let flag = input.required("flag", boolean);
        assert_eq!((name, count, flag), (None, None, None));
        let errors = input.finish(|| ()).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["colour", "name", "count", "flag"]);
        assert_eq!(errors[3].message, "is required");
    }

    /// The messages clients read (and the docs quote) are the kinds' text.
    #[test]
    fn messages_are_the_kinds_text() {
        let obj = object(json!({"name": "\u{200B}", "count": 11, "flag": "yes", "t": 5}));
        let mut input = Input::new(&obj, &["name", "count", "flag", "t"]);
        input.optional("name", |v| name(v, 10));
        input.optional("count", |v| integer(v, 0, 10));
        input.optional("flag", boolean);
        input.optional("t", |v| text(v, 10));
        let errors = input.finish(|| ()).unwrap_err();
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "must contain a visible character",
                "must be an integer from 0 to 10",
                "must be true or false",
                "must be a string",
            ]
        );
        assert_eq!(
            text(&json!("abcdef"), 5).unwrap_err().to_string(),
            "must be at most 5 characters"
        );
        assert_eq!(
            text(&json!(" "), 5).unwrap_err().to_string(),
            "must not be empty"
        );
        assert_eq!(
            text(&json!("a\u{0}"), 5).unwrap_err().to_string(),
            "must not contain control characters"
        );
    }

    #[test]
    fn text_trims_and_bounds() {
        assert_eq!(text(&json!("  ok "), 5), Ok("ok".into()));
        assert!(text(&json!("abcdef"), 5).is_err());
        assert!(text(&json!("abcd  "), 5).is_err(), "length as sent");
        assert!(
            text(&json!("\tab"), 5).is_err(),
            "a control is refused, not trimmed"
        );
        assert!(text(&json!(" \u{a0} "), 5).is_err(), "blank");
        assert!(text(&json!("a\u{0}b"), 5).is_err());
        assert!(text(&json!(5), 5).is_err());
        // Characters, not bytes.
        assert_eq!(text(&json!("ééééé"), 5), Ok("ééééé".into()));
    }

    #[test]
    fn a_name_must_show_something() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{200C}\u{200D}",
            "\u{2060}",
            "\u{FEFF}",
            "\u{FE0F}",
            "\u{E0100}",
            "\u{3164}\u{3164}",
            "\u{2800}",
            "\u{00AD}",
            "\u{E0041}\u{E0042}",
            " \u{200B} \u{3000}",
            "\u{180E}",
        ] {
            assert_eq!(
                name(&json!(invisible), 100),
                Err(Invalid::Invisible),
                "{invisible:?}"
            );
        }
        // Invisible characters beside visible ones are someone's spelling (ZWJ emoji, ZWNJ
        // in Persian): allowed.
        for fine in [
            "Acme",
            "👩\u{200D}💻 team",
            "می\u{200C}خواهم",
            "❤\u{FE0F}",
            "CRM sync",
        ] {
            assert_eq!(name(&json!(fine), 100), Ok(fine.to_owned()), "{fine:?}");
        }
        // The `text` rules still hold.
        assert!(name(&json!("   "), 100).is_err());
        assert!(name(&json!("a\tb"), 100).is_err());
        assert!(name(&json!(5), 100).is_err());
    }

    #[test]
    fn a_name_must_not_reorder_text() {
        for (c, code) in [
            ('\u{202A}', "U+202A"),
            ('\u{202B}', "U+202B"),
            ('\u{202C}', "U+202C"),
            ('\u{202D}', "U+202D"),
            ('\u{202E}', "U+202E"),
            ('\u{2066}', "U+2066"),
            ('\u{2067}', "U+2067"),
            ('\u{2068}', "U+2068"),
            ('\u{2069}', "U+2069"),
            ('\u{200E}', "U+200E"),
            ('\u{200F}', "U+200F"),
            ('\u{061C}', "U+061C"),
        ] {
            let value = json!(format!("invoice{c}fdp.exe"));
            assert_eq!(name(&value, 100), Err(Invalid::BidiControl(c)), "{code}");
            assert_eq!(
                Invalid::BidiControl(c).to_string(),
                format!("must not contain bidirectional control characters ({code})"),
            );
            assert!(free_text(&value, 500).is_err(), "{code} in a description");
        }
        assert!(!is_bidi_control('\u{200B}'));
        assert!(!is_bidi_control('a'));
    }

    #[test]
    fn free_text_made_only_of_invisible_characters_is_blank() {
        assert_eq!(free_text(&json!("\u{200B}\u{2060}"), 500), Ok(None));
        assert_eq!(free_text(&json!(" ok "), 500), Ok(Some("ok".into())));
        assert!(free_text(&json!("a\u{0}"), 500).is_err());
    }

    #[test]
    fn integer_refuses_fractions_strings_and_out_of_range() {
        assert_eq!(integer(&json!(3), 0, 10), Ok(3));
        assert_eq!(integer(&json!(3.0), 0, 10), Ok(3));
        assert_eq!(integer(&json!(-0.0), 0, 10), Ok(0));
        assert!(integer(&json!(3.5), 0, 10).is_err());
        assert!(integer(&json!(1e300), 0, 10).is_err());
        assert_eq!(whole_number(&json!(9.3e18)), None);
        assert!(integer(&json!("3"), 0, 10).is_err());
        assert!(integer(&json!(-1), 0, 10).is_err());
        assert!(integer(&json!(1e9), 0, 10).is_err());
    }
}
