//! Queue trigger (`queueTrigger`): the message decoded once into a typed body, plus metadata.
//!
//! Must not import anything outside `host`.

use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;

use super::request::{InvocationRequest, PayloadError, Sys, Trigger, TriggerKind};
use super::wire::{kind_of, meta_datetime, meta_string, meta_u32, unwrap_string};

/// How a queue message's text becomes a typed body.
///
/// Every `DeserializeOwned` type reads the text as JSON (the project's stage messages are JSON
/// objects); [`MessageText`] keeps the text as it is.
pub trait QueueBody: Sized {
    /// Decodes the message text; errors are reported relative to `path` (`Data.<binding>`).
    fn from_message_text(text: &str, path: &str) -> Result<Self, PayloadError>;
}

impl<T: DeserializeOwned> QueueBody for T {
    fn from_message_text(text: &str, path: &str) -> Result<Self, PayloadError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
            if err.inner().is_syntax() || err.inner().is_eof() {
                PayloadError::invalid(
                    path,
                    format!("the queue message is not JSON ({})", err.inner()),
                )
            } else {
                PayloadError::from_serde(path, err)
            }
        })?;
        de.end().map_err(|e| {
            PayloadError::invalid(
                path,
                format!("trailing characters after the JSON message ({e})"),
            )
        })?;
        Ok(value)
    }
}

/// A queue message body kept as raw text (no JSON parsing), e.g. for the poison queue, where a
/// message that does not decode must still be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(pub String);

impl QueueBody for MessageText {
    fn from_message_text(text: &str, _path: &str) -> Result<Self, PayloadError> {
        Ok(MessageText(text.to_owned()))
    }
}

/// A decoded queue-trigger invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueTrigger<T> {
    /// The message, decoded once (after unwrapping the host's extra string encoding).
    pub body: T,
    /// The message text after unwrapping (what was enqueued).
    pub message_text: String,
    /// `Metadata.DequeueCount`: 1 on first delivery.
    pub dequeue_count: u32,
    /// `Metadata.Id`.
    pub id: Option<String>,
    /// `Metadata.InsertionTime` (whole seconds: the host drops sub-seconds).
    pub insertion_time: Option<OffsetDateTime>,
    /// `Metadata.ExpirationTime`.
    pub expiration_time: Option<OffsetDateTime>,
    /// `Metadata.NextVisibleTime`: when the message reappears if this attempt fails.
    pub next_visible_time: Option<OffsetDateTime>,
    /// `Metadata.PopReceipt`.
    pub pop_receipt: Option<String>,
    /// `Metadata.sys`.
    pub sys: Sys,
    /// `X-Azure-Functions-InvocationId`.
    pub invocation_id: Option<String>,
}

impl<T: QueueBody> Trigger for QueueTrigger<T> {
    const KIND: TriggerKind = TriggerKind::Queue;

    fn decode(request: &InvocationRequest, binding: &str) -> Result<Self, PayloadError> {
        let path = format!("Data.{binding}");
        let message_text = match request.data_entry(binding)? {
            // Real hosts: a JSON string holding a JSON string literal → unwrap exactly once.
            // The docs' idealised form (text not re-encoded) is taken as the text itself.
            Value::String(s) => unwrap_string(s),
            // Not sent by the host for a string-typed queue trigger; accept a JSON object as the
            // message itself rather than refusing it.
            v @ (Value::Object(_) | Value::Array(_)) => v.to_string(),
            other => {
                return Err(PayloadError::invalid(
                    path,
                    format!(
                        "expected the queue message as a string, found {}",
                        kind_of(other)
                    ),
                ));
            }
        };
        let body = T::from_message_text(&message_text, &path)?;

        let dequeue_count = match request.metadata_entry("DequeueCount") {
            None => return Err(PayloadError::missing("Metadata.DequeueCount")),
            Some((key, v)) => {
                let n =
                    meta_u32(v).map_err(|r| PayloadError::invalid(format!("Metadata.{key}"), r))?;
                if n == 0 {
                    return Err(PayloadError::invalid(
                        format!("Metadata.{key}"),
                        "must be at least 1 (the first delivery counts)",
                    ));
                }
                n
            }
        };
        let text = |key: &str| -> Result<Option<String>, PayloadError> {
            match request.metadata_entry(key) {
                None => Ok(None),
                Some((k, v)) => {
                    meta_string(v).map_err(|r| PayloadError::invalid(format!("Metadata.{k}"), r))
                }
            }
        };
        let date = |key: &str| -> Result<Option<OffsetDateTime>, PayloadError> {
            match request.metadata_entry(key) {
                None => Ok(None),
                Some((k, v)) => {
                    meta_datetime(v).map_err(|r| PayloadError::invalid(format!("Metadata.{k}"), r))
                }
            }
        };
        Ok(QueueTrigger {
            body,
            message_text,
            dequeue_count,
            id: text("Id")?,
            insertion_time: date("InsertionTime")?,
            expiration_time: date("ExpirationTime")?,
            next_visible_time: date("NextVisibleTime")?,
            pop_receipt: text("PopReceipt")?,
            sys: request.sys(),
            invocation_id: request.invocation_id().map(str::to_owned),
        })
    }

