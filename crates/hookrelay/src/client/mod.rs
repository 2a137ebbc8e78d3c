//! The commands that talk to a running server over its HTTP API, for people and scripts:
//! `tenants` and `keys` ([`admin`], admin key), `send` ([`send`], tenant key) and `webhooks`
//! ([`webhooks`] and [`activity`], tenant key).
//!
//! Text by default, the server's JSON with `--json`. A refusal prints the problem's title and
//! detail (`error: <title>: <detail>`, then the invalid fields) and exits with status 1.

pub mod activity;
pub mod admin;
pub mod event_types;
pub mod recovery;
pub mod send;
mod webhook_view;
pub mod webhooks;

use std::fmt;
use std::time::Duration;

use clap::Args;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::config::SecretString;

pub use admin::{KeysArgs, TenantsArgs};
pub use event_types::EventTypesArgs;
pub use recovery::EventsArgs;
pub use send::SendArgs;
pub use webhooks::WebhooksArgs;

pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Where the server is, who is calling, and how to print. Accepted before or after the
/// subcommand (`hookrelay tenants --json list` and `hookrelay tenants list --json` alike).
#[derive(Debug, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, env = "HOOKRELAY_URL", default_value = DEFAULT_URL, value_parser = parse_base_url, global = true)]
    pub url: Url,

    /// API key: the admin key for `tenants` and `keys`, a tenant key (or the admin key with
    /// `--tenant`) for `send` and `webhooks`.
    #[arg(long, env = "HOOKRELAY_KEY", hide_env_values = true, global = true)]
    pub key: Option<SecretString>,

    /// Print the server's JSON answer instead of text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

/// Why `--url` is refused (clap prints it after the flag's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadBaseUrl {
    /// The parser's reason is in the text, so it is not given again as the source.
    #[error("not a URL: {0}")]
    NotAUrl(url::ParseError),
    #[error("must be an http:// or https:// URL")]
    NotHttp,
}

fn parse_base_url(s: &str) -> Result<Url, BadBaseUrl> {
    let url = Url::parse(s).map_err(BadBaseUrl::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(BadBaseUrl::NotHttp);
    }
    Ok(url)
}

/// Why a command failed, worded for the person who ran it.
#[derive(Debug)]
pub enum Failure {
    /// The server refused, with an RFC 9457 problem (or a bare HTTP error).
    Problem {
        title: String,
        detail: String,
        /// `(field, message)` for each invalid field.
        fields: Vec<(String, String)>,
    },
    /// No answer at all.
    Unreachable { url: String, cause: String },
    /// Anything else: bad input, a timeout while waiting, failed deliveries.
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Problem {
                title,
                detail,
                fields,
                ..
            } => {
                write!(f, "error: {title}: {detail}")?;
                // A single invalid field is already the whole detail ("url: must use …").
                let said = matches!(fields.as_slice(), [(field, message)]
                    if *detail == format!("{field}: {message}"));
                for (field, message) in fields.iter().filter(|_| !said) {
                    write!(f, "\n  {field}: {message}")?;
                }
                Ok(())
            }
            Failure::Unreachable { url, cause } => {
                write!(f, "error: cannot reach {url}: {cause}")
            }
            Failure::Other(message) => write!(f, "error: {message}"),
        }
    }
}

/// Prints a failure on stderr and exits with status 1; the shell's answer to a refusal.
pub fn finish(result: Result<(), Failure>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(failure) => {
            eprintln!("{failure}");
            std::process::exit(1)
        }
    }
}

/// An authenticated client for `/api/v1`.
pub struct Client {
    http: reqwest::Client,
    base: Url,
    key: SecretString,
    /// Sent as `X-Tenant-Id`: the admin key acting for a tenant.
    tenant: Option<String>,
}

impl Client {
    pub fn new(connection: &Connection) -> Result<Client, Failure> {
        let key = connection.key.clone().ok_or_else(|| {
            Failure::Other("no API key: pass --key or set HOOKRELAY_KEY".to_owned())
        })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookrelay-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::Other(format!("cannot start an HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: connection.url.clone(),
            key,
            tenant: None,
        })
    }

    pub fn acting_for(mut self, tenant: Option<String>) -> Client {
        self.tenant = tenant;
        self
    }

    /// `<base>/api/v1/<segments…>`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    /// Calls the API; the answer's JSON (`null` for 204), or the problem as a [`Failure`].
    pub async fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let mut url = self.endpoint(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self
            .http
            .request(method, url.clone())
            .bearer_auth(self.key.expose())
            .header(ACCEPT, "application/json, application/problem+json");
        if let Some(tenant) = &self.tenant {
            request = request.header(crate::api::auth::TENANT_HEADER, tenant);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| unreachable(&url, &e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| unreachable(&url, &e))?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::Other(format!(
                    "{url} answered {status} with a body that is not JSON: {e}"
                ))
            });
        }
        Err(problem(status, &bytes))
    }
}

