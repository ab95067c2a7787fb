//! The replay file format: timestamped accelerometer samples that `sensorrotation` plays
//! back instead of a live sensor.

use std::fmt;

/// One accelerometer sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds: stream time for replay files, monotonic time for live sources.
    pub t_ms: u64,
    /// Gravity reaction along the device x axis.
    pub x: f64,
    /// Along y.
    pub y: f64,
    /// Along z.
    pub z: f64,
}

/// A replay file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    /// 1-based line number; 0 when the problem is the file as a whole (no samples).
    pub line: usize,
    /// What is wrong on that line.
    pub message: String,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ReplayError {}

/// Parses a replay file.
///
/// Format: one sample per line, `t_ms x y z`, separated by whitespace, where `t_ms` is a
/// non-negative integer (milliseconds of stream time, non-decreasing) and `x y z`
/// are finite numbers in any consistent unit. `#` starts a comment that runs to the end of
/// the line; empty lines are ignored. A file without any sample is an error.
///
/// ```
/// let s = gststreamwire::orientation::parse_replay("# t x y z\n0 0 9.8 0\n500 -9.8 0 0 # turned\n").unwrap();
/// assert_eq!(s.len(), 2);
/// let e = gststreamwire::orientation::parse_replay("0 0 9.8\n").unwrap_err();
/// assert_eq!(e.line, 1);
/// assert!(gststreamwire::orientation::parse_replay("# nothing\n").is_err());
/// ```
pub fn parse_replay(text: &str) -> Result<Vec<Sample>, ReplayError> {
    let mut out = Vec::new();
    let mut last_t = 0u64;
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let content = raw.split_once('#').map_or(raw, |(data, _)| data).trim();
        if content.is_empty() {
            continue;
        }
        let err = |message: String| ReplayError { line, message };
        let cols: Vec<&str> = content.split_whitespace().collect();
        if cols.len() != 4 {
            return Err(err(format!(
                "expected 4 columns `t_ms x y z`, found {}",
                cols.len()
            )));
        }
        let t_ms: u64 = cols[0].parse().map_err(|_| {
            err(format!(
                "t_ms `{}` is not a non-negative integer (milliseconds)",
                cols[0]
            ))
        })?;
        if t_ms < last_t {
            return Err(err(format!(
                "t_ms {t_ms} goes backwards (previous sample at {last_t})"
            )));
        }
        last_t = t_ms;
        let mut v = [0f64; 3];
        for (i, name) in ["x", "y", "z"].iter().enumerate() {
            let parsed: f64 = cols[i + 1]
                .parse()
                .map_err(|_| err(format!("{name} `{}` is not a number", cols[i + 1])))?;
            if !parsed.is_finite() {
                return Err(err(format!("{name} `{}` is not finite", cols[i + 1])));
            }
            v[i] = parsed;
        }
        out.push(Sample {
            t_ms,
            x: v[0],
            y: v[1],
            z: v[2],
        });
    }
    if out.is_empty() {
        return Err(ReplayError {
            line: 0,
            message: "holds no samples (expected lines `t_ms x y z`)".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_errors_name_the_line() {
        let e = parse_replay("0 0 1 0\n\n# c\n10 0 x 0\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("y `x`"), "{e}");
        let e = parse_replay("10 0 1 0\n5 0 1 0\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("backwards"));
        let e = parse_replay("-1 0 1 0\n").unwrap_err();
        assert!(e.message.contains("t_ms"));
        let e = parse_replay("1 0 inf 0\n").unwrap_err();
        assert!(e.message.contains("finite"));
        let e = parse_replay("").unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.to_string().contains("no samples"), "{e}");
        assert!(parse_replay("# only\n\n  # comments\n").is_err());
    }

    #[test]
    fn trailing_comments_are_comments() {
        let s = parse_replay("0 0 9.8 0 # upright\n  10 -9.8 0 0#turned\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].x, -9.8);
        // A comment does not hide a missing column.
        let e = parse_replay("0 0 9.8 # z missing\n").unwrap_err();
        assert!(e.message.contains("found 3"), "{e}");
    }
}
