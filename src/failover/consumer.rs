//! Consumer-role stages (`role = "consumer"`): accept the provider's invitation on the
//! consumer's secondary account, map data sets to secondary-region sinks, create triggers.
//!
//! Status: not built yet. Every consumer-role stage other than the shared ones (approval,
//! notify, complete) fails the run permanently with a message saying so, rather than
//! pretending to have done the work.
//!
//! Must not import: handlers, host.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::arm::client::ArmClient;

use super::FailoverError;
use super::exec::StageContext;
use super::run::RunRecord;
use super::stages::Stage;

/// What a consumer-role stage reports (mapped onto the run record by `exec`).
#[derive(Debug, Default)]
pub struct ConsumerStageResult {
    pub summary: String,
    pub counts: BTreeMap<String, u64>,
    /// `(severity, code, message)`.
    pub findings: Vec<(String, String, String)>,
    pub wait: Option<Duration>,
    pub abort: Option<String>,
}

/// Runs one consumer-role stage.
pub async fn execute(
    ctx: &StageContext,
    arm: &ArmClient,
    run: &RunRecord,
    stage: Stage,
) -> Result<ConsumerStageResult, FailoverError> {
    let _ = (ctx, arm);
    Err(FailoverError::Stage {
        run_id: run.run_id.clone(),
        stage: stage.as_str().into(),
        reason: "consumer-role failover is not implemented yet (see docs/failover.md)".into(),
        transient: false,
    })
}
