//! (being built — see docs/CONTRACTS.md for ownership)
pub mod alert;
