//! Logging and tracing set-up: structured logs (text or JSON) on stderr, and — with the `otel`
//! feature and `[log] otlp_endpoint` — spans exported over OTLP/HTTP.

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogConfig, LogFormat};

/// Flushes exported spans when dropped (at exit).
#[derive(Debug, Default)]
pub struct TelemetryGuard {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
#[error("telemetry: {0}")]
pub struct TelemetryError(String);

/// Installs the global subscriber.
pub fn init(log: &LogConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.level)
        .map_err(|e| TelemetryError(format!("log.level {:?}: {e}", log.level)))?;
    let fmt = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let registry = tracing_subscriber::registry().with(fmt.with_filter(filter));
    match &log.otlp_endpoint {
        None => {
            registry.init();
            Ok(TelemetryGuard::default())
        }
        #[cfg(feature = "otel")]
        Some(endpoint) => {
            use opentelemetry::trace::TracerProvider as _;
            use opentelemetry_otlp::WithExportConfig as _;
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
                .build()
                .map_err(|e| TelemetryError(e.to_string()))?;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name("x402-facilitator")
                        .build(),
                )
                .build();
            let tracer = provider.tracer("x402-facilitator");
            registry
                .with(
                    tracing_opentelemetry::layer()
                        .with_tracer(tracer)
                        .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
                )
                .init();
            Ok(TelemetryGuard {
                provider: Some(provider),
            })
        }
        #[cfg(not(feature = "otel"))]
        Some(_) => Err(TelemetryError(
            "log.otlp_endpoint needs a build with the `otel` feature".into(),
        )),
    }
}
