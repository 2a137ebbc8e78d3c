//! Logging and tracing: tracing to stderr, human-readable or JSON, filtered by `RUST_LOG`
//! (default `info`); and, only when an OTLP endpoint is configured, the same spans exported
//! to an OpenTelemetry collector over OTLP/HTTP (protobuf). Without an endpoint nothing of
//! OpenTelemetry is set up, so behaviour and cost are as before.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

/// The directive that lets the per-attempt spans through when they are exported.
const ATTEMPT_SPANS: &str = "hookrelay::delivery=debug";

/// Where spans go, for as long as it lives; [`Telemetry::shutdown`] sends what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered (waiting up to the exporter's timeout).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: could not export the last traces: {error}");
        }
    }
}

/// The OTLP/HTTP traces URL for a collector's base URL (`http://collector:4318`), or the
/// URL itself when it already names the traces path.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim_end_matches('/');
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{endpoint}/v1/traces")
    }
}

/// How log lines are written: for people, or one JSON object per line for a collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Installs the global subscriber. `otlp_endpoint` turns trace export on.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = match otlp_endpoint.filter(|e| !e.trim().is_empty()) {
        Some(endpoint) => Some(provider(endpoint)?),
        None => None,
    };
    if provider.is_some() {
        // The span of each delivery attempt is at debug level, so that it costs nothing
        // unless exported. The engine logs no debug events of its own, so stderr stays as it
        // was. (One global filter: per-layer filters lose events after `tracing::enabled!`,
        // which sqlx calls.)
        filter = filter.add_directive(ATTEMPT_SPANS.parse()?);
    }
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Human => logs.boxed(),
        LogFormat::Json => logs.json().boxed(),
    };
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("hookrelay")));
    // A second init (as in tests) keeps the first subscriber; that is fine.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .try_init();
    Ok(Telemetry { provider })
}

fn provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    let url = traces_url(endpoint);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(&url)
        .build()
        .map_err(|e| {
            anyhow::anyhow!("OTLP endpoint (--otlp-endpoint / HOOKRELAY_OTLP_ENDPOINT) {url}: {e}")
        })?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("hookrelay")
        .build();
    // The batch processor exports from a thread of its own, off the async runtime.
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
