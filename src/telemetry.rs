//! Tracing setup: JSON lines to stdout (being built).
