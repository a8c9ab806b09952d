//! `gpushare load --stream`: the load as it happens, one JSON line per finished request on
//! stdout, for a program that consumes it live (the `serve.<model>` tenant's worker)
//! instead of reading a report at the end.
//!
//! The stream, line by line:
//! - `{"event":"started","connections":N}` once, after the body file was read and every
//!   connection opened, just before the first intended send;
//! - `{"event":"done","intended_s":..,"latency_s":..,"outcome":..}` for every request that
//!   was answered, failed or dropped, in the order they finished. `outcome` is `"ok"` (2xx),
//!   `{"status":503}` (another HTTP status), `"connect"`, `"timeout"`, `"io"` or `"dropped"`
//!   (not sent: more than `--drop-after` behind schedule). `latency_s` runs from the
//!   intended send time to the response's last byte, or to the failure.
//!
//! The schedule has no end: a streaming generator runs until its stdin closes (its reader
//! is gone or done) and then exits 0; when stdout is closed it exits too. Lines are
//! written by a thread of their own, so a slow reader never delays a send.
//!
//! Owns the line format and its writer; must not decide what a failure means to the
//! reader.

use std::io::{BufRead, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::client::Outcome;

/// The schedule length of a streaming run: a year, that is, until stdin closes.
pub const STREAM_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// One line of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamLine {
    /// Every connection is open; intended send times start now.
    Started {
        /// Keep-alive connections opened.
        connections: usize,
    },
    /// A request finished.
    Done(Completion),
}

/// One finished request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The request's intended send time, in seconds since the schedule started.
    pub intended_s: f64,
    /// From the intended send time to the last byte of the response or to the failure, in
    /// seconds.
    pub latency_s: f64,
    /// How it ended.
    pub outcome: RequestOutcome,
}

/// How one request ended, as the stream reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestOutcome {
    /// A 2xx response, read completely.
    Ok,
    /// A response with another HTTP status.
    Status(u16),
    /// No connection could be opened.
    Connect,
    /// No complete response within `--timeout` of the send.
    Timeout,
    /// The connection broke while the request was in flight.
    Io,
    /// Not sent: more than `--drop-after` behind its intended time.
    Dropped,
}

impl RequestOutcome {
    /// Whether the request was answered 2xx.
    pub fn is_ok(self) -> bool {
        self == Self::Ok
    }

    pub(crate) fn of(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Ok => Self::Ok,
            Outcome::Status(code) => Self::Status(code),
            Outcome::Connect => Self::Connect,
            Outcome::Timeout => Self::Timeout,
            Outcome::Io => Self::Io,
        }
    }
}

/// Where a generator puts its stream lines. Cloned into every connection task; sending
/// never blocks.
#[derive(Debug, Clone)]
pub struct CompletionSink {
    lines: Sender<StreamLine>,
}

impl CompletionSink {
    /// A sink and the receiving end, for a caller that reads lines in-process (tests).
    pub fn channel() -> (Self, Receiver<StreamLine>) {
        let (lines, rx) = mpsc::channel();
        (Self { lines }, rx)
    }

    /// A sink whose lines a thread of its own writes to stdout, flushing whenever it has
    /// caught up. When stdout is closed (the reader is gone) the process exits.
    pub fn stdout() -> std::io::Result<Self> {
        let (sink, rx) = Self::channel();
        std::thread::Builder::new()
            .name("gpushare-load-stream".to_owned())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                if write_lines(&rx, &mut out).is_err() {
                    std::process::exit(0);
                }
            })?;
        Ok(sink)
    }

    pub(crate) fn started(&self, connections: usize) {
        // The receiver is gone only when the process is ending.
        let _ = self.lines.send(StreamLine::Started { connections });
    }

    pub(crate) fn done(&self, intended_s: f64, latency: Duration, outcome: RequestOutcome) {
        let _ = self.lines.send(StreamLine::Done(Completion {
            intended_s,
            latency_s: latency.as_secs_f64(),
            outcome,
        }));
    }
}

/// Writes every line `rx` yields, flushing each time the channel runs empty, until every
/// sender is gone.
fn write_lines(rx: &Receiver<StreamLine>, out: &mut impl Write) -> std::io::Result<()> {
    while let Ok(line) = rx.recv() {
        write_line(out, &line)?;
        while let Ok(line) = rx.try_recv() {
            write_line(out, &line)?;
        }
        out.flush()?;
    }
    out.flush()
}

fn write_line(out: &mut impl Write, line: &StreamLine) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")
}

/// Parses one line of the stream.
pub fn parse_line(line: &str) -> Result<StreamLine, serde_json::Error> {
    serde_json::from_str(line)
}

/// Exits the process (status 0) once stdin reaches its end: the reader of a streaming
/// generator closes it, or dies, and the generator must not outlive it.
pub fn exit_when_stdin_closes() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("gpushare-load-stdin".to_owned())
        .spawn(|| {
            let mut stdin = std::io::stdin().lock();
            loop {
                match stdin.fill_buf() {
                    Ok([]) | Err(_) => break,
                    Ok(buf) => {
                        let n = buf.len();
                        stdin.consume(n);
                    }
                }
            }
            std::process::exit(0);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_shape_and_round_trip() {
        let started = StreamLine::Started { connections: 4 };
        let ok = StreamLine::Done(Completion {
            intended_s: 0.5,
            latency_s: 0.002,
            outcome: RequestOutcome::Ok,
        });
        let refused = StreamLine::Done(Completion {
            intended_s: 1.0,
            latency_s: 0.001,
            outcome: RequestOutcome::Status(503),
        });
        let dropped = StreamLine::Done(Completion {
            intended_s: 2.0,
            latency_s: 1.5,
            outcome: RequestOutcome::Dropped,
        });
        let mut out = Vec::new();
        for line in [&started, &ok, &refused, &dropped] {
            write_line(&mut out, line).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"event\":\"started\",\"connections\":4}\n\
             {\"event\":\"done\",\"intended_s\":0.5,\"latency_s\":0.002,\"outcome\":\"ok\"}\n\
             {\"event\":\"done\",\"intended_s\":1.0,\"latency_s\":0.001,\"outcome\":{\"status\":503}}\n\
             {\"event\":\"done\",\"intended_s\":2.0,\"latency_s\":1.5,\"outcome\":\"dropped\"}\n"
        );
        let parsed: Vec<StreamLine> = text.lines().map(|l| parse_line(l).unwrap()).collect();
        assert_eq!(parsed, vec![started, ok, refused, dropped]);
    }

    #[test]
    fn the_writer_flushes_what_it_has_and_ends_with_its_senders() {
        let (sink, rx) = CompletionSink::channel();
        sink.started(2);
        sink.done(0.0, Duration::from_millis(3), RequestOutcome::Timeout);
        drop(sink);
        let mut out = Vec::new();
        write_lines(&rx, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 2);
    }
}