    fn dequeue_count(&self) -> Option<u32> {
        Some(self.dequeue_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Stage {
        run_id: String,
        stage: String,
        #[serde(default)]
        attempt: u32,
    }

    fn request(body: &str) -> InvocationRequest {
        InvocationRequest::from_slice(body.as_bytes(), Some("inv-1".into())).unwrap()
    }

    #[test]
    fn a_double_encoded_json_message_decodes_into_the_typed_body() {
        let msg = r#"{"runId":"r1","stage":"preflight","attempt":2,"extra":true}"#;
        let data = serde_json::to_string(&serde_json::to_string(msg).unwrap()).unwrap();
        let env = format!(
            r#"{{"Data":{{"msg":{data}}},"Metadata":{{"DequeueCount":"3","Id":"\"abc\"","InsertionTime":"2022-06-13T06:00:06+00:00"}}}}"#
        );
        let t: QueueTrigger<Stage> = QueueTrigger::decode(&request(&env), "msg").unwrap();
        assert_eq!(
            t.body,
            Stage {
                run_id: "r1".into(),
                stage: "preflight".into(),
                attempt: 2
            }
        );
        assert_eq!(t.dequeue_count, 3);
        assert_eq!(t.id.as_deref(), Some("abc"));
        assert_eq!(t.insertion_time.unwrap().unix_timestamp(), 1_655_100_006);
        assert_eq!(t.invocation_id.as_deref(), Some("inv-1"));
    }

    #[test]
    fn a_message_missing_a_field_names_the_field_path() {
        let env =
            r#"{"Data":{"msg":"\"{\\\"runId\\\":\\\"r1\\\"}\""},"Metadata":{"DequeueCount":1}}"#;
        let err = QueueTrigger::<Stage>::decode(&request(env), "msg").unwrap_err();
        assert_eq!(err.path(), "Data.msg");
        assert!(err.to_string().contains("stage"), "{err}");
    }

    #[test]
    fn a_message_field_of_the_wrong_type_names_its_path() {
        let env = r#"{"Data":{"msg":"\"{\\\"runId\\\":7,\\\"stage\\\":\\\"x\\\"}\""},"Metadata":{"DequeueCount":1}}"#;
        let err = QueueTrigger::<Stage>::decode(&request(env), "msg").unwrap_err();
        assert_eq!(err.path(), "Data.msg.runId");
    }

    #[test]
    fn a_message_starting_with_a_quote_keeps_it() {
        let text = "\"quoted\" rest";
        let data = serde_json::to_string(&serde_json::to_string(text).unwrap()).unwrap();
        let env = format!(r#"{{"Data":{{"msg":{data}}},"Metadata":{{"DequeueCount":"1"}}}}"#);
        let t: QueueTrigger<MessageText> = QueueTrigger::decode(&request(&env), "msg").unwrap();
        assert_eq!(t.body.0, text);
    }

    #[test]
    fn a_zero_or_missing_dequeue_count_is_refused() {
        let env = r#"{"Data":{"msg":"\"x\""},"Metadata":{"DequeueCount":"0"}}"#;
        let err = QueueTrigger::<MessageText>::decode(&request(env), "msg").unwrap_err();
        assert_eq!(err.path(), "Metadata.DequeueCount");
        let env = r#"{"Data":{"msg":"\"x\""},"Metadata":{}}"#;
        let err = QueueTrigger::<MessageText>::decode(&request(env), "msg").unwrap_err();
        assert_eq!(err, PayloadError::missing("Metadata.DequeueCount"));
    }
}
