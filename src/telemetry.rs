//! Tracing setup: JSON lines to stdout (the Functions host forwards every stdout line to
//! Application Insights as an Information trace in `Host.Function.Console`).
//!
//! Invariants: one JSON object per line, with the current span's fields (function, invocation
//! id, dequeue count, run id, stage) attached; the level filter comes from `RUST_LOG` (default
//! `info`); initialising twice (tests) is harmless. Nothing is written to stderr: the host logs
//! every stderr line as an Error (or as a Warning when it mentions "warn").
//! Must not import domain modules.

use tracing_subscriber::EnvFilter;

/// Default filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// Error while setting up telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` does not parse as a tracing filter.
    #[error("RUST_LOG is invalid: {source}")]
    ParseFilter {
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
}

/// Installs the global JSON subscriber writing to stdout. `filter` is the `RUST_LOG` value.
/// A subscriber that is already installed (e.g. by an earlier test) is kept.
pub fn init(filter: Option<&str>) -> Result<(), TelemetryError> {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .map_err(|source| TelemetryError::ParseFilter { source })?;
    let _already_installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_naming_rust_log() {
        let err = init(Some("info,[[[")).unwrap_err();
        assert!(err.to_string().starts_with("RUST_LOG is invalid"), "{err}");
    }
}
