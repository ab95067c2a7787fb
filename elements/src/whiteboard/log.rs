// SPDX-License-Identifier: MIT OR Apache-2.0
//! The whiteboard update log: one JSON object per line, `{"t_ms": N, "update": "<base64>"}`,
//! `t_ms` the milliseconds since the log started (ascending) and `update` a Yjs update
//! (v1 encoding, standard base64). A `Whiteboard` of the `streamwire` library writes one
//! (through [`LogWriter`]); `whiteboardsrc location=` replays it.

use std::io::{BufRead, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Milliseconds since the log started.
    pub t_ms: u64,
    /// A Yjs update, v1 encoding.
    pub update: Vec<u8>,
}

/// A log that cannot be read: names the line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogError {
    /// 1-based line number (0: reading failed).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for LogError {}

/// Read a whole log; entries must be in ascending `t_ms`.
///
/// ```
/// use gststreamwire::whiteboard::log::{read, write_entry, Entry};
/// let mut buf = Vec::new();
/// write_entry(&mut buf, &Entry { t_ms: 5, update: vec![0, 0] }).unwrap();
/// assert_eq!(read(&buf[..]).unwrap(), vec![Entry { t_ms: 5, update: vec![0, 0] }]);
/// let err = read(&b"{\"t_ms\": 1}\n"[..]).unwrap_err();
/// assert_eq!(err.line, 1);
/// ```
pub fn read(input: impl BufRead) -> Result<Vec<Entry>, LogError> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| LogError {
            line: i + 1,
            message: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| LogError {
            line: i + 1,
            message,
        };
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| err(format!("not JSON: {e}")))?;
        let t_ms = v["t_ms"]
            .as_u64()
            .ok_or_else(|| err("field `t_ms` is missing or not a whole number".into()))?;
        let update = v["update"]
            .as_str()
            .ok_or_else(|| err("field `update` is missing or not a string".into()))?;
        let update = STANDARD
            .decode(update.trim())
            .map_err(|e| err(format!("field `update` is not base64: {e}")))?;
        if let Some(last) = out.last()
            && t_ms < last.t_ms
        {
            return Err(err(format!(
                "field `t_ms` = {t_ms} is before the previous entry's {}",
                last.t_ms
            )));
        }
        out.push(Entry { t_ms, update });
    }
    Ok(out)
}

/// Append one entry.
pub fn write_entry(mut out: impl Write, e: &Entry) -> std::io::Result<()> {
    writeln!(
        out,
        "{{\"t_ms\":{},\"update\":\"{}\"}}",
        e.t_ms,
        STANDARD.encode(&e.update)
    )
}

/// Writes a log as updates happen, stamping each with the time since the writer started.
pub struct LogWriter<W: Write> {
    out: W,
    start: std::time::Instant,
}

impl<W: Write> LogWriter<W> {
    /// Start a log now.
    pub fn new(out: W) -> Self {
        LogWriter {
            out,
            start: std::time::Instant::now(),
        }
    }

    /// Append an update at the current time (and flush).
    pub fn push(&mut self, update: &[u8]) -> std::io::Result<()> {
        let t_ms = self.start.elapsed().as_millis() as u64;
        write_entry(
            &mut self.out,
            &Entry {
                t_ms,
                update: update.to_vec(),
            },
        )?;
        self.out.flush()
    }
}