/// Reads an error answer: an RFC 9457 problem when it is one, else the status and the start
/// of the body (a proxy's HTML page, say).
fn problem(status: StatusCode, body: &[u8]) -> Failure {
    let reason = status.canonical_reason().unwrap_or("error").to_owned();
    let Ok(Value::Object(problem)) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(200).collect();
        return Failure::Problem {
            title: format!("HTTP {}", status.as_u16()),
            detail: if text.is_empty() { reason } else { text },
            fields: Vec::new(),
        };
    };
    let text = |name: &str| problem.get(name).and_then(Value::as_str).map(str::to_owned);
    let fields = problem
        .get("errors")
        .and_then(Value::as_array)
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let get = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    (get("field"), get("message"))
                })
                .collect()
        })
        .unwrap_or_default();
    Failure::Problem {
        title: text("title").unwrap_or(reason),
        detail: text("detail").unwrap_or_default(),
        fields,
    }
}

/// A transport error in plain words: the innermost cause ("Connection refused"), not a dump.
fn unreachable(url: &Url, error: &reqwest::Error) -> Failure {
    let mut origin = url.clone();
    origin.set_path("");
    origin.set_query(None);
    let cause = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        let mut inner: &dyn std::error::Error = error;
        while let Some(source) = inner.source() {
            inner = source;
        }
        inner.to_string()
    };
    Failure::Unreachable {
        url: origin.as_str().trim_end_matches('/').to_owned(),
        cause,
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A field of an API object as text, `-` when absent or null.
pub fn field(object: &Value, name: &str) -> String {
    match object.get(name) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `key: value` lines, the values aligned.
pub fn pairs(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(key, value)| format!("{:<w$}{value}\n", format!("{key}:"), w = width + 2))
        .collect()
}

/// Rows as aligned columns, the first row being the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[c] - cell.chars().count();
                line.push_str(cell);
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_prints_title_detail_and_fields() {
        let body = br#"{"type":"https://hookrelay.dev/problems/validation","title":"Validation failed","status":422,"detail":"2 fields are invalid","errors":[{"field":"url","message":"must use http or https"},{"field":"events[0]","message":"unknown"}]}"#;
        let text = problem(StatusCode::UNPROCESSABLE_ENTITY, body).to_string();
        assert_eq!(
            text,
            "error: Validation failed: 2 fields are invalid\n  url: must use http or https\n  events[0]: unknown"
        );
    }

    #[test]
    fn a_single_field_is_not_repeated() {
        let body = br#"{"title":"Validation failed","status":422,"detail":"url: must use http or https","errors":[{"field":"url","message":"must use http or https"}]}"#;
        let text = problem(StatusCode::UNPROCESSABLE_ENTITY, body).to_string();
        assert_eq!(
            text,
            "error: Validation failed: url: must use http or https"
        );
    }

    #[test]
    fn a_bare_error_prints_status_and_body_start() {
        let text = problem(StatusCode::BAD_GATEWAY, b"<html>upstream down</html>").to_string();
        assert_eq!(text, "error: HTTP 502: <html>upstream down</html>");
        let text = problem(StatusCode::BAD_GATEWAY, b"").to_string();
        assert_eq!(text, "error: HTTP 502: Bad Gateway");
    }

    #[test]
    fn endpoints_keep_a_base_path_and_encode_segments() {
        let connection = Connection {
            url: parse_base_url("https://example.com/relay/").unwrap(),
            key: Some(SecretString::new("k")),
            json: false,
        };
        let client = Client::new(&connection).unwrap();
        assert_eq!(
            client.endpoint(&["tenants", "ten_1/../x"]).as_str(),
            "https://example.com/relay/api/v1/tenants/ten_1%2F..%2Fx"
        );
        assert_eq!(
            parse_base_url("ftp://example.com"),
            Err(BadBaseUrl::NotHttp)
        );
        assert_eq!(
            parse_base_url("mailto:ops@example.com"),
            Err(BadBaseUrl::NotHttp)
        );
        let relative = parse_base_url("/relay").unwrap_err();
        assert!(matches!(relative, BadBaseUrl::NotAUrl(_)));
        assert_eq!(
            relative.to_string(),
            "not a URL: relative URL without a base"
        );
        assert!(parse_base_url("127.0.0.1:8080").is_err());
    }

    #[test]
    fn tables_align_columns() {
        let rows = vec![
            vec!["ID".to_owned(), "NAME".to_owned()],
            vec!["ten_1".to_owned(), "Acme".to_owned()],
        ];
        assert_eq!(table(&rows), "ID     NAME\nten_1  Acme\n");
    }

    #[test]
    fn pairs_align_values() {
        let text = pairs(&[("id", "wh_1".into()), ("events", "*".into())]);
        assert_eq!(text, "id:     wh_1\nevents: *\n");
    }
}
