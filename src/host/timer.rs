//! Timer trigger (`timerTrigger`): `{Schedule, ScheduleStatus|null, IsPastDue}` inline in `Data`.
//!
//! Must not import anything outside `host`.

use serde_json::Value;
use time::OffsetDateTime;

use super::request::{InvocationRequest, PayloadError, Sys, Trigger, TriggerKind, expect_object};
use super::wire::{meta_bool, meta_datetime, meta_get};

/// `ScheduleStatus`: present only when schedule monitoring is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleStatus {
    /// Last run; `0001-01-01T00:00:00` (taken as UTC) before the first run.
    pub last: Option<OffsetDateTime>,
    pub next: Option<OffsetDateTime>,
    pub last_updated: Option<OffsetDateTime>,
}

/// A decoded timer invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerTrigger {
    /// `null` when schedule monitoring is off (e.g. sub-minute schedules).
    pub schedule_status: Option<ScheduleStatus>,
    /// True when the invocation runs later than scheduled (e.g. after a restart).
    pub is_past_due: bool,
    /// `Schedule.AdjustForDST`, when sent.
    pub adjust_for_dst: Option<bool>,
    pub sys: Sys,
    pub invocation_id: Option<String>,
}

impl Trigger for TimerTrigger {
    const KIND: TriggerKind = TriggerKind::Timer;

    fn decode(request: &InvocationRequest, binding: &str) -> Result<Self, PayloadError> {
        let base = format!("Data.{binding}");
        let timer = expect_object(request.data_entry(binding)?, &base)?;

        let is_past_due = match meta_get(timer, "IsPastDue") {
            None | Some((_, Value::Null)) => false,
            Some((k, v)) => {
                meta_bool(v).map_err(|r| PayloadError::invalid(format!("{base}.{k}"), r))?
            }
        };
        let adjust_for_dst = match meta_get(timer, "Schedule") {
            None | Some((_, Value::Null)) => None,
            Some((k, v)) => {
                let schedule = expect_object(v, &format!("{base}.{k}"))?;
                match meta_get(schedule, "AdjustForDST") {
                    None | Some((_, Value::Null)) => None,
                    Some((k2, v)) => Some(
                        meta_bool(v)
                            .map_err(|r| PayloadError::invalid(format!("{base}.{k}.{k2}"), r))?,
                    ),
                }
            }
        };
        let schedule_status = match meta_get(timer, "ScheduleStatus") {
            None | Some((_, Value::Null)) => None,
            Some((k, v)) => {
                let path = format!("{base}.{k}");
                let status = expect_object(v, &path)?;
                let date = |key: &str| match meta_get(status, key) {
                    None => Ok(None),
                    Some((k2, v)) => meta_datetime(v)
                        .map_err(|r| PayloadError::invalid(format!("{path}.{k2}"), r)),
                };
                Some(ScheduleStatus {
                    last: date("Last")?,
                    next: date("Next")?,
                    last_updated: date("LastUpdated")?,
                })
            }
        };
        Ok(TimerTrigger {
            schedule_status,
            is_past_due,
            adjust_for_dst,
            sys: request.sys(),
            invocation_id: request.invocation_id().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> Result<TimerTrigger, PayloadError> {
        let req = InvocationRequest::from_slice(body.as_bytes(), None).unwrap();
        TimerTrigger::decode(&req, "timer")
    }

    #[test]
    fn a_null_schedule_status_decodes_as_none() {
        let t = decode(r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":true}}}"#)
            .unwrap();
        assert!(t.schedule_status.is_none());
        assert!(t.is_past_due);
        assert_eq!(t.adjust_for_dst, Some(true));
    }

    #[test]
    fn a_first_run_status_with_year_one_decodes() {
        let t = decode(
            r#"{"Data":{"timer":{"ScheduleStatus":{"Last":"0001-01-01T00:00:00","Next":"2024-11-30T14:45:51+00:00","LastUpdated":"2024-11-30T14:40:51.1234567+00:00"},"IsPastDue":false}}}"#,
        )
        .unwrap();
        let s = t.schedule_status.unwrap();
        assert_eq!(s.last.unwrap().year(), 1);
        assert_eq!(s.last_updated.unwrap().nanosecond(), 123_456_700);
    }

    #[test]
    fn a_bad_date_names_its_path() {
        let err =
            decode(r#"{"Data":{"timer":{"ScheduleStatus":{"Next":"soon"},"IsPastDue":false}}}"#)
                .unwrap_err();
        assert_eq!(err.path(), "Data.timer.ScheduleStatus.Next");
    }
}
