//! Custom headers a tenant adds to every delivery of a webhook (an auth token their gateway
//! wants, a routing key). They must never let a tenant forge or break what hookrelay itself
//! sends: framing headers, the signature headers and our own `x-hookrelay-*` are refused.

use serde_json::Value;

use super::input::FieldError;

/// Bytes of all custom headers together, counted as they go on the wire (`name: value\r\n`).
pub const HEADERS_MAX_BYTES: usize = 4096;
/// Per header, so that the OpenAPI document can state the bounds (it cannot state the total).
pub const HEADERS_MAX_COUNT: usize = 16;
pub const HEADER_NAME_MAX: usize = 64;
/// Long enough for a bearer JWT.
pub const HEADER_VALUE_MAX: usize = 1024;
/// What a custom header's value reads as outside `GET /webhooks/{id}/headers`: they often
/// carry a receiver's credentials, and unlike a secret (`whsec_…`) they have no public
/// prefix, so no character of them is shown.
pub const MASK: &str = "***";

/// Names a tenant may not set: HTTP framing and connection management (a tenant must not be
/// able to smuggle a second request or break the exchange), what hookrelay sets itself, and
/// the Standard Webhooks headers receivers verify.
const RESERVED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "content-type",
    "content-encoding",
    "user-agent",
];

const RESERVED_PREFIXES: &[&str] = &["webhook-", "x-hookrelay-", "proxy-", ":"];

/// Validated custom headers: lowercase names (HTTP names are case-insensitive; HTTP/2 sends
/// them lowercase anyway), in the order the tenant gave them.
pub type CustomHeaders = Vec<(String, String)>;

/// Why custom headers, or one of them, are refused; the text is what the client reads,
/// under `headers` or `headers.<name>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHeader {
    #[error("must be an object of header names to string values")]
    NotAnObject,
    #[error("must have at most {HEADERS_MAX_COUNT} headers")]
    TooMany,
    #[error(
        "must total at most {HEADERS_MAX_BYTES} bytes (name: value, each line); these take {bytes}"
    )]
    TooManyBytes { bytes: usize },
    #[error("header name must not be empty")]
    EmptyName,
    #[error("header name must be at most {HEADER_NAME_MAX} characters")]
    NameTooLong,
    #[error("is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)")]
    NotAToken,
    #[error("is set by hookrelay or by HTTP itself and cannot be overridden")]
    Reserved,
    #[error("is given twice (header names are case-insensitive)")]
    Duplicate,
    #[error("must be a string")]
    NotAString,
    #[error("must be at most {HEADER_VALUE_MAX} characters")]
    ValueTooLong,
    #[error("must not contain CR, LF or NUL")]
    LineBreak,
    #[error("must be printable ASCII")]
    NotPrintable,
    #[error("must not start or end with whitespace")]
    SurroundingWhitespace,
    /// A masked webhook sent back as it was read would replace the credential with this.
    #[error(
        "{MASK} is how values are shown masked; send the real value (GET /webhooks/{{id}}/headers reads them)"
    )]
    Masked,
}

/// Parses a `headers` field: an object of string values, or `null` for none. Each bad header
/// is reported under its own name (`headers.X-Foo`), all at once.
pub fn parse(value: &Value) -> Result<CustomHeaders, Vec<FieldError>> {
    let object = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        _ => return Err(vec![FieldError::new("headers", InvalidHeader::NotAnObject)]),
    };
    if object.len() > HEADERS_MAX_COUNT {
        return Err(vec![FieldError::new("headers", InvalidHeader::TooMany)]);
    }
    let mut errors = Vec::new();
    let mut headers: CustomHeaders = Vec::with_capacity(object.len());
    let mut bytes = 0usize;
    for (name, value) in object {
        let field = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        let checked = check_name(&lower).and_then(|()| match value {
            Value::String(value) => check_value(value).map(|()| value),
            _ => Err(InvalidHeader::NotAString),
        });
        let value = match checked {
            Ok(value) => value,
            Err(error) => {
                errors.push(FieldError::new(field, error));
                continue;
            }
        };
        if headers.iter().any(|(n, _)| *n == lower) {
            errors.push(FieldError::new(field, InvalidHeader::Duplicate));
            continue;
        }
        bytes = bytes.saturating_add(lower.len() + value.len() + 4);
        headers.push((lower, value.clone()));
    }
    if bytes > HEADERS_MAX_BYTES {
        errors.push(FieldError::new(
            "headers",
            InvalidHeader::TooManyBytes { bytes },
        ));
    }
    if errors.is_empty() {
        Ok(headers)
    } else {
        Err(errors)
    }
}

/// A header name: an RFC 9110 token, and not one hookrelay controls.
fn check_name(lower: &str) -> Result<(), InvalidHeader> {
    if lower.is_empty() {
        return Err(InvalidHeader::EmptyName);
    }
    if lower.len() > HEADER_NAME_MAX {
        return Err(InvalidHeader::NameTooLong);
    }
    if !lower.bytes().all(is_tchar) {
        return Err(InvalidHeader::NotAToken);
    }
    if RESERVED.contains(&lower) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err(InvalidHeader::Reserved);
    }
    Ok(())
}

/// A header value: visible ASCII and inner spaces; CR, LF and NUL would split or end the
/// header, so they are the attack this refuses.
fn check_value(value: &str) -> Result<(), InvalidHeader> {
    if value.len() > HEADER_VALUE_MAX {
        return Err(InvalidHeader::ValueTooLong);
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(InvalidHeader::LineBreak);
    }
    if !value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err(InvalidHeader::NotPrintable);
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err(InvalidHeader::SurroundingWhitespace);
    }
    if value == MASK {
        return Err(InvalidHeader::Masked);
    }
    Ok(())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The JSON form used in answers and storage: an object in the given order.
