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

/// Parses a `headers` field: an object of string values, or `null` for none. Each bad header
/// is reported under its own name (`headers.X-Foo`), all at once.
pub fn parse(value: &Value) -> Result<CustomHeaders, Vec<FieldError>> {
    let object = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        _ => {
            return Err(vec![FieldError::new(
                "headers",
                "must be an object of header names to string values",
            )]);
        }
    };
    if object.len() > HEADERS_MAX_COUNT {
        return Err(vec![FieldError::new(
            "headers",
            format!("must have at most {HEADERS_MAX_COUNT} headers"),
        )]);
    }
    let mut errors = Vec::new();
    let mut headers: CustomHeaders = Vec::with_capacity(object.len());
    let mut bytes = 0usize;
    for (name, value) in object {
        let field = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if let Err(message) = check_name(&lower) {
            errors.push(FieldError::new(field, message));
            continue;
        }
        let Value::String(value) = value else {
            errors.push(FieldError::new(field, "must be a string"));
            continue;
        };
        if let Err(message) = check_value(value) {
            errors.push(FieldError::new(field, message));
            continue;
        }
        if headers.iter().any(|(n, _)| *n == lower) {
            errors.push(FieldError::new(
                field,
                "is given twice (header names are case-insensitive)",
            ));
            continue;
        }
        bytes = bytes.saturating_add(lower.len() + value.len() + 4);
        headers.push((lower, value.clone()));
    }
    if bytes > HEADERS_MAX_BYTES {
        errors.push(FieldError::new(
            "headers",
            format!("must total at most {HEADERS_MAX_BYTES} bytes (name: value, each line); these take {bytes}"),
        ));
    }
    if errors.is_empty() {
        Ok(headers)
    } else {
        Err(errors)
    }
}

/// A header name: an RFC 9110 token, and not one hookrelay controls.
fn check_name(lower: &str) -> Result<(), String> {
    if lower.is_empty() {
        return Err("header name must not be empty".into());
    }
    if lower.len() > HEADER_NAME_MAX {
        return Err(format!(
            "header name must be at most {HEADER_NAME_MAX} characters"
        ));
    }
    if !lower.bytes().all(is_tchar) {
        return Err("is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)".into());
    }
    if RESERVED.contains(&lower) || RESERVED_PREFIXES.iter().any(|p| lower.starts_with(p)) {
        return Err("is set by hookrelay or by HTTP itself and cannot be overridden".into());
    }
    Ok(())
}

/// A header value: visible ASCII and inner spaces; CR, LF and NUL would split or end the
/// header, so they are the attack this refuses.
fn check_value(value: &str) -> Result<(), String> {
    if value.len() > HEADER_VALUE_MAX {
        return Err(format!("must be at most {HEADER_VALUE_MAX} characters"));
    }
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err("must not contain CR, LF or NUL".into());
    }
    if !value
        .bytes()
        .all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
    {
        return Err("must be printable ASCII".into());
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err("must not start or end with whitespace".into());
    }
    if value == MASK {
        // A masked webhook sent back as it was read would replace the credential with this.
        return Err(format!(
            "{MASK} is how values are shown masked; send the real value (GET /webhooks/{{id}}/headers reads them)"
        ));
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
