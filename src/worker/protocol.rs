//! The versioned JSON-lines protocol between the runner and a worker.
//!
//! The runner writes [`ToWorker`] lines to the worker's stdin; the worker writes
//! [`FromWorker`] lines to its stdout and nothing else there (diagnostics go to stderr).
//! Every line carries `v`, the protocol version; a peer that sees another version stops
//! with an error instead of misreading the stream.
//!
//! A worker's life: Start (its spec) -> prepare -> Ready -> Go -> Samples... -> Stop ->
//! Summary -> exit 0. End of stdin at any point means the runner is gone: the worker exits.

use serde::{Deserialize, Serialize};

use crate::workload::Params;

/// The protocol version both sides must speak.
pub const VERSION: u32 = 1;

/// What a worker needs to know to run its tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// Tenant instance name, for messages.
    pub tenant: String,
    pub workload: String,
    pub params: Params,
    pub seed: u64,
    /// Warm-up time the workload should spend before Ready, in seconds.
    pub warmup_s: f64,
    /// How often the worker sends batched samples, in milliseconds.
    pub flush_interval_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum ToWorker {
    Start { v: u32, spec: WorkerSpec },
    Go { v: u32 },
    Stop { v: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum FromWorker {
    /// Set-up and warm-up are done; the worker waits for Go.
    Ready {
        v: u32,
        /// Time spent building and warming up, in seconds.
        prepare_s: f64,
    },
    /// Steps completed since the last batch.
    Samples { v: u32, samples: Vec<StepSample> },
    /// Sent after Stop, once the step in progress has finished.
    Summary { v: u32, summary: WorkerSummary },
    /// The workload failed; the worker exits non-zero after sending this.
    Error { v: u32, message: String },
}

/// One completed step, timed by the worker from the moment it received Go.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepSample {
    /// When the step ended, in seconds since Go.
    pub end_s: f64,
    /// The step's wall time, in seconds.
    pub step_s: f64,
    /// Items the step completed.
    pub items: u64,
    /// A latency the workload measured itself, in seconds, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_s: Option<f64>,
    /// Units of work the step attempted that failed (see `Step::failed`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
}

/// The first line a worker that dials the runner (the TCP transport) sends, before any
/// [`ToWorker`] line: who it is and the study's shared secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Handshake {
    Hello {
        v: u32,
        /// The study's token; the runner refuses a worker without the right one.
        token: String,
        /// The tenant instance this worker runs (`train`, `infer-1`).
        tenant: String,
    },
}

/// The runner's answer to a [`Handshake`]; after `accepted`, the stream carries the
/// protocol as on stdin/stdout, starting with Start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum HandshakeReply {
    Accepted {
        v: u32,
    },
    Refused {
        v: u32,
        /// Why, for the worker's stderr (`wrong token`, `protocol version 2`).
        reason: String,
    },
}

/// What a worker reports once it has stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// Time from Go to the moment Stop arrived, in seconds: the measured window.
    pub window_s: f64,
    /// Steps completed within the window.
    pub steps: u64,
    /// Items completed within the window.
    pub items: u64,
    /// Failed units of work (see `Step::failed`) within the window.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: u64,
    /// Peak device memory, in bytes, where the workload can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Errors from reading a protocol line.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("decoding protocol line {line:?}: {source}")]
    Decode {
        line: String,
        source: serde_json::Error,
    },
    #[error("speaking protocol: peer speaks version {got}, this binary version {VERSION}")]
    Version { got: u32 },
}

impl ToWorker {
    fn version(&self) -> u32 {
        match self {
            ToWorker::Start { v, .. } | ToWorker::Go { v } | ToWorker::Stop { v } => *v,
        }
    }
}

impl FromWorker {
    fn version(&self) -> u32 {
        match self {
            FromWorker::Ready { v, .. }
            | FromWorker::Samples { v, .. }
            | FromWorker::Summary { v, .. }
            | FromWorker::Error { v, .. } => *v,
        }
    }
}

/// Decodes a line and checks its version.
pub fn decode_to_worker(line: &str) -> Result<ToWorker, ProtocolError> {
    let msg: ToWorker = serde_json::from_str(line).map_err(|source| ProtocolError::Decode {
        line: truncate(line),
        source,
    })?;
    check_version(msg.version())?;
    Ok(msg)
}

/// Decodes a line and checks its version.
pub fn decode_from_worker(line: &str) -> Result<FromWorker, ProtocolError> {
    let msg: FromWorker = serde_json::from_str(line).map_err(|source| ProtocolError::Decode {
        line: truncate(line),
        source,
    })?;
    check_version(msg.version())?;
    Ok(msg)
}

/// Encodes a message as one line, newline included.
pub fn encode<T: Serialize>(msg: &T) -> String {
    // Serializing these plain data types cannot fail: no maps with non-string keys and
    // no custom serializers.
    let mut line = serde_json::to_string(msg).unwrap_or_default();
    line.push('\n');
    line
}

fn check_version(v: u32) -> Result<(), ProtocolError> {
    if v == VERSION {
        Ok(())
    } else {
        Err(ProtocolError::Version { got: v })
    }
}

fn truncate(line: &str) -> String {
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_one_line() {
        let msg = FromWorker::Samples {
            v: VERSION,
            samples: vec![StepSample {
                end_s: 0.5,
                step_s: 0.001,
                items: 64,
                latency_s: None,
                failed: 0,
            }],
        };
        let line = encode(&msg);
        assert!(line.ends_with('\n') && !line.trim_end().contains('\n'));
        assert_eq!(decode_from_worker(line.trim_end()).unwrap(), msg);
    }

    #[test]
    fn another_version_is_refused() {
        let err = decode_to_worker(r#"{"msg":"go","v":2}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "speaking protocol: peer speaks version 2, this binary version 1"
        );
    }

    #[test]
    fn garbage_is_a_decode_error_quoting_the_line() {
        let err = decode_from_worker("hello").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("decoding protocol line \"hello\""));
    }
}