pub fn to_json(headers: &CustomHeaders) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(n, v)| (n.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// The JSON form shown where values are masked: the names, in order, each with [`MASK`].
pub fn to_masked_json(headers: &CustomHeaders) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(n, _)| (n.clone(), Value::String(MASK.to_owned())))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Vec<(String, String)> {
        match parse(&v) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    #[test]
    fn accepts_ordinary_headers_lowercased_in_order() {
        let parsed = parse(&json!({"Authorization": "Bearer abc", "X-Team": "crm"}));
        assert_eq!(
            parsed,
            Ok(vec![
                ("authorization".into(), "Bearer abc".into()),
                ("x-team".into(), "crm".into()),
            ])
        );
        assert_eq!(parse(&Value::Null), Ok(Vec::new()));
        assert_eq!(parse(&json!({})), Ok(Vec::new()));
    }

    #[test]
    fn masked_form_names_headers_but_hides_values() {
        let headers = vec![
            ("authorization".to_owned(), "Bearer abc".to_owned()),
            ("x-team".to_owned(), "crm".to_owned()),
        ];
        assert_eq!(
            to_masked_json(&headers),
            json!({"authorization": "***", "x-team": "***"})
        );
        // The mask itself is not a value: a masked webhook sent back would lose the secret.
        let errors = fields(json!({"Authorization": MASK}));
        assert_eq!(errors[0].0, "headers.Authorization");
    }

    #[test]
    fn refuses_every_reserved_name_in_any_case() {
        for name in [
            "Host",
            "Content-Length",
            "TRANSFER-ENCODING",
            "connection",
            "Webhook-Signature",
            "webhook-id",
            "webhook-timestamp",
            "X-Hookrelay-Attempt",
            "x-hookrelay-anything",
            "Content-Type",
            "Proxy-Authorization",
            "User-Agent",
        ] {
            let errors = fields(json!({ name: "x" }));
            assert_eq!(errors.len(), 1, "{name}");
            assert_eq!(errors[0].0, format!("headers.{name}"));
            assert!(errors[0].1.contains("cannot be overridden"), "{name}");
        }
    }

    #[test]
    fn refuses_crlf_nul_and_bad_names() {
        let errors = fields(json!({
            "X-A": "ok\r\nX-Injected: 1",
            "X-B": "a\nb",
            "X-C": "a\u{0}b",
            "X-D": "café",
            "Bad Name": "x",
            "X-E\r\nHost": "x",
            "": "x",
            "X-F": 5,
            "X-G": " padded",
        }));
        let names: Vec<&str> = errors.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "headers.X-A",
                "headers.X-B",
                "headers.X-C",
                "headers.X-D",
                "headers.Bad Name",
                "headers.X-E\r\nHost",
                "headers.",
                "headers.X-F",
                "headers.X-G",
            ]
        );
        assert!(errors[0].1.contains("CR, LF"));
    }

    /// The texts clients read, which the docs and the black-box tests quote.
    #[test]
    fn messages_are_unchanged() {
        let messages: Vec<String> = [
            InvalidHeader::NotAnObject,
            InvalidHeader::TooMany,
            InvalidHeader::TooManyBytes { bytes: 5000 },
            InvalidHeader::NameTooLong,
            InvalidHeader::NotAToken,
            InvalidHeader::Masked,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            messages,
            [
                "must be an object of header names to string values",
                "must have at most 16 headers",
                "must total at most 4096 bytes (name: value, each line); these take 5000",
                "header name must be at most 64 characters",
                "is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)",
                "*** is how values are shown masked; send the real value (GET /webhooks/{id}/headers reads them)",
            ]
        );
    }

    #[test]
    fn refuses_duplicates_by_case_and_oversize_totals() {
        let errors = fields(json!({"X-Key": "a", "x-key": "b"}));
        assert_eq!(errors[0].0, "headers.x-key");
        // Four values at their own limit pass each rule but not the total.
        let big = "v".repeat(HEADER_VALUE_MAX);
        let errors = fields(json!({ "X-A": big, "X-B": big, "X-C": big, "X-D": big }));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "headers");
        // Exactly at the total is fine: name + ": " + value + CRLF for each.
        let last = "v".repeat(HEADERS_MAX_BYTES - 3 * (HEADER_VALUE_MAX + 3 + 4) - (3 + 4));
        assert!(parse(&json!({ "X-A": big, "X-B": big, "X-C": big, "X-D": last })).is_ok());
        // Each header's own bounds, and the count.
        let errors = fields(json!({ "X-Long": "v".repeat(HEADER_VALUE_MAX + 1) }));
        assert_eq!(errors[0].0, "headers.X-Long");
        let long_name = "n".repeat(HEADER_NAME_MAX + 1);
        assert_eq!(
            fields(json!({ long_name.clone(): "v" }))[0].0,
            format!("headers.{long_name}")
        );
        let many: serde_json::Map<String, Value> = (0..=HEADERS_MAX_COUNT)
            .map(|i| (format!("x-{i}"), json!("v")))
            .collect();
        assert_eq!(fields(Value::Object(many))[0].0, "headers");
        assert!(!fields(json!(["X-A", "b"])).is_empty());
    }
}
