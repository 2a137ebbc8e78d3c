//! Reading a JSON object field by field, collecting every problem instead of stopping at the
//! first, so a client learns about all its mistakes in one answer.

use serde::Serialize;
use serde_json::{Map, Value};

/// One rejected input field, named as the client spelled it (`events[2]`, `limit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
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
            .map(|key| FieldError::new(key.as_str(), "unknown field"))
            .collect();
        Input { object, errors }
    }

    /// The value of `field` passed through `parse`, or `None` when the field is absent.
    /// A parse failure is recorded and also yields `None`.
    pub fn optional<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
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
    pub fn required<T>(
        &mut self,
        field: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        if !self.object.contains_key(field) {
            self.errors.push(FieldError::new(field, "is required"));
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
pub fn text(value: &Value, max: usize) -> Result<String, String> {
    let Value::String(raw) = value else {
        return Err("must be a string".into());
    };
    if raw.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if raw.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(trimmed.to_owned())
}

/// An integer within `min..=max`. `"3"` and `3.5` are refused: the type is part of the contract.
pub fn integer(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    match whole_number(value) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be an integer from {min} to {max}")),
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

pub fn boolean(value: &Value) -> Result<bool, String> {
    value
        .as_bool()
        .ok_or_else(|| "must be true or false".to_owned())
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
